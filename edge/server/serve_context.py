"""What a call handler gets from the daemon, and how the daemon picks the handler.

A handler factory is any callable `factory(context: ServeContext) -> CallHandler`,
named in the config as `server.handler = "package.module:factory"`. The
default, "auto", runs the voice call loop when it is installed:
`edge.calls.session.create_handler(context)` if that module defines it, else
`CallLoop(Runtime.load(config), Records.open(...))`; when `edge.calls.session`
cannot be imported it runs the echo handler and says so in the log.

What the context offers a factory (all optional to use):

    def create_handler(context: ServeContext) -> CallHandler:
        runtime = Runtime.load(context.config)                       # models, once per process
        intents = context.intent_batcher(runtime.intent_model)       # batched, timed, closed at shutdown
        context.on_reload("script", runtime.reload_script)           # POST /reload, SIGHUP
        context.on_close(runtime.close)
        return CallLoop(runtime, Records.open(context.records_path), metrics=context.metrics)

and, inside a call: `context.note(call.call_id, outcome="meeting", record_id=rid)`
puts the call's outcome and its record id on the daemon's ledger row and in
`salesbot_calls_total{outcome=...}`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.calls.batcher import IntentBatcher, MicroBatcher
from edge.config import Config
from edge.errors import ServeError
from edge.server.metrics import CallMetrics
from edge.telephony.media import CallHandler

__all__ = ["HandlerFactory", "ServeContext", "resolve_handler"]

_LOGGER = logging.getLogger(__name__)

HandlerFactory = Callable[["ServeContext"], CallHandler]
ECHO_CUSHION_FRAMES: Final = 5
"""The daemon's echo holds 100 ms before it starts playing (see _echo)."""
ECHO_MAX_QUEUED_S: Final = 0.2
Hook = Callable[[], Any | Awaitable[Any]]


@dataclass
class ServeContext:
    """The daemon's services for the handler (one per process)."""

    config: Config
    data_dir: Path
    records_path: Path
    """calls.db: the call records database (the daemon's ledger lives in it too)."""
    metrics: CallMetrics
    reload_hooks: dict[str, Hook] = field(default_factory=dict)
    close_hooks: list[Hook] = field(default_factory=list)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def on_reload(self, name: str, hook: Hook) -> None:
        """Run `hook()` (sync or async) on POST /reload and SIGHUP; `name` labels its result."""
        self.reload_hooks[name] = hook

    def on_close(self, hook: Hook) -> None:
        """Run `hook()` at shutdown, after the last call ended and before records are flushed."""
        self.close_hooks.append(hook)

    def note(self, call_id: str, **fields: Any) -> None:
        """Attach fields to a call's ledger row; `outcome` also labels salesbot_calls_total."""
        self.notes.setdefault(call_id, {}).update(fields)

    def batcher(self, fn: Callable[[list[Any]], Any], name: str, **options: Any) -> MicroBatcher[Any, Any]:
        """A MicroBatcher whose batch sizes go to /metrics, closed at shutdown."""
        batcher: MicroBatcher[Any, Any] = MicroBatcher(fn, name=name, on_batch=self.metrics.batch_observer(name),
                                                       **options)
        self.on_close(batcher.close)
        return batcher

    def intent_batcher(self, model: Any, **options: Any) -> IntentBatcher:
        """IntentBatcher over `model.predict`, timed into salesbot_nlu_seconds, closed at shutdown."""
        batcher = IntentBatcher(model, on_batch=self.metrics.batch_observer("intent", self.metrics.nlu_seconds),
                                **options)
        self.on_close(batcher.close)
        return batcher


async def run_hook(hook: Hook) -> Any:
    result = hook()
    if inspect.isawaitable(result):
        result = await result
    return result


def resolve_handler(spec: str, context: ServeContext) -> tuple[CallHandler, str]:
    """The handler named by `server.handler`, and a description for the log and /health.

    Raises:
        ServeError: a factory that cannot be imported, or that fails to build its handler.
    """
    from edge.telephony.testing import ToneHandler

    if spec == "echo":
        return _echo(), "echo"
    if spec == "tone":
        return ToneHandler(seconds=2.0), "tone"
    if spec == "auto":
        return _auto(context)
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ServeError(f"server.handler {spec!r} cannot be loaded ({exc}); give package.module:factory of an "
                         "installed module, or 'auto'") from None
    return _build(factory, context, spec), spec


def _auto(context: ServeContext) -> tuple[CallHandler, str]:
    try:
        session = importlib.import_module("edge.calls.session")
    except ImportError as exc:
        reason = f"the voice call loop is not installed (edge.calls.session: {exc})"
        _LOGGER.warning("handler: echo, because %s; callers hear their own voice", reason,
                        extra={"event": "handler", "handler": "echo"})
        return _echo(), "echo (call loop not installed)"
    except Exception as exc:
        raise ServeError(f"the voice call loop (edge.calls.session) fails to import: {type(exc).__name__}: {exc}; "
                         "fix the install, or set server.handler = \"echo\" to test the line") from exc
    if hasattr(session, "create_handler"):
        return _build(session.create_handler, context, "edge.calls.session:create_handler"), "call loop"
    if hasattr(session, "CallLoop"):
        def factory(ctx: ServeContext) -> CallHandler:
            from edge.calls.records import Records
            from edge.calls.runtime import Runtime

            return session.CallLoop(Runtime.load(ctx.config), Records.open(ctx.records_path))
        return _build(factory, context, "edge.calls.session:CallLoop"), "call loop"
    raise ServeError("edge.calls.session defines neither create_handler(context) nor CallLoop; set server.handler "
                     "to package.module:factory")


def _echo() -> CallHandler:
    """The caller's audio back after a 100 ms cushion, dropping frames past 200 ms queued.

    A bot has its sentence queued ahead; a bare echo has only what the caller sent, so any jitter in the
    caller's frames would show as gaps in the bot's. The cushion stands in for the queued sentence, and
    the cap keeps one stall from delaying the rest of the call.
    """
    from edge.telephony.testing import EchoHandler

    return EchoHandler(prebuffer_frames=ECHO_CUSHION_FRAMES, max_queued_s=ECHO_MAX_QUEUED_S)


def _build(factory: HandlerFactory, context: ServeContext, name: str) -> CallHandler:
    try:
        handler = factory(context)
    except ServeError:
        raise
    except Exception as exc:
        raise ServeError(f"handler {name} failed to start: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(handler, "handle", None)):
        raise ServeError(f"handler {name} returned {type(handler).__name__}, which has no handle(call) method")
    return handler
