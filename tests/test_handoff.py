"""The dialler and the daemon hand a call over in calls.db (edge/calls/handoff.py): the call loop takes a
dialler's row only while it is open, the dialler writes off only a row not taken, the verdict counts a lead as
talked only from the records, and the call loop hangs up a call the dialler withdrew without a word."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from edge.calls import Records
from edge.calls.handoff import HANDOFF_FAILED, WITHDRAWN, read, verdict, withdraw
from edge.calls.records import close_interrupted
from edge.errors import CallWithdrawnError

STAMP = "2025-03-05T10:00:00+08:00"


def report(call_id: str, outcome: str = "callback_booked") -> dict:
    return {"call_id": call_id, "ended_at": "2025-03-05T10:02:00+08:00", "outcome": outcome, "grade": "B",
            "dnc": False, "transferred": False, "decision_maker": True, "objections": [], "slots": {},
            "tasks": [{"kind": "callback", "due": "2025-03-06T10:00:00+08:00", "channel": "phone",
                       "contact": None}]}


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
