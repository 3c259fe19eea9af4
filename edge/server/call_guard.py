"""Around every call: ledger rows, metrics, the per-call budget; one call's failure stays in that call.

`GuardedHandler` is the handler the transports run; it runs the real one
(the call loop, echo) inside:

- a ledger row written when the call starts and completed when it ends, with
  its end reason, outcome and error, however it ends (the handler returns,
  raises, hangs past its budget, or the daemon shuts down);
- the per-call budget: a handler still running after `budget_s` is cancelled,
  its call hung up and recorded as `budget_exceeded` (CallBudgetError);
- metrics: active calls, calls by outcome, errors by kind, call durations.

An exception is re-raised to the transport, which ends only that call
(reason handler_error) and keeps serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Final

from edge.calls.ledger import CallEnd, CallLedger, CallStart, now_iso
from edge.errors import CallBudgetError
from edge.server.metrics import CallMetrics
from edge.server.serve_context import ServeContext
from edge.telephony.media import CallHandler, EndReason, MediaCall
from edge.telephony.privacy import mask_phone

__all__ = ["ActiveCall", "GuardedHandler", "outcome_for"]

_LOGGER = logging.getLogger(__name__)

PLAYOUT_SLACK_S: Final = 1.0
"""After the handler returns, its queued audio gets this long beyond its length to leave."""

_OUTCOME_BY_END: Final = {
    EndReason.REMOTE_HANGUP: "caller_hangup",
    EndReason.LOCAL_HANGUP: "completed",
    EndReason.SHUTDOWN: "shutdown",
    EndReason.HANDLER_ERROR: "error",
    EndReason.DISCONNECTED: "dropped",
    EndReason.PROTOCOL_ERROR: "dropped",
    EndReason.PEER_ERROR: "dropped",
    EndReason.TIMEOUT: "dropped",
}


def outcome_for(end_reason: EndReason | None) -> str:
    """The outcome of a call whose handler reported none, from how it ended."""
    return _OUTCOME_BY_END.get(end_reason, "completed") if end_reason is not None else "completed"


@dataclass
class ActiveCall:
    """A call in progress, as /calls shows it."""

    key: str
    call: MediaCall
    started_at: str
    started: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict[str, Any]:
        info = self.call.info
        return {"call_id": info.call_id, "transport": info.transport, "caller": mask_phone(info.caller),
                "callee": mask_phone(info.callee), "peer": info.peer, "started_at": self.started_at,
                "seconds": round(time.monotonic() - self.started, 1), "frames_in": self.call.stats.frames_in,
                "frames_out": self.call.stats.frames_out, "frames_in_dropped": self.call.stats.frames_in_dropped}


class GuardedHandler:
    """The CallHandler the transports run: records, metrics and the budget around `inner`.

    Args:
        inner: the real handler.
        context: the daemon's ServeContext (notes from the handler end up on the ledger row).
        ledger: where each call's row goes (None: nowhere).
        metrics: where counts and timings go.
        budget_s: longest a call's handler may run.
        handler_name: recorded on each row ("echo", "call loop").
        stopping: True once the daemon shuts down (a cancelled call is then "shutdown", not "cancelled").
    """

    def __init__(self, inner: CallHandler, *, context: ServeContext, ledger: CallLedger | None,
                 metrics: CallMetrics, budget_s: float, handler_name: str,
                 stopping: Any = lambda: False) -> None:
        self.inner = inner
        self.context = context
        self.ledger = ledger
        self.metrics = metrics
        self.budget_s = budget_s
        self.handler_name = handler_name
        self.stopping = stopping
        self.active: dict[str, ActiveCall] = {}
        self.idle = asyncio.Event()
        self.idle.set()

    def snapshot(self) -> list[dict[str, Any]]:
        """The calls in progress, oldest first (numbers masked)."""
        return [active.to_dict() for active in sorted(self.active.values(), key=lambda a: a.started)]

    async def handle(self, call: MediaCall) -> None:
        info = call.info
        started_at = now_iso()
        key = self.ledger.start(CallStart(info.call_id, info.transport, info.caller, info.callee, info.peer,
                                          self.handler_name, started_at)) if self.ledger else info.call_id
        entry = ActiveCall(key, call, started_at)
        self.active[key] = entry
        self.idle.clear()
        self.metrics.active_calls.inc(transport=info.transport)
        outcome: str | None = None
        end_reason: EndReason | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.budget_s) as budget:
                if self.ledger is not None:
                    await self.ledger.written(key)  # a call the daemon takes has its row before the bot speaks
                await self.inner.handle(call)
                await self._play_out(call)
        except TimeoutError:
            if not budget.expired():
                outcome, end_reason, error = "error", EndReason.HANDLER_ERROR, "TimeoutError inside the handler"
                self.metrics.errors.inc(kind="handler")
                raise
            outcome, error = "budget_exceeded", f"the handler ran past its budget of {self.budget_s:g} s"
            self.metrics.errors.inc(kind="budget")
            _LOGGER.warning("call %s: %s; hanging up (server.call_budget_s)", info.call_id, error,
                            extra={"event": "call_budget", **info.log_fields()})
            await call.hangup()
            end_reason = call.end_reason
            raise CallBudgetError(f"call {info.call_id}: {error}") from None
        except asyncio.CancelledError:
            outcome = "shutdown" if self.stopping() else "cancelled"
            end_reason = EndReason.SHUTDOWN if self.stopping() else (call.end_reason or EndReason.HANDLER_ERROR)
            raise
        except Exception as exc:
            outcome, end_reason, error = "error", EndReason.HANDLER_ERROR, f"{type(exc).__name__}: {exc}"
            self.metrics.errors.inc(kind="handler")
            raise
        else:
            if not call.ended:
                await call.hangup()
            end_reason = call.end_reason
        finally:
            self._finish(entry, outcome, end_reason, error)

    async def _play_out(self, call: MediaCall) -> None:
        """Let the audio the handler queued leave before hanging up (bounded by its length)."""
        if not call.ended and call.queued_playback_s:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(call.queued_playback_s + PLAYOUT_SLACK_S):
                    await call.wait_played()

    def _finish(self, entry: ActiveCall, outcome: str | None, end_reason: EndReason | None,
                error: str | None) -> None:
        call = entry.call
        notes = self.context.notes.pop(call.call_id, {})
        if outcome is None or outcome == "completed":
            outcome = str(notes.get("outcome") or outcome_for(end_reason))
        seconds = time.monotonic() - entry.started
        reason = end_reason.value if end_reason is not None else "unknown"
        if self.ledger is not None:
            self.ledger.end(entry.key, CallEnd(reason, outcome, error, seconds,
                                               {**notes, "frames_in": call.stats.frames_in,
                                                "frames_out": call.stats.frames_out,
                                                "frames_in_dropped": call.stats.frames_in_dropped}))
        self.active.pop(entry.key, None)
        if not self.active:
            self.idle.set()
        self.metrics.active_calls.dec(transport=call.info.transport)
        self.metrics.calls.inc(outcome=outcome)
        self.metrics.call_seconds.observe(seconds)
        _LOGGER.info("call %s finished: %s (%s) after %.1f s", call.call_id, outcome, reason, seconds,
                     extra={"event": "call_finished", "outcome": outcome, "end_reason": reason,
                            "seconds": round(seconds, 2), **call.info.log_fields()})
