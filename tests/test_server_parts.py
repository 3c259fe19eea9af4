"""The daemon's parts on their own: [server] config, metrics format, systemd notify, JSON logs, ledger, health."""

import asyncio
import io
import json
import logging
import socket

import pytest

from edge import config
from edge.calls.ledger import CallEnd, CallLedger, CallStart, read_ledger
from edge.errors import ConfigError, RecordsError
from edge.server import jsonlog
from edge.server.health import HealthMonitor, probe_disk
from edge.server.metrics import CallMetrics, Registry
from edge.server.sdnotify import notify


def run(coro, timeout=10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---- [server] config ---------------------------------------------------------------------------


def test_server_section_round_trips_and_defaults_bind_localhost(tmp_path):
    defaults = config.Config()
    assert defaults.server.admin_address() == ("127.0.0.1", 8080)
    assert defaults.telephony.audiosocket == "tcp://127.0.0.1:9092" and defaults.telephony.websocket is None
    path = tmp_path / "c.toml"
    path.write_text('[server]\nadmin = "[::1]:9094"\nmax_calls = 50\ncall_budget_s = 300\nshutdown_grace_s = 10\n'
                    'handler = "echo"\nadmin_token_file = "/etc/edge-salesbot/token"\n'
                    '[telephony]\naudiosocket = "tcp://0.0.0.0:9092"\nwebsocket = "ws://127.0.0.1:9093"\n')
    cfg = config.load(path)
    assert cfg.server.admin_address() == ("::1", 9094) and cfg.server.max_calls == 50
    assert cfg.server.token_path(tmp_path) == config.Path("/etc/edge-salesbot/token")
    assert config.Config().server.token_path(tmp_path) == tmp_path / "admin.token"
    assert config.Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("text, message", [
    ("[server]\nadmin = '8080'\n", "server.admin must be HOST:PORT"),
    ("[server]\nadmin = 'off'\n", "server.admin must be HOST:PORT"),
    ("[server]\nmax_calls = 0\n", "server.max_calls must be in"),
    ("[server]\nmax_calls = '100'\n", "server.max_calls must be a number"),
    ("[server]\nshutdown_grace_s = -1\n", "server.shutdown_grace_s"),
    ("[server]\nhandler = 'mine'\n", "package.module:factory"),
    ("[server]\nport = 1\n", "unknown key server.port"),
])
def test_bad_server_settings_name_the_key(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(path)


def test_the_daemon_needs_a_media_listener(tmp_path):
    from edge.server.daemon import Daemon

    cfg = config.Config()
    cfg.telephony.audiosocket = None
    with pytest.raises(ConfigError, match="both off"):
        Daemon(cfg)


# ---- metrics -----------------------------------------------------------------------------------


def test_metrics_text_format():
    registry = Registry()
    counter = registry.counter("x_total", "Things.", ("kind",))
    counter.inc(kind='a"b\\c\nd')
    counter.inc(2, kind="plain")
    histogram = registry.histogram("lat_seconds", "Latency.", (0.1, 0.5))
    for value in (0.05, 0.1, 0.3, 7.0):
        histogram.observe(value)
    registry.gauge("up", "Up.", function=lambda: 1)
    text = registry.render()
    assert 'x_total{kind="a\\"b\\\\c\\nd"} 1.0' in text and 'x_total{kind="plain"} 2.0' in text
    assert "# TYPE lat_seconds histogram" in text
    for line in ('lat_seconds_bucket{le="0.1"} 2.0', 'lat_seconds_bucket{le="0.5"} 3.0',
                 'lat_seconds_bucket{le="+Inf"} 4.0', "lat_seconds_sum 7.45", "lat_seconds_count 4.0", "up 1.0"):
        assert line in text, line
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(other="x")
    with pytest.raises(ValueError, match="cannot go down"):
        counter.inc(-1, kind="x")
    with pytest.raises(ValueError, match="twice"):
        registry.counter("x_total", "again")


def test_call_metrics_feed_from_a_batcher():
    from edge.calls.batcher import MicroBatcher

    metrics = CallMetrics()

    async def main():
        batcher = MicroBatcher(lambda xs: xs, max_wait_ms=5,
                               on_batch=metrics.batch_observer("intent", metrics.nlu_seconds))
        await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        await batcher.close()

    run(main())
    assert metrics.nlu_seconds.count() == 1 and metrics.batch_size.count(batcher="intent") == 1
    assert 'salesbot_batch_size_bucket{batcher="intent",le="8.0"} 1.0' in metrics.render()
    assert "process_cpu_seconds_total" in metrics.render()


# ---- systemd notify ------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_sends_to_the_notify_socket(tmp_path, monkeypatch, abstract):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        name = f"\0salesbot-test-{id(tmp_path)}" if abstract else str(tmp_path / "notify")
        listener.bind(name)
        listener.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name[1:] if abstract else name)
        assert notify("READY=1", "STATUS=taking calls")
        assert listener.recv(1024) == b"READY=1\nSTATUS=taking calls"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert not notify("STOPPING=1")


# ---- JSON logs -----------------------------------------------------------------------------------


def test_json_logs_mask_phone_numbers(monkeypatch):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        jsonlog.setup(logging.INFO, stream)
        log = logging.getLogger("edge.test")
        log.info("dialling %s", "+8613800138000", extra={"event": "dial", "caller": "13912345678", "n": 3})
        try:
            raise ValueError("lead 13800138000 is on the DNC list")
        except ValueError:
            log.exception("failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["msg"] == "dialling +861******8000" and first["caller"] == "139****5678"
    assert first["event"] == "dial" and first["n"] == 3 and first["level"] == "info" and first["ts"].endswith("+00:00")
    assert "13800138000" not in second["exc"] and "138****8000" in second["exc"]


# ---- ledger --------------------------------------------------------------------------------------


def test_ledger_marks_unfinished_calls_interrupted_on_open(tmp_path):
    path = tmp_path / "calls.db"

    async def first_run():
        ledger = CallLedger(path)
        await ledger.open()
        done = ledger.start(CallStart("a", "audiosocket", caller="13800138000", handler="echo"))
        ledger.start(CallStart("b", "websocket"))
        ledger.end(done, CallEnd("remote_hangup", "caller_hangup", duration_s=3.0, notes={"record_id": "r1"}))
        await ledger.flush()  # then "crash": no end for b, no close

    async def second_run():
        ledger = CallLedger(path)
        count = await ledger.open()
        await ledger.close()
        return count

    run(first_run())
    assert run(second_run()) == 1
    rows = {row["call_id"]: row for row in read_ledger(path)}
    assert rows["a"]["outcome"] == "caller_hangup" and rows["a"]["notes"] == {"record_id": "r1"}
    assert rows["a"]["caller"] == "13800138000", "the database keeps the number; only logs mask it"
    assert rows["b"]["outcome"] == rows["b"]["end_reason"] == "interrupted" and rows["b"]["ended_at"]


def test_ledger_reports_a_database_it_cannot_open(tmp_path):
    (tmp_path / "calls.db").write_text("not sqlite")
    errors = []

    async def main():
        ledger = CallLedger(tmp_path / "calls.db", on_error=errors.append)
        with pytest.raises(RecordsError, match="data directory is writable"):
            await ledger.open()
        ledger.start(CallStart("a", "audiosocket"))
        await ledger.flush()
        await ledger.close()
        return ledger

    ledger = run(main())
    assert not ledger.available and ledger.failures == 1 and len(errors) == 1


# ---- health ------------------------------------------------------------------------------------


def test_health_reports_each_check_and_recovers_when_the_ledger_opens(tmp_path):
    async def main():
        ledger = CallLedger(tmp_path / "data" / "calls.db")
        monitor = HealthMonitor(tmp_path / "data", min_free_mb=1, ledger=ledger)
        report = await monitor.refresh()  # opens the ledger itself
        stopping = HealthMonitor(tmp_path / "data", 1, None, stopping=lambda: True)
        await stopping.refresh()
        await ledger.close()
        return report, monitor.refusal(), stopping

    report, refusal, stopping = run(main())
    assert report.ready and [c.name for c in report.checks] == ["data_dir", "disk", "records"]
    assert refusal is None
    assert stopping.report.status == "stopping" and stopping.refusal() == ("stopping", "the daemon is shutting down")
    disk = probe_disk(tmp_path / "not" / "yet", 10**9)
    assert not disk.ok and disk.data["path"] == str(tmp_path) and "server.min_free_mb" in disk.detail


# ---- the echo handler the daemon runs before the call loop is installed ------------------------------


class FakeCall:
    """Just what EchoHandler touches: audio() frames in, play() out, queued_playback_s."""

    def __init__(self, frames, queued_s=0.0):
        self.frames = frames
        self.queued_playback_s = queued_s
        self.played = []

    async def audio(self):
        for frame in self.frames:
            yield frame

    async def play(self, pcm):
        self.played.append(len(pcm))


def test_echo_prebuffers_then_drops_frames_past_its_cap():
    import numpy as np

    from edge.telephony.testing import EchoHandler

    frames = [np.full(320, i, dtype=np.int16) for i in range(6)]
    cushioned = FakeCall(frames)
    run(EchoHandler(prebuffer_frames=2).handle(cushioned))
    assert cushioned.played == [960, 320, 320, 320], "the first playback carries the two held frames"
    backed_up = FakeCall(frames, queued_s=0.5)
    echo = EchoHandler(prebuffer_frames=2, max_queued_s=0.12)
    run(echo.handle(backed_up))
    assert backed_up.played == [960] and echo.dropped_frames == 3
