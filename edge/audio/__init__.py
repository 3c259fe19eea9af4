"""Audio inside the runtime: 16 kHz mono int16 numpy arrays.

Telephony edges convert from/to 8 kHz slin16 or G.711; everything between
them (VAD, ASR, TTS) speaks :data:`SAMPLE_RATE` int16 mono.
"""

from edge.audio.convert import SAMPLE_RATE, float_to_pcm16, pcm16_to_float, resample, to_mono
from edge.audio.wav import read_wav, write_wav

__all__ = ["SAMPLE_RATE", "float_to_pcm16", "pcm16_to_float", "read_wav", "resample", "to_mono", "write_wav"]
