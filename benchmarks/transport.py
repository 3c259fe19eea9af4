"""Transport cost of N calls: paced AudioSocket callers against the server with an echo handler.

The server runs in its own process (so its CPU time is its own): the real
AudioSocketServer, MediaCall (8 -> 16 kHz in, 16 -> 8 kHz out), the shared
20 ms clock and EchoHandler, which plays every caller frame back. This
process plays N Asterisk channels: each connects, sends its UUID and then a
20 ms slin frame every 20 ms (one sending clock for all, as Asterisk's
timer does), and timestamps every audio frame the server sends back.

The same callers also run against a raw asyncio echo (decode, write back:
no call object, no resampling, no clock) to show the floor that sockets and
framing cost on this machine. Reported for each, over the measuring window (after all calls are up and 1 s of warm-up):
server CPU seconds and % of one core, the gaps between consecutive bot frames
per call (p50, p99, max), frames later than 40 ms (underruns a caller would
hear), and frames received vs expected.

    python benchmarks/transport.py                 # 100 calls, 10 s
    python benchmarks/transport.py --calls 10 --seconds 5 --servers edge

Writes benchmarks/results/transport.json and transport.md. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

# As the service does (systemd unit, cli.main): numpy's BLAS must not spin up a thread pool per
# matrix product on a 2-core box shared with ASR; set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.telephony.audiosocket import FrameDecoder, Kind, encode_audio, encode_hangup, encode_uuid  # noqa: E402

FRAME_S = 0.020
LATE_S = 0.040


# ---- server process ----------------------------------------------------------

class RawEcho(asyncio.Protocol):
    """The floor: decode frames and write each audio frame straight back (no call, no resampling, no clock)."""

    def connection_made(self, transport) -> None:
        self.transport, self.decoder = transport, FrameDecoder()

    def data_received(self, data: bytes) -> None:
        for frame in self.decoder.feed(data):
            if frame.kind is Kind.AUDIO:
                self.transport.write(encode_audio(frame.payload))
            elif frame.kind is Kind.HANGUP:
                self.transport.write(encode_hangup())
                self.transport.close()


async def serve(kind: str, max_calls: int) -> None:
    from edge.telephony.audiosocket_server import AudioSocketServer
    from edge.telephony.testing import EchoHandler

    loop = asyncio.get_running_loop()
    if kind == "raw":
        raw = await loop.create_server(RawEcho, "127.0.0.1", 0)
        print(f"PORT {raw.sockets[0].getsockname()[1]}", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        raw.close()
        print("STATS {}", flush=True)
        return
    server = AudioSocketServer.from_uri("tcp://127.0.0.1:0", EchoHandler(), max_calls=max_calls)
    await server.start()
    print(f"PORT {server.port}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent closes stdin to stop us
    clock = server.registry.clock.stats
    await server.stop()
    print("STATS " + json.dumps({"server": vars(server.stats), "clock": vars(clock)}), flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- caller side -----------------------------------------------------------

class Caller(asyncio.Protocol):
    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.arrivals: list[float] = []
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(encode_uuid(uuid.uuid4()))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        for frame in self.decoder.feed(data):
            if frame.kind is Kind.AUDIO:
                self.arrivals.append(now)

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run_callers(port: int, calls: int, seconds: float, server_pid: int) -> dict:
    loop = asyncio.get_running_loop()
    t = np.arange(160) / 8000
    frames = [encode_audio((4000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes())
              for hz in (300, 450, 600, 750)]
    callers: list[Caller] = []
    for _ in range(calls):  # calls arrive over ~1 s, not all in one instant
        _, caller = await loop.create_connection(Caller, "127.0.0.1", port)
        callers.append(caller)
        await asyncio.sleep(1.0 / calls)
    warmup_s = 1.0
    start = time.monotonic()
    window = (start + warmup_s, start + warmup_s + seconds)
    cpu_start = None
    n = 0
    while True:  # one sending clock for every channel, on a monotonic deadline
        now = time.monotonic()
        if cpu_start is None and now >= window[0]:
            cpu_start, cpu_t0 = cpu_seconds(server_pid), now
        if now >= window[1]:
            break
        for i, caller in enumerate(callers):
            caller.transport.write(frames[(n + i) % 4])
        n += 1
        await asyncio.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))
    cpu_used, wall = cpu_seconds(server_pid) - cpu_start, time.monotonic() - cpu_t0
    for caller in callers:
        caller.transport.write(encode_hangup())
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in callers)), 10)

    gaps, received = [], 0
    for caller in callers:
        times = np.array([a for a in caller.arrivals if window[0] <= a < window[1]])
        received += len(times)
        if len(times) > 1:
            gaps.append(np.diff(times))
    gaps_ms = np.concatenate(gaps) * 1000 if gaps else np.zeros(1)
    expected = int(calls * seconds / FRAME_S)
    return {
        "calls": calls, "seconds": seconds,
        "server_cpu_s": round(cpu_used, 2), "server_cpu_pct_of_one_core": round(100 * cpu_used / wall, 1),
        "gap_ms_p50": round(float(np.percentile(gaps_ms, 50)), 1),
        "gap_ms_p99": round(float(np.percentile(gaps_ms, 99)), 1),
        "gap_ms_max": round(float(gaps_ms.max()), 1),
        "late_frames_gt_40ms": int((gaps_ms > LATE_S * 1000).sum()),
        "frames_received": received, "frames_expected": expected,
    }


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "platform": platform.platform()}


SERVERS = {
    "raw": "raw asyncio echo (the floor: sockets and framing only)",
    "edge": "AudioSocketServer + MediaCall + resampling + 20 ms clock + EchoHandler",
}


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "transport.json").write_text(json.dumps(report, indent=1) + "\n")
    m = report["machine"]
    md = [
        "# Transport cost: paced AudioSocket calls, echo handler", "",
        f"`{report['command']}` on {m['cpu']} ({m['cores']} cores, 1-min load {m['load_avg_1m_at_start']} at "
        f"start, Python {m['python']}). Server and callers are separate processes on the same cores.", "",
        "| server | calls | window | server CPU | % of one core | gap p50 | gap p99 | gap max | frames > 40 ms "
        "| frames |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, r in report["results"].items():
        md.append(f"| {kind} | {r['calls']} | {r['seconds']} s | {r['server_cpu_s']} s | "
                  f"{r['server_cpu_pct_of_one_core']} % | {r['gap_ms_p50']} ms | {r['gap_ms_p99']} ms | "
                  f"{r['gap_ms_max']} ms | {r['late_frames_gt_40ms']} | {r['frames_received']} / "
                  f"{r['frames_expected']} |")
    md += ["", *(f"- **{k}**: {v}" for k, v in SERVERS.items() if k in report["results"]), "",
           "Gap: time between consecutive bot frames of one call as the caller receives them (20 ms is ideal); "
           "frames > 40 ms are what a caller would hear as a glitch.",
           f"Edge server clock: {report['server_stats'].get('edge', {}).get('clock')}."]
    (out / "transport.md").write_text("\n".join(md) + "\n")


def print_table(report: dict) -> None:
    head = ("server", "calls", "CPU s", "% core", "gap p50", "gap p99", "gap max", ">40ms", "frames")
    rows = [(k, r["calls"], r["server_cpu_s"], r["server_cpu_pct_of_one_core"], r["gap_ms_p50"],
             r["gap_ms_p99"], r["gap_ms_max"], r["late_frames_gt_40ms"],
             f"{r['frames_received']}/{r['frames_expected']}") for k, r in report["results"].items()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def run_one(kind: str, calls: int, seconds: float) -> tuple[dict, dict]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--calls", str(calls)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the {kind} server did not start: {line!r}")
        result = asyncio.run(run_callers(int(line.split()[1]), calls, seconds, server.pid))
        server.stdin.close()
        stats = json.loads(next((line[6:] for line in server.stdout if line.startswith("STATS ")), "{}"))
    finally:
        server.wait(timeout=30)
    return result, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--servers", default="raw,edge", help="comma-separated: raw (the floor), edge")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.calls))
        return
    report = {"command": "python benchmarks/transport.py " + " ".join(sys.argv[1:]), "machine": machine(),
              "results": {}, "server_stats": {}}
    for kind in args.servers.split(","):
        report["results"][kind], report["server_stats"][kind] = run_one(kind, args.calls, args.seconds)
    print_table(report)
    write_report(report, args.out)
    print(f"wrote {args.out / 'transport.json'} and transport.md")


if __name__ == "__main__":
    main()
