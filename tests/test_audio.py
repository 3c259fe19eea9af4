import struct
import wave

import numpy as np
import pytest

from edge.audio import SAMPLE_RATE, read_wav, resample, to_mono, write_wav
from edge.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from edge.errors import AudioFormatError, InputError


def _tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def _write(path, frames: np.ndarray, rate: int, channels: int = 1, width: int = 2):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(frames.tobytes())
    return path


def test_round_trip_16k(tmp_path):
    pcm = _tone(SAMPLE_RATE)
    path = write_wav(tmp_path / "a.wav", pcm)
    assert np.array_equal(read_wav(path), pcm)


def test_other_rate_is_resampled_properly(tmp_path):
    path = _write(tmp_path / "a.wav", _tone(8000, 1.0, 1000.0), 8000)
    pcm = read_wav(path)
    assert len(pcm) == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float32)))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz bins over one second
    image = spectrum[6500:7500].max()  # a linear interpolator leaves an image at 8000-1000 Hz
    assert image < spectrum.max() * 1e-3


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = _tone(SAMPLE_RATE), np.zeros(SAMPLE_RATE // 2, np.int16)
    path = _write(tmp_path / "s.wav", np.stack([left, right], axis=1), SAMPLE_RATE, channels=2)
    pcm = read_wav(path)
    assert pcm.shape == left.shape
    assert np.abs(pcm.astype(int) - left.astype(int) // 2).max() <= 1


def test_8_bit_is_refused(tmp_path):
    path = _write(tmp_path / "b.wav", np.full(800, 128, np.uint8), 8000, width=1)
    with pytest.raises(AudioFormatError, match="8-bit PCM is not supported.*sox"):
        read_wav(path)


def test_truncated_header_is_refused(tmp_path):
    path = tmp_path / "t.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")
    with pytest.raises(AudioFormatError, match="truncated WAV header"):
        read_wav(path)


@pytest.mark.parametrize("content", [b"", b"RIFF"])
def test_zero_length_is_refused(tmp_path, content):
    path = tmp_path / "z.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFormatError, match="empty file|not a WAV"):
        read_wav(path)


def test_header_without_samples_is_refused(tmp_path):
    path = _write(tmp_path / "e.wav", np.zeros(0, np.int16), SAMPLE_RATE)
    with pytest.raises(AudioFormatError, match="no audio samples"):
        read_wav(path)


def test_compressed_and_non_wav_are_refused(tmp_path):
    path = tmp_path / "mulaw.wav"
    body = bytes(100)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVEfmt "
                     + struct.pack("<IHHIIHH", 16, 7, 1, 8000, 8000, 1, 8) + b"data" + struct.pack("<I", 100) + body)
    with pytest.raises(AudioFormatError, match="mu-law 8-bit WAV is not supported"):
        read_wav(path)
    mp3 = tmp_path / "x.wav"
    mp3.write_bytes(b"ID3\x03" + bytes(100))
    with pytest.raises(InputError, match="not a WAV file"):
        read_wav(mp3)
    with pytest.raises(AudioFormatError, match="not found"):
        read_wav(tmp_path / "missing.wav")


def test_24_and_32_bit(tmp_path):
    pcm = _tone(SAMPLE_RATE)
    as32 = (pcm.astype(np.int32) << 16)
    assert np.array_equal(read_wav(_write(tmp_path / "32.wav", as32, SAMPLE_RATE, width=4)), pcm)
    as24 = np.frombuffer(as32.astype("<i4").tobytes(), np.uint8).reshape(-1, 4)[:, 1:].copy()
    assert np.array_equal(read_wav(_write(tmp_path / "24.wav", as24, SAMPLE_RATE, width=3)), pcm)


def test_resample_keeps_dtype_and_length():
    pcm = _tone(22050, 1.0)
    out = resample(pcm, 22050, 16000)
    assert out.dtype == np.int16 and abs(len(out) - 16000) <= 1
    assert resample(np.zeros(0, np.int16), 8000).size == 0
    with pytest.raises(AudioFormatError):
        resample(pcm, 0, 16000)


def test_to_mono_rejects_3d():
    with pytest.raises(AudioFormatError):
        to_mono(np.zeros((2, 2, 2), np.int16))


def test_g711_matches_the_standard_tables():
    x = np.arange(-32768, 32768, 7).astype(np.int16)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        y = decode(encode(x)).astype(np.int32)
        big = np.abs(x) > 256
        assert np.all(np.abs(y[big] - x[big]) <= np.abs(x[big]) * 0.07)
    zero = np.array([0], dtype=np.int16)
    assert ulaw_encode(zero)[0] == 0xFF and alaw_encode(zero)[0] == 0xD5
    assert ulaw_decode(bytes([0x80]))[0] == 32124 and alaw_decode(bytes([0xAA]))[0] == 32256
