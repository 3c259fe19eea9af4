"""The admin HTTP API (aiohttp): /health, /calls, /reload, /metrics, behind a bearer token.

Every route needs `Authorization: Bearer <token>`. The token is generated on
first start (32 random bytes, URL-safe) and printed once; the data directory
keeps only its SHA-256 (`admin.token`, mode 0600), so a copy of the disk does
not give the token away. Lost it? `salesbot serve --new-admin-token` prints a
new one and stores its hash (restart a running daemon to use it). A token file
of an older version (the token in clear) is converted to its hash on start. A
client that sends 20 wrong tokens within a minute gets 429 for the rest of
that minute. The API binds 127.0.0.1 by default (`server.admin`).

| route | what |
|---|---|
| GET /health | readiness: 200 when taking calls, 503 with the failed checks otherwise |
| GET /calls | the calls in progress (numbers masked) |
| POST /reload | re-read script and knowledge (the handler's reload hooks); also on SIGHUP |
| GET /metrics | Prometheus text format |

Example:
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/health
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from aiohttp import web

from edge.errors import ServeError
from edge.server.metrics import CONTENT_TYPE

__all__ = ["AdminBackend", "AdminServer", "AdminToken", "build_app", "load_or_create_token", "store_new_token"]

_LOGGER = logging.getLogger(__name__)

MAX_FAILURES: Final = 20
FAILURE_WINDOW_S: Final = 60.0


class AdminBackend(Protocol):
    """What the routes call (the daemon)."""

    async def health(self) -> dict[str, Any]: ...

    def calls(self) -> dict[str, Any]: ...

    async def reload(self) -> dict[str, Any]: ...

    def metrics_text(self) -> str: ...


HASH_PREFIX: Final = "sha256:"


@dataclass(frozen=True)
class AdminToken:
    digest: bytes
    """SHA-256 of the token: all the daemon keeps."""
    path: Path | None
    """Where it is stored; None when it could not be (read-only data directory: it changes on restart)."""
    created: bool
    value: str | None = None
    """The token itself, only when this start created it (it is printed once, then forgotten)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _write_hash(path: Path, digest: bytes, *, replace: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary if replace else path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(HASH_PREFIX + digest.hex() + "\n")
    if replace:
        os.replace(temporary, path)


def store_new_token(path: Path) -> str:
    """Make a new token, store its hash in ``path`` (replacing any), and return it."""
    value = secrets.token_urlsafe(32)
    try:
        _write_hash(path, _digest(value), replace=True)
    except OSError as exc:
        raise ServeError(f"cannot store the admin token in {path}: {exc.strerror or exc}") from None
    return value


def load_or_create_token(path: Path, announce: Callable[[str], None] = print) -> AdminToken:
    """Read the admin token's hash, or create a token, store its hash (mode 0600) and `announce` it once.

    Raises:
        ServeError: the file exists but is empty or unreadable.
    """
    try:
        if path.exists():
            if path.stat().st_mode & 0o077:
                _LOGGER.warning("admin token file %s was readable by others; setting mode 0600", path)
                path.chmod(0o600)
            stored = path.read_text(encoding="utf-8").strip()
            if stored.startswith(HASH_PREFIX):
                try:
                    digest = bytes.fromhex(stored[len(HASH_PREFIX):])
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ServeError(f"admin token file {path} holds a damaged hash; delete it and restart, or run "
                                     "`salesbot serve --new-admin-token`")
                return AdminToken(digest, path, created=False)
            if len(stored) < 16:
                raise ServeError(f"admin token file {path} holds no usable token (under 16 characters); delete it "
                                 "and restart to generate a new one")
            digest = _digest(stored)  # an older version's token in clear: keep it, store only its hash
            _write_hash(path, digest, replace=True)
            _LOGGER.warning("admin token file %s held the token in clear; it now holds its hash (same token)", path)
            return AdminToken(digest, path, created=False)
    except OSError as exc:
        raise ServeError(f"cannot read the admin token {path}: {exc.strerror or exc}; check its owner and "
                         "permissions, or set server.admin_token_file") from None
    value = secrets.token_urlsafe(32)
    try:
        _write_hash(path, _digest(value), replace=False)
    except OSError as exc:
        _LOGGER.error("cannot store the admin token in %s (%s); using a temporary one until restart",
                      path, exc.strerror or exc, extra={"event": "admin_token"})
        announce(f"admin API token (temporary, NOT stored: {path} is not writable): {value}")
        return AdminToken(_digest(value), None, created=True, value=value)
    announce(f"admin API token (shown once, keep it; {path} stores only its hash): {value}")
    return AdminToken(_digest(value), path, created=True, value=value)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def build_app(backend: AdminBackend, token: AdminToken) -> web.Application:
    """The aiohttp application: token check first, then four thin routes."""
    expected = token.digest
    failures: dict[str, deque[float]] = defaultdict(deque)
    where = " (printed at first start; `salesbot serve --new-admin-token` makes a new one)" if token.path else ""

    @web.middleware
    async def auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        peer = request.remote or "?"
        recent = failures[peer]
        now = time.monotonic()
        while recent and now - recent[0] > FAILURE_WINDOW_S:
            recent.popleft()
        if len(recent) >= MAX_FAILURES:
            return _json({"error": "too many wrong tokens; wait a minute"}, 429)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if len(failures) > 10_000:  # bounded memory under a spray of addresses
            failures.clear()
            recent = failures[peer]
        # surrogateescape: a header of non-UTF-8 bytes is a wrong token, not a 500
        digest = _digest(given.strip())
        if scheme.lower() != "bearer" or not hmac.compare_digest(digest, expected):
            recent.append(now)
            _LOGGER.warning("admin API: rejected a request from %s to %s (no or wrong token)", peer, request.path,
                            extra={"event": "admin_auth_failed", "peer": peer})
            return web.json_response({"error": f"send 'Authorization: Bearer <admin token>'{where}"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="edge-salesbot"'})
        if not recent:
            failures.pop(peer, None)
        return await handler(request)

    async def health(_request: web.Request) -> web.Response:
        report = await backend.health()
        return _json(report, 200 if report.get("ready") else 503)

    async def calls(_request: web.Request) -> web.Response:
        return _json(backend.calls())

    async def reload(_request: web.Request) -> web.Response:
        result = await backend.reload()
        return _json(result, 200 if not result.get("errors") else 500)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=backend.metrics_text().encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(middlewares=[auth], client_max_size=64 * 1024)
    app.router.add_get("/health", health)
    app.router.add_get("/calls", calls)
    app.router.add_post("/reload", reload)
    app.router.add_get("/metrics", metrics)
    return app


class AdminServer:
    """Runs the app on HOST:PORT (port 0: any free port)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ServeError(f"admin API cannot listen on {self.host}:{self.requested_port}: "
                             f"{exc.strerror or exc}; pick a free port with --admin HOST:PORT") from None
        self.port = self._runner.addresses[0][1]
        _LOGGER.info("admin API listening on %s:%d", self.host, self.port, extra={"event": "listen",
                                                                                 "transport": "admin"})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
