"""`salesbot serve` as a real process: systemd readiness, SIGTERM during calls, kill -9 and restart."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

from edge.calls.ledger import read_ledger
from tests.conftest import ROOT
from tests.daemon_peers import Peer

START_TIMEOUT_S = 30.0


class ServeProcess:
    """`salesbot serve --handler echo` on free loopback ports, logs to a file."""

    def __init__(self, tmp_path, name="serve", env=None):
        self.data = tmp_path / "data"
        self.log = tmp_path / f"{name}.log"
        config = tmp_path / "config.toml"
        config.write_text("[server]\nshutdown_grace_s = 1.0\nmin_free_mb = 1\n")
        command = [sys.executable, "-c", "from edge.cli import main; main()", "serve", "--config", str(config),
                   "--data-dir", str(self.data), "--audiosocket", "127.0.0.1:0", "--websocket", "off",
                   "--admin", "127.0.0.1:0", "--handler", "echo"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **(env or {})})
        self.ready = self._wait_for("ready")

    def lines(self):
        return self.log.read_text(encoding="utf-8").splitlines()

    def events(self):
        return [json.loads(line) for line in self.lines() if line.startswith("{")]

    def _wait_for(self, event):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for record in self.events():
                if record.get("event") == event:
                    return record
            if self.proc.poll() is not None:
                raise AssertionError(f"salesbot serve exited {self.proc.returncode}:\n" + "\n".join(self.lines()))
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"no {event!r} log line within {START_TIMEOUT_S} s:\n" + "\n".join(self.lines()))

    @property
    def port(self):
        return self.ready["ports"]["audiosocket"]

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def wait_rows(path, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_ledger(path) if path.exists() else []
        if predicate(rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"ledger never matched: {rows}")


def test_sigterm_during_calls_records_every_call_and_exits_0(tmp_path):
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(START_TIMEOUT_S)
    serve = ServeProcess(tmp_path, env={"NOTIFY_SOCKET": str(notify_path)})
    try:
        ready = listener.recv(4096).decode()

        async def calls():
            peers = [await Peer.connect(serve.port) for _ in range(3)]
            streams = [asyncio.create_task(p.stream(8.0, 300 + 100 * i)) for i, p in enumerate(peers)]
            await asyncio.sleep(0.5)
            streams[0].cancel()
            await peers[0].hangup()  # one call ends before the shutdown
            await asyncio.sleep(0.2)
            serve.proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*(p.wait_closed(limit_s=10) for p in peers[1:]))
            for task in streams:
                task.cancel()
            return peers

        peers = asyncio.run(asyncio.wait_for(calls(), 30))
        code = serve.proc.wait(15)
        stopping = listener.recv(4096).decode()
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
        listener.close()
    assert code == 0, "\n".join(serve.lines())
    assert "READY=1" in ready and "STOPPING=1" in stopping
    assert all(p.got_hangup for p in peers[1:]), "closed calls get a hangup frame"
    rows = {row["call_id"]: row for row in read_ledger(serve.data / "calls.db")}
    assert len(rows) == 3 and all(row["ended_at"] for row in rows.values())
    assert rows[str(peers[0].call_id)]["outcome"] == "caller_hangup"
    for peer in peers[1:]:
        assert rows[str(peer.call_id)]["outcome"] == "shutdown" and rows[str(peer.call_id)]["end_reason"] == "shutdown"
    events = [e.get("event") for e in serve.events()]
    assert "stopping" in events and events[-1] == "stopped"
    non_json = [line for line in serve.lines() if not line.startswith("{")]
    assert len(non_json) == 1 and non_json[0].startswith("admin API token (shown once")


def test_kill_9_mid_call_then_restart_marks_those_calls_interrupted(tmp_path):
    serve = ServeProcess(tmp_path)
    ledger = serve.data / "calls.db"
    try:
        async def calls():
            peers = [await Peer.connect(serve.port) for _ in range(3)]
            streams = [asyncio.create_task(p.stream(10.0)) for p in peers]
            await asyncio.to_thread(wait_rows, ledger, lambda rows: len(rows) == 3)
            streams[0].cancel()
            await peers[0].hangup()
            await asyncio.to_thread(wait_rows, ledger, lambda rows: any(r["ended_at"] for r in rows))
            serve.proc.kill()  # SIGKILL: no shutdown code runs
            serve.proc.wait(10)
            await asyncio.gather(*(p.wait_closed() for p in peers[1:]))
            for task in streams:
                task.cancel()
            return peers

        peers = asyncio.run(asyncio.wait_for(calls(), 30))
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
    before = {row["call_id"]: row for row in read_ledger(ledger)}
    assert sum(1 for row in before.values() if row["ended_at"] is None) == 2
    again = ServeProcess(tmp_path, name="restart")
    try:
        interrupted = next(e for e in again.events() if e.get("event") == "calls_interrupted")
        assert again.stop() == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
    assert interrupted["count"] == 2
    rows = {row["call_id"]: row for row in read_ledger(ledger)}
    assert rows[str(peers[0].call_id)]["outcome"] == "caller_hangup"
    for peer in peers[1:]:
        row = rows[str(peer.call_id)]
        assert row["outcome"] == "interrupted" and row["end_reason"] == "interrupted" and row["ended_at"]


def test_serve_reports_bad_settings_in_one_line(tmp_path):
    from click.testing import CliRunner

    from edge.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path), "--audiosocket", "nonsense"])
    assert result.exit_code == 1 and "--audiosocket must be HOST:PORT" in result.output
    assert "Traceback" not in result.output
