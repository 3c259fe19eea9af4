"""sherpa-onnx offline models (the built-in CTC, paraformer, SenseVoice, NeMo CTC, transducer),
cut into turns by silero VAD, many calls decoded in one ``decode_streams``.

Each stream runs its own small VAD state; finished segments of all streams
(and partials of segments still being spoken) are decoded together.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge.asr import language as lang
from edge.asr.base import check_pcm
from edge.asr.modeldir import ModelDir
from edge.asr.result import Result
from edge.asr.vad import silero_model_path
from edge.audio.convert import SAMPLE_RATE, pcm16_to_float
from edge.config import AsrConfig

_LOGGER = logging.getLogger(__name__)
VAD_WINDOW = 512
"""Samples per silero VAD window at 16 kHz."""
PARTIAL_EVERY_S = 0.5
"""A partial is decoded each time an ongoing segment has grown by this much."""
PRE_ROLL_S = 0.5
"""Audio kept before a VAD segment's start: silero triggers after the onset, and a clipped first
syllable costs the recognizer a character (measured: ~3 CER points on short turns). 0.5 s rather than
0.25 took the built-in model's held-out tuning texts from 9.66% to 9.53% CER before rescoring (6.03% to
5.92% after); 0.75 and 1.0 s gave no more."""
POST_ROLL_S = 0.1
MIN_DECODE_SAMPLES = 1600
"""Shorter audio is padded with silence to this: the built-in model's convolutions refuse fewer than ~75 ms
(an ONNX Runtime error), which a batch used to hide by padding to its longest segment."""
GRAPH_MAX_ACTIVE = 200
"""Most hypotheses the search under a decoding graph keeps per frame (sherpa-onnx's default: 3000). The
built-in model's tuning CER is the same for 30 to 3000; 200 decodes Mandarin ~12% faster (decoder RTF 0.0077
against 0.0088, runs of session 15) and bounds the search on noisy audio. sherpa-onnx refuses 20 or fewer."""
HISTORY_S = 21.0
"""Audio a stream remembers (int16) to add the rolls; longer than the VAD's 20 s segment limit."""


def build(model: ModelDir, threads: int, graph: Path | None = None):
    """The sherpa-onnx OfflineRecognizer for a checked model directory.

    Args:
        graph: a decoding graph of the model's (``model.graphs``): search under it instead of greedily.
    """
    import sherpa_onnx

    f, common = model.files, {"tokens": str(model.files["tokens"]), "num_threads": threads}
    factory = sherpa_onnx.OfflineRecognizer
    if graph is not None and model.kind != "zipformer_ctc":
        raise ValueError(f"decoding graphs are read for zipformer_ctc models only, not {model.kind}")
    if model.kind == "zipformer_ctc":
        return factory.from_zipformer_ctc(model=str(f["model"]), ctc_graph=str(graph or ""),
                                           ctc_max_active=GRAPH_MAX_ACTIVE, **common)
    if model.kind == "nemo_ctc":
        return factory.from_nemo_ctc(model=str(f["model"]), **common)
    if model.kind == "paraformer":
        return factory.from_paraformer(paraformer=str(f["model"]), **common)
    if model.kind == "sense_voice":
        return factory.from_sense_voice(model=str(f["model"]), use_itn=True, **common)
    if model.kind == "transducer":
        return factory.from_transducer(encoder=str(f["encoder"]), decoder=str(f["decoder"]),
                                       joiner=str(f["joiner"]), **common)
    raise ValueError(f"not an offline model kind: {model.kind}")


@dataclass
class _Decoded:
    result: object
    """sherpa-onnx's result (text, tokens, timestamps)."""
    heard: str
    """The first search's text: greedy where the language was unknown, before any n-gram had a say."""

    @property
    def text(self) -> str:
        return self.result.text.strip()

    def raw_text(self, rescored: bool) -> str | None:
        """`Result.raw_text`: the text before rescoring, or before a guessed language's graph searched again."""
        return self.heard if rescored or self.heard != self.text else None


@dataclass
class _Job:
    stream: "_VadStream"
    samples: np.ndarray
    start: int
    final: bool


class OfflineVadRecognizer:
    """VAD-segmented offline recognition.

    Example:
        >>> rec = OfflineVadRecognizer(inspect("edge/models/default/asr"), AsrConfig())
        >>> s = rec.stream(); s.accept(pcm); s.finish()
        >>> while not s.done: rec.decode([s])
        >>> [r.text for r in s.results() if r.is_final]
    """

    def __init__(self, model: ModelDir, config: AsrConfig, rescore: Callable[[str], str] | None = None) -> None:
        import sherpa_onnx

        self._model, self._threads = model, config.threads
        self._recognizer = build(model, config.threads)
        self._graphs = dict(model.graphs) if config.language_graphs else {}
        self._by_language: dict[str, object] = {}  # language -> recognizer under its graph, built on first use
        self._build_lock = threading.Lock()
        self._rescore = rescore
        self._max_batch = config.max_batch
        vad = sherpa_onnx.VadModelConfig()
        vad.silero_vad.model = str(silero_model_path())
        vad.silero_vad.threshold = config.vad_threshold
        vad.silero_vad.min_silence_duration = config.endpoint_silence_ms / 1000
        vad.silero_vad.min_speech_duration = config.min_speech_ms / 1000
        vad.silero_vad.max_speech_duration = 20.0
        vad.silero_vad.window_size = VAD_WINDOW
        vad.sample_rate = SAMPLE_RATE
        vad.num_threads = 1
        self._vad_config = vad
        self._vad_pool: list = []  # a detector costs ~0.5 s to build (it loads silero), so they are reused
        self._pool_lock = threading.Lock()
        self.info = {"backend": "sherpa-onnx", "kind": model.kind, "model": str(model.root), "streaming": False,
                     "rescoring": rescore is not None, "language_graphs": sorted(self._graphs)}

    def stream(self) -> "_VadStream":
        return _VadStream(self._take_vad(), self._give_back_vad)

    def _take_vad(self):
        with self._pool_lock:
            if self._vad_pool:
                return self._vad_pool.pop()
        import sherpa_onnx

        return sherpa_onnx.VoiceActivityDetector(self._vad_config, buffer_size_in_seconds=30)

    def _give_back_vad(self, vad) -> None:
        vad.reset()
        with self._pool_lock:
            self._vad_pool.append(vad)

    @property
    def graphs_loaded(self) -> list[str]:
        """The languages whose graph is loaded (each on first use, or by a warm-up that names it)."""
        with self._build_lock:
            return sorted(self._by_language)

    def _recognizer_for(self, language: str | None):
        """The greedy recognizer, or the one searching under ``language``'s graph where the bundle has one."""
        graph = self._graphs.get(language) if language else None
        if graph is None:
            return self._recognizer
        with self._build_lock:
            if language not in self._by_language:
                self._by_language[language] = build(self._model, self._threads, graph)
            return self._by_language[language]

    def _search(self, audio: Sequence[np.ndarray], languages: Sequence[str | None]) -> list:
        """sherpa-onnx results, in order: float segments batched per recognizer (each language's graph)."""
        results: list = [None] * len(audio)
        groups: dict[int, tuple[object, list[int]]] = {}
        for index, language in enumerate(languages):
            recognizer = self._recognizer_for(language)
            groups.setdefault(id(recognizer), (recognizer, []))[1].append(index)
        for recognizer, rows in groups.values():
            streams = []
            for index in rows:
                s = recognizer.create_stream()
                samples = audio[index]
                if len(samples) < MIN_DECODE_SAMPLES:
                    samples = np.pad(samples, (0, MIN_DECODE_SAMPLES - len(samples)))
                s.accept_waveform(SAMPLE_RATE, samples)
                streams.append(s)
            for start in range(0, len(streams), self._max_batch):
                recognizer.decode_streams(streams[start:start + self._max_batch])
            for index, s in zip(rows, streams):
                results[index] = s.result
        return results

    def _decode_audio(self, audio: Sequence[np.ndarray], languages: Sequence[str | None]) -> list[_Decoded]:
        """Each segment decoded: greedily, or under its language's graph.

        A segment whose language is unknown (a call's first turns) is decoded greedily, and where its text
        shows a language that has a graph, searched again under that graph: on the built-in model's tuning
        texts, language guessed, 4.28% -> 4.01% CER (3.90% with the language given). Its greedy text stays
        what was heard: the call's language is judged on it (edge/asr/language.py), and a graph's n-gram would
        pull it toward the guess."""
        results = self._search(audio, languages)
        heard = [result.text.strip() for result in results]
        again = []
        if self._graphs:
            for index, language in enumerate(languages):
                guessed = self._guess(heard[index]) if language is None and heard[index] else None
                if guessed in self._graphs:
                    again.append((index, guessed))
        if again:
            searched = self._search([audio[index] for index, _ in again], [guessed for _, guessed in again])
            for (index, _), result in zip(again, searched):
                if result.text.strip():  # sherpa-onnx gives nothing where a search ends in no final state
                    results[index] = result
        return [_Decoded(result, text) for result, text in zip(results, heard)]

    def _guess(self, text: str) -> str:
        guess = getattr(self._rescore, "guess", None)  # the rescorer's also weighs its n-grams
        return guess(text) if guess else lang.guess(text)

    def decode(self, streams: Sequence["_VadStream"]) -> None:
        jobs = [job for stream in streams for job in stream._segments()]
        if not jobs:
            return
        decoded = self._decode_audio([job.samples for job in jobs], [job.stream.language for job in jobs])
        for job, one in zip(jobs, decoded):
            job.stream._deliver(job, one, self._rescore)

    def decode_segments(self, segments: Sequence[np.ndarray], languages: Sequence[str | None] | None = None
                        ) -> list[Result]:
        """Final results for segments already cut by the caller's own VAD (the call loop's endpointer),
        one per segment, in one batched ``decode_streams`` per recognizer: no second VAD pass (about half
        the time).

        Args:
            segments: 16 kHz mono int16 arrays, one utterance each.
            languages: each caller's language where known (see `Stream.language`): it picks the language's
                graph, if the bundle has one, and the rescoring's language.
        """
        languages = list(languages or [None] * len(segments))
        decoded = self._decode_audio([pcm16_to_float(check_pcm(pcm)) for pcm in segments], languages)
        out = []
        for pcm, one, language in zip(segments, decoded, languages):
            result, raw = one.result, one.text
            text = self._rescore(raw, language) if self._rescore and raw else raw
            out.append(Result(text=text, is_final=True, start_s=0.0, end_s=round(len(pcm) / SAMPLE_RATE, 3),
                              tokens=tuple(result.tokens), timestamps=tuple(round(t, 3) for t in result.timestamps),
                              raw_text=one.raw_text(self._rescore is not None)))
        return out


class _VadStream:
    def __init__(self, vad, release: Callable) -> None:
        self._vad = vad
        self._release = release
        self.language: str | None = None
        self._pending: list[np.ndarray] = []
        self._finished = False
        self._flushed = False
        self._results: list[Result] = []
        self._partial_len = 0
        self._history = np.zeros(0, np.float32)
        self._fed = 0  # samples given to the VAD so far; history ends there

    def accept(self, pcm16: np.ndarray) -> None:
        if self._finished:
            raise RuntimeError("accept() after finish(); open a new stream for new audio")
        self._pending.append(pcm16_to_float(check_pcm(pcm16)))

    def _remember(self, audio: np.ndarray) -> None:
        keep = int(HISTORY_S * SAMPLE_RATE)
        self._history = np.concatenate([self._history, audio])[-keep:]
        self._fed += len(audio)

    def _with_rolls(self, start: int, samples: np.ndarray, post: bool) -> tuple[np.ndarray, int]:
        """The segment with pre-roll (and post-roll) audio from the history; returns (audio, new start)."""
        history_start = self._fed - len(self._history)
        begin = max(history_start, start - int(PRE_ROLL_S * SAMPLE_RATE))
        end = start + len(samples)
        if post:
            end = min(self._fed, end + int(POST_ROLL_S * SAMPLE_RATE))
        if begin >= start and end <= start + len(samples):
            return samples, start
        before = self._history[begin - history_start:max(begin, start) - history_start]
        after = self._history[start + len(samples) - history_start:end - history_start] if post else ()
        return np.concatenate([before, samples, after]).astype(np.float32), begin

    def finish(self) -> None:
        self._finished = True

    def results(self) -> list[Result]:
        out, self._results = self._results, []
        return out

    @property
    def done(self) -> bool:
        return self._flushed and not self._pending

    def _segments(self) -> list[_Job]:
        if self._vad is None:
            return []
        # sherpa-onnx's VAD only segments correctly when fed one window at a time (measured: a
        # whole recording in one call merges or drops turns), so whole windows go in, the rest waits.
        audio = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        usable = len(audio) - len(audio) % VAD_WINDOW
        if self._finished:
            usable = len(audio)
        for start in range(0, usable, VAD_WINDOW):
            self._vad.accept_waveform(audio[start:start + VAD_WINDOW])
        self._remember(audio[:usable])
        self._pending = [audio[usable:]] if usable < len(audio) else []
        if self._finished and not self._flushed:
            self._vad.flush()
            self._flushed = True
        jobs = []
        while not self._vad.empty():
            segment = self._vad.front
            samples, start = self._with_rolls(segment.start, np.asarray(segment.samples, np.float32), post=True)
            jobs.append(_Job(self, samples, start, True))
            self._vad.pop()
            self._partial_len = 0
        if not self._flushed and self._vad.is_speech_detected():
            current = self._vad.current_segment
            if current is not None and len(current.samples) - self._partial_len >= PARTIAL_EVERY_S * SAMPLE_RATE:
                self._partial_len = len(current.samples)
                samples, start = self._with_rolls(current.start, np.asarray(current.samples, np.float32), False)
                jobs.append(_Job(self, samples, start, False))
        if self._flushed and self._vad is not None:
            vad, self._vad = self._vad, None
            self._release(vad)
        return jobs

    def _deliver(self, job: _Job, one: _Decoded, rescore: Callable[[str], str] | None) -> None:
        result, raw = one.result, one.text
        text = rescore(raw, self.language) if rescore and raw else raw
        if job.final and not text:
            return
        offset = job.start / SAMPLE_RATE
        self._results.append(Result(
            text=text, is_final=job.final, start_s=round(offset, 3),
            end_s=round(offset + len(job.samples) / SAMPLE_RATE, 3),
            tokens=tuple(result.tokens), timestamps=tuple(round(offset + t, 3) for t in result.timestamps),
            raw_text=one.raw_text(rescore is not None)))
