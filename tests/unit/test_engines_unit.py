"""Engine adapters and secrets, without any service: command lines, parsing, redaction."""

from __future__ import annotations

import json
from pathlib import Path

from activities.engines.base import EngineTurn
from activities.engines.claude_code import ClaudeCode, ClaudeCodeApi, ClaudeCodeSubscription
from activities.engines.codex import Codex
from activities.secrets import load_secrets, redact
from ferry.settings import Settings


def test_claude_command_and_resume() -> None:
    argv = ClaudeCode().command(EngineTurn(prompt="do it", model="opus", max_turns=5))
    assert argv[:2] == ["claude", "-p"] and argv[-2:] == ["--", "do it"]
    assert "--verbose" in argv and argv[argv.index("--output-format") + 1] == "stream-json"
    assert argv[argv.index("--max-turns") + 1] == "5" and "--resume" not in argv
    again = ClaudeCode().command(EngineTurn(prompt="next", session_id="s1"))
    assert again[again.index("--resume") + 1] == "s1"
    assert ClaudeCode().command(EngineTurn(prompt="p"))[5:7] == ["--permission-mode",
                                                                 "bypassPermissions"]
    # Read-only planning is an option of every Claude Code engine, not an engine.
    for engine in (ClaudeCode(), ClaudeCodeSubscription(), ClaudeCodeApi()):
        plan = engine.command(EngineTurn(prompt="p", permission_mode="plan"))
        assert plan[plan.index("--permission-mode") + 1] == "plan"
    # A prompt that looks like a flag, or a session id that is not a plain token, is data.
    tricky = ClaudeCode().command(EngineTurn(prompt="--model=evil", session_id="--debug x"))
    assert tricky[-2:] == ["--", "--model=evil"] and "--resume" not in tricky


def test_codex_resume_has_no_sandbox_flag() -> None:
    first = Codex().command(EngineTurn(prompt="p", effort="high", model="gpt-5"))
    assert "--sandbox" in first and 'model_reasoning_effort="high"' in first
    resumed = Codex().command(EngineTurn(prompt="p2", session_id="t-1"))
    assert "--sandbox" not in resumed
    assert resumed[resumed.index("resume") + 1] == "t-1" and resumed[-1] == "p2"
    assert 'sandbox_mode="danger-full-access"' in resumed


def test_claude_parser_pairs_tools_and_classifies_is_error() -> None:
    p = ClaudeCode().parser()
    p.feed_line(json.dumps({"type": "system", "subtype": "init", "session_id": "s9"}))
    assert p.feed_line(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]}})) == []
    steps = p.feed_line(json.dumps({"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a"}]}]}}))
    assert steps[0]["kind"] == "tool" and steps[0]["payload"]["name"] == "Bash"
    assert steps[0]["payload"]["output_excerpt"] == "a"
    p.feed_line(json.dumps({"type": "result", "subtype": "success", "is_error": True,
                            "result": "API Error", "session_id": "s9"}))
    turn, _ = p.finish(0, "")
    assert turn.ok is False and turn.session_id == "s9" and "API Error" in turn.error


def test_unknown_and_malformed_lines_become_raw_steps_and_known_notices_stay_quiet() -> None:
    for parser in (ClaudeCode().parser(), Codex().parser()):
        whys = [s["payload"]["why"] for line in ("{oops", "[1, 2]", json.dumps({"type": "hologram"}))
                for s in parser.feed_line(line)]
        assert whys == ["not JSON", "not a JSON object", "unknown event type 'hologram'"]
    claude = ClaudeCode().parser()
    for quiet in ({"type": "rate_limit_event"}, {"type": "system", "subtype": "thinking_tokens"},
                  {"type": "system", "subtype": "hook_started"}):
        assert claude.feed_line(json.dumps(quiet)) == []
    block = claude.feed_line(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "hologram", "data": 1}]}}))
    assert block[0]["kind"] == "raw" and "unknown content block 'hologram'" in block[0]["payload"]["why"]


def test_missing_terminal_event_is_a_failure() -> None:
    p = Codex().parser()
    p.feed_line(json.dumps({"type": "thread.started", "thread_id": "x"}))
    turn, _ = p.finish(1, "boom")
    assert not turn.ok and "without a final event" in turn.error and "boom" in turn.error


def test_codex_retries_are_shown_but_only_the_last_one_without_a_final_event_fails() -> None:
    p = Codex().parser()
    p.feed_line(json.dumps({"type": "thread.started", "thread_id": "x"}))
    shown = p.feed_line(json.dumps({"type": "error", "message": "Reconnecting... 2/5 (HTTP 502)"}))
    assert shown[0]["kind"] == "message" and "Reconnecting" in shown[0]["payload"]["text"]
    p.feed_line(json.dumps({"type": "turn.completed", "usage": {"input_tokens": 3}}))
    turn, _ = p.finish(0, "")
    assert turn.ok and turn.error is None
    gave_up = Codex().parser()
    gave_up.feed_line(json.dumps({"type": "error", "message": "Reconnecting... 5/5 (HTTP 502)"}))
    turn, _ = gave_up.finish(1, "")
    assert not turn.ok and turn.error == "codex error: Reconnecting... 5/5 (HTTP 502)"


def test_codex_through_the_gateway_uses_a_provider_of_its_own() -> None:
    argv = Codex().command(EngineTurn(prompt="p", gateway="http://127.0.0.1:4180"))
    config = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    provider = next(c for c in config if c.startswith("model_providers.ferry="))
    assert 'base_url="http://127.0.0.1:4180/openai/v1"' in provider
    assert "supports_websockets=false" in provider and 'env_key="CODEX_API_KEY"' in provider
    assert 'model_provider="ferry"' in config


def test_secrets_file_and_redaction(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "secrets"
    f.write_text("# comment\nANTHROPIC_API_KEY='sk-from-file-123'\nOTHER=x\n")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("CODEX_API_KEY", "codex-env-456")
    found = load_secrets(Settings(secrets_file=f))
    assert found["ANTHROPIC_API_KEY"] == "sk-from-file-123" and found["CODEX_API_KEY"] == "codex-env-456"
    assert redact({"a": ["x sk-from-file-123 y"], "b": 3}, ["sk-from-file-123"]) == {
        "a": ["x [REDACTED] y"], "b": 3}


def test_claude_engines_by_who_pays() -> None:
    from activities.gateway.model_gateway import OAUTH_BETA, credential_headers
    from activities.turns import paid_by

    both = {"ANTHROPIC_API_KEY": "sk-ant-key", "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat-token"}
    assert ClaudeCodeSubscription().name == "claude-code-plan"
    assert ClaudeCodeSubscription().credentials == ("CLAUDE_CODE_OAUTH_TOKEN",)
    assert ClaudeCodeApi().name == "claude-code-api"
    assert ClaudeCodeApi().credentials == ("ANTHROPIC_API_KEY",)
    assert credential_headers("anthropic", both, paid_by("claude-code")) == (
        "ANTHROPIC_API_KEY", {"x-api-key": "sk-ant-key"})  # API key first
    assert credential_headers("anthropic", both, paid_by("claude-code-plan")) == (
        "CLAUDE_CODE_OAUTH_TOKEN",
        {"authorization": "Bearer sk-ant-oat-token", "anthropic-beta": OAUTH_BETA})
    assert credential_headers("anthropic", {"ANTHROPIC_API_KEY": "k"},
                              paid_by("claude-code-plan")) is None  # never the other kind
    # Engines that call no model from the DevBox are paid with nothing, on any provider.
    everything = {**both, "OPENAI_API_KEY": "sk-proj", "CODEX_API_KEY": "sk-codex"}
    for engine in ("script", "openai", "auto"):
        assert paid_by(engine) == []
        for provider in ("anthropic", "openai"):
            assert credential_headers(provider, everything, paid_by(engine)) is None
    # And a Claude engine never pays through the OpenAI key, nor codex through Anthropic's.
    assert credential_headers("openai", everything, paid_by("claude-code")) is None
    assert credential_headers("anthropic", everything, paid_by("codex")) is None
