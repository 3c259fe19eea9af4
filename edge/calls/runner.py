"""The campaign dialler: picks the leads that are due, checks the do-not-call
list and the calling hours right before each dial, places calls through a
`CallPlacer` (text simulator, AMI, later the voice simulator), at most
`max_concurrent` at a time, and books what comes next (retry, callback, done).

Times in the database (`leads.next_at`) are UTC ISO-8601; the hours are
checked in the lead's own time zone (its `timezone` column) or the campaign's.

Example:
    >>> runner = CampaignRunner(records, "三月华东", placer)
    >>> summary = await runner.run(datetime(2025, 3, 5, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    >>> summary.placed, summary.dispositions
    (120, {'answered': 71, 'no_answer': 30, 'busy': 9, 'voicemail': 10})
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from edge.calls import campaign as _campaign
from edge.calls import dnc as _dnc
from edge.calls import handoff
from edge.calls.leads import Lead, from_row
from edge.calls.records import INTERRUPTED, Records, close_interrupted, now_iso
from edge.calls.schedule import zone
from edge.errors import CampaignError
from edge.telephony.privacy import mask_phone

_LOGGER = logging.getLogger(__name__)

DISPOSITIONS: Final = ("answered", "voicemail", "no_answer", "busy", "unreachable", "invalid", "failed",
                       handoff.HANDOFF_FAILED)
"""How a dial ended. answered: a person talked with the bot; invalid: the number does not exist;
handoff_failed: the PBX answered but the bot never talked with the lead (edge/calls/handoff.py)."""
WAITING: Final = ("pending", "retry", "callback")
BATCH: Final = 500
AMI_PLACER: Final = "ami"
"""The placer whose answered calls continue in the daemon's voice loop (edge.calls.placers.AmiCallPlacer)."""
MAX_PASSES: Final = 10_000


@dataclass(frozen=True)
class Placed:
    """What a placer reports for one dial."""

    call_id: str
    disposition: str
    started_at: datetime
    ended_at: datetime
    report: dict[str, Any] | None = None
    """The post-call JSON when a conversation ran (edge/calls/report.py)."""
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    """E.g. the greeting heard and the voicemail verdict."""


class CallPlacer(Protocol):
    """Places one call to a lead and records it (a call row, turns, outcome)."""

    name: str

    async def place(self, lead: Lead, now: datetime) -> Placed: ...


@dataclass(frozen=True)
class InFlight:
    """A lead whose call a dead dialler left that may still be live (an AMI call the daemon may still take or
    is still running): a placer with `follow` waits for it instead of dialling the lead again."""

    lead: Lead
    call_id: str
    take_by: float
    """time.monotonic() after which, not taken yet, it is written off: its ring and the handoff wait are over."""


@dataclass
class RunSummary:
    placed: int = 0
    dispositions: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    blocked_dnc: int = 0
    """Leads not dialled because their number is on the DNC list."""
    deferred: int = 0
    """Leads due outside the calling hours, moved to the next opening."""
    retries_booked: int = 0
    callbacks_booked: int = 0
    exhausted: int = 0
    errors: list[str] = field(default_factory=list)
    next_due: str | None = None
    """Earliest next_at of a waiting lead (UTC), if any."""
    status: str = ""

    def merge(self, other: RunSummary) -> None:
        self.placed += other.placed
        self.dispositions.update(other.dispositions)
        self.outcomes.update(other.outcomes)
        for name in ("blocked_dnc", "deferred", "retries_booked", "callbacks_booked", "exhausted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.next_due, self.status = other.next_due, other.status

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "dispositions": dict(self.dispositions), "outcomes": dict(self.outcomes)}


def utc(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


class CampaignRunner:
    """Dials one campaign's due leads through a placer."""

    def __init__(self, records: Records, campaign: str, placer: CallPlacer, *, actor: str = "campaign-runner"):
        self.records = records
        self.db = records.db
        self.name = campaign
        self.placer = placer
        self.actor = actor
        self.in_flight: list[InFlight] = []
        """Left by `recover` for the next pass to follow (never dialled again while they may be live)."""

    def recover(self, now: datetime) -> int:
        """Leads left "in_call" by a process that died, sorted out by what their last dial left behind:

        - never dialled (claimed for a pass, still queued): back to waiting, the attempt not counted;
        - the conversation finished and was recorded (killed before the lead was booked): booked from
          that outcome, as if the runner had seen it return, so a finished call is never dialled again;
        - an AMI call that may still be live (the daemon runs it, or it may still ring and be answered:
          handoff.time_left): kept in the call; the next pass follows it to its end (`in_flight`);
        - an AMI call the daemon had (reached or took): booked from its records (handoff.verdict): answered
          if the lead spoke with the bot, else handoff_failed, retried by the campaign's rules;
        - answered, conversation not finished (turns recorded): the lead talked with the bot, so it is not
          dialled again (done, "answered"); a simulated call's record is closed as interrupted;
        - cut off while ringing: that call is closed as interrupted (failed), which also stops the daemon
          taking a late answer (handoff.withdraw), and the lead waits for a retry.

        Returns how many leads it sorted out.
        """
        stamp = utc(now)
        campaign = _campaign.get(self.db, self.name)
        settings = campaign.settings
        window_s = settings.ring_timeout_s + settings.handoff_timeout_s
        summary = RunSummary()
        wall = datetime.now(UTC)
        with self.db.atomic():
            stale = [from_row(row) for row in self.db.query(
                "select * from leads where campaign_id = ? and status = 'in_call'", [campaign.id])]
            for lead in stale:
                call = self.db.execute(
                    "select c.id, c.placer, o.report, (select count(*) from turns t where t.call_id = c.id) "
                    "from calls c left join outcomes o on o.call_id = c.id "
                    "where c.lead_id = ? and (c.attempt = ? or c.attempt is null) order by c.started_at desc, "
                    "c.rowid desc limit 1", [lead.id, lead.attempts]).fetchone()
                state = handoff.read(self.db, [call[0]])[call[0]] if call and call[1] == AMI_PLACER else None
                left = handoff.time_left(state, window_s, wall) if state is not None else None
                if call is None:
                    self._set(lead.id, status="retry" if lead.attempts > 1 else "pending",
                              attempts=max(0, lead.attempts - 1), next_at=stamp, updated_at=stamp)
                elif call[2] is not None and json.loads(call[2]).get("outcome") != INTERRUPTED:
                    report = json.loads(call[2])
                    ended = datetime.fromisoformat(report.get("ended_at") or stamp)
                    self.db.execute("update calls set disposition = 'answered' where id = ?", [call[0]])
                    self._after_talk(lead, Placed(call[0], "answered", ended, ended, report), summary,
                                     utc(ended) if ended.tzinfo else stamp)
                elif left is not None and hasattr(self.placer, "follow"):
                    self.in_flight.append(InFlight(lead, call[0], time.monotonic() + left))
                elif state is not None and (state.taken or state.reached):
                    self._book_followed(lead, handoff.verdict(state), now, summary)
                elif call[3]:
                    if call[1] != AMI_PLACER:  # this process ran the conversation; nobody else will end it
                        close_interrupted(self.db, [call[0]], stamp)
                    self.db.execute("update calls set disposition = 'answered' where id = ?", [call[0]])
                    self._set(lead.id, status="done", next_at=None, last_result="answered", updated_at=stamp)
                else:
                    self._requeue(lead, call[0], stamp)
        if stale:
            _LOGGER.warning("campaign %s: %d leads were in a call when the dialler last stopped; sorted out "
                            "(%d calls may still be live: followed, not dialled again)", self.name, len(stale),
                            len(self.in_flight), extra={"event": "campaign_recovered", "leads": len(stale),
                                                        "in_flight": len(self.in_flight)})
        return len(stale)

    def _requeue(self, lead: Lead, call_id: str, stamp: str) -> None:
        """A dial cut off with no sign of an answer: its calls closed (interrupted, failed), the lead due now."""
        open_calls = [r[0] for r in self.db.execute(
            "select id from calls where lead_id = ? and (ended_at is null or id = ?)", [lead.id, call_id])]
        close_interrupted(self.db, open_calls, stamp)
        for open_call in open_calls:
            self.db.execute("update calls set disposition = 'failed' where id = ?", [open_call])
        self._set(lead.id, status="retry", next_at=stamp, last_result="failed", updated_at=stamp)

    def _book_followed(self, lead: Lead, judged: handoff.Verdict, now: datetime, summary: RunSummary) -> None:
        """Book a call a dead dialler left, from what the daemon recorded (handoff.verdict)."""
        self._apply(lead, lead.status, Placed(judged.state.call_id, judged.disposition, now, now, judged.report,
                                              detail={"handoff": judged.why, "recovered_at": now_iso()}), summary)

    async def run(self, now: datetime, until: datetime | None = None) -> RunSummary:
        """Dial everything due at `now`; with `until`, go on in simulated time, jumping to each next due
        moment (retries, callbacks, the next opening of the hours) up to `until`.

        Raises:
            CampaignError: the campaign is unknown or paused.
        """
        campaign = _campaign.get(self.db, self.name)
        if campaign.status == "paused":
            raise CampaignError(f"campaign {self.name!r} is paused; resume it first "
                                f"(`salesbot campaign resume {self.name}`)")
        if campaign.status != "running":
            _campaign.set_status(self.db, self.name, "running", actor=self.actor)
        self.recover(now)
        total = RunSummary()
        clock = now
        for _ in range(MAX_PASSES):
            summary = await self.run_due(clock)
            total.merge(summary)
            if summary.status == "paused":
                break
            if summary.placed or summary.deferred or summary.blocked_dnc:
                continue  # more may be due at the same moment
            if until is None or summary.next_due is None:
                break
            next_due = datetime.fromisoformat(summary.next_due)
            if next_due > until:
                break
            clock = max(clock, next_due.astimezone(clock.tzinfo))
        self.finish_if_done()
        total.status = _campaign.get(self.db, self.name).status
        return total

    async def run_due(self, now: datetime) -> RunSummary:
        """One pass: every lead due at `now` (up to BATCH) is dialled, deferred or blocked."""
        summary = RunSummary()
        campaign = _campaign.get(self.db, self.name)
        summary.status = campaign.status
        if campaign.status == "paused":
            return summary
        settings = campaign.settings
        hours, callbacks = settings.calling_hours(), settings.callback_window()
        stamp = utc(now)
        rows = list(self.db.query(
            "select * from leads where campaign_id = ? and status in ('pending', 'retry', 'callback') "
            "and (next_at is null or next_at <= ?) order by case status when 'callback' then 0 else 1 end, "
            "coalesce(next_at, ''), id limit ?", [campaign.id, stamp, BATCH]))
        due: list[Lead] = []
        for row in rows:
            lead = from_row(row)
            if _dnc.is_blocked(self.db, lead.e164):
                self._set(lead.id, status="dnc", next_at=None, updated_at=stamp)
                summary.blocked_dnc += 1
                _LOGGER.info("lead %s not dialled: on the DNC list (%s)", lead.id, mask_phone(lead.e164))
                continue
            tz = zone(lead.timezone or settings.timezone)
            window = callbacks if lead.status == "callback" else hours
            if not window.allows(now, tz):
                self._set(lead.id, next_at=utc(window.next_open(now, tz)), updated_at=stamp)
                summary.deferred += 1
                continue
            due.append(lead)
        following, self.in_flight = self.in_flight, []
        if due or following:
            with self.db.atomic():
                for lead in due:
                    self._set(lead.id, status="in_call", attempts=lead.attempts + 1, updated_at=stamp)
            gate = asyncio.Semaphore(settings.max_concurrent)  # calls left live by a dead dialler count too
            await asyncio.gather(*(self._follow(item, now, gate, summary) for item in following),
                                 *(self._dial(dataclasses.replace(lead, attempts=lead.attempts + 1), lead.status,
                                              now, gate, summary) for lead in due))
        summary.next_due = self._next_due(campaign.id)
        return summary

    async def _dial(self, lead: Lead, was: str, now: datetime, gate: asyncio.Semaphore,
                    summary: RunSummary) -> None:
        async with gate:
            # Checked again right before the dial: the list or the status may have changed while queued.
            if _dnc.is_blocked(self.db, lead.e164):
                self._set(lead.id, status="dnc", next_at=None, attempts=lead.attempts - 1)
                summary.blocked_dnc += 1
                return
            if _campaign.get(self.db, self.name).status == "paused":
                self._set(lead.id, status=was, attempts=lead.attempts - 1)
                return
            try:
                placed = await self.placer.place(lead, now)
            except Exception as exc:  # one broken call must not stop the campaign
                _LOGGER.exception("placing a call to lead %s failed", lead.id)
                summary.errors.append(f"lead {lead.id}: {exc}")
                self._set(lead.id, status="retry", next_at=utc(now + timedelta(minutes=10)),
                          last_result="failed")
                return
        self._apply(lead, was, placed, summary)

    async def _follow(self, item: InFlight, now: datetime, gate: asyncio.Semaphore, summary: RunSummary) -> None:
        """Wait for a call a dead dialler left live, then book it; never dial its lead meanwhile."""
        async with gate:
            try:
                judged = await self.placer.follow(  # type: ignore[attr-defined]  # recover checked it has one
                    item.call_id, take_within_s=item.take_by - time.monotonic(), at=now)
            except Exception as exc:  # the lead stays in the call; the next start sorts it out
                _LOGGER.exception("following call %s of lead %s failed", item.call_id, item.lead.id)
                summary.errors.append(f"lead {item.lead.id}: {exc}")
                return
        if judged.why == "not_taken" and not judged.state.reached:  # no sign it was ever answered
            summary.placed += 1
            summary.dispositions["failed"] += 1
            with self.db.atomic():
                self._requeue(item.lead, item.call_id, utc(now))
            return
        self._book_followed(item.lead, judged, now, summary)

    def _apply(self, lead: Lead, was: str, placed: Placed, summary: RunSummary) -> None:
        settings = _campaign.get(self.db, self.name).settings
        stamp = utc(placed.ended_at)
        summary.placed += 1
        summary.dispositions[placed.disposition] += 1
        duration = max(0.0, (placed.ended_at - placed.started_at).total_seconds())
        with self.db.atomic():
            self.db["calls"].update(placed.call_id, {
                "disposition": placed.disposition, "ended_at": placed.ended_at.isoformat(timespec="seconds"),
                "duration_s": round(duration, 1),
                "detail": json.dumps({**placed.detail, "message": placed.message} if placed.message
                                     else placed.detail, ensure_ascii=False)})
            if placed.disposition == "answered":
                self._after_talk(lead, placed, summary, stamp)
            elif placed.disposition == "invalid":
                self._set(lead.id, status="failed", next_at=None, last_result="invalid", updated_at=stamp)
            else:
                same_before = self.db.execute(
                    "select count(*) from calls where lead_id = ? and disposition = ? and id != ?",
                    [lead.id, placed.disposition, placed.call_id]).fetchone()[0]
                retry_at = settings.retry_policy().next_attempt(placed.disposition, same_before, lead.attempts,
                                                                placed.ended_at)
                if retry_at is None:
                    self._set(lead.id, status="exhausted", next_at=None, last_result=placed.disposition,
                              updated_at=stamp)
                    summary.exhausted += 1
                else:
                    tz = zone(lead.timezone or settings.timezone)
                    retry_at = settings.calling_hours().next_open(retry_at, tz)
                    self._set(lead.id, status="retry", next_at=utc(retry_at), last_result=placed.disposition,
                              updated_at=stamp)
                    summary.retries_booked += 1

    def _after_talk(self, lead: Lead, placed: Placed, summary: RunSummary, stamp: str) -> None:
        report = placed.report
        if report is None:  # answered and handed to the voice loop, which records the outcome
            self._set(lead.id, status="done", next_at=None, last_result="answered", updated_at=stamp)
            return
        summary.outcomes[report["outcome"]] += 1
        fields: dict[str, Any] = {"grade": report["grade"], "last_result": report["outcome"], "updated_at": stamp}
        callback = next((t for t in report.get("tasks", []) if t["kind"] == "callback"), None)
        if report.get("dnc"):
            self.db.execute("update leads set status = 'dnc', next_at = null, updated_at = ? where e164 = ? "
                            "and status in ('pending', 'retry', 'callback')", [stamp, lead.e164])
            self._set(lead.id, status="dnc", next_at=None, **fields)
        elif callback is not None and lead.attempts < _campaign.get(self.db, self.name).settings.max_attempts:
            self._set(lead.id, status="callback", next_at=utc(datetime.fromisoformat(callback["due"])), **fields)
            summary.callbacks_booked += 1
        else:  # a callback past max_attempts stays a task for a person
            self._set(lead.id, status="done", next_at=None, **fields)

    def _set(self, lead_id: int, **fields: Any) -> None:
        self.db["leads"].update(lead_id, fields)

    def _next_due(self, campaign_id: int) -> str | None:
        row = self.db.execute("select min(next_at) from leads where campaign_id = ? and status in "
                              "('pending', 'retry', 'callback') and next_at is not null", [campaign_id]).fetchone()
        return row[0]

    def finish_if_done(self) -> None:
        """Mark the campaign done when no lead is waiting or in a call."""
        campaign = _campaign.get(self.db, self.name)
        left = self.db.execute("select count(*) from leads where campaign_id = ? and status in "
                               "('pending', 'retry', 'callback', 'in_call')", [campaign.id]).fetchone()[0]
        total = self.db.execute("select count(*) from leads where campaign_id = ?", [campaign.id]).fetchone()[0]
        if total and not left and campaign.status == "running":
            _campaign.set_status(self.db, self.name, "done", actor=self.actor)
