"""The DevBox key is never seen half-written: two first callers agree on one whole key, and a
damaged key file stops the turn instead of deriving turn keys from it (an empty HMAC key
would make every turn key computable by the DevBox). Found by an attacker review.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from activities.devbox import base
from activities.devbox.local_backend import LocalBackend
from ferry.settings import Settings


def test_concurrent_first_box_key_calls_agree_and_are_never_empty(tmp_path: Path, monkeypatch) -> None:
    real = base.new_key

    def slow_key() -> str:
        time.sleep(0.3)
        return real()

    monkeypatch.setattr(base, "new_key", slow_key)
    backend = LocalBackend(Settings(data_dir=tmp_path))
    got: dict[str, str] = {}

    def call(name: str) -> None:
        got[name] = backend.box_key("run1")

    first = threading.Thread(target=call, args=("first",))
    first.start()
    time.sleep(0.05)
    call("second")
    first.join()
    assert len(got["second"]) == 64 and got["second"] == got["first"], got


def test_a_damaged_box_key_is_refused(tmp_path: Path) -> None:
    import pytest

    backend = LocalBackend(Settings(data_dir=tmp_path))
    key = backend.box_key("run2")
    path = backend.layout("run2").keys / base.BOX_KEY
    path.write_text("")
    with pytest.raises(RuntimeError, match="damaged"):
        backend.turn_key("run2", "t1")
    path.write_text(key)
    assert backend.box_key("run2") == key
