"""The pieces under every transport: resampling, the 20 ms clock, MediaCall, masking, addresses."""

import asyncio
import doctest
import importlib
import time

import numpy as np
import pytest

from edge.errors import ConfigError, InputError
from edge.telephony.address import parse_uri
from edge.telephony.media import RENDER_FRAMES, CallInfo, EndReason, MediaCall
from edge.telephony.pacer import FrameClock
from edge.telephony.privacy import mask_phone
from edge.telephony.resample import process_block, process_many, resampler
from edge.telephony.testing import tone


def run(coro, timeout=10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.parametrize("module", [
    "edge.audio.g711", "edge.telephony.address", "edge.telephony.audiosocket", "edge.telephony.pacer",
    "edge.telephony.privacy", "edge.telephony.resample", "edge.telephony.simulator",
    "edge.telephony.audiosocket_server", "edge.telephony.websocket_media",
])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("rates", [(8000, 16000), (16000, 8000)])
def test_streaming_resampler_equals_one_shot_and_keeps_lengths(rates):
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32767, 8000).astype(np.int16)
    whole = resampler(*rates).process(x)
    stream, parts, i = resampler(*rates), [], 0
    while i < len(x):
        k = int(rng.integers(0, 700))
        parts.append(stream.process(x[i:i + k]))
        i += k
    streamed = np.concatenate(parts)
    assert len(whole) == len(streamed) == len(x) * rates[1] // rates[0]
    assert np.abs(whole.astype(int) - streamed).max() <= 1  # float32 fast path vs float64 path


@pytest.mark.parametrize("rates", [(8000, 16000), (16000, 8000)])
def test_batched_resampling_equals_call_by_call(rates):
    rng = np.random.default_rng(2)
    batched, single = [resampler(*rates) for _ in range(6)], [resampler(*rates) for _ in range(6)]
    got, want = [[] for _ in range(6)], [[] for _ in range(6)]
    for _ in range(30):
        items = [(k, rng.integers(-32768, 32767, int(rng.choice([160, 320, 161, 0, 1500]))).astype(np.int16))
                 for k in range(6) for _ in range(int(rng.integers(0, 3)))]  # a call may appear twice
        for (k, x), y in zip(items, process_many([(batched[k], x) for k, x in items])):
            got[k].append(y)
            want[k].append(single[k].process(x))
    for k in range(6):
        if got[k]:
            assert np.abs(np.concatenate(got[k]).astype(int) - np.concatenate(want[k])).max() <= 1


def test_resampler_is_clean_in_the_telephone_band():
    t8, t16 = np.arange(8000) / 8000, np.arange(16000) / 16000
    delay = 23.5 / 16000  # the filter's group delay
    up = resampler(8000, 16000).process((np.sin(2 * np.pi * 1000 * t8) * 10000).astype(np.int16))
    ref = np.sin(2 * np.pi * 1000 * (t16 - delay)) * 10000
    snr = 10 * np.log10(np.mean(ref[200:-200] ** 2) / np.mean((up[200:-200] - ref[200:-200]) ** 2))
    assert snr > 60
    # 6 kHz cannot exist at 8 kHz: downsampling must remove it (>= 50 dB down).
    high = (np.sin(2 * np.pi * 6000 * t16) * 10000).astype(np.int16)
    down = resampler(16000, 8000).process(high)
    assert np.sqrt(np.mean(down[100:].astype(float) ** 2)) < 10000 / np.sqrt(2) * 10 ** (-50 / 20)
    with pytest.raises(ConfigError, match="8000 or 16000"):
        resampler(8000, 44100)


def test_frame_clock_keeps_a_20ms_grid_without_drift():
    class Output:
        def __init__(self, n):
            self.times, self.n = [], n

        def tick(self):
            self.times.append(asyncio.get_running_loop().time())
            return len(self.times) < self.n

    async def main():
        clock = FrameClock()
        a, b = Output(50), Output(25)
        clock.add(a)
        clock.add(b)
        while len(a.times) < 50:
            await asyncio.sleep(0.05)
        await clock.close()
        gaps = np.diff(a.times)
        assert 0.97 <= a.times[-1] - a.times[0] <= 1.03  # 49 periods, no accumulated oversleep
        assert abs(np.median(gaps) - 0.02) < 0.003
        assert len(b.times) == 25 and len(clock) == 0

    run(main())


def test_frame_clock_catches_up_a_little_and_restarts_after_a_stall():
    class Output:
        sent = 0

        def tick(self):
            self.sent += 1
            return True

    async def main():
        clock = FrameClock()
        out = Output()
        clock.add(out)
        await asyncio.sleep(0.05)
        before = out.sent
        time.sleep(0.2)  # noqa: ASYNC251 - on purpose: the event loop is blocked for 10 periods
        await asyncio.sleep(0.001)
        burst = out.sent - before
        await clock.close()
        assert clock.stats.restarts == 1 and 3 <= burst <= 5  # ~60 ms caught up at once, not all 200 ms

    run(main())


def test_media_call_frames_playback_and_end():
    async def main():
        call = MediaCall(CallInfo("c1", "test", caller="13800138000"), wire_rate_hz=8000, max_queued_frames=3)
        call._feed_audio(np.zeros(80, dtype=np.int16))   # half a frame: nothing yet
        call._feed_audio(np.zeros(240, dtype=np.int16))  # 40 ms at 8 kHz -> two 16 kHz frames
        await call.play(tone(0.05))
        assert call.queued_playback_s == pytest.approx(0.05)
        frames = [call._next_frame() for _ in range(4)]
        assert [len(f) if f else None for f in frames] == [320, 320, 320, None]  # last one zero-padded
        await asyncio.wait_for(call.wait_played(), 1)
        for _ in range(5):
            call._feed_audio(np.zeros(160, dtype=np.int16))
        assert call.stats.frames_in_dropped == 4  # the handler did not read: only 3 are kept
        call._end(EndReason.REMOTE_HANGUP)
        got = [f async for f in call.audio()]
        assert len(got) == 3 and all(f.shape == (320,) for f in got)
        await call.play(tone(0.1))  # ignored after the end
        assert call.queued_playback_s == 0 and call.end_reason is EndReason.REMOTE_HANGUP
        with pytest.raises(InputError, match="int16"):
            await call.play(np.zeros(10, dtype=np.float32))
        assert call.info.log_fields()["caller"] == "138****8000"

    run(main())


def test_mask_phone_and_addresses():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("PJSIP/13800138000@trunk") == "PJSIP/138****8000@trunk"
    assert mask_phone("port 5060 ext 8001") == "port 5060 ext 8001"
    assert mask_phone(None) == "-"
    assert parse_uri("tcp://0.0.0.0:9092", ("tcp",)).port == 9092
    with pytest.raises(ConfigError, match="must start with"):
        parse_uri("udp://1.2.3.4:5", ("tcp",))
    with pytest.raises(ConfigError, match="needs a host and a port"):
        parse_uri("tcp://localhost", ("tcp",))
    with pytest.raises(ConfigError, match="bad address"):
        parse_uri("tcp://localhost:99999", ("tcp",))


@pytest.mark.parametrize("rates", [(8000, 16000), (16000, 8000)])
def test_whole_frame_and_block_resampling_equal_frame_by_frame(rates):
    """`frames()` (a reply rendered when queued) and `process_block()` (every call's inbound frame at
    once) give the numbers of `process()` called once per frame, with the history carried on (to the
    last bit but for float32 rounding: a matrix product may sum in another order)."""
    rng = np.random.default_rng(3)
    size = 320 if rates[0] == 16000 else 160
    x = rng.integers(-32768, 32767, size * 40).astype(np.int16)
    one, framed = resampler(*rates), resampler(*rates)
    want = np.stack([one.process(x[i:i + size]) for i in range(0, len(x), size)])
    got = np.concatenate([framed.frames(x[:size * 7], size), framed.frames(x[size * 7:], size)])
    assert np.abs(got.astype(int) - want).max() <= 1
    with pytest.raises(ValueError, match="whole frames"):
        framed.frames(x[:size + 1], size)
    calls, alone = [resampler(*rates) for _ in range(5)], [resampler(*rates) for _ in range(5)]
    for step in range(6):
        block = rng.integers(-32768, 32767, (5, size)).astype(np.int16)
        out = process_block(calls, block)
        assert np.abs(out.astype(int) - np.stack([r.process(row) for r, row in zip(alone, block)])).max() <= 1


def test_bot_audio_is_resampled_when_queued_and_leaves_in_order_with_the_tail_padded():
    """Bot audio is rendered for the wire a few frames at a time as it is sent (play() only queues it);
    the frames are those of resampling the queued audio frame by frame, across play() calls, the last
    one zero-padded."""
    rng = np.random.default_rng(4)

    async def main():
        call = MediaCall(CallInfo("c2", "test"), wire_rate_hz=8000)
        parts = [rng.integers(-20000, 20000, n).astype(np.int16) for n in (500, 140, 960, 333)]
        for part in parts:
            await call.play(part)
        assert call.queued_playback_s == pytest.approx(sum(map(len, parts)) / 16000)
        sent = []
        while (frame := call._next_frame()) is not None:
            sent.append(frame)
        await asyncio.wait_for(call.wait_played(), 1)
        audio = np.concatenate(parts)
        audio = np.concatenate([audio, np.zeros(-len(audio) % 320, np.int16)])
        down = resampler(16000, 8000)
        want = np.concatenate([down.process(audio[i:i + 320]) for i in range(0, len(audio), 320)])
        assert all(len(frame) == 320 for frame in sent) and call.stats.frames_out == len(sent) == 7
        assert np.abs(np.frombuffer(b"".join(sent), "<i2").astype(int) - want).max() <= 1
        # A barge-in drops what is queued, the half frame too; the next reply starts clean.
        await call.play(parts[2])
        call._next_frame()
        assert call.clear_playback() == pytest.approx((960 - 320) / 16000)
        assert call._next_frame() is None and call.queued_playback_s == 0
        await call.play(parts[0][:320])
        fresh = resampler(16000, 8000).process(parts[0][:320])
        assert np.abs(np.frombuffer(call._next_frame(), "<i2").astype(int) - fresh).max() <= 1
        # A long reply is only queued by play(); it is resampled RENDER_FRAMES at a time as it leaves.
        long = rng.integers(-20000, 20000, 16000 * 5).astype(np.int16)
        await call.play(long)
        assert not call._frames and call.queued_playback_s == pytest.approx(5.0)
        call._next_frame()  # a talk spurt starts with a call-specific first render, then RENDER_FRAMES each
        assert len(call._frames) == call._first_render - 1 and call.queued_playback_s == pytest.approx(5.0 - 0.02)
        while call._frames:
            call._next_frame()
        call._next_frame()
        assert len(call._frames) == RENDER_FRAMES - 1
        # Calls that start talking together render on different ticks.
        phases = {MediaCall(CallInfo(f"call-{k}", "test"))._first_render for k in range(20)}
        assert len(phases) >= 5 and all(1 <= p <= RENDER_FRAMES for p in phases)

    run(main())


def test_batched_inbound_frames_keep_each_calls_order_and_carry_their_power():
    """Many calls' wire frames resampled together: each call gets its own frames, in order, equal to
    resampling it alone, with the power the voice detector would measure (two frames at once, as after
    a late loop turn, too); a call that sends an odd chunk in the same flush is resampled on its own
    path and disturbs no one."""
    from edge.telephony.media import AudioBatcher

    rng = np.random.default_rng(5)

    async def main():
        batcher = AudioBatcher()
        calls = [MediaCall(CallInfo(f"c{k}", "test"), wire_rate_hz=8000, batcher=batcher) for k in range(4)]
        sent = [[] for _ in calls]
        for step in range(12):
            for k, call in enumerate(calls):
                n = 240 if (k == 3 and step % 3 == 0) else 160  # call 3 sends 30 ms now and then,
                n = 320 if (k in (1, 2) and step % 4 == 0) else n  # calls 1 and 2 two frames at once
                chunk = rng.integers(-30000, 30000, n).astype(np.int16)
                call._feed_audio(chunk)
                sent[k].append(chunk)
            await asyncio.sleep(0)  # the flush runs after this iteration's callbacks
        for call in calls:
            call._end(EndReason.REMOTE_HANGUP)
        got = [[item async for item in call.audio_with_power()] for call in calls]
        return sent, got, batcher

    sent, got, batcher = run(main())
    assert batcher.frames >= 3 * 12 - 4  # the usual case took the block path
    for k in range(4):
        audio = resampler(8000, 16000).process(np.concatenate(sent[k]))
        want = audio[:len(audio) // 320 * 320].reshape(-1, 320)
        assert np.abs(np.stack([frame for frame, _ in got[k]]).astype(int) - want).max() <= 1, k
        for frame, power in got[k]:
            if power is not None:
                x = frame.astype(np.float64)
                assert power == pytest.approx(np.mean(x * x) - np.mean(x) ** 2, rel=1e-4)
                assert frame.base is None or frame.base.shape == frame.shape  # its own row, not a view
    assert any(power is None for _, power in got[3])
    assert all(power is not None for k in (0, 1, 2) for _, power in got[k])


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a clock of its own: waiting advances it at once, and a test moves it by hand to stand
    for work that held the loop (no real time passes, so nothing here depends on the machine's speed)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        select = self._selector.select

        def no_wait(timeout=None):
            if timeout:
                self.now += timeout
            return select(0)

        self._selector.select = no_wait

    def time(self) -> float:
        return self.now


class _Counting:
    def __init__(self) -> None:
        self.sent = 0

    def tick(self) -> bool:
        self.sent += 1
        return True


def _on_virtual_time(main):
    loop = _VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


def test_frame_clock_counts_a_tick_that_wakes_late_from_its_sleep():
    """A stall while the clock sleeps makes its next tick late; that is counted (it used to be counted only
    when the clock found itself late without having slept)."""
    async def main(loop):
        clock, out = FrameClock(), _Counting()
        clock.add(out)
        await asyncio.sleep(0.1)  # 5 periods on time
        on_time = (clock.stats.late_ticks, out.sent)
        loop.now += 0.035  # a callback held the loop for 35 ms while the clock slept
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await clock.close()
        return on_time, clock.stats

    (late_before, sent), stats = _on_virtual_time(main)
    assert late_before == 0 and sent >= 5
    assert stats.late_ticks == 1 and stats.restarts == 0


def test_frame_clock_catch_up_sends_a_due_tick_from_inside_long_work():
    """Inside one long callback (no await), catch_up sends each tick as it falls due, and nothing early."""
    async def main(loop):
        clock, out = FrameClock(), _Counting()
        clock.add(out)
        await asyncio.sleep(0.03)  # ticking; the next tick is due within a period
        sent = [out.sent]
        clock.catch_up()  # nothing is due yet
        sent.append(out.sent)
        for _ in range(3):  # three steps of 20 ms each, the loop never gets control back
            loop.now += 0.02
            clock.catch_up()
            sent.append(out.sent)
        await clock.close()
        return sent, clock.stats

    sent, stats = _on_virtual_time(main)
    assert sent[1] == sent[0]
    assert sent[2:] == [sent[0] + 1, sent[0] + 2, sent[0] + 3]
    assert stats.late_ticks == 0 and stats.restarts == 0


def test_frame_clock_catch_up_does_nothing_while_idle():
    async def main(loop):
        clock, out = FrameClock(), _Counting()
        clock.catch_up()  # never started
        clock.add(out)
        clock.discard(out)
        await asyncio.sleep(0.1)  # the clock went idle
        loop.now += 1.0
        clock.catch_up()
        await clock.close()
        return out.sent

    assert _on_virtual_time(main) <= 1


def test_long_work_on_the_loop_keeps_the_line_clock_through_keep_time():
    """MediaCall.keep_time reaches its transport's clock; the inbound batcher and the call pipeline's stages
    call it after every step."""
    from edge.calls.events import Transcript, Utterance
    from edge.calls.pipeline import Pipeline, Stage
    from edge.telephony.media import AudioBatcher, Wire

    class Recording(Wire):
        kept = 0

        def keep_time(self) -> None:
            self.kept += 1

    async def main():
        wire = Recording()
        kept = []
        batcher = AudioBatcher(lambda: kept.append("batcher"))
        call = MediaCall(CallInfo("c1", "test"), wire_rate_hz=8000, wire=wire, batcher=batcher)
        call.keep_time()
        call._feed_audio(np.zeros(160, np.int16))
        await asyncio.sleep(0)  # the batcher's flush
        stages = [Stage(), Stage()]
        pipeline = Pipeline(stages, "c1", keep_time=call.keep_time)
        pipeline.start()
        utterance = Utterance(np.zeros(320, np.int16), 0.0, 0.02, False, "silence", 500)
        for text in ("a", "b", "c"):
            await pipeline.push(Transcript(text, utterance))
        await pipeline.idle()
        await pipeline.stop()
        call._end(EndReason.REMOTE_HANGUP)
        return wire.kept, kept

    kept_by_call, kept_by_batcher = run(main())
    assert kept_by_batcher == ["batcher"]
    assert kept_by_call == 1 + 3 * 2  # once by hand, then each stage after each of the 3 events
