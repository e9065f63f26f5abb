"""A loopback stand-in for the GitHub REST API (the endpoints Ferry uses), with real JSON shapes.

Issues, issue comments, repositories (whose `clone_url` points at a local bare repo) and
pull requests (list with `head`/`state` filters, create). Requests are recorded.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request

from tests.integration.loopback import LoopbackServer


class FakeGitHub(LoopbackServer):
    def __init__(self, port: int) -> None:
        self.issues: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.comments: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self.repos: dict[tuple[str, str], dict[str, Any]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next):
            self.requests.append((request.method, request.url.path))
            return await call_next(request)

        @app.get("/repos/{owner}/{repo}/issues/{number}")
        async def issue(owner: str, repo: str, number: int):
            found = self.issues.get((owner, repo, number))
            if not found:
                raise HTTPException(404, detail="Not Found")
            return found

        @app.get("/repos/{owner}/{repo}/issues/{number}/comments")
        async def comments(owner: str, repo: str, number: int):
            return self.comments.get((owner, repo, number), [])

        @app.get("/repos/{owner}/{repo}")
        async def get_repo(owner: str, repo: str):
            found = self.repos.get((owner, repo))
            if not found:
                raise HTTPException(404, detail="Not Found")
            return found

        @app.get("/repos/{owner}/{repo}/pulls")
        async def list_pulls(owner: str, repo: str, head: str | None = None, state: str = "open"):
            return [p for p in self.pulls if p["_repo"] == (owner, repo)
                    and (head is None or f"{owner}:{p['head']['ref']}" == head)
                    and (state == "all" or p["state"] == state)]

        @app.post("/repos/{owner}/{repo}/pulls", status_code=201)
        async def create_pull(owner: str, repo: str, request: Request):
            body = await request.json()
            number = len(self.pulls) + 1
            pull = {"_repo": (owner, repo), "number": number, "state": "open",
                    "title": body["title"], "body": body.get("body"),
                    "head": {"ref": body["head"]}, "base": {"ref": body["base"]},
                    "html_url": f"https://github.example/{owner}/{repo}/pull/{number}"}
            self.pulls.append(pull)
            return pull

        super().__init__(app, port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_issue(self, owner: str, repo: str, number: int, title: str, body: str,
                  comments: list[str], clone_url: str, default_branch: str) -> None:
        self.issues[(owner, repo, number)] = {
            "number": number, "title": title, "body": body, "state": "open",
            "comments": len(comments),
            "html_url": f"https://github.com/{owner}/{repo}/issues/{number}"}
        self.comments[(owner, repo, number)] = [{"id": i, "body": c} for i, c in enumerate(comments)]
        self.repos[(owner, repo)] = {"full_name": f"{owner}/{repo}", "clone_url": clone_url,
                                     "default_branch": default_branch, "private": False}

