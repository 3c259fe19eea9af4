"""Fuzzing the admin HTTP surfaces: the dashboard's JSON bodies, query strings and forms, and the
daemon admin API's Authorization header. Any input gets an answer below 500 (a 500 means a
handler raised something unexpected). One logged-in dashboard serves every example."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("aiohttp")

from tests.helpers.fuzz_http import POSTS, dashboard  # noqa: E402
from tests.test_fuzz_parsers import assert_ok, json_values, mutated  # noqa: E402

HTTP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = st.sampled_from(["name", "number", "reason", "hours", "max_concurrent", "timezone", "holidays", "sender",
                          "recording", "disclosure", "voicemail_action", "default_area_code", "callback_hours",
                          "script", "colour"])


@HTTP
@given(route=st.sampled_from(POSTS[:6]),
       body=st.one_of(json_values, st.dictionaries(FIELDS, json_values, max_size=5),
                      st.dictionaries(FIELDS, st.sampled_from(["mon-fri=09:00-18:00", "mon=25:00-26:00", "13800138000",
                                                               "0", "Asia", "x" * 5000, "\u202e", "\x00"]),
                                      max_size=5)))
def test_dashboard_json_bodies_of_any_shape_get_no_500(route, body):
    app = dashboard()
    status, text = app.request("POST", route, data=json.dumps(body),
                               headers={"X-CSRF-Token": app.csrf, "Content-Type": "application/json"})
    assert status < 500, (route, body, text[:300])


@HTTP
@given(data=st.data())
def test_dashboard_raw_bodies_queries_and_forms_get_no_500(data):
    assert_ok("dashboard_json", data.draw(mutated("dashboard_json")))
    assert_ok("dashboard_form", data.draw(mutated("dashboard_form")))


@pytest.mark.parametrize("header", [b"Bearer \xff\xfe", "Bearer 令牌".encode(), b"Bearer " + b"a" * 8000,
                                    b"bearer", b"Basic YWRtaW46YWRtaW4="])
def test_odd_authorization_headers_are_refused_not_crashed(header):
    """Both credential stores: the dashboard's API token and the daemon admin API's token."""
    if header.startswith(b"Bearer "):  # checked before the (logged-in) session cookie
        status, _ = dashboard().request("GET", "/api/campaigns", headers={"Authorization": header.decode("latin-1")})
        assert status == 401
    status, _ = daemon_get("/health", header.decode("latin-1"))
    assert status == 401


@pytest.mark.parametrize("csrf", ["令牌", "x" * 5000])
def test_odd_csrf_values_are_refused_not_crashed(csrf):
    app = dashboard()
    status, text = app.request("POST", "/api/dnc", json={"number": "13800138000"}, headers={"X-CSRF-Token": csrf})
    assert status == 403, text
    status, text = app.request("POST", "/logout", data={"csrf": csrf})
    assert status == 403, text


def test_a_login_form_that_is_not_utf8_is_a_400():
    app = dashboard()
    status, text = app.request("POST", "/login", data=b"password=\xff\xfe&csrf=\xc3",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and "UTF-8" in text


@pytest.mark.parametrize("route", ["/api/campaigns/1/leads", "/api/kb/import"])
def test_an_upload_that_is_not_multipart_is_a_400(route):
    app = dashboard()
    status, text = app.request("POST", route, json={"file": "x"}, headers={"X-CSRF-Token": app.csrf})
    assert status == 400 and "multipart/form-data" in text


class _Backend:
    async def health(self):
        return {"ready": True}

    def calls(self):
        return {"calls": []}

    async def reload(self):
        return {"reloaded": []}

    def metrics_text(self):
        return ""


def daemon_get(path: str, authorization: str | None, repeat: int = 1) -> tuple[int, str]:
    from aiohttp.test_utils import TestClient, TestServer

    from edge.server.admin_api import AdminToken, build_app

    async def go():
        app = build_app(_Backend(), AdminToken(hashlib.sha256(b"t" * 43).digest(), None, created=True))
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": authorization} if authorization is not None else {}
            for _ in range(repeat):
                response = await client.get(path, headers=headers)
            return response.status, await response.text()

    return asyncio.run(asyncio.wait_for(go(), 30))
