import pytest

from edge import config
from edge.errors import ConfigError


def test_defaults_point_at_builtin_bundle():
    cfg = config.load(None)
    assert cfg.nlu.engine == "onnxruntime"
    assert (cfg.nlu.intent_bundle / "manifest.json").is_file()


def test_toml_round_trip(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[nlu]\nengine = "openvino"\nthreads = 2\nintent_bundle = "/opt/b"\n')
    cfg = config.load(path)
    assert cfg.nlu.engine == "openvino" and cfg.nlu.threads == 2 and str(cfg.nlu.intent_bundle) == "/opt/b"
    assert config.Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("text, message", [
    ("[nlu]\nengin = 'x'\n", "unknown key nlu.engin"),
    ("[nlux]\n", r"unknown config section \[nlux\]"),
    ("[nlu]\nengine = 'tensorflow'\n", "nlu.engine must be one of"),
    ("[nlu]\nthreads = 0\n", "nlu.threads must be >= 1"),
    ("[nlu\n", "not valid TOML"),
])
def test_bad_config_names_key(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "none.toml")


def test_speech_sections(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[tts]\nvoice = "yue"\nspeed = 1.2\ncache_dir = ""\n[asr]\nmodel = "/opt/m"\nbackend = "vosk"\n')
    cfg = config.load(path)
    assert cfg.tts.voice == "yue" and cfg.tts.cache_dir is None and str(cfg.asr.model) == "/opt/m"
    assert config.Config.from_dict(cfg.to_dict()) == cfg
    assert config.Config().asr.model == config.DEFAULT_ASR_DIR


@pytest.mark.parametrize("text, message", [
    ("[tts]\nspeed = 9.0\n", "tts.speed must be in"),
    ("[tts]\npitch = 200\n", "tts.pitch must be in"),
    ("[asr]\nbackend = 'kaldi'\n", "asr.backend must be one of"),
    ("[asr]\nthreads = 0\n", "asr.threads must be >= 1"),
    ("[asr]\nvad_threshold = 1.5\n", "asr.vad_threshold"),
])
def test_bad_speech_config(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(path)
