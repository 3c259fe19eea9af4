"""Access to the box, checked against issue 9's list: hashed credentials with no default, login
rate limiting, CSRF, localhost by default, an audit trail of DNC and configuration changes.

There are two credential stores, each tested where it lives:
- the dashboard (`salesbot dashboard`, edge/server/auth.py): admin password (scrypt) and API token
  (SHA-256) in admin.json; tests/test_server.py covers first start, cookies, CSRF and login limits;
- the daemon's admin API (`salesbot serve`, edge/server/admin_api.py): a bearer token printed once,
  admin.token keeps only its SHA-256 (mode 0600);
  tests/test_daemon.py covers its creation; the limits and file mode are tested here.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import stat

import pytest

from edge.config import Config
from edge.errors import ServeError
from edge.server.auth import Credentials, LoginLimiter, Sessions


def _loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback


def test_every_listener_is_localhost_by_default():
    import re

    from edge.systemd import CONFIG_TEMPLATE
    from edge.telephony.address import parse_uri

    cfg = Config()
    assert _loopback(cfg.server.admin_address()[0])
    assert _loopback(parse_uri(cfg.telephony.audiosocket, ("tcp",)).host)
    assert cfg.telephony.websocket is None and cfg.telephony.ami is None
    # the commented sample config the unit installs suggests loopback addresses too
    for host in re.findall(r"^# \w+ = \"(?:\w+://)?([\w.:\[\]]+):\d+\"", CONFIG_TEMPLATE, re.MULTILINE):
        assert _loopback(host), host


def test_the_daemon_admin_api_locks_out_a_token_guesser():
    from tests.test_fuzz_http import daemon_get

    right = "Bearer " + "t" * 43
    assert daemon_get("/health", right)[0] == 200
    assert daemon_get("/health", "Bearer wrong", repeat=20)[0] == 401
    status, body = daemon_get("/health", "Bearer wrong", repeat=21)
    assert status == 429 and "wait a minute" in body


def test_the_daemon_locks_out_the_right_token_too_after_20_guesses():
    from aiohttp.test_utils import TestClient, TestServer

    from edge.server.admin_api import AdminToken, build_app
    from tests.test_fuzz_http import _Backend

    async def go():
        app = build_app(_Backend(), AdminToken(hashlib.sha256(b"t" * 43).digest(), None, created=True))
        async with TestClient(TestServer(app)) as client:
            for _ in range(20):
                await client.get("/calls", headers={"Authorization": "Bearer guess"})
            return (await client.get("/calls", headers={"Authorization": "Bearer " + "t" * 43})).status

    assert asyncio.run(go()) == 429


def test_a_token_file_readable_by_others_is_set_back_to_0600(tmp_path):
    from edge.server.admin_api import load_or_create_token

    path = tmp_path / "admin.token"
    path.write_text("s" * 43 + "\n", encoding="utf-8")
    path.chmod(0o644)
    token = load_or_create_token(path, announce=lambda _: None)
    assert token.digest == hashlib.sha256(b"s" * 43).digest() and not token.created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_older_clear_token_file_is_rewritten_as_its_hash_and_the_token_still_works(tmp_path):
    from edge.server.admin_api import load_or_create_token

    path = tmp_path / "admin.token"
    path.write_text("c" * 43 + "\n", encoding="utf-8")
    path.chmod(0o600)
    token = load_or_create_token(path, announce=lambda _: None)
    stored = path.read_text(encoding="utf-8")
    assert "c" * 43 not in stored and stored.strip() == "sha256:" + hashlib.sha256(b"c" * 43).hexdigest()
    assert load_or_create_token(path, announce=lambda _: None).digest == token.digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_hash_stops_the_start_with_the_way_out(tmp_path):
    from edge.server.admin_api import load_or_create_token

    path = tmp_path / "admin.token"
    path.write_text("sha256:zz\n", encoding="utf-8")
    with pytest.raises(ServeError, match="new-admin-token"):
        load_or_create_token(path, announce=lambda _: None)


def test_new_admin_token_replaces_the_stored_hash_and_prints_the_token(tmp_path):
    from click.testing import CliRunner

    from edge.cli import cli
    from edge.server.admin_api import load_or_create_token

    path = tmp_path / "admin.token"
    first = load_or_create_token(path, announce=lambda _: None)
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path), "--new-admin-token"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    stored = load_or_create_token(path, announce=lambda _: None)
    assert stored.digest == hashlib.sha256(token.encode()).digest() != first.digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_or_short_token_file_stops_the_start(tmp_path):
    from edge.server.admin_api import load_or_create_token

    path = tmp_path / "admin.token"
    path.write_text("short\n", encoding="utf-8")
    with pytest.raises(ServeError, match="no usable token"):
        load_or_create_token(path, announce=lambda _: None)


def test_a_new_token_is_shown_once_and_stored_0600(tmp_path):
    from edge.server.admin_api import load_or_create_token

    shown: list[str] = []
    first = load_or_create_token(tmp_path / "d" / "admin.token", announce=shown.append)
    again = load_or_create_token(tmp_path / "d" / "admin.token", announce=shown.append)
    assert first.created and not again.created and again.digest == first.digest and len(first.value) >= 40
    assert len(shown) == 1 and first.value in shown[0] and again.value is None
    assert first.value not in (tmp_path / "d" / "admin.token").read_text(encoding="utf-8")
    assert stat.S_IMODE((tmp_path / "d" / "admin.token").stat().st_mode) == 0o600


def test_dashboard_credentials_are_random_hashed_and_never_default(tmp_path):
    creds, fresh = Credentials.ensure(tmp_path)
    _, other_fresh = Credentials.ensure(tmp_path / "other")
    assert fresh.password != other_fresh.password and fresh.api_token != other_fresh.api_token
    stored = (tmp_path / "admin.json").read_text()
    assert fresh.password not in stored and fresh.api_token not in stored
    assert stat.S_IMODE((tmp_path / "admin.json").stat().st_mode) == 0o600
    assert creds.check_password(fresh.password) and not creds.check_password(fresh.password + " ")
    assert creds.check_token(fresh.api_token) and not creds.check_token(fresh.password)
    assert not creds.check_password("\udcff") and not creds.check_token("\udcff")  # odd bytes: refused, no crash


def test_login_limiter_per_address_then_for_everyone_and_window_expiry():
    now = [1000.0]
    limiter = LoginLimiter(attempts=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") > 0 and limiter.retry_after("10.0.0.2") == 0
    for i in range(27):  # a spray from many addresses reaches the box-wide cap (10 x attempts)
        limiter.failed(f"10.1.0.{i}")
    assert limiter.retry_after("10.9.9.9") > 0
    now[0] += 61
    assert limiter.retry_after("10.0.0.1") == 0 and limiter.retry_after("10.9.9.9") == 0


def test_sessions_expire_and_logout_drops_them():
    now = [0.0]
    sessions = Sessions(hours=1, clock=lambda: now[0])
    sid, session = sessions.create("admin")
    other, _ = sessions.create("admin")
    assert sessions.get(sid) is session and session.csrf and session.csrf != sessions.get(other).csrf
    sessions.drop(sid)
    assert sessions.get(sid) is None
    now[0] += 3601
    assert sessions.get(other) is None and sessions.get(None) is None and sessions.get("forged") is None


def test_dnc_changes_and_settings_land_in_the_audit_trail(tmp_path):
    from edge.calls import Records, audit, dnc
    from edge.calls import campaign as campaigns

    db = Records.open(tmp_path / "calls.db").db
    dnc.add(db, "13800138000", actor="admin@dashboard", reason="asked by phone")
    dnc.remove(db, "+86 138 0013 8000", actor="cli:ops", reason="added by mistake")
    made = campaigns.create(db, "c", {}, actor="api-token")
    campaigns.update_settings(db, made.name, {"max_concurrent": 3}, actor="api-token")
    trail = audit.entries(db)
    assert [e["action"] for e in trail] == ["campaign.settings", "campaign.create", "dnc.remove", "dnc.add"]
    assert trail[2]["actor"] == "cli:ops" and trail[2]["detail"]["reason"] == "added by mistake"
    assert "13800138000" not in str(trail) and trail[0]["detail"]["max_concurrent"] == {"from": 10, "to": 3}


def test_a_password_reset_lands_in_the_audit_trail(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edge.calls import Records, audit
    from edge.cli import cli

    monkeypatch.setenv("SALESBOT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["dashboard", "--reset-password"])
    assert result.exit_code == 0, result.output
    entry = audit.entries(Records.open(tmp_path / "data" / "calls.db").db, prefix="auth.")[0]
    assert entry["action"] == "auth.password_reset" and entry["target"] == "admin"
    assert entry["actor"].startswith("cli")


def test_wrong_dashboard_api_tokens_count_as_failed_logins(tmp_path):
    """The dashboard's API token gets the login limiter too (it was unlimited; the daemon's had one)."""
    from tests.test_server import dashboard, run

    async def main():
        async with dashboard(tmp_path) as (client, _state, fresh):  # login_attempts = 3
            statuses = [(await client.get("/api/campaigns", headers={"Authorization": "Bearer guess"})).status
                        for _ in range(4)]
            right = await client.get("/api/campaigns", headers={"Authorization": f"Bearer {fresh.api_token}"})
            return statuses, right.status

    statuses, right = run(main())
    assert statuses == [401, 401, 401, 429] and right == 429
