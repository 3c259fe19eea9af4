"""Call records in SQLite (sqlite-utils, WAL, versioned migrations).

Tables: leads, calls, turns (text, intents, scores, slot mentions, state
snapshot, timings), outcomes (grade, DNC, the post-call JSON), tasks and
dnc. Every turn is committed as it happens, so a killed process loses at
most the turn being written; a call without an outcome row stopped early.

Example:
    >>> records = Records.open("calls.db")
    >>> call_id = records.start_call({"lead_name": "张伟", "company": "华星科技"}, "智销云", 1, started_at)
    >>> records.add_turn(call_id, dialogue.log[-1])
    >>> records.finish_call(call_id, report)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge.calls import audit
from edge.calls.phone import key as phone_key
from edge.dialog.engine import TurnLog
from edge.errors import CallWithdrawnError, RecordsError
from edge.storage import open_database
from edge.telephony.privacy import mask_phone

_LOGGER = logging.getLogger(__name__)

MIGRATIONS: Final = Migrations("calls")


@MIGRATIONS(name="001_records")
def _records(db: Database) -> None:
    db["leads"].create({"id": int, "name": str, "company": str, "phone": str, "created_at": str}, pk="id")
    db["calls"].create({"id": str, "lead_id": int, "script": str, "script_version": int, "started_at": str,
                        "ended_at": str}, pk="id", foreign_keys=[("lead_id", "leads", "id")])
    db["turns"].create({"id": int, "call_id": str, "idx": int, "at": str, "caller": str, "intents": str,
                        "scores": str, "mentions": str, "changed": str, "state": str, "node": str, "bot": str,
                        "answers": str, "overlap": int, "ignored": int, "barge_in": int, "timings": str},
                       pk="id", foreign_keys=[("call_id", "calls", "id")])
    db["turns"].create_index(["call_id", "idx"], unique=True)
    db["outcomes"].create({"call_id": str, "outcome": str, "grade": str, "dnc": int, "transferred": int,
                           "decision_maker": int, "objections": str, "slots": str, "report": str}, pk="call_id",
                          foreign_keys=[("call_id", "calls", "id")])
    db["tasks"].create({"id": int, "call_id": str, "kind": str, "due": str, "channel": str, "contact": str,
                        "done": int}, pk="id", foreign_keys=[("call_id", "calls", "id")])
    db["tasks"].create_index(["due"])
    db["dnc"].create({"key": str, "lead_id": int, "call_id": str, "at": str}, pk="key")


@MIGRATIONS(name="002_campaigns")
def _campaigns(db: Database) -> None:
    """Campaigns, leads that belong to one (with their dialling state), one call row per dial attempt,
    where a DNC entry came from, and the audit trail. DNC keys become E.164 so any spelling matches."""
    db["campaigns"].create({"id": int, "name": str, "status": str, "settings": str, "created_at": str,
                            "updated_at": str}, pk="id")
    db["campaigns"].create_index(["name"], unique=True)
    for name, kind in (("campaign_id", int), ("e164", str), ("tags", str), ("vars", str), ("status", str),
                       ("attempts", int), ("next_at", str), ("last_result", str), ("grade", str), ("line", int),
                       ("updated_at", str), ("purged_at", str)):
        db["leads"].add_column(name, kind)
    db["leads"].create_index(["campaign_id", "e164"], unique=True)
    db["leads"].create_index(["campaign_id", "status", "next_at"])
    for name, kind in (("campaign_id", int), ("attempt", int), ("disposition", str), ("duration_s", float),
                       ("recording", str), ("placer", str), ("detail", str), ("purged_at", str)):
        db["calls"].add_column(name, kind)
    db["calls"].create_index(["campaign_id", "started_at"])
    db["dnc"].add_column("source", str)
    db["dnc"].add_column("note", str)
    for row in list(db["dnc"].rows):
        if not row["key"].startswith("call:") and phone_key(row["key"]) != row["key"]:
            db["dnc"].delete(row["key"])
            db["dnc"].upsert({**row, "key": phone_key(row["key"])}, pk="key")
    db["audit"].create({"id": int, "at": str, "actor": str, "action": str, "target": str, "detail": str}, pk="id")
    db["audit"].create_index(["action"])


@MIGRATIONS(name="003_call_source")
def _call_source(db: Database) -> None:
    """Where a conversation came from: "phone" (AudioSocket, WebSocket, the dialler) or "kiosk"."""
    db["calls"].add_column("source", str, not_null_default="phone")
    db["calls"].create_index(["source", "started_at"])


@MIGRATIONS(name="004_turn_voice")
def _turn_voice(db: Database) -> None:
    """Voice calls: the caller's mood and what the recognizer heard, per turn."""
    db["turns"].add_column("mood", str)
    db["turns"].add_column("speech", str)


@MIGRATIONS(name="005_call_handoff")
def _call_handoff(db: Database) -> None:
    """A dialler's call handed to the daemon: when it was dialled and when the call loop took it, both on the
    wall clock (`started_at` is the dialler's clock, which `--now` may set). See edge/calls/handoff.py."""
    db["calls"].add_column("dialled_at", str)
    db["calls"].add_column("taken_at", str)


SOURCES: Final = ("phone", "kiosk")
INTERRUPTED: Final = "interrupted"
"""Outcome of a call whose process died before it ended (see close_interrupted)."""


def now_iso() -> str:
    """The wall clock, UTC, to the millisecond (the ledger's and the handoff's timestamps)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Records:
    """The call-records database of one box (one writer).

    Args:
        db: the open database.
        source: what the calls this writer starts are: "phone" or "kiosk" (a kiosk process opens its
            records with source="kiosk", so its conversations are listed and reported like calls).
    """

    def __init__(self, db: Database, source: str = "phone", *, background: bool = False):
        if source not in SOURCES:
            raise RecordsError(f"call source must be one of {SOURCES}, got {source!r}")
        self.db = db
        self.source = source
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="records") if background else None
        # One connection, written from the writer thread and (start_call) the event loop: one write at a
        # time, or their transactions interleave ("no such savepoint").
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path | None, source: str = "phone", *, background: bool = False) -> "Records":
        """Open or create the records file (None: in memory) and apply pending migrations.

        `background`: `submit` runs writes on a writer thread of their own, in order (a server: its
        event loop never waits on SQLite's lock, which the daemon's ledger shares).

        Raises:
            RecordsError: not a SQLite file, or the directory is not writable.
        """
        try:
            db = open_database(path, MIGRATIONS, threads=background)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise RecordsError(f"cannot open call records {path}: {exc}; check the path and its permissions, "
                               "or set [records] database in the config") from None
        return cls(db, source, background=background)

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run `write(*args)` (one of the methods below) now, or queued on the writer thread.

        Queued writes run in the order submitted; a failure is logged there, not raised here.
        """
        if self._writer is None:
            write(*args, **kwargs)
            return

        def run() -> None:
            try:
                write(*args, **kwargs)
            except Exception:
                _LOGGER.exception("call records: %s failed", getattr(write, "__name__", "a write"))

        self._writer.submit(run)

    async def start_call_async(self, *args: Any, **kwargs: Any) -> str:
        """`start_call` on the writer thread when there is one (a server: the event loop does not wait on
        SQLite, nor on the writes queued before it), else here and now; returns the call id."""
        if self._writer is None:
            return self.start_call(*args, **kwargs)
        return await asyncio.wrap_future(self._writer.submit(self.start_call, *args, **kwargs))

    def start_call(self, lead: dict[str, str], script: str, script_version: int, started_at: str, *,
                   lead_id: int | None = None, call_id: str | None = None, campaign_id: int | None = None,
                   attempt: int | None = None, placer: str | None = None) -> str:
        """Record a new call (and its lead, unless `lead_id` names a campaign's lead); returns the call id.

        A call id that names a dialler's row (CALL_UUID) takes that row instead (see `_take`).

        Raises:
            CallWithdrawnError: the dialler closed that row before this call took it (see handoff.withdraw).
        """
        call_id = call_id or uuid.uuid4().hex[:16]
        with self._writing(), self.db.atomic():  # a lead without its call row would be half a record
            taken = self._take(call_id)
            if taken:
                return call_id
            if taken is not None:
                raise CallWithdrawnError(f"call {call_id}: the dialler gave up on it before the bot took it and "
                                         "books the lead for a retry; hanging up")
            if self.db.execute("select 1 from calls where id = ?", [call_id]).fetchone():
                call_id = uuid.uuid4().hex[:16]  # a transport id seen before (a replayed UUID): a row of its own
            if lead_id is None:
                lead_id = self.db["leads"].insert({"name": lead.get("lead_name", ""),
                                                   "company": lead.get("company", ""),
                                                   "phone": lead.get("phone", ""), "created_at": started_at}).last_pk
            self.db["calls"].insert({"id": call_id, "lead_id": lead_id, "script": script,
                                     "script_version": script_version, "started_at": started_at, "ended_at": None,
                                     "source": self.source, "campaign_id": campaign_id, "attempt": attempt,
                                     "placer": placer, "dialled_at": now_iso() if placer else None})
        return call_id

    def _take(self, call_id: str) -> bool | None:
        """Whether this call takes a dialler's row: True if the dialler placed it (a placer, never taken) and
        it is still open (no end, outcome or turns): the voice loop then records into that row, so the
        campaign, the ledger and the turns share one call id, and `taken_at` tells the dialler the bot has
        the call. False if the dialler closed it first (it gave up waiting); None if it is no such row.

        Runs in start_call's write transaction, as the dialler's withdraw runs in its own: one of them wins."""
        row = self.db.execute(
            "select c.ended_at is null and not exists (select 1 from outcomes o where o.call_id = c.id) and not "
            "exists (select 1 from turns t where t.call_id = c.id) from calls c where c.id = ? and c.placer is "
            "not null and c.taken_at is null", [call_id]).fetchone()
        if row is None:
            return None
        if row[0]:
            self.db.execute("update calls set taken_at = ? where id = ?", [now_iso(), call_id])
        return bool(row[0])

    def add_turn(self, call_id: str, turn: TurnLog) -> None:
        row = asdict(turn)
        with self._writing():
            self.db["turns"].insert({
                "call_id": call_id, "idx": row["index"], "at": row["at"], "caller": row["caller"],
                "intents": _json(row["intents"]), "scores": _json(row["scores"]), "mentions": _json(row["mentions"]),
                "changed": _json(row["changed"]), "state": _json(row["goal"]), "node": row["node"],
                "bot": row["bot"], "answers": _json(row["answers"]), "overlap": int(row["overlap"]),
                "ignored": int(row["ignored"]), "barge_in": int(row["barge_in"]), "timings": _json(row["timings_ms"]),
                "mood": row.get("mood", "neutral"), "speech": _json(row.get("speech") or {})})

    def finish_call(self, call_id: str, report: dict[str, Any]) -> None:
        """Store the outcome, tasks and DNC flag of a call, in one transaction."""
        with self._writing(), self._immediate():
            self.db["calls"].update(call_id, {"ended_at": report["ended_at"]})
            self.db["outcomes"].upsert({
                "call_id": call_id, "outcome": report["outcome"], "grade": report["grade"], "dnc": int(report["dnc"]),
                "transferred": int(report["transferred"]),
                "decision_maker": None if report["decision_maker"] is None else int(report["decision_maker"]),
                "objections": _json(report["objections"]), "slots": _json(report["slots"]),
                "report": _json(report)}, pk="call_id")
            for task in report["tasks"]:
                self.db["tasks"].insert({"call_id": call_id, **task, "done": 0})
            if report["dnc"]:
                lead = report.get("lead") or {}
                key = phone_key(lead["phone"]) if lead.get("phone") else f"call:{call_id}"
                lead_id = self.db["calls"].get(call_id)["lead_id"]
                self.db["dnc"].upsert({"key": key, "lead_id": lead_id, "call_id": call_id, "at": report["ended_at"],
                                       "source": "call", "note": "the callee asked not to be called"}, pk="key")
                audit.record(self.db, f"bot:call {call_id}", "dnc.add", mask_phone(key),
                             {"source": "call", "reason": "complaint / do-not-call intent"}, at=report["ended_at"])

    def report(self, call_id: str) -> dict[str, Any]:
        """The post-call JSON of a finished call."""
        row = self.db.execute("select report from outcomes where call_id = ?", [call_id]).fetchone()
        if row is None:
            raise RecordsError(f"no finished call {call_id!r} in the records")
        return json.loads(row[0])

    def close(self) -> None:
        """Finish the queued writes, then close the file."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self.db.close()

    def _writing(self):
        return _Writing(self._lock)

    @contextlib.contextmanager
    def _immediate(self):
        """A write transaction that takes the write lock first, waiting up to the busy timeout.

        sqlite-utils' atomic() begins a deferred transaction; finish_call reads before it writes, and
        when another connection (the daemon's call ledger shares calls.db) commits in between, SQLite
        refuses the upgrade at once with "database is locked", without waiting.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


class _Writing:
    """Holds the records' write lock; turns a SQLite failure during a write into a RecordsError that says
    what to check."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, kind, exc, tb):
        self._lock.release()
        if isinstance(exc, sqlite3.DatabaseError):
            raise RecordsError(f"writing call records failed: {exc}; is the disk full or the file read-only?") from None
        return False


def close_interrupted(db: Database, call_ids: list[str], at: str) -> int:
    """Finish the records of calls whose process died mid-call: `ended_at` (if unset) and an outcome row
    "interrupted" with a report naming the turns kept. Calls that already have an outcome are left alone.
    Runs in the caller's transaction; returns how many calls it closed."""
    closed = 0
    for call_id in call_ids:
        row = db.execute("select c.id, c.started_at, (select count(*) from turns t where t.call_id = c.id) "
                         "from calls c where c.id = ? and not exists (select 1 from outcomes o where "
                         "o.call_id = c.id)", [call_id]).fetchone()
        if row is None:
            continue
        db.execute("update calls set ended_at = coalesce(ended_at, ?) where id = ?", [at, call_id])
        report = {"call_id": call_id, "outcome": INTERRUPTED, "grade": None, "dnc": False, "tasks": [],
                  "started_at": row[1], "ended_at": at, "turns_kept": row[2],
                  "note": "the process stopped without a shutdown during this call; its turns up to then are kept"}
        db.execute("insert into outcomes (call_id, outcome, grade, dnc, transferred, decision_maker, objections, "
                   "slots, report) values (?, ?, null, 0, 0, null, '[]', '{}', ?)",
                   [call_id, INTERRUPTED, _json(report)])
        closed += 1
    return closed


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
