"""A DevBox's snapshot bundle is checked like a push before the host imports it.

docs/security.md says the host "fetches it into its own repository with `fsck` on (as a
server would a push)" and host_git.BASE_CONFIG sets `fetch.fsckObjects=true`. But git
before 2.46 never fscks objects fetched from a *bundle* (transport.c hands the pack to
`index-pack --fix-thin --stdin` without `--strict`); this worker host has git 2.39.
So a DevBox can slip objects that any fsck-ing server refuses (a `.gitmodules` whose url is
a command-line option: CVE-2018-17456 class; submodule names with `..`: CVE-2018-11235
class; `.git` entries in trees; malformed commits) into the host repository. From there
they travel into the diff people review, into the workspace checkpoint in the artifact
store, into every Run started `from_run` it, and onto the remote on accept.

The host runs `git index-pack --strict` on the bundle's pack first (found by an attacker
review: git 2.39 took these objects from a bundle despite `fetch.fsckObjects`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from activities.workspace.host_git import GitError, HostGit
from ferry.settings import Settings
from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import make_origin

EVIL_URL = "--upload-pack=touch$IFS/tmp/ferry-pwned"
GITMODULES = f'[submodule "x"]\n\tpath = x\n\turl = {EVIL_URL}\n'


def _g(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", *args], cwd=cwd,
                          check=True, capture_output=True, input=input).stdout.decode().strip()


def test_host_import_of_a_devbox_bundle_runs_fsck(tmp_path: Path) -> None:
    """Unit-level: HostGit.fetch_bundle takes a bundle git's fsck would refuse."""
    work = tmp_path / "devbox-workspace"
    work.mkdir()
    _g(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("hi\n")
    _g(work, "add", "-A")
    _g(work, "commit", "-qm", "base")
    base = _g(work, "rev-parse", "HEAD")
    host_repo = tmp_path / "repo.git"  # the host's repository, cloned before the attack
    subprocess.run(["git", "clone", "-q", "--bare", "--no-local", str(work), str(host_repo)],
                   check=True)
    (work / ".gitmodules").write_text(GITMODULES)
    _g(work, "add", ".gitmodules")
    _g(work, "commit", "-qm", "agent commit")
    _g(work, "update-ref", "refs/ferry/snapshot", "HEAD")
    bundle = tmp_path / "snapshot.bundle"
    _g(work, "bundle", "create", str(bundle), "refs/ferry/snapshot", f"^{base}")

    # Control: the same objects fetched from a repository (not a bundle) are refused by
    # the host's own config -- this is what the docs promise for the snapshot too.
    control = HostGit(Settings(), tmp_path / "control.git", [])
    subprocess.run(["git", "init", "-q", "--bare", str(control.repo)], check=True)
    with pytest.raises(GitError, match="gitmodulesUrl"):
        control.run("fetch", "--quiet", str(work), "+refs/ferry/snapshot:refs/x", bundle=True)

    git = HostGit(Settings(), host_repo, [])
    try:
        commit = git.fetch_bundle(bundle, "refs/ferry/snapshot", "refs/ferry/attempt-1")
    except GitError as e:
        assert "gitmodulesUrl" in str(e), e  # refused for what it holds, not by accident
        # An honest bundle on the same base still imports.
        _g(work, "checkout", "-q", "-B", "honest", base)
        (work / "notes.txt").write_text("honest work\n")
        _g(work, "add", "notes.txt")
        _g(work, "commit", "-qm", "honest")
        _g(work, "update-ref", "refs/ferry/snapshot", "HEAD")
        honest = tmp_path / "honest.bundle"
        _g(work, "bundle", "create", str(honest), "refs/ferry/snapshot", f"^{base}")
        assert git.fetch_bundle(honest, "refs/ferry/snapshot", "refs/ferry/attempt-2") == \
            _g(work, "rev-parse", "HEAD")
        return
    blob = subprocess.run(["git", "--git-dir", str(host_repo), "show", f"{commit}:.gitmodules"],
                          capture_output=True, text=True).stdout
    pytest.fail("the host imported a DevBox bundle that fsck refuses (gitmodulesUrl); "
                f"host repo now holds .gitmodules: {blob!r}")


def test_fsck_failing_objects_reach_the_diff_the_checkpoint_and_the_next_run(
        astack: FerryStack, tmp_path: Path) -> None:
    """End to end: an agent (not root) commits a .gitmodules fsck refuses; the host takes
    it into the reviewed diff and the checkpoint; a Run started from it gets it back."""
    origin = make_origin(tmp_path)
    script = "\n".join([
        f"printf '{GITMODULES}' > .gitmodules".replace("\n", "\\n").replace("\t", "\\t"),
        # a gitlink so it looks like a real submodule (any commit id will do)
        "git update-index --add --cacheinfo 160000,$(git rev-parse HEAD),x",
        "git add .gitmodules && git commit -qm 'add submodule'",
        "git show HEAD:.gitmodules",
    ])
    first = astack.create_run(script, repo=str(origin), keep_alive="0s")
    done = astack.wait_status(first["id"], {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done["error"]
    with astack.client() as c:
        diff = c.get(f"/runs/{first['id']}/diff").text
    checkpoint = astack.settings.artifacts_dir / "runs" / first["id"] / "checkpoint" / "workspace.bundle"
    second = astack.create_run("git show HEAD:.gitmodules 2>/dev/null || echo nothing-restored",
                               from_run=first["id"], keep_alive="0s")
    done2 = astack.wait_status(second["id"], {"completed", "failed"}, timeout=120)
    restored = [s["payload"]["output_excerpt"] for s in astack.timeline(second["id"])
                if s["kind"] == "exec"]
    problems = []
    if EVIL_URL in diff:
        problems.append("the host imported the fsck-failing .gitmodules into the reviewed diff")
    if checkpoint.is_file():
        problems.append(f"a checkpoint holding it was saved ({checkpoint.stat().st_size} bytes)")
    if done2.get("workspace", {}) and done2["workspace"].get("restored_from") == first["id"] \
            and any(EVIL_URL in r for r in restored):
        problems.append("the next Run (from_run) restored it")
    assert not problems, "; ".join(problems)
    notes = [n for a in done["attempts"] for n in a["notes"]]
    assert any("gitmodulesUrl" in n for n in notes), notes  # the reviewer is told why there is no diff


def test_accept_relays_fsck_failing_objects_to_the_remote(astack: FerryStack,
                                                          tmp_path: Path) -> None:
    """Accept pushes the snapshot with its history: a remote that trusts Ferry's fsck (does
    not fsck pushes itself, like this bare origin) receives the poisoned .gitmodules."""
    from tests.integration.test_repos_review import git
    origin = make_origin(tmp_path)
    script = "\n".join([
        f"printf '{GITMODULES}' > .gitmodules".replace("\n", "\\n").replace("\t", "\\t"),
        "git update-index --add --cacheinfo 160000,$(git rev-parse HEAD),x",
        "git add .gitmodules && git commit -qm 'add submodule'",
    ])
    run = astack.create_run(script, repo=str(origin), keep_alive="60s")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done["error"]
    try:
        with astack.client() as c:
            r = c.post(f"/runs/{run['id']}/review", json={"action": "accept"})
        pushed = r.status_code == 200 and r.json()["accepted"]["pushed"]
        branch = f"ferry/{run['id']}"
        remote = git(origin, "show", f"{branch}:.gitmodules") if pushed else ""
    finally:
        with astack.client() as c:
            c.delete(f"/runs/{run['id']}/devbox")
    assert EVIL_URL not in remote, f"Ferry pushed an fsck-failing .gitmodules to the remote: {remote!r}"
