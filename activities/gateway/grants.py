"""Per-turn grants: the token a DevBox uses for the gateway, and what the turn spent.

A turn gets a fresh random token when it starts; the token is valid until the turn ends
(or its DevBox is removed), so a token read by the agent is worthless afterwards. Each
grant carries the Run's remaining cost budget; the gateway charges every call against
it and refuses calls once it is spent. Grants live in memory and in small JSON files
under the worker's data dir (host-only), so a worker restart keeps them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from ferry.metrics import count_model_call
from ferry.pricing import Price, Usage

log = logging.getLogger("ferry.gateway")
MAX_CALLS = 500
MAX_DENIALS = 200
TOKEN_PREFIX = "ferry-turn-"


def _now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Call(BaseModel):
    ts: datetime
    provider: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    status: int
    billed: bool = True


class Denial(BaseModel):
    ts: datetime
    host: str
    port: int


class Grant(BaseModel):
    run_id: str
    turn_id: str
    token_sha256: str
    # Kept (host-only, 0700) so a later slice can start a runner that never started.
    token: str
    opened_at: datetime
    max_cost_usd: float | None = None
    spent_before_usd: float = 0.0
    allow: list[str] = Field(default_factory=list)
    # The credentials this turn's calls may be paid with, in order (its engine's, by
    # provider); none: the gateway pays for nothing (the egress proxy still serves).
    credentials: list[str] | None = None
    # Set when the turn ends: calls still streaming are cut at their next chunk.
    closed: bool = Field(default=False, exclude=True)
    # Set when the turn is ending: no new call starts; the ones in flight may finish.
    ending: bool = Field(default=False, exclude=True)
    calls: list[Call] = Field(default_factory=list)
    calls_total: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    exhausted: str | None = None
    denials: list[Denial] = Field(default_factory=list)
    denials_reported: int = 0

    def budget_left(self) -> float | None:
        if self.max_cost_usd is None:
            return None
        return self.max_cost_usd - self.spent_before_usd - self.cost_usd


class GrantBook:
    def __init__(self, directory: Path, prices: dict[str, Price]) -> None:
        self.dir = directory
        self.prices = prices
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.by_run: dict[str, Grant] = {}
        self.by_token: dict[str, str] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.inflight: dict[str, int] = {}
        self._ended: dict[str, asyncio.Event] = {}
        # What calls cost after their turn had ended: charged to the Run's next turn.
        self.late_usd: dict[str, float] = {}
        for path in self.dir.glob("*.json"):
            try:
                grant = Grant.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as e:
                log.warning("dropping unreadable grant %s: %s", path.name, e)
                path.unlink(missing_ok=True)
                continue
            self._index(grant)

    def _index(self, grant: Grant) -> None:
        old = self.by_run.get(grant.run_id)
        if old is not None:
            self.by_token.pop(old.token_sha256, None)
        self.by_run[grant.run_id] = grant
        self.by_token[grant.token_sha256] = grant.run_id

    def _path(self, run_id: str) -> Path:
        return self.dir / f"{hashlib.sha256(run_id.encode()).hexdigest()[:32]}.json"

    def _save(self, grant: Grant) -> None:
        path = self._path(grant.run_id)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(grant.model_dump_json())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ turns

    def open(self, run_id: str, turn_id: str, *, max_cost_usd: float | None,
             spent_usd: float, allow: list[str], credentials: list[str] | None = None) -> Grant:
        """A new grant with a fresh token for this turn (any earlier token of the Run stops
        working)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        spent_usd += self.late_usd.pop(run_id, 0.0)
        grant = Grant(run_id=run_id, turn_id=turn_id, token_sha256=token_hash(token), token=token,
                      opened_at=_now(), max_cost_usd=max_cost_usd, spent_before_usd=spent_usd,
                      allow=allow, credentials=credentials)
        self._index(grant)
        self._save(grant)
        return grant

    def current(self, run_id: str, turn_id: str) -> Grant | None:
        grant = self.by_run.get(run_id)
        return grant if grant is not None and grant.turn_id == turn_id else None

    def close(self, run_id: str, turn_id: str | None = None) -> Grant | None:
        """End the grant (of this turn, or whatever the Run holds); returns it."""
        grant = self.by_run.get(run_id)
        if grant is None or (turn_id is not None and grant.turn_id != turn_id):
            return None
        del self.by_run[run_id]
        self.by_token.pop(grant.token_sha256, None)
        self._path(run_id).unlink(missing_ok=True)
        self.locks.pop(run_id, None)  # a call still holding it releases its own
        grant.closed = True
        ended = self._ended.pop(grant.token_sha256, None)
        if ended is not None:
            ended.set()
        return grant

    def ended(self, grant: Grant) -> asyncio.Event:
        """Set when the grant's turn ends: a call still waiting for its answer is cut off."""
        event = self._ended.setdefault(grant.token_sha256, asyncio.Event())
        if grant.closed:
            event.set()
        return event

    def begin_call(self, grant: Grant) -> None:
        self.inflight[grant.run_id] = self.inflight.get(grant.run_id, 0) + 1

    def end_call(self, grant: Grant) -> None:
        left = self.inflight.get(grant.run_id, 1) - 1
        if left > 0:
            self.inflight[grant.run_id] = left
        else:
            self.inflight.pop(grant.run_id, None)

    def calls_in_flight(self, run_id: str) -> int:
        return self.inflight.get(run_id, 0)

    def lock(self, grant: Grant) -> asyncio.Lock:
        """The Run's one-call-at-a-time lock (used while it has a budget)."""
        return self.locks.setdefault(grant.run_id, asyncio.Lock())

    # ------------------------------------------------------------------ calls

    def lookup(self, token: str | None) -> Grant | None:
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        run_id = self.by_token.get(token_hash(token))
        return self.by_run.get(run_id) if run_id is not None else None

    def refusal(self, grant: Grant) -> str | None:
        if grant.ending or grant.closed:
            return "the turn this token belongs to has ended"
        if grant.exhausted:
            return grant.exhausted
        left = grant.budget_left()
        if left is not None and left <= 0:
            grant.exhausted = self._budget_reason(grant)
            self._save(grant)
            return grant.exhausted
        return None

    @staticmethod
    def _budget_reason(grant: Grant) -> str:
        spent = grant.spent_before_usd + grant.cost_usd
        return f"budget max_cost_usd reached: spent ${spent:.4f} of ${grant.max_cost_usd:.4f}"

    def charge(self, grant: Grant, provider: str, usage: Usage, status: int,
               billed: bool = True) -> float:
        """Record a call. `billed`: paid per call (an API key); a subscription's calls are
        counted in tokens, at no dollar cost."""
        cost = usage.cost(self.prices) if status < 400 and billed else 0.0
        if grant.closed:  # ended with its turn: the Run's next turn pays for it
            self.late_usd[grant.run_id] = self.late_usd.get(grant.run_id, 0.0) + cost
        grant.calls_total += 1
        grant.cost_usd += cost
        count_model_call(provider, usage, cost, status, self.prices)
        grant.input_tokens += usage.input + usage.cache_read + usage.cache_write
        grant.output_tokens += usage.output
        if len(grant.calls) < MAX_CALLS:
            grant.calls.append(Call(
                ts=_now(), provider=provider, model=usage.model, input_tokens=usage.input,
                output_tokens=usage.output, cache_read_tokens=usage.cache_read,
                cache_write_tokens=usage.cache_write, cost_usd=cost, status=status,
                billed=billed))
        left = grant.budget_left()
        if left is not None and left <= 0 and grant.exhausted is None:
            grant.exhausted = self._budget_reason(grant)
        if self.by_run.get(grant.run_id) is grant:
            self._save(grant)
        return cost

    def deny(self, grant: Grant, host: str, port: int) -> None:
        if len(grant.denials) < MAX_DENIALS:
            grant.denials.append(Denial(ts=_now(), host=host[:255], port=port))
            self._save(grant)

    def new_denials(self, grant: Grant) -> list[Denial]:
        fresh = grant.denials[grant.denials_reported:]
        if fresh:
            grant.denials_reported = len(grant.denials)
            self._save(grant)
        return fresh
