"""The kiosk through real PortAudio: a PulseAudio null sink whose monitor is the microphone.

PortAudio (ALSA host API) -> ALSA's pulse plugin -> a private PulseAudio server with a null sink at
16 kHz; the sink's monitor source is the input, so the kiosk hears everything it plays, like a
speaker beside a microphone. Needs the Debian packages libportaudio2, pulseaudio, pulseaudio-utils
and libasound2-plugins (.ci/run installs them); skips, visibly, without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sounddevice_ok() -> str | None:
    probe = subprocess.run([sys.executable, "-c", "import sounddevice"], capture_output=True, text=True, timeout=30)
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["?"])[-1]


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    """A private PulseAudio server with a 16 kHz mono null sink 'kiosk'; yields the client environment."""
    missing = [tool for tool in ("pulseaudio", "pactl", "pacat") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no virtual sound device: {', '.join(missing)} not installed "
                    "(apt-get install pulseaudio pulseaudio-utils libasound2-plugins libportaudio2)")
    if not any(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_pulse.so")):
        pytest.skip("ALSA's pulse plugin is missing (apt-get install libasound2-plugins)")
    problem = _sounddevice_ok()
    if problem:
        pytest.skip(f"sounddevice/PortAudio unusable here: {problem}")
    home = tmp_path_factory.mktemp("pulse")
    socket = home / "native"
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home), "PULSE_RUNTIME_PATH": str(home / "run"),
           "XDG_CONFIG_HOME": str(home / "config")}
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
         "--log-target=stderr", "-L", f"module-native-protocol-unix auth-anonymous=1 socket={socket}",
         "-L", "module-null-sink sink_name=kiosk rate=16000 channels=1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = {**env, "PULSE_SERVER": f"unix:{socket}", "PYTHONPATH": str(ROOT)}
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.skip(f"pulseaudio did not start: {server.stderr.read().decode(errors='replace')[-300:]}")
            ready = subprocess.run(["pactl", "info"], env=client, capture_output=True, text=True, timeout=5)
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.skip("pulseaudio did not answer within 10 s")
        yield client
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()


def test_devices_lists_the_virtual_device(pulse):
    out = subprocess.run([sys.executable, "-m", "edge.cli", "devices"], env=pulse, capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "pulse" in out.stdout and "in" in out.stdout


def test_kiosk_through_portaudio_never_hears_its_prompt(pulse):
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "kiosk_loopback.py"), "pulse"], env=pulse,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print("kiosk loopback through PortAudio:", result)
    assert result["blocks"] >= 140  # ~3 s of 20 ms blocks really ran on the device clock
    assert result["frames_out"] == 50  # the 1 s prompt went to the speaker
    assert result["raw_loud_frames"] >= 45, "the prompt must come back into the microphone (the sink's monitor)"
    assert result["heard_max_dbfs_during_prompt"] == float("-inf"), "the bot heard its own prompt"
    assert 50 <= result["frames_gated"] <= 50 + result["hold_ms"] // 20 + 10  # gated for the prompt + tail only
    assert result["end_detail"] == "handler_done"
