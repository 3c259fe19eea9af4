"""The dashboard's HTTP app through aiohttp's test client: access control, CSRF,
rate limiting, the API token, and the routes over the campaign library."""

from __future__ import annotations

import asyncio
import contextlib
import re
import stat
import wave

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from edge.config import Config  # noqa: E402
from edge.server import build_state, create_app  # noqa: E402
from tests.fakes import KeywordClassifier  # noqa: E402

ALWAYS_OPEN = "mon-sun=00:00-24:00"


def run(coro, timeout=30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def config(tmp_path) -> Config:
    cfg = Config()
    cfg.data.dir = tmp_path / "data"
    cfg.records.database = tmp_path / "data" / "calls.db"
    cfg.compliance.recordings_dir = tmp_path / "data" / "recordings"
    cfg.server.login_attempts = 3
    return cfg


@contextlib.asynccontextmanager
async def dashboard(tmp_path, **kwargs):
    kwargs.setdefault("pace_s", 0.0)
    state, fresh = build_state(config(tmp_path), classifier=KeywordClassifier(), **kwargs)
    async with TestClient(TestServer(create_app(state))) as client:
        yield client, state, fresh


async def login(client, password) -> str:
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    response = await client.post("/login", data={"password": password, "csrf": token}, allow_redirects=False)
    assert response.status == 303, await response.text()
    me = await (await client.get("/api/me")).json()
    return me["csrf"]


def test_first_start_makes_hashed_credentials_and_no_default_password(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            assert fresh.password and fresh.api_token and len(fresh.password) >= 16
            stored = state.credentials.path.read_text()
            assert fresh.password not in stored and fresh.api_token not in stored and '"scrypt"' in stored
            assert stat.S_IMODE(state.credentials.path.stat().st_mode) == 0o600
            for password in ("", "admin", "password", "salesbot"):
                assert not state.credentials.check_password(password)
        async with dashboard(tmp_path) as (_, _, again):
            assert again.password is None and again.api_token is None  # shown once only

    run(main())


def test_everything_needs_login_and_cookies_are_strict(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            for path in ("/live", "/calls", "/campaigns", "/dnc", "/roi"):
                response = await client.get(path, allow_redirects=False)
                assert response.status == 302 and response.headers["Location"] == "/login"
            for path in ("/api/calls", "/api/live", "/api/campaigns", "/api/dnc"):
                assert (await client.get(path)).status == 401
            assert (await client.post("/api/dnc", json={"number": "13800138000"})).status == 401
            page = await client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
            response = await client.post("/login", data={"password": fresh.password, "csrf": token},
                                         allow_redirects=False)
            cookie = response.headers["Set-Cookie"]
            assert "salesbot_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
            assert (await client.get("/live")).status == 200
            # a forged login form (no matching login cookie) is refused
            client.session.cookie_jar.clear()
            response = await client.post("/login", data={"password": fresh.password, "csrf": "forged"})
            assert response.status == 403

    run(main())


def test_failed_logins_are_rate_limited_and_audited(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            page = await client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
            statuses = []
            for _ in range(4):
                response = await client.post("/login", data={"password": "guess", "csrf": token})
                statuses.append(response.status)
            assert statuses == [401, 401, 401, 429]
            assert int(response.headers["Retry-After"]) > 0
            # even the right password waits now
            response = await client.post("/login", data={"password": fresh.password, "csrf": token},
                                         allow_redirects=False)
            assert response.status == 429
            failed = list(state.records.db["audit"].rows_where("action = ?", ["auth.login_failed"]))
            assert len(failed) == 3 and failed[0]["target"] == "admin"

    run(main())


def test_posts_need_the_csrf_token_and_same_origin(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            csrf = await login(client, fresh.password)
            response = await client.post("/api/dnc", json={"number": "13800138000", "reason": "x"})
            assert response.status == 403 and "CSRF" in (await response.json())["error"]
            response = await client.post("/api/dnc", json={"number": "13800138000"},
                                         headers={"X-CSRF-Token": "wrong"})
            assert response.status == 403
            response = await client.post("/api/dnc", json={"number": "13800138000"},
                                         headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
            assert response.status == 403
            response = await client.post("/api/dnc", json={"number": "138 0013 8000", "reason": "asked"},
                                         headers={"X-CSRF-Token": csrf})
            assert response.status == 200 and (await response.json())["added"] is True
            listing = await (await client.get("/api/dnc")).json()
            assert listing["entries"][0]["key"] == "+861******8000"
            assert listing["audit"][0]["action"] == "dnc.add" and listing["audit"][0]["actor"] == "admin@dashboard"
            # logout needs the token too (form field)
            assert (await client.post("/logout", data={}, allow_redirects=False)).status == 403
            response = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
            assert response.status == 303
            assert (await client.get("/api/me")).status == 401

    run(main())


def test_api_token_for_machines(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            bearer = {"Authorization": f"Bearer {fresh.api_token}"}
            assert (await client.get("/api/campaigns", headers=bearer)).status == 200
            response = await client.post("/api/campaigns", json={"name": "机器建的"}, headers=bearer)
            assert response.status == 201
            entry = state.records.db.execute("select actor, action from audit where action = 'campaign.create'")
            assert entry.fetchone() == ("api-token", "campaign.create")
            assert (await client.get("/api/campaigns", headers={"Authorization": "Bearer nope"})).status == 401
            assert (await client.get("/live", headers=bearer, allow_redirects=False)).status == 401  # no pages
            made = await response.json()
            changed = await client.post(f"/api/campaigns/{made['id']}/settings",
                                        json={"hours": "mon-fri=10:00-12:00", "max_concurrent": 3}, headers=bearer)
            assert (await changed.json())["settings"]["hours"] == {"mon-fri": "10:00-12:00"}
            bad = await client.post(f"/api/campaigns/{made['id']}/settings", json={"colour": "red"}, headers=bearer)
            assert bad.status == 400 and "unknown campaign setting" in (await bad.json())["error"]
            trail = await (await client.get("/api/audit", params={"prefix": "campaign."}, headers=bearer)).json()
            assert trail["entries"][0]["action"] == "campaign.settings"
            assert trail["entries"][0]["detail"]["max_concurrent"] == {"from": 10, "to": 3}

    run(main())


def test_campaign_from_create_to_finished_calls_export_and_roi(tmp_path):
    leads = "电话,姓名,公司,caller\n13800138001,张总,华星科技,meeting\n13800138002,李总,=HYPERLINK(\"x\"),complaint\n" \
            "12345,坏号码,x,meeting\n"

    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            csrf = await login(client, fresh.password)
            headers = {"X-CSRF-Token": csrf}
            response = await client.post("/api/campaigns", json={
                "name": "三月华东", "sender": "智销云", "hours": ALWAYS_OPEN, "holidays": "none",
                "max_concurrent": 2, "disclosure": True}, headers=headers)
            campaign = await response.json()
            assert response.status == 201, campaign
            form = aiohttp.FormData()
            form.add_field("file", leads.encode("gbk"), filename="客户.csv", content_type="text/csv")
            report = await (await client.post(f"/api/campaigns/{campaign['id']}/leads", data=form,
                                              headers=headers)).json()
            assert report["accepted"] == 2 and report["encoding"] == "GBK" and report["rejections"][0]["line"] == 4
            response = await client.post(f"/api/campaigns/{campaign['id']}/start", json={}, headers=headers)
            assert response.status == 200
            for _ in range(100):
                listed = await (await client.get("/api/campaigns")).json()
                if listed["campaigns"][0]["status"] == "done":
                    break
                await asyncio.sleep(0.05)
            assert listed["campaigns"][0]["leads"] == {"done": 1, "dnc": 1}
            live = await (await client.get("/api/live")).json()
            assert {c["state"] for c in live["calls"]} == {"ended"} and len(live["calls"]) == 2
            calls = await (await client.get("/api/calls", params={"campaign": "三月华东", "grade": "A"})).json()
            assert calls["total"] == 1 and calls["calls"][0]["phone"] == "+861******8001"
            detail = await (await client.get(f"/api/calls/{calls['calls'][0]['id']}")).json()
            assert detail["transcript"][0]["text"].startswith("您好，这是智销云的智能语音助理来电。")
            assert detail["outcome"] == "meeting_booked" and detail["turns"][0]["intents"]
            assert detail["has_recording"] is False
            export = await client.get(f"/api/campaigns/{campaign['id']}/export", params={"format": "csv"})
            text = await export.text()
            assert text.startswith("\ufeffcall_id,") and "'=HYPERLINK" in text and "13800138001" not in text
            assert "138****8001" in text
            assert "attachment" in export.headers["Content-Disposition"]
            roi = await (await client.get(f"/api/campaigns/{campaign['id']}/roi")).json()
            assert roi["funnel"]["dialled"] == 2 and roi["funnel"]["a"] == 1
            chart = await client.get(f"/api/campaigns/{campaign['id']}/roi/funnel.png")
            assert chart.content_type == "image/png" and (await chart.read())[:4] == b"\x89PNG"
            assert (await client.get(f"/api/campaigns/{campaign['id']}/roi/nope.png")).status == 404
            leads_page = await (await client.get(f"/api/campaigns/{campaign['id']}/leads")).json()
            assert leads_page["leads"][0]["grade"] == "A" and leads_page["leads"][0]["tasks"][0]["kind"] == "meeting"

    run(main())


def outcomes(state) -> int:
    return state.records.db.execute("select count(*) from outcomes").fetchone()[0]


async def until(condition, timeout_s: float = 10.0) -> None:
    """Poll `condition` every 10 ms; fail after `timeout_s`."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_pause_stops_dialling_and_a_restart_resumes_a_running_campaign(tmp_path):
    rows = "".join(f"1380013800{i},客户{i},公司,meeting\n" for i in range(6))

    async def main():
        async with dashboard(tmp_path, pace_s=0.02) as (client, state, fresh):
            headers = {"X-CSRF-Token": await login(client, fresh.password)}
            made = await (await client.post("/api/campaigns", json={
                "name": "慢慢打", "hours": ALWAYS_OPEN, "holidays": "none", "max_concurrent": 1},
                headers=headers)).json()
            form = aiohttp.FormData()
            form.add_field("file", ("phone,name,company,caller\n" + rows).encode(), filename="l.csv")
            await client.post(f"/api/campaigns/{made['id']}/leads", data=form, headers=headers)
            await client.post(f"/api/campaigns/{made['id']}/start", json={}, headers=headers)
            await until(lambda: outcomes(state) >= 1)
            paused = await (await client.post(f"/api/campaigns/{made['id']}/pause", json={}, headers=headers)).json()
            assert paused["status"] == "paused"
            await asyncio.sleep(0.5)
            done = state.records.db.execute("select count(*) from leads where status = 'done'").fetchone()[0]
            assert 1 <= done <= 2  # the call in flight finishes; nothing new is dialled
            await client.post(f"/api/campaigns/{made['id']}/start", json={}, headers=headers)
            await until(lambda: outcomes(state) >= done + 1)
        # the server stopped while the campaign was running (a call may have been cut): a new one carries on
        async with dashboard(tmp_path, pace_s=0.0) as (client, state, _):
            for _ in range(200):
                status = state.records.db.execute("select status from campaigns").fetchone()[0]
                if status == "done":
                    break
                await asyncio.sleep(0.05)
            assert status == "done"
            assert state.records.db.execute("select count(*) from leads where status = 'done'").fetchone()[0] == 6
            actions = [r[0] for r in state.records.db.execute(
                "select action from audit where action like 'campaign.%' order by id")]
            assert actions[:4] == ["campaign.create", "campaign.running", "campaign.paused", "campaign.running"]

    run(main())


def test_recordings_are_served_only_from_the_recordings_dir(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            await login(client, fresh.password)
            db = state.records.db
            recordings = state.recordings_dir
            recordings.mkdir(parents=True)
            with wave.open(str(recordings / "c1.wav"), "wb") as out:
                out.setnchannels(2)
                out.setsampwidth(2)
                out.setframerate(8000)
                out.writeframes(b"\x00\x00" * 1600)
            secret = tmp_path / "secret.wav"
            secret.write_bytes(b"RIFF")
            db["leads"].insert({"id": 1, "name": "x", "phone": "+8613800138000"})
            db["calls"].insert({"id": "c1", "lead_id": 1, "started_at": "2025-03-05T10:00:00+08:00",
                                "recording": "c1.wav"})
            db["calls"].insert({"id": "c2", "lead_id": 1, "started_at": "2025-03-05T10:00:00+08:00",
                                "recording": "../secret.wav"})
            assert (await (await client.get("/api/calls/c1")).json())["has_recording"] is True
            audio = await client.get("/api/calls/c1/recording")
            assert audio.status == 200 and (await audio.read())[:4] == b"RIFF"
            assert (await (await client.get("/api/calls/c2")).json())["has_recording"] is False
            assert (await client.get("/api/calls/c2/recording")).status == 404
            assert (await client.get("/api/calls/nope")).status == 400

    run(main())


def test_knowledge_search_and_import(tmp_path):
    async def main():
        async with dashboard(tmp_path) as (client, state, fresh):
            csrf = await login(client, fresh.password)
            hits = await (await client.get("/api/kb/search", params={"q": "多少钱"})).json()
            assert hits["source"] == "built-in" and hits["hits"]
            form = aiohttp.FormData()
            form.add_field("file", "question,answer,tags\n发票怎么开,开通后提供增值税专用发票。,财务\n".encode(),
                           filename="faq.csv")
            imported = await (await client.post("/api/kb/import", data=form, headers={"X-CSRF-Token": csrf})).json()
            assert imported["added"] == 1
            hits = await (await client.get("/api/kb/search", params={"q": "发票怎么开"})).json()
            assert hits["hits"][0]["answer"].startswith("开通后提供增值税专用发票")
            bad = aiohttp.FormData()
            bad.add_field("file", b"x", filename="evil.sh")
            response = await client.post("/api/kb/import", data=bad, headers={"X-CSRF-Token": csrf})
            assert response.status == 400 and "expected one of" in (await response.json())["error"]

    run(main())
