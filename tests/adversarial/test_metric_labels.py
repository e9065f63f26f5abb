"""Model names in a DevBox's calls never become metric labels of their own: a DevBox making
calls with thousands of invented model names must not grow the worker's series."""

from __future__ import annotations

from prometheus_client import REGISTRY

from ferry.metrics import count_model_call
from ferry.pricing import Usage
from ferry.settings import Settings


def test_invented_model_names_share_one_label() -> None:
    prices = Settings().price_table
    for i in range(2000):
        count_model_call("anthropic", Usage(model=f"evil-{i}-{'x' * 50}", input=1), 0.0, 200,
                         prices)
    models = {s.labels["model"] for family in REGISTRY.collect()
              if family.name == "ferry_model_tokens" for s in family.samples}
    assert not any(m.startswith("evil-") for m in models)
    assert "other" in models and len(models) < 50
