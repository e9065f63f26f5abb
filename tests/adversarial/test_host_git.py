"""Git config, attributes and hooks planted in the DevBox's repository never run on the host.

Every program below would create a marker file on the host if the host ran git over the
DevBox's repository (as it once did for diffs, commits and resets). Inside the DevBox the
same programs may run — that is the DevBox's own business — but the host only ever sees
a bundle the DevBox printed, and runs git in its own repository.
"""

from __future__ import annotations

from pathlib import Path

from tests.adversarial.conftest import HostWatch, everything_about
from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import git, make_origin

HOOKS = ("pre-commit", "commit-msg", "post-commit", "pre-push", "reference-transaction",
         "post-checkout", "post-index-change", "pre-auto-gc")


def plant_everything(markers: str) -> str:
    """A script that arms every git mechanism that can run a program."""
    def prog(name: str) -> str:
        return f"sh -c 'touch {markers}/{name} 2>/dev/null; cat'"
    lines = [
        f'git config filter.pwn.clean "{prog("filter-clean")}"',
        f'git config filter.pwn.smudge "{prog("filter-smudge")}"',
        f'git config diff.pwn.textconv "{prog("textconv")}"',
        f'git config diff.pwn.command "{prog("diff-driver")}"',
        f'git config diff.external "{prog("diff-external")}"',
        f'git config core.fsmonitor "{prog("fsmonitor")}"',
        f'git config core.pager "{prog("pager")}"',
        f'git config gpg.program "{prog("gpg")}"',
        "git config commit.gpgsign true",
        f'git config core.sshCommand "{prog("ssh")}"',
        f'git config credential.helper "!{prog("credential")}"',
        f'git config remote.origin.receivepack "{prog("receivepack")}"',
        f'git config remote.origin.uploadpack "{prog("uploadpack")}"',
        f'git config core.askPass "{prog("askpass")}"',
        f'git config core.editor "{prog("editor")}"',
        f'git config sequence.editor "{prog("seq-editor")}"',
        "git config core.hooksPath .githooks",
        "mkdir -p .githooks",
        "for h in " + " ".join(HOOKS) + "; do "
        f"printf '#!/bin/sh\\ntouch {markers}/hook-%s\\n' \"$h\" > .git/hooks/$h; "
        "cp .git/hooks/$h .githooks/$h; chmod +x .git/hooks/$h .githooks/$h; done",
        "printf '* filter=pwn diff=pwn merge=pwn\\n' > .gitattributes",
        f'git config merge.pwn.driver "{prog("merge-driver")}"',
        "echo changed >> README.md",
        "echo new > new.txt",
        "git status --short | head -3",
    ]
    return "\n".join(lines)


def test_git_config_attributes_and_hooks_never_run_on_the_host(astack: FerryStack, host: HostWatch,
                                                               tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = astack.create_run(plant_everything(str(host.markers)), repo=str(origin),
                            keep_alive="120s")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    host.assert_untouched()
    # The host still got the work: the reviewed diff is the DevBox's real change.
    with astack.client() as c:
        files = {f["path"] for f in c.get(f"/runs/{run['id']}/diff",
                                          params={"format": "json"}).json()["files"]}
        assert {"README.md", "new.txt", ".gitattributes"} <= files
        accepted = c.post(f"/runs/{run['id']}/review", json={"action": "accept"})
        assert accepted.status_code == 200, accepted.text
    host.assert_untouched()
    branch = f"ferry/{run['id']}"
    assert git(origin, "show", f"{branch}:new.txt") == "new\n"
    # Reject runs the reset inside the DevBox; the host still runs nothing.
    with astack.client() as c:
        r = c.post(f"/runs/{run['id']}/review",
                   json={"action": "reject", "message": "test ! -e new.txt && echo good > good.txt"})
        assert r.status_code == 200, r.text
    astack.wait_until(lambda: astack.get_run(run["id"])["attempt"] == 2 and
                      astack.get_run(run["id"])["status"] in ("completed", "failed"), 60, "attempt 2")
    assert astack.get_run(run["id"])["status"] == "completed"
    host.assert_untouched()
    host.assert_not_leaked(*everything_about(astack, run["id"]))


def test_worktree_and_symlinks_cannot_point_host_work_at_host_files(astack: FerryStack,
                                                                    host: HostWatch,
                                                                    tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    victim = str(host.victim_dir)
    script = "\n".join([
        f"git config core.worktree {victim}",
        f"rm -rf .ferry && ln -s {victim} .ferry",
        f"ln -s {host.secret} leak.txt",
        f"ln -s {victim} leakdir",
        "echo done",
    ])
    run = astack.create_run(script, repo=str(origin), keep_alive="120s",
                            artifacts=["leak.txt", "leakdir"])
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    with astack.client() as c:
        r = c.post(f"/runs/{run['id']}/review", json={"action": "reject"})
        assert r.status_code == 200, r.text
    def settled() -> bool:
        now = astack.get_run(run["id"])
        return now["status"] == "failed" or (now["attempt"] == 2 and now["status"] == "completed")
    astack.wait_until(settled, 60, "the reject to finish")
    final = astack.get_run(run["id"])
    # The reset runs in the DevBox, where core.worktree names a path that does not exist:
    # the Run fails saying so (or, had git coped, attempt 2 ran). Either way, on its own files.
    if final["status"] == "failed":
        assert "resetting the workspace failed in the DevBox" in final["error"], final["error"]
    host.assert_untouched()
    host.assert_not_leaked(*everything_about(astack, run["id"]))
    notes = [n for a in astack.get_run(run["id"])["attempts"] for n in a["notes"]]
    assert any("skipped" in n for n in notes), notes  # the links were refused as artifacts


def test_a_fake_bundle_cannot_make_host_git_open_the_devboxs_repository(
        astack: FerryStack, host: HostWatch, tmp_path: Path) -> None:
    # A root turn replaces git in the DevBox: what the host receives as the snapshot "bundle"
    # is a gitfile pointing into the DevBox's disk, whose objects' alternates link to a
    # host file. Host git must never be handed it.
    wrapper = ("#!/bin/sh\nprev=\nfor a in \"$@\"; do if [ \"$prev\" = create ]; then "
               "printf 'gitdir: ../mnt/workspace/.git\\n' > \"$a\"; exit 0; fi; prev=$a; done\n"
               "exec /usr/bin/git \"$@\"\n")
    origin = make_origin(tmp_path)
    script = "\n".join([
        f"ln -s {host.secret} .git/objects/info/alternates",
        f"cat > /usr/local/bin/git <<'EOF'\n{wrapper}EOF",
        "chmod 755 /usr/local/bin/git",
        "echo change >> README.md",
    ])
    run = astack.create_run(script, repo=str(origin), run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    notes = done["attempts"][0]["notes"]
    assert any("not a git bundle" in n for n in notes), notes
    host.assert_not_leaked(*everything_about(astack, run["id"]))
    host.assert_untouched()


def test_host_git_does_not_follow_redirects(tmp_path: Path) -> None:
    """A repo URL that passed the policy must not redirect the worker elsewhere."""
    import http.server
    import threading

    from activities.workspace.host_git import GitError, HostGit
    from ferry.settings import Settings
    from tests.integration.harness import free_port

    hits: list[str] = []

    class Target(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    target_port, redirect_port = free_port(), free_port()

    class Redirect(Target):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target_port}/internal{self.path}")
            self.end_headers()

    servers = [http.server.HTTPServer(("127.0.0.1", target_port), Target),
               http.server.HTTPServer(("127.0.0.1", redirect_port), Redirect)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        git = HostGit(Settings(allow_local_repos=True), tmp_path / "repo.git", [])
        try:
            git.clone(f"http://127.0.0.1:{redirect_port}/acme/x.git")
        except GitError:
            pass
    finally:
        for server in servers:
            server.shutdown()
    assert hits == []  # the redirect was not followed


def test_a_checkpoint_carries_files_only_into_the_next_devbox_and_nothing_onto_the_host(
        astack: FerryStack, host: HostWatch, tmp_path: Path) -> None:
    # A Run arms every git mechanism, links to host files and leaves its work; a Run
    # started from it restores that work through the host (bundle out of the DevBox,
    # into the host's repository, into the artifact store, out again, into a new DevBox).
    origin = make_origin(tmp_path)
    script = "\n".join([
        "echo committed > later.txt",
        "git add -A && git commit -qm 'the agent commits'",
        f"ln -s {host.secret} secret-link",
        f"ln -s {host.victim_dir} victim-link",
        plant_everything(str(host.markers)),
    ])
    first = astack.create_run(script, repo=str(origin), keep_alive="0s")
    done = astack.wait_status(first["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done["error"]
    second = astack.create_run("\n".join([
        "cat secret-link 2>/dev/null || echo no-host-file",
        "ls victim-link/ 2>/dev/null || echo no-host-dir",
        "git config --get filter.pwn.clean || echo no-filter-config",
        "cat later.txt new.txt",
        "echo more >> later.txt",
    ]), from_run=first["id"], keep_alive="0s")
    done = astack.wait_status(second["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done["error"]
    assert done["workspace"]["restored_from"] == first["id"]
    out = [s["payload"]["output_excerpt"].strip().split("\n")[-1]
           for s in astack.timeline(second["id"]) if s["kind"] == "exec"]
    # The links came back as links, to paths that do not exist in the new DevBox; git's
    # config is not part of a checkpoint (the attributes file is, and names no driver).
    assert out[:4] == ["no-host-file", "no-host-dir", "no-filter-config", "new"]
    host.assert_untouched()
    host.assert_not_leaked(*everything_about(astack, second["id"]))
