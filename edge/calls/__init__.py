"""Calls: outcome and grading, call records, the post-call JSON, text-mode calls."""

from edge.calls.outcome import Outcome, Task, summarize
from edge.calls.records import Records
from edge.calls.textcall import read_caller_file, run_text_call

__all__ = ["Outcome", "Records", "Task", "read_caller_file", "run_text_call", "summarize"]
