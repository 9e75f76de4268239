"""What stands before the routes: the request body size limit and the optional API key."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"


class BodySizeLimit:
    """ASGI middleware: a body over ``max_bytes`` gets a 413 before any route sees it.

    A declared ``Content-Length`` over the limit is refused at once; otherwise the body (chunked or not) is read
    up to one byte past the limit and handed on whole, so no route ever reads an unbounded body.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(send)
                return
        body, sent = b"".join(chunks), [False]

        async def replay() -> dict:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would tell it

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def read_api_key(path: str | Path) -> bytes:
    """The key in ``path`` (surrounding whitespace dropped); ValueError for an empty file."""
    key = Path(path).read_bytes().strip()
    if not key:
        raise ValueError(f"{path}: the API key file is empty")
    return key


def api_key_dependency(api_key_file: str):
    """A FastAPI dependency checking the ``X-API-Key`` header against the key in ``api_key_file`` (constant-time
    comparison); with no file it lets everything through, and the schema declares no key."""
    if not api_key_file:
        return lambda: None
    expected = read_api_key(api_key_file)
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the key of --api-key-file")

    def check(given: str | None = Security(header)) -> None:
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes the client sent.
        if given is None or not hmac.compare_digest(given.encode("latin-1"), expected):
            raise HTTPException(401, "missing or wrong API key (header X-API-Key)",
                                headers={"WWW-Authenticate": API_KEY_HEADER})

    return check
