"""Recognition in worker processes: `RecognizerProcesses(config, n)` is a recognizer whose decoding runs elsewhere.

On a 2-core server the daemon's event loop keeps the 20 ms media clock of
every call and holds the GIL nearly all the time; recognition threads in the
same process wait for it, so a burst of turns ending together queues for
seconds. Here each worker is a separate process (a fresh interpreter, as
multiprocessing's spawn starts, sharing no threads or locks with the daemon,
but without re-importing the daemon's main module) that loads the recognizer the
config names once and decodes segments sent to it over a pipe: int16 arrays
and languages in, `Result`s out. It offers the same `decode_segments` as the
offline recognizer, so the call runtime batches to it unchanged.

Failures stay with the batch that met them:

- a worker that dies (crash, OOM kill, `kill -9`) fails the requests it
  had with `SpeechEngineError` and is started afresh for the next one;
- a worker that does not answer within `timeout_s` is killed and restarted,
  its requests fail the same way;
- the worker runs at a lower priority (NICE) than the event loop;
- the worker ignores SIGINT/SIGTERM (the service manager signals the whole
  group): the daemon ends it at shutdown (`close()`), and a worker whose
  daemon died reads end-of-file on its pipe and exits.

Example:
    >>> workers = RecognizerProcesses(AsrConfig(), processes=1)   # loads the model in a worker
    >>> [r.text for r in workers.decode_segments([pcm16], ["cmn"])]
    ['您好我想问一下']
    >>> workers.close()
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from typing import Final

import numpy as np

from edge.asr.result import Result
from edge.config import AsrConfig
from edge.errors import ConfigError, SpeechEngineError

__all__ = ["RecognizerProcesses"]

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 60.0
"""A worker has this long to load its model and say it is ready."""
STOP_WAIT_S: Final = 2.0
"""At close, a worker has this long to exit after being told to; then it is killed."""
DIED_RETRIES: Final = 1
"""A request whose worker died under it goes once more to the restarted worker (the caller's turn is not
lost to a crash); one that kills that one too fails. A hung worker is not retried: its request had its time."""


NICE: Final = 5
"""The workers' niceness above the daemon's: when both want a core, the event loop (every call's 20 ms
clock) goes first and recognition takes the rest. Measured at 100 calls on a quiet 2-core box: 1249
underruns and turn p95 beyond the endpoint silence 2375 ms with 5, against 3459 and 2723 ms with
recognition in the daemon."""
_BOOT: Final = ("import contextlib, os, signal, sys\n"
                 f"with contextlib.suppress(OSError):\n    os.nice({NICE})\n"
                 "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                 "from multiprocessing.connection import Connection\n"
                 "conn = Connection(int(sys.argv[1]))\n"
                 "sys.path[:] = conn.recv()\n"
                 "from edge.asr.process import _serve\n"
                 "_serve(conn, conn.recv())\n")
"""The worker's program (`python -c`): no re-import of the daemon's main module, as multiprocessing's spawn
would do; the pipe is a socket pair whose worker end is passed by descriptor number."""


def _serve(conn: Connection, config: AsrConfig) -> None:
    """The worker process: load the recognizer, then answer ("decode", segments, languages) until told to stop
    or the daemon's end of the pipe closes."""
    from edge import asr
    from edge.asr.base import decode_segments
    from edge.asr.language import LANGUAGES

    try:
        recognizer = asr.open(config)
        # first-use costs before "ready", each language's graph (if any) loaded too
        decode_segments(recognizer, [np.zeros(1600, np.int16)] * (2 + len(LANGUAGES)), [None, None, *LANGUAGES])
    except Exception as exc:  # noqa: BLE001 - reported to the daemon, which raises it at start-up
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", {**getattr(recognizer, "info", {}), "graphs_loaded": getattr(recognizer, "graphs_loaded", [])}))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the daemon is gone
        if message[0] != "decode":
            return
        try:
            conn.send(("ok", decode_segments(recognizer, message[1], message[2])))
        except Exception as exc:  # noqa: BLE001 - this batch fails, the worker goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _exit_code(process: subprocess.Popen) -> int | None:
    """The exit code of a worker that closed its end of the pipe (None if it has not exited within 1 s)."""
    try:
        return process.wait(1.0)
    except subprocess.TimeoutExpired:
        return None


class _WorkerDied(SpeechEngineError):
    """The worker process ended on its own with requests in it (not killed by the daemon for a timeout)."""


class _Link:
    """One run of a worker process: its pipe, and the futures of the requests sent to it, in order (it answers
    them in order); a reader thread resolves them, and fails the rest when the process goes."""

    def __init__(self, process: subprocess.Popen, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.waiting: deque[Future] = deque()
        self.why: str | None = None
        """Why the daemon killed it (a timeout), for the requests that were still waiting."""

    @property
    def alive(self) -> bool:
        # a worker the daemon killed is gone even before it is reaped (poll() says None while the reader
        # thread is waiting for its exit code, and a request sent then would be failed with it)
        return self.why is None and self.process.poll() is None and not self.conn.closed

    def read(self) -> None:
        while True:
            try:
                reply = self.conn.recv()
            except (EOFError, OSError):
                break
            future = self.waiting.popleft()
            if reply[0] == "ok":
                future.set_result(reply[1])
            else:
                future.set_exception(SpeechEngineError(f"recognition failed in its worker: {reply[1]}"))
        what = self.why or f"died (exit code {_exit_code(self.process)})"
        error = f"the recognition worker {what}; it is restarted for the next request"
        if self.waiting:
            _LOGGER.error("recognition worker (pid %d) %s with %d requests in it", self.process.pid, what,
                          len(self.waiting), extra={"event": "asr_worker_failed", "pid": self.process.pid})
        failure = SpeechEngineError if self.why else _WorkerDied
        while self.waiting:
            self.waiting.popleft().set_exception(failure(error))

    def kill(self, why: str) -> None:
        self.why = self.why or why
        with contextlib.suppress(OSError):
            self.process.kill()


class _Worker:
    """One worker process (restarted when it has died); requests from several threads are pipelined."""

    def __init__(self, config: AsrConfig, index: int) -> None:
        self.config = config
        self.index = index
        self.link: _Link | None = None
        self.info: dict = {}
        self.starts = 0
        self._lock = threading.Lock()
        """Held to send (the order of requests is the order of replies) and to restart."""

    @property
    def alive(self) -> bool:
        return self.link is not None and self.link.alive

    @property
    def load(self) -> int:
        return len(self.link.waiting) if self.link is not None else 0

    def start(self) -> None:
        """Start the process and wait until its model is loaded (call with the lock held, or before use)."""
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen([sys.executable, "-c", _BOOT, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                       stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            theirs.close()  # only the worker holds its end: when it dies, ours reads EOF
        link = _Link(process, Connection(ours.detach()))
        self.starts += 1
        try:
            link.conn.send(list(sys.path))  # the worker imports edge from where the daemon did
            link.conn.send(self.config)
            silent = ("error", f"no answer within {START_TIMEOUT_S:g} s")
            reply = link.conn.recv() if link.conn.poll(START_TIMEOUT_S) else silent
        except (EOFError, OSError) as exc:
            reply = ("error", f"it exited (code {_exit_code(process)}: {exc or 'end of file'})")
        if reply[0] != "ready":
            _stop(link, 0.0)
            raise SpeechEngineError(f"the recognition worker could not load the model: {reply[1]}; check asr.model "
                                    "(`salesbot doctor`), or set call.asr_processes = 0 to see it in the daemon")
        self.info = reply[1]
        self.link = link
        threading.Thread(target=link.read, name=f"asr-worker-{self.index}", daemon=True).start()
        _LOGGER.info("recognition worker %d started (pid %d)", self.index, process.pid,
                     extra={"event": "asr_worker_started", "pid": process.pid})

    def submit(self, segments: list[np.ndarray], languages: list[str | None]) -> tuple[_Link, Future]:
        with self._lock:
            if not self.alive:
                if self.link is not None:
                    _LOGGER.warning("recognition worker %d is gone; starting it again", self.index,
                                    extra={"event": "asr_worker_restart"})
                    _stop(self.link, 0.0)
                self.start()
            link = self.link
            assert link is not None
            future: Future = Future()
            link.waiting.append(future)
            try:
                link.conn.send(("decode", segments, languages))
            except OSError as exc:
                link.kill(f"could not be reached ({exc})")
        return link, future

    def stop(self, wait_s: float) -> None:
        with self._lock:
            link, self.link = self.link, None
        if link is not None:
            _stop(link, wait_s)


def _stop(link: _Link, wait_s: float) -> None:
    """Ask the worker to exit (waiting up to wait_s), then kill it if it has not."""
    if wait_s and link.alive:
        with contextlib.suppress(OSError):
            link.conn.send(("stop",))
        try:
            link.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            pass
    link.kill("was stopped (the daemon is stopping)")
    link.process.wait(5.0)
    link.conn.close()


class RecognizerProcesses:
    """A recognizer (`decode_segments`, `info`) backed by `processes` worker processes; thread-safe.

    Requests go to the worker with the fewest waiting; several threads may have requests in one worker at
    once (it answers them in turn), so a worker need not wait for the daemon between requests.

    Args:
        config: the [asr] section each worker opens its recognizer from.
        processes: worker processes.
        timeout_s: a request not answered by then kills and restarts its worker.

    Raises:
        ConfigError: processes < 1.
        SpeechEngineError: a worker could not load the model (the worker's error is in the message).
    """

    def __init__(self, config: AsrConfig, processes: int = 1, timeout_s: float = 5.0) -> None:
        if processes < 1:
            raise ConfigError(f"recognition needs at least one worker process, got {processes}")
        self.processes = processes
        self.timeout_s = timeout_s
        self._workers = [_Worker(config, index) for index in range(processes)]
        self._closed = False
        try:
            for worker in self._workers:
                worker.start()
        except BaseException:
            self.close()
            raise
        self.info = {**self._workers[0].info, "processes": processes}

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (tests, the benchmark)."""
        return [w.link.process.pid for w in self._workers if w.link is not None and w.alive]

    @property
    def restarts(self) -> int:
        return sum(max(0, w.starts - 1) for w in self._workers)

    def decode_segments(self, segments: Sequence[np.ndarray], languages: Sequence[str | None] | None = None
                        ) -> list[Result]:
        """As `OfflineVadRecognizer.decode_segments`, in the least busy worker.

        Raises:
            SpeechEngineError: the worker died, hung, or the recognizer raised; or the workers are closed.
        """
        if self._closed:
            raise SpeechEngineError("the recognition workers are closed (the daemon is stopping)")
        segments = [np.asarray(s) for s in segments]
        languages = list(languages) if languages is not None else [None] * len(segments)
        attempt = 0
        while True:
            worker = min(self._workers, key=lambda w: w.load)
            link, future = worker.submit(segments, languages)
            try:
                return future.result(self.timeout_s)
            except FutureTimeout:
                link.kill(f"did not answer within {self.timeout_s:.1f} s and was killed")
                raise SpeechEngineError(f"the recognition worker did not answer within {self.timeout_s:.1f} s and "
                                        "was killed; it is restarted for the next request") from None
            except _WorkerDied:
                if attempt == DIED_RETRIES or self._closed:
                    raise
                attempt += 1
                _LOGGER.warning("recognition worker died with a request in it; trying it once more on a fresh one",
                                extra={"event": "asr_worker_retry"})

    def close(self) -> None:
        """End every worker (requests still waiting fail). Idempotent."""
        self._closed = True
        for worker in self._workers:
            worker.stop(STOP_WAIT_S)
