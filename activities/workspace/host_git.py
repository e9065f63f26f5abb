"""Git on the worker host, kept away from everything a DevBox wrote.

Each DevBox with a repository has a host-only bare repository (`<devbox>/git/repo.git`,
never mounted into the DevBox). It is cloned from the Run's remote, receives the DevBox's
work only as git bundles (pack data, fsck-checked like a push to a server), computes the
diffs people review, makes the accept commit and pushes it. Git always runs here with:
- a minimal environment built from scratch (never the worker's: no tokens, no settings);
- no system or global config, no hooks, no fsmonitor, no attributes file, no credential
  helper, no external diff or textconv, and no work tree at all;
- protocols limited (`ext::` never), and a token only as a one-shot header for the
  configured git hosts.
GitPython is not used because it always passes the worker's whole environment to git.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO

from activities.secrets import redact
from ferry.settings import Settings

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
BASE_CONFIG = [
    ("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false"),
    ("core.attributesFile", "/dev/null"), ("credential.helper", ""),
    ("transfer.fsckObjects", "true"), ("fetch.fsckObjects", "true"),
    ("gc.auto", "0"), ("advice.detachedHead", "false"), ("init.defaultBranch", "main"),
    # A public URL that redirects must not lead the worker to a host on its own network.
    ("http.followRedirects", "false"), ("safe.directory", ""),
]
REMOTE_TIMEOUT = 600
LOCAL_TIMEOUT = 120
# Pack data from a DevBox could be crafted to expand (deltas) far beyond its size: git
# handling it runs with bounded memory, CPU time and file size.
LIMITS = ["--as=4294967296", "--cpu=600", "--fsize=8589934592"]
MAX_LISTING = 64 * 1024 * 1024
BUNDLE_V2, BUNDLE_V3 = b"# v2 git bundle\n", b"# v3 git bundle\n"
MAX_BUNDLE_HEADER_LINES, MAX_BUNDLE_HEADER_LINE = 10_000, 4096


class GitError(Exception):
    """A host-side git command failed; the message is meant for the user (redacted)."""


class HostGit:
    def __init__(self, settings: Settings, repo: Path, secret_values: list[str]) -> None:
        self.settings = settings
        self.repo = repo
        self.secret_values = secret_values
        self.token = settings.git_token or settings.github_token

    def _env(self, protocols: str, remote: bool) -> dict[str, str]:
        config = list(BASE_CONFIG)
        if remote and self.token:
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            for host in self.settings.git_token_hosts.split(","):
                if host.strip():
                    config.append((f"http.https://{host.strip()}/.extraHeader",
                                   f"Authorization: Basic {basic}"))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "HOME": os.environ.get("HOME", "/nonexistent"),  # for ssh's keys and known_hosts
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": protocols,
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes", "GIT_DIR": str(self.repo),
            "GIT_AUTHOR_NAME": self.settings.git_author_name,
            "GIT_AUTHOR_EMAIL": self.settings.git_author_email,
            "GIT_COMMITTER_NAME": self.settings.git_author_name,
            "GIT_COMMITTER_EMAIL": self.settings.git_author_email,
            "GIT_CONFIG_COUNT": str(len(config)),
        }
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        for name in ("SSH_AUTH_SOCK", *PROXY_VARS):
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    def remote_protocols(self) -> str:
        return "http:https:ssh:git" + (":file" if self.settings.local_repos_allowed else "")

    def run(self, *args: str, remote: bool = False, bundle: bool = False, input: bytes | None = None,
            stdin: BinaryIO | None = None, cap: int | None = None, what: str | None = None) -> bytes:
        """Run git on the host-only repository; returns stdout (at most `cap` bytes)."""
        protocols = self.remote_protocols() if remote else ("file" if bundle else "")
        argv = ["git", *args]
        if not remote and shutil.which("prlimit"):
            argv = ["prlimit", *LIMITS, "--", *argv]
        try:
            proc = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.PIPE
                                    if input is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self._env(protocols, remote),
                                    cwd=self.repo if self.repo.is_dir() else "/")
        except OSError as e:
            raise GitError(f"could not run git on the worker host: {e}") from e
        try:
            out, err = self._communicate(proc, input, cap, REMOTE_TIMEOUT if remote else LOCAL_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            proc.kill()
            proc.wait()
            raise GitError(f"{what or 'git ' + args[0]} timed out") from e
        if proc.returncode not in (0, None) and not (cap is not None and len(out) >= cap):
            detail = redact(err.decode("utf-8", "replace").strip()[-400:], self.secret_values)
            raise GitError(f"{what or 'git ' + args[0]} failed: {detail}")
        return out

    @staticmethod
    def _communicate(proc: subprocess.Popen, input: bytes | None, cap: int | None,
                     timeout: float) -> tuple[bytes, bytes]:
        if cap is None:
            return proc.communicate(input, timeout=timeout)
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read(cap)
        if len(out) >= cap:
            proc.kill()
        err = proc.stderr.read(4000)
        proc.wait(timeout=timeout)
        return out, err

    # ------------------------------------------------------------------ operations

    def clone(self, url: str) -> None:
        """Bare clone of the remote (all branches) into the host-only repository."""
        if (self.repo / "HEAD").exists():
            return  # a retry: cloned already
        self.repo.parent.mkdir(parents=True, exist_ok=True)
        self.repo_run_outside("clone", "--bare", "--quiet", "--no-local", "--", url, str(self.repo),
                              what=f"cloning {url}")

    def repo_run_outside(self, *args: str, what: str) -> None:
        """`git clone` runs before the repository exists: no GIT_DIR for it."""
        env = self._env(self.remote_protocols(), remote=True)
        env.pop("GIT_DIR")
        proc = subprocess.run(["git", *args], capture_output=True, env=env, cwd="/",
                              stdin=subprocess.DEVNULL, timeout=REMOTE_TIMEOUT)
        if proc.returncode != 0:
            detail = redact(proc.stderr.decode("utf-8", "replace").strip()[-400:], self.secret_values)
            raise GitError(f"{what} failed: {detail}")

    def default_branch(self) -> str:
        ref = self.run("symbolic-ref", "--quiet", "HEAD", what="reading the default branch")
        return ref.decode().strip().removeprefix("refs/heads/")

    def commit_of(self, rev: str) -> str:
        return self.run("rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}",
                        what=f"finding {rev}").decode().strip()

    def tree_of(self, commit: str) -> str:
        return self.run("rev-parse", "--verify", "--end-of-options", f"{commit}^{{tree}}",
                        what="reading a tree").decode().strip()

    def parent_of(self, commit: str) -> str | None:
        out = self.run("rev-list", "--parents", "-n", "1", "--end-of-options", commit,
                       what="reading a commit").decode().split()
        return out[1] if len(out) > 1 else None

    def bundle(self, path: Path, ref: str) -> None:
        self.run("bundle", "create", str(path), ref, what="bundling the repository")

    def fetch_bundle(self, path: Path, src: str, dst: str) -> str:
        """Import `src` from a DevBox-made bundle as `dst` (objects fsck-checked); its commit.

        git treats a fetch source that is not a bundle as a repository (even a `gitdir:`
        file pointing into the DevBox's disk): only a file that starts as a bundle is
        handed to it."""
        # Unbuffered: git reads the pack from this descriptor's own offset, which a
        # buffered reader would leave wherever its read-ahead stopped.
        with open(path, "rb", buffering=0) as f:
            if f.read(len(BUNDLE_V2)) not in (BUNDLE_V2, BUNDLE_V3):
                raise GitError("the DevBox's snapshot is not a git bundle")
            pack_at = self._pack_offset(f)
            # git before 2.46 never fscks what it fetches from a bundle, whatever
            # fetch.fsckObjects says: its pack is checked here first, as a server checks a
            # push (.gitmodules URLs and names, `.git` in trees, malformed objects...).
            f.seek(pack_at)
            self.run("index-pack", "--strict", "--fix-thin", "--stdin", stdin=f,
                     what="checking the DevBox's work (git fsck)")
        self.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", str(path),
                 f"+{src}:{dst}", bundle=True, what="importing the DevBox's work")
        return self.commit_of(dst)

    @staticmethod
    def _pack_offset(f: BinaryIO) -> int:
        """Where a bundle's pack starts: after its header lines (capabilities,
        prerequisites, refs) and the blank line that ends them."""
        for _ in range(MAX_BUNDLE_HEADER_LINES):
            line = f.readline(MAX_BUNDLE_HEADER_LINE)
            if line == b"\n":
                return f.tell()
            if not line.endswith(b"\n"):
                break
        raise GitError("the DevBox's snapshot is not a git bundle (its header is malformed)")

    def diff(self, base: str, commit: str, cap: int) -> tuple[bytes, bool]:
        out = self.run("diff", "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames",
                       "--end-of-options", base, commit, cap=cap + 1, what="computing the diff")
        return out[:cap], len(out) > cap

    def numstat(self, base: str, commit: str) -> list[tuple[str, int, int, str]]:
        """(path, added, removed, status) per changed file."""
        raw = self.run("diff", "--no-ext-diff", "--no-textconv", "--no-renames", "--numstat", "-z",
                       "--end-of-options", base, commit, cap=MAX_LISTING,
                       what="counting changed lines")
        names = self.run("diff", "--no-ext-diff", "--no-renames", "--name-status", "-z",
                         "--end-of-options", base, commit, cap=MAX_LISTING,
                         what="listing changed files")
        fields = names.split(b"\0")
        status = {fields[i + 1].decode("utf-8", "replace"): fields[i].decode()[:1]
                  for i in range(0, len(fields) - 1, 2)}
        out = []
        for entry in raw.split(b"\0"):
            if entry.count(b"\t") < 2:
                continue
            added, removed, path_b = entry.split(b"\t", 2)
            path = path_b.decode("utf-8", "replace")
            out.append((path, int(added) if added.isdigit() else 0,
                        int(removed) if removed.isdigit() else 0,
                        {"A": "added", "D": "deleted"}.get(status.get(path, "M"), "modified")))
        return out

    def commit_tree(self, tree: str, parent: str, message: str) -> str:
        return self.run("commit-tree", tree, "-p", parent, "-F", "-", input=message.encode(),
                        what="committing").decode().strip()

    def update_ref(self, ref: str, commit: str) -> None:
        self.run("update-ref", ref, commit, what="updating a branch")

    def push(self, url: str, commit: str, branch: str) -> None:
        self.run("push", "--quiet", "--no-verify", "--", url, f"{commit}:refs/heads/{branch}",
                 remote=True, what=f"pushing {branch}")
