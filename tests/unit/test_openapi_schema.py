"""The OpenAPI schema documents what the API answers: every field described, every route's
errors declared, typed bodies where there were bare dicts."""

from __future__ import annotations

import warnings

from api.main import create_app
from ferry.settings import Settings


def schema() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a duplicate operation id
        return create_app(Settings()).openapi()


def test_every_public_field_has_a_description() -> None:
    missing = [f"{name}.{prop}" for name, sch in schema()["components"]["schemas"].items()
               for prop, ps in (sch.get("properties") or {}).items() if "description" not in ps]
    assert missing == []


def test_every_route_declares_its_errors_and_a_typed_success() -> None:
    paths = schema()["paths"]
    for path, ops in paths.items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"401", "422"} <= codes or path in ("/healthz", "/metrics"), (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path)
            ok = next(c for c in codes if c.startswith("2"))
            content = op["responses"][ok].get("content")
            if content and "application/json" in content:
                assert content["application/json"]["schema"], (method, path)
                assert content["application/json"]["schema"] != {}, (method, path)
    hook = paths["/hooks/{name}"]["post"]["responses"]
    assert "413" in hook and "$ref" in hook["202"]["content"]["application/json"]["schema"]
    diff = paths["/runs/{run_id}/diff"]["get"]["responses"]["200"]["content"]
    assert set(diff) == {"application/json", "text/plain"}
    assert "$ref" in paths["/runs/{run_id}/artifacts"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
