"""`salesbot say`, `salesbot hear` and `salesbot models add`."""

import json

import numpy as np
from click.testing import CliRunner

from edge.audio import read_wav
from edge.cli import cli


def test_say_writes_a_16k_wav(tmp_path):
    out = tmp_path / "hello.wav"
    result = CliRunner().invoke(cli, ["say", "您好，我是智销云的小王。", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}\t")
    pcm = read_wav(out)
    assert pcm.dtype == np.int16 and len(pcm) > 16000


def test_say_cantonese_and_bad_voice(tmp_path):
    result = CliRunner().invoke(cli, ["say", "听日再打畀你", "--voice", "yue", "--out", str(tmp_path / "y.wav")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["say", "你好", "--voice", "klingon", "--out", str(tmp_path / "k.wav")])
    assert result.exit_code == 1 and "unknown built-in voice 'klingon'" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["say", "。。", "--out", str(tmp_path / "e.wav")])
    assert result.exit_code == 1 and "nothing to say" in result.output
