"""The CLI's HTTP client for Ferry's API (FERRY_URL, FERRY_API_TOKEN), with clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import quote

import httpx

from ferry.cli.output import fail
from ferry.settings import get_settings


class Api:
    def __init__(self) -> None:
        s = get_settings()
        self.url = s.api_url
        headers = {"Authorization": f"Bearer {s.api_token}"} if s.api_token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def request_raw(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The response whatever its status; only an unreachable API is an error."""
        try:
            return self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            fail(f"cannot reach the Ferry API at {self.url} ({e.__class__.__name__}); "
                 "is `ferry up` running, or FERRY_URL set?")

    def request(self, method: str, path: str, flags: dict[str, str] | None = None,
                **kw: Any) -> httpx.Response:
        """The response; an error status ends the command with the API's message (with
        `flags`, body fields are named by the CLI options that set them)."""
        r = self.request_raw(method, path, **kw)
        if r.status_code >= 400:
            fail(error_message(r, flags))
        return r

    def json(self, method: str, path: str, flags: dict[str, str] | None = None,
             **kw: Any) -> Any:
        r = self.request(method, path, flags, **kw)
        try:
            return r.json()
        except ValueError:
            fail(f"the Ferry API at {self.url} answered {method} {path} with HTTP "
                 f"{r.status_code} and no JSON; is FERRY_URL the Ferry API?")

    def sse(self, path: str, params: dict[str, Any] | None = None) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of a server-sent event stream."""
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as r:
                if r.status_code >= 400:
                    r.read()
                    fail(error_message(r))
                event, data = "message", cast(list[str], [])
                for line in r.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
        except httpx.HTTPError as e:
            fail(f"lost the event stream from {self.url}: {e}")


def resolve_run_id(api: Api, given: str) -> str:
    """A Run id from what the user typed: the id itself, or a unique prefix of a recent
    Run's id (as `ferry ls` shows them)."""
    value = given.strip()
    if not value:
        fail("the Run id is empty")
    r = api.request_raw("GET", f"/runs/{quote(value, safe='')}")
    if r.status_code != 404:
        return value
    ids = [run["id"] for run in api.json("GET", "/runs", params={"limit": 500})["runs"]]
    matches = [i for i in ids if i.startswith(value)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        fail(f"{value!r} is the start of {len(matches)} Run ids ({', '.join(matches[:5])}"
             f"{', …' if len(matches) > 5 else ''}): type more of it")
    fail(f"no Run {value!r} (not an id, nor the start of a recent one)")


def error_message(r: httpx.Response, flags: dict[str, str] | None = None) -> str:
    try:
        detail = r.json().get("detail")
    except ValueError:
        return f"HTTP {r.status_code}: {r.text[:300]}"
    if isinstance(detail, list):
        parts = []
        for d in detail:
            where = [str(x) for x in d.get("loc", []) if x != "body"]
            if flags and where and where[-1] in flags:
                where = [flags[where[-1]]]
            loc = ".".join(where)
            parts.append(f"{loc}: {d.get('msg')}" if loc else str(d.get("msg")))
        return f"HTTP {r.status_code}: " + "; ".join(parts)
    return f"HTTP {r.status_code}: {detail}"
