"""The audit trail: who changed the do-not-call list or a setting, when, and why.

Rows are only ever added (the retention purge leaves them alone); phone
numbers in `target` are stored masked, so the trail itself holds no number
in full.

Example:
    >>> record(db, "admin@dashboard", "dnc.add", "+86138****8000", {"reason": "customer asked"})
    >>> [row["action"] for row in entries(db)]
    ['dnc.add']
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from edge.storage import LIKE_ESCAPE, like


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record(db: Database, actor: str, action: str, target: str, detail: dict[str, Any] | None = None,
           at: str | None = None) -> None:
    """Append one entry (inside the caller's transaction, if any)."""
    db["audit"].insert({"at": at or now_utc(), "actor": actor, "action": action, "target": target,
                        "detail": json.dumps(detail or {}, ensure_ascii=False)})


def entries(db: Database, *, prefix: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first; `prefix` filters by action ("dnc." or "campaign.")."""
    where, args = (f"where action like ? {LIKE_ESCAPE}", [like(prefix, prefix=True)]) if prefix else ("", [])
    rows = db.execute(f"select at, actor, action, target, detail from audit {where} order by id desc limit ?",
                      [*args, limit]).fetchall()
    return [{"at": r[0], "actor": r[1], "action": r[2], "target": r[3], "detail": json.loads(r[4] or "{}")}
            for r in rows]
