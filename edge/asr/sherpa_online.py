"""sherpa-onnx streaming models (online transducer, paraformer, zipformer2 CTC) with endpointing."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from edge.asr.base import check_pcm
from edge.asr.modeldir import ModelDir
from edge.asr.result import Result
from edge.audio.convert import SAMPLE_RATE, pcm16_to_float
from edge.config import AsrConfig


def build(model: ModelDir, config: AsrConfig):
    import sherpa_onnx

    f = model.files
    common = {"tokens": str(f["tokens"]), "num_threads": config.threads, "sample_rate": SAMPLE_RATE,
              "feature_dim": 80, "enable_endpoint_detection": True, "rule1_min_trailing_silence": 2.4,
              "rule2_min_trailing_silence": config.endpoint_silence_ms / 1000, "rule3_min_utterance_length": 20.0}
    factory = sherpa_onnx.OnlineRecognizer
    if model.kind == "online_transducer":
        return factory.from_transducer(encoder=str(f["encoder"]), decoder=str(f["decoder"]), joiner=str(f["joiner"]),
                                       **common)
    if model.kind == "online_paraformer":
        return factory.from_paraformer(encoder=str(f["encoder"]), decoder=str(f["decoder"]), **common)
    if model.kind == "online_zipformer2_ctc":
        return factory.from_zipformer2_ctc(model=str(f["model"]), **common)
    raise ValueError(f"not a streaming model kind: {model.kind}")


class OnlineRecognizer:
    """Streaming recognition: partials as audio arrives, a final at each endpoint."""

    def __init__(self, model: ModelDir, config: AsrConfig, rescore: Callable[[str], str] | None = None) -> None:
        self._recognizer = build(model, config)
        self._rescore = rescore
        self._max_batch = config.max_batch
        self.info = {"backend": "sherpa-onnx", "kind": model.kind, "model": str(model.root), "streaming": True,
                     "rescoring": rescore is not None}

    def stream(self) -> "_OnlineStream":
        return _OnlineStream(self._recognizer.create_stream())

    def decode(self, streams: Sequence["_OnlineStream"]) -> None:
        rec = self._recognizer
        for stream in streams:
            stream._feed()
        while True:
            ready = [s._stream for s in streams if rec.is_ready(s._stream)]
            if not ready:
                break
            for start in range(0, len(ready), self._max_batch):
                rec.decode_streams(ready[start:start + self._max_batch])
        for stream in streams:
            stream._collect(rec, self._rescore)


class _OnlineStream:
    def __init__(self, stream) -> None:
        self._stream = stream
        self.language: str | None = None
        self._pending: list[np.ndarray] = []
        self._results: list[Result] = []
        self._finished = self._closed = False
        self._samples = 0
        self._segment_start = 0
        self._last_partial = ""

    def accept(self, pcm16: np.ndarray) -> None:
        if self._finished:
            raise RuntimeError("accept() after finish(); open a new stream for new audio")
        self._pending.append(pcm16_to_float(check_pcm(pcm16)))

    def finish(self) -> None:
        self._finished = True

    def results(self) -> list[Result]:
        out, self._results = self._results, []
        return out

    @property
    def done(self) -> bool:
        return self._closed

    def _feed(self) -> None:
        for chunk in self._pending:
            self._stream.accept_waveform(SAMPLE_RATE, chunk)
            self._samples += len(chunk)
        self._pending = []
        if self._finished and not self._closed:
            self._stream.accept_waveform(SAMPLE_RATE, np.zeros(int(0.3 * SAMPLE_RATE), np.float32))
            self._stream.input_finished()

    def _collect(self, rec, rescore: Callable[[str], str] | None) -> None:
        result = rec.get_result_all(self._stream)
        raw = result.text.strip()
        start = self._segment_start / SAMPLE_RATE
        end = self._samples / SAMPLE_RATE
        endpoint = rec.is_endpoint(self._stream) or self._finished
        if raw and (endpoint or raw != self._last_partial):
            text = rescore(raw, self.language) if rescore else raw
            self._results.append(Result(
                text=text, is_final=endpoint, start_s=round(start, 3), end_s=round(end, 3),
                tokens=tuple(result.tokens), timestamps=tuple(round(start + t, 3) for t in result.timestamps),
                raw_text=raw if rescore else None))
            self._last_partial = raw
        if endpoint:
            rec.reset(self._stream)
            self._segment_start = self._samples
            self._last_partial = ""
            if self._finished:
                self._closed = True
