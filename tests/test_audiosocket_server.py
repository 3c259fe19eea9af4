"""The AudioSocket server against an Asterisk-like peer written here from the spec, over loopback."""

import asyncio
import socket
import statistics
import struct
import time
import uuid

import numpy as np
import pytest

from edge.telephony.audiosocket import FrameDecoder, Kind, encode_audio, encode_dtmf, encode_hangup, encode_uuid
from edge.telephony.audiosocket_server import AudioSocketServer
from edge.telephony.media import EndReason, MediaCall
from edge.telephony.testing import EchoHandler, ToneHandler, tone

TIMEOUT = 5.0


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Peer:
    """What Asterisk does on an AudioSocket connection: UUID first, paced 20 ms slin frames, hangup."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.frames = []
        self.arrivals = []
        self.call_id = uuid.uuid4()

    @classmethod
    async def connect(cls, port, send_uuid=True):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        peer = cls(reader, writer)
        if send_uuid:
            await peer.send(encode_uuid(peer.call_id))
        return peer

    async def send(self, data):
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def read_until_closed(self, limit_s=TIMEOUT):
        """Read frames until EOF; returns them."""
        deadline = time.monotonic() + limit_s
        while True:
            data = await asyncio.wait_for(self.reader.read(4096), max(0.01, deadline - time.monotonic()))
            if not data:
                return self.frames
            now = time.monotonic()
            for frame in self.decoder.feed(data):
                self.frames.append(frame)
                self.arrivals.append(now)

    async def read_frames(self, n, limit_s=TIMEOUT):
        deadline = time.monotonic() + limit_s
        while len(self.frames) < n:
            data = await asyncio.wait_for(self.reader.read(4096), max(0.01, deadline - time.monotonic()))
            if not data:
                break
            now = time.monotonic()
            for frame in self.decoder.feed(data):
                self.frames.append(frame)
                self.arrivals.append(now)
        return self.frames

    async def collect(self, seconds):
        """Read whatever arrives for `seconds`."""
        try:
            await self.read_frames(10**9, limit_s=seconds)
        except TimeoutError:
            pass
        return self.frames

    async def stream(self, pcm8k, frame_s=0.02):
        """Send 8 kHz int16 audio as paced 20 ms frames on a monotonic deadline."""
        start = time.monotonic()
        for i in range(0, len(pcm8k), 160):
            await self.send(encode_audio(pcm8k[i:i + 160].astype("<i2").tobytes()))
            await asyncio.sleep(max(0, start + (i // 160 + 1) * frame_s - time.monotonic()))

    def close(self):
        self.writer.close()


class Recorder:
    """Collects what the server hands the handler; runs until the call ends."""

    def __init__(self):
        self.calls: list[MediaCall] = []
        self.frames: dict[str, list[np.ndarray]] = {}
        self.digits: dict[str, list[str]] = {}
        self.ended = asyncio.Event()

    async def handle(self, call):
        self.calls.append(call)
        self.frames[call.call_id] = frames = []
        self.digits[call.call_id] = digits = []

        async def keys():
            async for event in call.dtmf():
                digits.append(event.digit)

        keys_task = asyncio.create_task(keys())
        async for frame in call.audio():
            frames.append(frame)
        await keys_task
        self.ended.set()


def test_tone_leaves_paced_then_hangup():
    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", ToneHandler(1.0)) as server:
            peer = await Peer.connect(server.port)
            frames = await peer.read_until_closed()
            assert [f.kind for f in frames] == [Kind.AUDIO] * 50 + [Kind.HANGUP]
            assert all(len(f.payload) == 320 for f in frames[:-1])
            audio = np.frombuffer(b"".join(f.payload for f in frames[:-1]), dtype="<i2")
            assert np.abs(audio).max() > 5000  # the tone, resampled to 8 kHz
            gaps_ms = np.diff(peer.arrivals[:50]) * 1000
            assert 17 <= statistics.median(gaps_ms) <= 23, gaps_ms
            assert np.mean((gaps_ms > 8) & (gaps_ms < 40)) >= 0.6, gaps_ms  # paced, not a burst (loose: CI boxes are shared)
            # No drift: 50 frames take ~49 periods, not 49 periods plus accumulated oversleep.
            assert 0.90 <= peer.arrivals[49] - peer.arrivals[0] <= 1.10
            await asyncio.sleep(0.05)
            assert server.active_calls == 0 and server.stats.calls == 1

    run(main())


def test_echo_round_trip_and_dtmf_and_remote_hangup():
    recorder = Recorder()

    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", recorder) as server:
            peer = await Peer.connect(server.port)
            await peer.stream(tone(0.2, rate_hz=8000))
            await peer.send(encode_dtmf("0") + encode_dtmf("#"))
            await peer.send(encode_hangup())
            await asyncio.wait_for(recorder.ended.wait(), TIMEOUT)
            call = recorder.calls[0]
            assert call.call_id == str(peer.call_id)
            assert call.end_reason is EndReason.REMOTE_HANGUP
            frames = recorder.frames[call.call_id]
            assert len(frames) == 10 and all(f.shape == (320,) and f.dtype == np.int16 for f in frames)
            assert recorder.digits[call.call_id] == ["0", "#"]
            await peer.read_until_closed()  # the server closes its side
        # echo: frames come back paced
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", EchoHandler()) as server:
            peer = await Peer.connect(server.port)
            await peer.stream(tone(0.4, rate_hz=8000))
            frames = await peer.read_frames(15)
            assert all(f.kind is Kind.AUDIO for f in frames[:15])
            assert np.abs(np.frombuffer(frames[10].payload, dtype="<i2")).max() > 3000
            peer.close()

    run(main())


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 161, 323, 1000])
def test_split_reads_give_the_same_audio(chunk):
    recorder = Recorder()

    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", recorder) as server:
            peer = await Peer.connect(server.port, send_uuid=False)
            pcm = tone(0.3, rate_hz=8000)
            wire = encode_uuid(peer.call_id) + b"".join(
                encode_audio(pcm[i:i + 160].astype("<i2").tobytes()) for i in range(0, len(pcm), 160))
            wire += encode_dtmf("7") + encode_hangup()
            for i in range(0, len(wire), chunk):
                peer.writer.write(wire[i:i + chunk])
                if i % (chunk * 50) == 0:
                    await peer.writer.drain()
                    await asyncio.sleep(0)
            await peer.writer.drain()
            await asyncio.wait_for(recorder.ended.wait(), TIMEOUT)
            call = recorder.calls[0]
            assert len(recorder.frames[call.call_id]) == 15 and recorder.digits[call.call_id] == ["7"]
            assert call.end_reason is EndReason.REMOTE_HANGUP

    run(main())


@pytest.mark.parametrize("bad,mid_call", [
    (b"\x42\x00\x00", True),                  # unknown kind
    (b"\x10\xff\xff" + bytes(100), True),     # oversize length
    (b"\x01\x00\x03abc", False),              # UUID of the wrong length
    (encode_audio(bytes(320)), False),         # audio before the UUID
], ids=["unknown-kind", "oversize", "short-uuid", "audio-first"])
def test_protocol_errors_close_only_that_call(bad, mid_call):
    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", ToneHandler(0.4)) as server:
            good = await Peer.connect(server.port)
            await good.read_frames(3)
            bad_peer = await Peer.connect(server.port, send_uuid=mid_call)
            await bad_peer.send(bad)
            frames = await bad_peer.read_until_closed()
            assert frames and frames[-1].kind is Kind.HANGUP  # polite: a hangup, then close
            assert server.stats.protocol_errors == 1
            rest = await good.read_until_closed()
            assert sum(f.kind is Kind.AUDIO for f in rest) == 20  # the other call never noticed

    run(main())


def test_abrupt_disconnect_ends_the_call():
    recorder = Recorder()

    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", recorder) as server:
            peer = await Peer.connect(server.port)
            await peer.stream(tone(0.1, rate_hz=8000))
            await peer.send(encode_audio(bytes(320))[:100])  # half a frame, then the line drops
            sock = peer.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
            peer.writer.transport.abort()
            await asyncio.wait_for(recorder.ended.wait(), TIMEOUT)
            assert recorder.calls[0].end_reason is EndReason.DISCONNECTED
            for _ in range(50):
                if server.active_calls == 0:
                    break
                await asyncio.sleep(0.02)
            assert server.active_calls == 0

    run(main())


def test_too_many_calls_are_refused_with_a_hangup():
    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", ToneHandler(0.4), max_calls=2) as server:
            first, second = await Peer.connect(server.port), await Peer.connect(server.port)
            await first.read_frames(1)
            await second.read_frames(1)
            third = await Peer.connect(server.port)
            frames = await third.read_until_closed(limit_s=1.0)
            assert [f.kind for f in frames] == [Kind.HANGUP]
            assert server.stats.refused == 1 and server.active_calls == 2
            await first.read_until_closed()
            await second.read_until_closed()
            await asyncio.sleep(0.05)
            fourth = await Peer.connect(server.port)  # room again
            frames = await fourth.read_until_closed()
            assert sum(f.kind is Kind.AUDIO for f in frames) == 20

    run(main())


def test_silent_peer_times_out_and_handler_error_ends_only_its_call():
    class Boom:
        async def handle(self, call):
            if call.call_id.startswith("0"):
                raise RuntimeError("pipeline broke")
            await call.play(tone(0.4))
            await call.wait_played()

    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", Boom(), first_frame_timeout_s=0.3) as server:
            silent = await Peer.connect(server.port, send_uuid=False)
            frames = await silent.read_until_closed(limit_s=2.0)
            assert [f.kind for f in frames] == [Kind.HANGUP] and server.stats.timeouts == 1
            failing = Peer(*await asyncio.open_connection("127.0.0.1", server.port))
            failing.call_id = uuid.UUID("00000000-0000-0000-0000-000000000001")
            ok = await Peer.connect(server.port, send_uuid=False)
            ok.call_id = uuid.UUID("10000000-0000-0000-0000-000000000001")
            await ok.send(encode_uuid(ok.call_id))
            await failing.send(encode_uuid(failing.call_id))
            assert [f.kind for f in await failing.read_until_closed()] == [Kind.HANGUP]
            assert sum(f.kind is Kind.AUDIO for f in await ok.read_until_closed()) == 20
            assert server.stats.handler_errors == 1

    run(main())


def test_stop_hangs_up_active_calls_and_barge_in_clears_playback():
    recorder = Recorder()

    class Talker:
        def __init__(self):
            self.cleared = None

        async def handle(self, call):
            await call.play(tone(5.0))
            await asyncio.sleep(0.2)
            self.cleared = call.clear_playback()
            await recorder.handle(call)

    talker = Talker()

    async def main():
        server = AudioSocketServer.from_uri("tcp://127.0.0.1:0", talker)
        await server.start()
        peer = await Peer.connect(server.port)
        await peer.read_frames(5)
        await peer.collect(0.4)
        n_audio = sum(f.kind is Kind.AUDIO for f in peer.frames)
        assert 7 <= n_audio <= 16  # ~0.2 s were sent before the barge-in, then nothing
        assert 4.5 <= talker.cleared <= 4.9
        await server.stop()
        frames = await peer.read_until_closed()
        assert frames[-1].kind is Kind.HANGUP
        assert recorder.calls[0].end_reason is EndReason.SHUTDOWN

    run(main())
