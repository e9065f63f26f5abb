"""The host's warm pool: DevBoxes started ahead, which new Runs claim instead of waiting
for a container to start (FERRY_WARM_POOL per host; the default image, network and user).

Claiming happens in `DockerBackend.launch`; this keeps the pool full in the background
and removes its unclaimed DevBoxes when the worker stops.
"""

from __future__ import annotations

import asyncio
import logging

from activities.devbox import DevBoxBackend, DevBoxError

log = logging.getLogger("ferry.devbox.warm")

CHECK_SECONDS = 1.0  # how soon a claimed DevBox is replaced
RETRY_SECONDS = 30.0  # after a failed start (e.g. the image is being rebuilt)


class WarmPool:
    def __init__(self, backend: DevBoxBackend, size: int) -> None:
        self.backend = backend
        self.size = size

    @property
    def enabled(self) -> bool:
        return self.size > 0 and hasattr(self.backend, "start_warm")

    async def forever(self) -> None:
        if not self.enabled:
            return
        backend = self.backend
        await asyncio.to_thread(backend.prune_warm)  # type: ignore[attr-defined]
        while True:
            try:
                have = len(await asyncio.to_thread(backend.warm_boxes))  # type: ignore[attr-defined]
                for _ in range(self.size - have):
                    key = await asyncio.to_thread(backend.start_warm)  # type: ignore[attr-defined]
                    log.info("warm DevBox %s ready", key)
            except (DevBoxError, OSError) as e:
                log.warning("could not fill the warm pool: %s", e)
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:  # the pool must never take the worker down
                log.exception("warm pool")
                await asyncio.sleep(RETRY_SECONDS)
            await asyncio.sleep(CHECK_SECONDS)

    def drain(self) -> None:
        if self.enabled:
            self.backend.drain_warm()  # type: ignore[attr-defined]
