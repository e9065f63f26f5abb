"""The `resolve_ticket` activity: a GitHub issue or Azure DevOps work item -> Ticket.

Uses the real REST APIs (base URLs configurable for GitHub Enterprise / Azure DevOps
Server). An unreachable or missing ticket fails the Run with the HTTP status and URL.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ferry.settings import Settings
from ferry.tickets import Ticket, TicketRef

# Tickets are written by strangers (anyone can comment): what enters the Run is bounded.
MAX_BODY = 64 * 1024
MAX_COMMENT = 16 * 1024
MAX_COMMENTS = 50


def _cut(text: object, limit: int) -> str:
    value = text if isinstance(text, str) else ""
    return value if len(value) <= limit else value[:limit] + "\n[... truncated ...]"


def github_api(settings: Settings, ref: TicketRef) -> str:
    if settings.github_api_url:
        return settings.github_api_url.rstrip("/")
    return "https://api.github.com" if ref.host == "github.com" else f"https://{ref.host}/api/v3"


def trusted(host: str, hosts: str) -> bool:
    """Tokens go only to the hosts configured for them, never to any host a URL names."""
    return host.lower() in {h.strip().lower() for h in hosts.split(",") if h.strip()}


class TicketActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def _get(self, client: httpx.AsyncClient, url: str, what: str) -> Any:
        try:
            r = await client.get(url)
        except httpx.HTTPError as e:
            raise ApplicationError(f"could not reach {url} to resolve the {what}: "
                                   f"{e.__class__.__name__}", type="TicketError") from e
        if r.status_code >= 400:
            raise ApplicationError(f"resolving the {what} failed: HTTP {r.status_code} from {url}",
                                   type="TicketError", non_retryable=r.status_code in (401, 403, 404, 410))
        return r.json()

    @activity.defn(name="resolve_ticket")
    async def resolve_ticket(self, ref: TicketRef) -> Ticket:
        if ref.kind == "github":
            return await self._github(ref)
        return await self._azure(ref)

    async def _github(self, ref: TicketRef) -> Ticket:
        api = github_api(self.settings, ref)
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.settings.github_token and trusted(ref.host, self.settings.github_hosts):
            headers["Authorization"] = f"Bearer {self.settings.github_token}"
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            base = f"{api}/repos/{ref.owner}/{ref.repo}"
            issue = await self._get(client, f"{base}/issues/{ref.number}", "GitHub issue")
            comments = await self._get(client, f"{base}/issues/{ref.number}/comments",
                                       "GitHub issue comments") if issue.get("comments") else []
            repo = await self._get(client, base, "GitHub repository")
        return Ticket(ref=ref, title=_cut(issue.get("title") or f"Issue #{ref.number}", 300),
                      body=_cut(issue.get("body"), MAX_BODY),
                      comments=[_cut(c.get("body"), MAX_COMMENT) for c in comments[:MAX_COMMENTS]
                                if isinstance(c, dict)],
                      clone_url=repo.get("clone_url"), default_branch=repo.get("default_branch"))

    async def _azure(self, ref: TicketRef) -> Ticket:
        api = (self.settings.azure_api_url or f"https://{ref.host}").rstrip("/")
        auth = (("", self.settings.azure_token)
                if self.settings.azure_token and trusted(ref.host, self.settings.azure_hosts)
                else None)
        async with httpx.AsyncClient(auth=auth, timeout=30) as client:
            base = f"{api}/{ref.owner}/{ref.repo}/_apis/wit/workitems/{ref.number}"
            item = await self._get(client, f"{base}?api-version=7.1", "Azure DevOps work item")
            comments = await self._get(client, f"{base}/comments?api-version=7.1-preview.4",
                                       "work item comments")
        fields = item.get("fields") or {}
        return Ticket(ref=ref, title=_cut(fields.get("System.Title") or f"Work item {ref.number}", 300),
                      body=_cut(fields.get("System.Description"), MAX_BODY),
                      comments=[_cut(c.get("text"), MAX_COMMENT)
                                for c in (comments.get("comments") or [])[:MAX_COMMENTS]
                                if isinstance(c, dict)])
