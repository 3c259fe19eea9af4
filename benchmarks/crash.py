"""Crash safety: kill -9 `salesbot serve` and the campaign dialler during N live calls, restart, check the records.

A campaign of leads is dialled by `salesbot campaign run NAME --ami ...` (the real runner and AMI placer)
through a stand-in Asterisk (benchmarks/pbx.py): each answered dial is bridged to the daemon's AudioSocket
with CALL_UUID, and a scripted callee (benchmarks.calls.Caller, 1-4 turns) talks to the call loop. The
trunk carries N calls at once. Once N calls are live and some have ended, the daemon and the dialler are
both killed with SIGKILL (a box crash: no shutdown code runs). Then the daemon starts again, the dialler
runs the campaign again, and the dialling finishes. Reported:

Counted from the daemon's side (its ledger as the killed process left it, and its log):

- ended before the kill, recorded: calls the daemon had finished (ledger row ended); after the restart
  the row is unchanged and the call loop's record of the same call id has its end and an outcome;
- in flight at the kill, marked interrupted: calls the daemon had taken and not finished (whether or not
  the caller had already hung up); after the restart the ledger row has an end time and end reason
  `interrupted`, and the call record is closed (an `interrupted` outcome, its turns kept; or, when the
  call loop had recorded it to the end and only the ledger's end row was still queued, that outcome);
- lost: calls the killed daemon logged as started that have no ledger row after the restart;
  half-written: ledger rows or call records left open;
- double-dialled: leads that talked with the bot more than once (the stand-in PBX keeps every dial; a dial
  talked when its call record has a turn or an outcome the call loop wrote: a call cut off before the lead
  said a word is retried, and the lead talks once); dialled while live: leads dialled while another call to
  them was up; re-dialled after a ring the kill cut off are counted apart (that dial never reached the bot);
- never talked, booked as talked: leads whose calls never talked with the bot (answered at the PBX but not
  taken, refused, cut off before a turn) that the dialler booked as answered instead of retrying them;
- PRAGMA integrity_check of calls.db, and where every lead ended up.

The dialler books an answered call only from the daemon's records (edge/calls/handoff.py) and holds its place
among the campaign's max_concurrent calls until then, so the campaign here allows DIALLER_ROOM times the trunk
(rings queue for a line at the stand-in PBX, which keeps the trunk full until the kill, as before). Calls it
books handoff_failed are retried after the campaign's retry delay: the dialler is started again at the time
they are due (its --now), up to --retry-rounds times, as its timer would.

    python benchmarks/crash.py                  # 50 live calls, 150 leads
    python benchmarks/crash.py --calls 10       # quick look

Writes benchmarks/results/crash.json and crash.md. Linux only; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import calls  # noqa: E402
from benchmarks.common import machine, write  # noqa: E402
from benchmarks.pbx import SECRET, Callee, StandInPbx  # noqa: E402
from edge.calls.handoff import WITHDRAWN  # noqa: E402
from edge.calls.ledger import read_ledger  # noqa: E402

CAMPAIGN = "crash"
NOW = "2025-03-05T10:00"
"""A Wednesday inside the default calling hours: the dialler's clock (`--now`)."""
KILLED_LOG = "serve-killed.log"
DAEMON_ROOM = 2
"""The daemon's max_calls is about this many times the trunk: calls whose callers hung up can take a while
to wind up on a loaded box, and refusing new ones then is admission control, not what this measures."""
DIALLER_ROOM = 2
"""The campaign's max_concurrent is this many times the trunk: a dial holds its place until the daemon has
recorded how the call ended, so calls ringing for a free line need places of their own."""
ZONE = "Asia/Shanghai"


def setup_campaign(db_path: Path, leads: int, concurrent: int, ring_timeout_s: float) -> list[str]:
    """A campaign with `leads` leads; returns their national numbers."""
    from edge.calls import Records
    from edge.calls import campaign as campaigns
    from edge.calls.leads import import_leads

    numbers = [f"1380013{n:04d}" for n in range(leads)]
    records = Records.open(db_path)
    try:
        campaign = campaigns.create(records.db, CAMPAIGN, {"sender": "智销云", "holidays": "none",
                                                           "max_concurrent": min(200, DIALLER_ROOM * concurrent),
                                                           "ring_timeout_s": ring_timeout_s}, actor="benchmark")
        path = db_path.parent / "leads.csv"
        path.write_text("phone,name,company\n" + "".join(f"{n},客户{i},公司{i}\n" for i, n in enumerate(numbers)),
                        encoding="utf-8")
        import_leads(records.db, campaign.id, campaign.name, path)
    finally:
        records.close()
    return numbers


def start_dialler(db_path: Path, ami_uri: str, log: Path, now: str = NOW) -> subprocess.Popen:
    command = [sys.executable, "-m", "edge.cli", "campaign", "run", CAMPAIGN, "--ami", ami_uri, "--now", now,
               "--records", str(db_path), "--json"]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "SALESBOT_AMI_SECRET": SECRET})


def events_of(log: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a daemon (a killed one's last line may be cut off)."""
    events = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def retries_due(db_path: Path) -> str | None:
    """When every lead waiting for a retry is due (local time, for --now), or None if none waits."""
    from zoneinfo import ZoneInfo

    db = sqlite3.connect(str(db_path))
    try:
        due = db.execute("select max(next_at) from leads where status = 'retry'").fetchone()[0]
    finally:
        db.close()
    if due is None:
        return None
    return datetime.fromisoformat(due).astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")


async def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:g} s")
        await asyncio.sleep(0.05)


async def scenario(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Dial, kill -9, restart, finish; returns what the stand-in PBX saw and the database afterwards."""
    data = workdir / "data"
    data.mkdir(parents=True)
    db_path = data / "calls.db"
    numbers = setup_campaign(db_path, opts.leads, opts.calls, opts.ring_timeout_s)
    turn_frames, noise, how = calls.callee_frames(opts.turns, opts.synthetic_audio)
    index = {number: i for i, number in enumerate(numbers)}

    def make_callee(number: str, call_uuid: str) -> Callee:
        turns = 1 + index[number] % len(turn_frames)  # calls of different lengths end at different times
        return Callee(call_uuid, turn_frames[:turns], noise, opts)

    pbx = StandInPbx(make_callee, ring_s=lambda number: 0.3 + (index[number] % 5) * 0.2, trunk=opts.calls)
    await pbx.start()
    load_before = round(os.getloadavg()[0], 2)
    daemon = calls.Daemon(data, DAEMON_ROOM * opts.calls, opts.handler, opts.start_timeout_s)
    dialler = None
    try:
        pbx.audiosocket_port = daemon.port
        dialler = start_dialler(db_path, pbx.uri, workdir / "dialler-killed.log")
        kill_after = max(1, opts.calls // 5)
        closed: list[int] = [0]

        async def poll_ledger() -> None:
            while True:
                rows = await asyncio.to_thread(read_ledger, db_path)
                closed[0] = sum(1 for row in rows if row["ended_at"])
                await asyncio.sleep(0.5)

        poller = asyncio.get_running_loop().create_task(poll_ledger())
        try:
            # the trunk full (give or take a call being replaced) and some calls finished by the daemon
            await wait_until(lambda: len(pbx.talking) >= opts.calls - max(1, opts.calls // 25)
                             and closed[0] >= kill_after,
                             opts.phase_timeout_s, f"{opts.calls} live calls with {kill_after} finished by the daemon")
        except TimeoutError as exc:  # say what was seen instead
            results = [d.result for d in pbx.dials]
            raise TimeoutError(f"{exc} (at the end: {len(pbx.dials)} dials, {results.count('talking')} talking, "
                               f"{results.count('ringing')} ringing, {closed[0]} finished by the daemon)") from None
        finally:
            poller.cancel()
        await asyncio.sleep(opts.settle_s)
        # SIGKILL: a box crash, no shutdown code runs (--abort: SIGABRT, whose faulthandler dump shows
        # what every thread of the daemon was doing at that moment; for diagnosis)
        daemon.proc.send_signal(signal.SIGABRT if opts.abort else signal.SIGKILL)
        dialler.kill()
        killed_at = time.monotonic()
        snapshot = {d.call_uuid: d.result for d in pbx.dials}
        daemon.proc.wait(10)
        dialler.wait(10)
        at_kill = {row["call_id"]: row for row in read_ledger(db_path)}  # what the dead daemon left
        taken = {e["call_id"] for e in events_of(daemon.log) if e.get("event") == "call_start"}
        daemon.log.rename(workdir / KILLED_LOG)
        killed_events = events_of(workdir / KILLED_LOG)
        await wait_until(lambda: not any(r == "talking" for r in (d.result for d in pbx.dials)), 10,
                         "the killed daemon's calls to close")
        await asyncio.sleep(opts.down_s)  # dials still ringing reach a dead daemon, as they would
        daemon = calls.Daemon(data, DAEMON_ROOM * opts.calls, opts.handler, opts.start_timeout_s)
        pbx.audiosocket_port = daemon.port
        dialler = start_dialler(db_path, pbx.uri, workdir / "dialler.log")
        await wait_until(lambda: dialler.poll() is not None and not pbx.busy, opts.phase_timeout_s,
                         "the resumed campaign to finish")
        retry_rounds = []
        for n in range(opts.retry_rounds):  # the dialler's next starts, when the retries it booked are due
            due = retries_due(db_path)
            if due is None:
                break
            retry_rounds.append({"now": due, "dials_before": len(pbx.dials)})
            dialler = start_dialler(db_path, pbx.uri, workdir / f"dialler-retry{n + 1}.log", due)
            await wait_until(lambda d=dialler: d.poll() is not None and not pbx.busy, opts.phase_timeout_s,
                             f"retry round {n + 1} to finish")
            retry_rounds[-1]["dials"] = len(pbx.dials) - retry_rounds[-1].pop("dials_before")
        restart_events = events_of(daemon.log)
    finally:
        if dialler is not None and dialler.poll() is None:
            dialler.kill()
        exit_code = daemon.stop() if daemon.proc.poll() is None else daemon.proc.returncode
        await pbx.stop()
    return {"pbx": pbx, "snapshot": snapshot, "killed_at": killed_at, "db": db_path, "numbers": numbers,
            "at_kill": at_kill, "taken": taken,
            "taken_after": {e["call_id"] for e in restart_events if e.get("event") == "call_start"},
            "refused": sum(e.get("event") == "call_refused" for e in killed_events + restart_events),
            "handler": daemon.ready.get("handler"), "audio": how, "exit_code": exit_code,
            "dialler_exit": dialler.returncode, "retry_rounds": retry_rounds,
            "load_avg_1m": {"before": load_before,
                                                                 "after": round(os.getloadavg()[0], 2)},
            "interrupted_event": next((e for e in restart_events if e.get("event") == "calls_interrupted"), None)}


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    """Counts for the table, from the stand-in PBX's dials and calls.db after the restart."""
    from edge.calls.ledger import INTERRUPTED

    pbx: StandInPbx = run["pbx"]
    ledger = {row["call_id"]: row for row in read_ledger(run["db"])}
    db = sqlite3.connect(str(run["db"]))
    try:
        records = {row[0]: {"ended_at": row[1], "outcome": row[2], "turns": row[3], "disposition": row[4]}
                   for row in db.execute(
            "select c.id, c.ended_at, o.outcome, (select count(*) from turns t where t.call_id = c.id), "
            "c.disposition from calls c left join outcomes o on o.call_id = c.id")}
        integrity = db.execute("pragma integrity_check").fetchone()[0]
        leads = dict(db.execute("select status, count(*) from leads group by status").fetchall())
        lead_state = {row[0][-11:]: (row[1], row[2]) for row in db.execute(
            "select e164, status, last_result from leads")}
        dispositions = dict(db.execute("select disposition, count(*) from calls group by 1").fetchall())
        campaign_status = db.execute("select status from campaigns where name = ?", [CAMPAIGN]).fetchone()[0]
    finally:
        db.close()
    with_records = "call loop" in (run["handler"] or "")
    at_kill: dict[str, dict[str, Any]] = run["at_kill"]
    finished = [cid for cid, row in at_kill.items() if row["ended_at"]]  # the daemon had finished these
    in_flight = [cid for cid, row in at_kill.items() if not row["ended_at"]]
    before = [d for d in pbx.dials if d.connected_at is not None and d.connected_at < run["killed_at"]]

    def recorded(cid: str) -> bool:
        row, rec = ledger.get(cid), records.get(cid)
        ledger_ok = row is not None and row["ended_at"] and row["outcome"] != INTERRUPTED
        if ledger_ok and row["outcome"] == WITHDRAWN:  # hung up at once: the dialler had closed its record
            return bool(rec and rec["ended_at"] and not rec["turns"])
        return bool(ledger_ok and (not with_records or (rec and rec["ended_at"] and rec["outcome"]
                                                        and rec["outcome"] != INTERRUPTED)))

    def interrupted(cid: str) -> bool:
        row, rec = ledger.get(cid), records.get(cid)
        ledger_ok = row is not None and row["ended_at"] and row["end_reason"] == INTERRUPTED
        return bool(ledger_ok and (not with_records or (rec and rec["ended_at"] and rec["outcome"])))

    half = [cid for cid, row in ledger.items() if not row["ended_at"]]
    half += [cid for cid, rec in records.items() if not rec["outcome"] and cid in ledger
             and ledger[cid]["outcome"] != WITHDRAWN]
    by_number: dict[str, list] = {}
    for d in pbx.dials:
        by_number.setdefault(d.number, []).append(d)

    def spoke(cid: str) -> bool:
        """The lead talked with the bot on this dial: a turn recorded, or the call loop's own outcome."""
        rec = records.get(cid)
        return bool(rec and (rec["turns"] or (rec["outcome"] and rec["outcome"] != INTERRUPTED)))

    talked = {n: sum(spoke(d.call_uuid) for d in ds) for n, ds in by_number.items()}
    never = [n for n in run["numbers"] if not talked.get(n)]
    booked_talked = [n for n in never if lead_state.get(n, ("", ""))[0] in ("done", "callback", "dnc")]

    def dialled_while_live(ds: list) -> bool:
        return any(a is not b and a.connected_at is not None and a.connected_at <= b.rang_at
                   < (a.ended_at if a.ended_at is not None else float("inf")) for a in ds for b in ds)

    after = [d for d in pbx.dials if d.connected_at is not None and d.connected_at > run["killed_at"]]
    return {
        "calls_live_at_kill": len(in_flight),
        "ended_before_kill": len(finished),
        "ended_before_kill_recorded": sum(recorded(cid) for cid in finished),
        "in_flight_marked_interrupted": sum(interrupted(cid) for cid in in_flight),
        "in_flight_recorded_to_the_end": sum(recorded(cid) for cid in in_flight),
        "in_flight_hung_up_by_caller": sum(run["snapshot"].get(cid) == "ended" for cid in in_flight),
        "lost": sum(cid not in ledger for cid in run["taken"]),
        "connected_never_taken": sum(d.call_uuid not in run["taken"] for d in before),
        "refused_by_the_daemon": run["refused"],
        "pbx_talking_at_kill": sum(r == "talking" for r in run["snapshot"].values()),
        "half_written": len(half),
        "double_dialled": sum(n > 1 for n in talked.values()),
        "dialled_while_live": sum(dialled_while_live(ds) for ds in by_number.values()),
        "redialled_after_cut_ring": sum(any(d.result == "refused" for d in ds) and len(ds) > 1
                                        for ds in by_number.values()),
        "leads": len(run["numbers"]),
        "leads_never_talked": len(never),
        "never_talked_booked_as_talked": len(booked_talked),
        "never_talked_status": {f"{st}/{last}": sum(lead_state.get(n) == (st, last) for n in never)
                                for st, last in sorted({lead_state.get(n, ("?", "?")) for n in never})},
        "withdrawn_by_the_dialler": sum(row["outcome"] == WITHDRAWN for row in ledger.values()),
        "dispositions": dispositions,
        "retry_rounds": run["retry_rounds"],
        "lead_status": leads,
        "campaign_status": campaign_status,
        "calls_after_restart": len(after),
        "calls_after_restart_recorded": sum(recorded(d.call_uuid) for d in after if d.result == "ended"),
        "dials": len(pbx.dials),
        "integrity_check": integrity,
        "interrupted_on_restart": (run["interrupted_event"] or {}).get("count", 0),
        "records_closed_on_restart": (run["interrupted_event"] or {}).get("records", 0),
        "handler": run["handler"],
        "audio": run["audio"],
        "daemon_exit_code": run["exit_code"],
        "dialler_exit_code": run["dialler_exit"],
        "load_avg_1m": run["load_avg_1m"],
    }


def passed(result: dict[str, Any]) -> bool:
    return (result["ended_before_kill_recorded"] == result["ended_before_kill"]
            and result["in_flight_marked_interrupted"] == result["calls_live_at_kill"]
            and result["lost"] == 0 and result["half_written"] == 0 and result["double_dialled"] == 0
            and result["dialled_while_live"] == 0 and result["never_talked_booked_as_talked"] == 0
            and result["integrity_check"] == "ok"
            and not set(result["lead_status"]) & {"pending", "in_call", "retry"})


def run_crash(opts: argparse.Namespace, workdir: Path | None = None) -> dict[str, Any]:
    if workdir is not None:
        return analyse(asyncio.run(scenario(opts, workdir)))
    with tempfile.TemporaryDirectory(prefix="salesbot-crash-") as tmp:
        return analyse(asyncio.run(scenario(opts, Path(tmp))))


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="live calls at the kill (the trunk's size)")
    parser.add_argument("--leads", type=int, default=None, help="campaign leads (default: 3 x calls)")
    parser.add_argument("--turns", type=int, default=4, help="most callee lines per call (1..turns, by lead)")
    parser.add_argument("--handler", default=None, help="salesbot serve --handler (default: its own, the call loop)")
    parser.add_argument("--synthetic-audio", action="store_true", help="callee audio without the TTS")
    parser.add_argument("--quiet-ms", type=float, default=600.0)
    parser.add_argument("--reply-timeout-s", type=float, default=6.0)
    parser.add_argument("--greet-wait-s", type=float, default=2.0)
    parser.add_argument("--ring-timeout-s", type=float, default=60.0,
                        help="the campaign's ring_timeout_s (the stand-in PBX queues rings for a free line)")
    parser.add_argument("--retry-rounds", type=int, default=3,
                        help="dialler starts after the restart, each when the retries it booked are due")
    parser.add_argument("--settle-s", type=float, default=0.5, help="wait after the kill condition, then kill")
    parser.add_argument("--down-s", type=float, default=2.0, help="time the box stays down")
    parser.add_argument("--start-timeout-s", type=float, default=180.0)
    parser.add_argument("--phase-timeout-s", type=float, default=600.0)
    parser.add_argument("--abort", action="store_true",
                        help="crash the daemon with SIGABRT (thread dump in its log, $PYTHONFAULTHANDLER=1) instead")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data directory and logs here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    opts = parser.parse_args(argv)
    opts.leads = opts.leads or opts.calls * 3  # enough that the trunk is still full when calls start to end
    return opts


COLUMNS = (("calls", "calls_live_at_kill"), ("ended before kill: recorded", None),
           ("in flight: marked interrupted", None), ("lost", "lost"), ("half-written", "half_written"),
           ("double-dialled", "double_dialled"), ("dialled while live", "dialled_while_live"),
           ("never talked, booked as talked", "never_talked_booked_as_talked"),
           ("integrity_check", "integrity_check"))


def table(result: dict[str, Any]) -> str:
    cells = [str(result["calls_live_at_kill"]),
             f"{result['ended_before_kill_recorded']}/{result['ended_before_kill']}",
             f"{result['in_flight_marked_interrupted']}/{result['calls_live_at_kill']}",
             str(result["lost"]), str(result["half_written"]), str(result["double_dialled"]),
             str(result["dialled_while_live"]), str(result["never_talked_booked_as_talked"]),
             result["integrity_check"]]
    head = [name for name, _ in COLUMNS]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |"])


def markdown(result: dict[str, Any], m: dict[str, Any]) -> str:
    r = result
    rounds = ", ".join(f"--now {x['now']} ({x['dials']} dials)" for x in r["retry_rounds"]) or "none needed"
    return "\n".join([
        "# Crash safety: kill -9 during live calls, restart, resume the campaign", "",
        f"`{m['command']}` on {m['cpu']} ({m['cores']} cores, Python {m['python']}, SQLite {m['sqlite']}); "
        f"load average (1 min) {r['load_avg_1m']['before']} before, {r['load_avg_1m']['after']} after.", "",
        f"Handler: **{r['handler']}**; callee audio: {r['audio']}. {r['leads']} leads dialled by "
        "`salesbot campaign run --ami` through a stand-in Asterisk (benchmarks/pbx.py); the daemon and the "
        "dialler were killed together with SIGKILL once the trunk carried every call it could.", "",
        table(r), "",
        f"- After the restart: the daemon marked {r['interrupted_on_restart']} ledger rows interrupted and closed "
        f"{r['records_closed_on_restart']} call records; {r['calls_after_restart']} calls were placed after it "
        f"({r['calls_after_restart_recorded']} ended by the callee, fully recorded).",
        f"- At the kill the stand-in PBX had {r['pbx_talking_at_kill']} calls up; of the "
        f"{r['calls_live_at_kill']} calls in flight in the daemon, {r['in_flight_hung_up_by_caller']} had "
        "already been hung up by the caller but were still being wound up (a loaded box lags), and "
        f"{r['in_flight_recorded_to_the_end']} had their call record finished (only the ledger's end row was "
        f"queued). {r['connected_never_taken']} connections had reached the daemon's socket but not yet been "
        f"taken (refused in all: {r['refused_by_the_daemon']}); the dialler books a call only from the "
        "daemon's records, so those leads, and those whose calls were cut off before a turn, were booked "
        f"handoff_failed and retried; {r['withdrawn_by_the_dialler']} calls reached the daemon after the dialler "
        "had written them off and were hung up without a word.",
        f"- Dialler restarts after the first, each when the retries it had booked were due: {rounds}. "
        f"Dispositions of all {r['dials']} dials: {r['dispositions']}.",
        f"- Leads: {r['lead_status']}; leads that never talked with the bot: {r['leads_never_talked']} "
        f"({r['never_talked_status']}), booked as if they had: {r['never_talked_booked_as_talked']}; "
        f"campaign status **{r['campaign_status']}** (callbacks the leads booked keep it running); "
        f"re-dialled after a ring the kill cut off (that dial never reached the bot): "
        f"{r['redialled_after_cut_ring']}.",
        f"- Daemon exit code after the final SIGTERM: {r['daemon_exit_code']}; dialler: {r['dialler_exit_code']}.",
        f"- Verdict: **{'pass' if passed(r) else 'FAIL'}**.", ""])


def main() -> None:
    opts = options()
    started = time.monotonic()
    if opts.keep:
        opts.keep.mkdir(parents=True, exist_ok=True)
    result = run_crash(opts, opts.keep)
    result["wall_s"] = round(time.monotonic() - started, 1)
    m = machine()
    print(table(result))
    print(json.dumps({k: v for k, v in result.items() if k not in dict(COLUMNS).values()}, ensure_ascii=False))
    write("crash", {"machine": m, "result": result, "at": datetime.now().isoformat(timespec="seconds")},
          markdown(result, m), opts.out)
    sys.exit(0 if passed(result) else 1)


if __name__ == "__main__":
    main()
