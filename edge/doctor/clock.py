"""Clock and time zone: calling hours and "明天下午三点" are computed in [dialog] timezone from this clock."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone, UTC
from typing import Final
from zoneinfo import ZoneInfo

from edge.config import Config
from edge.doctor.finding import Finding

EARLIEST_SANE_YEAR: Final = 2025
"""A clock before this was never set (a box without a real-time clock battery or time source)."""


def check(config: Config, *, now: datetime | None = None) -> list[Finding]:
    now = now or datetime.now(UTC)
    zone = ZoneInfo(config.dialog.timezone)
    local = now.astimezone(zone)
    findings = []
    if now.year < EARLIEST_SANE_YEAR:
        findings.append(Finding("clock", "fail", f"the clock says {now:%Y-%m-%d %H:%M} UTC, which cannot be right",
                                "set it: sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS', and give the box a time "
                                "source (chrony pointed at the PBX or a local NTP server)"))
    else:
        findings.append(Finding("clock", "ok", f"{local:%Y-%m-%d %H:%M} in {config.dialog.timezone} "
                                f"(calling hours follow this zone)"))
    system = datetime.now().astimezone().tzinfo
    system_offset = now.astimezone(system).utcoffset()
    if system_offset != local.utcoffset():
        findings.append(Finding("time zone", "warn", f"the system zone ({now.astimezone(system):%Z}, UTC offset "
                                f"{system_offset}) differs from [dialog] timezone {config.dialog.timezone}; calls "
                                "use the config's zone, but logs and cron use the system's",
                                f"sudo timedatectl set-timezone {config.dialog.timezone}, or set [dialog] timezone "
                                "to where the callees are"))
    else:
        findings.append(Finding("time zone", "ok", f"system zone matches {config.dialog.timezone}"))
    findings.append(_sync())
    return findings


def _sync() -> Finding:
    if shutil.which("timedatectl") is None:
        return Finding("time sync", "skip", "timedatectl not available")
    try:
        run = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("time sync", "skip", f"timedatectl failed: {exc}")
    if run.returncode != 0:
        return Finding("time sync", "skip", "no systemd-timedated here (a container?)")
    if run.stdout.strip() != "yes":
        return Finding("time sync", "warn", "the clock is not synchronised",
                       "offline boxes drift: point chrony/systemd-timesyncd at the PBX or a local NTP server")
    return Finding("time sync", "ok", "synchronised")
