"""The do-not-call (DNC) list: add, remove and import numbers with an audit
trail; checked before every dial (`is_blocked`), filled by calls in which the
callee asked not to be called again (records.finish_call).

Numbers are kept in E.164, so "138 0013 8000", "+86 13800138000" and
"008613800138000" are one entry. Removing an entry needs a reason; both
appear in the audit trail with who did it. Leads of any campaign with a
number being added are marked "dnc" at once.

Example:
    >>> add(db, "138 0013 8000", actor="admin", reason="asked by email")
    >>> is_blocked(db, "+8613800138000")
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from edge.calls import audit
from edge.calls import phone as _phone
from edge.calls.csvfile import Row, open_csv
from edge.errors import InputError
from edge.storage import LIKE_ESCAPE, like
from edge.telephony.privacy import mask_phone


@dataclass(frozen=True)
class DncEntry:
    key: str
    at: str
    source: str
    note: str
    call_id: str | None = None


def _key_of(number: str) -> str:
    key = _phone.key(number)
    if not any(ch.isdigit() for ch in key):
        raise InputError(f"{number!r} is not a phone number")
    return key


def is_blocked(db: Database, number: str) -> bool:
    """True if the number (any spelling) is on the list."""
    return db.execute("select 1 from dnc where key = ?", [_phone.key(number)]).fetchone() is not None


def blocked_keys(db: Database) -> set[str]:
    return {row[0] for row in db.execute("select key from dnc")}


def add(db: Database, number: str, *, actor: str, reason: str = "", source: str = "manual",
        at: datetime | None = None) -> bool:
    """Put a number on the list; False if it was already there (nothing changes then)."""
    key = _key_of(number)
    stamp = (at or datetime.now(UTC)).isoformat(timespec="seconds")
    with db.atomic():
        if db.execute("select 1 from dnc where key = ?", [key]).fetchone():
            return False
        db["dnc"].insert({"key": key, "lead_id": None, "call_id": None, "at": stamp, "source": source,
                          "note": reason})
        db.execute("update leads set status = 'dnc', next_at = null, updated_at = ? where e164 = ? "
                   "and status not in ('done', 'dnc')", [stamp, key])
        audit.record(db, actor, "dnc.add", mask_phone(key), {"source": source, "reason": reason}, at=stamp)
    return True


def remove(db: Database, number: str, *, actor: str, reason: str, at: datetime | None = None) -> bool:
    """Take a number off the list; False if it was not there. Leads marked "dnc" stay so until re-imported.

    Raises:
        InputError: no reason given.
    """
    if not reason.strip():
        raise InputError("say why the number comes off the do-not-call list (--reason): it goes in the audit trail")
    key = _key_of(number)
    stamp = (at or datetime.now(UTC)).isoformat(timespec="seconds")
    with db.atomic():
        if not db.execute("select 1 from dnc where key = ?", [key]).fetchone():
            return False
        db["dnc"].delete(key)
        audit.record(db, actor, "dnc.remove", mask_phone(key), {"reason": reason}, at=stamp)
    return True


def entries(db: Database, *, search: str | None = None, limit: int = 500, offset: int = 0) -> list[DncEntry]:
    """Newest first; `search` matches the end of the number (last 4 digits, say)."""
    where, args = "", []
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        where, args = f"where key like ? {LIKE_ESCAPE}", [like(digits)]
    rows = db.execute(f"select key, at, source, note, call_id from dnc {where} order by at desc, key "
                      "limit ? offset ?", [*args, limit, offset]).fetchall()
    return [DncEntry(r[0], r[1], r[2] or "call", r[3] or "", r[4]) for r in rows]


def count(db: Database) -> int:
    return db["dnc"].count


def import_file(db: Database, path: str | Path, *, actor: str, reason: str = "imported",
                encoding: str | None = None) -> dict[str, Any]:
    """Numbers from the first column of a CSV (or one per line, header first) -> the list.

    Returns {"added", "already", "rejected": [{line, reason}]}.
    """
    added = already = 0
    rejected = []
    with open_csv(path, encoding) as table:
        first = table.header[0] if table.header else ""
        rows = list(table.rows())
    try:  # a header-less list: the first line is a number too
        _phone.parse(first)
        rows.insert(0, Row(1, [first]))
    except _phone.PhoneError:
        pass
    for row in rows:
        if row.fields is None:
            rejected.append({"line": row.line, "reason": row.error})
            continue
        try:
            number = _phone.parse(row.fields[0]).e164
        except _phone.PhoneError as exc:
            rejected.append({"line": row.line, "reason": str(exc)})
            continue
        if add(db, number, actor=actor, reason=reason, source="import"):
            added += 1
        else:
            already += 1
    return {"added": added, "already": already, "rejected": rejected}
