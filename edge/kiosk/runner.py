"""The kiosk: one sound card, one conversation at a time, each one a MediaCall for a CallHandler.

Every 20 ms the port hands over a microphone frame and whether the speaker
played sound in that step. The frame goes through the half-duplex gate;
then either to the starters (no conversation yet) or into the conversation's
MediaCall (transport "kiosk", 16 kHz, no resampling), and the call's queued
bot audio is moved to the speaker a few frames ahead. A conversation ends
when the handler returns (after its audio has played), on the idle timeout
or the length limit, when the visitor presses the push-to-talk key again, or
when the kiosk stops; then the kiosk waits for the next start.

The handler is whatever the config selects (edge/kiosk/handlers.py): the
voice call loop, which records each conversation like a call (source =
"kiosk"), or a sound check.

Example:
    >>> port = SoundCardPort(find_device("USB", "input"), find_device("USB", "output"))
    >>> kiosk = Kiosk(port, handler, config.kiosk, starters=[EnterKey()])
    >>> await kiosk.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from edge.config import KioskConfig
from edge.kiosk.conversation import ConversationClock
from edge.kiosk.gate import HalfDuplexGate
from edge.kiosk.levels import rms_dbfs
from edge.kiosk.port import AudioPort
from edge.kiosk.triggers import Starter
from edge.telephony.media import FRAME_MS, RUNTIME_RATE_HZ, CallHandler, CallInfo, EndReason, MediaCall, Wire

__all__ = ["Conversation", "Kiosk", "KioskStats"]

_LOGGER = logging.getLogger(__name__)

OUT_AHEAD_FRAMES: Final = 3
"""Bot frames kept queued at the sound card (60 ms): enough to ride out a late event loop, short
enough that a barge-in cuts the bot off quickly."""
HANDLER_GRACE_S: Final = 5.0
"""How long a handler may take to return once its conversation ended, before it is cancelled."""


@dataclass
class Conversation:
    """One kiosk conversation, as the kiosk saw it."""

    call_id: str
    trigger: str
    """"enter", "voice" or "phrase"."""
    started_s: float
    """Seconds since the kiosk started."""
    ended_s: float | None = None
    end_reason: EndReason | None = None
    end_detail: str = ""
    """Why, in the kiosk's words: "handler_done", "idle_timeout", "max_length", "key", "shutdown"."""
    frames_in: int = 0
    frames_gated: int = 0
    """Microphone frames muted/attenuated because the bot's own audio was in the room."""
    frames_out: int = 0
    """Bot frames sent to the speaker."""
    handler_error: str | None = None


@dataclass
class KioskStats:
    blocks: int = 0
    conversations: list[Conversation] = field(default_factory=list)


class _KioskWire(Wire):
    def __init__(self, kiosk: Kiosk) -> None:
        self.kiosk = kiosk

    def clear_output(self) -> None:
        self.kiosk.port.flush()

    def hangup(self) -> None:
        self.kiosk._handler_hung_up()


class Kiosk:
    """Runs conversations on one sound device.

    Args:
        port: the sound device (SoundCardPort, or LoopbackPort in tests).
        handler: the CallHandler each conversation is given.
        options: the [kiosk] config section.
        starters: how conversations start (EnterKey, VoiceStart, PhraseSpotter).
    """

    def __init__(self, port: AudioPort, handler: CallHandler, options: KioskConfig, *,
                 starters: Sequence[Starter]) -> None:
        self.port = port
        self.handler = handler
        self.options = options
        self.starters = list(starters)
        self.stats = KioskStats()
        self.gate: HalfDuplexGate | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._call: MediaCall | None = None
        self._conversation: Conversation | None = None
        self._clock: ConversationClock | None = None
        self._task: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once the sound device runs and starters listen."""
        self._max_conversations: int | None = None
        self._keys_closed = False

    # ---- control (event loop thread) ----------------------------------

    @property
    def now_s(self) -> float:
        return self.stats.blocks * FRAME_MS / 1000

    @property
    def active(self) -> bool:
        return self._call is not None

    def request_start(self, trigger: str) -> None:
        """Start a conversation (ignored while one runs or once stopping)."""
        if self._call is not None or self._stop.is_set():
            return
        info = CallInfo(call_id=f"kiosk-{uuid.uuid4().hex[:12]}", transport="kiosk",
                        metadata={"trigger": trigger, "device": self.port.name})
        call = MediaCall(info, wire_rate_hz=RUNTIME_RATE_HZ, wire=_KioskWire(self))
        self._call = call
        self._conversation = Conversation(call.call_id, trigger, self.now_s)
        self._clock = ConversationClock(self.options.idle_timeout_s, self.options.max_conversation_s)
        self._clock.begin(self.now_s)
        self._task = asyncio.get_running_loop().create_task(self._run_handler(call), name=f"kiosk-{call.call_id}")
        _LOGGER.info("kiosk conversation %s started (%s)", call.call_id, trigger,
                     extra={"event": "kiosk_start", "call_id": call.call_id, "trigger": trigger})

    def press(self) -> None:
        """The push-to-talk key: start a conversation, or end the one going on (the visitor is done)."""
        if self._call is None:
            self.request_start("enter")
        else:
            self._end(EndReason.REMOTE_HANGUP, "key")

    def input_closed(self) -> None:
        """The key's input ended: with nothing else to start a conversation, stop after the current one."""
        self._keys_closed = True
        if all(s.name == "enter" for s in self.starters):
            _LOGGER.info("push-to-talk input closed; the kiosk stops after the current conversation")
            if self._call is None:
                self.stop()

    def stop(self) -> None:
        """End the current conversation (reason "shutdown") and return from run()."""
        if self._call is not None:
            self._end(EndReason.SHUTDOWN, "shutdown")
        self._stop.set()

    # ---- the 20 ms clock ------------------------------------------------

    def _on_block(self, mic: np.ndarray, speaker_audible: bool) -> None:
        """From the port's thread: hand the step to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self._tick, mic, speaker_audible)

    def _tick(self, mic: np.ndarray, speaker_audible: bool) -> None:
        self.stats.blocks += 1
        if self.gate is None:  # run() sets it right after the port starts, before any step reaches the loop
            return
        heard, gated = self.gate.process(mic, speaker_audible)
        voiced = not gated and rms_dbfs(heard) >= self.options.speech_dbfs
        call, conversation, clock = self._call, self._conversation, self._clock
        if call is None or conversation is None or clock is None:
            if not self._stop.is_set():
                for starter in self.starters:
                    starter.feed(heard, voiced)
            return
        conversation.frames_in += 1
        conversation.frames_gated += gated
        call._feed_audio(heard)
        # The bot is busy while its sound is in the room (queued silence from a handler that plays zeros is not).
        why = clock.tick(self.now_s, voiced, bot_busy=gated or speaker_audible)
        if why is not None:
            self._end(EndReason.TIMEOUT, why.value)
        elif self._task is not None and self._task.done() and not call.queued_playback_s and not self.port.queued():
            self._end(EndReason.LOCAL_HANGUP, "handler_done")
        else:
            self._send_ahead(call, conversation)

    def _send_ahead(self, call: MediaCall, conversation: Conversation) -> None:
        while self.port.queued() < OUT_AHEAD_FRAMES:
            wire = call._next_frame()
            if wire is None:
                return
            self.port.play(np.frombuffer(wire, dtype="<i2"))
            conversation.frames_out += 1

    # ---- conversation end ---------------------------------------------

    async def _run_handler(self, call: MediaCall) -> None:
        try:
            await self.handler.handle(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one conversation's failure must not stop the kiosk
            _LOGGER.exception("kiosk conversation %s: the handler failed", call.call_id)
            if self._conversation is not None and self._conversation.call_id == call.call_id:
                self._conversation.handler_error = f"{type(exc).__name__}: {exc}"
                self._end(EndReason.HANDLER_ERROR, "handler_error")

    def _handler_hung_up(self) -> None:
        """The handler called hangup(): the MediaCall already ended itself; close the conversation."""
        if self._call is not None:
            self._end(EndReason.LOCAL_HANGUP, "handler_hangup")

    def _end(self, reason: EndReason, detail: str) -> None:
        call, conversation, task = self._call, self._conversation, self._task
        if call is None or conversation is None:
            return
        self._call = self._conversation = self._clock = None
        self._task = None
        call._end(reason)
        if detail not in ("handler_done", "handler_hangup"):
            self.port.flush()
        conversation.ended_s = self.now_s
        conversation.end_reason = call.end_reason
        conversation.end_detail = detail
        self.stats.conversations.append(conversation)
        _LOGGER.info("kiosk conversation %s ended: %s (%.1f s)", call.call_id, detail,
                     conversation.ended_s - conversation.started_s,
                     extra={"event": "kiosk_end", "call_id": call.call_id, "reason": detail,
                            "frames_gated": conversation.frames_gated})
        if task is not None and not task.done():
            finishing = asyncio.get_running_loop().create_task(self._reap(task, call.call_id))
            self._finishing.add(finishing)
            finishing.add_done_callback(self._finishing.discard)
        done = self._max_conversations is not None and len(self.stats.conversations) >= self._max_conversations
        if done or (self._keys_closed and all(s.name == "enter" for s in self.starters)):
            self._stop.set()

    @staticmethod
    async def _reap(task: asyncio.Task[None], call_id: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=HANDLER_GRACE_S)
        except TimeoutError:
            _LOGGER.warning("kiosk conversation %s: handler still running %.0f s after the end; cancelled",
                            call_id, HANDLER_GRACE_S)
            task.cancel()
        except Exception as exc:  # already logged by _run_handler
            _LOGGER.debug("handler of %s ended with %s", call_id, exc)

    # ---- run -------------------------------------------------------------

    async def run(self, max_conversations: int | None = None) -> KioskStats:
        """Listen for starts and run conversations until stop(), the port ends, or max_conversations.

        Raises:
            SoundDeviceError: the sound device cannot be opened.
        """
        self._loop = asyncio.get_running_loop()
        self._max_conversations = max_conversations
        self._stop.clear()
        for starter in self.starters:
            starter.attach(self, self._loop)
        self.port.start(self._on_block, lambda: self._loop.call_soon_threadsafe(self._port_ended))
        self.gate = HalfDuplexGate(self.options.gate_tail_ms, self.port.latency_s * 1000,
                                   self.options.gate_attenuation_db)
        _LOGGER.info("kiosk listening on %s (start: %s; gate hold %d ms)", self.port.name,
                     ", ".join(s.name for s in self.starters), self.gate.hold_frames * FRAME_MS)
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            if self._call is not None:
                self._end(EndReason.SHUTDOWN, "shutdown")
            self.port.stop()
            for starter in self.starters:
                starter.close()
            if self._finishing:
                await asyncio.gather(*self._finishing, return_exceptions=True)
        return self.stats

    def _port_ended(self) -> None:
        _LOGGER.info("the sound device stopped")
        self.stop()
