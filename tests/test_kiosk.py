"""The kiosk below the device boundary: gate, start triggers, idle timeout, handlers, on an in-memory sound card.

LoopbackPort feeds the speaker back into the microphone (a room echo), so these tests check that
the bot never hears its own prompt, with no sound hardware.
"""

from __future__ import annotations

import asyncio
import logging
import queue

import numpy as np
import pytest

from edge.config import Config, KioskConfig
from edge.errors import ConfigError, InputError
from edge.kiosk import EnterKey, HalfDuplexGate, Kiosk, LoopbackPort, PhraseSpotter, VoiceStart, build_handler
from edge.kiosk.conversation import ConversationClock, EndWhy
from edge.kiosk.handlers import RepeatHandler
from edge.kiosk.levels import audible, rms_dbfs
from edge.kiosk.triggers import load_start_words, normalize
from edge.telephony.media import FRAME_SAMPLES, EndReason, MediaCall
from edge.telephony.testing import EchoHandler, tone

FRAME_S = 0.02


def burst(seconds: float, hz: float = 300.0) -> np.ndarray:
    """A loud tone standing in for a visitor's speech (about -13 dBFS)."""
    return tone(seconds, hz, 7000)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 16000), dtype=np.int16)


def options(**overrides) -> KioskConfig:
    values = {"idle_timeout_s": 2.0, "max_conversation_s": 30.0, "gate_tail_ms": 200}
    values.update(overrides)
    config = KioskConfig(**values)
    config.validate()
    return config


class Recorder:
    """Plays `prompt` at the start, records every frame it hears (with the step it arrived in), hangs up
    after `listen_s` or when the call ends."""

    def __init__(self, prompt: np.ndarray | None = None, listen_s: float | None = None, fail: bool = False):
        self.prompt = prompt
        self.listen_s = listen_s
        self.fail = fail
        self.frames: list[np.ndarray] = []
        self.calls: list[MediaCall] = []

    async def handle(self, call: MediaCall) -> None:
        self.calls.append(call)
        if self.fail:
            raise RuntimeError("boom")
        if self.prompt is not None:
            await call.play(self.prompt)
        async for frame in call.audio():
            self.frames.append(frame)
            if self.listen_s is not None and len(self.frames) * FRAME_S >= self.listen_s:
                await call.wait_played()
                return


def run(kiosk: Kiosk, max_conversations: int | None = 1, timeout_s: float = 20.0):
    async def go():
        return await asyncio.wait_for(kiosk.run(max_conversations), timeout_s)
    return asyncio.run(go())


# ---- gate, levels, clock -------------------------------------------------------------------------

def test_gate_mutes_while_playing_and_for_the_tail():
    gate = HalfDuplexGate(tail_ms=100, latency_ms=40)  # hold = ceil(140 / 20) = 7 frames
    assert gate.hold_frames == 7
    mic = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    pattern = [True, True, True] + [False] * 10
    out = [gate.process(mic, playing) for playing in pattern]
    gated = [flag for _, flag in out]
    assert gated == [True] * 3 + [True] * 7 + [False] * 3
    assert all(not frame.any() for frame, flag in out if flag)
    assert all((frame == mic).all() for frame, flag in out if not flag)
    assert gate.stats.frames_gated == 10 and not gate.closed


def test_gate_attenuates_when_asked():
    gate = HalfDuplexGate(tail_ms=0, attenuation_db=20)
    heard, gated = gate.process(np.full(FRAME_SAMPLES, 10000, dtype=np.int16), True)
    assert gated and heard.dtype == np.int16 and int(heard[0]) == 1000
    with pytest.raises(ConfigError):
        HalfDuplexGate(tail_ms=-1)


def test_levels():
    assert rms_dbfs(np.zeros(FRAME_SAMPLES, np.int16)) == -np.inf
    assert -4.4 < rms_dbfs(np.full(FRAME_SAMPLES, 20000, np.int16)) < -4.2  # 20 log10(20000 / 32768)
    assert audible(burst(0.02)) and not audible(np.full(FRAME_SAMPLES, 20, np.int16))


def test_conversation_clock():
    clock = ConversationClock(idle_timeout_s=2.0, max_s=10.0)
    clock.begin(0.0)
    assert clock.tick(1.9, False, False) is None
    assert clock.tick(2.0, False, False) is EndWhy.IDLE
    clock.begin(0.0)
    for step in range(1, 400):  # the bot talking for 8 s is not the visitor being idle
        assert clock.tick(step * 0.02, False, True) is None
    assert clock.tick(9.0, True, False) is None
    assert clock.tick(10.0, True, False) is EndWhy.MAX_LENGTH


# ---- the kiosk on a loopback sound card ----------------------------------------------------------

def test_bot_never_hears_its_own_prompt():
    prompt = burst(1.0, 440.0)
    # The visitor presses the key at once, stays silent during the prompt, then speaks at 1.6 s.
    port = LoopbackPort(np.concatenate([quiet(1.6), burst(0.5)]), echo_gain=0.6, echo_delay_ms=60)
    handler = Recorder(prompt, listen_s=3.0)
    kiosk = Kiosk(port, handler, options(), starters=[])
    asyncio.run(_press_then_run(kiosk))
    conversation = kiosk.stats.conversations[0]
    call = handler.calls[0]
    assert call.info.transport == "kiosk" and call.call_id.startswith("kiosk-")
    assert all(f.dtype == np.int16 and f.shape == (FRAME_SAMPLES,) for f in handler.frames)
    mic_levels = np.array([rms_dbfs(f) for f in port.mic])
    heard_levels = np.array([rms_dbfs(f) for f in handler.frames])
    echo_steps = np.flatnonzero(mic_levels[:75] > -30)
    assert len(echo_steps) >= 45, "the loopback room must really echo the prompt into the microphone"
    # The handler's frames start one step after the port's (the key press), so index i heard = port step i + 1.
    assert np.all(heard_levels[:70] == -np.inf), "the bot heard its own prompt"
    assert (heard_levels[82:100] > -20).sum() >= 15, "the visitor speaking after the prompt must be heard"
    assert conversation.frames_gated >= 50 + 10 - 1  # 1 s of prompt + 60 ms echo delay + 200 ms tail
    assert conversation.frames_out >= 50
    assert conversation.end_detail == "handler_done" and conversation.end_reason is EndReason.LOCAL_HANGUP


async def _until(predicate, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.001)):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached in time")


async def _press_then_run(kiosk: Kiosk, max_conversations=1):
    async def press():
        await kiosk.ready.wait()
        kiosk.press()
    task = asyncio.create_task(press())
    stats = await asyncio.wait_for(kiosk.run(max_conversations), 20)
    await task
    return stats


def test_echo_handler_does_not_feed_back():
    # EchoHandler plays back everything it hears at once; without the gate its own playback would come
    # back through the room (gain 0.9) forever. With the gate (half-duplex: the visitor is muted while the
    # bot plays, so the echo is choppy) nothing is played after the visitor stops, and the conversation idles out.
    port = LoopbackPort(np.concatenate([quiet(0.2), burst(0.4), quiet(0.1)]), echo_gain=0.9, echo_delay_ms=40)
    kiosk = Kiosk(port, EchoHandler(), options(), starters=[])
    asyncio.run(_press_then_run(kiosk))
    played = [i for i, f in enumerate(port.played) if audible(f)]
    assert played and played[0] >= 10 and played[-1] <= 30 + 5, played  # visitor: steps 10-29
    conversation = kiosk.stats.conversations[0]
    assert conversation.end_detail == "idle_timeout" and conversation.end_reason is EndReason.TIMEOUT


def test_voice_start_repeat_and_idle_timeout():
    visitor = np.concatenate([burst(0.3), quiet(1.0), burst(0.6, 500.0), quiet(0.2)])
    port = LoopbackPort(visitor, echo_gain=0.5, echo_delay_ms=60)
    handler = RepeatHandler()
    kiosk = Kiosk(port, handler, options(), starters=[VoiceStart(min_speech_ms=300)])
    stats = run(kiosk)
    (conversation,) = stats.conversations
    assert conversation.trigger == "voice"
    assert 0.25 <= conversation.started_s <= 0.4
    assert handler.repeats == 1
    # the beep, then the 0.6 s utterance played back (about 30 frames); nothing played twice
    played = sum(audible(f) for f in port.played)
    assert 33 <= played <= 45, played
    assert conversation.end_detail == "idle_timeout"
    assert conversation.ended_s - conversation.started_s < 6.0


def test_push_to_talk_starts_and_ends_and_stdin_eof_stops():
    lines: queue.Queue[str] = queue.Queue()
    port = LoopbackPort(None, echo_gain=0.0, max_s=30)
    handler = Recorder()
    kiosk = Kiosk(port, handler, options(idle_timeout_s=10.0), starters=[EnterKey(lines.get)])

    async def go():
        run_task = asyncio.create_task(kiosk.run(None))
        await kiosk.ready.wait()
        lines.put("\n")
        await _until(lambda: kiosk.active)
        for _ in range(10):
            await asyncio.sleep(0)
        lines.put("\n")  # the visitor is done
        await _until(lambda: not kiosk.active)
        lines.put("")  # end of input: nothing else can start a conversation
        return await asyncio.wait_for(run_task, 10)

    stats = asyncio.run(go())
    (conversation,) = stats.conversations
    assert conversation.trigger == "enter"
    assert conversation.end_detail == "key" and conversation.end_reason is EndReason.REMOTE_HANGUP
    assert handler.calls[0].ended


def test_phrase_spotter_starts_on_a_start_phrase_only():
    heard_lengths = []

    def transcribe(pcm: np.ndarray) -> str:
        heard_lengths.append(len(pcm) / 16000)
        return "嗯。" if len(pcm) < 16000 * 1.2 else "你好，我想咨询一下"  # 0.8 s vs 1.6 s with pre-roll and tail

    spotter = PhraseSpotter(transcribe, ["你好", "请问"])
    visitor = np.concatenate([burst(0.4), quiet(1.0), burst(1.0), quiet(1.0)])
    port = LoopbackPort(visitor, echo_gain=0.0)
    handler = Recorder(listen_s=0.5)
    kiosk = Kiosk(port, handler, options(), starters=[spotter])
    stats = run(kiosk)
    (conversation,) = stats.conversations
    assert conversation.trigger == "phrase"
    assert conversation.started_s > 2.4  # after the second utterance ended, not the first
    assert spotter.heard == ["嗯。", "你好，我想咨询一下"]
    assert len(heard_lengths) == 2 and heard_lengths[0] < heard_lengths[1]


def test_phrase_matching_and_intents():
    spotter = PhraseSpotter(lambda pcm: "", ["你 好!", "请问"], classify=lambda text: ["ask_price"],
                            intents=["ask_price"])
    assert normalize("你好， 我想 咨询！") == "你好我想咨询"
    assert spotter.matches("喂，你好呀")
    assert spotter.matches("这个多少钱")  # through the intent
    assert not PhraseSpotter(lambda pcm: "", ["请问"]).matches("多少钱")
    phrases, intents = load_start_words()
    assert "你好" in phrases and "greeting" in intents
    with pytest.raises(ConfigError):
        PhraseSpotter(lambda pcm: "", ["，。"])


def test_a_failing_handler_ends_only_its_conversation(caplog):
    port = LoopbackPort(np.concatenate([burst(0.4), quiet(0.6), burst(0.4), quiet(3.0)]), echo_gain=0.0)
    handler = Recorder(fail=True)
    kiosk = Kiosk(port, handler, options(), starters=[VoiceStart(min_speech_ms=300)])
    with caplog.at_level(logging.ERROR):
        stats = run(kiosk, max_conversations=2)
    assert [c.end_reason for c in stats.conversations] == [EndReason.HANDLER_ERROR] * 2
    assert stats.conversations[0].handler_error == "RuntimeError: boom"


def test_port_end_stops_the_kiosk():
    port = LoopbackPort(None, max_s=0.5)
    stats = run(Kiosk(port, Recorder(), options(), starters=[]), max_conversations=None)
    assert stats.blocks == 25 and stats.conversations == []


def test_loopback_port_refuses_float_audio():
    with pytest.raises(InputError):
        LoopbackPort(np.zeros(10, dtype=np.float32))


# ---- handler selection -----------------------------------------------------------------------------

def test_build_handler_without_the_call_loop(monkeypatch, caplog):
    from edge.kiosk import handlers

    monkeypatch.setattr(handlers, "call_loop_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        handler, name = build_handler(Config())
    assert name == "repeat" and isinstance(handler, RepeatHandler)
    assert "no voice call loop" in caplog.text
    assert build_handler(Config.from_dict({"kiosk": {"handler": "echo"}}))[1] == "echo"
    assert build_handler(Config.from_dict({"kiosk": {"handler": "tone"}}))[1] == "tone"
    with pytest.raises(ConfigError, match="needs the voice call loop"):
        build_handler(Config.from_dict({"kiosk": {"handler": "callloop"}}))


def test_kiosk_config_is_checked():
    with pytest.raises(ConfigError, match="kiosk.start"):
        Config.from_dict({"kiosk": {"start": "clap"}})
    with pytest.raises(ConfigError, match="kiosk.gate_attenuation_db"):
        Config.from_dict({"kiosk": {"gate_attenuation_db": 3}})
    assert Config.from_dict({"kiosk": {"input": 2, "output": "USB"}}).kiosk.input == 2
