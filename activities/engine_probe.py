"""The `probe_engines` activity: which engine CLIs the DevBox has and which the worker can pay for."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.devbox import DevBoxBackend
from activities.engines.registry import ADAPTERS
from activities.secrets import load_secrets
from ferry.models.activity_io import ProbeInput
from ferry.models.results import EngineChoice
from ferry.settings import Settings


class ProbeActivities:
    def __init__(self, settings: Settings, backend: DevBoxBackend) -> None:
        self.settings = settings
        self.backend = backend

    @activity.defn(name="probe_engines")
    async def probe_engines(self, inp: ProbeInput) -> EngineChoice:
        secrets = load_secrets(self.settings)
        priority = [n.strip() for n in self.settings.engine_priority.split(",") if n.strip()]
        usable: list[str] = []
        missing: dict[str, str] = {}
        for name in priority:
            if name == "openai":
                if self.settings.openai_base_url:
                    usable.append(name)
                else:
                    missing[name] = "FERRY_OPENAI_BASE_URL is not set on the worker"
                continue
            adapter = ADAPTERS.get(name)
            if adapter is None:
                missing[name] = "unknown engine in FERRY_ENGINE_PRIORITY"
                continue
            code, _ = await asyncio.to_thread(
                self.backend.exec, inp.devbox, ["sh", "-c", f"command -v {adapter.binary}"])
            if code != 0:
                missing[name] = f"the `{adapter.binary}` CLI is not in the DevBox image"
            elif not any(secrets.get(c) for c in adapter.credentials):
                missing[name] = ("no credentials on the worker (set one of "
                                 f"{', '.join(adapter.credentials)})")
            else:
                usable.append(name)
        return EngineChoice(chosen=usable[0] if usable else None, usable=usable, missing=missing)
