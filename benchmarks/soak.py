"""Soak: N concurrent scripted AudioSocket calls through `salesbot serve` for M minutes, calls restarting as
they end; the daemon's memory, file descriptors, errors and turn latency sampled over time.

The callers are benchmarks/calls.py's (imported, not copied): Asterisk-like channels on one 20 ms clock,
speaking the callee script (built-in TTS audio) and listening for the bot. A caller that hangs up (or is
hung up on) is replaced at once by a new call, so N calls stay up for the whole run. Every `--sample-s`:
the daemon's RSS (VmRSS), open file descriptors (/proc/PID/fd), threads, CPU, errors and refusals from
/metrics, and the turn latencies the callers measured in that window (end of caller speech -> first bot
audio), calls completed, replies missed.

Reported, after a warm-up (`--warmup-min`, default 2): RSS growth from the warm-up's end to the end of the
run (target < 5 %), fd drift (descriptors beyond one per active call), latency drift (turn p95 of the last
window vs the first after the warm-up), errors. Then SIGTERM: the exit code, the ledger's rows and
PRAGMA integrity_check.

    python benchmarks/soak.py                       # 100 calls, 10 minutes
    python benchmarks/soak.py --calls 20 --minutes 2 --warmup-min 0.5

Writes benchmarks/results/soak.json, soak.md and soak.png. Linux only (reads /proc); loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import calls  # noqa: E402
from benchmarks.common import machine, percentile, write  # noqa: E402

TARGET_RSS_GROWTH_PCT = 5.0


class Soak:
    """The callers, the clock that feeds them, and the tallies of calls that ended."""

    def __init__(self, daemon: calls.Daemon, turn_frames, noise, opts: argparse.Namespace) -> None:
        self.daemon, self.turn_frames, self.noise, self.opts = daemon, turn_frames, noise, opts
        self.callers: list[calls.Caller] = []
        self.window_latencies: list[float] = []
        self.started_calls = 0
        self.ended = {"completed": 0, "incomplete": 0, "missing_replies": 0, "protocol_errors": 0,
                      "connect_errors": 0, "cut_at_end": 0}
        self.late_ticks = 0

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, caller = await loop.create_connection(
                lambda: calls.Caller(self.turn_frames, self.noise, self.opts), "127.0.0.1", self.daemon.port)
        except OSError:
            self.ended["connect_errors"] += 1
            return
        self.callers.append(caller)
        self.started_calls += 1

    def retire(self, caller: calls.Caller, at_end: bool = False) -> None:
        self.window_latencies += caller.latencies_ms
        caller.latencies_ms = []
        self.ended["cut_at_end" if at_end else "completed" if caller.completed else "incomplete"] += 1
        self.ended["missing_replies"] += caller.missing
        self.ended["protocol_errors"] += caller.protocol_error is not None
        if caller.transport is not None:
            caller.transport.close()

    def take_latencies(self) -> list[float]:
        for caller in self.callers:
            self.window_latencies += caller.latencies_ms
            caller.latencies_ms = []
        out, self.window_latencies = self.window_latencies, []
        return out

    async def run(self, seconds: float, on_sample) -> None:
        """Keep N calls up for `seconds`, replacing each that ends; `on_sample()` every sample_s."""
        start, n = time.monotonic(), 0
        next_connect, next_sample = start, start + self.opts.sample_s
        end = start + seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            for caller in [c for c in self.callers if c.finished]:
                if not caller.closed.done():  # its hangup is out; the daemon closes the call (5 s at most)
                    done_at = caller.__dict__.setdefault("done_at", now)
                    if now - done_at < 5.0:
                        continue
                self.callers.remove(caller)
                self.retire(caller)
            while len(self.callers) < self.opts.calls and now >= next_connect:
                await self.connect()
                next_connect = max(next_connect + self.opts.ramp_s / self.opts.calls, now - 1)
                now = time.monotonic()
            for caller in self.callers:
                frame = caller.next_frame(now)
                if frame is not None and caller.transport is not None and not caller.transport.is_closing():
                    caller.transport.write(frame)
            if now >= next_sample:
                await on_sample()
                next_sample += self.opts.sample_s
            n += 1
            lag = time.monotonic() - (start + n * calls.FRAME_S)
            if lag > calls.LATE_S:
                self.late_ticks += 1
            if lag > 1.0:  # a long stall (the box is overloaded): restart the clock instead of bursting
                start, n = time.monotonic(), 0
            await asyncio.sleep(max(0.0, -lag))


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def metric_sum(scraped: dict[str, float], prefix: str) -> float:
    return sum(value for name, value in scraped.items() if name.startswith(prefix))


async def soak(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    turn_frames, noise, how = calls.callee_frames(opts.turns, opts.synthetic_audio)
    data = workdir / "data"
    load_before = round(os.getloadavg()[0], 2)
    daemon = calls.Daemon(data, opts.calls, opts.handler, opts.start_timeout_s)
    pid = daemon.proc.pid
    samples: list[dict[str, Any]] = []
    runner = Soak(daemon, turn_frames, noise, opts)
    t0 = time.monotonic()
    cpu0 = daemon.cpu_seconds()

    async def sample() -> None:
        scraped: dict[str, float] = {}
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            scraped = await daemon.metrics()
        latencies = runner.take_latencies()
        cpu = daemon.cpu_seconds()
        previous = samples[-1] if samples else {"t_s": 0.0, "cpu_s": cpu0}
        t = time.monotonic() - t0
        samples.append({
            "t_s": round(t, 1), "rss_mb": round(daemon.status_kb("VmRSS") / 1024, 1), "fds": proc_fds(pid),
            "threads": proc_threads(pid), "active_calls": len(runner.callers),
            "cpu_s": round(cpu, 2), "cpu_pct": round(100 * (cpu - previous["cpu_s"]) / max(1e-6, t - previous["t_s"]), 1),
            "turns": len(latencies),
            "turn_p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
            "turn_p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
            "errors": metric_sum(scraped, "salesbot_errors_total"),
            "rejected": metric_sum(scraped, "salesbot_calls_rejected_total"),
            "calls_done": metric_sum(scraped, "salesbot_calls_total"),
            "started_calls": runner.started_calls, **runner.ended,
            "load_1m": round(os.getloadavg()[0], 2)})
        s = samples[-1]
        print(f"  {s['t_s']:7.1f} s  rss {s['rss_mb']:6.1f} MB  fds {s['fds']:4d}  active {s['active_calls']:3d}  "
              f"turn p95 {s['turn_p95_ms']} ms ({s['turns']})  cpu {s['cpu_pct']} %  errors {s['errors']:.0f}  "
              f"load {s['load_1m']}", flush=True)

    try:
        await sample()
        await runner.run(opts.minutes * 60, sample)
        await sample()
        for caller in list(runner.callers):
            if caller.transport is not None:
                caller.transport.write(calls.encode_hangup())
        await asyncio.sleep(1.0)
        for caller in list(runner.callers):
            runner.retire(caller, at_end=True)
        runner.callers = []
    finally:
        exit_code = daemon.stop()
    db_path = data / "calls.db"
    db = sqlite3.connect(str(db_path))
    try:
        integrity = db.execute("pragma integrity_check").fetchone()[0]
        ledger = dict(db.execute("select coalesce(outcome, 'unfinished'), count(*) from media_calls group by 1"))
        unfinished_records = db.execute("select count(*) from calls c where not exists "
                                        "(select 1 from outcomes o where o.call_id = c.id)").fetchone()[0]
    finally:
        db.close()
    return {"samples": samples, "audio": how, "handler": daemon.ready.get("handler"), "exit_code": exit_code,
            "integrity_check": integrity, "ledger_outcomes": ledger, "records_without_outcome": unfinished_records,
            "client_late_ticks": runner.late_ticks, "load_before": load_before, "ended": runner.ended,
            "started_calls": runner.started_calls}


def summarize(run: dict[str, Any], opts: argparse.Namespace) -> dict[str, Any]:
    samples = run["samples"]
    warm = [s for s in samples if s["t_s"] >= opts.warmup_min * 60]
    if len(warm) < 2:
        warm = samples[len(samples) // 2:]
    head, tail = warm[:3], warm[-3:]
    rss_start, rss_end = median(s["rss_mb"] for s in head), median(s["rss_mb"] for s in tail)
    spare = lambda s: s["fds"] - s["active_calls"]  # noqa: E731  (one socket per call is expected)
    lat = [s for s in warm if s["turn_p95_ms"] is not None]
    first_lat = lat[0]["turn_p95_ms"] if lat else None
    last_lat = lat[-1]["turn_p95_ms"] if lat else None
    end = samples[-1]
    growth = 100 * (rss_end - rss_start) / rss_start if rss_start else None
    # A stepwise rise (model arenas sized by the largest batch so far) ends later on a busy box than a
    # fixed warm-up: the second half of the run shows whether it levelled off or keeps leaking.
    half = [x for x in samples if x["t_s"] >= samples[-1]["t_s"] / 2]
    mid_rss = median(x["rss_mb"] for x in half[:3])
    half_growth = 100 * (rss_end - mid_rss) / mid_rss if mid_rss else None
    return {
        "calls": opts.calls, "minutes": opts.minutes, "warmup_min": opts.warmup_min,
        "calls_started": run["started_calls"], "calls_completed": run["ended"]["completed"],
        "calls_incomplete": run["ended"]["incomplete"], "calls_cut_at_end": run["ended"]["cut_at_end"],
        "missing_replies": run["ended"]["missing_replies"],
        "connect_errors": run["ended"]["connect_errors"], "protocol_errors": run["ended"]["protocol_errors"],
        "rss_mb_after_warmup": rss_start, "rss_mb_end": rss_end, "rss_peak_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_pct": round(growth, 2) if growth is not None else None,
        "rss_holds": growth is not None and growth < TARGET_RSS_GROWTH_PCT,
        "rss_mb_mid_run": mid_rss,
        "rss_growth_second_half_pct": round(half_growth, 2) if half_growth is not None else None,
        "fds_after_warmup": median(spare(s) for s in head), "fds_end": median(spare(s) for s in tail),
        "fd_drift": median(spare(s) for s in tail) - median(spare(s) for s in head),
        "threads_after_warmup": head[0]["threads"], "threads_end": tail[-1]["threads"],
        "turn_p95_first_ms": first_lat, "turn_p95_last_ms": last_lat,
        "latency_drift_ms": round(last_lat - first_lat, 1) if lat else None,
        "turn_p95_median_ms": median(s["turn_p95_ms"] for s in lat) if lat else None,
        "turns_measured": sum(s["turns"] for s in samples),
        "daemon_errors": end["errors"], "daemon_rejected": end["rejected"],
        "daemon_cpu_pct_median": median(s["cpu_pct"] for s in samples[1:]) if len(samples) > 1 else None,
        "load_1m": {"before": run["load_before"], "median": median(s["load_1m"] for s in samples),
                    "max": max(s["load_1m"] for s in samples)},
        "exit_code": run["exit_code"], "integrity_check": run["integrity_check"],
        "ledger_outcomes": run["ledger_outcomes"], "records_without_outcome": run["records_without_outcome"],
        "client_late_ticks": run["client_late_ticks"], "handler": run["handler"], "audio": run["audio"],
    }


def chart(run: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = run["samples"]
    t = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    (rss, fds), (lat, err) = axes
    rss.plot(t, [s["rss_mb"] for s in samples], "-", color="tab:blue")
    rss.axvline(summary["warmup_min"], color="grey", linestyle=":", label="end of warm-up")
    rss.set_ylabel("daemon RSS (MB)")
    rss.set_title(f"RSS: {summary['rss_growth_pct']} % after warm-up")
    rss.legend()
    fds.plot(t, [s["fds"] for s in samples], "-", label="open fds")
    fds.plot(t, [s["active_calls"] for s in samples], "--", label="active calls")
    fds.plot(t, [s["threads"] for s in samples], ":", label="threads")
    fds.set_title(f"File descriptors (drift {summary['fd_drift']:+g})")
    fds.legend()
    for key, style in (("turn_p50_ms", "-"), ("turn_p95_ms", "-")):
        lat.plot([x for x, s in zip(t, samples, strict=True) if s[key] is not None],
                 [s[key] for s in samples if s[key] is not None], style, label=key.replace("_ms", ""))
    lat.axhline(600, color="grey", linestyle="--", label="p95 target 600 ms")
    lat.set_ylabel("turn latency at the caller (ms)")
    lat.set_xlabel("minutes")
    lat.legend()
    err.plot(t, [s["errors"] for s in samples], "-", color="tab:red", label="daemon errors (cumulative)")
    err.plot(t, [s["missing_replies"] for s in samples], "-", color="tab:orange", label="replies missed (cumulative)")
    err.plot(t, [s["rejected"] for s in samples], "-", color="tab:purple", label="calls refused (cumulative)")
    err.set_xlabel("minutes")
    cpu = err.twinx()
    cpu.plot(t, [s["cpu_pct"] for s in samples], ":", color="tab:green", label="daemon CPU %")
    cpu.plot(t, [100 * s["load_1m"] / 2 for s in samples], ":", color="grey", label="load 1m (% of 2 cores)")
    cpu.set_ylabel("%")
    err.legend(loc="upper left")
    cpu.legend(loc="lower right")
    fig.suptitle(f"Soak: {summary['calls']} calls for {summary['minutes']:g} min ({summary['handler']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(summary: dict[str, Any]) -> str:
    s = summary
    rows = [
        ("concurrent calls (target)", s["calls"]), ("minutes", s["minutes"]),
        ("calls started / completed / incomplete / cut at the end",
         f"{s['calls_started']} / {s['calls_completed']} / {s['calls_incomplete']} / {s['calls_cut_at_end']}"),
        ("turns measured; replies missed", f"{s['turns_measured']}; {s['missing_replies']}"),
        ("RSS after warm-up -> end (peak)", f"{s['rss_mb_after_warmup']} -> {s['rss_mb_end']} MB "
                                            f"({s['rss_peak_mb']} MB)"),
        ("RSS growth after warm-up (target < 5 %)", f"{s['rss_growth_pct']} % ({'holds' if s['rss_holds'] else 'MISSED'})"),
        ("RSS growth over the second half (mid-run -> end)", f"{s['rss_mb_mid_run']} -> {s['rss_mb_end']} MB: "
                                                            f"{s['rss_growth_second_half_pct']} %"),
        ("fds beyond one per call: after warm-up -> end", f"{s['fds_after_warmup']} -> {s['fds_end']} "
                                                          f"(drift {s['fd_drift']:+g})"),
        ("threads after warm-up -> end", f"{s['threads_after_warmup']} -> {s['threads_end']}"),
        ("turn p95: first window -> last (median)", f"{s['turn_p95_first_ms']} -> {s['turn_p95_last_ms']} ms "
                                                    f"({s['turn_p95_median_ms']} ms)"),
        ("daemon errors / refusals", f"{s['daemon_errors']:.0f} / {s['daemon_rejected']:.0f}"),
        ("connect / protocol errors at the callers", f"{s['connect_errors']} / {s['protocol_errors']}"),
        ("daemon CPU (median, % of one core)", s["daemon_cpu_pct_median"]),
        ("load average 1m: before / median / max", f"{s['load_1m']['before']} / {s['load_1m']['median']} / "
                                                   f"{s['load_1m']['max']}"),
        ("SIGTERM exit code; integrity_check", f"{s['exit_code']}; {s['integrity_check']}"),
        ("records without an outcome", s["records_without_outcome"]),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def markdown(summary: dict[str, Any], m: dict[str, Any]) -> str:
    return "\n".join([
        "# Soak: concurrent calls through `salesbot serve`, calls restarting as they end", "",
        f"`{m['command']}` on {m['cpu']} ({m['cores']} cores, Python {m['python']}); the daemon and the callers "
        "(benchmarks/calls.py's, one process) share those cores with whatever else runs on the box.", "",
        f"Handler: **{summary['handler']}**; callee audio: {summary['audio']}. Samples every few seconds; "
        f"figures after a {summary['warmup_min']:g}-minute warm-up compare the median of its first three samples "
        "with the median of the last three.", "",
        table(summary), "",
        f"Ledger outcomes: {summary['ledger_outcomes']}. Client late ticks (this process's 20 ms clock more "
        f"than 40 ms late): {summary['client_late_ticks']}.", "",
        *notes(summary), "", "![soak](soak.png)", ""])


def notes(s: dict[str, Any]) -> list[str]:
    """What the figures mean on this run, from the figures themselves."""
    out = []
    if not s["rss_holds"] and s["rss_growth_second_half_pct"] is not None and s["rss_growth_second_half_pct"] < 5:
        out.append(f"- RSS rose in steps and then levelled off: {s['rss_growth_second_half_pct']} % over the second "
                   "half, so no steady leak shows. The steps are probably model memory arenas growing to the largest "
                   "batch seen so far (not verified here), which on a box behind real time keeps growing after a "
                   "fixed warm-up.")
    if s["rss_peak_mb"] > 1024:
        out.append(f"- Peak RSS {s['rss_peak_mb']} MB is above the unit's `MemoryMax=1G` "
                   "(systemd/edge-salesbot.service): at this many calls systemd would kill the service.")
    if s["turn_p95_median_ms"] is not None and s["turn_p95_median_ms"] > 600:
        out.append(f"- Not real time: turn p95 (median over windows) {s['turn_p95_median_ms']} ms against 600 ms, "
                   f"with the daemon at {s['daemon_cpu_pct_median']} % of one core (its event loop is one core).")
    if s["daemon_rejected"]:
        out.append(f"- {s['daemon_rejected']:.0f} calls were refused as `full`: a caller that hangs up is replaced at "
                   "once, while the daemon is still winding up its last call (behind real time), so max_calls "
                   "(calls + 10) is reached. A refused call counts as incomplete above.")
    return out


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-min", type=float, default=2.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--turns", type=int, default=None, help="callee lines per call (default: all)")
    parser.add_argument("--handler", default=None, help="salesbot serve --handler (default: its own, the call loop)")
    parser.add_argument("--synthetic-audio", action="store_true", help="callee audio without the TTS")
    parser.add_argument("--quiet-ms", type=float, default=600.0)
    parser.add_argument("--reply-timeout-s", type=float, default=6.0)
    parser.add_argument("--greet-wait-s", type=float, default=2.0)
    parser.add_argument("--ramp-s", type=float, default=10.0, help="the first N calls connect over this long")
    parser.add_argument("--start-timeout-s", type=float, default=180.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--from-json", type=Path, default=None, help="re-render the report of an earlier run")
    return parser.parse_args(argv)


def main() -> None:
    opts = options()
    if opts.from_json is not None:  # re-render the report of an earlier run from its samples
        saved = json.loads(opts.from_json.read_text(encoding="utf-8"))
        old = saved["summary"]
        opts.calls, opts.minutes, opts.warmup_min = old["calls"], old["minutes"], old["warmup_min"]
        run = {"samples": saved["samples"], "started_calls": old["calls_started"],
               "ended": {"completed": old["calls_completed"], "incomplete": old["calls_incomplete"],
                         "cut_at_end": old["calls_cut_at_end"], "missing_replies": old["missing_replies"],
                         "connect_errors": old["connect_errors"], "protocol_errors": old["protocol_errors"]},
               "load_before": old["load_1m"]["before"], "exit_code": old["exit_code"],
               "integrity_check": old["integrity_check"], "ledger_outcomes": old["ledger_outcomes"],
               "records_without_outcome": old["records_without_outcome"],
               "client_late_ticks": old["client_late_ticks"], "handler": old["handler"], "audio": old["audio"]}
        m = saved["machine"]
    else:
        with tempfile.TemporaryDirectory(prefix="salesbot-soak-") as tmp:
            run = asyncio.run(soak(opts, Path(tmp)))
        m = machine()
    summary = summarize(run, opts)
    print(table(summary))
    opts.out.mkdir(parents=True, exist_ok=True)
    chart(run, summary, opts.out / "soak.png")
    write("soak", {"machine": m, "summary": summary, "samples": run["samples"]}, markdown(summary, m), opts.out)


if __name__ == "__main__":
    main()
