"""Build a tiny random-weight piper voice (~1-2 MB) the way piper exports real ones.

Needs torch and piper-tts's training code; the test that uses it skips when
they are missing. The voice says nothing intelligible: it checks the loader,
the config checks, resampling and the interface, not the sound.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path


def build_tiny_voice(out_dir: Path, sample_rate: int = 22050) -> Path:
    import torch
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP
    from piper.train.vits.models import SynthesizerTrn

    torch.manual_seed(1234)
    num_symbols = max(i for ids in DEFAULT_PHONEME_ID_MAP.values() for i in ids) + 1
    model = SynthesizerTrn(
        n_vocab=num_symbols, spec_channels=513, segment_size=32, inter_channels=16, hidden_channels=16,
        filter_channels=32, n_heads=2, n_layers=1, kernel_size=3, p_dropout=0.0, resblock="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), upsample_rates=(8, 8, 4),
        upsample_initial_channel=32, upsample_kernel_sizes=(16, 16, 8), n_speakers=1, gin_channels=0,
        use_sdp=False)
    model.eval()
    with torch.no_grad():
        model.dec.remove_weight_norm()

    def infer_forward(text, text_lengths, scales, sid=None):
        return model.infer(text, text_lengths, noise_scale=scales[0], length_scale=scales[1],
                           noise_scale_w=scales[2], sid=sid)[0].unsqueeze(1)

    model.forward = infer_forward
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "tiny.onnx"
    ids = torch.randint(0, num_symbols, (1, 20), dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about piper's training code
        torch.onnx.export(model, (ids, torch.LongTensor([20]), torch.FloatTensor([0.667, 1.0, 0.8])),
                          str(onnx_path), opset_version=15, input_names=["input", "input_lengths", "scales"],
                          output_names=["output"], dynamo=False,
                          dynamic_axes={"input": {0: "batch_size", 1: "phonemes"},
                                        "input_lengths": {0: "batch_size"}, "output": {0: "batch_size", 2: "time"}})
    config = {"audio": {"sample_rate": sample_rate}, "espeak": {"voice": "cmn"}, "phoneme_type": "espeak",
              "num_symbols": num_symbols, "num_speakers": 1, "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
              "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}}
    Path(f"{onnx_path}.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return onnx_path
