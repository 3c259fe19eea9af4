"""The systemd unit: installed, enabled, running (where systemd is the init system)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

from edge.config import Config
from edge.doctor.finding import Finding
from edge.systemd import UNIT_NAME

UNIT_DIRS: Final = (Path("/etc/systemd/system"), Path("/lib/systemd/system"), Path("/usr/lib/systemd/system"))
SYSTEMD_RUNNING: Final = Path("/run/systemd/system")
"""Exists only when systemd is PID 1 (sd_booted)."""


def check(config: Config) -> list[Finding]:
    unit = next((d / UNIT_NAME for d in UNIT_DIRS if (d / UNIT_NAME).is_file()), None)
    if unit is None:
        return [Finding("systemd unit", "warn", f"{UNIT_NAME} is not installed",
                        "sudo salesbot systemd install && sudo systemctl daemon-reload && "
                        "sudo systemctl enable --now edge-salesbot (or run `salesbot` by hand)")]
    findings = [Finding("systemd unit", "ok", str(unit))]
    if not SYSTEMD_RUNNING.is_dir() or shutil.which("systemctl") is None:
        findings.append(Finding("systemd service", "skip", "systemd is not the init system here (a container?)"))
        return findings
    states = {}
    for verb in ("is-enabled", "is-active"):
        try:
            run = subprocess.run(["systemctl", verb, UNIT_NAME], capture_output=True, text=True, timeout=5)
            states[verb] = run.stdout.strip() or run.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            states[verb] = f"unknown ({exc})"
    detail = f"enabled: {states['is-enabled']}, active: {states['is-active']}"
    if states["is-active"] == "failed":
        return [*findings, Finding("systemd service", "fail", detail,
                                   "see why: journalctl -u edge-salesbot -n 50; fix it, then "
                                   "sudo systemctl restart edge-salesbot")]
    if states["is-active"] != "active" or states["is-enabled"] != "enabled":
        return [*findings, Finding("systemd service", "warn", detail, "sudo systemctl enable --now edge-salesbot")]
    return [*findings, Finding("systemd service", "ok", detail)]
