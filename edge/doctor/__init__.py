"""`salesbot doctor`: check an installation end to end and say how to fix what is wrong.

Each check module returns `Finding`s (ok / warn / fail / skip, a detail and a
fix). `run(config)` runs them all; a check that crashes becomes a failed
finding instead of hiding the others. Network checks only connect to the
addresses in the config, with a short timeout.

Example:
    >>> findings = run(config.load("/etc/edge-salesbot/config.toml"))
    >>> print(format_report(findings))
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge.config import Config
from edge.doctor.finding import Finding

__all__ = ["Finding", "format_report", "run"]

_LOGGER = logging.getLogger(__name__)


def _checks(sound: bool) -> list[tuple[str, Callable[[Config], list[Finding]]]]:
    from edge.doctor import clock, install, models, network, service, storage
    from edge.doctor import sound as sound_checks

    checks = [("install", install.check), ("models", models.check), ("storage", storage.check),
              ("network", network.check), ("service", service.check), ("clock", clock.check)]
    if sound:
        checks.insert(3, ("sound", sound_checks.check))
    return checks


def run(config: Config, *, sound: bool = True) -> list[Finding]:
    """Every check's findings, in a fixed order (install, models, storage, sound, network, service, clock)."""
    findings: list[Finding] = []
    for name, check in _checks(sound):
        try:
            findings.extend(check(config))
        except Exception as exc:  # a broken check must not hide the others
            _LOGGER.debug("doctor check %s crashed", name, exc_info=True)
            findings.append(Finding(name, "fail", f"the check itself crashed: {type(exc).__name__}: {exc}",
                                    "report this with `salesbot --debug doctor` output"))
    return findings


def format_report(findings: list[Finding]) -> str:
    marks = {"ok": " ok ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
    lines = []
    for f in findings:
        lines.append(f"[{marks[f.status]}] {f.name}: {f.detail}")
        if f.fix and f.status in ("warn", "fail"):
            lines.append(f"       fix: {f.fix}")
    counts = {s: sum(f.status == s for f in findings) for s in marks}
    verdict = "something is wrong" if counts["fail"] else "healthy"
    lines.append(f"{verdict}: {counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures, "
                 f"{counts['skip']} skipped")
    return "\n".join(lines)
