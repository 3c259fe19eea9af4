"""Calls on the wire: Asterisk AudioSocket, WebSocket media, AMI origination, a simulator.

Every transport turns a connection into a `MediaCall` (16 kHz int16 frames in,
`play()` out, DTMF, hangup) and runs a `CallHandler` on it.
"""

from edge.telephony.media import CallHandler, CallInfo, Dtmf, EndReason, MediaCall
from edge.telephony.privacy import mask_phone
from edge.telephony.server_base import ServerOptions

__all__ = ["CallHandler", "CallInfo", "Dtmf", "EndReason", "MediaCall", "ServerOptions", "mask_phone"]
