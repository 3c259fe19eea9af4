"""Handoff: what became of a dialler's answered call once the PBX passed it to the daemon, read from calls.db.

The dialler (`salesbot campaign run --ami`, a process of its own) and the daemon (`salesbot serve`) share
calls.db (SQLite WAL). The dialler writes the call row when it dials (id = CALL_UUID, `dialled_at`); the
daemon's call loop takes the call by stamping `taken_at` on that row (Records.start_call), records each turn
and, at the end, the outcome; the daemon's ledger row (media_calls) ends when its handler returns; and a
daemon restarted after a crash closes the records of the calls it had in flight (outcome `interrupted`).

The PBX saying "answered" proves none of that: the daemon may be full, unhealthy, dead or too slow to take
the call. So an answered call is booked from these rows only (`verdict`):

- the call loop finished it (an outcome other than interrupted): answered, with its report;
- cut off after the lead had spoken (turns kept): answered, not dialled again;
- never taken, refused, or cut off before the first turn: HANDOFF_FAILED, retried by the campaign's rules.

A call the daemon has not taken within a bounded wait is written off with `withdraw`, which closes the row
only while it is untaken, in one write transaction; start_call takes a row only while it is open, in its
own. One of the two wins: either the bot talks and the dialler books that, or the dialler books a retry and
the bot hangs up the late call (CallWithdrawnError, ledger outcome WITHDRAWN). No lead talks twice.

Example:
    >>> watch = HandoffWatch(records.db)
    >>> state = await watch.wait(call_id, lambda h: h.taken, timeout_s=10)
    >>> verdict(state).disposition
    'answered'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlite_utils import Database

from edge.calls.records import INTERRUPTED

__all__ = ["HANDOFF_FAILED", "WITHDRAWN", "Handoff", "HandoffWatch", "Verdict", "read", "time_left", "verdict",
           "withdraw"]

_LOGGER = logging.getLogger(__name__)

HANDOFF_FAILED: Final = "handoff_failed"
"""Disposition of an answered call the bot never talked in: refused, not taken in time, cut before a turn."""
WITHDRAWN: Final = "withdrawn"
"""Ledger outcome of a call that reached the daemon after the dialler had written it off (the bot hung up)."""
POLL_S: Final = 0.25
"""How often the dialler reads calls.db for the calls it waits on (one query for all of them)."""
LEDGER: Final = "media_calls"
"""The daemon's ledger table (edge/calls/ledger.py; calls does not import it to keep the ledger optional)."""


@dataclass(frozen=True)
class Handoff:
    """One dialled call as the daemon's side left it in calls.db."""

    call_id: str
    taken: bool = False
    """The daemon's call loop took the call (it records into this row)."""
    closed: bool = False
    """The row has an end: the call was booked, written off (withdraw) or closed after a crash."""
    turns: int = 0
    """Caller turns recorded: the lead spoke with the bot."""
    outcome: str | None = None
    report: dict[str, Any] | None = None
    reached: bool = False
    """The daemon accepted the connection (its ledger has a row for this call)."""
    handler_ended: bool = False
    """The daemon's handler for this call returned (its ledger row has an end)."""
    dialled_at: str | None = None
    """Wall clock (UTC) of the dial."""

    @property
    def finished(self) -> bool:
        """An outcome is recorded (by the call loop, or `interrupted` by a recovery)."""
        return self.outcome is not None


@dataclass(frozen=True)
class Verdict:
    """How the dialler books a call from its handoff."""

    disposition: str
    """"answered" (the lead talked with the bot) or HANDOFF_FAILED."""
    why: str
    """recorded | cut_after_turns | not_taken | interrupted | no_outcome (goes into the call's detail)."""
    state: Handoff

    @property
    def report(self) -> dict[str, Any] | None:
        """The post-call JSON when the call loop finished the call."""
        return self.state.report if self.why == "recorded" else None


def verdict(state: Handoff) -> Verdict:
    """Book the call as answered only when the records show the conversation happened."""
    if state.finished and state.outcome != INTERRUPTED:
        return Verdict("answered", "recorded", state)
    if state.turns:
        return Verdict("answered", "cut_after_turns", state)
    if not state.taken:
        return Verdict(HANDOFF_FAILED, "not_taken", state)
    return Verdict(HANDOFF_FAILED, "interrupted" if state.finished else "no_outcome", state)


def read(db: Database, call_ids: list[str]) -> dict[str, Handoff]:
    """The handoff state of these calls, in one query (rows that do not exist are left out)."""
    if not call_ids:
        return {}
    if db[LEDGER].exists():
        ledger = (f"exists (select 1 from {LEDGER} m where m.call_id = c.id), "
                  f"exists (select 1 from {LEDGER} m where m.call_id = c.id and m.ended_at is not null)")
    else:  # no daemon has used this file yet
        ledger = "0, 0"
    marks = ", ".join("?" * len(call_ids))
    rows = db.execute(
        f"select c.id, c.taken_at is not null, c.ended_at is not null, "
        f"(select count(*) from turns t where t.call_id = c.id), o.outcome, o.report, {ledger}, c.dialled_at "
        f"from calls c left join outcomes o on o.call_id = c.id where c.id in ({marks})", call_ids).fetchall()
    return {row[0]: Handoff(row[0], bool(row[1]), bool(row[2]), row[3], row[4],
                            json.loads(row[5]) if row[5] else None, bool(row[6]), bool(row[7]), row[8])
            for row in rows}


def withdraw(db: Database, call_id: str, at: str) -> bool:
    """Write off a call the daemon has not taken: close its row (ended_at = `at`), so the call loop will not
    take it any more. True if it is written off; False if the daemon took it first (book what it records)."""
    with db.atomic():
        db.execute("update calls set ended_at = coalesce(ended_at, ?) where id = ? and taken_at is null",
                   [at, call_id])
        state = read(db, [call_id]).get(call_id)
    return state is None or not state.taken


class HandoffWatch:
    """Waits on many calls' handoffs with one read of calls.db per poll (100 calls: one query, not 100).

    Args:
        db: the dialler's connection to calls.db (used on the event loop, like the rest of the runner).
        poll_s: seconds between reads.
    """

    def __init__(self, db: Database, poll_s: float = POLL_S) -> None:
        self.db = db
        self.poll_s = poll_s
        self._waiters: dict[str, list[tuple[Callable[[Handoff], bool], asyncio.Future[Handoff]]]] = {}
        self._task: asyncio.Task[None] | None = None

    def read(self, call_id: str) -> Handoff:
        return read(self.db, [call_id]).get(call_id) or Handoff(call_id)

    async def wait(self, call_id: str, until: Callable[[Handoff], bool], timeout_s: float) -> Handoff:
        """The call's state as soon as `until(state)` holds, or as it is after `timeout_s`."""
        state = self.read(call_id)
        if until(state) or timeout_s <= 0:
            return state
        future: asyncio.Future[Handoff] = asyncio.get_running_loop().create_future()
        entry = (until, future)
        self._waiters.setdefault(call_id, []).append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="handoff-watch")
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return self.read(call_id)
        finally:
            waiting = self._waiters.get(call_id, [])
            with contextlib.suppress(ValueError):
                waiting.remove(entry)
            if not waiting:
                self._waiters.pop(call_id, None)

    async def _poll(self) -> None:
        while self._waiters:
            await asyncio.sleep(self.poll_s)
            try:
                states = read(self.db, list(self._waiters))
            except sqlite3.Error as exc:  # a busy or broken file: the waits run into their timeouts
                _LOGGER.warning("reading call handoffs failed: %s", exc, extra={"event": "handoff_read_error"})
                continue
            for call_id, waiting in list(self._waiters.items()):
                state = states.get(call_id)
                for until, future in list(waiting):
                    if state is not None and not future.done() and until(state):
                        future.set_result(state)


def time_left(state: Handoff, window_s: float, now: datetime) -> float | None:
    """For a dialler that restarts: how long the call may still be live, None if it cannot be.

    Taken and its handler still running: 0 (live now; follow it to its outcome). Not taken, not closed, and
    dialled less than `window_s` (ring timeout + handoff timeout) ago on the wall clock `now`: the seconds
    left in which it may still be answered and taken. A lead is not dialled again while this is not None.
    """
    if state.finished:
        return None
    if state.taken:
        return None if state.handler_ended else 0.0
    if state.closed or state.handler_ended or not state.dialled_at:
        return None
    left = window_s - (now - datetime.fromisoformat(state.dialled_at)).total_seconds()
    return left if left > 0 else None
