"""What the API accepts from callers: strict bodies and the policy for repos, images, tickets.

Every request body model derives from `ApiInput`: unknown fields are refused (a typo like
`reasoning_effort` must not be silently ignored), and no string may hold a lone surrogate
and no number may be NaN or infinite, anywhere in the body — those would pass validation
and then break on their way to Temporal. The policy functions decide which repositories,
image registries and ticket hosts a Run may name: a Run must not make the worker reach
into its own host (paths, file://, loopback, private networks) unless the operator allows it.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

MAX_ENV_VARS = 64
MAX_ENV_VALUE = 32 * 1024
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_ENV = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "IFS", "TMPDIR", "BASH_ENV",
                "ENV", "PS4", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND", "IS_SANDBOX"}

# docker/distribution's reference grammar (name, optional tag, optional digest).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
IMAGE_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?)/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")


def _check_value(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite (not NaN or Infinity)")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_value(k)
            _check_value(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_value(v)


class ApiInput(BaseModel):
    """Base of every request body: strict about fields, Unicode and numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _wellformed(cls, value: Any) -> Any:
        _check_value(value)
        return value


def check_env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > MAX_ENV_VARS:
        raise ValueError(f"at most {MAX_ENV_VARS} variables")
    for name, value in env.items():
        if not ENV_NAME.match(name):
            raise ValueError("variable names are letters, digits and _ (not starting with a digit)")
        if name in RESERVED_ENV or name.startswith(("FERRY_", "LD_", "GIT_", "PYTHON")):
            raise ValueError(f"variable {name} is reserved")
        if len(value.encode()) > MAX_ENV_VALUE or "\x00" in value:
            raise ValueError(f"variable {name}: at most {MAX_ENV_VALUE} bytes, no NUL")
    return env


# ---------------------------------------------------------------- host policy


def _local_address(host: str, resolve: bool) -> bool:
    """Is `host` this machine or a private network (by name, literal, or DNS answer)?"""
    host = host.strip("[]").lower().rstrip(".")
    if not host or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        addrs = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return False
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False  # does not resolve: the clone will fail with its own message
        addrs = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return any(not a.is_global or a.is_loopback or a.is_private or a.is_link_local
               or a.is_multicast or a.is_reserved or a.is_unspecified for a in addrs)


SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?!//)")
REMOTE_SCHEMES = ("https", "http", "ssh", "git")


def repo_host(repo: str) -> str | None:
    """The host of a remote repository URL (or scp-like `user@host:path`); None for paths."""
    if "://" in repo:
        parts = urlsplit(repo)
        return (parts.hostname or None) if parts.scheme.lower() in REMOTE_SCHEMES else None
    scp = SCP_LIKE.match(repo)
    return scp["host"] if scp and not repo.startswith(("/", ".")) else None


def repo_problem(repo: str, allow_local: bool, resolve: bool = True) -> str | None:
    """Why a Run may not use this repository, or None. Remote URLs: https, http, ssh, git,
    and scp-like `user@host:path`; paths and file:// only when local repos are allowed."""
    if any(c in repo for c in "\x00\n\r") or repo.startswith("-"):
        return "repo must be a git URL"
    if "::" in repo.split("/")[0]:
        return "repo must not name a git transport helper (like ext::)"
    scp = SCP_LIKE.match(repo)
    if "://" in repo:
        parts = urlsplit(repo)
        scheme = parts.scheme.lower()
        if scheme == "file":
            host = None
        elif scheme in REMOTE_SCHEMES:
            host = parts.hostname or ""
            if not host or host.startswith("-"):
                return "repo URL has no host"
        else:
            return f"repo URL scheme {scheme!r} is not supported (https, http, ssh or git)"
    elif scp and not repo.startswith(("/", ".")):
        host = scp["host"]
    else:
        host = None  # a path on the worker host
    if host is None:
        if allow_local:
            if not repo.startswith(("/", "file://")):
                return "repo must be a URL, or an absolute path on the worker host"
            return None
        return ("repo must be a remote URL (https, ssh, git); paths on the worker host and "
                "file:// need FERRY_ALLOW_LOCAL_REPOS=true")
    if not allow_local and _local_address(host, resolve):
        return (f"repo host {host!r} is this machine or a private network; that needs "
                "FERRY_ALLOW_LOCAL_REPOS=true")
    return None


def image_reference_ok(image: str) -> bool:
    m = IMAGE_REFERENCE.match(image)
    if len(image) > 255 or not m:
        return False
    domain = m["domain"]
    # Without a dot, a colon or `localhost`, the first part is a (lower-case) path component.
    return not domain or "." in domain or ":" in domain or domain == "localhost" or \
        re.fullmatch(_COMPONENT, domain) is not None


def image_problem(image: str, allow_local: bool, resolve: bool = True) -> str | None:
    if not image_reference_ok(image):
        return "image must be a Docker image reference like ferry-devbox or ghcr.io/org/img:tag"
    m = IMAGE_REFERENCE.match(image)
    assert m is not None
    domain = m["domain"]
    if domain and ("." in domain or ":" in domain or domain == "localhost"):
        host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
        if not allow_local and _local_address(host, resolve):
            return (f"image registry {domain!r} is this machine or a private network; that "
                    "needs FERRY_ALLOW_LOCAL_REPOS=true")
    return None


def image_allowed(image: str, allowed: str | None) -> bool:
    if not allowed:
        return True
    for entry in (e.strip() for e in allowed.split(",")):
        if entry and (image == entry or (entry.endswith("*") and image.startswith(entry[:-1]))):
            return True
    return False


def ticket_host_problem(kind: str, host: str, github_hosts: str, azure_hosts: str) -> str | None:
    hosts = github_hosts if kind == "github" else azure_hosts
    allowed = {h.strip().lower() for h in hosts.split(",") if h.strip()}
    if host.lower() not in allowed:
        setting = "FERRY_GITHUB_HOSTS" if kind == "github" else "FERRY_AZURE_HOSTS"
        return f"ticket host {host!r} is not a configured {kind} host ({setting})"
    return None
