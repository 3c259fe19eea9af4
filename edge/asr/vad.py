"""The silero VAD model file: shipped in edge/models/default/vad/, or from the silero-vad wheel.

Kept for edge.asr's imports; the lookup lives in edge.audio.vad, beside the call loop's VAD.
"""

from edge.audio.vad import DEFAULT_VAD_DIR, silero_model_path

__all__ = ["DEFAULT_VAD_DIR", "silero_model_path"]
