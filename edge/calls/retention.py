"""The retention purge: after the retention period, a call's personal data goes
(what was said, slot values such as WeChat IDs and emails, the recording,
task contacts, and, once a lead is finished with, its name, company, number
and variables), while what the ROI report counts stays: dispositions,
durations, outcomes, grades, intents, objections, timings.

Kept on purpose: the do-not-call list (it must keep working) and the audit
trail (it stores numbers masked).

Example:
    >>> report = purge(db, now=datetime.now(UTC), days=180, recordings_dir=data_dir / "recordings")
    >>> report.calls, report.recordings
    (412, 12)
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlite_utils import Database

from edge.errors import InputError
from edge.telephony.privacy import mask_phone

_LOGGER = logging.getLogger(__name__)

KEPT_REPORT_KEYS: Final = ("format", "call_id", "script", "started_at", "ended_at", "outcome", "grade", "dnc",
                           "transferred", "decision_maker", "objections", "campaign", "attempt")
FINISHED: Final = ("done", "exhausted", "dnc", "failed")


@dataclass
class PurgeReport:
    cutoff: str
    calls: int = 0
    leads: int = 0
    recordings: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def purge(db: Database, *, now: datetime, days: int, recordings_dir: Path | None = None,
          dry_run: bool = False) -> PurgeReport:
    """Strip personal data from calls that started more than `days` days before `now`.

    Raises:
        InputError: days < 1 or `now` without a time zone.
    """
    if days < 1:
        raise InputError(f"the retention period must be at least 1 day, got {days}")
    if now.tzinfo is None:
        raise InputError("purge needs an aware `now` (with a time zone)")
    cutoff = now - timedelta(days=days)
    report = PurgeReport(cutoff.isoformat(timespec="seconds"), dry_run=dry_run)
    stamp = now.astimezone(UTC).isoformat(timespec="seconds")
    old = [row for row in db.query("select id, started_at, recording, detail from calls where purged_at is null")
           if _before(row["started_at"], cutoff)]
    report.calls = len(old)
    leads = _finished_leads(db, cutoff)
    report.leads = len(leads)
    report.recordings = sum(1 for row in old if row["recording"])
    if dry_run:
        return report
    with db.atomic():
        for row in old:
            _purge_call(db, row, stamp)
        for lead_id, phone in leads:
            db["leads"].update(lead_id, {"name": "", "company": "", "phone": mask_phone(phone) if phone else "",
                                         "e164": None, "vars": "{}", "purged_at": stamp})
    for row in old:  # files last: a failed transaction leaves them in place
        _delete_recording(row["recording"], recordings_dir)
    _LOGGER.info("retention purge: %d calls, %d leads, %d recordings older than %s", report.calls, report.leads,
                 report.recordings, report.cutoff)
    return report


def _before(started_at: str | None, cutoff: datetime) -> bool:
    if not started_at:
        return False
    try:
        when = datetime.fromisoformat(started_at)
    except ValueError:
        return False
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) < cutoff


def _purge_call(db: Database, row: dict[str, Any], stamp: str) -> None:
    call_id = row["id"]
    db.execute("update turns set caller = '', bot = '', mentions = '[]', changed = '[]', state = '{}', "
               "answers = '[]' where call_id = ?", [call_id])
    kept = db.execute("select report from outcomes where call_id = ?", [call_id]).fetchone()
    if kept is not None:
        report = json.loads(kept[0])
        slim = {k: report[k] for k in KEPT_REPORT_KEYS if k in report}
        slim["tasks"] = [{k: t.get(k) for k in ("kind", "due", "channel")} for t in report.get("tasks", [])]
        slim["purged"] = True
        db.execute("update outcomes set slots = '{}', report = ? where call_id = ?",
                   [json.dumps(slim, ensure_ascii=False), call_id])
    db.execute("update tasks set contact = null where call_id = ?", [call_id])
    detail = json.loads(row["detail"] or "{}")
    detail = {k: v for k, v in detail.items() if k in ("caller", "verdict", "ami_outcome", "reason_code")}
    if "verdict" in detail:
        detail["verdict"] = {"kind": detail["verdict"].get("kind"), "confidence": detail["verdict"].get("confidence")}
    db["calls"].update(call_id, {"recording": None, "detail": json.dumps(detail, ensure_ascii=False),
                                 "purged_at": stamp})


def _finished_leads(db: Database, cutoff: datetime) -> list[tuple[int, str]]:
    """Leads whose every call is past the cutoff and who will not be dialled again
    (finished campaign leads, and the one-off leads of `salesbot call`)."""
    out = []
    marks = ",".join("?" for _ in FINISHED)
    for row in db.query(f"select id, coalesce(e164, phone) as phone, updated_at, created_at from leads "
                        f"where purged_at is null and (status in ({marks}) or status is null)", list(FINISHED)):
        if not _before(row["updated_at"] or row["created_at"], cutoff):
            continue
        recent = [r for r in db.execute("select started_at from calls where lead_id = ?", [row["id"]])
                  if not _before(r[0], cutoff)]
        if not recent:
            out.append((row["id"], row["phone"]))
    return out


def _delete_recording(path: str | None, root: Path | None) -> None:
    if not path:
        return
    file = Path(path)
    if root is not None and not file.resolve().is_relative_to(root.resolve()):
        _LOGGER.warning("recording %s is outside %s; not deleted", file, root)
        return
    try:
        file.unlink(missing_ok=True)
    except OSError as exc:
        _LOGGER.warning("could not delete recording %s: %s", file, exc)
