"""Shared fixtures. Nothing here touches the network."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "export" / "data" / "intents"


@pytest.fixture
def write_csv(tmp_path):
    def write(text: str | bytes, name: str = "data.csv") -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path
    return write


@pytest.fixture(scope="session")
def speech():
    """A Mandarin sentence from the built-in TTS, 16 kHz int16 (~3 s)."""
    from edge.tts.espeak import EspeakSettings, speak

    return speak("您好，我想问一下你们这个软件多少钱一年。", EspeakSettings(voice="cmn+f4", rate_wpm=168, pitch=54))


@pytest.fixture(scope="session")
def voice_cache(tmp_path_factory):
    """One prompt cache for every voice-call test (the script's lines are rendered once)."""
    return tmp_path_factory.mktemp("tts-cache")
