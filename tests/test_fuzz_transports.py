"""The media servers against garbage on a real socket: the bad connection is closed (never a hang,
never a crashed listener) and the next, well-formed call still gets its echo.

The frame decoder's own properties are in tests/test_audiosocket_protocol.py; this is the server
around it, and the WebSocket endpoint with its JSON first frame."""

from __future__ import annotations

import asyncio
import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.telephony.audiosocket import FrameDecoder, Kind, encode_audio, encode_hangup, encode_uuid
from edge.telephony.audiosocket_server import AudioSocketServer
from edge.telephony.testing import EchoHandler
from edge.telephony.websocket_media import WebSocketMediaServer

WIRE = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIMEOUT = 5.0


async def _drain(reader: asyncio.StreamReader) -> None:
    while await asyncio.wait_for(reader.read(65536), TIMEOUT):
        pass


async def _good_audiosocket_call(port: int) -> list[Kind]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_uuid(uuid.uuid4()) + encode_audio(b"\x10\x00" * 160) * 3)
    await writer.drain()
    decoder, kinds = FrameDecoder(), []
    while Kind.AUDIO not in kinds:
        kinds += [f.kind for f in decoder.feed(await asyncio.wait_for(reader.read(4096), TIMEOUT))]
    writer.write(encode_hangup())
    writer.close()
    return kinds


@WIRE
@given(garbage=st.one_of(st.binary(max_size=400),
                         st.binary(max_size=200).map(lambda b: encode_uuid(uuid.UUID(int=1)) + b)))
def test_audiosocket_server_closes_garbage_and_serves_the_next_call(garbage):
    async def main():
        async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", EchoHandler()) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(garbage)
            await writer.drain()
            writer.write_eof()  # the peer is done: whatever it sent must end that call
            await _drain(reader)
            writer.close()
            assert Kind.AUDIO in await _good_audiosocket_call(server.port)

    asyncio.run(asyncio.wait_for(main(), 20))


def _start(rate: int = 8000) -> str:
    return json.dumps({"callSid": "fuzz", "sampleRate": rate, "mixType": "mono"})


@WIRE
@given(first=st.one_of(st.text(max_size=200), st.binary(max_size=200), st.just("[" * 5000),
                       st.just('{"sampleRate": ' + "9" * 5000 + "}")),
       then=st.lists(st.one_of(st.text(max_size=100), st.binary(max_size=101)), max_size=4))
def test_websocket_server_closes_garbage_and_serves_the_next_call(first, then):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def main():
        async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", EchoHandler()) as server:
            url = f"ws://127.0.0.1:{server.port}"
            async with connect(url, close_timeout=1) as ws:
                try:
                    for message in [first, *then]:
                        await ws.send(message)
                    await ws.close()
                except ConnectionClosed:
                    pass
            async with connect(url) as ws:
                await ws.send(_start())
                await ws.send(b"\x10\x00" * 160 * 3)
                reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert isinstance(reply, bytes) and len(reply) == 320

    asyncio.run(asyncio.wait_for(main(), 20))
