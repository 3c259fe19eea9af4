"""Fuzz targets: one function per parser that takes bytes from outside the box.

The contract every target checks: bad input ends in the project's own error
(the SalesbotError family: ProtocolError, InputError, ScriptError, ...) or a
protocol reply (an OriginateResult, an HTTP 4xx), never another exception, a
hang or a file written outside the target directory. A target returns or
raises an EXPECTED error; anything else it raises is a crash.

Shared by tests/test_fuzz_*.py (hypothesis, a bounded number of inputs) and
benchmarks/fuzz.py (atheris when installed, else a mutation loop; timed).
Targets that need files write them under one scratch directory per process.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import shutil
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SalesbotError

EXPECTED: tuple[type[BaseException], ...] = (SalesbotError,)
ROOT = Path(__file__).resolve().parents[2]


class Escaped(AssertionError):
    """A target wrote outside its directory (an archive entry escaped)."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    """Feeds one input; raises only EXPECTED errors (or a crash)."""
    seeds: Callable[[], list[bytes]]
    """Valid and near-valid inputs the mutation engines start from."""
    fixed: tuple[str, ...] = field(default=())
    """Crashes found by fuzzing this target and fixed in the product, each with a regression test."""


@functools.lru_cache(maxsize=1)
def scratch() -> Path:
    """This process's scratch directory (nested, so an escaping '../' lands inside it and is seen)."""
    path = Path(tempfile.mkdtemp(prefix="salesbot-fuzz-")) / "a" / "b"
    path.mkdir(parents=True)
    return path


def _file(name: str, data: bytes) -> Path:
    path = scratch() / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---- telephony ------------------------------------------------------------------------------------


def audiosocket_frames(data: bytes) -> None:
    from edge.telephony.audiosocket import FrameDecoder, Kind

    decoder = FrameDecoder()
    step = (data[0] % 64 + 1) if data else 1
    for start in range(1, len(data) + 1, step):
        for frame in decoder.feed(data[start:start + step]):
            assert isinstance(frame.kind, Kind)
            if frame.kind is Kind.UUID:
                frame.uuid  # noqa: B018 (must decode)
            elif frame.kind is Kind.DTMF:
                frame.digit  # noqa: B018


def _seeds_audiosocket() -> list[bytes]:
    from edge.telephony import audiosocket as a

    call = a.encode_uuid(uuid.UUID(int=7)) + a.encode_audio(bytes(320)) + a.encode_dtmf("5") + a.encode_hangup()
    return [b"\x00" + call, b"\x03" + call, b"\x10" + a.encode_error(3)]


def websocket_start(data: bytes) -> None:
    from edge.telephony.websocket_media import parse_start_message

    message: str | bytes = data[1:].decode("utf-8", "replace") if data[:1] != b"\x00" else data[1:]
    info, rate = parse_start_message(message, "fuzz:1")
    assert rate in (8000, 16000) and isinstance(info.call_id, str)


def _seeds_websocket_start() -> list[bytes]:
    good = {"callSid": "abc", "from": "+8613800138000", "to": "100", "sampleRate": 16000, "mixType": "mono"}
    return [b"t" + json.dumps(good).encode(), b"t{}", b"t" + json.dumps({"sampleRate": 8000, "uuid": 5}).encode()]


def websocket_event(data: bytes) -> None:
    from edge.telephony.websocket_media import parse_text_event

    digit = parse_text_event(data.decode("utf-8", "replace"))
    assert digit is None or digit in "0123456789*#ABCD"


def _seeds_websocket_event() -> list[bytes]:
    return [b'{"event": "dtmf", "dtmf": "5"}', b'{"event": "mark"}', b"[1, 2]"]


class _NullWriter:
    def write(self, _data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


async def _ami(data: bytes) -> None:
    from edge.telephony.ami import MAX_LINE, AmiClient, OriginateOutcome, OriginateRequest, OriginateResult

    reader = asyncio.StreamReader(limit=MAX_LINE)
    reader.feed_data(data)
    reader.feed_eof()
    client = AmiClient(reader, _NullWriter(), "Asterisk Call Manager/9.0.0")  # type: ignore[arg-type]
    request = OriginateRequest(channel="PJSIP/13800138000@trunk", action_id="fuzz-1", timeout_s=0.05)
    try:
        result = await client.originate(request, response_timeout_s=0.05, event_slack_s=0.05)
    finally:
        await client.close()
    assert isinstance(result, OriginateResult) and isinstance(result.outcome, OriginateOutcome)


def ami_stream(data: bytes) -> None:
    asyncio.run(asyncio.wait_for(_ami(data), 5))


def _seeds_ami() -> list[bytes]:
    ok = b"Response: Success\r\nActionID: fuzz-1\r\nMessage: queued\r\n\r\n"
    event = (b"Event: OriginateResponse\r\nActionID: fuzz-1\r\nResponse: Failure\r\nReason: 5\r\n"
             b"Channel: PJSIP/x\r\nUniqueid: 1.2\r\n\r\n")
    return [ok + event, ok + event.replace(b"Failure", b"Success").replace(b"5", b"4"),
            b"Response: Error\r\nActionID: fuzz-1\r\nMessage: no\r\n\r\n", b"Event: FullyBooted\r\n\r\n" + ok]


# ---- files people import ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _leads_db():
    from edge.calls import Records
    from edge.calls import campaign as campaigns

    records = Records.open(scratch() / "calls.db")
    return records.db, campaigns.create(records.db, "fuzz", {}, actor="fuzz")


def lead_csv(data: bytes) -> None:
    from edge.calls.leads import import_leads

    db, campaign = _leads_db()
    report = import_leads(db, campaign.id, campaign.name, _file("leads.csv", data))
    assert report.accepted >= 0
    db.execute("delete from leads")  # every input starts from an empty campaign


def _seeds_leads() -> list[bytes]:
    text = "电话,姓名,公司,标签,时区\n13800138000,张伟,华星科技,重点|华东,Asia/Shanghai\n021-87654321,李,x,,\n"
    return [text.encode(), text.encode("gbk"), text.replace(",", "\t").encode("utf-16"),
            b"phone;name\n+86 139 0013 9000;A\n"]


def _knowledge(suffix: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from edge.kb import importers

        entries = importers.read(_file("knowledge" + suffix, data))
        _kb().import_entries(entries, origin="fuzz" + suffix)

    run.__name__ = f"knowledge_{suffix[1:]}"
    return run


@functools.lru_cache(maxsize=1)
def _kb():
    from edge.kb import KnowledgeBase

    return KnowledgeBase.open(None)


def _seeds_knowledge_csv() -> list[bytes]:
    return [(ROOT / "edge" / "data" / "knowledge.csv").read_bytes()[:4000],
            "question,answer,tags,aliases,id\n价格?,一年三千,价格|报价,多少钱,p-1\n".encode()]


def _seeds_knowledge_jsonl() -> list[bytes]:
    line = {"question": "能对接钉钉吗", "answer": "能", "tags": ["集成"], "aliases": ["钉钉"], "id": "dd"}
    return [json.dumps(line, ensure_ascii=False).encode() + b"\n" + b'{"question": "q", "answer": "a"}\n']


def _seeds_knowledge_md() -> list[bytes]:
    return ["# FAQ\n\n## 多少钱？\ntags: 价格\n别名: 收费\n\n一年三千。\n\n## 能试用吗\n可以。\n".encode()]


def kb_search(data: bytes) -> None:
    kb = _builtin_kb()
    for hit in kb.search(data.decode("utf-8", "replace"), tags=None, k=3):
        assert hit.id


@functools.lru_cache(maxsize=1)
def _builtin_kb():
    from edge.kb import KnowledgeBase

    return KnowledgeBase.builtin()


def _seeds_kb_search() -> list[bytes]:
    return ['你们这个几多钱 "AND" NEAR(a b) *'.encode(), b"q_terms: x OR y ^z", "价格\u202e\x00😀".encode()]


def script_yaml(data: bytes) -> None:
    from edge.dialog.script import Script

    Script.load(_file("script.yaml", data))


def _seeds_script() -> list[bytes]:
    return [(ROOT / "edge" / "data" / "script.yaml").read_bytes(), b"name: x\nnodes: {}\n"]


def wav_header(data: bytes) -> None:
    from edge.audio.wav import read_wav

    pcm = read_wav(_file("audio.wav", data))
    assert pcm.dtype.name == "int16" and pcm.ndim == 1


def _seeds_wav() -> list[bytes]:
    import numpy as np

    from edge.audio.wav import write_wav, write_wav_stereo

    mono = write_wav(scratch() / "seed1.wav", np.arange(160, dtype=np.int16), rate=8000).read_bytes()
    stereo = write_wav_stereo(scratch() / "seed2.wav", np.ones(80, np.int16), np.zeros(40, np.int16)).read_bytes()
    return [mono, stereo]


# ---- model bundles ------------------------------------------------------------------------------


def bundle_manifest(data: bytes) -> None:
    from edge.bundle import Bundle

    root = scratch() / "bundle"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "model.onnx").write_bytes(b"onnx")
    (root / "manifest.json").write_bytes(data)
    Bundle.open(root, kind="asr", verify=True)


def _seeds_manifest() -> list[bytes]:
    import hashlib

    digest = hashlib.sha256(b"onnx").hexdigest()
    good = {"kind": "asr", "format_version": 1, "files": {"model.onnx": {"sha256": digest, "bytes": 4}}}
    return [json.dumps(good).encode(), json.dumps({**good, "files": {"../x": {"sha256": digest}}}).encode()]


def _archive(suffix: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        install_archive(data, suffix)

    run.__name__ = f"model_archive_{suffix.strip('.').replace('.', '_')}"
    return run


def install_archive(data: bytes, suffix: str) -> None:
    """`models add` on an archive; raises Escaped if anything lands outside the models directory."""
    from edge.asr.install import add

    base = scratch()
    models = base / "models"
    shutil.rmtree(models, ignore_errors=True)
    shutil.rmtree(base / "in", ignore_errors=True)
    before = _tree(base.parent.parent)
    source = _file("model" + suffix, data)
    try:
        add(source, models, name="m")
    finally:
        after = _tree(base.parent.parent) - {p for p in _tree(base.parent.parent) if _under(p, models, source)}
        new = after - before
        shutil.rmtree(models, ignore_errors=True)
        if new:
            raise Escaped(f"archive wrote outside the models directory: {sorted(new)[:5]}")


def _under(path: str, models: Path, source: Path) -> bool:
    return path == str(source) or path == str(source.parent) or path.startswith(str(models))


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def _seeds_tar(mode: str) -> list[bytes]:
    out = []
    for members in (
        [("m/tokens.txt", b"<blk> 0\na 1\n"), ("m/model.onnx", b"\x08\x07")],
        [("../evil.txt", b"x")],
        [("m/", None), ("m/a", b"1")],
    ):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as tar:
            for name, payload in members:
                info = tarfile.TarInfo(name)
                if payload is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
        out.append(buffer.getvalue())
    return out


def _seeds_zip() -> list[bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/tokens.txt", "<blk> 0\na 1\n")
        zf.writestr("m/model.onnx", b"\x08\x07" * 50)
    return [buffer.getvalue()]


# ---- the admin HTTP surfaces --------------------------------------------------------------------

TARGETS: dict[str, Target] = {}


def _register(*targets: Target) -> None:
    for target in targets:
        TARGETS[target.name] = target


_JSON_LIMITS = "a 5000-digit number (ValueError) or [[[... nesting (RecursionError) escaped as a crash (review)"
_register(
    Target("audiosocket_frames", audiosocket_frames, _seeds_audiosocket),
    Target("websocket_start", websocket_start, _seeds_websocket_start, (_JSON_LIMITS,)),
    Target("websocket_event", websocket_event, _seeds_websocket_event, (_JSON_LIMITS,)),
    Target("ami_stream", ami_stream, _seeds_ami, (
        "a PBX reply 'Response: Timeout' or 'Disconnected' without a Message raised KeyError (fuzzer)",)),
    Target("lead_csv", lead_csv, _seeds_leads, (
        "phone cell '0' raised IndexError in phone._landline (fuzzer)",
        "timezone 'Asia' (a tzdata directory) or a 300-character zone raised OSError (review)")),
    Target("knowledge_csv", _knowledge(".csv"), _seeds_knowledge_csv),
    Target("knowledge_jsonl", _knowledge(".jsonl"), _seeds_knowledge_jsonl, (
        "a 5000-digit number raised ValueError, not KnowledgeError (fuzzer); deep nesting RecursionError (review)",)),
    Target("knowledge_md", _knowledge(".md"), _seeds_knowledge_md),
    Target("kb_search", kb_search, _seeds_kb_search),
    Target("script_yaml", script_yaml, _seeds_script, (
        "a 5000-digit integer raised ValueError (fuzzer)",
        "a date such as 2025-13-45 raised ValueError (review)",
        "deep [[[... nesting raised RecursionError (review)",
        "aliases nested 9 deep ('billion laughs') hung the loader for minutes (review)")),
    Target("wav_header", wav_header, _seeds_wav,
           ("a fmt chunk with under 8 bits per sample: ZeroDivisionError (fuzzer)",)),
    Target("bundle_manifest", bundle_manifest, _seeds_manifest, (
        ("manifest.json a directory, deep or 5000-digit JSON, a 300-character file name: OSError/ValueError/"
         "RecursionError (review)"),)),
    Target("model_archive_tar", _archive(".tar"), lambda: _seeds_tar("w")),
    Target("model_archive_tgz", _archive(".tar.gz"), lambda: _seeds_tar("w:gz"), (
        "no limit on unpacked size: a few KB of .tar.gz could fill the disk (review)",)),
    Target("model_archive_zip", _archive(".zip"), _seeds_zip, (
        ("encrypted entry (RuntimeError), unknown compression method (NotImplementedError), corrupt deflate "
         "data (zlib.error) escaped as crashes (review)"),
        "an entry whose name is empty: IndexError in zipfile's is_dir() (atheris)")),
)


def check(target: Target, data: bytes) -> BaseException | None:
    """Run one input; the crash (an unexpected exception) or None."""
    try:
        target.run(data)
    except EXPECTED:
        return None
    except Exception as exc:  # noqa: BLE001 (that is the point: anything else is a crash)
        return exc
    return None
