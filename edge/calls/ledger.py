"""The call ledger: one row per call the daemon takes, written as it starts and as it ends.

Whatever handler runs a call (the call loop, echo) and however it ends
(hangup, error, budget cut, shutdown), the daemon writes a `media_calls` row
when the call starts and completes it when the call ends: transport, masked
nothing (the database is not a log), end reason, outcome, error, duration,
and what the handler noted (`record_id` of its own call record, say). The
table lives in the call-records database (calls.db) next to `edge.calls.records`,
under its own migration set.

Crash safety: every write is its own committed transaction (SQLite WAL, on
one writer thread, so the event loop never waits for the disk). A row whose
call never ended belongs to a process that died: opening the ledger marks
those rows `interrupted`, and closes the call loop's record of the same call
id (ended_at, an `interrupted` outcome; its turns are kept), in one
transaction, so nothing is lost or left half-written.

Example:
    >>> ledger = CallLedger(Path("calls.db"))
    >>> await ledger.open()                       # marks rows of a crashed run interrupted
    >>> key = ledger.start(CallStart("3f2a...", "audiosocket", handler="echo"))
    >>> ledger.end(key, CallEnd("remote_hangup", "caller_hangup", duration_s=31.2))
    >>> await ledger.close()                      # flushes
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge.calls import records
from edge.calls.records import close_interrupted, now_iso
from edge.errors import RecordsError
from edge.storage import open_database

__all__ = ["CallEnd", "CallLedger", "CallStart", "INTERRUPTED", "read_ledger"]

_LOGGER = logging.getLogger(__name__)

MIGRATIONS: Final = Migrations("ledger")
TABLE: Final = "media_calls"
PROBE_BYTES: Final = 64 * 1024
"""What the health probe writes (and deletes): about what one call leaves in the records."""
START_WAIT_S: Final = 2.0
"""A call waits this long at most for its start row (a busy disk must not hold up the greeting for long)."""
INTERRUPTED: Final = records.INTERRUPTED
"""Outcome and end reason of a call whose process died before it ended."""


@MIGRATIONS(name="001_media_calls")
def _media_calls(db: Database) -> None:
    db[TABLE].create({"key": str, "call_id": str, "transport": str, "caller": str, "callee": str, "peer": str,
                      "handler": str, "started_at": str, "ended_at": str, "end_reason": str, "outcome": str,
                      "error": str, "duration_s": float, "notes": str}, pk="key")
    db[TABLE].create_index(["call_id"])
    db[TABLE].create_index(["started_at"])
    db["ledger_probe"].create({"id": int, "at": str}, pk="id")


@dataclass(frozen=True)
class CallStart:
    call_id: str
    """The transport's call id (AudioSocket UUID, WebSocket callSid)."""
    transport: str
    caller: str | None = None
    callee: str | None = None
    peer: str | None = None
    handler: str = ""
    """What ran the call ("echo", "edge.calls.session:create_handler")."""
    started_at: str = field(default_factory=now_iso)


@dataclass(frozen=True)
class CallEnd:
    end_reason: str
    """EndReason value: remote_hangup, local_hangup, handler_error, shutdown, ..."""
    outcome: str
    """What the call achieved: the handler's note, else derived from how it ended."""
    error: str | None = None
    duration_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    ended_at: str = field(default_factory=now_iso)


def _connect(path: Path) -> Database:
    return open_database(path, MIGRATIONS)  # the call loop's records share the file (busy timeout)


class CallLedger:
    """Writes `media_calls` rows on one background thread; `flush()` waits for them.

    Args:
        path: the SQLite file (calls.db in the data directory).
        on_error: told about every failed write (the daemon counts it and its health check reports it).
    """

    def __init__(self, path: Path, on_error: Callable[[Exception], None] | None = None) -> None:
        self.path = Path(path)
        self.on_error = on_error
        self.error: str | None = None
        """The last write or open failure, None once a write succeeds again."""
        self.interrupted_on_open = 0
        self.writes = 0
        self.failures = 0
        self._db: Database | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self._pending: set[Future[None]] = set()
        self._started: dict[str, Future[None] | None] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def available(self) -> bool:
        return self._db is not None

    async def open(self) -> int:
        """Open (create, migrate) the ledger and mark rows of a dead process interrupted; returns how many.

        Raises:
            RecordsError: the file cannot be opened or written (read-only directory, disk full, not SQLite).
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    def _open(self) -> int:
        try:
            db = _connect(self.path)
            at = now_iso()
            with db.atomic():  # the ledger rows and the call loop's records of those calls, or neither
                open_rows = db.execute(f"select key, call_id from {TABLE} where ended_at is null").fetchall()
                finished = _recorded_outcomes(db, [call_id for _, call_id in open_rows])
                for key, call_id in open_rows:
                    db.execute(f"update {TABLE} set ended_at = ?, end_reason = ?, outcome = ? where key = ?",
                               [at, INTERRUPTED, finished.get(call_id, INTERRUPTED), key])
                unfinished = [call_id for _, call_id in open_rows if call_id not in finished]
                records_closed = close_interrupted(db, unfinished, at) if db["calls"].exists() else 0
        except (sqlite3.Error, OSError) as exc:
            self.error = f"cannot open the call ledger {self.path}: {exc}"
            raise RecordsError(f"{self.error}; check that the data directory is writable and the disk "
                               "not full") from None
        self._db = db
        self.error = None
        self.interrupted_on_open = len(open_rows)
        if open_rows:
            _LOGGER.warning("%d calls were in progress when the daemon last stopped without a shutdown; "
                            "marked interrupted in %s (%d call records closed; %d had been recorded to the end)",
                            len(open_rows), self.path, records_closed, len(finished),
                            extra={"event": "calls_interrupted", "count": len(open_rows), "records": records_closed,
                                   "finished": len(finished)})
        return len(open_rows)

    async def probe(self) -> bool:
        """Write to the probe table now; True (and the error cleared) if the database takes writes.

        The probe allocates about a call's worth of new pages (PROBE_BYTES, freed again in the same
        transaction): rewriting one small row fits in pages the file already has, so it would pass on a
        disk that is still full."""
        def write(db: Database) -> None:
            with db.atomic():
                db.execute("insert or replace into ledger_probe (id, at) values (2, zeroblob(?))", [PROBE_BYTES])
                db.execute("delete from ledger_probe where id = 2")
                db["ledger_probe"].upsert({"id": 1, "at": now_iso()}, pk="id")

        future = self._submit(write)
        if future is not None:
            await asyncio.wrap_future(future)
        return self.error is None

    def start(self, start: CallStart) -> str:
        """Queue the start row; returns its key (for `end`)."""
        key = uuid.uuid4().hex
        row = {"key": key, "call_id": start.call_id, "transport": start.transport, "caller": start.caller,
               "callee": start.callee, "peer": start.peer, "handler": start.handler,
               "started_at": start.started_at}
        self._started[key] = self._submit(lambda db: db[TABLE].insert(row))
        return key

    async def written(self, key: str, timeout_s: float = START_WAIT_S) -> None:
        """Wait (at most timeout_s) until the start row of `key` is committed."""
        future = self._started.pop(key, None)
        if future is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout_s)

    def end(self, key: str, end: CallEnd) -> None:
        """Queue the end of a call started with `start`."""
        self._started.pop(key, None)
        row = {"ended_at": end.ended_at, "end_reason": end.end_reason, "outcome": end.outcome, "error": end.error,
               "duration_s": round(end.duration_s, 3),
               "notes": json.dumps(end.notes, ensure_ascii=False, default=str) if end.notes else None}
        self._submit(lambda db: db[TABLE].update(key, row))

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued write is done; False if that took longer than timeout_s."""
        with self._lock:
            pending = [asyncio.wrap_future(f) for f in self._pending]
        if not pending:
            return True
        _done, still = await asyncio.wait(pending, timeout=timeout_s)
        return not still

    async def close(self, timeout_s: float = 10.0) -> bool:
        """Flush, then close the database; False if writes were still pending after timeout_s."""
        flushed = await self.flush(timeout_s)
        self._closed = True
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=False)
        return flushed

    def _submit(self, write: Callable[[Database], Any]) -> Future[None] | None:
        if self._closed:
            _LOGGER.error("call ledger closed; a write was dropped", extra={"event": "ledger_closed"})
            return None
        future = self._executor.submit(self._write, write)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _write(self, write: Callable[[Database], Any]) -> None:
        db = self._db
        if db is None:
            exc: Exception = RecordsError(f"the call ledger {self.path} is not open ({self.error or 'not opened'})")
        else:
            try:
                with db.conn:
                    write(db)
                self.writes += 1
                self.error = None
                return
            except (sqlite3.Error, OSError) as error:
                exc = RecordsError(f"writing the call ledger {self.path} failed: {error}; is the disk full or "
                                   "the data directory read-only?")
        self.failures += 1
        self.error = str(exc)
        _LOGGER.error("%s", exc, extra={"event": "ledger_error"})
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:  # a metrics hook must not break the writer
                _LOGGER.exception("ledger on_error hook failed")


def _recorded_outcomes(db: Database, call_ids: list[str]) -> dict[str, str]:
    """Outcomes the call loop had recorded for these calls (it finished; only the ledger's end row was
    still queued when the process died)."""
    if not db["outcomes"].exists():
        return {}
    found = {}
    for call_id in call_ids:
        row = db.execute("select outcome from outcomes where call_id = ?", [call_id]).fetchone()
        if row is not None and row[0] != INTERRUPTED:
            found[call_id] = row[0]
    return found


def read_ledger(path: str | Path) -> list[dict[str, Any]]:
    """Every ledger row, oldest first, with `notes` decoded (for tests, the benchmark and the CLI)."""
    db = Database(sqlite3.connect(str(path), timeout=10))
    try:
        if not db[TABLE].exists():
            return []
        rows = list(db.query(f"select * from {TABLE} order by started_at, rowid"))
    finally:
        db.close()
    for row in rows:
        row["notes"] = json.loads(row["notes"]) if row.get("notes") else {}
    return rows
