"""The admin HTTP app (aiohttp): login, the dashboard's pages and its JSON API.

Access: every page and API route needs a session (cookie: HttpOnly,
SameSite=Strict) or, for machines, `Authorization: Bearer <API token>`.
Every POST from a session carries its CSRF token (`X-CSRF-Token` header,
or a `csrf` form field) and, when the browser sends one, a same-origin
`Origin`. Failed logins and wrong API tokens are rate limited per address
(and box-wide). Pages are one static
shell (edge/server/static/) that renders with app.js; nothing is loaded
from outside the box.

Example:
    >>> app = create_app(state)          # state: AppState, see edge/server/run.py
    >>> web.run_app(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from edge.calls import audit
from edge.calls.live import LiveCalls
from edge.calls.records import Records
from edge.config import Config
from edge.errors import InputError, SalesbotError
from edge.server.auth import Credentials, LoginLimiter, Session, Sessions
from edge.server.service import CampaignService

_LOGGER = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
SESSION_COOKIE: Final = "salesbot_session"
LOGIN_COOKIE: Final = "salesbot_login"
MAX_UPLOAD_BYTES: Final = 256 * 1024 * 1024
PAGES: Final = ("/live", "/calls", "/campaigns", "/leads", "/dnc", "/kb", "/roi")
PUBLIC: Final = frozenset({"/login", "/healthz"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CSP: Final = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
              "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


@dataclass
class AppState:
    """Everything the routes share; built by edge/server/run.py (or a test)."""

    cfg: Config
    records: Records
    records_path: Path
    credentials: Credentials
    sessions: Sessions
    limiter: LoginLimiter
    live: LiveCalls
    service: CampaignService
    kb_path: Path
    recordings_dir: Path
    data_dir: Path


STATE: Final = web.AppKey("state", AppState)
ACTOR: Final = web.RequestKey("actor", str)
SESSION: Final = web.RequestKey("session", Session)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=dumps)


def actor(request: web.Request) -> str:
    return request.get(ACTOR, "unknown")


@functools.lru_cache(maxsize=4)
def _template(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def _render(name: str, **values: str) -> web.Response:
    text = _template(name)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


# ---- middlewares --------------------------------------------------------------------------------


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except SalesbotError as exc:
        if request.path.startswith("/api/"):
            return json_response({"error": str(exc)}, status=400)
        return web.Response(text=str(exc), status=400)
    except Exception:
        _LOGGER.exception("request %s %s failed", request.method, request.path)
        if request.path.startswith("/api/"):
            return json_response({"error": "internal error; see the server log"}, status=500)
        return web.Response(text="internal error; see the server log", status=500)


@web.middleware
async def headers_middleware(request: web.Request, handler):
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison that takes any text: compare_digest refuses non-ASCII str (a TypeError, a 500)."""
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


async def read_form(request: web.Request):
    """The urlencoded/multipart form; bytes that are not UTF-8 are the client's error (400), not a 500."""
    try:
        return await request.post()
    except ValueError as exc:  # UnicodeDecodeError, a malformed multipart body
        raise InputError(f"the form is not valid UTF-8 form data ({str(exc)[:80]})") from None


def _unauthorized(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return json_response({"error": "log in first, or send Authorization: Bearer <API token>"}, status=401)
    raise web.HTTPFound("/login")


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if request.path in PUBLIC or request.path.startswith("/static/"):
        return await handler(request)
    state = request.app[STATE]
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        if not request.path.startswith("/api/"):
            return json_response({"error": "the API token opens /api/ routes only; log in for pages"}, status=401)
        address = request.remote or "unknown"
        wait = state.limiter.retry_after(address)  # wrong tokens count as failed logins
        if wait:
            return json_response({"error": f"too many failed logins; wait {wait} s"}, status=429)
        if state.credentials.check_token(authorization[7:].strip()):
            request[ACTOR] = "api-token"
            return await handler(request)
        state.limiter.failed(address)
        return json_response({"error": "invalid API token"}, status=401)
    session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return _unauthorized(request)
    if request.method not in SAFE_METHODS:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return json_response({"error": "cross-origin request refused"}, status=403)
        token = request.headers.get("X-CSRF-Token", "")
        if not token and request.content_type == "application/x-www-form-urlencoded":
            token = str((await read_form(request)).get("csrf", ""))
        if not token or not same_secret(token, session.csrf):
            return json_response({"error": "missing or wrong CSRF token; reload the page"}, status=403)
    request[ACTOR] = f"{session.user}@dashboard"
    request[SESSION] = session
    return await handler(request)


# ---- login and pages ----------------------------------------------------------------------------


def _login_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = _render("login.html", csrf=token, error=error)
    response.set_status(status)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                        secure=request.secure)
    return response


async def login_get(request: web.Request) -> web.StreamResponse:
    if request.app[STATE].sessions.get(request.cookies.get(SESSION_COOKIE)):
        raise web.HTTPFound("/live")
    return _login_page(request)


async def login_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    address = request.remote or "unknown"
    wait = state.limiter.retry_after(address)
    if wait:
        response = _login_page(request, f"登录失败次数过多，请 {wait} 秒后再试。(Too many failed logins.)", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    form = await read_form(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not same_secret(str(form.get("csrf", "")), cookie):
        return _login_page(request, "页面已过期，请重新登录。(The login form expired; try again.)", 403)
    password = str(form.get("password", ""))
    ok = await asyncio.to_thread(state.credentials.check_password, password)
    if not ok:
        state.limiter.failed(address)
        audit.record(state.records.db, address, "auth.login_failed", state.credentials.user)
        return _login_page(request, "密码错误。(Wrong password.)", 401)
    state.limiter.succeeded(address)
    sid, _session = state.sessions.create(state.credentials.user)
    audit.record(state.records.db, address, "auth.login", state.credentials.user)
    response = web.HTTPSeeOther("/live")
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict", path="/", secure=request.secure,
                        max_age=int(state.sessions.ttl_s))
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[STATE].sessions.drop(request.cookies.get(SESSION_COOKIE))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def page(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is None:  # an API token cannot open pages
        raise web.HTTPFound("/login")
    return _render("app.html", csrf=session.csrf, user=session.user)


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/live")


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response({"ok": True})


def create_app(state: AppState) -> web.Application:
    from edge.server import api

    app = web.Application(middlewares=[errors_middleware, headers_middleware, auth_middleware],
                          client_max_size=MAX_UPLOAD_BYTES)
    app[STATE] = state
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/login", login_get)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/calls/{call_id}", page)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    api.add_routes(app)

    async def on_startup(app: web.Application) -> None:
        state.service.resume_all()

    async def on_cleanup(app: web.Application) -> None:
        await state.service.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
