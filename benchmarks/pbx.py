"""A stand-in for Asterisk in a campaign: AMI Originate rings a lead, then the answered call is bridged to
the daemon's AudioSocket with CALL_UUID, and a scripted callee (benchmarks.calls.Caller) talks to the bot.

What it keeps, per dial: the number, CALL_UUID, when it rang, whether it connected to the daemon, and
when and how the callee's side ended. `trunk` channels at most are connected at once (an originate rings
until one is free). Like Asterisk, a dial goes on when the AMI client that asked for it goes away.
Used by benchmarks/crash.py and tests/test_crash_safety.py; loopback only.

    pbx = StandInPbx(make_callee, ring_s=lambda number: 0.5, trunk=50)
    await pbx.start(); pbx.audiosocket_port = daemon.port
    ...  # `salesbot campaign run NAME --ami {pbx.uri}`
    await pbx.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.calls import FRAME_S, Caller
from edge.telephony.ami import format_message
from edge.telephony.audiosocket import encode_uuid

SECRET = "stand-in"


class Callee(Caller):
    """A Caller that announces the dialler's CALL_UUID instead of a random one (as the dialplan's
    AudioSocket(${CALL_UUID}, ...) does)."""

    def __init__(self, call_uuid: str, *args: Any) -> None:
        super().__init__(*args)
        self.call_uuid = call_uuid

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(encode_uuid(uuid.UUID(self.call_uuid)))
        self.state_at = time.monotonic()


@dataclass
class Dial:
    number: str
    call_uuid: str
    rang_at: float
    connected_at: float | None = None
    ended_at: float | None = None
    callee: Callee | None = None
    result: str = "ringing"
    """ringing, talking, ended (the callee hung up), closed (the bot or a dead daemon closed it), refused."""


class StandInPbx:
    def __init__(self, make_callee: Callable[[str, str], Callee], *, ring_s: Callable[[str], float],
                 trunk: int) -> None:
        self.make_callee = make_callee
        self.ring_s = ring_s
        self.trunk = asyncio.Semaphore(trunk)
        self.audiosocket_port = 0
        self.dials: list[Dial] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._clock: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        assert self._server is not None
        return f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    @property
    def talking(self) -> list[Dial]:
        return [d for d in self.dials if d.result == "talking"]

    @property
    def busy(self) -> bool:
        return any(d.result in ("ringing", "talking") for d in self.dials)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._ami, "127.0.0.1", 0)
        self._clock = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        for task in [*self._tasks, self._clock]:
            if task is not None:
                task.cancel()
        for dial in self.dials:
            if dial.callee is not None and dial.callee.transport is not None:
                dial.callee.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _tick(self) -> None:
        """One 20 ms sending clock for every connected callee, on a monotonic deadline."""
        start, n = time.monotonic(), 0
        while True:
            now = time.monotonic()
            for dial in self.talking:
                frame = dial.callee.next_frame(now)  # type: ignore[union-attr]
                transport = dial.callee.transport  # type: ignore[union-attr]
                if frame is not None and transport is not None and not transport.is_closing():
                    transport.write(frame)
            n += 1
            await asyncio.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))

    async def _ami(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(*pairs: tuple[str, str]) -> None:
            if not writer.is_closing():
                writer.write(format_message(list(pairs)))

        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                action: dict[str, list[str]] = {}
                while line := (await reader.readline()).decode().rstrip("\r\n"):
                    key, _, value = line.partition(": ")
                    action.setdefault(key, []).append(value)
                if not action:
                    return
                aid, name = action["ActionID"][0], action["Action"][0]
                if name == "Login":
                    ok = action.get("Secret", [""])[0] == SECRET
                    send(("Response", "Success" if ok else "Error"), ("ActionID", aid),
                         ("Message", "Authentication accepted" if ok else "Authentication failed"))
                elif name == "Logoff":
                    send(("Response", "Goodbye"), ("ActionID", aid))
                    return
                elif name == "Originate":
                    variables = dict(v.split("=", 1) for v in action.get("Variable", []))
                    number = action["Channel"][0].split("/")[1].split("@")[0]
                    send(("Response", "Success"), ("ActionID", aid), ("Message", "Originate successfully queued"))
                    task = asyncio.get_running_loop().create_task(self._ring(number, variables["CALL_UUID"],
                                                                             aid, send))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                await writer.drain()

    async def _ring(self, number: str, call_uuid: str, aid: str, send: Callable[..., None]) -> None:
        dial = Dial(number, call_uuid, time.monotonic())
        self.dials.append(dial)
        await asyncio.sleep(self.ring_s(number))
        async with self.trunk:
            try:
                _, callee = await asyncio.get_running_loop().create_connection(
                    lambda: self.make_callee(number, call_uuid), "127.0.0.1", self.audiosocket_port)
            except OSError:  # the daemon is down: the callee picked up into nothing
                dial.result, dial.ended_at = "refused", time.monotonic()
                send(("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Failure"), ("Reason", "8"))
                return
            dial.callee, dial.connected_at, dial.result = callee, time.monotonic(), "talking"
            send(("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"), ("Reason", "4"),
                 ("Channel", f"PJSIP/{number}"), ("Uniqueid", f"{time.time():.6f}"))
            await callee.closed
            dial.ended_at = time.monotonic()
            dial.result = "ended" if callee.state == "done" else "closed"
