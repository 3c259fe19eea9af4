"""The listening half of a call: voice activity and endpointing, recognition, understanding.

    AudioIn -> VadStage -> Utterance -> AsrStage -> Transcript -> NluStage -> Understood
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Final

import numpy as np

from edge.audio.endpoint import FRAME_MS, Endpointer, EndpointSettings, NoInputTimer
from edge.audio.prosody import measure
from edge.audio.vad import VoiceDetector
from edge.calls.events import (AudioIn, BotStartedSpeaking, BotStoppedSpeaking, CallEnded, ListenFor, NoInput,
                               SystemEvent, Transcript, Understood, UserStartedSpeaking, UserStoppedSpeaking,
                               Utterance)
from edge.calls.pipeline import Stage
from edge.calls.runtime import Runtime
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
    """

    name = "vad"

    def __init__(self, detector: VoiceDetector, config: CallConfig) -> None:
        super().__init__()
        self.detector = detector
        self.config = config
        self.endpointer = Endpointer(EndpointSettings(start_ms=config.start_ms, silence_ms=config.silence_ms,
                                                      max_utterance_ms=config.max_utterance_ms))
        self.no_input = NoInputTimer(config.no_input_ms)
        self.node_silence_ms = config.silence_ms
        ring = (config.preroll_ms + config.start_ms + self.endpointer.settings.start_gap_ms) // FRAME_MS + 2
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=ring)
        self._utterance: list[tuple[int, np.ndarray]] = []
        self._over_bot = False
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
        if self.ended:
            return
        frame_start = self.now_ms
        self._ring.append((frame_start, frame))
        started_now = False
        score = getattr(self.detector, "confidence_async", None)  # batched across calls; doubles may lack it
        if score is None:
            confidence = self.detector.confidence(frame)
        else:
            confidence = await (score(frame) if power is None else score(frame, power))
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
        if not self.endpointer.in_turn and self.no_input.expired(self.now_ms):
            await self.push(NoInput(self.now_ms / 1000))

    async def _finish(self, end_ms: int, reason: str) -> None:
        frames = [f for t, f in self._utterance if t < end_ms + TAIL_MS]
        start_ms = self._utterance[0][0] if self._utterance else end_ms
        self._utterance = []
        pcm = np.concatenate(frames) if frames else np.zeros(0, np.int16)
        silence = self.endpointer.settings.silence_ms
        await self.push(UserStoppedSpeaking(end_ms / 1000, reason))
        await self.push(Utterance(pcm, start_ms / 1000, end_ms / 1000, self._over_bot, reason, silence))
        self.endpointer.set_silence(self.node_silence_ms)
        if not self.bot_speaking:
            self.no_input.arm(self.now_ms)


class AsrStage(Stage):
    """Utterance -> Transcript through the shared recognizer (batched across calls)."""

    name = "asr"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    async def process(self, event) -> None:
        if not isinstance(event, Utterance):
            await self.push(event)
            return
        started = time.perf_counter()
        try:
            heard = await self.runtime.recognize(_clean(event.pcm))
            text, raw = heard.text, heard.raw_text
        except Exception:  # a failed decode is heard as nothing; the call goes on
            _LOGGER.exception("call %s: recognition failed; treating the turn as unreadable", self.call_id)
            text, raw = "", None
        await self.push(Transcript(text, event, raw, (time.perf_counter() - started) * 1000))


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
        if event.text:
            try:
                intents = await self.runtime.classify(event.text)
            except Exception:
                _LOGGER.exception("call %s: intent model failed; the turn goes on without intents", self.call_id)
            if self.mood is not None:
                pcm = _clean(event.utterance.pcm)
                prosody = await self.runtime.run(lambda: measure(pcm, event.text))
                mood = self.mood.hear(event.text, prosody)
        await self.push(Understood(event, intents, prosody, mood))
