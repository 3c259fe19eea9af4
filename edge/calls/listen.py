"""The listening half of a call: voice activity and endpointing, recognition, understanding.

    AudioIn -> VadStage -> Utterance -> AsrStage -> Transcript -> NluStage -> Understood
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Final

import numpy as np

from edge.asr.language import CallLanguage
from edge.audio.endpoint import (
    FRAME_MS,
    Endpointer,
    EndpointSettings,
    NoInputTimer,
    VadState,
)
from edge.audio.prosody import measure
from edge.audio.vad import VoiceDetector
from edge.calls.events import (
    AudioIn,
    BotStartedSpeaking,
    BotStoppedSpeaking,
    CallEnded,
    EarlyUtterance,
    ListenFor,
    NoInput,
    SystemEvent,
    Transcript,
    Understood,
    UserStartedSpeaking,
    UserStoppedSpeaking,
    Utterance,
)
from edge.calls.pipeline import Stage
from edge.calls.runtime import Heard, Runtime
from edge.config import CallConfig
from edge.nlu.emotion import MoodTracker

_LOGGER = logging.getLogger(__name__)
TAIL_MS: Final = 100
"""Audio kept after the last speech frame (the end of the last syllable)."""


class VadStage(Stage):
    """Voice activity per frame, turns cut by the endpointer, the no-input timer.

    Knows whether the bot is speaking (BotStarted/StoppedSpeaking come
    upstream from the output stage): speech that starts then is `over_bot`
    and ends after the short overlap silence.

    With `early_ms`, a pause of that long inside a turn sends the utterance
    the turn would be if it ended there (`EarlyUtterance`), so recognition
    can use the rest of the endpoint's silence; `EarlyUtterance(None)` when
    the caller goes on.
    """

    name = "vad"

    def __init__(self, detector: VoiceDetector, config: CallConfig, early_ms: int = 0) -> None:
        super().__init__()
        self.detector = detector
        self.config = config
        self.early_ms = early_ms
        self._early_at: int | None = None
        """last_speech_ms of the EarlyUtterance sent for the pause in progress."""
        self.endpointer = Endpointer(EndpointSettings(start_ms=config.start_ms, silence_ms=config.silence_ms,
                                                      max_utterance_ms=config.max_utterance_ms))
        self.no_input = NoInputTimer(config.no_input_ms)
        self.node_silence_ms = config.silence_ms
        ring = (config.preroll_ms + config.start_ms + self.endpointer.settings.start_gap_ms) // FRAME_MS + 2
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=ring)
        self._utterance: list[tuple[int, np.ndarray]] = []
        self._over_bot = False
        self._fifo: deque[tuple[np.ndarray, float | asyncio.Future]] = deque()
        self._waiting = False
        self._draining = False
        self._drainer: asyncio.Task | None = None
        self.bot_speaking = False
        self.ended = False

    @property
    def now_ms(self) -> int:
        return self.endpointer.now_ms

    async def on_system(self, event: SystemEvent, upstream: bool) -> None:
        if isinstance(event, AudioIn):
            await self._audio(event.pcm, event.power)
            return  # caller audio stops here
        if isinstance(event, BotStartedSpeaking):
            self.bot_speaking = True
            self.no_input.disarm()
        elif isinstance(event, BotStoppedSpeaking):
            self.bot_speaking = False
            if not event.interrupted and not self.endpointer.in_turn:
                self.no_input.arm(self.now_ms)
        elif isinstance(event, ListenFor):
            self.node_silence_ms = event.silence_ms
            if not self.endpointer.in_turn:
                self.endpointer.set_silence(event.silence_ms)
        elif isinstance(event, CallEnded):
            self.ended = True
            self.no_input.disarm()
            self.detector.close()
        await self.push(event, upstream)

    async def _audio(self, frame: np.ndarray, power: float | None = None) -> None:
        """Queue the frame with its confidence (or the future of it) and work through what is known, in
        order: a frame whose windows are still being scored holds back the frames after it, but never
        the reading of them (so a call does not fall behind by one model round trip per window)."""
        if self.ended:
            return
        submit = getattr(self.detector, "submit", None)  # batched across calls; doubles may lack it
        if submit is not None:
            handle = submit(frame) if power is None else submit(frame, power)
        else:
            score = getattr(self.detector, "confidence_async", None)
            handle = await score(frame) if score is not None else self.detector.confidence(frame)
        self._fifo.append((frame, handle))
        if not self._waiting and not self._draining:
            await self._drain()

    async def _drain(self) -> None:
        self._draining = True
        try:
            while self._fifo and not self.ended:
                frame, handle = self._fifo[0]
                if isinstance(handle, asyncio.Future):
                    if not handle.done():
                        self._waiting = True
                        handle.add_done_callback(self._resume)
                        return
                    confidence = 0.0 if handle.cancelled() or handle.exception() else handle.result()
                    if not handle.cancelled() and handle.exception() is not None:
                        _LOGGER.warning("call %s: the VAD failed on a frame (%s); heard as silence", self.call_id,
                                        handle.exception())
                else:
                    confidence = handle
                self._fifo.popleft()
                await self._step(frame, confidence)
                self.keep_time()  # a drain after a VAD batch is many frames' steps in one go
        finally:
            self._draining = False

    def _resume(self, _done: asyncio.Future) -> None:
        self._waiting = False
        if not self.ended and not self._draining:
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name=f"vad-{self.call_id}")

    async def stopped(self) -> None:
        if self._drainer is not None and not self._drainer.done():
            self._drainer.cancel()

    async def _step(self, frame: np.ndarray, confidence: float) -> None:
        frame_start = self.now_ms
        self._ring.append((frame_start, frame))
        started_now = False
        for change in self.endpointer.update(confidence):
            if change.kind == "start":
                restart = change.at_ms == self.now_ms  # a turn cut at max length goes straight on
                since = change.at_ms if restart else change.at_ms - self.config.preroll_ms
                self._utterance = [(t, f) for t, f in self._ring if t >= since]
                started_now = True
                self._over_bot = self.bot_speaking
                self.endpointer.set_silence(self.config.overlap_silence_ms if self._over_bot
                                            else self.node_silence_ms)
                self.no_input.disarm()
                await self.push(UserStartedSpeaking(change.at_ms / 1000, self._over_bot))
            else:
                await self._finish(change.at_ms, change.reason)
        if self.endpointer.in_turn and not started_now:
            self._utterance.append((frame_start, frame))
            if self.early_ms:
                await self._early()
        if not self.endpointer.in_turn and self.no_input.expired(self.now_ms):
            await self.push(NoInput(self.now_ms / 1000))

    async def _early(self) -> None:
        """A long enough pause: the utterance so far, for recognition to start on; the caller went on: drop it."""
        ep = self.endpointer
        if ep.state is VadState.STOPPING:
            last = ep.last_speech_ms
            if self._early_at != last and self.early_ms <= self.now_ms - last < ep.settings.silence_ms:
                self._early_at = last
                await self.push(EarlyUtterance(self._cut(last, "silence")))
        elif self._early_at is not None:
            self._early_at = None
            await self.push(EarlyUtterance(None))

    def _cut(self, end_ms: int, reason: str) -> Utterance:
        """The turn's utterance if it ends at end_ms."""
        frames = [f for t, f in self._utterance if t < end_ms + TAIL_MS]
        start_ms = self._utterance[0][0] if self._utterance else end_ms
        pcm = np.concatenate(frames) if frames else np.zeros(0, np.int16)
        silence = self.endpointer.settings.silence_ms
        return Utterance(pcm, start_ms / 1000, end_ms / 1000, self._over_bot, reason, silence)

    async def _finish(self, end_ms: int, reason: str) -> None:
        utterance = self._cut(end_ms, reason)
        self._utterance = []
        self._early_at = None
        await self.push(UserStoppedSpeaking(end_ms / 1000, reason))
        await self.push(utterance)
        self.endpointer.set_silence(self.node_silence_ms)
        if not self.bot_speaking:
            self.no_input.arm(self.now_ms)


class AsrStage(Stage):
    """Utterance -> Transcript through the shared recognizer (batched across calls).

    With `early`, recognition runs while the endpointer still waits: each `EarlyUtterance` (a pause)
    starts recognizing the whole turn so far, with its intents and prosody (a candidate). If the turn
    ends at that pause, the candidate is the result, often ready by then; if the caller goes on, it is
    dropped and the turn is recognized whole when it ends. Always whole: pieces cut at pauses and
    decoded apart lose words across the cut (espeak's voices pause 140-240 ms inside words; 28 of 39
    scenario lines cut at 200 ms pauses decoded as whole), so a server would hear worse than the
    unpaced simulator that measures it. No candidate is made while other calls' finished turns wait for
    a recognizer: it would queue ahead of them.
    """

    name = "asr"

    def __init__(self, runtime: Runtime, early: bool = False) -> None:
        super().__init__()
        self.runtime = runtime
        self.language = CallLanguage(runtime.config.asr.language)
        self.early = early
        self._candidate: tuple[tuple, asyncio.Task] | None = None
        self.early_used = 0
        """Turns whose transcript was the candidate made at their last pause."""
        self.early_dropped = 0
        """Candidates dropped because the caller went on."""
        self.early_shed = 0
        """Pauses with no candidate because other calls' turns were waiting for recognition."""

    async def on_system(self, event: SystemEvent, upstream: bool) -> None:
        if isinstance(event, EarlyUtterance):
            if self.early:
                self._drop_candidate()
                if event.utterance is not None and getattr(self.runtime, "recognition_backlog", 0) > 0:
                    self.early_shed += 1  # a guess would queue ahead of other calls' finished turns
                elif event.utterance is not None:
                    utterance = event.utterance
                    task = asyncio.get_running_loop().create_task(self._prepare(utterance),
                                                                  name=f"early-asr-{self.call_id}")
                    task.add_done_callback(_quiet)
                    self._candidate = (_key(utterance), task)
            return  # goes no further
        if isinstance(event, CallEnded):
            self._drop_candidate()
        await self.push(event, upstream)

    async def process(self, event) -> None:
        if not isinstance(event, Utterance):
            await self.push(event)
            return
        started = time.perf_counter()
        candidate = self._take_candidate(event)
        prepared = None
        try:
            if candidate is not None:
                heard, prepared = await candidate
            else:
                heard = await self.runtime.recognize(_clean(event.pcm), self.language.code)
            text, raw = heard.text, heard.raw_text
            self.language.observe(raw if raw is not None else text)
        except Exception:  # a failed decode is heard as nothing; the call goes on
            _LOGGER.exception("call %s: recognition failed; treating the turn as unreadable", self.call_id)
            text, raw = "", None
        await self.push(Transcript(text, event, raw, (time.perf_counter() - started) * 1000, prepared=prepared))

    async def stopped(self) -> None:
        self._drop_candidate()

    async def _prepare(self, utterance: Utterance) -> tuple[Heard, dict[str, Any]]:
        """The turn's transcript if it ends here, then its intents and prosody (as NluStage would)."""
        pcm = _clean(utterance.pcm)
        heard = await self.runtime.recognize(pcm, self.language.code)
        prepared: dict[str, Any] = {}
        if heard.text:
            try:
                prepared["intents"] = await self.runtime.classify(heard.text)
            except Exception:  # noqa: BLE001 - NluStage tries again and logs it
                _LOGGER.debug("call %s: early intents failed; the turn asks again", self.call_id)
            if self.runtime.cues is not None:
                prepared["prosody"] = await self.runtime.run(lambda: measure(pcm, heard.text))
        return heard, prepared

    def _take_candidate(self, utterance: Utterance) -> asyncio.Task | None:
        if self._candidate is None:
            return None
        key, task = self._candidate
        self._candidate = None
        if key == _key(utterance):
            self.early_used += 1
            return task
        task.cancel()
        return None

    def _drop_candidate(self) -> None:
        if self._candidate is not None:
            self._candidate[1].cancel()
            self._candidate = None
            self.early_dropped += 1


def _quiet(task: asyncio.Task) -> None:
    """A candidate nobody awaited (its turn went another way) must not log 'exception never retrieved'."""
    if not task.cancelled():
        task.exception()


def _key(utterance: Utterance) -> tuple:
    return utterance.start_s, utterance.end_s, len(utterance.pcm), utterance.over_bot


def _clean(pcm: np.ndarray) -> np.ndarray:
    """DC offset removed (a bad line can carry one), still int16."""
    if pcm.size == 0:
        return pcm
    mean = float(pcm.mean())
    if abs(mean) < 64:
        return pcm
    return np.clip(pcm.astype(np.float32) - mean, -32768, 32767).astype(np.int16)


class NluStage(Stage):
    """Transcript -> Understood: intents (batched across calls), prosody and mood."""

    name = "nlu"

    def __init__(self, runtime: Runtime, mood: MoodTracker | None) -> None:
        super().__init__()
        self.runtime = runtime
        self.mood = mood

    async def process(self, event) -> None:
        if not isinstance(event, Transcript):
            await self.push(event)
            return
        intents = prosody = mood = None
        prepared = event.prepared or {}
        if event.text:
            intents = prepared.get("intents")
            if intents is None:
                try:
                    intents = await self.runtime.classify(event.text)
                except Exception:
                    _LOGGER.exception("call %s: intent model failed; the turn goes on without intents",
                                      self.call_id)
            if self.mood is not None:
                prosody = prepared.get("prosody")
                if prosody is None:
                    pcm = _clean(event.utterance.pcm)
                    prosody = await self.runtime.run(lambda: measure(pcm, event.text))
                mood = self.mood.hear(event.text, prosody)
        await self.push(Understood(event, intents, prosody, mood))
