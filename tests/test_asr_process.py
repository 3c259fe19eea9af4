"""Recognition in worker processes (edge/asr/process.py): the same results as in the daemon; a worker that
dies or hangs costs only its batch and is restarted; workers end with the runtime, and with a dead daemon."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from edge import asr
from edge.asr.base import decode_segments
from edge.asr.process import NICE, RecognizerProcesses
from edge.calls.runtime import Runtime
from edge.config import AsrConfig, CallConfig, Config
from edge.errors import ConfigError, SpeechEngineError
from tests.fakes import voice_runtime


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone too (its parent has not reaped it yet)
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def workers():
    pool = RecognizerProcesses(AsrConfig(), processes=1, timeout_s=3.0)
    yield pool
    pool.close()


def test_results_equal_the_recognizer_in_this_process(workers, speech):
    segments = [speech, speech[:16000], np.zeros(800, np.int16)]
    languages = ["cmn", None, "yue"]
    assert workers.decode_segments(segments, languages) == decode_segments(asr.open(AsrConfig()), segments, languages)
    assert workers.info["backend"] == "sherpa-onnx" and workers.info["processes"] == 1
    assert workers.info["graphs_loaded"] == ["cmn", "yue"]  # by the worker's warm-up, before it said ready
    (pid,) = workers.pids
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE), \
        "the event loop goes first"


def test_a_request_whose_worker_died_is_answered_by_a_fresh_one(workers, speech):
    (pid,) = workers.pids
    os.kill(pid, signal.SIGKILL)
    assert workers.decode_segments([speech], ["cmn"])[0].text
    assert workers.pids != [pid] and workers.restarts >= 1


def test_a_request_that_kills_its_worker_twice_fails(monkeypatch, speech):
    from concurrent.futures import Future

    from edge.asr import process

    sent = []

    def dies(self, segments, languages):
        sent.append(len(segments))
        future = Future()
        future.set_exception(process._WorkerDied("the recognition worker died (exit code -11)"))
        return None, future

    pool = RecognizerProcesses(AsrConfig(), processes=1, timeout_s=3.0)
    try:
        monkeypatch.setattr(process._Worker, "submit", dies)
        with pytest.raises(SpeechEngineError, match="died"):
            pool.decode_segments([speech], ["cmn"])
        assert sent == [1, 1]  # tried, and once more
    finally:
        pool.close()


def test_a_hung_worker_is_killed_after_the_timeout_and_restarted(workers, speech):
    (pid,) = workers.pids
    os.kill(pid, signal.SIGSTOP)  # as good as a decode that never returns
    started = time.monotonic()
    with pytest.raises(SpeechEngineError, match="within 3.0 s and was killed"):
        workers.decode_segments([speech], None)
    assert time.monotonic() - started < 6
    assert _gone(pid)
    assert workers.decode_segments([speech], None)[0].text


def test_workers_ignore_sigterm_and_end_with_close(speech):
    pool = RecognizerProcesses(AsrConfig(), processes=2)
    pids = pool.pids
    assert len(pids) == 2
    for pid in pids:
        os.kill(pid, signal.SIGTERM)  # the service manager signals the whole group; the daemon ends them
    assert len(pool.decode_segments([speech], None)) == 1 and pool.pids == pids
    pool.close()
    assert all(_gone(pid) for pid in pids)
    with pytest.raises(SpeechEngineError, match="closed"):
        pool.decode_segments([speech], None)


def test_a_worker_exits_when_its_daemon_dies(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        from edge.asr.process import NICE, RecognizerProcesses
        from edge.config import AsrConfig
        pool = RecognizerProcesses(AsrConfig(), processes=1)
        print(pool.pids[0], flush=True)
        os._exit(0)  # no close(): as if the daemon were killed
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                         cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    pid = int(out.stdout.split()[0])
    assert _gone(pid), "the orphaned worker read end-of-file on its pipe and exited"


def test_a_bad_model_fails_at_start_up_with_the_workers_error(tmp_path):
    with pytest.raises(Exception, match="asr.model|model"):
        RecognizerProcesses(AsrConfig(model=tmp_path / "nothing-here"), processes=1)
    with pytest.raises(ConfigError):
        RecognizerProcesses(AsrConfig(), processes=0)
    with pytest.raises(ConfigError, match="asr_processes"):
        CallConfig(asr_processes=9).validate()


def test_runtime_with_worker_processes_a_killed_worker_costs_one_turn_and_other_calls_go_on(
        voice_cache, speech):
    """Two calls' turns: the worker is killed while the first call's batch runs; that turn is recognized again
    by the restarted worker, and so is the second call's."""
    pool = RecognizerProcesses(AsrConfig(), processes=1, timeout_s=4.0)
    runtime = voice_runtime(voice_cache, recognizer=pool, offload=True, model_timeout_s=5.0)
    try:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)  # the first batch will sit in the worker

        async def main():
            first = asyncio.ensure_future(runtime.recognize(speech, "cmn"))
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGKILL)  # dies mid-batch
            heard = await first
            second = await runtime.recognize(speech, "cmn")
            return heard, second

        first, second = asyncio.run(asyncio.wait_for(main(), 30))
        assert first.text and second.text and pool.pids and pool.pids != [pid]
    finally:
        runtime.close()
    assert not pool.pids


def test_runtime_load_starts_workers_only_on_servers(monkeypatch):
    started = []

    class Recorder:
        def __init__(self, config, processes, timeout_s):
            started.append((processes, timeout_s))

    monkeypatch.setattr("edge.asr.process.RecognizerProcesses", Recorder)
    from edge.calls import runtime as runtime_module

    runtime_module._open_recognizer(Config(call=CallConfig(asr_processes=2, model_timeout_s=5.0)))
    assert started == [(2, 4.0)]
    local = runtime_module._open_recognizer(Config(call=CallConfig(offload=False)))
    assert not hasattr(local, "pids") and started == [(2, 4.0)]
    local = runtime_module._open_recognizer(Config(call=CallConfig(asr_processes=0)))
    assert not hasattr(local, "pids")
    assert Runtime  # the runtime drives workers as any recognizer with decode_segments


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            out += [int(p) for p in handle.read().split()]
    return out


def test_daemon_survives_a_killed_worker_and_sigterm_ends_the_new_one(tmp_path):
    """`salesbot serve` with the call loop: kill -9 its recognition worker during two calls; the calls go on,
    SIGTERM ends them with records, the daemon exits 0 and takes its (restarted) worker with it."""
    from edge.calls.ledger import read_ledger
    from tests.daemon_peers import Peer
    from tests.test_daemon_process import ServeProcess

    class CallLoopServe(ServeProcess):
        def __init__(self, tmp_path):
            self.data = tmp_path / "data"
            self.log = tmp_path / "serve.log"
            config = tmp_path / "config.toml"
            config.write_text("[server]\nshutdown_grace_s = 1.0\nmin_free_mb = 1\n[call]\nasr_processes = 1\n")
            command = [sys.executable, "-c", "from edge.cli import main; main()", "serve", "--config", str(config),
                       "--data-dir", str(self.data), "--audiosocket", "127.0.0.1:0", "--websocket", "off",
                       "--admin", "127.0.0.1:0"]
            with self.log.open("w") as out:
                self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            self.ready = self._wait_for("ready")

    serve = CallLoopServe(tmp_path)
    try:
        (worker,) = _children(serve.proc.pid)

        async def calls():
            peers = [await Peer.connect(serve.port) for _ in range(2)]
            streams = [asyncio.create_task(p.stream(30.0, 300 + 100 * i)) for i, p in enumerate(peers)]
            await asyncio.sleep(1.5)
            os.kill(worker, signal.SIGKILL)
            await asyncio.sleep(3.0)
            alive = [not p.closed.done() for p in peers]
            serve.proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*(p.wait_closed(limit_s=15) for p in peers))
            for task in streams:
                task.cancel()
            return peers, alive

        peers, alive = asyncio.run(asyncio.wait_for(calls(), 40))
        code = serve.proc.wait(20)
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
    assert alive == [True, True], "the calls outlived the worker"
    assert code == 0, "\n".join(serve.lines()[-20:])
    rows = {row["call_id"]: row for row in read_ledger(serve.data / "calls.db")}
    assert all(rows[str(p.call_id)]["ended_at"] for p in peers)
    started = [e["pid"] for e in serve.events() if e.get("event") == "asr_worker_started"]
    assert started[0] == worker
    assert all(_gone(pid, 5) for pid in started), "no worker outlives the daemon"
