"""What the hostile-traffic tests share: raw HTTP over a socket, and the routes the app has registered."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from aiohttp import web


def raw_request(method: str, target: bytes | str, headers: dict[str, bytes | str], body: bytes = b"") -> bytes:
    """Build one HTTP/1.1 request byte for byte (no client library to tidy it up), asking the server to close."""
    lines = [f"{method} ".encode() + (target.encode() if isinstance(target, str) else target) + b" HTTP/1.1",
             b"Host: bridge.example.com", b"Connection: close", f"Content-Length: {len(body)}".encode()]  # fmt: skip
    lines += [
        name.encode() + b": " + (value.encode() if isinstance(value, str) else value) for name, value in headers.items()
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def exchange(base_url: str, request: bytes, within: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a fresh connection, read until the server closes it; return status, headers, body."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    received = b""
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass  # the server closed with our bytes unread: what arrived before is the answer
    finally:
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def registered_routes(app: web.Application) -> list[tuple[str, str]]:
    """Return (method, path pattern) of every route in the app's router and its sub-apps' routers."""
    routes = []
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:
            routes += registered_routes(info["app"])
        else:
            routes += [(route.method, resource.canonical) for route in resource]
    return routes


def faults(records: list[logging.LogRecord]) -> list[str]:
    """Return the log records that are errors or carry a traceback, rendered for an assertion message."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info or r.exc_text or r.stack_info
    ]
