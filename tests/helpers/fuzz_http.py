"""Fuzz targets for the admin HTTP surfaces: the dashboard's JSON API and forms, the daemon's admin API.

One app per process, served by aiohttp's test server on its own event loop;
each input is one request. The contract: any body or header gets a 2xx/3xx or
a 4xx with a message, never a 500 (an unexpected exception in a handler).
The first input byte picks the route, the rest is the body.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import tempfile
from pathlib import Path

from tests.helpers.fuzz_targets import TARGETS, Target, _register

POSTS = ("/api/campaigns", "/api/campaigns/1/settings", "/api/dnc", "/api/dnc/remove", "/api/campaigns/1/start",
         "/api/campaigns/1/pause", "/api/campaigns/1/leads", "/api/kb/import")
GETS = ("/api/calls?q=", "/api/campaigns/1/leads?q=", "/api/dnc?q=", "/api/kb/search?q=", "/api/audit?prefix=",
        "/api/calls?limit=", "/api/campaigns/1/export?format=", "/api/calls/")


class ServerFault(AssertionError):
    """A request made the server answer 500 (a handler raised something unexpected)."""


class _LastError(logging.Handler):
    """Keeps the last exception the app logged, for the crash report (instead of a traceback on stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            frame = traceback.extract_tb(record.exc_info[2])[-1]
            self.last = (f"{type(record.exc_info[1]).__name__} at {Path(frame.filename).name}:{frame.lineno}: "
                         f"{str(record.exc_info[1])[:100]}")


_ERRORS = _LastError()


class _Dashboard:
    """A logged-in dashboard client on a private loop."""

    def __init__(self) -> None:
        from aiohttp.test_utils import TestClient, TestServer

        from edge.config import Config
        from edge.server import build_state, create_app
        from tests.fakes import KeywordClassifier

        logger = logging.getLogger("edge.server.app")
        logger.addHandler(_ERRORS)
        logger.propagate = False
        logger.setLevel(logging.ERROR)
        root = Path(tempfile.mkdtemp(prefix="salesbot-fuzz-http-"))
        cfg = Config()
        cfg.data.dir = root / "data"
        cfg.records.database = root / "data" / "calls.db"
        cfg.compliance.recordings_dir = root / "data" / "recordings"
        cfg.server.login_attempts = 10**6
        self.loop = asyncio.new_event_loop()
        self.state, fresh = build_state(cfg, classifier=KeywordClassifier(), pace_s=0.0)
        self.client = TestClient(TestServer(create_app(self.state)), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())
        self.csrf = self.loop.run_until_complete(self._login(fresh.password))
        self.loop.run_until_complete(self.client.post("/api/campaigns", json={"name": "fuzz"},
                                                      headers={"X-CSRF-Token": self.csrf}))

    async def _login(self, password: str) -> str:
        page = await self.client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
        await self.client.post("/login", data={"password": password, "csrf": token}, allow_redirects=False)
        return (await (await self.client.get("/api/me")).json())["csrf"]

    def request(self, method: str, path: str, **kwargs) -> tuple[int, str]:
        async def go():
            response = await self.client.request(method, path, allow_redirects=False, **kwargs)
            return response.status, await response.text()

        return self.loop.run_until_complete(asyncio.wait_for(go(), 30))


@functools.lru_cache(maxsize=1)
def dashboard() -> _Dashboard:
    return _Dashboard()


def _expect_no_500(status: int, text: str, what: str) -> None:
    if status >= 500:
        raise ServerFault(f"{what} -> {status}: {_ERRORS.last or text[:200]}")


def dashboard_json(data: bytes) -> None:
    """A POST body to a JSON route, or a query string to a GET route."""
    app = dashboard()
    pick, body = (data[0] if data else 0), data[1:]
    if pick % 2 == 0:
        path = POSTS[(pick // 2) % len(POSTS)]
        status, text = app.request("POST", path, data=body, headers={"X-CSRF-Token": app.csrf,
                                                                    "Content-Type": "application/json"})
    else:
        from urllib.parse import quote

        path = GETS[(pick // 2) % len(GETS)] + quote(body.decode("utf-8", "replace")[:2000], safe="")
        status, text = app.request("GET", path)
    _expect_no_500(status, text, path)


def dashboard_form(data: bytes) -> None:
    """A form POST (login, logout, a multipart upload) with arbitrary fields and bytes."""
    app = dashboard()
    pick, body = (data[0] if data else 0), data[1:]
    if pick % 3 == 0:
        status, text = app.request("POST", "/login", data=body,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        _expect_no_500(status, text, "/login")
        return
    from aiohttp import FormData

    form = FormData()
    form.add_field("csrf", app.csrf)
    name = ("leads.csv", "kb.csv", "kb.jsonl", "kb.md", "../x.csv", "a.exe")[pick % 6]
    form.add_field("file", body, filename=name, content_type="text/csv")
    path = "/api/campaigns/1/leads" if pick % 3 == 1 else "/api/kb/import"
    status, text = app.request("POST", path, data=form)
    _expect_no_500(status, text, path)


def _seeds_json() -> list[bytes]:
    return [b'\x00{"name": "c2", "hours": "mon-fri=09:00-18:00", "max_concurrent": 3}',
            b'\x02{"hours": "mon=10:00-11:00", "recording": true}', b'\x04{"number": "13800138000", "reason": "r"}',
            b'\x06{"number": "13800138000", "reason": "r"}', "\x01价格 OR NEAR(a b)".encode(), b"\x0b10",
            b"\x0dcsv", b"\x0fnope"]


def _seeds_form() -> list[bytes]:
    return [b"\x00password=x&csrf=y", "\x01电话,姓名\n13800138000,张\n".encode(),
            "\x02question,answer\n多少钱,三千\n".encode()]


_register(
    Target("dashboard_json", dashboard_json, _seeds_json, (
        "a non-multipart body to an upload route: aiohttp's AssertionError, a 500 (fuzzer)",
        ("campaign settings of the wrong JSON type ({'max_concurrent': 'mon-fri=...'}, a number as sender, ...): "
         "ValueError/TypeError, a 500 (hypothesis)"),
        ("a search of 100k characters: SQLite's 'LIKE pattern too complex' (hostile-strings test; searches are now "
         "cut to 200 characters and % _ match literally)"))),
    Target("dashboard_form", dashboard_form, _seeds_form, (
        "a login form that is not UTF-8: UnicodeDecodeError, a 500 (fuzzer)",
        "a non-ASCII CSRF value: compare_digest TypeError, a 500 (fuzzer)",
        "a Bearer token of non-UTF-8 bytes: UnicodeEncodeError, a 500 (review; also the daemon's admin API)")),
)

__all__ = ["TARGETS", "ServerFault", "dashboard"]
