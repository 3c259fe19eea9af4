"""What every media server shares: options, handler tasks, refusal when full, timeouts, stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Final, Protocol

from edge.errors import ConfigError
from edge.telephony.media import AudioBatcher, CallHandler, EndReason, MediaCall
from edge.telephony.pacer import FrameClock

__all__ = ["ServerOptions", "ServerStats"]

_LOGGER = logging.getLogger(__name__)

SWEEP_S: Final = 0.5


@dataclass
class ServerOptions:
    """Limits of a media server; the defaults suit 100 calls on a 2-core box."""

    max_calls: int = 100
    """Calls served at once; one more is refused politely (hangup / HTTP 503)."""
    first_frame_timeout_s: float = 5.0
    """The peer must identify the call (UUID frame, start message) within this."""
    idle_timeout_s: float = 30.0
    """A call with no media from the peer for this long is ended (a PBX sends 50 frames/s)."""
    handler_grace_s: float = 10.0
    """After a call ends, its handler has this long to finish (write records) before it is cancelled."""
    stop_timeout_s: float = 5.0
    """On stop, handlers have this long to finish before they are cancelled."""

    def validate(self) -> None:
        if self.max_calls < 1:
            raise ConfigError(f"max_calls must be >= 1, got {self.max_calls}")
        for name in ("first_frame_timeout_s", "idle_timeout_s", "handler_grace_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")


@dataclass
class ServerStats:
    calls: int = 0
    """Calls handed to the handler."""
    refused: int = 0
    """Connections refused because max_calls were active."""
    protocol_errors: int = 0
    """Connections closed for breaking the protocol."""
    timeouts: int = 0
    """Connections closed for silence (no identification, no media)."""
    handler_errors: int = 0
    """Handlers that raised."""


class Connection(Protocol):
    """What the shared machinery needs of one transport connection."""

    call: MediaCall | None
    connected_at: float
    last_rx: float
    ended_at: float | None

    def fail(self, reason: EndReason, message: str) -> None:
        """End the call (if any) for `reason` and close the connection."""


class CallRegistry:
    """Handler tasks of one server: a dict cleared by a done-callback, a sweep for timeouts, and stop.

    Transports call `admit()` on a new connection, `start()` with the
    coroutine that runs it, and `stop()` on shutdown.
    """

    def __init__(self, name: str, handler: CallHandler, options: ServerOptions) -> None:
        options.validate()
        self.name = name
        self.handler = handler
        self.options = options
        self.stats = ServerStats()
        self.clock = FrameClock()
        self.batcher = AudioBatcher(self.clock.catch_up)
        self.tasks: dict[Connection, asyncio.Task[None]] = {}
        self.gate: Callable[[], tuple[str, str] | None] | None = None
        """Asked before each call: None admits it; (reason, message) refuses it (the daemon's health check
        and its limit over all transports)."""
        self.on_refused: Callable[[str], None] | None = None
        """Told each refusal's reason: "stopping", "full" or "unhealthy" (the daemon counts them)."""
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def active(self) -> int:
        return len(self.tasks)

    @property
    def accepting(self) -> bool:
        return not self._stopping

    def stop_accepting(self) -> None:
        """Refuse every new call from now on; calls in progress go on (graceful shutdown, step one)."""
        self._stopping = True

    def admit(self, peer: str) -> bool:
        """True when one more call may start; logs and counts a refusal otherwise."""
        reason, message = None, ""
        if self._stopping:
            reason, message = "stopping", "the server is stopping"
        elif len(self.tasks) >= self.options.max_calls:
            reason, message = "full", (f"{len(self.tasks)} calls active (max_calls={self.options.max_calls}); raise "
                                       "max_calls or give the campaign another box")
        elif self.gate is not None and (refusal := self.gate()) is not None:
            reason, message = refusal
        if reason is None:
            return True
        self.stats.refused += 1
        _LOGGER.warning("%s: refusing a call from %s: %s", self.name, peer, message,
                        extra={"event": "call_refused", "transport": self.name, "reason": reason,
                               "active": len(self.tasks)})
        if self.on_refused is not None:
            self.on_refused(reason)
        return False

    def start(self, connection: Connection, coro: Any) -> None:
        """Run one connection's coroutine as a task kept in `tasks` until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks[connection] = task
        task.add_done_callback(lambda _t, c=connection: self.tasks.pop(c, None))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name=f"{self.name}-sweep")

    async def run_handler(self, call: MediaCall) -> None:
        """Run the handler on a call; a failure ends only this call. Lets queued audio finish on return."""
        self.stats.calls += 1
        _LOGGER.info("call started", extra={"event": "call_start", **call.info.log_fields()})
        try:
            await self.handler.handle(call)
        except asyncio.CancelledError:
            call._end(EndReason.SHUTDOWN if self._stopping else EndReason.HANDLER_ERROR)
            raise
        except Exception:
            self.stats.handler_errors += 1
            _LOGGER.exception("call %s: the handler raised; ending this call only", call.call_id,
                              extra={"event": "handler_error", **call.info.log_fields()})
            call._end(EndReason.HANDLER_ERROR)
            return
        if not call.ended and call.queued_playback_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.wait_played(), call.queued_playback_s + 1.0)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        opts = self.options
        while True:
            await asyncio.sleep(SWEEP_S)
            now = loop.time()
            for connection, task in list(self.tasks.items()):
                if connection.ended_at is not None:
                    if now - connection.ended_at > opts.handler_grace_s and not task.done():
                        _LOGGER.warning("%s: handler still running %.0f s after its call ended; cancelling it",
                                        self.name, opts.handler_grace_s)
                        task.cancel()
                elif connection.call is None and now - connection.connected_at > opts.first_frame_timeout_s:
                    self.stats.timeouts += 1
                    connection.fail(EndReason.TIMEOUT, f"the peer did not identify the call within "
                                    f"{opts.first_frame_timeout_s} s")
                elif now - connection.last_rx > opts.idle_timeout_s:
                    self.stats.timeouts += 1
                    connection.fail(EndReason.TIMEOUT, f"no media from the peer for {opts.idle_timeout_s} s")

    async def stop(self) -> None:
        """End every call (reason shutdown), give handlers stop_timeout_s, cancel the rest."""
        self._stopping = True
        for connection in list(self.tasks):
            connection.fail(EndReason.SHUTDOWN, "the server is stopping")
        tasks = list(self.tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.options.stop_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.clock.close()
