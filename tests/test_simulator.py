"""The in-process simulated caller: timeline, DTMF, barge-in, hangups, handler errors, pacing."""

import asyncio
import time

import numpy as np
import pytest

from edge.errors import InputError
from edge.telephony.media import EndReason
from edge.telephony.simulator import CallSimulator, Hangup, Press, Silence
from edge.telephony.testing import EchoHandler, ToneHandler, tone


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_echo_puts_both_sides_on_one_timeline():
    speech = tone(0.5, hz=500)
    result = run(CallSimulator([Silence(0.2), speech, Silence(0.3)], tail_s=0.2).run(EchoHandler()))
    assert result.end_reason is EndReason.REMOTE_HANGUP  # the caller hung up after the tail
    assert len(result.caller_audio) == len(result.bot_audio) == int(1.2 * 16000)
    (start, end), = result.bot_spans()
    assert 0.2 <= start <= 0.28 and 0.7 <= end <= 0.78  # echoed a frame or two later
    assert np.abs(result.bot_audio).max() > 6000  # through 8 kHz and back: still the tone


def test_dtmf_barge_in_and_handler_hangup():
    class Agent:
        """Talks; stops talking when the caller speaks; '0' means 'a human, please'."""

        def __init__(self):
            self.events = []

        async def handle(self, call):
            await call.play(tone(3.0))

            async def keys():
                async for event in call.dtmf():
                    self.events.append(event)
                    if event.digit == "0":
                        await call.hangup()

            task = asyncio.create_task(keys())
            async for frame in call.audio():
                if np.abs(frame).max() > 2000 and call.queued_playback_s:
                    self.events.append(("barge-in", round(call.clear_playback(), 1)))
            await task

    agent = Agent()
    result = run(CallSimulator([Silence(0.5), tone(0.3), Silence(0.2), Press("0"), Silence(1.0)]).run(agent))
    assert result.end_reason is EndReason.LOCAL_HANGUP and result.handler_error is None
    barge = agent.events[0]
    assert barge[0] == "barge-in" and 2.3 <= barge[1] <= 2.5
    assert agent.events[1].digit == "0" and 0.98 <= agent.events[1].at_s <= 1.1
    (start, end), = result.bot_spans()
    assert start <= 0.04 and 0.5 <= end <= 0.56  # the bot stopped within a frame of the caller speaking
    assert result.duration_s == pytest.approx(1.0, abs=0.05)


def test_handler_error_and_caller_hangup_are_results():
    class Broken:
        async def handle(self, call):
            async for _ in call.audio():
                raise RuntimeError("pipeline broke")

    result = run(CallSimulator([tone(0.2)]).run(Broken()))
    assert isinstance(result.handler_error, RuntimeError) and result.end_reason is EndReason.LOCAL_HANGUP
    result = run(CallSimulator([tone(0.2), Hangup(), tone(1.0)]).run(ToneHandler(5.0)))
    assert result.end_reason is EndReason.REMOTE_HANGUP and result.duration_s == pytest.approx(0.2, abs=0.03)
    with pytest.raises(InputError):
        CallSimulator([np.zeros(10, dtype=np.float32)])
    with pytest.raises(InputError):
        Press("x")


def test_real_time_pacing_is_optional():
    segments = [tone(0.3)]
    started = time.monotonic()
    run(CallSimulator(segments, tail_s=0.2, speed=1.0, wire_rate_hz=16000).run(EchoHandler()))
    real = time.monotonic() - started
    started = time.monotonic()
    run(CallSimulator(segments, tail_s=0.2).run(EchoHandler()))
    fast = time.monotonic() - started
    assert 0.45 <= real <= 0.9 and fast < real
