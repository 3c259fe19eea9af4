"""The same call session on the real transports: AudioSocket and WebSocket media over loopback, in real
time, with model work on the runtime's worker threads (as a server runs it)."""

import asyncio
import dataclasses
import json
import uuid

import numpy as np
import pytest
from websockets.asyncio.client import connect

from edge.audio import resample
from edge.calls import Records
from edge.calls.session import CallLoop
from edge.config import DEFAULT_SCRIPT
from edge.dialog.script import Script
from edge.telephony.audiosocket import FrameDecoder, Kind, encode_audio, encode_hangup, encode_uuid
from edge.telephony.audiosocket_server import AudioSocketServer
from edge.telephony.websocket_media import WebSocketMediaServer
from edge.tts.espeak import EspeakSettings, speak
from tests.fakes import FakeRecognizer, voice_runtime


@pytest.fixture(scope="module")
def runtime(voice_cache):
    script = Script.load(DEFAULT_SCRIPT)
    opening = dataclasses.replace(script.nodes["opening"], say=("您好，方便吗？",))
    script = dataclasses.replace(script, nodes={**script.nodes, "opening": opening})
    base = voice_runtime(voice_cache, offload=True)
    runtime = dataclasses.replace(base, script=script, recognizer=FakeRecognizer(), _batchers={})
    yield runtime
    runtime.close()


def callee_speech():
    pcm = speak("喂，你好", EspeakSettings(voice="cmn+f4", rate_wpm=168, pitch=54))
    return resample(pcm, 16000, 8000)


async def paced(frames, send, seconds):
    """Send 20 ms frames at the real-time pace (silence once `frames` run out) for `seconds`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index in range(int(seconds / 0.02)):
        frame = frames[index] if index < len(frames) else np.zeros(160, np.int16)
        await send(frame)
        await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))


def plan(runtime):
    """Silence through the opening, then the callee's line, then silence for the bot's answer."""
    speech = callee_speech()
    speech = np.concatenate([speech, np.zeros(-len(speech) % 160, np.int16)]).reshape(-1, 160)
    lead_in = [np.zeros(160, np.int16)] * 125  # 2.5 s: the short opening plays out

    class Frames(list):
        def __getitem__(self, index):
            if index == len(lead_in):
                runtime.recognizer.said("喂，你好")
            return list.__getitem__(self, index)

    return Frames([*lead_in, *speech])


def check(loop, records, bot_audio):
    (result,) = loop.results.values()
    report = result.report
    assert [t["caller"] for t in report["turns"]] == ["喂，你好"] and report["turns"][0]["node"] == "discovery"
    assert report["outcome"] == "incomplete" and report["voice"]["end_reason"] == "remote_hangup"
    assert report["turns"][0]["timings_ms"]["first_audio"] < 1000
    assert records.db["turns"].count == 1 and records.db["outcomes"].count == 1
    sounding = np.abs(bot_audio.reshape(-1, 160)).max(axis=1) > 0
    assert sounding[:100].any() and sounding[-150:].any()  # the opening, then the answer


def test_a_call_over_audiosocket(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    loop = CallLoop(runtime, records)

    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", loop) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(encode_uuid(uuid.uuid4()))
            received = []

            async def read():
                decoder = FrameDecoder()
                while data := await reader.read(4096):
                    received.extend(f.payload for f in decoder.feed(data) if f.kind is Kind.AUDIO)

            reading = asyncio.create_task(read())

            async def send(frame):
                writer.write(encode_audio(frame.astype("<i2").tobytes()))
                await writer.drain()

            await paced(plan(runtime), send, 5.0)
            writer.write(encode_hangup())
            await writer.drain()
            await asyncio.wait_for(reading, 5)
            await asyncio.sleep(0.2)
        return np.frombuffer(b"".join(received), dtype="<i2")

    bot = asyncio.run(asyncio.wait_for(main(), 30))
    check(loop, records, bot[:len(bot) // 160 * 160])


def test_a_call_over_websocket_media(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    loop = CallLoop(runtime, records)

    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", loop) as server:
            received = []
            async with connect(f"ws://127.0.0.1:{server.port}", subprotocols=["audio.jambonz.org"]) as ws:
                await ws.send(json.dumps({"callSid": "CA-7", "from": "+8613800138000", "sampleRate": 8000,
                                          "mixType": "mono"}))

                async def read():
                    async for message in ws:
                        if isinstance(message, bytes):
                            received.append(message)

                reading = asyncio.create_task(read())
                await paced(plan(runtime), lambda frame: ws.send(frame.astype("<i2").tobytes()), 5.0)
            await asyncio.wait_for(reading, 5)
            await asyncio.sleep(0.2)
        return np.frombuffer(b"".join(received), dtype="<i2")

    bot = asyncio.run(asyncio.wait_for(main(), 30))
    check(loop, records, bot[:len(bot) // 160 * 160])


def test_the_kiosk_plugs_in_the_call_loop(runtime, monkeypatch, tmp_path):
    from edge.calls.runtime import Runtime
    from edge.config import Config
    from edge.kiosk import build_handler

    monkeypatch.setattr(Runtime, "load", classmethod(lambda cls, config, **kwargs: runtime))
    config = Config.from_dict({"kiosk": {"handler": "callloop"}, "records": {"database": str(tmp_path / "k.db")}})
    handler, name = build_handler(config)
    assert name == "callloop" and isinstance(handler, CallLoop) and handler.records.source == "kiosk"
