"""Activities that create and destroy DevBoxes on this worker host."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.devbox import DevBoxBackend, DevBoxError
from activities.gateway.grants import GrantBook
from ferry.models.activity_io import DevBoxAction, LaunchInput
from ferry.models.hosts import DevBoxInfo


class DevBoxActivities:
    def __init__(self, backend: DevBoxBackend, book: GrantBook | None = None) -> None:
        self.backend = backend
        self.book = book

    @activity.defn(name="launch_devbox")
    async def launch_devbox(self, inp: LaunchInput) -> DevBoxInfo:
        """Create the Run's DevBox here; the result names this host's task queue.

        Heartbeats while the backend works, so a launch lost with its worker is retried
        within the heartbeat timeout rather than the whole start-to-close timeout.
        """
        task = asyncio.ensure_future(asyncio.to_thread(self.backend.launch, inp.run_id, inp.image,
                                                     inp.run_as_root, inp.network))
        while True:
            done, _ = await asyncio.wait({task}, timeout=2.0)
            if done:
                break
            activity.heartbeat()
        try:
            return task.result()
        except DevBoxError as e:
            raise ApplicationError(str(e), type="DevBoxError", non_retryable=True) from e

    @activity.defn(name="teardown_devbox")
    async def teardown_devbox(self, info: DevBoxInfo) -> None:
        if self.book is not None:  # whatever token the Run still holds stops working
            self.book.close(info.run_id)
        await asyncio.to_thread(self.backend.remove, info)

    @activity.defn(name="hibernate_devbox")
    async def hibernate_devbox(self, inp: DevBoxAction) -> None:
        """Stop the DevBox during a long pause; its files stay."""
        await asyncio.to_thread(self.backend.hibernate, inp.devbox)

    @activity.defn(name="wake_devbox")
    async def wake_devbox(self, inp: DevBoxAction) -> None:
        try:
            await asyncio.to_thread(self.backend.wake, inp.devbox)
        except DevBoxError as e:
            raise ApplicationError(str(e), type="DevBoxError", non_retryable=True) from e
