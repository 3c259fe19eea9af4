"""Property-based fuzzing of every parser that takes outside bytes (bounded: a few seconds each).

Each target (tests/helpers/fuzz_targets.py) gets random bytes, mutated seeds and, where the format
has structure, generated near-valid inputs; the only outcome allowed besides success is the
project's own error. Longer runs, coverage-guided with atheris: `python benchmarks/fuzz.py`.
AudioSocket frames also have their own properties in tests/test_audiosocket_protocol.py.
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.fuzz_targets import TARGETS, check

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_ok(name: str, data: bytes) -> None:
    crash = check(TARGETS[name], data)
    if crash is not None:
        raise AssertionError(f"{name} crashed on {data[:120]!r}") from crash


def mutated(name: str) -> st.SearchStrategy[bytes]:
    """A seed with a random slice replaced by random bytes, or plain random bytes."""
    seeds = TARGETS[name].seeds()

    def splice(parts):
        seed, pos, cut, insert = parts
        pos %= len(seed) + 1
        return seed[:pos] + insert + seed[pos + cut:]

    return st.one_of(st.binary(max_size=300),
                     st.tuples(st.sampled_from(seeds), st.integers(0, 1 << 20), st.integers(0, 64),
                               st.binary(max_size=48)).map(splice))


@pytest.mark.parametrize("name", ["audiosocket_frames", "websocket_start", "websocket_event", "ami_stream",
                                  "knowledge_csv", "knowledge_jsonl", "knowledge_md", "kb_search", "wav_header",
                                  "bundle_manifest"])
@FAST
@given(data=st.data())
def test_mutated_inputs_give_only_project_errors(name, data):
    assert_ok(name, data.draw(mutated(name)))


@pytest.mark.parametrize("name", ["lead_csv", "script_yaml"])
@SLOW
@given(data=st.data())
def test_mutated_files_give_only_project_errors(name, data):
    assert_ok(name, data.draw(mutated(name)))


# ---- structured, near-valid inputs ----------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
START_KEYS = st.sampled_from(["sampleRate", "mixType", "callSid", "call_sid", "uuid", "callId", "from", "caller",
                              "to", "callee", "event", "dtmf"])


@FAST
@given(meta=st.dictionaries(START_KEYS, st.one_of(json_values, st.sampled_from([8000, 16000, 8000.0, "mono"])),
                            max_size=8))
def test_websocket_metadata_and_events_of_any_shape(meta):
    text = json.dumps(meta).encode()
    assert_ok("websocket_start", b"t" + text)
    assert_ok("websocket_event", text)


ami_keys = st.sampled_from(["Response", "Event", "ActionID", "Reason", "Message", "Channel", "Uniqueid", "X"])
ami_values = st.one_of(st.sampled_from(["Success", "Error", "Failure", "OriginateResponse", "fuzz-1", "4", "5",
                                        "-1", "99999999999999999999", ""]), st.text(max_size=30))


@FAST
@given(messages=st.lists(st.lists(st.tuples(ami_keys, ami_values), max_size=6), max_size=5),
       separator=st.sampled_from(["\r\n", "\n", "\r"]), cut=st.integers(0, 2000))
def test_ami_messages_of_any_shape_end_in_a_result(messages, separator, cut):
    wire = "".join("".join(f"{k}: {v}{separator}" for k, v in m) + separator for m in messages).encode()
    assert_ok("ami_stream", wire[:cut] if cut < len(wire) else wire)


@FAST
@given(codec=st.sampled_from([0, 1, 2, 3, 6, 7, 0x55, 0xFFFE, 0xFFFF]), channels=st.integers(0, 70000),
       rate=st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([8000, 16000, 44100])),
       bits=st.sampled_from([0, 1, 7, 8, 12, 16, 24, 32, 64, 65535]), size=st.integers(0, 2**32 - 1),
       payload=st.binary(max_size=200), fmt_size=st.sampled_from([14, 16, 18, 40, 2**32 - 1]))
def test_wav_headers_with_any_fields(codec, channels, rate, bits, size, payload, fmt_size):
    fmt = struct.pack("<HHIIHH", codec, channels % 65536, rate, rate, 4, bits)
    if fmt_size == 40:
        fmt += struct.pack("<HHIH", 22, bits, 0, 1) + bytes(14)
    header = b"RIFF" + struct.pack("<I", size) + b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt
    assert_ok("wav_header", header + b"data" + struct.pack("<I", size) + payload)


cells = st.one_of(st.sampled_from(["13800138000", "0", "+86 21 8765 4321", "=cmd|' /C calc'!A0", "Asia",
                                   "Asia/Shanghai", "../../etc", "\u202e", "\x00", "😀", '"', "a\nb"]),
                  st.text(max_size=30))


@SLOW
@given(header=st.lists(st.sampled_from(["电话", "phone", "手机", "姓名", "name", "公司", "标签", "时区", "timezone",
                                        "", "x"]), min_size=1, max_size=6),
       rows=st.lists(st.lists(cells, max_size=7), max_size=8),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]),
       delimiter=st.sampled_from([",", "\t", ";"]))
def test_lead_csv_rows_of_any_content(header, rows, encoding, delimiter):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    assert_ok("lead_csv", buffer.getvalue().encode(encoding, "replace"))


@SLOW
@given(data=st.data())
def test_default_script_with_values_replaced(data):
    """The real script with a few values swapped for anything YAML can hold."""
    import yaml

    from tests.helpers.fuzz_targets import ROOT

    tree = yaml.safe_load((ROOT / "edge" / "data" / "script.yaml").read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 4))):
        node = tree
        while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = data.draw(st.sampled_from(keys))
            if not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
                node[key] = data.draw(json_values)
                break
            node = node[key]
    assert_ok("script_yaml", yaml.safe_dump(tree, allow_unicode=True).encode())


@pytest.mark.parametrize("engine", ["mutate", pytest.param("atheris", marks=pytest.mark.slow)])
def test_the_fuzz_benchmark_runs_and_reports(tmp_path, engine):
    """benchmarks/fuzz.py end to end, briefly; atheris is optional (a visible skip without it)."""
    import subprocess
    import sys

    from tests.helpers.fuzz_targets import ROOT

    if engine == "atheris":
        pytest.importorskip("atheris", reason="atheris not installed: benchmarks/fuzz.py uses its mutation loop")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--seconds", "1", "--engine",
                             engine, "--only", "websocket_event,wav_header", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "fuzz.json").read_text(encoding="utf-8"))
    rows = {row["target"]: row for row in report["targets"]}
    assert rows["websocket_event"]["inputs"] > 100 and rows["websocket_event"]["crashes_found"] == 0
    assert rows["wav_header"]["crashes_fixed"] == 1 and "| wav_header |" in (tmp_path / "fuzz.md").read_text()
