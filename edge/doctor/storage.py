"""The data directory (SQLite records, caches): exists or can be made, writable by the service, disk space."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Final

from edge.config import Config
from edge.doctor.finding import Finding

MIN_FREE_BYTES: Final = 200 * 2**20
"""Below this the records may fail to write: a failure."""
LOW_FREE_BYTES: Final = 1 * 2**30
"""Below this, a warning (a day of 100 calls writes tens of MB of records; recordings far more)."""


def check(config: Config) -> list[Finding]:
    directory = config.data.resolved()
    findings = [_directory(directory)]
    records = config.records.path(directory)
    if records.exists():
        findings.append(_writable_file(records))
    findings.append(_space(directory))
    return findings


def _writable(path: Path) -> bool:
    """Writable by whoever runs the service: for root (which bypasses permissions) the owner's bits must allow
    it, since the systemd unit runs as an unprivileged user."""
    mode = path.stat().st_mode
    if os.geteuid() == 0:
        bits = stat.S_IWUSR | (stat.S_IXUSR if path.is_dir() else 0)
        return mode & bits == bits
    return os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0))


def _fix_permissions(path: Path) -> str:
    kind = "directory" if path.is_dir() else "file"
    return (f"make the {kind} writable by the service user: sudo chown -R edge-salesbot: {path} && "
            f"sudo chmod u+rwX {path} (or point SALESBOT_DATA_DIR / [data] dir at a writable place)")


def _directory(directory: Path) -> Finding:
    name = "data directory"
    if directory.exists() and not directory.is_dir():
        return Finding(name, "fail", f"{directory} exists but is not a directory",
                       "move the file away or set [data] dir to another path")
    if not directory.exists():
        parent = next((p for p in directory.parents if p.exists()), Path("/"))
        if _writable(parent):
            return Finding(name, "ok", f"{directory} does not exist yet; it will be created (in {parent})")
        return Finding(name, "fail", f"{directory} does not exist and {parent} is not writable",
                       f"sudo mkdir -p {directory} && sudo chown edge-salesbot: {directory}, or set [data] dir")
    if not _writable(directory):
        mode = stat.filemode(directory.stat().st_mode)
        return Finding(name, "fail", f"{directory} is not writable ({mode})", _fix_permissions(directory))
    return Finding(name, "ok", f"{directory} ({stat.filemode(directory.stat().st_mode)})")


def _writable_file(path: Path) -> Finding:
    if not _writable(path) or not _writable(path.parent):
        return Finding("call records", "fail", f"{path} is read-only ({stat.filemode(path.stat().st_mode)})",
                       _fix_permissions(path))
    return Finding("call records", "ok", f"{path} ({path.stat().st_size // 1024} KiB)")


def _space(directory: Path) -> Finding:
    existing = next((p for p in (directory, *directory.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    text = f"{free / 2**30:.1f} GiB free on the disk holding {existing}"
    if free < MIN_FREE_BYTES:
        return Finding("disk space", "fail", text, "free disk space: salesbot retention purge, or remove old logs")
    if free < LOW_FREE_BYTES:
        return Finding("disk space", "warn", text, "free some disk space before the records fill it")
    return Finding("disk space", "ok", text)
