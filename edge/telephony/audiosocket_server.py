"""Asterisk AudioSocket server: one TCP connection per call, handed to a CallHandler.

Asterisk connects for each call (dialplan `AudioSocket(${UUID},host:port)`
or `Dial(AudioSocket/host:port/${UUID})`), sends the call UUID, then 20 ms
slin16 frames at 8 kHz, DTMF frames and finally a hangup. The bot's audio
goes back as 20 ms audio frames on the server's shared 20 ms clock. A call
over `max_calls` gets a hangup frame at once, so the dialplan continues
(to a human queue, say) instead of the caller hearing dead air.

Connections are `asyncio.Protocol`s: bytes are decoded in `data_received`
without a reader task; each call has one task, its handler.

Example:
    >>> import asyncio
    >>> from edge.telephony.testing import EchoHandler
    >>> async def main():
    ...     async with AudioSocketServer.from_uri("tcp://127.0.0.1:0", EchoHandler()) as server:
    ...         return server.port > 0
    >>> asyncio.run(main())
    True
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Final

import numpy as np

from edge.errors import ProtocolError
from edge.telephony.address import Address, parse_uri
from edge.telephony.audiosocket import FrameDecoder, Kind, encode_hangup
from edge.telephony.media import CallHandler, CallInfo, EndReason, MediaCall, Wire
from edge.telephony.server_base import CallRegistry, ServerOptions, ServerStats

__all__ = ["AudioSocketServer"]

_LOGGER = logging.getLogger(__name__)

WIRE_RATE_HZ: Final = 8000
MAX_WRITE_BUFFER: Final = 64 * 1024
"""Bytes of bot audio waiting in the socket before the peer counts as stalled (~3 s)."""
_AUDIO_HEADER: Final = bytes((Kind.AUDIO,)) + (320).to_bytes(2, "big")
_AUDIO_FRAME_BYTES: Final = len(_AUDIO_HEADER) + 320
_HANGUP: Final = encode_hangup()


class _Connection(asyncio.Protocol, Wire):
    """One AudioSocket connection: decoder, call, and the output the clock ticks."""

    def __init__(self, registry: CallRegistry) -> None:
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder()
        self._transport: asyncio.Transport | None = None
        self._ready = self._loop.create_future()
        self.peer = "?"
        self.call: MediaCall | None = None
        self.connected_at = self.last_rx = self._loop.time()
        self.ended_at: float | None = None

    # ---- asyncio.Protocol ---------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a TCP server gives an asyncio.Transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if not self._registry.admit(self.peer):
            transport.write(_HANGUP)
            transport.close()
            return
        self._registry.start(self, self._run())

    def data_received(self, data: bytes) -> None:
        self.last_rx = self._loop.time()
        call = self.call
        if (len(data) == _AUDIO_FRAME_BYTES and data[:3] == _AUDIO_HEADER and call is not None
                and not self._decoder.buffered):  # the usual read: exactly one 20 ms audio frame
            call._feed_audio(np.frombuffer(data, dtype="<i2", offset=3))
            return
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._registry.stats.protocol_errors += 1
            self.fail(EndReason.PROTOCOL_ERROR, str(exc))
            return
        for frame in frames:
            self._on_frame(frame.kind, frame.payload)
            if self.ended_at is not None:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.clock.discard(self)
        if not self._ready.done():
            self._ready.set_result(False)
        self._mark_ended(EndReason.DISCONNECTED)

    # ---- frames ---------------------------------------------------------

    def _on_frame(self, kind: Kind, payload: bytes) -> None:
        call = self.call
        if kind is Kind.AUDIO and call is not None:
            call._feed_audio(np.frombuffer(payload, dtype="<i2"))
        elif kind is Kind.UUID and call is None:
            info = CallInfo(call_id=str(uuid.UUID(bytes=payload)), transport="audiosocket", peer=self.peer)
            self.call = MediaCall(info, wire_rate_hz=WIRE_RATE_HZ, wire=self, batcher=self._registry.batcher)
            self._ready.set_result(True)
        elif kind is Kind.DTMF and call is not None:
            call._feed_dtmf(payload.decode("ascii"))
        elif kind is Kind.HANGUP:
            self._mark_ended(EndReason.REMOTE_HANGUP)
            self._close()
        elif kind is Kind.ERROR:
            self.fail(EndReason.PEER_ERROR, f"Asterisk sent an error frame (code {payload.hex() or 'none'})")
        elif kind is Kind.UUID:
            _LOGGER.debug("call %s: ignoring a second UUID frame", call.call_id if call else "?")
        else:
            self._registry.stats.protocol_errors += 1
            self.fail(EndReason.PROTOCOL_ERROR, f"the first AudioSocket frame must be the call UUID, got {kind.name}")

    # ---- Wire (what MediaCall asks) and the clock's Output ----------------

    def keep_time(self) -> None:
        self._registry.clock.catch_up()

    def start_output(self) -> None:
        if self.ended_at is None:
            self._registry.clock.add(self)

    def hangup(self) -> None:
        self._mark_ended(EndReason.LOCAL_HANGUP)
        self._close()

    def tick(self) -> bool:
        transport, call = self._transport, self.call
        if call is None or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.fail(EndReason.TIMEOUT, "the peer stopped reading our audio")
            return False
        frame = call._next_frame()
        if frame is None:
            return False
        transport.write(_AUDIO_HEADER + frame if len(frame) == 320
                        else bytes((Kind.AUDIO,)) + len(frame).to_bytes(2, "big") + frame)
        return True

    # ---- ending -----------------------------------------------------------

    def fail(self, reason: EndReason, message: str) -> None:
        log = _LOGGER.info if reason is EndReason.SHUTDOWN else _LOGGER.warning
        log("audiosocket %s: %s; closing the call", self.call.call_id if self.call else self.peer, message,
            extra={"event": "call_error", "reason": reason.value,
                   **(self.call.info.log_fields() if self.call else {"peer": self.peer})})
        self._mark_ended(reason)
        self._close()

    def _mark_ended(self, reason: EndReason) -> None:
        if self.ended_at is None:
            self.ended_at = self._loop.time()
        if self.call is not None:
            self.call._end(reason)

    def _close(self) -> None:
        self._registry.clock.discard(self)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_HANGUP)
            self._transport.close()

    async def _run(self) -> None:
        try:
            if await self._ready and self.call is not None:
                await self._registry.run_handler(self.call)
        finally:
            self._mark_ended(EndReason.LOCAL_HANGUP)
            self._close()


class AudioSocketServer:
    """Listens for Asterisk AudioSocket connections and runs `handler.handle(call)` for each.

    Args:
        handler: runs each call.
        address: where to listen (tcp).
        options: limits (max_calls, timeouts).

    Example:
        server = AudioSocketServer.from_uri("tcp://127.0.0.1:9092", handler, max_calls=100)
        await server.start()  ...  await server.stop()
    """

    def __init__(self, handler: CallHandler, address: Address, options: ServerOptions | None = None) -> None:
        self.address = address
        self.registry = CallRegistry("audiosocket", handler, options or ServerOptions())
        self._server: asyncio.base_events.Server | None = None

    @classmethod
    def from_uri(cls, uri: str, handler: CallHandler, **options: Any) -> AudioSocketServer:
        """`tcp://HOST:PORT` (port 0: any free port); keyword options as in ServerOptions."""
        return cls(handler, parse_uri(uri, ("tcp",)), ServerOptions(**options))

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        return self._server.sockets[0].getsockname()[1]

    @property
    def active_calls(self) -> int:
        return self.registry.active

    @property
    def stats(self) -> ServerStats:
        return self.registry.stats

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self.registry),
                                                self.address.host, self.address.port)
        _LOGGER.info("audiosocket listening on %s:%d", self.address.host, self.port,
                     extra={"event": "listen", "transport": "audiosocket"})

    def stop_accepting(self) -> None:
        """Stop listening and refuse new calls; calls in progress go on (graceful shutdown, step one)."""
        self.registry.stop_accepting()
        if self._server is not None:
            self._server.close()  # closes the listening socket only; connections stay open

    async def stop(self) -> None:
        """Stop listening, end every call (hangup frames), wait for handlers, stop the clock."""
        if self._server is not None:
            self._server.close()
        await self.registry.stop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
