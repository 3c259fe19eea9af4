"""`salesbot doctor` on a healthy install and on deliberately broken ones. Network: loopback only."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
from datetime import datetime, timezone, UTC
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge import cli, doctor
from edge.bundle import sha256_file
from edge.config import Config
from edge.doctor import clock, install, service
from edge.systemd import UNIT_NAME


def make_bundle(root: Path) -> Path:
    """A tiny intent bundle: files listed in the manifest with their sha256 (contents are not loaded)."""
    root.mkdir(parents=True)
    files = {"model.int8.onnx": b"not really onnx", "tokenizer.json": b"{}", "labels.json": b'["a", "b"]'}
    for name, data in files.items():
        (root / name).write_bytes(data)
    manifest = {"kind": "intent", "format_version": 1, "models": {"onnxruntime": "model.int8.onnx"},
                "files": {name: {"sha256": sha256_file(root / name), "size": len(data)}
                          for name, data in files.items()}}
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


class FakeAmi:
    """A loopback TCP server that greets like Asterisk's manager interface (or with `banner`)."""

    def __init__(self, banner: bytes = b"Asterisk Call Manager/9.0.0\r\n"):
        self.banner = banner
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for _ in range(4):  # bounded
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.banner)

    def close(self):
        self.sock.close()


@pytest.fixture
def box(tmp_path, monkeypatch):
    """A healthy install: bundle, writable data dir, AMI answering on loopback, a media listener, the unit."""
    bundle = make_bundle(tmp_path / "bundle")
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    ami = FakeAmi()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    units = tmp_path / "units"
    units.mkdir()
    (units / UNIT_NAME).write_text("[Service]\nExecStart=/opt/edge-salesbot/bin/salesbot serve\n")
    monkeypatch.setattr(service, "UNIT_DIRS", (units,))
    monkeypatch.setattr(service, "SYSTEMD_RUNNING", tmp_path / "no-systemd")
    config_file = tmp_path / "config.toml"
    speech = ""
    if "asr" in {f.name for f in dataclasses.fields(Config)}:  # with the speech models: a model directory
        (tmp_path / "asr").mkdir()
        speech = f'[asr]\nmodel = "{tmp_path / "asr"}"\n'
    config_file.write_text(f"""{speech}
[nlu]
intent_bundle = "{bundle}"
[data]
dir = "{data}"
[dialog]
timezone = "UTC"
[telephony]
ami = "tcp://127.0.0.1:{ami.port}"
audiosocket = "tcp://127.0.0.1:{listener.getsockname()[1]}"
""", encoding="utf-8")
    monkeypatch.setattr(clock, "_sync", lambda: doctor.Finding("time sync", "skip", "not in tests"))
    monkeypatch.setenv("TZ", "UTC")
    yield {"bundle": bundle, "data": data, "config": config_file, "ami": ami}
    ami.close()
    listener.close()


def run_doctor(config_file: Path):
    result = CliRunner().invoke(cli.cli, ["--config", str(config_file), "doctor", "--no-sound"])
    return result.exit_code, result.output


def by_name(findings, prefix):
    return [f for f in findings if f.name.startswith(prefix)]


def load(config_file: Path) -> Config:
    from edge import config

    return config.load(config_file)


def test_healthy_install(box):
    code, output = run_doctor(box["config"])
    assert code == 0, output
    assert "FAIL" not in output and "healthy:" in output
    assert "[ ok ] bundle intent" in output and "checksums match" in output
    assert "[ ok ] pbx ami 127.0.0.1" in output and "Asterisk Call Manager" in output
    assert "a server is listening" in output and "[ ok ] systemd unit" in output
    as_json = CliRunner().invoke(cli.cli, ["--config", str(box["config"]), "doctor", "--no-sound", "--json"])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert {"name", "status", "detail", "fix"} <= set(rows[0]) and all(r["status"] != "fail" for r in rows)


def test_missing_model_file(box):
    (box["bundle"] / "tokenizer.json").unlink()
    code, output = run_doctor(box["config"])
    assert code == 1
    assert "[FAIL] bundle intent" in output and "tokenizer.json listed in the manifest is missing" in output
    assert "fix: reinstall the package" in output and "something is wrong" in output


def test_corrupt_model_file(box):
    (box["bundle"] / "model.int8.onnx").write_bytes(b"tampered")
    findings = doctor.run(load(box["config"]), sound=False)
    (bundle,) = by_name(findings, "bundle intent")
    assert bundle.status == "fail" and "sha256 mismatch" in bundle.detail


def test_engine_without_a_model(box):
    config = load(box["config"])
    config.nlu.engine = "openvino"
    (bundle,) = by_name(doctor.run(config, sound=False), "bundle intent")
    assert bundle.status == "fail" and "no model for engine 'openvino'" in bundle.detail


def test_data_dir_wrong_permissions(box):
    box["data"].chmod(0o500)
    try:
        code, output = run_doctor(box["config"])
    finally:
        box["data"].chmod(0o755)
    assert code == 1
    assert "[FAIL] data directory" in output and "is not writable (dr-x------)" in output
    assert "chown -R edge-salesbot:" in output and "chmod u+rwX" in output


def test_read_only_call_records(box):
    records = box["data"] / "calls.db"
    records.write_bytes(b"")
    records.chmod(0o444)
    (found,) = by_name(doctor.run(load(box["config"]), sound=False), "call records")
    assert found.status == "fail" and "read-only" in found.detail and "chown" in found.fix


def test_data_dir_is_a_file(box, tmp_path):
    config = load(box["config"])
    config.data.dir = tmp_path / "config.toml"
    (found,) = by_name(doctor.run(config, sound=False), "data directory")
    assert found.status == "fail" and "not a directory" in found.detail


def test_pbx_unreachable_and_wrong_service(box):
    config = load(box["config"])
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    config.telephony.ami = f"tcp://127.0.0.1:{port}"
    (ami,) = by_name(doctor.run(config, sound=False), "pbx ami")
    assert ami.status == "fail" and "cannot connect" in ami.detail and "manager.conf" in ami.fix
    other = FakeAmi(b"SSH-2.0-OpenSSH\r\n")
    config.telephony.ami = f"tcp://127.0.0.1:{other.port}"
    try:
        (ami,) = by_name(doctor.run(config, sound=False), "pbx ami")
    finally:
        other.close()
    assert ami.status == "warn" and "not Asterisk's" in ami.detail


def test_audiosocket_port_free_means_service_not_running(box):
    config = load(box["config"])
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    config.telephony.audiosocket = f"tcp://127.0.0.1:{port}"
    (found,) = by_name(doctor.run(config, sound=False), "audiosocket")
    assert found.status == "warn" and "not running" in found.detail and "systemctl start" in found.fix


def test_unit_missing_is_a_warning(box, tmp_path, monkeypatch):
    monkeypatch.setattr(service, "UNIT_DIRS", (tmp_path / "none",))
    (unit,) = by_name(doctor.run(load(box["config"]), sound=False), "systemd unit")
    assert unit.status == "warn" and "salesbot systemd install" in unit.fix
    code, _ = run_doctor(box["config"])
    assert code == 0  # warnings alone do not fail the box


def test_clock_never_set():
    findings = clock.check(Config(), now=datetime(2001, 1, 1, tzinfo=UTC))
    assert findings[0].status == "fail" and "timedatectl set-time" in findings[0].fix


def test_time_zone_mismatch(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    findings = clock.check(Config())  # config zone Asia/Shanghai, system UTC
    zone = by_name(findings, "time zone")[0]
    assert zone.status == "warn" and "set-timezone Asia/Shanghai" in zone.fix


def test_missing_and_old_packages(monkeypatch):
    monkeypatch.setattr(install, "requirements", lambda: ["numpy>=99", "surely-not-installed-pkg>=1",
                                                          "click>=8; python_version < '3'"])
    findings = install.check(Config())
    numpy, missing = by_name(findings, "package numpy")[0], by_name(findings, "package surely")[0]
    assert numpy.status == "fail" and "needs >=99" in numpy.detail
    assert missing.status == "fail" and "not installed" in missing.detail and "pip install" in missing.fix
    assert not by_name(findings, "package click")  # its marker does not apply


def test_a_crashing_check_is_reported(monkeypatch):
    def boom(config):
        raise RuntimeError("bug")

    monkeypatch.setattr(doctor, "_checks", lambda sound: [("clock", boom)])
    (found,) = doctor.run(Config())
    assert found.status == "fail" and "crashed: RuntimeError: bug" in found.detail


def test_sound_check_without_portaudio(monkeypatch):
    import sys

    from edge.doctor import sound

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    config = Config()
    (found,) = sound.check(config)
    assert found.status == "skip" and "pip install 'edge-salesbot[kiosk]'" in found.detail
    config.kiosk.input = "USB"
    (found,) = sound.check(config)
    assert found.status == "fail"


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root-specific owner-bits rule")
def test_root_sees_owner_bits(tmp_path):
    from edge.doctor.storage import _writable

    directory = tmp_path / "d"
    directory.mkdir(mode=0o700)
    assert _writable(directory)
    directory.chmod(0o555)
    assert not _writable(directory)
