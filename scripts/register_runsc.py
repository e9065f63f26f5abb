"""Register gVisor's runsc with Docker (a `runtimes` entry in /etc/docker/daemon.json).

Keeps whatever else the file holds. runsc runs with its own network off: DevBoxes under
gVisor have no network (Ferry's default for DevBoxes anyway).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

CONFIG = Path("/etc/docker/daemon.json")


def main() -> int:
    runsc = shutil.which("runsc")
    if not runsc:
        print("runsc is not installed", file=sys.stderr)
        return 1
    try:
        config = json.loads(CONFIG.read_text()) if CONFIG.exists() else {}
    except (OSError, ValueError) as e:
        print(f"{CONFIG} is not readable JSON ({e}); not changing it", file=sys.stderr)
        return 1
    runtimes = config.setdefault("runtimes", {})
    if "runsc" in runtimes:
        return 0
    runtimes["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none"]}
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text(json.dumps(config, indent=2) + "\n")
    print(f"registered runsc in {CONFIG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
