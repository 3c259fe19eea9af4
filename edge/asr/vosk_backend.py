"""vosk (Kaldi) model directories: partial and final results with word times, optional phrase list."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge.asr.base import check_pcm
from edge.asr.modeldir import ModelDir
from edge.asr.result import Result
from edge.audio.convert import SAMPLE_RATE
from edge.config import AsrConfig
from edge.errors import ConfigError, SpeechEngineError

_LOGGER = logging.getLogger(__name__)


class VoskRecognizer:
    """One shared vosk Model; a KaldiRecognizer per stream (vosk has no CPU batch API).

    Example:
        >>> rec = VoskRecognizer(inspect("models/vosk-model-small-cn-0.22"), AsrConfig())
    """

    def __init__(self, model: ModelDir, config: AsrConfig, rescore: Callable[[str], str] | None = None) -> None:
        try:
            import vosk
        except ImportError:
            raise SpeechEngineError("vosk models need the vosk package: pip install vosk") from None
        vosk.SetLogLevel(-1)
        self._vosk = vosk
        try:
            self._model = vosk.Model(str(model.root))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise SpeechEngineError(f"{model.root}: vosk could not load the model ({exc})") from None
        self._grammar = _phrases(config.phrases) if config.phrases else None
        self._rescore = rescore
        self.info = {"backend": "vosk", "kind": "vosk", "model": str(model.root), "streaming": True,
                     "phrases": str(config.phrases) if config.phrases else None}

    def stream(self) -> "_VoskStream":
        if self._grammar is None:
            rec = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        else:
            rec = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE, self._grammar)
        rec.SetWords(True)
        return _VoskStream(rec)

    def decode(self, streams: Sequence["_VoskStream"]) -> None:
        for stream in streams:
            stream._run(self._rescore)


def _phrases(path: Path) -> str:
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise ConfigError(f"asr.phrases file not found: {path}") from None
    return json.dumps(lines + ["[unk]"], ensure_ascii=False)


class _VoskStream:
    def __init__(self, rec) -> None:
        self._rec = rec
        self.language: str | None = None
        self._pending: list[np.ndarray] = []
        self._results: list[Result] = []
        self._finished = self._closed = False
        self._samples = 0
        self._segment_start = 0.0
        self._last_partial = ""

    def accept(self, pcm16: np.ndarray) -> None:
        if self._finished:
            raise RuntimeError("accept() after finish(); open a new stream for new audio")
        self._pending.append(check_pcm(pcm16))

    def finish(self) -> None:
        self._finished = True

    def results(self) -> list[Result]:
        out, self._results = self._results, []
        return out

    @property
    def done(self) -> bool:
        return self._closed

    def _run(self, rescore) -> None:
        for chunk in self._pending:
            self._samples += len(chunk)
            if self._rec.AcceptWaveform(chunk.astype("<i2").tobytes()):
                self._final(json.loads(self._rec.Result()), rescore)
            else:
                partial = json.loads(self._rec.PartialResult()).get("partial", "")
                if partial and partial != self._last_partial:
                    self._last_partial = partial
                    self._results.append(Result(text=partial, is_final=False, start_s=self._segment_start,
                                                end_s=round(self._samples / SAMPLE_RATE, 3)))
        self._pending = []
        if self._finished and not self._closed:
            self._final(json.loads(self._rec.FinalResult()), rescore)
            self._closed = True

    def _final(self, result: dict, rescore) -> None:
        raw = result.get("text", "").strip()
        words = result.get("result", [])
        end = self._samples / SAMPLE_RATE
        if raw:
            start = words[0]["start"] if words else self._segment_start
            end = words[-1]["end"] if words else end
            text = rescore(raw, self.language) if rescore else raw
            self._results.append(Result(text=text, is_final=True, start_s=round(start, 3), end_s=round(end, 3),
                                        tokens=tuple(w["word"] for w in words),
                                        timestamps=tuple(round(w["start"], 3) for w in words),
                                        raw_text=raw if rescore else None))
        self._segment_start = round(end, 3)
        self._last_partial = ""
