"""The AMI dialler books a call from what the daemon recorded (edge/calls/handoff.py), not from the PBX's
"answered": a call the daemon does not take in time, refuses, or loses before the first turn is retried by the
campaign's rules; one it takes and finishes is booked with its outcome and not dialled again; the waits are
bounded; a restarted dialler follows calls that may still be live instead of dialling their leads again.

A real daemon runs in this process (admission, refusals, ledger) and a PBX answers each Originate and
bridges the call to its AudioSocket with CALL_UUID. The call loop's record keeping is stood in for
(`TakesCalls`, no models); the real call loop's side of the fence is checked on the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import datetime, timedelta

import pytest

from edge.calls import Records
from edge.calls import campaign as campaigns
from edge.calls.handoff import HANDOFF_FAILED, WITHDRAWN, HandoffWatch, read, verdict, withdraw
from edge.calls.ledger import read_ledger
from edge.calls.placers import AmiCallPlacer
from edge.calls.records import close_interrupted
from edge.calls.runner import CampaignRunner
from edge.errors import CallWithdrawnError
from edge.telephony.ami import AmiClient
from tests.daemon_peers import Peer, config_for
from tests.test_ami import FakeAmi
from tests.test_campaign_runner import WEDNESDAY_10, lead_rows, setup
from tests.test_daemon import running

STAMP = "2025-03-05T10:00:00+08:00"
TAKE_S = 1.0
"""The campaigns' handoff_timeout_s here (the smallest allowed), so a call nobody takes costs a second."""


def report(call_id: str, outcome: str = "callback_booked") -> dict:
    return {"call_id": call_id, "ended_at": "2025-03-05T10:02:00+08:00", "outcome": outcome, "grade": "B",
            "dnc": False, "transferred": False, "decision_maker": True, "objections": [], "slots": {},
            "tasks": [{"kind": "callback", "due": "2025-03-06T10:00:00+08:00", "channel": "phone",
                       "contact": None}]}


class BridgingPbx(FakeAmi):
    """Answers each Originate after `ring_s[number]` seconds (default 0.05) and bridges the call to the
    daemon's AudioSocket with its CALL_UUID, as the dialplan's AudioSocket(${CALL_UUID}, ...) does. The callee
    stays on the line until the bot hangs up (or refuses the call). Like Asterisk, a dial goes on when the
    dialler that asked for it goes away."""

    def __init__(self, ring_s: dict[str, float] | None = None):
        super().__init__()
        self.port = 0
        self.ring_s = ring_s or {}
        self.numbers: dict[str, str] = {}
        """CALL_UUID -> the number dialled."""
        self.peers: dict[str, Peer] = {}
        self._tasks: set[asyncio.Task] = set()

    def dials(self, number: str) -> int:
        return sum(n == number for n in self.numbers.values())

    async def _originate(self, send, writer, aid, channel):
        number = channel.split("/")[1].split("@")[0]
        call_uuid = dict(v.split("=", 1) for v in self.actions[-1]["Variable"])["CALL_UUID"]
        self.numbers[call_uuid] = number
        send(("Response", "Success"), ("ActionID", aid), ("Message", "Originate successfully queued"))
        task = asyncio.get_running_loop().create_task(self._answer(send, aid, number, call_uuid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, send, aid, number, call_uuid):
        await asyncio.sleep(self.ring_s.get(number, 0.05))
        with contextlib.suppress(ConnectionError, RuntimeError):  # the dialler that asked may be gone
            send(("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"), ("Reason", "4"),
                 ("Channel", f"PJSIP/{number}"), ("Uniqueid", "1700000000.9"))
        peer = self.peers[call_uuid] = await Peer.connect(self.port, uuid.UUID(call_uuid))
        await peer.closed


class TakesCalls:
    """The call loop's record keeping without its models: takes the dialler's row by CALL_UUID (a withdrawn
    call is hung up at once), then does what `plan[number]` says: "talk" (a turn, then an outcome with a
    callback), "hold" (talk once `release` is set), "stall" (take only once `release` is set: a daemon too
    slow to take the call), "lost" (the daemon dies before the first turn: its restart closes the record
    interrupted) or "lost_after_turn"."""

    def __init__(self, path, pbx: BridgingPbx, plan: dict[str, str]):
        self.records = Records.open(path)
        self.pbx, self.plan = pbx, plan
        self.release = asyncio.Event()
        self.withdrawn: list[str] = []

    async def handle(self, call):
        what = self.plan[self.pbx.numbers[call.call_id]]
        if what == "stall":
            await self.release.wait()
        try:
            call_id = self.records.start_call({}, "s", 1, STAMP, call_id=call.call_id)
        except CallWithdrawnError:
            self.withdrawn.append(call.call_id)
            await call.hangup()
            return
        if what == "hold":
            await self.release.wait()
        if what != "lost":
            self.records.db["turns"].insert({"call_id": call_id, "idx": 0, "caller": "喂"})
        if what.startswith("lost"):
            with self.records.db.atomic():
                close_interrupted(self.records.db, [call_id], "2025-03-05T10:01:00+08:00")
        else:
            self.records.finish_call(call_id, report(call_id))
        await call.hangup()


@contextlib.asynccontextmanager
async def line(tmp_path, plan: dict[str, str], ring_s: dict[str, float] | None = None, **server):
    """A daemon whose handler is TakesCalls(plan), a bridging PBX, and the dialler's records (same calls.db)."""
    config = config_for(tmp_path, **server)
    path = config.data.dir / "calls.db"
    config.data.dir.mkdir(parents=True)
    records = Records.open(path)
    async with BridgingPbx(ring_s) as pbx:
        handler = TakesCalls(path, pbx, plan)
        async with running(config, handler) as daemon:
            assert daemon.context.records_path == path
            pbx.port = daemon.ports["audiosocket"]
            yield records, pbx, handler, daemon
        for peer in pbx.peers.values():
            with contextlib.suppress(Exception):
                await peer.hangup()


def campaign_of(records, tmp_path, plan, **settings):
    return setup(records, tmp_path, [(number, what, "", "") for number, what in plan.items()],
                 {"handoff_timeout_s": TAKE_S, **settings})


async def dialler(records, pbx, **placer):
    client = await AmiClient.connect(pbx.uri, "salesbot", "good")
    campaign = campaigns.get(records.db, "三月华东")
    return client, CampaignRunner(records, "三月华东", AmiCallPlacer(records, campaign, client, **placer))


def call_of(records, pbx, number, nth=0):
    call_uuid = [u for u, n in pbx.numbers.items() if n == number][nth]
    return records.db["calls"].get(call_uuid)


async def one_round(tmp_path, plan):
    """One dialling round of a campaign over `plan` against the daemon -> (records, pbx, summary)."""
    async with line(tmp_path, plan) as (records, pbx, _handler, daemon):
        campaign_of(records, tmp_path, plan)
        client, runner = await dialler(records, pbx)
        summary = await runner.run(WEDNESDAY_10)
        await client.close()
        await daemon.ledger.flush()
        return records, pbx, summary


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_the_fence_between_the_dialler_writing_a_call_off_and_the_bot_taking_it(tmp_path):
    records = Records.open(tmp_path / "calls.db")
    daemon = Records.open(tmp_path / "calls.db")  # the daemon's own connection, as in its own process
    slow = records.start_call({}, "s", 0, STAMP, call_id="slow", placer="ami")
    quick = records.start_call({}, "s", 0, STAMP, call_id="quick", placer="ami")
    assert records.db["calls"].get(slow)["dialled_at"], "the wall clock of the dial, for a restarted dialler"
    assert withdraw(records.db, slow, STAMP)
    with pytest.raises(CallWithdrawnError, match="books the lead for a retry"):
        daemon.start_call({}, "s", 1, STAMP, call_id=slow)
    assert daemon.start_call({}, "s", 1, STAMP, call_id=quick) == quick
    assert not withdraw(records.db, quick, STAMP), "taken first: the dialler books what the bot records"
    states = read(records.db, [slow, quick])
    assert (states[slow].taken, states[slow].closed) == (False, True)
    assert (states[quick].taken, states[quick].closed) == (True, False)
    assert records.db["calls"].count == 2 and records.db["turns"].count == 0


def test_the_verdict_counts_a_lead_as_talked_only_from_the_records(tmp_path):
    records = Records.open(tmp_path / "calls.db")
    ids = {name: records.start_call({}, "s", 0, STAMP, call_id=name, placer="ami")
           for name in ("finished", "empty_finish", "cut_after_turn", "cut_before_turn", "untaken", "hung")}
    daemon = Records.open(tmp_path / "calls.db")
    for name in ids:
        if name != "untaken":
            daemon.start_call({}, "s", 1, STAMP, call_id=name)
    for name in ("finished", "cut_after_turn"):
        daemon.db["turns"].insert({"call_id": name, "idx": 0, "caller": "喂"})
    daemon.finish_call("finished", report("finished"))
    daemon.finish_call("empty_finish", report("empty_finish", "incomplete"))  # hung up during the greeting
    with daemon.db.atomic():
        close_interrupted(daemon.db, ["cut_after_turn", "cut_before_turn"], STAMP)
    judged = {name: verdict(state) for name, state in read(records.db, list(ids)).items()}
    assert {name: (v.disposition, v.why) for name, v in judged.items()} == {
        "finished": ("answered", "recorded"), "empty_finish": ("answered", "recorded"),
        "cut_after_turn": ("answered", "cut_after_turns"), "cut_before_turn": (HANDOFF_FAILED, "interrupted"),
        "untaken": (HANDOFF_FAILED, "not_taken"), "hung": (HANDOFF_FAILED, "no_outcome")}
    assert judged["finished"].report["outcome"] == "callback_booked" and judged["cut_after_turn"].report is None


def test_a_call_the_daemon_takes_and_finishes_is_booked_with_its_outcome_and_not_dialled_again(tmp_path):
    plan = {"13800138000": "talk"}

    records, pbx, summary = run(one_round(tmp_path, plan))
    lead = lead_rows(records)["talk"]
    assert (lead["status"], lead["grade"], lead["last_result"]) == ("callback", "B", "callback_booked")
    assert lead["next_at"] == "2025-03-06T02:00:00+00:00", "the callback the lead booked with the bot"
    assert summary.outcomes == {"callback_booked": 1} and pbx.dials("13800138000") == 1
    row = call_of(records, pbx, "13800138000")
    assert row["disposition"] == "answered" and json.loads(row["detail"])["handoff"] == "recorded"
    assert row["taken_at"] and records.db["outcomes"].count == 1


def test_an_answered_call_the_daemon_does_not_take_in_time_is_retried_later_and_the_wait_is_bounded(tmp_path):
    """The daemon is too slow: the dialler writes the call off after handoff_timeout_s, books a retry by the
    campaign's rules, and the bot hangs up when the call reaches it at last. The next run talks."""
    plan = {"13800138000": "stall"}

    async def main():
        async with line(tmp_path, plan) as (records, pbx, handler, _daemon):
            campaign_of(records, tmp_path, plan)
            client, runner = await dialler(records, pbx)
            started = time.monotonic()
            first = await runner.run(WEDNESDAY_10)
            waited = time.monotonic() - started
            after_first = dict(lead_rows(records)["stall"])
            handler.release.set()  # the daemon gets to the call at last
            await asyncio.sleep(0.3)
            nothing_due = await runner.run(WEDNESDAY_10 + timedelta(minutes=5))
            second = await runner.run(WEDNESDAY_10 + timedelta(minutes=11))
            await client.close()
            return records, pbx, handler, first, waited, after_first, nothing_due, second

    records, pbx, handler, first, waited, after_first, nothing_due, _second = run(main())
    assert first.dispositions == {HANDOFF_FAILED: 1} and TAKE_S <= waited < TAKE_S + 3
    assert (after_first["status"], after_first["last_result"]) == ("retry", HANDOFF_FAILED)
    due = datetime.fromisoformat(after_first["next_at"]) - WEDNESDAY_10
    assert timedelta(minutes=10) <= due < timedelta(minutes=11), "the campaign's handoff_failed rule"
    late = call_of(records, pbx, "13800138000")
    assert handler.withdrawn == [late["id"]] and not late["taken_at"], "the late call was hung up, not taken"
    assert records.db["turns"].count_where("call_id = ?", [late["id"]]) == 0
    assert json.loads(late["detail"])["handoff"] == "not_taken"
    assert nothing_due.placed == 0 and pbx.dials("13800138000") == 2
    lead = lead_rows(records)["stall"]
    assert (lead["status"], lead["attempts"], lead["grade"]) == ("callback", 2, "B"), "retried, then talked"


def test_a_call_the_daemon_refuses_is_retried_and_the_one_it_runs_is_booked(tmp_path):
    plan = {"13800138000": "hold", "13900139000": "talk"}  # the second reaches a full daemon

    async def main():
        async with line(tmp_path, plan, {"13900139000": 0.4}, max_calls=1) as (records, pbx, handler, daemon):
            campaign_of(records, tmp_path, plan)
            client, runner = await dialler(records, pbx)
            task = asyncio.create_task(runner.run(WEDNESDAY_10))
            while lead_rows(records)["talk"]["status"] in ("pending", "in_call"):
                await asyncio.sleep(0.05)
            held = lead_rows(records)["hold"]["status"]
            handler.release.set()
            summary = await task
            await client.close()
            await daemon.ledger.flush()
            return records, pbx, daemon, summary, held

    records, pbx, daemon, summary, held = run(main())
    leads = lead_rows(records)
    assert held == "in_call", "a live conversation keeps its lead out of the dialling"
    assert (leads["talk"]["status"], leads["talk"]["last_result"]) == ("retry", HANDOFF_FAILED)
    assert (leads["hold"]["status"], leads["hold"]["grade"]) == ("callback", "B")
    assert summary.dispositions == {"answered": 1, HANDOFF_FAILED: 1}
    refused = call_of(records, pbx, "13900139000")["id"]
    assert pbx.peers[refused].got_hangup and refused not in {r["call_id"] for r in read_ledger(daemon.ledger.path)}
    assert pbx.dials("13800138000") == 1 and pbx.dials("13900139000") == 1


def test_a_call_lost_before_the_first_turn_is_retried_one_lost_after_it_is_not(tmp_path):
    plan = {"13800138000": "lost", "13900139000": "lost_after_turn"}

    records, pbx, summary = run(one_round(tmp_path, plan))
    leads = lead_rows(records)
    assert (leads["lost"]["status"], leads["lost"]["last_result"]) == ("retry", HANDOFF_FAILED)
    assert json.loads(call_of(records, pbx, "13800138000")["detail"])["handoff"] == "interrupted"
    assert (leads["lost_after_turn"]["status"], leads["lost_after_turn"]["last_result"]) == ("done", "answered")
    assert summary.dispositions == {"answered": 1, HANDOFF_FAILED: 1} and len(pbx.numbers) == 2


def test_a_taken_call_that_never_ends_is_booked_from_its_turns_after_the_talk_timeout(tmp_path):
    plan = {"13800138000": "hold"}  # taken, then the daemon hangs: no turn, no outcome, no end

    async def main():
        async with line(tmp_path, plan) as (records, pbx, handler, _daemon):
            campaign_of(records, tmp_path, plan)
            client, runner = await dialler(records, pbx, talk_timeout_s=1.0)
            started = time.monotonic()
            summary = await runner.run(WEDNESDAY_10)
            waited = time.monotonic() - started
            await client.close()
            handler.release.set()
            return records, summary, waited

    records, summary, waited = run(main())
    assert summary.dispositions == {HANDOFF_FAILED: 1} and waited < 4
    assert lead_rows(records)["hold"]["last_result"] == HANDOFF_FAILED


def test_a_restarted_dialler_follows_calls_still_live_instead_of_dialling_their_leads_again(tmp_path):
    """The dialler dies with one call in conversation and one still ringing at the PBX. The restarted
    dialler dials neither lead again: it follows both (the ring is answered into the daemon after the
    restart) and books each from its outcome."""
    plan = {"13800138000": "hold", "13900139000": "talk"}

    async def main():
        async with line(tmp_path, plan, {"13900139000": 1.5}) as (records, pbx, handler, _daemon):
            campaign_of(records, tmp_path, plan)
            client, runner = await dialler(records, pbx)
            dead = asyncio.create_task(runner.run(WEDNESDAY_10))
            watch = HandoffWatch(records.db)
            held = [u for u, n in pbx.numbers.items() if n == "13800138000"]
            while not held:
                await asyncio.sleep(0.02)
                held = [u for u, n in pbx.numbers.items() if n == "13800138000"]
            await watch.wait(held[0], lambda h: h.taken, 5)
            dead.cancel()  # the dialler dies (its AMI connection with it); the PBX rings on
            with contextlib.suppress(asyncio.CancelledError):
                await dead
            await client.close()
            client, runner = await dialler(records, pbx)
            restarted = asyncio.create_task(runner.run(WEDNESDAY_10))
            await asyncio.sleep(2.0)  # the ring is answered into the daemon meanwhile
            handler.release.set()
            summary = await restarted
            await client.close()
            return records, pbx, summary, runner

    records, pbx, summary, _runner = run(main())
    assert pbx.dials("13800138000") == 1 and pbx.dials("13900139000") == 1, "no lead dialled twice"
    leads = lead_rows(records)
    assert (leads["hold"]["status"], leads["hold"]["grade"]) == ("callback", "B")
    assert (leads["talk"]["status"], leads["talk"]["grade"]) == ("callback", "B")
    assert summary.dispositions == {"answered": 2} and records.db["outcomes"].count == 2


def test_the_call_loop_hangs_up_a_call_the_dialler_withdrew_without_a_word(voice_cache, tmp_path):
    from edge.calls.session import CallLoop
    from edge.telephony.simulator import CallSimulator, Silence
    from tests.fakes import voice_runtime

    records = Records.open(tmp_path / "calls.db")
    withdrawn = records.start_call({}, "s", 0, STAMP, call_id=str(uuid.uuid4()), placer="ami")
    assert withdraw(records.db, withdrawn, STAMP)
    runtime = voice_runtime(voice_cache)
    try:
        loop = CallLoop(runtime, Records.open(tmp_path / "calls.db"))
        result = run(CallSimulator([Silence(3.0)], call_id=withdrawn).run(loop))
    finally:
        runtime.close()
    assert result.end_reason.value == "local_hangup" and result.duration_s < 0.5
    assert not result.bot_audio.any(), "not a word to a lead the dialler will call again"
    assert loop.results[withdrawn].report["outcome"] == WITHDRAWN
    assert records.db["calls"].count == 1 and records.db["turns"].count == 0 and records.db["outcomes"].count == 0
