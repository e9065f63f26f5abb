"""`ferry logs -f`: a Run's command output as it is written, in the same form as `ferry logs`.

While a command runs, the API's `output` events carry the tail of its output; when it
ends, its exec step names the stored full output, and whatever the live tail did not
show is printed from there. So the stream ends up byte for byte what `ferry logs` prints.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

from ferry.cli.client import Api
from ferry.cli.output import err, esc, segment


class _Follower:
    def __init__(self, api: Api, run_id: str) -> None:
        self.api = api
        self.run_id = run_id
        self.index: tuple[str, int] | None = None  # (turn, index) of the command being shown
        self.printed = 0  # bytes of its output written so far

    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    def begin(self, turn: str, index: int, command: str) -> None:
        self.index, self.printed = (turn, index), 0
        self.write(f"$ {command}\n".encode())

    def live(self, d: dict[str, Any]) -> None:
        if d.get("done"):
            return
        key = (str(d["turn"]), int(d["index"]))
        if key != self.index:
            self.begin(*key, str(d.get("command", "")))
        tail = str(d.get("tail", "")).encode()
        start = int(d.get("tail_start", 0))
        if start > self.printed:
            self.write(f"\n[... {start - self.printed} bytes not shown live; `ferry logs "
                       f"{self.run_id}` has them ...]\n".encode())
            self.printed = start
        self.write(tail[self.printed - start:])
        self.printed = start + len(tail)

    def exec_step(self, p: dict[str, Any]) -> None:
        key = (str(p.get("turn", "")), int(p.get("index", 0)))
        if key != self.index:
            self.begin(*key, str(p.get("command", "")))
        rest = b""
        if p.get("output_path"):
            path = "/".join(quote(x, safe="") for x in str(p["output_path"]).split("/"))
            r = self.api.request_raw("GET", f"/runs/{segment(self.run_id)}/artifacts/{path}")
            if r.status_code == 200:
                rest = r.content[self.printed:]
                if p.get("output_truncated"):
                    rest += b"\n[... stored output truncated: the Run's output limit was reached ...]\n"
        elif self.printed == 0:
            rest = str(p.get("output_excerpt", "")).encode()
        self.write(rest)
        self.write(f"[exit {p.get('exit_code')}, {p.get('duration_ms')} ms]\n\n".encode())
        self.index, self.printed = None, 0


def follow_output(api: Api, run_id: str) -> str:
    """Stream the Run's command output until it finishes; returns its last status."""
    f = _Follower(api, run_id)
    status = "pending"
    last_seq = 0
    while True:
        for event, data in api.sse(f"/runs/{segment(run_id)}/events", params={"after": last_seq}):
            d = json.loads(data)
            if event == "step":
                last_seq = max(last_seq, int(d["seq"]))
                if d["kind"] == "exec":
                    f.exec_step(d["payload"])
            elif event == "output":
                f.live(d)
            elif event in ("status", "end"):
                status = d["status"]
                if event == "end":
                    return status
                if status == "waiting_for_input":
                    err.print(f"[yellow]waiting for input[/yellow]: answer with "
                              f"`ferry answer {esc(run_id)}`")
        return status
