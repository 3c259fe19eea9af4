"""One voice call, telephony-agnostic: a `CallHandler` for edge.telephony's MediaCall.

The same session runs on the simulator, AudioSocket and WebSocket media:

    audio in -> VAD/endpointing -> ASR -> NLU (intents, mood) -> dialogue -> TTS -> audio out

Every model comes from the shared `Runtime`; a session holds only its own
state (VAD state, dialogue, playback). Each caller turn is written to the
call records once its reply's first audio has gone out (with its timing
marks); the outcome, grade and tasks when the call ends, however it ends.

Example:
    >>> runtime = Runtime.load(config.load(None))
    >>> server = AudioSocketServer.from_uri("tcp://127.0.0.1:9092", CallLoop(runtime, records))
    >>> await server.start()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.audio.endpoint import FRAME_MS
from edge.calls.events import AudioIn, CallEnded, CallStarted, Event
from edge.calls.handoff import WITHDRAWN
from edge.calls.listen import AsrStage, NluStage, VadStage
from edge.calls.outcome import summarize
from edge.calls.pipeline import Pipeline
from edge.calls.records import Records
from edge.calls.report import post_call
from edge.calls.respond import DialogueStage
from edge.calls.runtime import Runtime
from edge.calls.speak import OutputStage, TtsStage
from edge.dialog.engine import Dialogue, TurnLog
from edge.errors import CallWithdrawnError
from edge.nlu.emotion import MoodTracker
from edge.telephony.media import MediaCall

_LOGGER = logging.getLogger(__name__)

KEEP_RESULTS = 100
CATCH_UP_FRAMES = 4
"""Caller frames a session handles in one event-loop turn when it is behind."""
TURN_MARKS = ("asr_final", "nlu_done", "reply_chosen", "first_audio")
"""Per-turn timing marks, ms after the end of the caller's speech (the endpoint)."""


@dataclass
class CallResult:
    """What a finished call leaves: the post-call JSON and the session's counters."""

    report: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    """Events that left the pipeline's ends (kept only when the session was asked to)."""
    stats: dict[str, Any] = field(default_factory=dict)


class CallSession:
    """Runs one call on a MediaCall.

    Args:
        runtime: the shared models.
        call: the call's media.
        lead: lead fields for the script ({lead_name}, {company}, phone).
        start: wall-clock time the call starts at (turn times and due dates follow the media clock
            from there); default: now in the script's time zone.
        records: call records to write (None: none).
        keep_events: keep the events leaving the pipeline on the result (tests).
    """

    def __init__(self, runtime: Runtime, call: MediaCall, *, lead: dict[str, str] | None = None,
                 start: datetime | None = None, records: Records | None = None, keep_events: bool = False) -> None:
        self.runtime = runtime
        self.call = call
        self.lead = lead or {}
        tz = ZoneInfo(runtime.config.dialog.timezone)
        self.start = start or datetime.now(tz).replace(microsecond=0)
        self.records = records
        self.keep_events = keep_events
        self.events: list[Event] = []
        self.t_s = 0.0
        self.call_id = call.call_id
        self.dialogue = Dialogue(runtime.script, runtime.classifier, knowledge=runtime.knowledge, lead=self.lead,
                                 timezone=runtime.config.dialog.timezone,
                                 max_answer_chars=runtime.config.dialog.max_answer_chars)

    async def run(self) -> CallResult:
        runtime, config = self.runtime, self.runtime.call_config
        if self.records is not None:
            # Keyed by the transport's call id, so the daemon's ledger row (and a dialler's row placed
            # with CALL_UUID) and this record are one call; recovery after a crash relies on it. Awaited
            # before the call goes on (on the writer thread of a server's records): a replayed id gets a
            # fresh one, and the turns need the id it returns.
            try:
                self.call_id = await self.records.start_call_async(
                    self.lead, runtime.script.name, runtime.script.version,
                    self.start.isoformat(timespec="seconds"), call_id=self.call.call_id)
            except CallWithdrawnError as exc:  # reached us after the dialler booked a retry: not a word
                _LOGGER.warning("%s", exc, extra={"event": "call_withdrawn", **self.call.info.log_fields()})
                await self.call.hangup()
                return CallResult({"call_id": self.call_id, "outcome": WITHDRAWN, "grade": None})
        detector = runtime.detector()
        asr_info = dict(getattr(runtime.recognizer, "info", {}) or {})
        dialogue_stage = DialogueStage(self.dialogue, config, self.start, asr_info, self._on_turn)
        output = OutputStage(self.call, lambda: self.t_s)
        # Early recognition on a server only: the unpaced simulator runs models inline, and a recognizer that
        # is told what the callee says (the oracle) takes one line per recognition.
        early = runtime.offloaded and config.early_asr_ms > 0 and not hasattr(runtime.recognizer, "said")
        asr = AsrStage(runtime, early=early)
        stages = [VadStage(detector, config, early_ms=config.early_asr_ms if early else 0), asr,
                  NluStage(runtime, MoodTracker(runtime.cues) if runtime.cues is not None else None),
                  dialogue_stage, TtsStage(runtime), output]
        pipeline = Pipeline(stages, self.call_id, self._sink, keep_time=self.call.keep_time)
        pipeline.start()
        started = time.perf_counter()
        frames = 0
        reason = "local_hangup"
        try:
            await pipeline.push(CallStarted(self.call_id))
            in_a_row = 0
            async for frame, power in self.call.audio_with_power():
                self.t_s = frames * FRAME_MS / 1000
                frames += 1
                await pipeline.push(AudioIn(frame, self.t_s, power))
                self.call.keep_time()  # 100 calls' frames are handled in one turn of the event loop
                in_a_row += 1
                if in_a_row >= CATCH_UP_FRAMES and self.call.queued_audio_frames:
                    # Behind (the loop was held up): catch up a few frames per loop turn, so the 20 ms
                    # audio clock and the other calls get their turns in between.
                    in_a_row = 0
                    await asyncio.sleep(0)
                elif not self.call.queued_audio_frames:
                    in_a_row = 0
                if self.t_s >= config.max_call_s:
                    _LOGGER.warning("call %s: longer than call.max_call_s (%d s); hanging up", self.call_id,
                                    config.max_call_s)
                    reason = "max_call_length"
                    await self.call.hangup()
                    break
        finally:
            self.t_s = frames * FRAME_MS / 1000
            if reason != "max_call_length":
                reason = self.call.end_reason.value if self.call.end_reason is not None else "local_hangup"
            await pipeline.push(CallEnded(reason, self.t_s))
            await pipeline.stop()
            detector.close()
        report = self._finish(reason, dialogue_stage)
        stats = {"frames": frames, "wall_s": round(time.perf_counter() - started, 3),
                 "vad": vars(detector.stats), "pauses": output.pauses,
                 "early_asr": {"used": asr.early_used, "dropped": asr.early_dropped, "shed": asr.early_shed},
                 "stage_errors": {stage.name: stage.errors for stage in stages if stage.errors}}
        return CallResult(report, self.events, stats)

    def _finish(self, reason: str, stage: DialogueStage) -> dict[str, Any]:
        dialogue = self.dialogue
        if dialogue.state is None:
            dialogue.start(self.start)
        ended = self.start + timedelta(seconds=round(self.t_s))
        outcome = summarize(dialogue.script, dialogue.state, ended, dialogue.lexicon, dialogue.lead)
        opening = stage.opening.text if stage.opening is not None else ""
        report = post_call(self.call_id, dialogue, outcome, opening, ended)
        report["voice"] = {"end_reason": reason, "duration_s": round(self.t_s, 2),
                           "transport": self.call.info.transport,
                           "asr": dict(getattr(self.runtime.recognizer, "info", {}) or {}),
                           "latency_ms": turn_latencies(dialogue.log)}
        if self.records is not None:
            try:
                self.records.submit(self.records.finish_call, self.call_id, report)
            except Exception:
                _LOGGER.exception("call %s: writing the outcome failed", self.call_id)
        return report

    def _on_turn(self, turn: TurnLog) -> None:
        if self.records is not None:
            self.records.submit(self.records.add_turn, self.call_id, turn)

    def _sink(self, event: Event, upstream: bool) -> None:
        if self.keep_events:
            self.events.append(event)


def turn_latencies(log: list[TurnLog]) -> list[dict[str, Any]]:
    """Per answered turn: the timing marks (ms after the caller's speech ended) and what was heard."""
    rows = []
    for turn in log:
        marks = turn.timings_ms
        if "first_audio" not in marks and "reply_chosen" not in marks:
            continue
        row = {"turn": turn.index, "caller": turn.caller, "node": turn.node, "mood": turn.mood}
        row.update({name: marks[name] for name in TURN_MARKS if name in marks})
        for name in ("endpoint_silence", "queued_behind_s", "no_input_at_s"):
            if name in marks:
                row[name] = marks[name]
        rows.append(row)
    return rows


class CallLoop:
    """The CallHandler servers and the simulator run: one CallSession per call, models shared.

    Args:
        runtime: the shared models.
        records: where calls are recorded (None: nowhere).
        lead_for: call info -> lead fields (a campaign looks the number up); default: none.
        start_for: call info -> the call's start time (the simulator fixes it); default: now.
    """

    def __init__(self, runtime: Runtime, records: Records | None = None,
                 lead_for: Callable[[Any], dict[str, str]] | None = None,
                 start_for: Callable[[Any], datetime | None] | None = None, keep_events: bool = False,
                 on_result: Callable[[MediaCall, CallResult], None] | None = None) -> None:
        self.runtime = runtime
        self.records = records
        self.lead_for = lead_for
        self.start_for = start_for
        self.keep_events = keep_events
        self.on_result = on_result
        """Called with each finished call's result (the daemon puts the outcome on its ledger)."""
        self.results: dict[str, CallResult] = {}
        """The last KEEP_RESULTS calls' results, by media call id (a server keeps running for months)."""

    async def handle(self, call: MediaCall) -> None:
        lead = self.lead_for(call.info) if self.lead_for else {}
        start = self.start_for(call.info) if self.start_for else None
        session = CallSession(self.runtime, call, lead=lead, start=start, records=self.records,
                              keep_events=self.keep_events)
        result = self.results[call.call_id] = await session.run()
        if self.on_result is not None:
            try:
                self.on_result(call, result)
            except Exception:
                _LOGGER.exception("call %s: the result hook failed", call.call_id)
        while len(self.results) > KEEP_RESULTS:
            del self.results[next(iter(self.results))]


def create_handler(context: Any) -> CallLoop:
    """The daemon's call loop (`server.handler = "auto"`): models loaded once, each call's outcome,
    record id and turn latencies reported to the daemon's ledger and /metrics.

    `context` is edge.server's ServeContext (duck-typed: calls does not import server).
    """
    runtime = Runtime.load(context.config)
    records = Records.open(context.records_path, background=True)  # SQLite waits stay off the event loop
    context.on_close(records.close)  # runs after runtime.close (hooks run in reverse): queued writes land
    context.on_close(runtime.close)
    metrics = context.metrics

    def on_result(call: MediaCall, result: CallResult) -> None:
        report = result.report
        context.note(call.call_id, outcome=report.get("outcome"), record_id=report.get("call_id"),
                     grade=report.get("grade"))
        for turn in report.get("voice", {}).get("latency_ms", []):
            if "first_audio" in turn:
                metrics.turn_seconds.observe(turn["first_audio"] / 1000)

    return CallLoop(runtime, records, on_result=on_result)
