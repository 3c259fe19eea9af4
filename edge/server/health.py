"""Readiness: can this box take a call right now? Data directory writable, disk space, records, not stopping.

A call that cannot be recorded should not be taken: when the data directory
is read-only or its disk is (nearly) full, new calls are refused politely
(AudioSocket hangup so the dialplan routes them on, WebSocket 503) and
`/health` says which check failed and what to do. The checks touch the disk,
so they run off the event loop every `interval_s` (and on each /health
request); admitting a call only reads the last result.

Example:
    >>> monitor = HealthMonitor(Path("/var/lib/edge-salesbot"), min_free_mb=200, ledger=ledger)
    >>> report = await monitor.refresh()
    >>> report.ready, [c.name for c in report.checks if not c.ok]
    (False, ['data_dir', 'records'])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from edge.calls.ledger import CallLedger

__all__ = ["Check", "HealthMonitor", "HealthReport"]

_LOGGER = logging.getLogger(__name__)

PROBE_TIMEOUT_S: Final = 5.0
"""A disk probe that takes longer (a hung mount) counts as a failed check."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    """What was found and, when not ok, what to do."""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    status: str
    """"ok" (taking calls), "refusing" (a check failed) or "stopping" (shutting down)."""
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return self.status == "ok"

    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def summary(self) -> str:
        """One line: why calls are refused (or "ok")."""
        failed = self.failed()
        if self.status == "stopping":
            return "the daemon is shutting down"
        return "; ".join(check.detail for check in failed) if failed else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "ready": self.ready, "summary": self.summary(),
                "checks": {check.name: {k: v for k, v in asdict(check).items() if k != "name"}
                           for check in self.checks}}


def probe_data_dir(path: Path) -> Check:
    """Create the directory if needed, then write, fsync and delete a small file in it."""
    probe = path / f".health-probe-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        return Check("data_dir", False, f"data directory {path} is not writable ({exc.strerror or exc}); calls "
                     "are refused until it is: fix its permissions, remount it read-write or free space",
                     {"path": str(path), "errno": exc.errno})
    return Check("data_dir", True, f"{path} is writable", {"path": str(path)})


def probe_disk(path: Path, min_free_mb: int) -> Check:
    """Free space on the data directory's file system (its nearest existing ancestor)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        usage = shutil.disk_usage(target)
    except OSError as exc:
        return Check("disk", False, f"cannot read free space of {target}: {exc.strerror or exc}", {"path": str(target)})
    free_mb = usage.free // (1024 * 1024)
    data = {"path": str(target), "free_mb": int(free_mb), "min_free_mb": min_free_mb,
            "used_pct": round(100 * usage.used / usage.total, 1) if usage.total else None}
    if free_mb < min_free_mb:
        return Check("disk", False, f"only {free_mb} MB free on the disk of {target} (server.min_free_mb = "
                     f"{min_free_mb}); calls are refused until space is freed (old recordings, logs)", data)
    return Check("disk", True, f"{free_mb} MB free", data)


class HealthMonitor:
    """Runs the checks every `interval_s` and answers `refusal()` for each new call from the last result.

    Args:
        data_dir: where the box keeps its state.
        min_free_mb: free disk space needed to take calls.
        ledger: the call ledger (its write errors fail the records check; reopened when the disk recovers).
        stopping: True once the daemon is shutting down.
        interval_s: seconds between background checks.
    """

    def __init__(self, data_dir: Path, min_free_mb: int, ledger: CallLedger | None = None,
                 stopping: Callable[[], bool] = lambda: False, interval_s: float = 2.0) -> None:
        self.data_dir = data_dir
        self.min_free_mb = min_free_mb
        self.ledger = ledger
        self.stopping = stopping
        self.interval_s = interval_s
        self.report = HealthReport("refusing", [Check("startup", False, "health not checked yet")])
        self._task: asyncio.Task[None] | None = None
        self._last_status = ""

    async def refresh(self) -> HealthReport:
        """Run every check now and keep the result."""
        loop = asyncio.get_running_loop()
        checks = []
        for name, probe in (("data_dir", lambda: probe_data_dir(self.data_dir)),
                            ("disk", lambda: probe_disk(self.data_dir, self.min_free_mb))):
            try:
                checks.append(await asyncio.wait_for(loop.run_in_executor(None, probe), PROBE_TIMEOUT_S))
            except TimeoutError:
                checks.append(Check(name, False, f"checking {self.data_dir} took over {PROBE_TIMEOUT_S:g} s "
                                    "(a hung mount?); calls are refused until it answers"))
        checks.append(await self._records(writable=checks[0].ok))
        status = "stopping" if self.stopping() else ("ok" if all(c.ok for c in checks) else "refusing")
        self.report = HealthReport(status, checks)
        if status != self._last_status:
            log = _LOGGER.info if status != "refusing" else _LOGGER.error
            log("health: %s: %s", status, self.report.summary(), extra={"event": "health", "status": status})
            self._last_status = status
        return self.report

    async def _records(self, writable: bool) -> Check:
        ledger = self.ledger
        if ledger is None:
            return Check("records", True, "no call ledger configured")
        if not ledger.available and writable and not self.stopping():
            try:
                await ledger.open()
                _LOGGER.info("call ledger %s opened", ledger.path, extra={"event": "ledger_open"})
            except Exception as exc:  # reported below; retried next time
                _LOGGER.debug("call ledger still cannot open: %s", exc)
        if ledger.available and ledger.error and writable and not self.stopping():
            await ledger.probe()  # a failed write (disk was full) clears once a write succeeds again
        data = {"path": str(ledger.path), "writes": ledger.writes, "failures": ledger.failures}
        if not ledger.available or ledger.error:
            return Check("records", False, ledger.error or f"call ledger {ledger.path} is not open", data)
        return Check("records", True, f"{ledger.path} ok", data)

    def refusal(self) -> tuple[str, str] | None:
        """None when a new call may be taken, else (reason, message) from the last checks."""
        if self.stopping():
            return "stopping", "the daemon is shutting down"
        if self.ledger is not None and self.ledger.error:
            return "unhealthy", self.ledger.error
        if not self.report.ready:
            return "unhealthy", self.report.summary()
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.refresh()
            except Exception:  # keep checking; a bug here must not stop health reporting
                _LOGGER.exception("health check failed")
