"""`salesbot serve`'s default handler: the call loop, reporting each call's outcome to the daemon."""

from types import SimpleNamespace

from edge.calls.session import CallLoop, CallResult, create_handler
from edge.config import Config
from edge.server.metrics import CallMetrics
from edge.server.serve_context import ServeContext


def test_create_handler_puts_outcome_record_id_and_turn_latency_on_the_ledger(tmp_path):
    context = ServeContext(Config(), tmp_path, tmp_path / "calls.db", CallMetrics())
    handler = create_handler(context)
    try:
        assert isinstance(handler, CallLoop) and handler.records is not None
        report = {"call_id": "abc123", "outcome": "callback_booked", "grade": "C",
                  "voice": {"latency_ms": [{"turn": 1, "first_audio": 40.0}, {"turn": 2, "reply_chosen": 5.0}]}}
        handler.on_result(SimpleNamespace(call_id="media-1"), CallResult(report))
        assert context.notes["media-1"] == {"outcome": "callback_booked", "record_id": "abc123", "grade": "C"}
        assert context.metrics.turn_seconds.count() == 1
    finally:
        for hook in reversed(context.close_hooks):
            hook()
