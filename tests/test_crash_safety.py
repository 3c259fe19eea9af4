"""Crash safety of calls.db: writers in several processes, the restart after kill -9 (ledger and call
records), the dialler's recovery; and benchmarks/crash.py at a small size (slow)."""

import argparse
import asyncio
import json
import sqlite3
import threading
import time

import pytest

from edge.calls import Records
from edge.calls.ledger import INTERRUPTED, CallLedger, CallStart, read_ledger
from edge.calls.records import MIGRATIONS
from edge.storage import open_database
from tests.test_campaign_runner import (
    CALLERS,
    WEDNESDAY_10,
    lead_rows,
    setup,
    text_runner,
)


def report(outcome="meeting_booked", ended_at="2025-03-05T10:03:00+08:00"):
    return {"ended_at": ended_at, "outcome": outcome, "grade": "A", "dnc": False, "transferred": False,
            "decision_maker": True, "objections": [], "slots": {}, "tasks": []}


def test_a_write_that_reads_first_waits_for_another_writer_instead_of_failing(tmp_path):
    """WAL fails a deferred transaction at once ("database is locked") when another connection commits
    between its read and its write; write transactions take the lock first, so they queue."""
    path = tmp_path / "calls.db"
    mine = open_database(path, MIGRATIONS)
    mine["leads"].insert({"id": 1, "name": "a"})
    other_done = threading.Event()

    def other_writer():
        other = open_database(path, MIGRATIONS)  # another process, in effect
        other["leads"].insert({"id": 2, "name": "b"})
        other.close()
        other_done.set()

    with mine.atomic():
        assert mine.execute("select name from leads where id = 1").fetchone()[0] == "a"
        thread = threading.Thread(target=other_writer)
        thread.start()
        time.sleep(0.2)  # the other writer is waiting for the lock now, not committing in between
        mine["leads"].update(1, {"name": "a2"})
    thread.join(15)
    assert other_done.is_set()
    assert dict(mine.execute("select id, name from leads").fetchall()) == {1: "a2", 2: "b"}


def test_restart_after_a_kill_closes_the_records_of_calls_in_flight(tmp_path):
    path = tmp_path / "calls.db"
    records = Records.open(path)
    records.start_call({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id="cut-off")
    records.start_call({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id="finished")
    records.finish_call("finished", report())

    async def crash():  # rows started, never ended: the process died
        ledger = CallLedger(path)
        await ledger.open()
        for call_id in ("cut-off", "finished", "echo-only"):
            ledger.start(CallStart(call_id, "audiosocket", handler="call loop"))
        await ledger.flush()

    async def restart():
        ledger = CallLedger(path)
        count = await ledger.open()
        await ledger.close()
        return count

    asyncio.run(crash())
    assert asyncio.run(restart()) == 3
    rows = {row["call_id"]: row for row in read_ledger(path)}
    assert all(row["ended_at"] and row["end_reason"] == INTERRUPTED for row in rows.values())
    assert rows["cut-off"]["outcome"] == INTERRUPTED and rows["echo-only"]["outcome"] == INTERRUPTED
    assert rows["finished"]["outcome"] == "meeting_booked", "only the ledger's end row was lost"
    cut = records.report("cut-off")
    assert cut["outcome"] == INTERRUPTED and cut["turns_kept"] == 0
    assert records.db["calls"].get("cut-off")["ended_at"] and records.report("finished")["outcome"] == "meeting_booked"
    assert asyncio.run(restart()) == 0, "nothing left to recover the second time"


def test_calls_started_on_the_loop_while_the_writer_thread_finishes_others_all_land(tmp_path):
    # The daemon starts a call's record on its event loop and queues the rest on the writer thread: one
    # connection, two threads. Unserialised, their transactions interleaved ("no such savepoint").
    records = Records.open(tmp_path / "calls.db", background=True)
    for i in range(150):
        records.start_call({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id=f"c{i}")
        records.submit(records.finish_call, f"c{i}", report())
    records.close()
    again = Records.open(tmp_path / "calls.db")
    assert again.db.execute("select count(*) from outcomes").fetchone()[0] == 150


def test_the_voice_loop_records_into_the_dialler_row_of_its_call_uuid(tmp_path):
    records = Records.open(tmp_path / "calls.db")
    placed = records.start_call({}, "s", 0, "2025-03-05T10:00:00+08:00", call_id="uuid-1", placer="ami")
    assert records.start_call({}, "s", 1, "2025-03-05T10:00:01+08:00", call_id="uuid-1") == placed
    assert records.db["calls"].count == 1
    records.finish_call(placed, report())
    again = records.start_call({}, "s", 1, "2025-03-05T10:09:00+08:00", call_id="uuid-1")  # a replayed id
    assert again != placed and records.db["calls"].count == 2


@pytest.fixture
def callers(tmp_path):
    from edge.calls.callers import CallerBook

    folder = tmp_path / "callers"
    folder.mkdir()
    for name, text in CALLERS.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return CallerBook.load(folder)


def test_a_dialler_restart_books_finished_calls_and_dials_no_lead_twice(tmp_path, callers):
    records = Records.open(tmp_path / "calls.db")
    campaign = setup(records, tmp_path, [("13800138000", "finished", "meeting", ""),
                                         ("13900139000", "queued", "meeting", ""),
                                         ("13700137000", "cut", "meeting", ""),
                                         ("13600136000", "talked", "meeting", "")])
    ids = {name: row["id"] for name, row in lead_rows(records).items()}
    records.db.execute("update leads set status = 'in_call', attempts = 1")  # claimed by the dead dialler
    done = records.start_call({}, "s", 1, "2025-03-05T09:59:00+08:00", lead_id=ids["finished"],
                              campaign_id=campaign.id, attempt=1, placer="text-simulator")
    records.finish_call(done, report())  # the conversation was recorded, the lead not yet booked
    cut = records.start_call({}, "s", 1, "2025-03-05T09:59:00+08:00", lead_id=ids["cut"],
                             campaign_id=campaign.id, attempt=1, placer="text-simulator")
    talked = records.start_call({}, "s", 1, "2025-03-05T09:59:00+08:00", lead_id=ids["talked"],
                                campaign_id=campaign.id, attempt=1, placer="ami")
    records.db["turns"].insert({"call_id": talked, "idx": 0, "caller": "喂"})  # the voice loop's first turn
    runner = text_runner(records, "三月华东", callers)
    assert runner.recover(WEDNESDAY_10) == 4
    leads = lead_rows(records)
    assert (leads["finished"]["status"], leads["finished"]["grade"]) == ("done", "A")
    assert (leads["queued"]["status"], leads["queued"]["attempts"]) == ("pending", 0), "never dialled"
    assert (leads["cut"]["status"], leads["cut"]["last_result"]) == ("retry", "failed")
    assert records.report(cut)["outcome"] == INTERRUPTED and records.db["calls"].get(cut)["disposition"] == "failed"
    assert (leads["talked"]["status"], leads["talked"]["last_result"]) == ("done", "answered"), "it talked: no redial"
    assert records.db["outcomes"].count_where("call_id = ?", [talked]) == 0, "the daemon finishes that record"
    asyncio.run(asyncio.wait_for(runner.run(WEDNESDAY_10), 60))
    dials = dict(records.db.execute("select lead_id, count(*) from calls group by lead_id").fetchall())
    assert dials == {ids["finished"]: 1, ids["queued"]: 1, ids["cut"]: 2, ids["talked"]: 1}
    assert lead_rows(records)["queued"]["attempts"] == 1


@pytest.mark.slow
def test_kill_9_during_live_campaign_calls_then_restart(tmp_path):
    from benchmarks.crash import options, passed, run_crash

    # calls of 1 and 2 turns: the calls of one length end together, the others keep the trunk full
    opts: argparse.Namespace = options(["--calls", "10", "--leads", "16", "--turns", "2", "--synthetic-audio",
                                        "--reply-timeout-s", "3", "--greet-wait-s", "1", "--quiet-ms", "500",
                                        "--down-s", "1", "--settle-s", "0", "--phase-timeout-s", "120",
                                        "--ring-timeout-s", "15"])
    result = run_crash(opts, tmp_path)
    assert result["calls_live_at_kill"] >= 5 and result["ended_before_kill"] >= 2, result
    assert passed(result), result


def test_the_disk_filling_up_mid_run_refuses_calls_says_why_and_corrupts_nothing(tmp_path):
    """Real write failures (SQLite "database or disk is full", by capping the ledger file's pages), not the
    free-space threshold: the next call is refused, /health names the cause, and once space is back calls
    are taken again; the file passes integrity_check and the rows written before are intact."""
    from tests.daemon_peers import Peer, admin_get, config_for
    from tests.test_daemon import run, running

    async def main():
        async with running(config_for(tmp_path)) as daemon:
            port = daemon.ports["audiosocket"]
            first = await Peer.connect(port)
            await first.stream(0.2)
            await first.hangup()
            await daemon.ledger.flush()
            def on_ledger_thread(sql):  # the ledger's own connection, on its writer thread
                return asyncio.get_running_loop().run_in_executor(
                    daemon.ledger._executor, lambda: daemon.ledger._db.execute(sql).fetchone())

            pages = (await on_ledger_thread("pragma page_count"))[0]
            await on_ledger_thread(f"pragma max_page_count = {pages}")  # cap the file at the pages it has now
            fillers = 0
            while not daemon.ledger.error and fillers < 60:  # calls are taken until a row does not fit
                filler = await Peer.connect(port)
                await filler.stream(0.04)
                await filler.hangup()
                await daemon.ledger.flush()
                fillers += 1
            refused = await Peer.connect(port)
            await refused.wait_closed()
            status, body = await admin_get(daemon, "/health")
            await on_ledger_thread("pragma max_page_count = 1073741823")  # space is back
            await daemon.health_monitor.refresh()
            again = await Peer.connect(port)
            await again.stream(0.2)
            await again.hangup()
        return daemon, first, refused, again, status, json.loads(body)

    daemon, first, refused, again, status, health = run(main(), timeout=60)
    assert refused.got_hangup and refused.audio_frames == 0
    assert status == 503 and not health["checks"]["records"]["ok"]
    assert "full" in health["checks"]["records"]["detail"] and "disk" in health["checks"]["records"]["detail"]
    rows = {row["call_id"]: row for row in read_ledger(daemon.ledger.path)}
    assert rows[str(first.call_id)]["outcome"] == "caller_hangup" and rows[str(again.call_id)]["ended_at"]
    assert str(refused.call_id) not in rows
    db = sqlite3.connect(str(daemon.ledger.path))
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
