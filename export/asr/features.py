"""80-bin log-mel fbank exactly as sherpa-onnx computes it (kaldi-native-fbank).

sherpa-onnx's FeatureExtractor: dither 0, snip_edges false, high_freq -400,
low_freq 20, 25 ms / 10 ms frames, povey window, samples in [-1, 1].
Training on the same features is what lets sherpa-onnx run the exported model.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from edge.audio.convert import pcm16_to_float

NUM_BINS: Final = 80


def _options():
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.snip_edges = False
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = NUM_BINS
    opts.mel_opts.high_freq = -400
    return opts


def fbank(pcm: np.ndarray) -> np.ndarray:
    """int16 samples at 16 kHz -> float32 [frames, 80]."""
    import kaldi_native_fbank as knf

    extractor = knf.OnlineFbank(_options())
    extractor.accept_waveform(16000, pcm16_to_float(pcm))
    extractor.input_finished()
    n = extractor.num_frames_ready
    if n == 0:
        return np.zeros((0, NUM_BINS), np.float32)
    return np.stack([np.asarray(extractor.get_frame(i), np.float32) for i in range(n)])
