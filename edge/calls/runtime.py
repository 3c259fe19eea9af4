"""The models every call shares, loaded once per process, and the batching of their work.

A `Runtime` holds the recognizer, the intent model, the synthesizer (with
its prompt cache), the script, the knowledge base and the VAD model pool.
Calls never load a model. Work from many calls is batched: recognitions
that arrive together go to one `decode` (sherpa-onnx `decode_streams`),
texts to one intent `predict`. On a server the batches run on small thread
pools (`call.offload`), so the event loop keeps the 20 ms media clock:
recognition in `call.asr_processes` worker processes (edge.asr.process:
decoding there does not compete with the event loop for the GIL; PIPELINE
threads feed each), or on `call.workers` threads in this process when that
is 0; and the short work of a reply
(intents, tone of voice, speech synthesis) on `call.reply_workers` threads
of its own, so a reply never waits behind other calls' recognition. The
simulator runs them inline, which keeps a simulated call deterministic.

Example:
    >>> runtime = Runtime.load(config.load(None))     # once
    >>> handler = CallLoop(runtime)                     # edge.calls.session
    >>> server = AudioSocketServer.from_uri("tcp://127.0.0.1:9092", handler)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from edge.asr.base import decode_segments
from edge.asr.language import LANGUAGES
from edge.audio.vad import EnergyGate, SileroPool, VoiceDetector
from edge.calls.batcher import MicroBatcher
from edge.config import CallConfig, Config
from edge.dialog.engine import Classifier
from edge.dialog.script import Script
from edge.nlu.emotion import MoodCues, default_cues

_LOGGER = logging.getLogger(__name__)

WARM_STREAMS = 4
"""Recognizer streams opened at start-up, so the first concurrent turns find their state ready."""
RECOGNIZE_BATCH = 4
"""Most utterances per ASR batch. Batching does not raise the built-in CTC model's throughput on CPU
(measured: 32 utterances decode in about the same time in batches of 1, 4 or 32: padding eats the gain),
so small batches let the first of a burst of turns be answered sooner, and the rest no later; and they
run on every worker thread at once (a burst of 50 turns queued ~2.9 s behind one decoding thread).
In worker processes (call.asr_processes) each utterance goes alone: measured there, the demo callee's
turns cost 13.4 ms of CPU each one by one and 19.1 ms each in batches of 4 (padding to the longest)."""
PIPELINE = 2
"""Requests in flight per recognition worker process: the next utterance is already in its pipe when it
finishes one, so it does not sit idle while the busy event loop hands it the next (with 1, at 100 calls
the worker waited on the loop and recognition fell seconds behind)."""
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Heard:
    """What the recognizer made of one utterance."""

    text: str
    raw_text: str | None = None
    seconds: float = 0.0
    """Decode time of the batch it was in."""


@dataclass
class Runtime:
    """Everything the calls share; build it once with `Runtime.load` (or pass test doubles)."""

    config: Config
    script: Script
    classifier: Classifier
    recognizer: Any
    """edge.asr Recognizer: `stream()`, `decode(streams)`; `info` goes on each turn record."""
    synthesizer: Any
    """edge.tts synthesizer (cached lines): `stream(text)` per sentence."""
    raw_synthesizer: Any = None
    """The same voice without the prompt cache, for dynamic lines (answers); default: `synthesizer`."""
    knowledge: Any = None
    vad: SileroPool | None = None
    cues: MoodCues | None = None
    executor: ThreadPoolExecutor | None = None
    """Recognition's threads (None: inline)."""
    reply_executor: ThreadPoolExecutor | None = None
    """Threads for intents, prosody and synthesis (None: `executor`)."""
    _batchers: dict[str, MicroBatcher] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, config: Config, *, recognizer: Any = None, classifier: Classifier | None = None,
             synthesizer: Any = None, knowledge: Any = None, script: Script | None = None) -> Runtime:
        """Load every model the config names; anything passed in is used instead (tests, the demo).

        Raises:
            BundleError / ModelDirError: a model is missing or broken (the message says which and what to do).
            ScriptError: the script is invalid.
        """
        started = time.perf_counter()
        call = config.call
        call.validate()
        if classifier is None:
            from edge.nlu import open_intents

            classifier = open_intents(config)
        if script is None:
            script = Script.load(config.dialog.script, list(classifier.labels))
        if recognizer is None:
            recognizer = _open_recognizer(config)
        raw = None
        if synthesizer is None:
            from edge import tts

            synthesizer = tts.open(config.tts)
            raw = tts.uncached(synthesizer)
        if knowledge is None:
            from edge.kb import KnowledgeBase

            knowledge = (KnowledgeBase.open(config.kb.database, rrf_k=config.kb.rrf_k)
                         if config.kb.database is not None else KnowledgeBase.builtin())
        threads = PIPELINE * getattr(recognizer, "processes", 0) or call.workers
        executor = ThreadPoolExecutor(threads, thread_name_prefix="asr") if call.offload else None
        reply_executor = (ThreadPoolExecutor(call.reply_workers, thread_name_prefix="reply")
                          if call.offload else None)
        runtime = cls(config=config, script=script, classifier=classifier, recognizer=recognizer,
                      synthesizer=synthesizer, raw_synthesizer=raw, knowledge=knowledge,
                      vad=SileroPool(call.vad_threshold, offload=call.offload),
                      cues=default_cues() if call.mood else None,
                      executor=executor, reply_executor=reply_executor)
        runtime.warm_up()
        _LOGGER.info("call runtime loaded in %.2f s (asr %s)", time.perf_counter() - started,
                     getattr(recognizer, "info", {}))
        return runtime

    def script_lines(self) -> list[str]:
        """Every fixed line of the script, {variables} filled with their defaults."""
        from edge.dialog.replies import render

        values = dict(self.script.variables)
        lines = []
        for node in self.script.nodes.values():
            lines += [*node.say, *(t for t in (node.reprompt, node.rephrase, node.brief) if t)]
        lines += [h.say for h in self.script.handlers.values() if h.say]
        lines.append(self.script.spoken["no_answer"])
        return [render(line, values) for line in dict.fromkeys(lines)]

    def warm_up(self) -> int:
        """Render the script's lines into the prompt cache and run each model once, so the first call
        pays no first-use costs; returns how many lines were new to the cache."""
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from edge.audio.prosody import measure
        from edge.nlu.slots import extract

        if self.vad is not None:
            self.vad.give_back(self.vad.take())  # the first detector loads the model (~0.4 s)
        prerender = getattr(self.synthesizer, "prerender", None)
        new = prerender(self.script_lines()) if prerender is not None else 0
        self.classifier.predict(["你好"])
        extract("明天下午三点 电话13800000000", datetime.now(ZoneInfo(self.config.dialog.timezone)))
        measure((np.sin(np.arange(8000) * 0.1) * 3000).astype(np.int16), "你好")
        # A few streams at once: recognizers keep per-stream state (sherpa's VAD) in a pool that grows on demand;
        # and one per language, whose graph (if the bundle has one) is loaded on first use (~0.2 s each).
        silence = np.zeros(1600, np.int16)
        self._recognize_batch([(silence, None)] * WARM_STREAMS + [(silence, code) for code in LANGUAGES])
        if self.knowledge is not None:
            self.knowledge.search("多少钱", k=1)
        return new

    @property
    def call_config(self) -> CallConfig:
        return self.config.call

    def detector(self) -> VoiceDetector:
        """A new call's voice detector (the model comes from the shared pool)."""
        if self.vad is None:
            self.vad = SileroPool(self.call_config.vad_threshold)
        return VoiceDetector(self.vad, EnergyGate(self.call_config.energy_gate_dbfs))

    @property
    def _reply_pool(self) -> ThreadPoolExecutor | None:
        return self.reply_executor if self.reply_executor is not None and self.executor is not None else self.executor

    @property
    def offloaded(self) -> bool:
        """Model work runs on worker threads (a server), not inline (the simulator, tests)."""
        return self.executor is not None

    def _batcher(self, name: str, fn: Callable, max_batch: int | None = None, parallel: int = 1,
                 executor: ThreadPoolExecutor | None = None) -> MicroBatcher:
        """Requests of one event-loop iteration (inline) or made while batches run (offload) form the next
        batch; a hung model is cut off after call.model_timeout_s; no caller-side time limit."""
        if name not in self._batchers:
            self._batchers[name] = MicroBatcher(
                fn, max_batch=max_batch or self.config.asr.max_batch, max_wait_ms=0, item_timeout_s=None,
                batch_timeout_s=self.call_config.model_timeout_s, workers=parallel, name=name,
                executor=executor if executor is not None else self.executor, inline=self.executor is None)
        return self._batchers[name]

    async def recognize(self, pcm: np.ndarray, language: str | None = None) -> Heard:
        """Transcribe one utterance (batched with other calls' utterances; batches on every worker).

        Args:
            language: the caller's language where known ("cmn", "yue"), for the rescoring's sound table.
        """
        processes = getattr(self.recognizer, "processes", 0)  # RecognizerProcesses
        batch = 1 if processes else min(self.config.asr.max_batch, RECOGNIZE_BATCH)
        parallel = (PIPELINE * processes or self.config.call.workers) if self.executor is not None else 1
        return await self._batcher("asr", self._recognize_batch, batch, parallel).submit((pcm, language))

    @property
    def recognition_backlog(self) -> int:
        """Utterances waiting for a free recognizer (0 while every one queued is being decoded)."""
        batcher = self._batchers.get("asr")
        return batcher.queued if batcher is not None else 0

    async def classify(self, text: str):
        """Intents of one text (batched with other calls' texts)."""
        return await self._batcher("intent", self.classifier.predict, executor=self._reply_pool).submit(text)

    async def run(self, fn: Callable[[], R]) -> R:
        """Run blocking reply work (prosody, synthesis) on the reply threads (or inline)."""
        if self.executor is None:
            return fn()
        return await asyncio.get_running_loop().run_in_executor(self._reply_pool, fn)

    def sentences(self, text: str, cached: bool) -> Iterator:
        """Per-sentence audio chunks (a generator: each `next()` synthesizes one sentence)."""
        voice = self.synthesizer if cached or self.raw_synthesizer is None else self.raw_synthesizer
        return iter(voice.stream(text))

    def _recognize_batch(self, items: list[tuple[np.ndarray, str | None]]) -> list[Heard]:
        started = time.perf_counter()
        results = decode_segments(self.recognizer, [pcm for pcm, _ in items], [language for _, language in items])
        seconds = time.perf_counter() - started
        return [Heard(r.text, r.raw_text, seconds) for r in results]

    def close(self) -> None:
        if self.vad is not None:
            self.vad.close()
        close = getattr(self.recognizer, "close", None)  # RecognizerProcesses: end the workers
        if close is not None:
            close()
        for pool in (self.executor, self.reply_executor):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


def _open_recognizer(config: Config) -> Any:
    """The recognizer the config names: in worker processes on a server (call.asr_processes), else here."""
    call = config.call
    if call.offload and call.asr_processes > 0:
        from edge.asr.process import RecognizerProcesses

        # answer before the batcher's own cut-off (call.model_timeout_s) so no thread is abandoned
        return RecognizerProcesses(config.asr, call.asr_processes, timeout_s=0.8 * call.model_timeout_s)
    from edge import asr

    return asr.open(config.asr)
