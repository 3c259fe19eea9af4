"""`salesbot serve`: one asyncio process with the media transports, the call handler and the admin API.

Start-up, in order: JSON logs; the call ledger (calls.db; rows of a crashed
run are marked interrupted); health checks; the admin token (created and
printed once); the handler (`server.handler`: the call loop when installed,
else echo, and the log says which); AudioSocket and WebSocket listeners; the
admin API; then `READY=1` to systemd. No thread per call: every call is a
task on this loop, model work is batched (edge.calls.batcher) on small pools.

Refusals are polite and counted: past `max_calls` over all transports, while
health fails (read-only data directory, disk full, records failing) and while
stopping, AudioSocket calls get a hangup frame (the dialplan continues) and
WebSocket upgrades a 503.

Shutdown (SIGTERM, SIGINT): `STOPPING=1`; listeners stop taking calls; calls
in progress get `shutdown_grace_s` to finish; the rest are closed (their
handlers get 5 s more, then are cancelled); close hooks run; every ledger
row is flushed; exit 0. SIGHUP runs the reload hooks, like POST /reload.
With $SALESBOT_PROFILE=FILE the event loop runs under cProfile while serving
(benchmarks/calls.py --profile uses it to show where the time goes).

Listeners: [telephony] audiosocket and websocket (media), [server] admin (HTTP).

Example:
    salesbot serve --config /etc/edge-salesbot/config.toml
    salesbot serve --audiosocket 0.0.0.0:9092 --websocket off --admin 127.0.0.1:8080 --handler echo
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Final

from edge import __version__
from edge.calls.batcher import abandoned_threads
from edge.calls.ledger import CallLedger
from edge.config import Config
from edge.errors import ConfigError, RecordsError, SalesbotError, ServeError
from edge.server import jsonlog
from edge.server.admin_api import AdminServer, AdminToken, build_app, load_or_create_token
from edge.server.call_guard import GuardedHandler
from edge.server.health import HealthMonitor
from edge.server.metrics import CallMetrics, install
from edge.server.sdnotify import notify
from edge.server.serve_context import ServeContext, resolve_handler, run_hook
from edge.telephony.audiosocket_server import AudioSocketServer
from edge.telephony.media import CallHandler
from edge.telephony.websocket_media import WebSocketMediaServer

__all__ = ["Daemon", "serve"]

_LOGGER = logging.getLogger(__name__)

CLOSE_TIMEOUT_S: Final = 5.0
"""After the grace period, closed calls' handlers get this long before they are cancelled."""
HOOK_TIMEOUT_S: Final = 10.0
FLUSH_TIMEOUT_S: Final = 10.0
REFUSAL_REASONS: Final = ("full", "unhealthy", "stopping")
GIL_SWITCH_S: Final = 0.001
"""How long another thread may hold the GIL while the event loop waits for it (Python's default: 5 ms).
The loop gives the GIL up at every socket send and receive, thousands of times a second with 100 calls;
each time the recognition-feeding, VAD, reply or records thread took it, the loop could wait up to
the full interval, and one tick of the 20 ms audio clock took up to ~18 ms to send every call's frame.
Measured at 100 calls: ticks over 10 ms 126 -> 22 per call-length run, underruns 7 -> 0."""
PROFILE_ENV: Final = "SALESBOT_PROFILE"
"""When set to a file path, the event loop is profiled (cProfile) from READY to the stop and dumped there."""


class Daemon:
    """The whole service in one object: `await start()`, `await wait()`, `await stop()`.

    Args:
        config: the loaded config (`[server]` holds addresses and limits).
        handler: run this handler instead of the one `server.handler` names (tests).
        handler_name: its description for the log, /health and the ledger.
        metrics: where metrics go (default: a fresh set, installed as edge.server.metrics.current()).
        announce: prints the admin token when it is created (default: print to stdout).
    """

    def __init__(self, config: Config, *, handler: CallHandler | None = None, handler_name: str | None = None,
                 metrics: CallMetrics | None = None, announce: Callable[[str], None] = print) -> None:
        config.server.validate()
        config.telephony.validate()
        if config.telephony.audiosocket is None and config.telephony.websocket is None:
            raise ConfigError("[telephony] audiosocket and websocket are both off; the daemon would take no calls: "
                              "set audiosocket = \"tcp://127.0.0.1:9092\" (or pass --audiosocket HOST:PORT)")
        self.config = config
        self.data_dir = config.data.resolved()
        self.metrics = metrics or CallMetrics()
        self.announce = announce
        self.context = ServeContext(config, self.data_dir, config.records.path(self.data_dir), self.metrics)
        self.ledger = CallLedger(self.context.records_path,
                                 on_error=lambda _exc: self.metrics.errors.inc(kind="records"))
        self.health_monitor = HealthMonitor(self.data_dir, config.server.min_free_mb, self.ledger,
                                            stopping=lambda: self._stopping)
        self._handler = handler
        self.handler_name = handler_name or ("custom" if handler is not None else "")
        self.guard: GuardedHandler | None = None
        self.transports: dict[str, AudioSocketServer | WebSocketMediaServer] = {}
        self.admin: AdminServer | None = None
        self.token: AdminToken | None = None
        self._stopping = False
        self._stopped = False
        self._stop_requested = asyncio.Event()
        self._stop_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._unwatch_gc: Callable[[], None] | None = None
        self._profiler: cProfile.Profile | None = None

    # ---- life cycle ------------------------------------------------------------------------------

    @property
    def ports(self) -> dict[str, int]:
        """Bound ports by listener name (useful with port 0)."""
        ports = {name: server.port for name, server in self.transports.items()}
        if self.admin is not None:
            ports["admin"] = self.admin.port
        return ports

    @property
    def active_calls(self) -> int:
        return len(self.guard.active) if self.guard is not None else 0

    async def start(self) -> None:
        """Bring everything up; on failure, tear down what started and raise.

        Raises:
            ServeError: a port is taken, the handler does not load, the token is unreadable.
        """
        install(self.metrics)
        for reason in REFUSAL_REASONS:
            self.metrics.rejected.inc(0, reason=reason)
        self.metrics.ready.function = lambda: 1.0 if self.health_monitor.report.ready and not self._stopping else 0.0
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        server = self.config.server
        try:
            await self.ledger.open()
        except RecordsError as exc:
            _LOGGER.error("%s; calls are refused until it opens", exc, extra={"event": "ledger_error"})
        await self.health_monitor.refresh()
        self.health_monitor.start()
        self.token = load_or_create_token(server.token_path(self.data_dir), self.announce)
        if self._handler is None:
            self._handler, self.handler_name = resolve_handler(server.handler, self.context)
        _LOGGER.info("handler: %s", self.handler_name, extra={"event": "handler", "handler": self.handler_name})
        self.guard = GuardedHandler(self._handler, context=self.context, ledger=self.ledger, metrics=self.metrics,
                                    budget_s=server.call_budget_s, handler_name=self.handler_name,
                                    stopping=lambda: self._stopping)
        telephony = self.config.telephony
        for name, cls, uri in (("audiosocket", AudioSocketServer, telephony.audiosocket),
                               ("websocket", WebSocketMediaServer, telephony.websocket)):
            if uri is None:
                continue
            transport = cls.from_uri(uri, self.guard, max_calls=server.max_calls, stop_timeout_s=CLOSE_TIMEOUT_S)
            transport.registry.gate = self._gate
            transport.registry.on_refused = lambda reason: self.metrics.rejected.inc(reason=reason)
            try:
                await transport.start()
            except OSError as exc:
                raise ServeError(f"{name} cannot listen on {uri}: {exc.strerror or exc}; free the port or pass "
                                 f"--{name} HOST:PORT (or off), or change [telephony] {name}") from None
            self.transports[name] = transport
        clocks = [transport.registry.clock.stats for transport in self.transports.values()]
        self.metrics.registry.gauge("salesbot_frame_clock_late_ticks_total",
                                    "20 ms ticks of the audio clock that woke over a period late (a busy loop or CPU).",
                                    function=lambda: sum(c.late_ticks for c in clocks), kind="counter")
        self.metrics.registry.gauge("salesbot_frame_clock_restarts_total",
                                    "Times the audio clock fell over 60 ms behind and restarted from now.",
                                    function=lambda: sum(c.restarts for c in clocks), kind="counter")
        self.metrics.registry.gauge("salesbot_frame_clock_slow_ticks_total",
                                    "Ticks of the audio clock that took over half a period to send every call's "
                                    "frame (the loop was on time, the sending was not).",
                                    function=lambda: sum(c.slow_ticks for c in clocks), kind="counter")
        self.metrics.registry.gauge("salesbot_frame_clock_longest_tick_seconds",
                                    "The longest one tick of the audio clock took to send every call's frame.",
                                    function=lambda: max((c.longest_tick_s for c in clocks), default=0.0))
        admin_host, admin_port = server.admin_address()
        self.admin = AdminServer(build_app(self, self.token), admin_host, admin_port)
        await self.admin.start()
        # Everything loaded so far (modules, models) lives as long as the process: keep it out of the
        # garbage collector's full passes, which otherwise stall the 20 ms clock for tens of ms.
        gc.collect()
        gc.freeze()
        self._switch_s = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        self._unwatch_gc = self.metrics.watch_gc()
        if os.environ.get(PROFILE_ENV):
            self._profiler = cProfile.Profile()
            self._profiler.enable()
        report = self.health_monitor.report
        _LOGGER.info("ready: %s; health %s", ", ".join(f"{k} {v}" for k, v in self.ports.items()), report.status,
                     extra={"event": "ready", "ports": self.ports, "handler": self.handler_name,
                            "health": report.status, "pid": os.getpid(), "version": __version__})
        notify("READY=1", f"STATUS=taking calls on {self._listening()}; handler {self.handler_name}"
               if report.ready else f"STATUS=refusing calls: {report.summary()}")

    def _listening(self) -> str:
        return ", ".join(f"{name} :{port}" for name, port in self.ports.items() if name != "admin")

    def request_stop(self) -> None:
        """Ask for a graceful shutdown (the signal handlers call this)."""
        self._stop_requested.set()

    async def wait(self) -> None:
        """Return once a stop was requested."""
        await self._stop_requested.wait()

    async def stop(self) -> None:
        """Stop taking calls, give active ones the grace period, close the rest, flush records. Idempotent."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(), name="daemon-stop")
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        self._stopping = True
        grace = self.config.server.shutdown_grace_s
        notify("STOPPING=1", f"STATUS=stopping: {self.active_calls} calls get up to {grace:g} s")
        _LOGGER.info("stopping: no new calls; %d active get up to %g s to finish", self.active_calls, grace,
                     extra={"event": "stopping", "active": self.active_calls})
        for transport in self.transports.values():
            transport.stop_accepting()
        if self.guard is not None and self.guard.active:
            try:
                async with asyncio.timeout(grace):
                    await self.guard.idle.wait()
            except TimeoutError:
                _LOGGER.info("grace period over: closing %d calls", self.active_calls,
                             extra={"event": "closing_calls", "active": self.active_calls})
        for name, transport in self.transports.items():
            try:
                await transport.stop()
            except Exception:
                _LOGGER.exception("stopping %s failed; going on with the shutdown", name)
        for hook in reversed(self.context.close_hooks):
            try:
                async with asyncio.timeout(HOOK_TIMEOUT_S):
                    await run_hook(hook)
            except Exception:
                _LOGGER.exception("a close hook failed; going on with the shutdown")
        await self.health_monitor.stop()
        if not await self.ledger.close(FLUSH_TIMEOUT_S):
            _LOGGER.error("call ledger writes still pending after %g s; some rows may be incomplete",
                          FLUSH_TIMEOUT_S, extra={"event": "ledger_flush_timeout"})
        if self.admin is not None:
            await self.admin.stop()
        for task in list(self._background):
            task.cancel()
        if self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(os.environ[PROFILE_ENV])
            _LOGGER.info("event-loop profile written to %s", os.environ[PROFILE_ENV], extra={"event": "profile"})
        if self._unwatch_gc is not None:
            self._unwatch_gc()
            gc.unfreeze()
            sys.setswitchinterval(self._switch_s)
        self._stopped = True
        _LOGGER.info("stopped; %d ledger writes, %d failed", self.ledger.writes, self.ledger.failures,
                     extra={"event": "stopped", "writes": self.ledger.writes, "failures": self.ledger.failures})

    # ---- admission -------------------------------------------------------------------------------

    def _gate(self) -> tuple[str, str] | None:
        if self._stopping:
            return "stopping", "the daemon is shutting down"
        active = sum(transport.registry.active for transport in self.transports.values())
        if active >= self.config.server.max_calls:
            return "full", (f"{active} calls active (server.max_calls={self.config.server.max_calls}); raise "
                            "max_calls or give the campaign another box")
        return self.health_monitor.refusal()

    # ---- what the admin API calls (AdminBackend) --------------------------------------------------

    async def health(self) -> dict[str, Any]:
        report = (await self.health_monitor.refresh()).to_dict()
        report.update({"handler": self.handler_name, "active_calls": self.active_calls,
                       "max_calls": self.config.server.max_calls, "listening": self.ports, "version": __version__})
        return report

    def calls(self) -> dict[str, Any]:
        return {"active": self.active_calls, "max_calls": self.config.server.max_calls,
                "calls": self.guard.snapshot() if self.guard is not None else []}

    async def reload(self, actor: str = "admin-api") -> dict[str, Any]:
        """Run every reload hook (script, knowledge ...); errors are reported per hook, not raised.
        Each reload goes into the audit trail of calls.db (the dashboard's /api/audit lists it)."""
        done, errors = [], {}
        for name, hook in self.context.reload_hooks.items():
            try:
                async with asyncio.timeout(HOOK_TIMEOUT_S):
                    await run_hook(hook)
                done.append(name)
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                self.metrics.errors.inc(kind="reload")
        _LOGGER.info("reload: %s%s", ", ".join(done) or "nothing to reload",
                     f"; failed: {errors}" if errors else "", extra={"event": "reload", "reloaded": done})
        result: dict[str, Any] = {"reloaded": done, "errors": errors}
        if not self.context.reload_hooks:
            result["note"] = f"the handler ({self.handler_name}) registered no reload hooks"
        await asyncio.to_thread(self._audit, actor, "daemon.reload", {"reloaded": done, "errors": errors})
        return result

    def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """One audit row in calls.db; a failure is logged, never raised (the reload itself has happened)."""
        from edge.calls import audit
        from edge.calls.records import MIGRATIONS
        from edge.storage import open_database

        try:
            db = open_database(self.context.records_path, MIGRATIONS)
            try:
                with db.atomic():
                    audit.record(db, actor, action, "daemon", detail)
            finally:
                db.close()
        except Exception as exc:  # the audit must not break the reload it describes
            _LOGGER.error("audit: could not record %s (%s)", action, exc, extra={"event": "audit_failed"})

    def metrics_text(self) -> str:
        return self.metrics.render()

    def spawn(self, coro: Any) -> None:
        """Run a background coroutine whose task is kept until done (signal-triggered reloads)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _main(config: Config, announce: Callable[[str], None]) -> int:
    daemon = Daemon(config, announce=announce)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: daemon.spawn(daemon.reload(actor="sighup")))
    await daemon.start()
    await daemon.wait()
    await daemon.stop()
    return 0


def serve(config: Config, *, debug: bool = False, announce: Callable[[str], None] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit code (0 after a graceful stop).

    Raises:
        SalesbotError: it could not start (the CLI prints the message).
    """
    jsonlog.setup(logging.DEBUG if debug else logging.INFO)

    def _announce(line: str) -> None:
        print(line, flush=True)

    try:
        code = asyncio.run(_main(config, announce or _announce))
    except SalesbotError as exc:
        _LOGGER.error("cannot start: %s", exc, extra={"event": "start_failed"})
        raise
    stuck = abandoned_threads()
    if stuck:
        _LOGGER.error("%d model threads are still stuck in hung batches; exiting without waiting for them", stuck,
                      extra={"event": "exit_hard", "threads": stuck})
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(code)
    return code
