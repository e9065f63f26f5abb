"""What a model call costs: token counts times a price table (USD per million tokens).

The model APIs report tokens, not money; a provider that does report a cost (some
gateways put `usage.cost` in the response) is believed instead. The table's keys are
model-name prefixes, the longest match wins, and `*` prices any other model so that a
budget always applies. `FERRY_MODEL_PRICES` (a JSON object, or the path of a file
holding one) adds to or overrides the defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, NonNegativeFloat, ValidationError


class Price(BaseModel):
    input: NonNegativeFloat
    output: NonNegativeFloat
    cache_read: NonNegativeFloat | None = None  # default: a tenth of input
    cache_write: NonNegativeFloat | None = None  # default: 1.25 x input


# Published list prices (USD per million tokens), 2026-11.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(input=5, output=25),
    "claude-opus-4-6": Price(input=5, output=25),
    "claude-opus": Price(input=15, output=75),
    "claude-sonnet": Price(input=3, output=15),
    "claude-haiku-4": Price(input=1, output=5),
    "claude-3-5-haiku": Price(input=0.8, output=4),
    "gpt-5-mini": Price(input=0.25, output=2),
    "gpt-5-nano": Price(input=0.05, output=0.4),
    "gpt-5": Price(input=1.25, output=10),
    "gpt-4.1-mini": Price(input=0.4, output=1.6),
    "gpt-4.1": Price(input=2, output=8),
    "gpt-4o-mini": Price(input=0.15, output=0.6),
    "gpt-4o": Price(input=2.5, output=10),
    "o4-mini": Price(input=1.1, output=4.4),
    "*": Price(input=3, output=15),
}


class PriceTableError(ValueError):
    pass


def load_prices(setting: str | None) -> dict[str, Price]:
    """The default table with the setting's entries on top."""
    table = dict(DEFAULT_PRICES)
    if not setting:
        return table
    text = setting
    if not setting.lstrip().startswith("{"):
        path = Path(setting)
        if not path.is_file():
            raise PriceTableError(f"FERRY_MODEL_PRICES: {setting} is neither JSON nor a file")
        text = path.read_text()
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise PriceTableError("FERRY_MODEL_PRICES must be a JSON object")
        table.update({str(k): Price.model_validate(v) for k, v in raw.items()})
    except (json.JSONDecodeError, ValidationError) as e:
        raise PriceTableError(f"FERRY_MODEL_PRICES is not a valid price table: {e}") from e
    return table


def price_of(model: str | None, table: dict[str, Price]) -> Price:
    name = (model or "").lower()
    matches = [k for k in table if k != "*" and name.startswith(k.lower())]
    return table[max(matches, key=len)] if matches else table["*"]


class Usage(BaseModel):
    """Tokens of one call, normalised: `input` excludes cached and cache-written tokens."""

    model: str | None = None
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reported_cost: float | None = None

    def cost(self, table: dict[str, Price]) -> float:
        if self.reported_cost is not None:
            return self.reported_cost
        p = price_of(self.model, table)
        cache_read = p.cache_read if p.cache_read is not None else p.input / 10
        cache_write = p.cache_write if p.cache_write is not None else p.input * 1.25
        return (self.input * p.input + self.output * p.output + self.cache_read * cache_read
                + self.cache_write * cache_write) / 1_000_000
