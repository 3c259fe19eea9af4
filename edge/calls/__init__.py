"""Calls: outcome and grading, call records, the post-call JSON, text-mode calls,
campaigns (the dialler, its CallPlacer protocol, the live-calls registry)."""

from edge.calls.live import LiveCalls
from edge.calls.outcome import Outcome, Task, summarize
from edge.calls.records import Records
from edge.calls.runner import CallPlacer, CampaignRunner, Placed
from edge.calls.textcall import read_caller_file, run_text_call

__all__ = ["CallPlacer", "CampaignRunner", "LiveCalls", "Outcome", "Placed", "Records", "Task", "read_caller_file",
           "run_text_call", "summarize"]
