"""Calls: the voice call loop, outcome and grading, call records, the post-call JSON, text-mode calls,
campaigns (the dialler, its CallPlacer protocol, the live-calls registry).

Voice calls: `Runtime.load(config)` once per process, then `CallLoop(runtime, records)` is the
CallHandler every transport runs (AudioSocket, WebSocket media, the simulator, the kiosk).
"""

from edge.calls.live import LiveCalls
from edge.calls.outcome import Outcome, Task, summarize
from edge.calls.records import Records
from edge.calls.runner import CallPlacer, CampaignRunner, Placed
from edge.calls.textcall import read_caller_file, run_text_call

__all__ = ["CallLoop", "CallPlacer", "CallSession", "CampaignRunner", "LiveCalls", "Outcome", "Placed", "Records",
           "Runtime", "Task", "read_caller_file", "run_text_call", "summarize"]

_LAZY = {"CallLoop": "edge.calls.session", "CallSession": "edge.calls.session", "Runtime": "edge.calls.runtime"}


def __getattr__(name: str):
    """The voice-call names load on first use (text calls do not need the audio stack)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edge.calls' has no attribute {name!r}")
