"""Fuzz every parser that takes outside bytes, for a while each, and report crashes.

Coverage-guided with atheris (libFuzzer) when it is installed, each target in
its own process; otherwise a seeded mutation loop over the same targets
(bit flips, byte inserts/deletes, splices of the seed inputs). The targets
and the contract (only the SalesbotError family, no hang, nothing written
outside the target) are in tests/helpers/fuzz_targets.py.

    python benchmarks/fuzz.py --seconds 60                  # every target, 60 s each
    python benchmarks/fuzz.py --seconds 10 --only wav_header,ami_stream --engine mutate

Writes benchmarks/results/fuzz.{json,md}: target, engine, inputs tried,
crashes found (distinct, this run), crashes fixed (found earlier and fixed,
each with a regression test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from benchmarks.common import RESULTS, machine, write  # noqa: E402
from tests.helpers import fuzz_http  # noqa: E402,F401 (registers the HTTP targets)
from tests.helpers.fuzz_targets import TARGETS, Target, check  # noqa: E402

HANG_S = 10


def signature(exc: BaseException) -> str:
    """Type and innermost frame: one line per distinct crash."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    message = re.sub(r"0x[0-9a-f]+|\d+", "N", str(exc))[:90]  # one line per place, not per byte value
    return f"{type(exc).__name__} at {where}: {message}"


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(out))
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2 and out:
            del out[pos:pos + rng.randint(1, 32)]
        elif op == 3:
            other = rng.choice(pool)
            start = rng.randint(0, len(other))
            out[pos:pos] = other[start:start + rng.randint(1, 64)]
        elif op == 4:
            out[pos:pos] = rng.choice([b"\x00", b"\xff\xff", b"..", b"/", b'"', b"[" * 64, b"9" * 5000,
                                       b"\r\n\r\n", "\u202e".encode(), b"&a", b"*a", b"{", b"\\"])
        elif op == 5 and out:
            out[pos:pos] = out[pos:pos + rng.randint(1, 64)] * rng.randint(2, 8)
    return bytes(out[: 1 << 20])


def run_mutate(target: Target, seconds: float, seed: int) -> dict:
    rng = random.Random(seed)
    pool = target.seeds() or [b""]
    crashes: dict[str, str] = {}
    tried = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = rng.choice(pool) if tried < len(pool) else mutate(rng, rng.choice(pool), pool)
        started = time.monotonic()
        exc = check(target, data)
        tried += 1
        if time.monotonic() - started > HANG_S:
            crashes.setdefault(f"hang over {HANG_S} s", data.hex())
        if exc is not None:
            crashes.setdefault(signature(exc), data.hex())
        elif rng.random() < 0.05 and len(pool) < 200:
            pool.append(data)  # keep some that pass: deeper inputs to mutate from
    return {"inputs": tried, "crashes": crashes}


def atheris_child(name: str, seconds: int, crash_log: Path) -> None:
    """Runs inside a subprocess: libFuzzer drives the target until --seconds (it then exits the process)."""
    import atheris

    target = TARGETS[name]
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-corpus-{name}-"))
    for i, seed in enumerate(target.seeds()):
        (corpus / f"seed{i}").write_bytes(seed)
    seen: set[str] = set()

    def one(data: bytes) -> None:
        exc = check(target, data)
        if exc is not None and (sig := signature(exc)) not in seen:
            seen.add(sig)  # logged and carried on, so one run counts every distinct crash
            with open(crash_log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"signature": sig, "input": data.hex()}) + "\n")

    # coverage for the product only: the seeds' first run imports the modules the target uses
    with atheris.instrument_imports(include=["edge"]):
        for seed in target.seeds():
            check(target, seed)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", f"-timeout={HANG_S}", "-rss_limit_mb=3072",
                   "-max_len=65536", "-print_final_stats=1", str(corpus)], one)
    atheris.Fuzz()


def run_atheris(target: Target, seconds: int) -> dict:
    crash_log = Path(tempfile.mkstemp(prefix=f"fuzz-{target.name}-", suffix=".jsonl")[1])
    try:
        proc = subprocess.run([sys.executable, __file__, "--atheris-child", target.name, "--seconds", str(seconds),
                               "--crash-log", str(crash_log)], capture_output=True, text=True,
                              timeout=seconds + 120, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired as exc:
        proc = subprocess.CompletedProcess(exc.cmd, -9, "", (exc.stderr or b"").decode("utf-8", "replace")
                                           + "\nERROR: libFuzzer: timeout (the run did not end)")
    crashes = {}
    for line in crash_log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        crashes[entry["signature"]] = entry["input"]
    crash_log.unlink()
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    done = re.findall(r"Done (\d+) runs", proc.stderr)
    if "ERROR: libFuzzer: timeout" in proc.stderr:
        crashes[f"hang over {HANG_S} s"] = ""
    elif proc.returncode not in (0,) and not runs and not done:
        crashes[f"fuzzer exited {proc.returncode}"] = proc.stderr[-300:]
    return {"inputs": int((runs or done or ["0"])[-1]), "crashes": crashes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="per target (default 30)")
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="report folder (default benchmarks/results)")
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    parser.add_argument("--crash-log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the product logs every refused input; the table is the output
    if args.atheris_child:
        atheris_child(args.atheris_child, int(args.seconds), args.crash_log)
        return
    names = [n for n in args.only.split(",") if n] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; targets: {', '.join(TARGETS)}")
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            print("atheris is not installed: using the mutation loop (pip install atheris for coverage guidance)")
            engine = "mutate"
    rows = []
    for name in names:
        target = TARGETS[name]
        started = time.monotonic()
        result = (run_atheris(target, max(1, int(args.seconds))) if engine == "atheris"
                  else run_mutate(target, args.seconds, args.seed))
        crash_files = {}
        for i, (sig, hex_input) in enumerate(result["crashes"].items()):
            path = args.out / "fuzz-crashes" / f"{name}-{i}.bin"  # the whole input, to reproduce with check()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes.fromhex(hex_input))
            crash_files[sig] = str(path.relative_to(args.out))
        row = {"target": name, "engine": engine, "seconds": round(time.monotonic() - started, 1),
               "inputs": result["inputs"], "crashes_found": len(result["crashes"]),
               "crashes": crash_files, "crashes_fixed": len(target.fixed), "fixed": list(target.fixed)}
        rows.append(row)
        print(f"{name:22s} {engine:8s} {row['inputs']:>9d} inputs  {row['crashes_found']} crashes  "
              f"({row['crashes_fixed']} fixed before)", flush=True)
        for sig in result["crashes"]:
            print(f"    CRASH {sig}")
    lines = ["# Fuzzing: every parser that takes outside bytes", "",
             f"`{machine()['command']}`, {args.seconds:g} s per target, engine {engine}.", "",
             "| target | inputs tried | crashes found (this run) | crashes fixed (earlier runs) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['target']} | {r['inputs']} | {r['crashes_found']} | {r['crashes_fixed']} |" for r in rows]
    lines += ["", "Crashes fixed, each with a regression test:", ""]
    lines += [f"- {r['target']}: {fix}" for r in rows for fix in r["fixed"]]
    open_crashes = [f"- {r['target']}: {sig} (input: `{path}`)" for r in rows for sig, path in r["crashes"].items()]
    lines += ["", "Open crashes: " + ("none" if not open_crashes else "")] + open_crashes
    write("fuzz", {"machine": machine(), "seconds_per_target": args.seconds, "engine": engine, "targets": rows},
          "\n".join(lines) + "\n", out=args.out)
    sys.exit(1 if open_crashes else 0)


if __name__ == "__main__":
    main()
