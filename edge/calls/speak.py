"""The speaking half of a call: replies synthesized a sentence at a time, and playback on the line.

    BotReply -> TtsStage -> BotAudio... ReplyDone -> OutputStage -> MediaCall.play()

Script lines come from the prompt cache (rendered once per box); answers
are synthesized sentence by sentence, so the first sentence is on the line
while the next is rendered.

Playback and barge-in: speech starting over an interruptible line pauses it
at once (the queued audio is taken back from the line and held). Then the
dialogue decides: a backchannel or noise resumes the held audio; a barge-in
(`Interruption`) drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import numpy as np

from edge.calls.events import (BotAudio, BotReply, BotStartedSpeaking, BotStoppedSpeaking, CallEnded, Interruption,
                               ReplyDone, ResumePlayback, SystemEvent, UserStartedSpeaking)
from edge.calls.pipeline import Stage
from edge.calls.runtime import Runtime
from edge.telephony.media import RUNTIME_RATE_HZ, MediaCall

_LOGGER = logging.getLogger(__name__)


class TtsStage(Stage):
    """BotReply -> one BotAudio per sentence, then ReplyDone."""

    name = "tts"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    async def process(self, event) -> None:
        if not isinstance(event, BotReply):
            await self.push(event)
            return
        parts = [(p.text, p.kind != "answer") for p in event.parts if p.text] or [(event.text, True)]
        pending = [(text, cached, self.runtime.sentences(text, cached)) for text, cached in parts]
        first = True
        index = 0
        while index < len(pending):
            batch, index = await self.runtime.run(lambda start=index: self._take(pending, start))
            for chunk in batch:
                if len(chunk.audio) == 0:
                    continue
                await self.push(BotAudio(event.turn, chunk.text, chunk.audio, event.interruptible, first,
                                         getattr(chunk, "cached", False)))
                first = False
        await self.push(ReplyDone(event.turn, event.ended))

    def _take(self, pending: list, index: int) -> tuple[list, int]:
        """On the reply thread: the next sentences of the reply from part `index` on, and where to go on.

        Script lines come from the prompt cache, so every cached part's sentences come in one trip, and
        with them the first sentence of the answer that follows (a short line before an answer left a gap
        while the answer's first sentence waited its turn on a busy reply thread); an answer is
        otherwise synthesized a sentence per trip, so its first sentence goes out first.
        """
        batch = []
        while index < len(pending):
            text, cached, chunks = pending[index]
            try:
                if cached:
                    batch += list(chunks)
                else:
                    chunk = next(chunks, None)
                    if chunk is not None:
                        batch.append(chunk)
                        return batch, index
            except Exception:
                _LOGGER.exception("call %s: synthesis failed for %r; skipping it", self.call_id, text[:40])
            index += 1
        return batch, index


class OutputStage(Stage):
    """Puts the bot's audio on the line; pauses, resumes and drops it; hangs up after the last line."""

    name = "output"

    def __init__(self, call: MediaCall, clock: Callable[[], float]) -> None:
        super().__init__()
        self.call = call
        self.clock = clock
        self.turn = 0
        self.interruptible = True
        self.speaking = False
        self.paused = False
        self.open_reply = False
        self.end_after = False
        self.pauses = 0
        self._sent: list[np.ndarray] = []
        """Audio handed to the line since the bot was last quiet (to take back what is unplayed)."""
        self._held: list[np.ndarray] = []
        self._watch: asyncio.Task | None = None

    async def process(self, event) -> None:
        if isinstance(event, BotAudio):
            if event.first:
                self.turn, self.open_reply = event.turn, True
                self.interruptible = event.interruptible
                queued = 0.0 if self.paused else self.call.queued_playback_s
                self.speaking = True
                await self.push(BotStartedSpeaking(event.turn, event.interruptible, self.clock(), queued),
                                upstream=True)
            if self.paused:
                self._held.append(event.pcm)
            else:
                await self.call.play(event.pcm)
                self._sent.append(event.pcm)
        elif isinstance(event, ReplyDone):
            if event.turn == self.turn:
                self.open_reply = False
            self.end_after |= event.ended
            if not self.speaking and event.ended:  # an empty last reply: nothing to wait for
                await self.call.hangup()
            self._watch_idle()
        await self.push(event)

    async def on_system(self, event: SystemEvent, upstream: bool) -> None:
        if isinstance(event, UserStartedSpeaking) and not upstream:
            if self.speaking and self.interruptible and not self.end_after and not self.paused:
                self._pause()
        elif isinstance(event, ResumePlayback) and not upstream:
            if self.paused:
                await self._resume()
        elif isinstance(event, Interruption) and not upstream:
            self.call.clear_playback()
            self._held, self._sent = [], []
            self.paused = self.open_reply = False
            if self.speaking:
                self.speaking = False
                await self.push(BotStoppedSpeaking(self.turn, self.clock(), interrupted=True), upstream=True)
        elif isinstance(event, CallEnded) and self._watch is not None:
            self._watch.cancel()
        await self.push(event, upstream)

    def _pause(self) -> None:
        dropped = round(self.call.clear_playback() * RUNTIME_RATE_HZ)
        self.pauses += 1
        sent = np.concatenate(self._sent) if self._sent else np.zeros(0, np.int16)
        remainder = sent[len(sent) - min(dropped, len(sent)):] if dropped else sent[:0]
        self._held = [remainder, *self._held]
        self._sent = []
        self.paused = True

    async def _resume(self) -> None:
        self.paused = False
        held, self._held = self._held, []
        pcm = np.concatenate(held) if held else np.zeros(0, np.int16)
        if len(pcm):
            await self.call.play(pcm)
            self._sent = [pcm]
        self._watch_idle()

    def _watch_idle(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(self._until_idle(), name=f"idle-{self.call_id}")

    async def _until_idle(self) -> None:
        """When every queued sample has left and no reply is coming: the bot stopped speaking."""
        while True:
            await self.call.wait_played()
            if self.call.ended or self.paused or self.open_reply or self._held or not self.speaking:
                return
            if self.call.queued_playback_s > 0:
                continue
            await asyncio.sleep(0)  # a sentence may be on its way in this very loop iteration
            if self.open_reply or self.call.queued_playback_s > 0 or self.paused:
                continue
            self.speaking = False
            self._sent = []
            await self.push(BotStoppedSpeaking(self.turn, self.clock()), upstream=True)
            if self.end_after:
                await self.call.hangup()
            return

    async def stopped(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
