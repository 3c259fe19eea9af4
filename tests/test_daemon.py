"""The daemon in this process, over loopback: admin API and token, concurrent calls, failures kept to one call,
the per-call budget, refusals (full, read-only data directory, disk full)."""

import asyncio
import contextlib
import json
import stat
import uuid

import pytest

from edge.calls.ledger import read_ledger
from edge.server.daemon import Daemon
from edge.telephony.testing import EchoHandler
from tests.daemon_peers import Peer, admin_get, config_for, read_only


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def running(config, handler=None, name="test"):
    announced = []
    daemon = Daemon(config, handler=handler or EchoHandler(), handler_name=name, announce=announced.append)
    daemon.announced = announced
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


class Flaky:
    """Echoes; calls whose id is in `bad` raise after 10 frames (a model blowing up mid-call)."""

    def __init__(self, bad):
        self.bad = {str(b) for b in bad}

    async def handle(self, call):
        frames = 0
        async for frame in call.audio():
            await call.play(frame)
            frames += 1
            if call.call_id in self.bad and frames == 10:
                raise RuntimeError("the ASR backend crashed")


class Hangs:
    """Never returns (a stuck model call), and ignores the caller's audio."""

    async def handle(self, call):
        await asyncio.Event().wait()


def test_admin_api_needs_the_token(tmp_path):
    async def main():
        async with running(config_for(tmp_path)) as daemon:
            token_file = tmp_path / "data" / "admin.token"
            stored = token_file.read_text().strip()
            assert daemon.token.path == token_file and stored == "sha256:" + daemon.token.digest.hex()
            assert daemon.token.value not in stored  # only the hash is kept
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            assert len(daemon.announced) == 1 and daemon.token.value in daemon.announced[0]
            results = {
                "no token": await admin_get(daemon, "/health", token=None),
                "wrong token": await admin_get(daemon, "/metrics", token="x" * 43),
                "health": await admin_get(daemon, "/health"),
                "metrics": await admin_get(daemon, "/metrics"),
                "calls": await admin_get(daemon, "/calls"),
                "reload": await admin_get(daemon, "/reload", method="POST"),
                "reload by GET": await admin_get(daemon, "/reload"),
            }
        async with running(config_for(tmp_path)) as again:  # the stored token is reused, not printed again
            same = again.token.digest == daemon.token.digest and not again.announced and again.token.value is None
            old_token = daemon.token.value
            results["old token after restart"] = await admin_get(again, "/health", token=old_token)
        return results, same

    results, same = run(main())
    assert results["no token"][0] == 401 and "Authorization: Bearer" in results["no token"][1]
    assert results["wrong token"][0] == 401
    status, body = results["health"]
    health = json.loads(body)
    assert status == 200 and health["ready"] and health["status"] == "ok"
    assert set(health["checks"]) == {"data_dir", "disk", "records"} and health["handler"] == "test"
    status, body = results["metrics"]
    assert status == 200
    for name in ("salesbot_active_calls", "salesbot_calls_total", "salesbot_turn_latency_seconds_bucket",
                 "salesbot_asr_seconds_count", "salesbot_nlu_seconds_count", "salesbot_tts_seconds_count",
                 "salesbot_errors_total", 'salesbot_calls_rejected_total{reason="full"} 0.0', "salesbot_ready 1.0",
                 "process_resident_memory_bytes"):
        assert name in body, name
    assert json.loads(results["calls"][1]) == {"active": 0, "max_calls": 100, "calls": []}
    assert results["reload"][0] == 200 and json.loads(results["reload"][1])["reloaded"] == []
    assert results["reload by GET"][0] == 405
    assert same and results["old token after restart"][0] == 200
    from edge.calls import audit
    from edge.calls.records import MIGRATIONS
    from edge.storage import open_database

    reloads = audit.entries(open_database(tmp_path / "data" / "calls.db", MIGRATIONS), prefix="daemon.")
    assert [(e["action"], e["actor"]) for e in reloads] == [("daemon.reload", "admin-api")]


def test_two_concurrent_calls_are_echoed_recorded_and_listed(tmp_path):
    async def main():
        async with running(config_for(tmp_path)) as daemon:
            port = daemon.ports["audiosocket"]
            a, b = await Peer.connect(port), await Peer.connect(port)
            streaming = [asyncio.create_task(p.stream(0.6, hz)) for p, hz in ((a, 300), (b, 500))]
            await asyncio.sleep(0.3)
            status, body = await admin_get(daemon, "/calls")
            await asyncio.gather(*streaming)
            await asyncio.sleep(0.1)
            await asyncio.gather(a.hangup(), b.hangup())
            await asyncio.sleep(0.1)
            metrics = (await admin_get(daemon, "/metrics"))[1]
        return daemon, a, b, json.loads(body), metrics

    daemon, a, b, calls, metrics = run(main())
    assert calls["active"] == 2
    assert {c["call_id"] for c in calls["calls"]} == {str(a.call_id), str(b.call_id)}
    assert all(c["transport"] == "audiosocket" and c["frames_in"] > 0 for c in calls["calls"])
    assert a.audio_frames >= 20 and b.audio_frames >= 20, "both callers heard their echo"
    rows = {row["call_id"]: row for row in read_ledger(daemon.ledger.path)}
    assert set(rows) == {str(a.call_id), str(b.call_id)}
    for row in rows.values():
        assert row["outcome"] == "caller_hangup" and row["end_reason"] == "remote_hangup" and row["handler"] == "test"
        assert row["ended_at"] and row["duration_s"] > 0.5 and row["notes"]["frames_in"] >= 25
    assert 'salesbot_calls_total{outcome="caller_hangup"} 2.0' in metrics
    assert 'salesbot_active_calls{transport="audiosocket"} 0.0' in metrics


def test_a_call_whose_handler_raises_ends_alone(tmp_path):
    async def main():
        bad_id = uuid.uuid4()
        async with running(config_for(tmp_path), handler=Flaky([bad_id])) as daemon:
            port = daemon.ports["audiosocket"]
            bad, good = await Peer.connect(port, bad_id), await Peer.connect(port)
            await asyncio.gather(bad.stream(0.8), good.stream(0.8))
            await bad.wait_closed()
            good_was_open = not good.closed.done()
            frames_before = good.audio_frames
            await good.stream(0.3)
            await good.hangup()
            metrics = (await admin_get(daemon, "/metrics"))[1]
        return daemon, bad, good, good_was_open, frames_before, metrics

    daemon, bad, good, good_was_open, frames_before, metrics = run(main())
    assert bad.got_hangup and good_was_open and good.audio_frames > frames_before
    rows = {row["call_id"]: row for row in read_ledger(daemon.ledger.path)}
    failed, fine = rows[str(bad.call_id)], rows[str(good.call_id)]
    assert failed["outcome"] == "error" and failed["end_reason"] == "handler_error"
    assert "RuntimeError: the ASR backend crashed" in failed["error"]
    assert fine["outcome"] == "caller_hangup" and fine["error"] is None
    assert 'salesbot_errors_total{kind="handler"} 1.0' in metrics


def test_a_hanging_handler_is_cut_at_its_budget(tmp_path):
    async def main():
        async with running(config_for(tmp_path, call_budget_s=0.6), handler=Hangs()) as daemon:
            peer = await Peer.connect(daemon.ports["audiosocket"])
            started = asyncio.get_running_loop().time()
            sending = asyncio.create_task(peer.stream(3.0))
            await peer.wait_closed(limit_s=3.0)
            took = asyncio.get_running_loop().time() - started
            sending.cancel()
            metrics = (await admin_get(daemon, "/metrics"))[1]
        return daemon, peer, took, metrics

    daemon, peer, took, metrics = run(main())
    assert peer.got_hangup and 0.5 < took < 2.0
    [row] = read_ledger(daemon.ledger.path)
    assert row["outcome"] == "budget_exceeded" and "budget of 0.6 s" in row["error"]
    assert 'salesbot_errors_total{kind="budget"} 1.0' in metrics
    assert 'salesbot_calls_total{outcome="budget_exceeded"} 1.0' in metrics


def test_max_calls_counts_every_transport_and_refuses_politely(tmp_path):
    async def main():
        config = config_for(tmp_path, max_calls=1, websocket="ws://127.0.0.1:0")
        async with running(config) as daemon:
            first = await Peer.connect(daemon.ports["audiosocket"])
            await first.stream(0.1)
            second = await Peer.connect(daemon.ports["audiosocket"])
            await second.wait_closed()
            import websockets

            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{daemon.ports['websocket']}"), 5)
            await first.hangup()
            metrics = (await admin_get(daemon, "/metrics"))[1]
        return second, refused.value, metrics

    second, refused, metrics = run(main())
    assert second.got_hangup and second.audio_frames == 0
    assert refused.response.status_code == 503 and b"route the call elsewhere" in refused.response.body
    assert 'salesbot_calls_rejected_total{reason="full"} 2.0' in metrics


def test_read_only_data_dir_refuses_calls_until_it_is_writable_again(tmp_path):
    data = tmp_path / "data"

    async def main(undo):
        async with running(config_for(tmp_path)) as daemon:
            status, body = await admin_get(daemon, "/health")
            peer = await Peer.connect(daemon.ports["audiosocket"])
            await peer.wait_closed()
            refused_metrics = (await admin_get(daemon, "/metrics"))[1]
            undo()
            await daemon.health_monitor.refresh()
            after_status, _ = await admin_get(daemon, "/health")
            again = await Peer.connect(daemon.ports["audiosocket"])
            await again.stream(0.3)
            await again.hangup()
        return daemon, status, json.loads(body), peer, refused_metrics, after_status, again

    with read_only(data) as undo:
        daemon, status, health, peer, metrics, after_status, again = run(main(undo))
    assert status == 503 and health["status"] == "refusing" and not health["ready"]
    assert not health["checks"]["data_dir"]["ok"] and "not writable" in health["checks"]["data_dir"]["detail"]
    assert not health["checks"]["records"]["ok"]
    assert daemon.token.path is None and "NOT stored" in daemon.announced[0], "a temporary token still lets admins in"
    assert peer.got_hangup and peer.audio_frames == 0
    assert 'salesbot_calls_rejected_total{reason="unhealthy"} 1.0' in metrics and "salesbot_ready 0.0" in metrics
    assert after_status == 200 and again.audio_frames > 0
    assert [row["outcome"] for row in read_ledger(daemon.ledger.path)] == ["caller_hangup"]


def test_a_full_disk_refuses_calls_with_a_clear_health_status(tmp_path):
    async def main():
        async with running(config_for(tmp_path, min_free_mb=10**9)) as daemon:
            status, body = await admin_get(daemon, "/health")
            peer = await Peer.connect(daemon.ports["audiosocket"])
            await peer.wait_closed()
        return status, json.loads(body), peer

    status, health, peer = run(main())
    assert status == 503 and not health["checks"]["disk"]["ok"]
    assert "MB free" in health["checks"]["disk"]["detail"] and "refused" in health["summary"]
    assert peer.got_hangup and peer.audio_frames == 0


def test_stop_gives_calls_their_grace_then_closes_and_records_them(tmp_path):
    async def main():
        config = config_for(tmp_path, shutdown_grace_s=0.4)
        daemon = Daemon(config, handler=EchoHandler(), handler_name="echo", announce=lambda _: None)
        await daemon.start()
        peer = await Peer.connect(daemon.ports["audiosocket"])
        sending = asyncio.create_task(peer.stream(5.0))
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        await daemon.stop()
        took = asyncio.get_running_loop().time() - started
        await peer.wait_closed()
        sending.cancel()
        return daemon, peer, took

    daemon, peer, took = run(main())
    assert 0.35 < took < 3.0 and peer.got_hangup
    [row] = read_ledger(daemon.ledger.path)
    assert row["outcome"] == "shutdown" and row["end_reason"] == "shutdown" and row["ended_at"]


def test_a_handler_that_cannot_load_stops_the_start_with_a_clear_error(tmp_path):
    from edge.errors import ServeError

    async def main():
        daemon = Daemon(config_for(tmp_path, handler="no_such_module:factory"), announce=lambda _: None)
        with pytest.raises(ServeError, match="cannot be loaded"):
            await daemon.start()
        return daemon

    daemon = run(main())
    assert daemon.transports == {} and daemon.admin is None


def test_serving_shortens_the_gil_switch_interval_and_reports_the_frame_clock(tmp_path):
    """While serving, another thread holds the GIL at most GIL_SWITCH_S at a time (the event loop gives it up
    at every socket send); the old interval is back after the stop. /metrics shows how the clock fares."""
    import sys

    from edge.server.daemon import GIL_SWITCH_S

    before = sys.getswitchinterval()

    async def main():
        async with running(config_for(tmp_path)) as daemon:
            during = sys.getswitchinterval()
            status, body = await admin_get(daemon, "/metrics")
        return during, status, body

    during, status, body = run(main())
    assert during == pytest.approx(GIL_SWITCH_S) and GIL_SWITCH_S < before
    assert sys.getswitchinterval() == pytest.approx(before)
    assert status == 200
    for name in ("salesbot_frame_clock_late_ticks_total", "salesbot_frame_clock_slow_ticks_total",
                 "salesbot_frame_clock_longest_tick_seconds"):
        assert name in body
