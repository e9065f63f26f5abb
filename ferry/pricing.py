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

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, ValidationError

SHAPE = 'a JSON object such as {"my-model": {"input": 3, "output": 15}} (USD per million tokens)'


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt `cache_reed` is an error

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
    """The default table with the setting's entries on top. Errors name the entry."""
    table = dict(DEFAULT_PRICES)
    if not setting:
        return table
    text = setting
    if not setting.lstrip().startswith(("{", "[")):
        path = Path(setting).expanduser()
        if not path.is_file():
            raise PriceTableError(f"{setting!r} is neither JSON nor a file: give {SHAPE}, "
                                  "or the path of a file holding one")
        text = path.read_text()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise PriceTableError(f"not valid JSON ({e.msg} at line {e.lineno} column "
                              f"{e.colno}): give {SHAPE}") from e
    if not isinstance(raw, dict):
        raise PriceTableError(f"must be {SHAPE}")
    for key, value in raw.items():
        try:
            table[str(key)] = Price.model_validate(value)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PriceTableError(f"entry {key!r}: {where + ': ' if where else ''}"
                                  f"{first['msg']}") from e
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
