"""The systemd unit: install command, `systemd-analyze verify`, and its security exposure."""

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from edge import systemd as unit
from edge.cli import cli
from edge.errors import ConfigError

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed "
                                   "(Debian: apt-get install -y systemd); unit not verified")


@pytest.fixture
def prefix(tmp_path):
    """A stand-in virtual environment with an executable bin/salesbot."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "salesbot"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return venv


def test_render_points_execstart_at_the_prefix(prefix):
    text = unit.render_unit(prefix)
    assert f"ExecStart={prefix}/bin/salesbot serve --config ${{CONFIGURATION_DIRECTORY}}/config.toml" in text
    for line in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
                 "Restart=on-failure", "MemoryMax=", "StateDirectory=edge-salesbot", "Type=notify\n",
                 "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text
    with pytest.raises(ConfigError, match="absolute"):
        unit.render_unit("relative/venv")


def test_install_writes_unit_and_keeps_an_existing_config(prefix, tmp_path):
    root = tmp_path / "root"
    result = unit.install(prefix, root)
    assert result.unit_path == root / "etc/systemd/system/edge-salesbot.service" and result.config_written
    assert str(prefix) in result.unit_path.read_text()
    result.config_path.write_text("[nlu]\nthreads = 1\n")
    again = unit.install(prefix, root)
    assert not again.config_written and again.config_path.read_text() == "[nlu]\nthreads = 1\n"
    with pytest.raises(ConfigError, match="missing or not executable"):
        unit.install(tmp_path / "nowhere", root)


def test_cli_install_and_print(prefix, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["systemd", "install", "--prefix", str(prefix), "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "systemctl daemon-reload && systemctl enable --now edge-salesbot" in result.output
    result = runner.invoke(cli, ["systemd", "install", "--prefix", str(prefix), "--print"])
    assert result.exit_code == 0 and f"ExecStart={prefix}/bin/salesbot serve" in result.output
    result = runner.invoke(cli, ["systemd", "install", "--prefix", str(tmp_path / "x"), "--root", str(tmp_path)])
    assert result.exit_code == 1 and "Error: " in result.output and "Traceback" not in result.output


@needs_analyze
def test_systemd_analyze_verify_passes(prefix, tmp_path):
    path = unit.install(prefix, tmp_path).unit_path
    proc = subprocess.run([ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "edge-salesbot" in line]
    assert proc.returncode == 0 and not ours, proc.stdout + proc.stderr


@needs_analyze
def test_security_exposure_is_at_most_2(prefix, tmp_path):
    path = unit.install(prefix, tmp_path).unit_path
    proc = subprocess.run([ANALYZE, "security", "--offline=yes", str(path)], capture_output=True, text=True,
                          timeout=60)
    match = re.search(r"Overall exposure level for edge-salesbot\.service: ([0-9.]+)", proc.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot score offline units: {proc.stderr.strip()[:200]}")
    exposure = float(match.group(1))
    print(f"systemd-analyze security --offline=yes: exposure {exposure}")
    assert exposure <= 2.0, proc.stdout

