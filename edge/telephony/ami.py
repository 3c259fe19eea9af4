"""Outbound calls through the Asterisk Manager Interface (AMI): login, Originate, logoff.

AMI is a TCP text protocol. The PBX greets with one line,
`Asterisk Call Manager/x.y.z`; after that every message is `Key: Value`
lines ended by a blank line. An `Action` carries an `ActionID`; its
`Response` (Success / Error) and, for `Originate` with `Async: true`, a later
`Event: OriginateResponse` carry the same `ActionID`. That event's `Reason`
is an Asterisk control code: 4 answered, 5 busy, 8 congestion, 3 rang out
(no answer), 1 hung up before answering, 0 failed (no such channel or
number).

`originate()` never raises for a per-call problem and never hangs: the PBX
refusing the action, the callee being busy, the connection dropping and the
PBX going silent all come back as an `OriginateResult` with its outcome, so
a campaign can record every lead.

Example:
    client = await AmiClient.connect("tcp://127.0.0.1:5038", "salesbot", secret)
    result = await client.originate(OriginateRequest(channel="PJSIP/13800138000@trunk",
                                                     context="salesbot", variables={"LEAD_ID": "42"}))
    if result.outcome is OriginateOutcome.ANSWERED: ...
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from edge.errors import AmiError, InputError
from edge.telephony.address import parse_uri
from edge.telephony.privacy import mask_phone

__all__ = ["AmiClient", "OriginateOutcome", "OriginateRequest", "OriginateResult", "format_message"]

_LOGGER = logging.getLogger(__name__)

BANNER_PREFIX: Final = "Asterisk Call Manager/"
MAX_LINE: Final = 64 * 1024


class OriginateOutcome(enum.StrEnum):
    """How one Originate ended."""

    ANSWERED = "answered"
    """The callee answered; the call runs the dialplan (AudioSocket to the bot)."""
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """It rang until the originate timeout."""
    CONGESTION = "congestion"
    """The network or trunk was congested."""
    HANGUP = "hangup"
    """The callee hung up (or rejected) before answering."""
    FAILED = "failed"
    """The PBX could not place the call (no such channel, number or trunk)."""
    REJECTED = "rejected"
    """The PBX refused the Originate action itself (permission, syntax)."""
    TIMEOUT = "timeout"
    """The PBX did not answer the action or send OriginateResponse in time."""
    DISCONNECTED = "disconnected"
    """The AMI connection was lost before the result arrived."""

    @property
    def retryable(self) -> bool:
        """Worth another attempt later (per the campaign's retry rules)."""
        return self in (OriginateOutcome.BUSY, OriginateOutcome.NO_ANSWER, OriginateOutcome.CONGESTION,
                        OriginateOutcome.HANGUP, OriginateOutcome.TIMEOUT, OriginateOutcome.DISCONNECTED)


_REASONS: Final = {4: OriginateOutcome.ANSWERED, 5: OriginateOutcome.BUSY, 8: OriginateOutcome.CONGESTION,
                   3: OriginateOutcome.NO_ANSWER, 1: OriginateOutcome.HANGUP, 0: OriginateOutcome.FAILED}


def _check_value(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise InputError(f"Originate {name} must not contain line breaks (it would inject AMI lines): {value!r}")
    return value


@dataclass(frozen=True)
class OriginateRequest:
    """One outbound call to place; validated when built."""

    channel: str
    """Dial string, e.g. "PJSIP/13800138000@trunk"."""
    context: str = "salesbot"
    """Dialplan context the answered call enters (where AudioSocket() connects it to the bot)."""
    exten: str = "s"
    priority: int = 1
    caller_id: str | None = None
    """Caller ID shown to the callee, e.g. '"Sales" <02112345678>'."""
    timeout_s: float = 30.0
    """How long it may ring before it counts as no answer."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Channel variables, e.g. {"LEAD_ID": "42"}; the dialplan can pass them on."""
    action_id: str = field(default_factory=lambda: f"salesbot-{uuid.uuid4().hex}")
    call_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    """Sent as channel variable CALL_UUID; the dialplan's AudioSocket(${CALL_UUID},...) makes it the
    media call's call_id, so the answered call finds its lead."""

    def __post_init__(self) -> None:
        for name in ("channel", "context", "exten", "action_id", "call_uuid"):
            if not getattr(self, name):
                raise InputError(f"Originate needs a non-empty {name}")
            _check_value(name, getattr(self, name))
        if self.caller_id is not None:
            _check_value("caller_id", self.caller_id)
        for key, value in self.variables.items():
            if "=" in key:
                raise InputError(f"Originate variable name must not contain '=': {key!r}")
            _check_value(f"variable {key}", f"{key}={value}")
        if self.timeout_s <= 0:
            raise InputError(f"Originate timeout_s must be > 0, got {self.timeout_s}")

    def fields(self) -> list[tuple[str, str]]:
        """The AMI action's lines, in order."""
        out = [("Action", "Originate"), ("ActionID", self.action_id), ("Channel", self.channel),
               ("Context", self.context), ("Exten", self.exten), ("Priority", str(self.priority)),
               ("Timeout", str(int(self.timeout_s * 1000))), ("Async", "true")]
        if self.caller_id:
            out.append(("CallerID", self.caller_id))
        out.append(("Variable", f"CALL_UUID={self.call_uuid}"))
        out += [("Variable", f"{k}={v}") for k, v in self.variables.items()]
        return out


@dataclass(frozen=True)
class OriginateResult:
    """What became of one OriginateRequest."""

    action_id: str
    outcome: OriginateOutcome
    message: str = ""
    """The PBX's words, or ours for timeouts and disconnects."""
    reason_code: int | None = None
    """OriginateResponse Reason, when the PBX sent one."""
    channel: str | None = None
    uniqueid: str | None = None
    """Asterisk's id of the channel, to match with CDRs."""

    @property
    def answered(self) -> bool:
        return self.outcome is OriginateOutcome.ANSWERED


def format_message(fields: list[tuple[str, str]]) -> bytes:
    """AMI wire bytes: `Key: Value` lines and a blank line."""
    return "".join(f"{key}: {value}\r\n" for key, value in fields).encode("utf-8") + b"\r\n"


def parse_message(lines: list[str]) -> dict[str, str]:
    """One message's lines to a dict (a repeated key keeps its last value; lines without ': ' are skipped)."""
    message: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            message[key.strip()] = value.strip()
    return message


class AmiClient:
    """One AMI connection: a reader task matches responses and events to pending requests by ActionID."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: str) -> None:
        self.banner = banner
        self._reader = reader
        self._writer = writer
        self._responses: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._events: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._connected = True
        self._lost_reason = ""
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop(), name="ami-reader")

    @classmethod
    async def connect(cls, uri: str, username: str, secret: str, *, events: str = "call",
                      timeout_s: float = 5.0) -> AmiClient:
        """Connect to `tcp://HOST:PORT` and log in.

        Raises:
            AmiError: unreachable, not an AMI server, or the login refused.
        """
        address = parse_uri(uri, ("tcp",))
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address.host, address.port, limit=MAX_LINE), timeout_s)
        except (OSError, TimeoutError) as exc:
            raise AmiError(f"cannot reach Asterisk AMI at {address.host}:{address.port} ({exc or 'timed out'}); "
                           "is Asterisk running with manager.conf enabled=yes and this bindaddr/port?") from None
        try:
            banner = (await asyncio.wait_for(reader.readline(), timeout_s)).decode("utf-8", "replace").strip()
        except (OSError, TimeoutError, ValueError):
            banner = ""
        if not banner.startswith(BANNER_PREFIX):
            writer.close()
            raise AmiError(f"{address.host}:{address.port} did not greet as Asterisk AMI "
                           f"(got {banner[:60]!r}); check the AMI port (usually 5038)")
        client = cls(reader, writer, banner)
        response = await client.action([("Action", "Login"), ("Username", username), ("Secret", secret),
                                        ("Events", events)], timeout_s=timeout_s)
        if response.get("Response") != "Success":
            await client._shutdown()
            raise AmiError(f"AMI login as {username!r} refused: {response.get('Message', 'no message')}; "
                           "check the user and secret in /etc/asterisk/manager.conf")
        _LOGGER.info("AMI connected to %s:%d (%s)", address.host, address.port, banner,
                     extra={"event": "ami_login"})
        return client

    @property
    def connected(self) -> bool:
        return self._connected

    async def action(self, fields: list[tuple[str, str]], *, timeout_s: float = 5.0) -> dict[str, str]:
        """Send one action, return its Response message.

        On timeout or a lost connection the result is {"Response": "Timeout" | "Disconnected",
        "Message": ...} rather than an exception.
        """
        action_id = next((v for k, v in fields if k == "ActionID"), None)
        if action_id is None:
            action_id = f"salesbot-{uuid.uuid4().hex}"
            fields = [*fields, ("ActionID", action_id)]
        future = self._register(self._responses, action_id)
        try:
            if not await self._send(fields):
                return {"Response": "Disconnected", "Message": self._lost_reason}
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return {"Response": "Timeout", "Message": f"no response to the action within {timeout_s} s"}
        finally:
            self._responses.pop(action_id, None)

    async def originate(self, request: OriginateRequest, *, response_timeout_s: float = 5.0,
                        event_slack_s: float = 10.0) -> OriginateResult:
        """Place one call; wait for the PBX's verdict (at most response_timeout_s + timeout_s + event_slack_s)."""
        aid = request.action_id
        log_fields = {"action_id": aid, "channel": mask_phone(request.channel)}
        event = self._register(self._events, aid)
        try:
            response = await self.action(request.fields(), timeout_s=response_timeout_s)
            status = response.get("Response")
            # The PBX can answer these too (a hostile or broken peer need not send a Message).
            if status == "Disconnected":
                return self._result(aid, OriginateOutcome.DISCONNECTED,
                                    response.get("Message", "the PBX said Disconnected"), log_fields)
            if status == "Timeout":
                return self._result(aid, OriginateOutcome.TIMEOUT, response.get("Message", "the PBX said Timeout"),
                                    log_fields)
            if status != "Success":
                return self._result(aid, OriginateOutcome.REJECTED, response.get("Message", status or ""),
                                    log_fields)
            wait_s = request.timeout_s + event_slack_s
            try:
                message = await asyncio.wait_for(asyncio.shield(event), wait_s)
            except TimeoutError:
                return self._result(aid, OriginateOutcome.TIMEOUT,
                                    f"no OriginateResponse within {wait_s:.0f} s; check the call on the PBX",
                                    log_fields)
            if message.get("Response") == "Disconnected":
                return self._result(aid, OriginateOutcome.DISCONNECTED,
                                    message.get("Message", "the PBX said Disconnected"), log_fields)
            try:
                code: int | None = int(message.get("Reason", ""))
            except ValueError:
                code = None
            if message.get("Response") == "Success":
                outcome = OriginateOutcome.ANSWERED
            else:  # a Failure never counts as answered, whatever its Reason says
                outcome = _REASONS.get(code, OriginateOutcome.FAILED)
                if outcome is OriginateOutcome.ANSWERED:
                    outcome = OriginateOutcome.FAILED
            return self._result(aid, outcome, message.get("Response", ""), log_fields, code,
                                message.get("Channel"), message.get("Uniqueid"))
        finally:
            self._events.pop(aid, None)

    async def close(self) -> None:
        """Log off and close (errors on the way out are ignored)."""
        if self._connected:
            await self.action([("Action", "Logoff")], timeout_s=2.0)
        await self._shutdown()

    async def __aenter__(self) -> AmiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- internals ------------------------------------------------------

    def _result(self, aid: str, outcome: OriginateOutcome, message: str, log_fields: dict[str, str],
                code: int | None = None, channel: str | None = None, uniqueid: str | None = None) -> OriginateResult:
        log = _LOGGER.info if outcome in (OriginateOutcome.ANSWERED, OriginateOutcome.BUSY,
                                          OriginateOutcome.NO_ANSWER) else _LOGGER.warning
        log("originate %s: %s (%s)", aid, outcome.value, message,
            extra={"event": "originate", "outcome": outcome.value, "reason_code": code, **log_fields})
        return OriginateResult(aid, outcome, message, code, channel, uniqueid)

    def _register(self, table: dict[str, asyncio.Future[dict[str, str]]], action_id: str
                  ) -> asyncio.Future[dict[str, str]]:
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        if not self._connected:
            future.set_result({"Response": "Disconnected", "Message": self._lost_reason})
        table[action_id] = future
        return future

    async def _send(self, fields: list[tuple[str, str]]) -> bool:
        if not self._connected:
            return False
        try:
            self._writer.write(format_message(fields))
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            self._lost(f"AMI connection lost while sending: {exc}")
            return False
        return True

    async def _read_loop(self) -> None:
        lines: list[str] = []
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    self._lost("the PBX closed the AMI connection")
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:
                    lines.append(line)
                    continue
                if lines:
                    self._dispatch(parse_message(lines))
                    lines = []
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            self._lost(f"AMI connection lost: {exc}")

    def _dispatch(self, message: dict[str, str]) -> None:
        action_id = message.get("ActionID", "")
        if "Response" in message and "Event" not in message:
            future = self._responses.get(action_id)
        elif message.get("Event") == "OriginateResponse":
            future = self._events.get(action_id)
        else:
            return
        if future is not None and not future.done():
            future.set_result(message)

    def _lost(self, reason: str, *, expected: bool = False) -> None:
        if not self._connected:
            return
        self._connected = False
        self._lost_reason = reason
        (_LOGGER.debug if expected else _LOGGER.warning)(
            "%s; %d pending requests reported as disconnected", reason,
            len(self._responses) + len(self._events), extra={"event": "ami_lost"})
        for table in (self._responses, self._events):
            for future in table.values():
                if not future.done():
                    future.set_result({"Response": "Disconnected", "Message": reason})

    async def _shutdown(self) -> None:
        self._lost("the AMI client was closed", expected=True)
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task
