"""Ticket URLs: which forms Ferry understands (GitHub issues, Azure DevOps work items)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

_GITHUB = re.compile(r"^https://(?P<host>[A-Za-z0-9.-]+(?::\d+)?)/(?P<owner>[A-Za-z0-9_.-]+)/"
                     r"(?P<repo>[A-Za-z0-9_.-]+)/issues/(?P<number>\d+)/?$")
_AZURE = re.compile(r"^https://(?P<host>[A-Za-z0-9.-]+(?::\d+)?)/(?P<org>[A-Za-z0-9_.-]+)/"
                    r"(?P<project>[^/]+)/_workitems/edit/(?P<number>\d+)/?$")


class TicketRef(BaseModel):
    kind: Literal["github", "azure"]
    url: str
    host: str
    owner: str  # GitHub owner, or Azure organization
    repo: str  # GitHub repository, or Azure project
    number: int


class Ticket(BaseModel):
    """A resolved ticket: what the Run is about, and where its code lives."""

    ref: TicketRef
    title: str
    body: str
    comments: list[str] = []
    clone_url: str | None = None
    default_branch: str | None = None

    def markdown(self) -> str:
        parts = [f"# {self.title}", "", f"Ticket: {self.ref.url}", "", self.body or "(no description)"]
        for i, comment in enumerate(self.comments, 1):
            parts += ["", f"## Comment {i}", "", comment]
        return "\n".join(parts) + "\n"


def parse_ticket_url(url: str) -> TicketRef:
    """Raise ValueError naming the accepted forms when `url` is neither."""
    m = _AZURE.match(url)
    if m:
        return TicketRef(kind="azure", url=url, host=m["host"], owner=m["org"], repo=m["project"],
                         number=int(m["number"]))
    m = _GITHUB.match(url)
    if m:
        return TicketRef(kind="github", url=url, host=m["host"], owner=m["owner"], repo=m["repo"],
                         number=int(m["number"]))
    raise ValueError("ticket_url must be a GitHub issue (https://HOST/OWNER/REPO/issues/N) or an "
                     "Azure DevOps work item (https://HOST/ORG/PROJECT/_workitems/edit/N)")
