"""Workspace activities on the DevBox's host: clone, results (diff, artifacts, logs), accept, reset.

The workspace is a directory on the worker host bind-mounted at /workspace, so git runs
here with the worker's credentials (passed to git as environment, never written into
the repository's config) and the DevBox never sees a token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import os
import shutil
import tempfile
from pathlib import Path

import git
import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.devbox import DevBoxBackend
from activities.secrets import redact
from activities.tickets import github_api, trusted
from ferry.artifact_store import ArtifactStore
from ferry.schemas import (
    AcceptInput,
    AcceptResult,
    AttemptResult,
    CollectInput,
    FileChange,
    PrepareInput,
    ResetInput,
    WorkspaceInfo,
)
from ferry.settings import Settings

IDENTITY = {"GIT_AUTHOR_NAME": "Ferry", "GIT_AUTHOR_EMAIL": "ferry@localhost",
            "GIT_COMMITTER_NAME": "Ferry", "GIT_COMMITTER_EMAIL": "ferry@localhost"}


def content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class WorkspaceActivities:
    def __init__(self, settings: Settings, backend: DevBoxBackend, store: ArtifactStore,
                 secret_values: list[str]) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.token = settings.git_token or settings.github_token
        self.secret_values = secret_values

    def _git_env(self, **extra: str) -> dict[str, str]:
        """Environment for host-side git: no hooks or fsmonitor from the (DevBox-writable)
        repository, and the token as one-off config scoped to the trusted git hosts."""
        config = [("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false")]
        if self.token:
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            for host in self.settings.git_token_hosts.split(","):
                if host.strip():
                    config.append((f"http.https://{host.strip()}/.extraHeader",
                                   f"Authorization: Basic {basic}"))
        env = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", **extra,
               "GIT_CONFIG_COUNT": str(len(config))}
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    def _fail(self, what: str, e: Exception) -> ApplicationError:
        detail = redact(str(getattr(e, "stderr", "") or e).strip()[-400:], self.secret_values)
        return ApplicationError(f"{what}: {detail}", type="WorkspaceError", non_retryable=True)

    def _ws(self, run_id: str) -> Path:
        return self.backend.root_dir(run_id) / "workspace"

    # ------------------------------------------------------------------ prepare

    @activity.defn(name="prepare_workspace")
    async def prepare_workspace(self, inp: PrepareInput) -> WorkspaceInfo | None:
        return await asyncio.to_thread(self._prepare, inp)

    def _prepare(self, inp: PrepareInput) -> WorkspaceInfo | None:
        ws = self._ws(inp.run_id)
        ws.mkdir(parents=True, exist_ok=True)
        info = None
        url = inp.repo or (inp.ticket.clone_url if inp.ticket else None)
        if url:
            info = self._clone(inp, ws, url)
        if inp.ticket is not None:
            (ws / ".ferry").mkdir(exist_ok=True)
            (ws / ".ferry" / "ticket.md").write_text(inp.ticket.markdown())
        return info

    def _clone(self, inp: PrepareInput, ws: Path, url: str) -> WorkspaceInfo:
        work_branch = f"ferry/{inp.run_id.replace(':', '-')}"  # ':' is not allowed in refs
        try:
            if (ws / ".git").exists():  # a retry: the clone is there already
                repo = git.Repo(ws)
            else:
                repo = git.Repo.clone_from(url, ws, env=self._git_env())
            base_branch = inp.branch or (inp.ticket.default_branch if inp.ticket else None) \
                or repo.active_branch.name
            if work_branch not in repo.heads:
                repo.git.checkout(base_branch, env=self._git_env())
                base_commit = repo.head.commit.hexsha
                repo.git.checkout("-b", work_branch, env=self._git_env())
            else:
                base_commit = repo.git.merge_base(work_branch, f"origin/{base_branch}")
        except git.GitCommandError as e:
            raise self._fail(f"could not clone {url} (branch {inp.branch or 'default'})", e) from e
        with (ws / ".git" / "info" / "exclude").open("a") as f:
            f.write("\n.ferry/\n")
        return WorkspaceInfo(repo=inp.repo or url, clone_url=url, base_branch=base_branch,
                             base_commit=base_commit, work_branch=work_branch)

    # ------------------------------------------------------------------ results

    @activity.defn(name="collect_results")
    async def collect_results(self, inp: CollectInput) -> AttemptResult:
        return await asyncio.to_thread(self._collect, inp)

    def _collect(self, inp: CollectInput) -> AttemptResult:
        ws = self._ws(inp.run_id)
        prefix = f"attempts/{inp.attempt}"
        result = AttemptResult(attempt=inp.attempt, diff_path=f"{prefix}/diff.patch")
        diff = ""
        if inp.base_commit and (ws / ".git").exists():
            diff, result.files = self._diff(ws, inp.base_commit)
        self.store.write_bytes(inp.run_id, result.diff_path,
                               redact(diff, self.secret_values).encode())
        self.store.write_bytes(inp.run_id, f"{prefix}/files.json", json.dumps(
            [f.model_dump() for f in result.files]).encode())
        sources = [(p, p.relative_to(ws / ".ferry" / "artifacts").as_posix())
                   for p in (ws / ".ferry" / "artifacts").rglob("*") if p.is_file()] \
            if (ws / ".ferry" / "artifacts").is_dir() else []
        for named in inp.artifacts:
            path = ws / named
            if path.is_file():
                sources.append((path, named))
            elif path.is_dir():
                sources += [(p, p.relative_to(ws).as_posix()) for p in path.rglob("*") if p.is_file()]
        root = ws.resolve()
        for src, rel in sources:
            if src.is_symlink() or not src.resolve().is_relative_to(root):
                continue  # the DevBox may plant links to host files
            target = f"{prefix}/artifacts/{rel}"
            self.store.copy_in(inp.run_id, target, src)
            result.artifacts.append(target)
        for turn in inp.turn_ids:  # raw engine/runner logs per turn, redacted
            events = self.backend.host_turn_dir(inp.run_id, turn) / "events.jsonl"
            if events.is_file() and not events.is_symlink():
                text = redact(events.read_text(errors="replace"), self.secret_values)
                self.store.write_bytes(inp.run_id, f"turns/{turn}/events.jsonl", text.encode())
        return result

    def _diff(self, ws: Path, base: str) -> tuple[str, list[FileChange]]:
        """Diff of the work tree (new files included) against `base`, via a throwaway index."""
        repo = git.Repo(ws)
        with tempfile.TemporaryDirectory() as tmp:
            env = self._git_env(GIT_INDEX_FILE=str(Path(tmp) / "index"))
            repo.git.read_tree(base, env=env)
            repo.git.add("-A", env=env)
            diff = repo.git.diff("--cached", base, env=env)
            numstat = repo.git.diff("--cached", "--numstat", base, env=env)
            status = dict(line.split("\t", 1)[::-1] for line in
                          repo.git.diff("--cached", "--name-status", base, env=env).splitlines()
                          if "\t" in line)
        files = []
        for line in numstat.splitlines():
            added, removed, path = line.split("\t", 2)
            files.append(FileChange(path=path, added=int(added) if added != "-" else 0,
                                    removed=int(removed) if removed != "-" else 0,
                                    status={"A": "added", "D": "deleted", "M": "modified"}.get(
                                        status.get(path, "M")[:1], "modified")))
        return diff + ("\n" if diff else ""), files

    # ------------------------------------------------------------------ review

    @activity.defn(name="accept_changes")
    async def accept_changes(self, inp: AcceptInput) -> AcceptResult:
        result = await asyncio.to_thread(self._commit_and_push, inp)
        if inp.ticket is not None and inp.ticket.ref.kind == "github":
            result.pr_url = inp.pr_url or await self._open_pr(inp)
        return result

    def _commit_and_push(self, inp: AcceptInput) -> AcceptResult:
        ws = self._ws(inp.run_id)
        branch = inp.workspace.work_branch
        try:
            repo = git.Repo(ws)
            env = self._git_env()
            repo.git.add("-A", env=env)
            if repo.is_dirty(index=True, working_tree=False):
                repo.git.commit("-m", inp.message, env=env)
            commit = repo.head.commit.hexsha
            repo.git.push("origin", f"{branch}:refs/heads/{branch}", env=self._git_env())
        except git.GitCommandError as e:
            raise self._fail(f"could not commit and push {branch}", e) from e
        return AcceptResult(branch=branch, commit=commit, pushed=True)

    async def _open_pr(self, inp: AcceptInput) -> str:
        assert inp.ticket is not None
        ref = inp.ticket.ref
        api = f"{github_api(self.settings, ref)}/repos/{ref.owner}/{ref.repo}/pulls"
        headers = {"Accept": "application/vnd.github+json"}
        if self.settings.github_token and trusted(ref.host, self.settings.github_hosts):
            headers["Authorization"] = f"Bearer {self.settings.github_token}"
        branch = inp.workspace.work_branch
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            existing = await client.get(api, params={"head": f"{ref.owner}:{branch}",
                                                     "state": "open"})
            if existing.status_code == 200 and existing.json():
                return existing.json()[0]["html_url"]
            r = await client.post(api, json={
                "title": inp.ticket.title, "head": branch, "base": inp.workspace.base_branch,
                "body": f"{inp.message}\n\nCloses {ref.url}"})
        if r.status_code >= 400:
            raise ApplicationError(f"opening the pull request failed: HTTP {r.status_code} from {api}",
                                   type="TicketError", non_retryable=r.status_code in (401, 403, 404, 422))
        return r.json()["html_url"]

    @activity.defn(name="reset_workspace")
    async def reset_workspace(self, inp: ResetInput) -> None:
        def reset() -> None:
            ws = self._ws(inp.run_id)
            repo = git.Repo(ws)
            env = self._git_env()
            repo.git.reset("--hard", inp.base_commit, env=env)
            repo.git.clean("-fdx", "-e", ".ferry", env=env)
            shutil.rmtree(ws / ".ferry" / "artifacts", ignore_errors=True)
        await asyncio.to_thread(reset)
