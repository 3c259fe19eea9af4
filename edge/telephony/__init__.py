"""Calls on the wire: Asterisk AudioSocket, WebSocket media, AMI origination, a simulator.

Every transport turns a connection into a `MediaCall` (16 kHz int16 20 ms frames
in, `play()` out, DTMF, hangup) and runs a `CallHandler` on it:

    server = AudioSocketServer.from_uri("tcp://127.0.0.1:9092", handler, max_calls=100)
    await server.start()
"""

from edge.telephony.ami import AmiClient, OriginateOutcome, OriginateRequest, OriginateResult
from edge.telephony.audiosocket_server import AudioSocketServer
from edge.telephony.media import CallHandler, CallInfo, Dtmf, EndReason, MediaCall
from edge.telephony.privacy import mask_phone
from edge.telephony.server_base import ServerOptions
from edge.telephony.simulator import CallSimulator
from edge.telephony.websocket_media import WebSocketMediaServer

__all__ = [
    "AmiClient",
    "AudioSocketServer",
    "CallHandler",
    "CallInfo",
    "CallSimulator",
    "Dtmf",
    "EndReason",
    "MediaCall",
    "OriginateOutcome",
    "OriginateRequest",
    "OriginateResult",
    "ServerOptions",
    "WebSocketMediaServer",
    "mask_phone",
]
