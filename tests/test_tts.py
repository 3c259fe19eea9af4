import threading
import time

import numpy as np
import pytest

from edge import tts
from edge.config import TtsConfig
from edge.errors import ConfigError, ModelDirError
from edge.tts.espeak import EspeakSettings, speak


def _voiced_seconds(pcm: np.ndarray) -> float:
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float32)
    return float((np.sqrt((frames ** 2).mean(axis=1)) > 300).sum()) / 100


@pytest.mark.parametrize("voice", ["cmn", "yue", "cmn+f3"])
def test_builtin_voices_speak_16k_int16(voice):
    synth = tts.open(TtsConfig(voice=voice, cache_dir=None))
    pcm = synth.synthesize("您好，我是智销云的小王。")
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert 1.0 < len(pcm) / 16000 < 6.0
    assert _voiced_seconds(pcm) > 0.8


def test_rate_and_pitch_change_the_sound():
    slow = speak("请问您现在方便吗", EspeakSettings(rate_wpm=100))
    fast = speak("请问您现在方便吗", EspeakSettings(rate_wpm=300))
    assert len(slow) > 1.5 * len(fast)
    low = speak("你好", EspeakSettings(pitch=10))
    high = speak("你好", EspeakSettings(pitch=90))
    assert not np.array_equal(low, high)


def test_speed_from_config_and_override():
    normal = tts.open(TtsConfig(cache_dir=None)).synthesize("请问您现在方便吗")
    quick = tts.open(TtsConfig(speed=1.6, cache_dir=None))
    assert len(quick.synthesize("请问您现在方便吗")) < 0.8 * len(normal)
    same = quick.synthesize("请问您现在方便吗", tts.SynthesisSettings(speed=1.0))
    assert abs(len(same) - len(normal)) < 0.03 * len(normal)  # espeak-ng's pitch flutter varies a few samples


def test_stream_yields_one_chunk_per_sentence():
    synth = tts.open(TtsConfig(cache_dir=None))
    chunks = list(synth.stream("您好！我是小王。请问您方便吗？"))
    assert [c.text for c in chunks] == ["您好！", "我是小王。", "请问您方便吗？"]
    assert all(c.rate == 16000 and c.seconds > 0.2 for c in chunks)
    assert chunks[0].audio_int16_bytes() == chunks[0].audio.astype("<i2").tobytes()


def test_split_sentences_breaks_long_ones_at_commas():
    long = "，".join(["我们的系统可以自动给线索打分"] * 5) + "。"
    pieces = tts.split_sentences(long)
    assert len(pieces) > 1 and all(len(p) <= 41 for p in pieces)
    assert "".join(pieces) == long
    assert tts.split_sentences("。。！ ") == []


def test_espeak_is_safe_across_threads():
    text = "我们已经有供应商了"
    slow, fast = EspeakSettings(voice="cmn", rate_wpm=100), EspeakSettings(voice="yue", rate_wpm=300)
    want = {slow: len(speak(text, slow)), fast: len(speak(text, fast))}
    results: list = []

    def work(settings):
        for _ in range(5):
            results.append(abs(len(speak(text, settings)) - want[settings]) < 0.03 * want[settings])

    threads = [threading.Thread(target=work, args=(s,)) for s in (slow, fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results and all(results)


def test_prompt_cache_renders_once(tmp_path):
    synth = tts.open(TtsConfig(cache_dir=tmp_path / "cache"))
    line = "好的，不打扰您了，祝您工作顺利，再见。"
    first = synth.synthesize(line)
    start = time.perf_counter()
    again = synth.synthesize(line)
    assert (time.perf_counter() - start) < 0.02
    assert np.array_equal(first, again)
    assert synth.prerender([line, "您好。"]) == 1
    chunks = list(synth.stream("您好。"))
    assert chunks[0].cached
    other = tts.open(TtsConfig(cache_dir=tmp_path / "cache", speed=1.3))
    assert not np.array_equal(other.synthesize(line), first)  # settings are part of the key


def test_damaged_cache_entry_is_rerendered(tmp_path):
    synth = tts.open(TtsConfig(cache_dir=tmp_path))
    pcm = synth.synthesize("您好")
    entries = list(tmp_path.rglob("*.wav"))
    for entry in entries:
        entry.write_bytes(b"junk")
    again = synth.synthesize("您好")
    assert abs(len(again) - len(pcm)) < 0.03 * len(pcm)
    assert all(entry.read_bytes()[:4] == b"RIFF" for entry in entries)


def test_unknown_voice_and_bad_piper_paths(tmp_path):
    with pytest.raises(ConfigError, match="unknown built-in voice 'klingon'.*cmn"):
        tts.open(TtsConfig(voice="klingon", cache_dir=None))
    # espeak-ng itself would speak an unknown variant with the plain voice, saying nothing
    with pytest.raises(ConfigError, match=r"unknown espeak-ng variant 'f33' in 'cmn\+f33': use m1-m8, f1-f5"):
        tts.open(TtsConfig(voice="cmn+f33", cache_dir=None))
    assert len(tts.open(TtsConfig(voice="yue+f3", cache_dir=None)).synthesize("你好")) > 1600
    with pytest.raises(ModelDirError, match="piper voice not found"):
        tts.open(TtsConfig(voice=str(tmp_path / "none.onnx"), cache_dir=None))
    model = tmp_path / "v.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ModelDirError, match=r"missing v\.onnx\.json"):
        tts.open(TtsConfig(voice=str(model), cache_dir=None))
    (tmp_path / "v.onnx.json").write_text('{"num_symbols": 3, "audio": {}}')
    with pytest.raises(ModelDirError, match="missing key.*num_speakers.*audio.sample_rate"):
        tts.open(TtsConfig(voice=str(model), cache_dir=None))
    (tmp_path / "v.onnx.json").write_text('{"num_symbols": 3, "num_speakers": 1, "phoneme_id_map": {}, '
                                          '"audio": {"sample_rate": 22050}, "phoneme_type": "pinyin"}')
    with pytest.raises(ModelDirError, match="needs a download"):
        tts.open(TtsConfig(voice=str(model), cache_dir=None))


@pytest.fixture(scope="session")
def tiny_piper_voice(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("piper.train.vits.models")
    from tests.helpers.piper_voice import build_tiny_voice

    return build_tiny_voice(tmp_path_factory.mktemp("piper"))


def test_piper_voice_by_path(tiny_piper_voice, tmp_path):
    synth = tts.open(TtsConfig(voice=str(tiny_piper_voice), cache_dir=tmp_path))
    chunks = list(synth.stream("您好。请问您方便吗？"))
    assert len(chunks) == 2
    for chunk in chunks:
        assert chunk.audio.dtype == np.int16 and chunk.rate == 16000 and len(chunk.audio) > 0
    assert synth.voice_id.startswith("piper:tiny.onnx:")
    slow = synth.synthesize("您好", tts.SynthesisSettings(speed=0.5))
    fast = synth.synthesize("您好", tts.SynthesisSettings(speed=2.0))
    assert len(slow) > len(fast)


def test_prompt_cache_keeps_recent_lines_in_memory_within_its_bound(tmp_path):
    from edge.tts.cache import PromptCache

    cache = PromptCache(tmp_path, memory_mb=0.1)  # ~3 s of audio
    lines = {f"k{i}": (np.arange(16000) % 200 + i).astype(np.int16) for i in range(3)}  # 31 KB each
    for key, pcm in lines.items():
        cache.put(key, pcm)
    first = cache.get("k0")
    for path in tmp_path.rglob("*.wav"):
        path.unlink()  # from now on only memory can answer
    again = cache.get("k0")
    assert again is first and np.array_equal(again, lines["k0"]) and not again.flags.writeable
    assert cache.get("k1") is None  # never read back, so never kept
    for i in range(3, 8):
        cache.put(f"k{i}", lines["k1"])
        cache.get(f"k{i}")
    assert cache.get("k0") is None and cache.recent.bytes <= 0.1 * 1024 * 1024  # the oldest went out


def test_answers_are_not_written_to_disk_but_recent_sentences_are_synthesized_once(tmp_path):
    synth = tts.open(TtsConfig(cache_dir=tmp_path / "cache"))
    raw = tts.uncached(synth)
    calls = []
    inner = raw.inner.inner
    raw.inner.inner = type("Counting", (), {"voice_id": inner.voice_id,
                                           "synthesize": lambda self, text, s=None: calls.append(text) or
                                           inner.synthesize(text, s)})()
    answer = "我们的软件每年九百八十元。可以对接企业微信。"
    first = [c.audio for c in raw.stream(answer)]
    again = [c.audio for c in raw.stream(answer)]
    assert len(first) == 2 and all(a is b for a, b in zip(first, again)) and len(calls) == 2
    assert not list((tmp_path / "cache").rglob("*.wav"))
