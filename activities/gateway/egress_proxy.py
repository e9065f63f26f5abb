"""The egress proxy: a DevBox in `gateway` mode reaches the network only through it.

An HTTP proxy (CONNECT for https, absolute-URI requests for plain http) on a Unix socket.
The client authenticates with its turn's token (`http://ferry:<token>@127.0.0.1:PORT`
in the DevBox's proxy variables); a host not on the Run's allowlist is refused with a
403 and recorded on the grant, which the turn reports as an `egress_denied` step.
Allowlist entries are host names (`github.com`, `*.example.com`, ports 80 and 443) or
`host:port`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fnmatch
import logging

from activities.gateway.grants import Grant, GrantBook

log = logging.getLogger("ferry.gateway.egress")
MAX_HEAD = 16 * 1024
DEFAULT_PORTS = (80, 443)


def allowed(host: str, port: int, allow: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allow:
        name, _, port_text = entry.lower().partition(":") if entry.count(":") == 1 else (
            entry.lower(), "", "")
        ports = (int(port_text),) if port_text.isdigit() else DEFAULT_PORTS
        if port in ports and (host == name or (name.startswith("*.") and fnmatch.fnmatchcase(
                host, name) and "*" not in host)):
            return True
    return False


def _split_hostport(text: str, default: int) -> tuple[str, int] | None:
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        return None
    if not port_text:
        return host, default
    return (host, int(port_text)) if port_text.isdigit() and 0 < int(port_text) < 65536 else None


def _token(headers: dict[str, str]) -> str | None:
    value = headers.get("proxy-authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _, _, token = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return token or None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class EgressProxy:
    def __init__(self, book: GrantBook) -> None:
        self.book = book

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:
            log.debug("egress connection ended: %s", e)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, status: str, text: str,
                     extra: str = "") -> None:
        body = text.encode()
        writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        if len(head) > MAX_HEAD:
            return await self._reply(writer, "431 Request Header Fields Too Large", "too large\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return await self._reply(writer, "400 Bad Request", "bad request line\n")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        grant = self.book.lookup(_token(headers))
        if grant is None:
            return await self._reply(writer, "407 Proxy Authentication Required",
                                     "Ferry egress proxy: no valid turn token\n",
                                     'Proxy-Authenticate: Basic realm="ferry"\r\n')
        if method == "CONNECT":
            dest = _split_hostport(target, 443)
            rest = b""
        elif target.startswith("http://"):
            authority, slash, path = target[7:].partition("/")
            dest = _split_hostport(authority, 80)
            kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(
                ("proxy-authorization:", "proxy-connection:", "connection:"))]
            rest = (f"{method} /{path if slash else ''} {version}\r\n" + "\r\n".join(kept)
                    + "\r\nConnection: close\r\n\r\n").encode("latin-1")
        else:
            return await self._reply(writer, "400 Bad Request", "not a proxy request\n")
        if dest is None:
            return await self._reply(writer, "400 Bad Request", "bad destination\n")
        host, port = dest
        if not allowed(host, port, grant.allow):
            self.book.deny(grant, host, port)
            return await self._reply(
                writer, "403 Forbidden",
                f"Ferry egress policy: {host}:{port} is not on this Run's allowlist\n")
        await self._tunnel(grant, writer, reader, host, port, method == "CONNECT", rest)

    async def _tunnel(self, grant: Grant, writer: asyncio.StreamWriter,
                      reader: asyncio.StreamReader, host: str, port: int, connect: bool,
                      rest: bytes) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        except (OSError, TimeoutError):
            return await self._reply(writer, "502 Bad Gateway", f"could not reach {host}:{port}\n")
        if connect:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            up_writer.write(rest)
            await up_writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
