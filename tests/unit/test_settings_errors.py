"""A bad FERRY_* value is one line naming the variable, in every Ferry command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferry.pricing import PriceTableError, load_prices

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(ROOT), **env}, timeout=60)


@pytest.mark.parametrize("module,args", [("ferry.cli", ["ls"]), ("worker.main", []),
                                         ("api.main", [])])
def test_a_bad_setting_is_one_line_naming_the_variable(module: str, args: list[str]) -> None:
    proc = run(module, *args, FERRY_DEVBOX_NETWORK="bogus", FERRY_API_PORT="abc")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "FERRY_DEVBOX_NETWORK: Input should be 'none', 'gateway', 'open' or 'bridge'" \
        in proc.stderr and "FERRY_API_PORT" in proc.stderr


def test_price_tables_are_checked_entry_by_entry() -> None:
    assert load_prices('{"my-model": {"input": 1, "output": 2}}')["my-model"].output == 2
    for bad, message in (
            ('{"claude": {"input": "x", "output": 1}}', "entry 'claude': input: Input should be"),
            ('{"a": {"input": 1, "output": 2, "cache_reed": 9}}', "entry 'a': cache_reed: Extra"),
            ("[1]", "must be a JSON object"),
            ("{oops", "not valid JSON"),
            ("/nonexistent/prices.json", "is neither JSON nor a file")):
        with pytest.raises(PriceTableError, match=message):
            load_prices(bad)
    proc = run("ferry.cli", "ls", FERRY_MODEL_PRICES='{"claude": {"input": "x", "output": 1}}')
    assert proc.returncode == 2 and "FERRY_MODEL_PRICES: entry 'claude'" in proc.stderr
