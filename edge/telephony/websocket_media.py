"""WebSocket media endpoint for FreeSWITCH/jambonz, in the jambonz `listen` flavour.

The flavour spoken, exactly:

1. The PBX opens `ws://HOST:PORT/ANY-PATH` (subprotocol `audio.jambonz.org`
   or `audio.drachtio.org` if offered; none is fine too).
2. Its first message is a **text** frame: a JSON object of call metadata.
   Read from it: `sampleRate` (8000 or 16000; 8000 when absent), the call id
   from `callSid`, `call_sid`, `uuid` or `callId` (a fresh UUID when none),
   the caller from `from` / `caller`, the callee from `to` / `callee`, and
   `mixType`, which must be `mono` when present. Everything is kept in
   `CallInfo.metadata`.
3. Then **binary** frames of L16: signed 16-bit little-endian mono PCM at
   `sampleRate`, any even length. Text frames may follow:
   `{"event": "dtmf", "dtmf": "5"}` is a DTMF digit (jambonz `passDtmf`);
   other events are logged and ignored.
4. The bot's audio goes back as binary L16 frames at the **same** rate, 20 ms
   each (640 bytes at 16 kHz, 320 at 8 kHz), paced on the 20 ms clock: set
   jambonz `bidirectionalAudio: {enabled: true, streaming: true,
   sampleRate: <same as sampleRate>}`. Barge-in sends the text frame
   `{"type": "killAudio"}` so the PBX drops what it buffered; the bot hanging
   up sends `{"type": "disconnect"}` and closes with code 1000.

mod_audio_fork (`uuid_audio_fork <uuid> start ws://... mono 16k {json}`)
sends the same first text frame and binary L16, so inbound audio works as
is; it plays audio only from files, so for the bot's voice use jambonz or an
audio_fork build that streams binary frames back.

Refusal: past `max_calls`, the HTTP upgrade is answered 503 with a hint.
Protocol errors close with 1002, timeouts with 1008, shutdown with 1001.

Example:
    >>> import asyncio
    >>> from edge.telephony.testing import EchoHandler
    >>> async def main():
    ...     async with WebSocketMediaServer.from_uri("ws://127.0.0.1:0", EchoHandler()) as server:
    ...         return server.port > 0
    >>> asyncio.run(main())
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from http import HTTPStatus
from typing import Any, Final

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from edge.errors import ProtocolError
from edge.telephony.address import Address, parse_uri
from edge.telephony.media import DTMF_DIGITS, CallHandler, CallInfo, EndReason, MediaCall, Wire
from edge.telephony.server_base import CallRegistry, ServerOptions, ServerStats

__all__ = ["WebSocketMediaServer", "parse_start_message", "parse_text_event"]

_LOGGER = logging.getLogger(__name__)

SUBPROTOCOLS: Final = ("audio.jambonz.org", "audio.drachtio.org")
RATES_HZ: Final = (8000, 16000)
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_SEND_QUEUE: Final = 150
"""Frames (3 s) waiting to be written before the peer counts as stalled."""
_CLOSE_CODES: Final = {EndReason.PROTOCOL_ERROR: 1002, EndReason.TIMEOUT: 1008, EndReason.SHUTDOWN: 1001}
_KILL_AUDIO: Final = json.dumps({"type": "killAudio"})
_DISCONNECT: Final = json.dumps({"type": "disconnect"})


def _json(message: str, what: str) -> Any:
    # ValueError covers JSONDecodeError and integers past Python's 4300-digit limit;
    # RecursionError is what deeply nested arrays ([[[[...) raise: both are the peer's fault.
    try:
        return json.loads(message)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"{what} is not JSON: {str(exc)[:120]}") from None


def parse_start_message(message: str | bytes, peer: str | None = None) -> tuple[CallInfo, int]:
    """The first message's call metadata and sample rate.

    Raises:
        ProtocolError: not a JSON object in a text frame, a rate other than 8000/16000, or not mono.
    """
    if not isinstance(message, str):
        raise ProtocolError("the first WebSocket message must be a JSON text frame of call metadata, got binary")
    meta = _json(message, "the first WebSocket message")
    if not isinstance(meta, dict):
        raise ProtocolError(f"the first WebSocket message must be a JSON object, got {type(meta).__name__}")
    rate = meta.get("sampleRate", 8000)
    if rate not in RATES_HZ:
        raise ProtocolError(f"sampleRate {rate!r} is not supported; set the PBX stream to 8000 or 16000")
    if meta.get("mixType", "mono") != "mono":
        raise ProtocolError(f"mixType {meta['mixType']!r} is not supported; use mixType mono")
    call_id = next((str(meta[k]) for k in ("callSid", "call_sid", "uuid", "callId") if meta.get(k)), None)
    if call_id is None:
        call_id = str(uuid.uuid4())
        _LOGGER.debug("start message has no call id; using %s", call_id)
    if "sampleRate" not in meta:
        _LOGGER.debug("call %s: start message has no sampleRate; assuming 8000", call_id)
    caller = meta.get("from") or meta.get("caller")
    callee = meta.get("to") or meta.get("callee")
    info = CallInfo(call_id=call_id, transport="websocket", caller=str(caller) if caller else None,
                    callee=str(callee) if callee else None, peer=peer, metadata=meta)
    return info, int(rate)


def parse_text_event(message: str) -> str | None:
    """The DTMF digit of a text message after the first (`{"event": "dtmf", "dtmf": "5"}`); None for other events.

    Raises:
        ProtocolError: not JSON, or a dtmf event whose digit is not one of 0-9 * # A-D.
    """
    event = _json(message, "text message")
    if not (isinstance(event, dict) and event.get("event") == "dtmf"):
        return None
    digit = str(event.get("dtmf", ""))
    if digit not in DTMF_DIGITS:
        raise ProtocolError(f"dtmf event with digit {digit[:20]!r}; expected one of 0-9 * # A-D")
    return digit


def _select_subprotocol(_connection: ServerConnection, offered: Any) -> Any:
    """Pick jambonz's or audio_fork's subprotocol when offered; accept none at all too."""
    return next((p for p in offered if p in SUBPROTOCOLS), None)


class _Connection(Wire):
    """One WebSocket call: the receive loop (websockets' task), a sender task, the handler task."""

    def __init__(self, ws: ServerConnection, registry: CallRegistry) -> None:
        self._ws = ws
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._send_q: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._ready = self._loop.create_future()
        self._close_code = 1000
        addr = ws.remote_address
        self.peer = f"{addr[0]}:{addr[1]}" if addr else "?"
        self.call: MediaCall | None = None
        self.connected_at = self.last_rx = self._loop.time()
        self.ended_at: float | None = None

    async def serve(self) -> None:
        """The receive loop; returns when the connection is closed."""
        if not self._registry.admit(self.peer):  # two upgrades may race past process_request
            await self._ws.close(1013, "busy: route the call elsewhere")
            return
        self._sender = self._loop.create_task(self._send_loop(), name=f"ws-send-{self.peer}")
        self._registry.start(self, self._run())
        try:
            async for message in self._ws:
                self.last_rx = self._loop.time()
                if self.ended_at is not None:
                    continue
                try:
                    self._on_message(message)
                except ProtocolError as exc:
                    self._registry.stats.protocol_errors += 1
                    self.fail(EndReason.PROTOCOL_ERROR, str(exc))
            self._mark_ended(EndReason.REMOTE_HANGUP)
        except ConnectionClosed:
            self._mark_ended(EndReason.DISCONNECTED)
        finally:
            self._registry.clock.discard(self)
            if not self._ready.done():
                self._ready.set_result(False)
            self._send_q.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    def _on_message(self, message: str | bytes) -> None:
        call = self.call
        if call is None:
            info, rate = parse_start_message(message, self.peer)
            self.call = MediaCall(info, wire_rate_hz=rate, wire=self, batcher=self._registry.batcher)
            self._ready.set_result(True)
        elif isinstance(message, bytes):
            if len(message) % 2:
                raise ProtocolError(f"L16 audio message has an odd byte count ({len(message)})")
            call._feed_audio(np.frombuffer(message, dtype="<i2"))
        elif (digit := parse_text_event(message)) is not None:
            call._feed_dtmf(digit)
        else:
            _LOGGER.debug("call %s: ignoring text message %.80s", call.call_id, message)

    # ---- Wire and clock output ------------------------------------------

    def keep_time(self) -> None:
        self._registry.clock.catch_up()

    def start_output(self) -> None:
        if self.ended_at is None:
            self._registry.clock.add(self)

    def clear_output(self) -> None:
        if self.ended_at is None:
            self._send_q.put_nowait(_KILL_AUDIO)

    def hangup(self) -> None:
        if self.ended_at is None:
            self._send_q.put_nowait(_DISCONNECT)
        self._mark_ended(EndReason.LOCAL_HANGUP)
        self._send_q.put_nowait(None)

    def tick(self) -> bool:
        if self.call is None or self.ended_at is not None:
            return False
        if self._send_q.qsize() > MAX_SEND_QUEUE:
            self.fail(EndReason.TIMEOUT, "the peer stopped reading our audio")
            return False
        frame = self.call._next_frame()
        if frame is None:
            return False
        self._send_q.put_nowait(frame)
        return True

    async def _send_loop(self) -> None:
        try:
            while (message := await self._send_q.get()) is not None:
                await self._ws.send(message)
        except ConnectionClosed:
            return
        await self._ws.close(self._close_code)

    # ---- ending -------------------------------------------------------

    def fail(self, reason: EndReason, message: str) -> None:
        log = _LOGGER.info if reason is EndReason.SHUTDOWN else _LOGGER.warning
        log("websocket %s: %s; closing the call", self.call.call_id if self.call else self.peer, message,
            extra={"event": "call_error", "reason": reason.value,
                   **(self.call.info.log_fields() if self.call else {"peer": self.peer})})
        self._close_code = _CLOSE_CODES.get(reason, 1000)
        self._mark_ended(reason)
        self._send_q.put_nowait(None)

    def _mark_ended(self, reason: EndReason) -> None:
        if self.ended_at is None:
            self.ended_at = self._loop.time()
        self._registry.clock.discard(self)
        if self.call is not None:
            self.call._end(reason)

    async def _run(self) -> None:
        try:
            if await self._ready and self.call is not None:
                await self._registry.run_handler(self.call)
        finally:
            if self.ended_at is None:
                self.hangup()
            else:
                self._send_q.put_nowait(None)


class WebSocketMediaServer:
    """Listens for jambonz `listen` / audio_fork WebSocket media and runs `handler.handle(call)` for each.

    Example:
        server = WebSocketMediaServer.from_uri("ws://127.0.0.1:9093", handler, max_calls=100)
        await server.start()  ...  await server.stop()
    """

    def __init__(self, handler: CallHandler, address: Address, options: ServerOptions | None = None) -> None:
        self.address = address
        self.registry = CallRegistry("websocket", handler, options or ServerOptions())
        self._server: Server | None = None

    @classmethod
    def from_uri(cls, uri: str, handler: CallHandler, **options: Any) -> WebSocketMediaServer:
        """`ws://HOST:PORT` (port 0: any free port); keyword options as in ServerOptions."""
        return cls(handler, parse_uri(uri, ("ws",)), ServerOptions(**options))

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return next(iter(self._server.sockets)).getsockname()[1]

    @property
    def active_calls(self) -> int:
        return self.registry.active

    @property
    def stats(self) -> ServerStats:
        return self.registry.stats

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        addr = connection.remote_address
        if not self.registry.admit(f"{addr[0]}:{addr[1]}" if addr else "?"):
            why = ("not taking calls (stopping or unhealthy: see the admin /health)" if not self.registry.accepting
                   or self.registry.active < self.registry.options.max_calls
                   else f"busy: {self.registry.active} calls active (max_calls={self.registry.options.max_calls})")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{why}; route the call elsewhere\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        await _Connection(ws, self.registry).serve()

    async def start(self) -> None:
        self._server = await serve(self._handle, self.address.host, self.address.port,
                                   select_subprotocol=_select_subprotocol, process_request=self._process_request,
                                   compression=None, max_size=MAX_MESSAGE_BYTES, close_timeout=2,
                                   logger=_LOGGER.getChild("protocol"))
        _LOGGER.info("websocket media listening on %s:%d", self.address.host, self.port,
                     extra={"event": "listen", "transport": "websocket"})

    def stop_accepting(self) -> None:
        """Refuse new calls (upgrades get 503); calls in progress go on (graceful shutdown, step one).

        The socket keeps listening so a PBX gets a clear 503 rather than a refused connection.
        """
        self.registry.stop_accepting()

    async def stop(self) -> None:
        """End every call (new upgrades get 503 meanwhile), wait for handlers, stop listening."""
        await self.registry.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> WebSocketMediaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
