"""FERRY_ENGINE_ENV passes provider settings into a turn's environment (env.json, read by
every command of the turn): never a credential. Names that are credentials (engine keys,
Ferry's own settings, anything named like a key, token or secret) and any value the
worker knows as a secret are left out. Found by an attacker review.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from activities.secrets import secret_values
from activities.turns import TurnActivities
from ferry.settings import Settings

GIT_TOKEN = "ghp_host-git-token-0123456789abcdef"
AWS_SECRET = "aws-secret-access-key-0123456789abcdef"


def test_engine_env_never_carries_a_secret_into_the_devbox(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path) -> None:
    monkeypatch.setenv("FERRY_GIT_TOKEN", GIT_TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("CLAUDE_CODE_USE_BEDROCK", "1")
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n")
    settings = Settings(git_token=GIT_TOKEN, secrets_file=secrets_file,
                        engine_env="CLAUDE_CODE_USE_BEDROCK,AWS_SECRET_ACCESS_KEY,FERRY_GIT_TOKEN")
    activities = SimpleNamespace(settings=settings)
    inp = SimpleNamespace(devbox=SimpleNamespace(network="gateway"))
    grant = SimpleNamespace(token="turn-token")
    # What start_turn writes to ferry/in/turns/<t>/env.json and the runner gives the agent.
    env = TurnActivities._gateway_env(activities, inp, None, grant)  # type: ignore[arg-type]
    known_secrets = set(secret_values(settings))
    assert GIT_TOKEN in known_secrets and AWS_SECRET in known_secrets  # Ferry knows they are secrets
    leaked = sorted(name for name, value in env.items() if value in known_secrets)
    assert env.get("CLAUDE_CODE_USE_BEDROCK") == "1"  # the non-secret setting still passes
    assert leaked == [], f"secrets written into the DevBox's env.json: {leaked}"
