"""A whole simulated voice call: a callee script against the call loop, audio in to audio out.

The callee (edge.calls.simcallee) speaks through the built-in TTS and a
phone line; the bot hears it through its recognizer and answers through its
TTS, on the telephony simulator's 8 kHz wire, without real-time pacing. The
result has both sides on one timeline (a stereo WAV: callee left, bot
right), the post-call JSON and the per-turn latencies.

Example:
    >>> runtime = Runtime.load(config.load(None))
    >>> script = read_callee_file("edge/data/demo/meeting.txt")
    >>> call = asyncio.run(simulate(runtime, script))
    >>> call.report["outcome"], call.report["grade"]
    ('meeting_booked', 'A')
    >>> call.write_wav("call.wav")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from edge.audio.wav import write_wav_stereo
from edge.calls.records import Records
from edge.calls.runtime import Runtime
from edge.calls.session import CallLoop, CallResult
from edge.calls.simcallee import CallerScript, CalleeTiming, CalleeVoice, Said, SimulatedCallee
from edge.errors import InputError
from edge.telephony.simulator import CallSimulator, SimulationResult


@dataclass
class SimulatedCall:
    report: dict[str, Any]
    """The post-call JSON (with "voice": end reason, ASR, per-turn latencies)."""
    simulation: SimulationResult
    callee_log: list[Said]
    result: CallResult
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def caller_audio(self) -> np.ndarray:
        return self.simulation.caller_audio

    @property
    def bot_audio(self) -> np.ndarray:
        return self.simulation.bot_audio

    def write_wav(self, path: str | Path) -> Path:
        """Stereo 16 kHz WAV: callee left, bot right."""
        return write_wav_stereo(path, self.caller_audio, self.bot_audio)


def parse_lead(value: str | None) -> dict[str, str]:
    """"张总,华星科技,13800000000" -> lead fields."""
    if not value:
        return {}
    parts = [p.strip() for p in value.replace("，", ",").split(",", 2)]
    return {"lead_name": parts[0], "company": parts[1] if len(parts) > 1 else "",
            "phone": parts[2] if len(parts) > 2 else ""}


def start_time(script: CallerScript, timezone: str, now: datetime | None = None) -> datetime:
    """The call's start: `now`, else the script's `# now:` directive, else the present minute."""
    tz = ZoneInfo(timezone)
    if now is not None:
        return now if now.tzinfo else now.replace(tzinfo=tz)
    if "now" in script.directives:
        try:
            when = datetime.fromisoformat(script.directives["now"])
        except ValueError:
            raise InputError(f"caller file: `# now: {script.directives['now']}` is not an ISO date-time such as "
                             "2025-03-05T14:20") from None
        return when if when.tzinfo else when.replace(tzinfo=tz)
    return datetime.now(tz).replace(second=0, microsecond=0)


async def simulate(runtime: Runtime, script: CallerScript, *, lead: dict[str, str] | None = None,
                   now: datetime | None = None, records: Records | None = None, voice: CalleeVoice | None = None,
                   timing: CalleeTiming | None = None, audio_for=None, seed: int = 0,
                   max_duration_s: float = 900.0, call_id: str = "sim-0001", keep_events: bool = False,
                   speed: float | None = None) -> SimulatedCall:
    """Run one simulated call to its end (the bot hangs up, the callee hangs up, or time runs out).

    A recognizer with a `said(text)` method (edge.calls.oracle.OracleRecognizer) is told each
    line the callee starts; a real one hears the audio.
    """
    if speed is None and runtime.executor is not None:
        # Unpaced, the simulated clock only stands still while work runs inline; on worker threads it
        # would race ahead of the models.
        runtime = dataclasses.replace(runtime, executor=None, reply_executor=None, _batchers={})
    said = getattr(runtime.recognizer, "said", None)
    callee = SimulatedCallee(script.lines, voice or CalleeVoice.from_directives(script.directives), timing=timing,
                             on_say=said, audio_for=audio_for, seed=seed)
    if lead is None:
        lead = parse_lead(script.directives.get("lead"))
    start = start_time(script, runtime.config.dialog.timezone, now)
    loop = CallLoop(runtime, records, lead_for=lambda info: lead, start_for=lambda info: start,
                    keep_events=keep_events)
    simulator = CallSimulator(reactive=callee, max_duration_s=max_duration_s, call_id=call_id,
                              caller=lead.get("phone") or None, speed=speed)
    simulation = await simulator.run(loop)
    if simulation.handler_error is not None:
        raise simulation.handler_error
    result = loop.results[call_id]
    return SimulatedCall(result.report, simulation, callee.log, result,
                         {**result.stats, "end_reason": simulation.end_reason.value,
                          "duration_s": round(simulation.duration_s, 2)})
