"""Workspace activities on the DevBox's host: clone, results (diff, artifacts, logs), accept, reset.

The host never touches the workspace's files. Its side of the work happens in the
host-only repository (host_git.py); the DevBox's side runs inside the DevBox as the turn's
user (`ferry-workspace`), and what it prints — a git bundle, a tar stream — is taken as
data, size-capped. So the DevBox's git config, attributes, hooks, `core.worktree` or
symlinks only ever act inside the DevBox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.devbox import DevBoxBackend, DevBoxError, hostio
from activities.devbox.budget import exec_budget
from activities.secrets import StreamRedactor, redact
from activities.tickets import github_api, trusted
from activities.workspace import checkpoints
from activities.workspace.artifacts import MAX_FILES as MAX_ARTIFACT_FILES
from activities.workspace.artifacts import import_records
from activities.workspace.host_git import GitError, HostGit
from ferry.artifact_store import ArtifactStore
from ferry.models.activity_io import AcceptInput, CollectInput, PrepareInput, ResetInput
from ferry.models.hosts import DevBoxInfo
from ferry.models.results import AcceptResult, AttemptResult, Checkpoint, FileChange, WorkspaceInfo
from ferry.settings import Settings

log = logging.getLogger("ferry.workspace")

SNAPSHOT_REF = "refs/ferry/snapshot"
# What an attempt carries in workflow state is bounded (paths can be 4 KB each); the full
# lists are in the artifact store (files.json, the artifact listing).
MAX_RESULT_FILES = 500
MAX_RESULT_PATH_BYTES = 64 * 1024


def _bounded(paths: list[str]) -> int:
    """How many of `paths` fit in the state's budget."""
    total = 0
    for i, path in enumerate(paths):
        total += len(path.encode()) + 16
        if total > MAX_RESULT_PATH_BYTES:
            return i
    return len(paths)
MAX_EVENTS_LOG = 64 * 1024 * 1024


def public_url(url: str) -> str:
    """The URL without any credentials in it (what the DevBox may see)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class WorkspaceActivities:
    def __init__(self, settings: Settings, backend: DevBoxBackend, store: ArtifactStore,
                 secret_values: list[str]) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.secret_values = secret_values

    def _git(self, run_id: str) -> HostGit:
        return HostGit(self.settings, self.backend.layout(run_id).git / "repo.git",
                       self.secret_values)

    def _fail(self, message: str) -> ApplicationError:
        return ApplicationError(redact(message, self.secret_values), type="WorkspaceError",
                                non_retryable=True)

    def _tool(self, info: DevBoxInfo, *args: str) -> list[str]:
        return ["python3", "-I", f"{info.in_dir}/bin/ferry-workspace", *args]

    def _in_devbox(self, info: DevBoxInfo, what: str, *args: str) -> None:
        code, output = self.backend.exec(info, self._tool(info, *args), timeout=exec_budget(),
                                         self_timed=True)
        if code != 0:
            raise self._fail(f"{what} failed in the DevBox (exit {code}): {output.strip()[-400:]}")

    # ------------------------------------------------------------------ prepare

    @activity.defn(name="prepare_workspace")
    async def prepare_workspace(self, inp: PrepareInput) -> WorkspaceInfo | None:
        try:
            return await asyncio.to_thread(self._prepare, inp)
        except (GitError, DevBoxError) as e:
            raise self._fail(str(e)) from e

    def _prepare(self, inp: PrepareInput) -> WorkspaceInfo | None:
        layout = self.backend.layout(inp.run_id)
        info = None
        url = inp.repo or (inp.ticket.clone_url if inp.ticket else None)
        if url:
            info = self._clone(inp, url)
        if inp.ticket is not None:
            self.backend.write_in(layout, "ticket.md", inp.ticket.markdown().encode())
            self._in_devbox(inp.devbox, "copying the ticket", "ticket", f"{inp.devbox.in_dir}/ticket.md")
        return info

    def _clone(self, inp: PrepareInput, url: str) -> WorkspaceInfo:
        work_branch = f"ferry/{inp.run_id.replace(':', '-')}"  # ':' is not allowed in refs
        git = self._git(inp.run_id)
        what = f"could not clone {public_url(url)} (branch {inp.branch or 'default'})"
        try:
            git.clone(url)
            base_branch = inp.branch or (inp.ticket.default_branch if inp.ticket else None) \
                or git.default_branch()
        except GitError as e:
            raise self._fail(f"{what}: {e}") from e
        try:
            base_commit = git.commit_of(f"refs/heads/{base_branch}")
        except GitError as e:
            raise self._fail(f"{what}: the repository has no branch {base_branch!r}") from e
        restore, note = self._checkpoint_to_restore(inp, url, base_branch, git)
        layout = self.backend.layout(inp.run_id)
        bundle = layout.inbox / "repo.bundle"
        git.bundle(bundle, f"refs/heads/{base_branch}")
        try:
            self._in_devbox(inp.devbox, "cloning into the DevBox", "clone",
                            f"{inp.devbox.in_dir}/repo.bundle", base_branch, work_branch,
                            public_url(url))
        finally:
            bundle.unlink(missing_ok=True)
        if restore is not None:
            # The checkpoint's commits that the DevBox's clone lacks, as the host's bundle.
            bundle = layout.inbox / "checkpoint.bundle"
            git.run("bundle", "create", "--quiet", str(bundle), checkpoints.RESTORE_REF,
                    f"^refs/heads/{base_branch}", what="bundling the checkpoint")
            try:
                self._in_devbox(inp.devbox, "restoring the checkpoint", "restore",
                                f"{inp.devbox.in_dir}/checkpoint.bundle", work_branch)
            finally:
                bundle.unlink(missing_ok=True)
            base_commit = restore.base_commit  # the work is measured from where it began
        return WorkspaceInfo(repo=inp.repo or url, clone_url=url, base_branch=base_branch,
                             base_commit=base_commit, work_branch=work_branch,
                             restored_from=restore.run_id if restore else None,
                             restore_note=note)

    def _checkpoint_to_restore(self, inp: PrepareInput, url: str, base_branch: str,
                               git: HostGit) -> tuple[Checkpoint | None, str | None]:
        """The checkpoint this Run starts from, fetched into its host repository (or why
        there is none to use: the Run then starts from the branch)."""
        if inp.restore_from is None:
            return None, None
        checkpoint = checkpoints.load(self.store, inp.restore_from)
        if checkpoint is None:
            return None, f"Run {inp.restore_from} saved no workspace checkpoint"
        if checkpoint.clone_url != url:
            return None, (f"Run {inp.restore_from}'s checkpoint is of another repository "
                          f"({public_url(checkpoint.clone_url)})")
        if checkpoint.base_branch != base_branch:
            return None, (f"Run {inp.restore_from}'s checkpoint is of branch "
                          f"{checkpoint.base_branch!r}, not {base_branch!r}")
        try:
            checkpoints.fetch(self.store, git, checkpoint, self.backend.layout(inp.run_id).scratch)
        except GitError as e:
            return None, f"Run {inp.restore_from}'s checkpoint could not be used: {e}"
        return checkpoint, None

    # ------------------------------------------------------------------ results

    @activity.defn(name="collect_results")
    async def collect_results(self, inp: CollectInput) -> AttemptResult:
        try:
            return await asyncio.to_thread(self._collect, inp)
        except ApplicationError:
            raise
        except Exception as e:
            # Whatever broke, retrying would only repeat it (and its host-side work), and
            # its text may carry host paths: the details go to the worker's log.
            log.exception("collecting the results of %s failed", inp.run_id)
            raise ApplicationError("collecting the Run's results failed on the worker host "
                                   "(details in the worker's log)", type="WorkspaceError",
                                   non_retryable=True) from e

    def _collect(self, inp: CollectInput) -> AttemptResult:
        prefix = f"attempts/{inp.attempt}"
        result = AttemptResult(attempt=inp.attempt, diff_path=f"{prefix}/diff.patch")
        diff = b""
        if inp.base_commit:
            try:
                diff = self._snapshot_diff(inp, result)
            except (GitError, DevBoxError) as e:
                result.notes.append(redact(f"no diff: {e}", self.secret_values))
        self.store.write_bytes(inp.run_id, result.diff_path,
                               redact(diff.decode("utf-8", "replace"), self.secret_values).encode())
        self.store.write_bytes(inp.run_id, f"{prefix}/files.json", json.dumps(
            [f.model_dump() for f in result.files]).encode())
        keep = min(MAX_RESULT_FILES, _bounded([f.path for f in result.files]))
        if keep < len(result.files):  # all of them are in files.json
            result.notes.append(f"{len(result.files)} files changed; the first {keep} are "
                                "listed here, all of them in the diff")
            result.files = result.files[:keep]
        self._collect_artifacts(inp, prefix, result)
        self._collect_logs(inp)
        return result

    @activity.defn(name="checkpoint_workspace")
    async def checkpoint_workspace(self, inp: CollectInput) -> str | None:
        """Save the workspace as it is now (before a pause that may outlast the DevBox);
        why not, if it could not be."""
        if inp.base_commit is None or inp.workspace is None:
            return None
        try:
            await asyncio.to_thread(self._checkpoint, inp)
        except checkpoints.CheckpointTooLarge as e:
            return str(e)
        except (GitError, DevBoxError, OSError) as e:
            log.warning("no checkpoint for %s: %s", inp.run_id, e)
            return "no workspace checkpoint was saved (details in the worker's log)"
        return None

    def _checkpoint(self, inp: CollectInput) -> None:
        assert inp.base_commit is not None and inp.workspace is not None
        commit = self._snapshot(inp, "refs/ferry/paused")
        checkpoints.save(self.store, self._git(inp.run_id), self.backend.layout(inp.run_id).scratch,
                         Checkpoint(run_id=inp.run_id, clone_url=inp.workspace.clone_url,
                                    base_branch=inp.workspace.base_branch,
                                    base_commit=inp.base_commit, commit=commit,
                                    attempt=inp.attempt, saved_at=checkpoints.now()),
                         int(self.settings.max_checkpoint_bytes))

    def _snapshot(self, inp: CollectInput, ref: str) -> str:
        """The DevBox commits its work tree into a bundle; the host imports it as `ref`."""
        assert inp.base_commit is not None
        if not re.fullmatch(r"[0-9a-f]{40,64}", inp.base_commit):
            raise GitError("the base commit is not a commit id")
        scratch = self.backend.layout(inp.run_id).scratch
        scratch.mkdir(parents=True, exist_ok=True)
        bundle = scratch / f"snapshot-{inp.attempt}.bundle"
        bundle.unlink(missing_ok=True)
        with open(bundle, "xb") as f:
            res = self.backend.exec_stream(inp.devbox, self._tool(inp.devbox, "snapshot",
                                                                  inp.base_commit),
                                           f.write, int(self.settings.max_snapshot_bytes),
                                           timeout=exec_budget(), self_timed=True)
        try:
            if res.truncated:
                raise GitError(f"the DevBox's work is larger than {self.settings.max_snapshot_bytes}"
                               " bytes (FERRY_MAX_SNAPSHOT_BYTES)")
            if res.timed_out:
                raise GitError(f"the snapshot did not finish in time: {res.stderr.strip()[-300:]}")
            if res.exit_code != 0:
                raise GitError(f"the snapshot failed in the DevBox (exit {res.exit_code}): "
                               f"{res.stderr.strip()[-300:]}")
            return self._git(inp.run_id).fetch_bundle(bundle, SNAPSHOT_REF, ref)
        finally:
            bundle.unlink(missing_ok=True)

    def _snapshot_diff(self, inp: CollectInput, result: AttemptResult) -> bytes:
        """The DevBox's work as a snapshot commit, and its diff against the base."""
        assert inp.base_commit is not None
        git = self._git(inp.run_id)
        scratch = self.backend.layout(inp.run_id).scratch
        commit = self._snapshot(inp, f"refs/ferry/attempt-{inp.attempt}")
        result.snapshot_commit = commit
        if inp.workspace is not None:
            try:
                checkpoints.save(self.store, git, scratch, Checkpoint(
                    run_id=inp.run_id, clone_url=inp.workspace.clone_url,
                    base_branch=inp.workspace.base_branch, base_commit=inp.base_commit,
                    commit=commit, attempt=inp.attempt, saved_at=checkpoints.now()),
                    int(self.settings.max_checkpoint_bytes))
            except checkpoints.CheckpointTooLarge as e:
                result.notes.append(str(e))
            except (GitError, OSError) as e:
                log.warning("no checkpoint for %s: %s", inp.run_id, e)
                result.notes.append("no workspace checkpoint was saved (details in the worker's log)")
        cap = int(self.settings.max_diff_bytes)
        diff, result.diff_truncated = git.diff(inp.base_commit, commit, cap)
        result.files = [FileChange(path=p, added=a, removed=r, status=s)
                        for p, a, r, s in git.numstat(inp.base_commit, commit)]
        if result.diff_truncated:
            diff += f"\n[... diff truncated at {cap} bytes (FERRY_MAX_DIFF_BYTES) ...]\n".encode()
        elif diff:
            diff += b"\n"
        return diff

    def _collect_artifacts(self, inp: CollectInput, prefix: str, result: AttemptResult) -> None:
        scratch = self.backend.layout(inp.run_id).scratch
        scratch.mkdir(parents=True, exist_ok=True)
        records = scratch / f"artifacts-{inp.attempt}.bin"
        records.unlink(missing_ok=True)
        # A collect starts from nothing: a retried or repeated one never adds to the last.
        self.store.delete_tree(inp.run_id, f"{prefix}/artifacts")
        cap = int(self.settings.max_artifacts_bytes)
        # Half of what is left for the DevBox's side, the rest for the host's import.
        budget = exec_budget()
        try:
            with open(records, "xb") as f:
                res = self.backend.exec_stream(inp.devbox, self._tool(inp.devbox, "artifacts",
                                                                      *inp.artifacts), f.write, cap,
                                               timeout=max(1, budget // 2), self_timed=True)
            if res.timed_out:
                result.notes.append("no artifacts: collecting them did not finish in time")
            elif res.truncated:
                result.notes.append(f"artifacts larger than {cap} bytes were not kept "
                                    "(FERRY_MAX_ARTIFACTS_BYTES)")
            elif res.exit_code != 0:
                result.notes.append(f"no artifacts: the DevBox's artifact tool exited with "
                                    f"{res.exit_code}")
            else:
                artifacts, skipped, problem = import_records(
                    records, self.store, inp.run_id, prefix, self.secret_values,
                    deadline=time.monotonic() + max(1, budget - budget // 2))
                result.artifacts = artifacts[:_bounded(artifacts)]
                if len(result.artifacts) < len(artifacts):
                    result.notes.append(f"{len(artifacts)} artifacts kept; the first "
                                        f"{len(result.artifacts)} are listed here, all in "
                                        "GET /runs/{id}/artifacts")
                if problem:
                    result.notes.append(problem)
                if skipped:
                    result.notes.append(f"{skipped} artifact entr{'y was' if skipped == 1 else 'ies were'}"
                                        " skipped (links, special files, odd names, or more than "
                                        f"{MAX_ARTIFACT_FILES} files)")
        except DevBoxError as e:
            result.notes.append(f"no artifacts: {e}")
        except Exception:  # the host's own trouble (disk full): its details stay in its log
            log.exception("storing the artifacts of %s failed", inp.run_id)
            result.notes.append("no artifacts: the worker host could not store them (see its log)")
        finally:
            records.unlink(missing_ok=True)

    def _collect_logs(self, inp: CollectInput) -> None:
        """Each turn's raw event log (engine stream), redacted, no links followed, capped."""
        for turn in inp.turn_ids:
            files = self.backend.turn_files(inp.run_id, turn)
            try:
                with self.store.writer(inp.run_id, f"turns/{turn}/events.jsonl") as f:
                    redactor = StreamRedactor(self.secret_values, f.write)
                    files.copy_capped("events.jsonl", redactor.feed, MAX_EVENTS_LOG)
                    redactor.close()
            except hostio.UnsafeFile:
                continue

    # ------------------------------------------------------------------ review

    @activity.defn(name="accept_changes")
    async def accept_changes(self, inp: AcceptInput) -> AcceptResult:
        try:
            result = await asyncio.to_thread(self._commit_and_push, inp)
        except GitError as e:
            raise self._fail(f"could not commit and push {inp.workspace.work_branch}: {e}") from e
        if inp.ticket is not None and inp.ticket.ref.kind == "github":
            result.pr_url = inp.pr_url or await self._open_pr(inp)
        return result

    def _commit_and_push(self, inp: AcceptInput) -> AcceptResult:
        """Commit exactly the snapshot people reviewed, on top of the last accept (or the
        agent's own commits), in the host-only repository; push that."""
        if inp.snapshot_commit is None:
            raise GitError("there is no collected work to accept (the last diff failed)")
        git = self._git(inp.run_id)
        branch = inp.workspace.work_branch
        snapshot = git.commit_of(inp.snapshot_commit)
        parent = inp.previous_commit or git.parent_of(snapshot) or inp.workspace.base_commit
        if git.tree_of(snapshot) == git.tree_of(parent):
            commit = parent
        else:
            commit = git.commit_tree(git.tree_of(snapshot), parent, inp.message)
        git.update_ref(f"refs/heads/{branch}", commit)
        git.push(inp.workspace.clone_url, commit, branch)
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
        """reject: back to the base commit, inside the DevBox (as the turn's user)."""
        if not re.fullmatch(r"[0-9a-f]{40,64}", inp.base_commit):
            raise self._fail("the base commit is not a commit id")
        work_branch = f"ferry/{inp.run_id.replace(':', '-')}"
        try:
            await asyncio.to_thread(self._in_devbox, inp.devbox, "resetting the workspace", "reset",
                                    inp.base_commit, work_branch)
        except DevBoxError as e:
            raise self._fail(str(e)) from e

