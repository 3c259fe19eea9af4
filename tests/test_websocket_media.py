"""WebSocket media (jambonz `listen` flavour) against a PBX-like client written here, over loopback."""

import asyncio
import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.errors import ProtocolError
from edge.telephony.media import EndReason
from edge.telephony.testing import EchoHandler, ToneHandler, tone
from edge.telephony.websocket_media import WebSocketMediaServer, parse_start_message

TIMEOUT = 5.0


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def start(rate=8000, **extra):
    return json.dumps({"callSid": "CA-1", "from": "+8613800138000", "to": "4008001234", "sampleRate": rate,
                       "mixType": "mono", **extra})


async def receive_all(ws, limit_s=TIMEOUT):
    """(messages, arrival times, close code) until the server closes."""
    messages, times = [], []
    deadline = time.monotonic() + limit_s
    try:
        while True:
            message = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            messages.append(message)
            times.append(time.monotonic())
    except ConnectionClosed:
        pass
    return messages, times, ws.close_code


class Recorder:
    def __init__(self):
        self.calls, self.frames, self.digits = [], [], []
        self.ended = asyncio.Event()

    async def handle(self, call):
        self.calls.append(call)

        async def keys():
            async for event in call.dtmf():
                self.digits.append(event.digit)

        task = asyncio.create_task(keys())
        async for frame in call.audio():
            self.frames.append(frame)
        await task
        self.ended.set()


def test_start_message_parsing():
    info, rate = parse_start_message(start(16000, extra_field=1), "1.2.3.4:5")
    assert (info.call_id, info.caller, info.callee, rate) == ("CA-1", "+8613800138000", "4008001234", 16000)
    assert info.metadata["extra_field"] == 1 and info.transport == "websocket"
    info, rate = parse_start_message('{"uuid": "u-1"}')
    assert info.call_id == "u-1" and rate == 8000  # sampleRate defaults to 8000
    for bad, message in [(b"\x00\x01", "got binary"), ("not json", "not JSON"), ("[1]", "JSON object"),
                         (start(44100), "sampleRate 44100"), (start(mixType="stereo"), "mixType")]:
        with pytest.raises(ProtocolError, match=message):
            parse_start_message(bad)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_bot_audio_is_paced_l16_at_the_stream_rate_then_disconnect(rate):
    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", ToneHandler(0.6)) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/call", subprotocols=["audio.jambonz.org"]) as ws:
                assert ws.subprotocol == "audio.jambonz.org"
                await ws.send(start(rate))
                messages, times, code = await receive_all(ws)
        audio = [m for m in messages if isinstance(m, bytes)]
        assert len(audio) == 30 and {len(m) for m in audio} == {rate // 50 * 2}
        assert json.loads(messages[-1]) == {"type": "disconnect"} and code == 1000
        gaps_ms = np.diff(times[:30]) * 1000
        assert 15 <= np.median(gaps_ms) <= 25
        assert 0.5 <= times[29] - times[0] <= 0.7

    run(main())


def test_echo_dtmf_and_remote_close():
    recorder = Recorder()

    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", recorder) as server:
            async with connect(f"ws://127.0.0.1:{server.port}") as ws:  # no subprotocol: fine too
                await ws.send(start(8000))
                pcm = tone(0.2, rate_hz=8000)
                for i in range(0, len(pcm), 160):
                    await ws.send(pcm[i:i + 160].astype("<i2").tobytes())
                await ws.send(json.dumps({"event": "dtmf", "dtmf": "0", "duration": 250}))
                await ws.send(json.dumps({"event": "something-else"}))
            await asyncio.wait_for(recorder.ended.wait(), TIMEOUT)
        assert len(recorder.frames) == 10 and recorder.digits == ["0"]
        assert recorder.calls[0].end_reason is EndReason.REMOTE_HANGUP
        assert recorder.calls[0].info.caller == "+8613800138000"

        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", EchoHandler()) as server:
            async with connect(f"ws://127.0.0.1:{server.port}") as ws:
                await ws.send(start(16000))
                pcm = tone(0.3)
                for i in range(0, len(pcm), 320):
                    await ws.send(pcm[i:i + 320].astype("<i2").tobytes())
                echoed = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(10)]
                assert all(isinstance(m, bytes) and len(m) == 640 for m in echoed)
                assert np.abs(np.frombuffer(echoed[5], dtype="<i2")).max() > 4000

    run(main())


def test_barge_in_sends_kill_audio():
    class Talker:
        async def handle(self, call):
            await call.play(tone(3.0))
            await asyncio.sleep(0.15)
            call.clear_playback()
            await asyncio.sleep(0.1)

    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", Talker()) as server:
            async with connect(f"ws://127.0.0.1:{server.port}") as ws:
                await ws.send(start(8000))
                messages, _, _ = await receive_all(ws)
        texts = [json.loads(m) for m in messages if isinstance(m, str)]
        assert texts == [{"type": "killAudio"}, {"type": "disconnect"}]
        assert 4 <= sum(isinstance(m, bytes) for m in messages) <= 12

    run(main())


@pytest.mark.parametrize("first,then,code", [
    (b"\x00\x00", None, 1002),                     # audio before the metadata
    ("{nope", None, 1002),                         # not JSON
    (start(48000), None, 1002),                    # unsupported rate
    (start(8000), b"\x01\x02\x03", 1002),          # odd-length L16
    (start(8000), json.dumps({"event": "dtmf", "dtmf": "x"}), 1002),
    (start(8000), bytes(70_000), 1009),            # oversize message: websockets refuses it
], ids=["binary-first", "not-json", "rate", "odd-l16", "bad-dtmf", "oversize"])
def test_protocol_errors_close_that_call(first, then, code):
    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", EchoHandler()) as server:
            async with connect(f"ws://127.0.0.1:{server.port}", max_size=None) as ws:
                await ws.send(first)
                if then is not None:
                    await ws.send(then)
                _, _, got = await receive_all(ws)
            assert got == code
            if code == 1002:
                assert server.stats.protocol_errors == 1

    run(main())


def test_refusal_abrupt_disconnect_and_silent_peer():
    recorder = Recorder()

    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", recorder, max_calls=1,
                                                 first_frame_timeout_s=0.3) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}")
            await ws.send(start(8000))
            await ws.send(bytes(320))
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"ws://127.0.0.1:{server.port}")
            assert refused.value.response.status_code == 503 and b"max_calls=1" in refused.value.response.body
            ws.transport.abort()  # the line drops: no close frame
            await asyncio.wait_for(recorder.ended.wait(), TIMEOUT)
            assert recorder.calls[0].end_reason is EndReason.DISCONNECTED
            for _ in range(50):
                if server.active_calls == 0:
                    break
                await asyncio.sleep(0.02)
            silent = await connect(f"ws://127.0.0.1:{server.port}")
            _, _, code = await receive_all(silent, limit_s=3)
            assert code == 1008 and server.stats.timeouts == 1 and server.stats.refused == 1

    run(main())
