"""Repos, tickets and review: real clones of local bare repos, a GitHub stand-in on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import containers_of
from tests.integration.fake_github import FakeGitHub
from tests.integration.harness import FerryStack, free_port


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                                          "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout


def make_origin(tmp: Path) -> Path:
    """A bare origin with `main` (README, app.py) and `dev` (plus dev.txt)."""
    work, bare = tmp / "seed", tmp / "origin.git"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# Widgets\n")
    (work / "app.py").write_text("a = 1\nb = 2\nc = 3\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "initial")
    git(work, "checkout", "-qb", "dev")
    (work / "dev.txt").write_text("dev only\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "dev work")
    git(work, "checkout", "-q", "main")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    gh = FakeGitHub(free_port()).start()
    yield gh
    gh.stop()


@pytest.fixture(scope="module")
def rstack(tmp_path_factory, github, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("repos"), env={
        "FERRY_GITHUB_API_URL": github.url, "FERRY_GITHUB_TOKEN": "ghp-test-token-123456"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


SCRIPT = ("test -f dev.txt && echo on-dev\n"
          "sed -i 's/b = 2/b = 20/' app.py\n"
          "printf 'one\\ntwo\\n' > new.txt\n"
          "mkdir -p .ferry/artifacts/reports/deep && echo report > .ferry/artifacts/reports/deep/r.txt\n"
          "git status --short")


def test_run_on_a_clone_diffs_changed_and_new_files(rstack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = rstack.create_run(SCRIPT, repo=str(origin), branch="dev", artifacts=["new.txt"])
    done = rstack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["workspace"]["base_branch"] == "dev"
    assert done["workspace"]["work_branch"] == f"ferry/{run['id']}"
    execs = [s["payload"] for s in rstack.timeline(run["id"]) if s["kind"] == "exec"]
    assert execs[0]["output_excerpt"] == "on-dev\n"  # a real clone, on the requested branch
    with rstack.client() as c:
        files = c.get(f"/runs/{run['id']}/diff", params={"format": "json"}).json()["files"]
        text = c.get(f"/runs/{run['id']}/diff").text
        listed = c.get(f"/runs/{run['id']}/artifacts").json()["artifacts"]
        nested = c.get(f"/runs/{run['id']}/artifacts/attempts/1/artifacts/reports/deep/r.txt")
        for bad in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "attempts/..%2F..%2F..%2Fx"):
            assert c.get(f"/runs/{run['id']}/artifacts/{bad}").status_code == 400, bad
    by_path = {f["path"]: f for f in files}
    assert set(by_path) == {"app.py", "new.txt"}  # .ferry/ is Ferry's, not part of the diff
    assert (by_path["app.py"]["added"], by_path["app.py"]["removed"]) == (1, 1)
    assert by_path["app.py"]["status"] == "modified"
    assert (by_path["new.txt"]["added"], by_path["new.txt"]["status"]) == (2, "added")
    assert "+b = 20" in text and "+one" in text and "-b = 2" in text
    assert nested.status_code == 200 and nested.text == "report\n"
    paths = {a["path"]: a for a in listed}
    assert paths["attempts/1/artifacts/new.txt"]["size"] == 8
    assert paths["attempts/1/diff.patch"]["content_type"] == "text/x-diff" or \
        paths["attempts/1/diff.patch"]["content_type"]


def test_github_issue_resolves_into_workspace_and_prompt(rstack: FerryStack, github: FakeGitHub,
                                                        tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    github.add_issue("acme", "widgets", 7, "Fix the widget count", "Counts are off by one.",
                     ["Seen on dev too."], str(origin), "main")
    run = rstack.create_run("cat .ferry/ticket.md\nls", engine="script",
                            ticket_url="https://github.com/acme/widgets/issues/7")
    done = rstack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["title"] == "Fix the widget count" and done["ticket_title"] == "Fix the widget count"
    assert done["workspace"]["base_branch"] == "main"
    steps = rstack.timeline(run["id"])
    ticket = next(s["payload"] for s in steps if s["kind"] == "ticket")
    assert ticket["title"] == "Fix the widget count" and ticket["comments"] == 1
    execs = [s["payload"] for s in steps if s["kind"] == "exec"]
    assert "# Fix the widget count" in execs[0]["output_excerpt"]
    assert "Counts are off by one." in execs[0]["output_excerpt"]
    assert "Seen on dev too." in execs[0]["output_excerpt"]
    assert "app.py" in execs[1]["output_excerpt"]


def test_bad_and_missing_tickets(rstack: FerryStack) -> None:
    with rstack.client() as c:
        r = c.post("/runs", json={"instructions": "x", "ticket_url": "https://github.com/acme"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "ticket_url"
    run = rstack.create_run("echo x", ticket_url="https://github.com/acme/widgets/issues/404")
    done = rstack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert "HTTP 404" in done["error"] and "/repos/acme/widgets/issues/404" in done["error"]
    assert not any(s["kind"] == "launch_devbox" for s in rstack.timeline(run["id"]))


def test_accept_pushes_and_opens_one_pull_request(rstack: FerryStack, github: FakeGitHub,
                                                  tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    github.add_issue("acme", "gadgets", 9, "Add a gadget", "Please.", [], str(origin), "main")
    run = rstack.create_run("echo gadget > gadget.txt", keep_alive="60s",
                            ticket_url="https://github.com/acme/gadgets/issues/9")
    rstack.wait_status(run["id"], {"completed"})
    branch = f"ferry/{run['id']}"
    with rstack.client() as c:
        r = c.post(f"/runs/{run['id']}/review", json={"action": "accept"})
        assert r.status_code == 200, r.text
        accepted = r.json()["accepted"]
        again = c.post(f"/runs/{run['id']}/review", json={"action": "accept"})
        assert again.status_code == 200
    assert accepted["pushed"] and accepted["branch"] == branch
    assert accepted["pr_url"] == "https://github.example/acme/gadgets/pull/1"
    assert again.json()["accepted"] == accepted
    assert len([p for p in github.pulls if p["_repo"] == ("acme", "gadgets")]) == 1
    pr = github.pulls[-1]
    assert pr["head"]["ref"] == branch and pr["base"]["ref"] == "main"
    assert "https://github.com/acme/gadgets/issues/9" in pr["body"]
    # The origin really has the branch with the change.
    assert git(origin, "rev-parse", branch).strip() == accepted["commit"]
    assert git(origin, "show", f"{branch}:gadget.txt") == "gadget\n"
    assert "Add a gadget" in git(origin, "log", "-1", "--format=%B", branch)
    review_steps = [s["payload"] for s in rstack.timeline(run["id"]) if s["kind"] == "review"]
    assert [p["action"] for p in review_steps].count("accepted") == 1


def test_request_changes_follows_up_in_the_same_container(rstack: FerryStack, docker_client,
                                                          tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = rstack.create_run("echo first > first.txt", repo=str(origin), keep_alive="60s")
    done = rstack.wait_status(run["id"], {"completed"})
    container = done["devboxes"][0]["container_id"]
    with rstack.client() as c:
        r = c.post(f"/runs/{run['id']}/review",
                   json={"action": "request_changes", "message": "echo second > second.txt"})
        assert r.status_code == 200, r.text
    rstack.wait_until(lambda: rstack.get_run(run["id"])["turn_usage"] is not None and
                      len([s for s in rstack.timeline(run["id"]) if s["kind"] == "report_result"])
                      == 2, 30, "the follow-up to finish")
    again = rstack.get_run(run["id"])
    assert again["status"] == "completed" and again["devboxes"][0]["container_id"] == container
    assert [c.id for c in containers_of(docker_client, run["id"])] == [container]
    with rstack.client() as c:
        files = c.get(f"/runs/{run['id']}/diff", params={"format": "json"}).json()["files"]
    assert {f["path"] for f in files} == {"first.txt", "second.txt"}


def test_reject_resets_and_runs_attempt_two(rstack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = rstack.create_run("echo bad > bad.txt", repo=str(origin), keep_alive="60s")
    rstack.wait_status(run["id"], {"completed"})
    with rstack.client() as c:
        r = c.post(f"/runs/{run['id']}/review",
                   json={"action": "reject", "message": "test ! -e bad.txt && echo good > good.txt"})
        assert r.status_code == 200, r.text
    rstack.wait_until(lambda: rstack.get_run(run["id"])["attempt"] == 2 and
                      rstack.get_run(run["id"])["status"] == "completed", 30, "attempt 2")
    with rstack.client() as c:
        one = c.get(f"/runs/{run['id']}/diff", params={"attempt": 1, "format": "json"}).json()
        two = c.get(f"/runs/{run['id']}/diff", params={"format": "json"}).json()
        missing = c.get(f"/runs/{run['id']}/diff", params={"attempt": 5})
    assert [f["path"] for f in one["files"]] == ["bad.txt"]
    assert two["attempt"] == 2 and [f["path"] for f in two["files"]] == ["good.txt"]
    assert rstack.get_run(run["id"])["summary"] == "Ran 1 command; all succeeded."  # this attempt's
    assert two["attempts"] == [1, 2] and missing.status_code == 404


def test_review_needs_a_live_devbox(rstack: FerryStack) -> None:
    run = rstack.create_run("echo no-keep-alive")  # the stack default keep-alive is 0
    rstack.wait_status(run["id"], {"completed"})
    with rstack.client() as c:
        def refused() -> bool:
            r = c.post(f"/runs/{run['id']}/review", json={"action": "accept"})
            return r.status_code == 409
        rstack.wait_until(refused, 10, "409")
        r = c.post(f"/runs/{run['id']}/review", json={"action": "merge"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "action"


def test_cli_diff_artifacts_and_review(rstack: FerryStack, tmp_path: Path) -> None:
    import os
    import sys

    from tests.integration.harness import ROOT

    origin = make_origin(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update({"FERRY_URL": rstack.api_url, "PYTHONPATH": str(ROOT)})
    ferry = [sys.executable, "-m", "ferry.cli"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*ferry, *args], env=env, capture_output=True, text=True, timeout=60)

    run = rstack.create_run("echo hi > hi.txt\nmkdir -p .ferry/artifacts && echo a > .ferry/artifacts/a.txt",
                            repo=str(origin), keep_alive="60s")
    rstack.wait_status(run["id"], {"completed"})
    stat = cli("diff", run["id"], "--stat")
    assert stat.returncode == 0 and "hi.txt  +1 -0 added" in stat.stdout
    assert "attempt 1 of 1" in stat.stdout
    assert "+hi" in cli("diff", run["id"]).stdout
    listing = cli("artifacts", run["id"])
    assert "attempts/1/artifacts/a.txt" in listing.stdout
    got = cli("artifacts", run["id"], "--get", "attempts/1/artifacts/a.txt")
    assert got.stdout == "a\n"
    bad = cli("artifacts", run["id"], "--get", "../../etc/passwd")
    assert bad.returncode == 1 and "HTTP 400" in bad.stderr
    acc = cli("accept", run["id"])
    assert acc.returncode == 0 and f"pushed ferry/{run['id']}" in acc.stdout
    assert git(origin, "show", f"ferry/{run['id']}:hi.txt") == "hi\n"


def test_the_agents_own_commits_are_pushed_with_the_rest(rstack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = rstack.create_run("echo a > a.txt && git add a.txt && git commit -qm 'agent commit'\n"
                            "echo b > b.txt", repo=str(origin), keep_alive="60s")
    done = rstack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done  # git has an identity in the DevBox
    with rstack.client() as c:
        r = c.post(f"/runs/{run['id']}/review", json={"action": "accept"})
        assert r.status_code == 200, r.text
    branch = f"ferry/{run['id']}"
    log = git(origin, "log", "--format=%an|%s", branch).splitlines()
    assert log[0].startswith("Ferry|") and log[1] == "Ferry agent|agent commit"
    assert git(origin, "show", f"{branch}:b.txt") == "b\n"


def test_from_run_continues_from_the_last_checkpoint_of_a_removed_devbox(
        rstack: FerryStack, tmp_path: Path, docker_client) -> None:
    origin = make_origin(tmp_path)
    first = rstack.create_run(
        "sed -i 's/b = 2/b = 20/' app.py\n"
        "printf 'one\\ntwo\\n' > new.txt\n"
        "rm README.md\n"
        "echo kept > committed.txt && git add committed.txt && git commit -qm 'agent commit'\n"
        "echo scratch > untracked.txt",
        repo=str(origin), keep_alive="0s", mode="autonomous", target=rstack.settings.worker_host)
    done = rstack.wait_status(first["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    rstack.wait_until(lambda: containers_of(docker_client, first["id"]) == [], 20, "removal")
    with rstack.client() as c:  # the checkpoint is Ferry's, not one of the Run's artifacts
        listed = c.get(f"/runs/{first['id']}/artifacts").json()["artifacts"]
    assert not [a for a in listed if a["path"].startswith("checkpoint/")]
    # The branch moves on meanwhile: the continuation keeps the first Run's base.
    seed = tmp_path / "upstream"
    subprocess.run(["git", "clone", "-q", str(origin), str(seed)], check=True)
    (seed / "upstream.txt").write_text("later\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "upstream moves")
    git(seed, "push", "-q", "origin", "main")

    check = ("git log --format=%s -n 2\n"
             "git status --short\n"
             "cat app.py new.txt committed.txt untracked.txt\n"
             "test ! -e README.md && test ! -e upstream.txt && echo as-left\n"
             "echo three >> new.txt")
    # Through the CLI, as a person continues: the copied Run's settings hold unless given.
    started = rstack.cli("run", "--from-run", first["id"], check)
    assert started.returncode == 0, started.stderr
    second = {"id": started.stdout.split()[1]}
    done = rstack.wait_status(second["id"], {"completed", "failed"})
    assert done["mode"] == "autonomous" and done["engine"] == "script"
    shown = rstack.cli("show", second["id"])
    assert f"from run  {first['id']}; workspace restored from its checkpoint" in shown.stdout
    assert done["status"] == "completed", (done["error"], rstack.timeline(second["id"]))
    assert done["workspace"]["restored_from"] == first["id"]
    assert done["workspace"]["base_commit"] == rstack.get_run(first["id"])["workspace"]["base_commit"]
    out = [s["payload"]["output_excerpt"] for s in rstack.timeline(second["id"]) if s["kind"] == "exec"]
    assert out[0] == "agent commit\ninitial\n"  # the agent's own commit is a commit again
    assert sorted(out[1].splitlines()) == [" D README.md", " M app.py", "?? new.txt",
                                           "?? untracked.txt"]
    assert out[2] == "a = 1\nb = 20\nc = 3\none\ntwo\nkept\nscratch\n"
    assert out[3] == "as-left\n"
    with rstack.client() as c:
        files = c.get(f"/runs/{second['id']}/diff", params={"format": "json"}).json()["files"]
    assert {f["path"]: f["status"] for f in files} == {
        "README.md": "deleted", "app.py": "modified", "committed.txt": "added",
        "new.txt": "added", "untracked.txt": "added"}

    # --fresh starts from the branch as it is now; so does a Run whose source kept no
    # checkpoint (it had no repository), saying why.
    started = rstack.cli("run", "--from-run", first["id"], "--fresh", "ls")
    assert started.returncode == 0, started.stderr
    fresh = {"id": started.stdout.split()[1]}
    bare = rstack.create_run("echo no repo")
    assert rstack.wait_status(bare["id"], {"completed", "failed"})["status"] == "completed"
    other = rstack.create_run("ls", from_run=bare["id"], repo=str(origin))
    # Another branch than the checkpoint's: not restored, and said so.
    dev = rstack.create_run("ls", from_run=first["id"], branch="dev")
    for run in (fresh, other):
        done = rstack.wait_status(run["id"], {"completed", "failed"})
        assert done["status"] == "completed", done["error"]
        listing = [s["payload"]["output_excerpt"] for s in rstack.timeline(run["id"])
                   if s["kind"] == "exec"][0]
        assert "upstream.txt" in listing and "new.txt" not in listing
        assert done["workspace"]["restored_from"] is None
    assert rstack.get_run(fresh["id"])["workspace"]["restore_note"] is None
    assert rstack.get_run(other["id"])["workspace"]["restore_note"] == \
        f"Run {bare['id']} saved no workspace checkpoint"
    # The copy is not pinned to the host the source Run merely ran on (it may be gone).
    assert rstack.get_run(other["id"])["target_requested"] is None
    done = rstack.wait_status(dev["id"], {"completed", "failed"})
    assert done["status"] == "completed", done["error"]
    assert done["workspace"]["restored_from"] is None
    assert done["workspace"]["restore_note"] == \
        f"Run {first['id']}'s checkpoint is of branch 'main', not 'dev'"
    assert "dev.txt" in [s["payload"]["output_excerpt"] for s in rstack.timeline(dev["id"])
                         if s["kind"] == "exec"][0]
    with rstack.client() as c:
        r = c.post("/runs", json={"instructions": "ls", "fresh": True})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "fresh"


def test_a_pause_that_hibernates_saves_a_checkpoint_first(rstack: FerryStack, tmp_path: Path,
                                                          docker_client) -> None:
    """A paused Run's hibernated DevBox may be removed before the answer comes: the Run's
    work up to the pause is saved first, and a Run started from it continues from there."""
    origin = make_origin(tmp_path)
    paused = rstack.create_run("echo before-pause > paused.txt\n"
                               'ferry-ask "Go on?" --id go --options yes,no',
                               repo=str(origin), idle_timeout="1s")
    rstack.wait_status(paused["id"], {"waiting_for_input"})
    rstack.wait_until(lambda: any(s["kind"] == "message" and "hibernated" in s["payload"]["text"]
                                  for s in rstack.timeline(paused["id"])), 30, "hibernation")
    # The DevBox is lost while the Run waits (removed outside Ferry); the person moves on.
    for c in containers_of(docker_client, paused["id"]):
        c.remove(force=True)
    with rstack.client() as c:
        assert c.post(f"/runs/{paused['id']}/cancel").status_code == 202
    follow = rstack.create_run("cat paused.txt && git status --short", from_run=paused["id"])
    done = rstack.wait_status(follow["id"], {"completed", "failed"})
    assert done["status"] == "completed", done["error"]
    assert done["workspace"]["restored_from"] == paused["id"]
    out = [s["payload"]["output_excerpt"] for s in rstack.timeline(follow["id"]) if s["kind"] == "exec"]
    assert out == ["before-pause\n?? paused.txt\n"]
