"""The running command's output, mirrored while it runs: the tail of the DevBox's output
file, redacted, as one small JSON record in the artifact store (`live/output.json`).

The API streams it to the web UI and `ferry logs -f`; the full output is stored when the
command ends, as before. The host reads the file without following links (hostio) and
never more than `LIVE_TAIL_BYTES` of it per read.
"""

from __future__ import annotations

import json
import re

from activities.devbox import hostio
from activities.secrets import redact
from ferry.artifact_store import LIVE_OUTPUT, ArtifactStore
from ferry.models.steps import LiveOutput, RunningCommand

LIVE_TAIL_BYTES = 16 * 1024


class LiveMirror:
    """Writes the live record when the running command's output grew (or it ended)."""

    def __init__(self, store: ArtifactStore, run_id: str, turn_id: str,
                 secrets: list[str]) -> None:
        self.store = store
        self.run_id = run_id
        self.turn_id = turn_id
        self.secrets = secrets
        self.shown: tuple[int, int] | None = None  # (index, size) last written
        self.open_index: int | None = None

    def update(self, turn_dir: hostio.Beneath, running: RunningCommand | None) -> None:
        if running is None:
            if self.open_index is not None:
                self._write(LiveOutput(turn=self.turn_id, index=self.open_index, command="",
                                       size=0, tail_start=0, tail="", done=True))
                self.open_index = None
            return
        name = f"out/{running.index:05d}.log"
        if not re.fullmatch(r"out/\d{5,}\.log", name):
            return
        try:
            data, size = turn_dir.read_from(name, 0, 0)
            start = max(0, size - LIVE_TAIL_BYTES)
            data, size = turn_dir.read_from(name, start, LIVE_TAIL_BYTES)
        except hostio.UnsafeFile:
            return  # not created yet, or replaced by something that is not a file
        if self.shown == (running.index, size) and self.open_index == running.index:
            return
        if start:  # begin at a line so a cut multi-byte character is not shown
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                start, data = start + cut + 1, data[cut + 1:]
        text = str(redact(data.decode("utf-8", "replace"), self.secrets))
        self._write(LiveOutput(turn=self.turn_id, index=running.index,
                               command=running.command[:2000], size=size, tail_start=start,
                               tail=text, started_at=running.started_at))
        self.shown = (running.index, size)
        self.open_index = running.index

    def _write(self, live: LiveOutput) -> None:
        self.store.write_bytes(self.run_id, LIVE_OUTPUT,
                               json.dumps(live.model_dump(mode="json")).encode())
