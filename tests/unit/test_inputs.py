"""What the API accepts: strict bodies, and which repos, registries and ticket hosts a Run may name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ferry.inputs import image_problem, repo_problem, ticket_host_problem
from ferry.models.api import RunCreate

REMOTE_OK = ["https://github.com/acme/x.git", "git@github.com:acme/x.git",
             "ssh://git@github.com/acme/x.git", "git://example.com/x.git"]
LOCAL = ["/srv/repo", "file:///srv/repo", "https://127.0.0.1/x", "http://localhost/x",
         "https://10.0.0.1/x", "git@192.168.1.2:x", "https://[::1]/x", "ssh://host.internal/x",
         "https://169.254.169.254/latest"]


@pytest.mark.parametrize("repo", REMOTE_OK)
def test_remote_repos_are_fine(repo: str) -> None:
    assert repo_problem(repo, allow_local=False, resolve=False) is None


@pytest.mark.parametrize("repo", LOCAL)
def test_local_repos_need_consent(repo: str) -> None:
    assert "FERRY_ALLOW_LOCAL_REPOS" in repo_problem(repo, allow_local=False, resolve=False)
    assert repo_problem(repo, allow_local=True, resolve=False) is None


@pytest.mark.parametrize("repo", ["ext::sh -c id", "fd::17", "-uhttps://x", "ftp://x/y", "a\nb",
                                  "./relative", "not a url", "."])
def test_never_repos(repo: str) -> None:
    assert repo_problem(repo, allow_local=True, resolve=False) is not None


def test_images_and_ticket_hosts() -> None:
    assert image_problem("ferry-devbox", False) is None
    assert image_problem("ghcr.io/acme/box:1.2@sha256:" + "a" * 64, False, resolve=False) is None
    assert image_problem("UPPER/case", False) is not None
    assert image_problem("127.0.0.1:5000/box", False) is not None
    assert image_problem("127.0.0.1:5000/box", True) is None
    assert ticket_host_problem("github", "github.com", "github.com", "dev.azure.com") is None
    assert ticket_host_problem("github", "evil.example", "github.com", "") is not None


@pytest.mark.parametrize("extra", [{"reasoning_effort": "high"}, {"title": "\ud800"},
                                   {"max_cost_usd": float("nan")}, {"max_cost_usd": float("inf")},
                                   {"env": {"A": "\udfff"}}, {"env": {"PATH": "/x"}},
                                   {"model": "-x"}, {"artifacts": ["a\x00b"]}])
def test_run_bodies_are_strict(extra: dict) -> None:
    with pytest.raises(ValidationError) as e:
        RunCreate.model_validate({"instructions": "echo", **extra})
    assert e.value.errors()[0]["loc"][0] == next(iter(extra))


def test_host_git_runs_with_an_environment_of_its_own(monkeypatch) -> None:
    from pathlib import Path

    from activities.workspace.host_git import HostGit

    monkeypatch.setenv("FERRY_GITHUB_TOKEN", "ghp-worker-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-worker-secret")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.fsmonitor=touch /tmp/x'")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")
    from ferry.settings import Settings

    git = HostGit(Settings(git_token="tok-123456", git_token_hosts="github.com"), Path("/r"), [])
    env = git._env(git.remote_protocols(), remote=True)
    values = "\n".join(env.values())
    assert "ghp-worker-secret" not in values and "sk-worker-secret" not in values
    assert not {"GIT_CONFIG_PARAMETERS", "LD_PRELOAD", "FERRY_GITHUB_TOKEN"} & set(env)
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    config = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"]
              for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert config["core.hooksPath"] == "/dev/null" and config["http.followRedirects"] == "false"
    headers = [k for k in config if k.endswith(".extraHeader")]
    assert headers == ["http.https://github.com/.extraHeader"]  # the token, for that host only
    local = git._env("", remote=False)  # bundles and diffs: no token at all
    assert "tok-123456" not in "\n".join(local.values()) and local["GIT_ALLOW_PROTOCOL"] == ""


def test_fresh_is_a_real_boolean() -> None:
    import pytest
    from pydantic import ValidationError

    from ferry.models.api import RunCreate

    with pytest.raises(ValidationError):
        RunCreate.model_validate({"from_run": "abc", "fresh": "yes"})
    assert RunCreate.model_validate({"from_run": "abc", "fresh": True}).fresh is True
