"""WAV files in and out: 16/24/32-bit PCM or float, any rate, mono or stereo.

Reading gives the runtime's convention (16 kHz mono int16); anything that is
not PCM audio is refused with a message that says what the file is and what
to do about it.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from edge.audio.convert import SAMPLE_RATE, float_to_pcm16, resample, to_mono
from edge.errors import AudioFormatError

_LOGGER = logging.getLogger(__name__)

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
_CONVERT_HINT = "convert it with: sox IN.wav -r 16000 -c 1 -b 16 OUT.wav"


def read_wav(path: str | Path, rate: int | None = SAMPLE_RATE) -> np.ndarray:
    """Read a WAV file as mono int16 at ``rate`` Hz (None: keep the file's rate).

    Stereo (or more channels) is averaged to mono; other rates are resampled.

    Raises:
        AudioFormatError: not a RIFF/WAVE file, truncated header, 8-bit or
            compressed samples, no audio data. The message names the file.
    """
    pcm, file_rate = read_wav_native(path)
    if rate is not None and file_rate != rate:
        _LOGGER.debug("%s: resampling %d Hz -> %d Hz", path, file_rate, rate)
        pcm = resample(pcm, file_rate, rate)
    return pcm


def read_wav_native(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file as (mono int16 samples, the file's sample rate)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioFormatError(f"audio file not found: {path}") from None
    except IsADirectoryError:
        raise AudioFormatError(f"{path} is a directory, not a WAV file") from None
    except OSError as exc:
        raise AudioFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) == 0:
        raise AudioFormatError(f"{path}: empty file (0 bytes); record or export the audio again")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file (no RIFF/WAVE header); {_CONVERT_HINT}")
    fmt, samples = _chunks(path, data)
    codec, channels, rate, bits = fmt
    if channels < 1 or rate < 1 or bits < 8:
        raise AudioFormatError(f"{path}: header says {channels} channels of {bits} bits at {rate} Hz; "
                               "the file is damaged")
    frame_bytes = channels * bits // 8
    if len(samples) < frame_bytes:
        raise AudioFormatError(f"{path}: no audio samples (zero length); record or export the audio again")
    usable = len(samples) - len(samples) % frame_bytes
    frames = _decode(path, samples[:usable], codec, bits).reshape(-1, channels)
    return to_mono(frames), rate


def _chunks(path: Path, data: bytes) -> tuple[tuple[int, int, int, int], bytes]:
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioFormatError(f"{path}: truncated WAV header (fmt chunk of {len(body)} bytes)")
            codec, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if codec == _EXTENSIBLE and len(body) >= 26:
                codec = struct.unpack_from("<H", body, 24)[0]
            fmt = (codec, channels, rate, bits)
        elif chunk_id == b"data":
            samples = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise AudioFormatError(f"{path}: truncated WAV header (no fmt chunk); {_CONVERT_HINT}")
    if samples is None:
        raise AudioFormatError(f"{path}: no data chunk (truncated file or zero length); record or export it again")
    return fmt, samples


def _decode(path: Path, raw: bytes, codec: int, bits: int) -> np.ndarray:
    if codec == _PCM and bits == 16:
        return np.frombuffer(raw, dtype="<i2").copy()
    if codec == _PCM and bits == 32:
        return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    if codec == _PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        return (b[:, 1].astype(np.uint16) | (b[:, 2].astype(np.uint16) << 8)).view(np.int16)
    if codec == _FLOAT and bits in (32, 64):
        return float_to_pcm16(np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8"))
    if codec == _PCM and bits == 8:
        raise AudioFormatError(f"{path}: 8-bit PCM is not supported (too coarse for speech recognition); "
                               f"{_CONVERT_HINT}")
    names = {6: "A-law", 7: "mu-law", 2: "ADPCM", 0x55: "MP3"}
    kind = names.get(codec, f"codec {codec}")
    raise AudioFormatError(f"{path}: {kind} {bits}-bit WAV is not supported, only 16/24/32-bit PCM or float; "
                           f"{_CONVERT_HINT}")


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write mono int16 samples as a 16-bit PCM WAV file."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise AudioFormatError(f"write_wav takes 1-D int16 samples, got {pcm.dtype} of shape {pcm.shape}")
    path = Path(path)
    raw = pcm.astype("<i2").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(raw), b"WAVE", b"fmt ", 16, _PCM, 1, rate,
                         rate * 2, 2, 16, b"data", len(raw))
    path.write_bytes(header + raw)
    return path


def write_wav_stereo(path: str | Path, left: np.ndarray, right: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Two int16 channels (the shorter padded with silence) as a 16-bit stereo WAV file."""
    left, right = np.asarray(left), np.asarray(right)
    for name, channel in (("left", left), ("right", right)):
        if channel.dtype != np.int16 or channel.ndim != 1:
            raise AudioFormatError(f"write_wav_stereo: {name} must be 1-D int16, got {channel.dtype} {channel.shape}")
    frames = max(len(left), len(right))
    both = np.zeros((frames, 2), dtype="<i2")
    both[:len(left), 0], both[:len(right), 1] = left, right
    path = Path(path)
    raw = both.tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(raw), b"WAVE", b"fmt ", 16, _PCM, 2, rate,
                         rate * 4, 4, 16, b"data", len(raw))
    path.write_bytes(header + raw)
    return path
