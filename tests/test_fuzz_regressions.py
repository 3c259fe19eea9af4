"""One test per crash the fuzzers found (tests/helpers/fuzz_targets.py): each input used to raise
something other than the project's own error, or hang; now it gets a clear SalesbotError."""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile

import pytest

from edge.errors import (
    ArchiveError,
    AudioFormatError,
    BundleError,
    CampaignError,
    InputError,
    KnowledgeError,
    ProtocolError,
    ScriptError,
)

DEEP_JSON = "[" * 100_000
BIG_INT = "9" * 5000  # past Python's 4300-digit int parsing limit: a ValueError that is not a JSONDecodeError


@pytest.mark.parametrize("message", [json.dumps({"sampleRate": 1}).replace("1", BIG_INT), DEEP_JSON])
def test_websocket_start_message_with_huge_number_or_deep_nesting(message):
    from edge.telephony.websocket_media import parse_start_message

    with pytest.raises(ProtocolError, match="not JSON"):
        parse_start_message(message)


@pytest.mark.parametrize("message", ['{"event": "dtmf", "dtmf": ' + BIG_INT + "}", DEEP_JSON])
def test_websocket_text_event_with_huge_number_or_deep_nesting(message):
    from edge.telephony.websocket_media import parse_text_event

    with pytest.raises(ProtocolError, match="not JSON"):
        parse_text_event(message)
    assert parse_text_event('{"event": "dtmf", "dtmf": "7"}') == "7"
    assert parse_text_event('{"event": "mark"}') is None


@pytest.mark.parametrize("line", ['{"question": "q", "answer": ' + BIG_INT + "}", DEEP_JSON])
def test_knowledge_jsonl_with_huge_number_or_deep_nesting(tmp_path, line):
    from edge.kb import importers

    path = tmp_path / "kb.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"kb.jsonl:1: not a usable JSON object"):
        importers.read(path)


@pytest.mark.parametrize("text,message", [
    (f"name: {BIG_INT}\n", "unusable value"),
    ("version: 2025-13-45\n", "month must be in 1..12"),
    ("[" * 1200, "nested too deeply"),
])
def test_script_yaml_values_python_cannot_hold(tmp_path, text, message):
    from edge.dialog.script import Script

    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScriptError, match=message):
        Script.load(path)


def test_script_yaml_billion_laughs_is_refused_quickly(tmp_path):
    from edge.dialog.script import Script

    levels = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    path = tmp_path / "lol.yaml"
    path.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + levels, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ScriptError, match="expands to more than"):  # used to walk 10**9 values
        Script.load(path)
    assert time.monotonic() - started < 5


def test_the_default_script_is_far_below_the_expansion_limit():
    from edge.dialog import source
    from edge.dialog.script import Script

    script, lines = Script.parse(source.__file__.replace("dialog/source.py", "data/script.yaml"))
    assert script.nodes and len(lines) < source.MAX_NODES / 10


def _wav(bits: int, channels: int = 1) -> bytes:
    body = struct.pack("<HHIIHH", 1, channels, 8000, 8000, 2, bits)
    return b"RIFF" + struct.pack("<I", 36 + 4) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + body + b"data" + \
        struct.pack("<I", 4) + b"\x00\x01\x02\x03"


@pytest.mark.parametrize("bits", [0, 4, 7])
def test_wav_header_with_fewer_than_8_bits(tmp_path, bits):
    from edge.audio.wav import read_wav

    path = tmp_path / "x.wav"
    path.write_bytes(_wav(bits))
    with pytest.raises(AudioFormatError, match="damaged"):  # was ZeroDivisionError
        read_wav(path)


@pytest.mark.parametrize("zone_name", ["Asia", "Asia/" + "x" * 300])
def test_lead_time_zone_that_is_a_directory_or_too_long(zone_name):
    from edge.calls.schedule import zone

    with pytest.raises(CampaignError, match="not an IANA zone"):  # was IsADirectoryError / OSError
        zone(zone_name)


@pytest.mark.parametrize("number", ["0", "01", "0-1", "+86 0"])
def test_phone_number_that_is_only_a_trunk_zero(number):
    from edge.calls import phone

    with pytest.raises(phone.PhoneError):  # was IndexError in _landline
        phone.parse(number)


def test_lead_csv_with_timezone_directory_and_bare_zero_rejects_rows(tmp_path):
    from edge.calls import Records
    from edge.calls import campaign as campaigns
    from edge.calls.leads import import_leads

    db = Records.open(tmp_path / "calls.db").db
    campaign = campaigns.create(db, "c", {}, actor="test")
    path = tmp_path / "leads.csv"
    path.write_text("phone,name,timezone\n13800138000,A,Asia\n0,B,\n13900139000,C,Asia/Shanghai\n", encoding="utf-8")
    report = import_leads(db, campaign.id, campaign.name, path)
    assert report.accepted == 1 and [r.code for r in report.rejections] == ["timezone", "phone"]


def _manifest_dir(tmp_path, manifest: str | None, files: dict[str, bytes] | None = None):
    root = tmp_path / "bundle"
    root.mkdir()
    for name, data in (files or {}).items():
        (root / name).write_bytes(data)
    if manifest is None:
        (root / "manifest.json").mkdir()
    else:
        (root / "manifest.json").write_text(manifest, encoding="utf-8")
    return root


@pytest.mark.parametrize("manifest", [None, DEEP_JSON, '{"format_version": ' + BIG_INT + "}"])
def test_bundle_manifest_that_is_a_directory_deep_or_huge(tmp_path, manifest):
    from edge.bundle import Bundle

    with pytest.raises(BundleError, match="unreadable manifest"):
        Bundle.open(_manifest_dir(tmp_path, manifest), kind="asr")


def test_bundle_manifest_listing_a_name_too_long_for_the_filesystem(tmp_path):
    from edge.bundle import Bundle

    manifest = json.dumps({"kind": "asr", "format_version": 1, "files": {"x" * 300: {"sha256": "0" * 64}}})
    with pytest.raises(BundleError, match="cannot read"):  # was OSError: File name too long
        Bundle.open(_manifest_dir(tmp_path, manifest), kind="asr")


def _zip(patch=None, **options) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", options.get("compression", zipfile.ZIP_STORED)) as zf:
        info = zipfile.ZipInfo("m/model.onnx")
        info.compress_type = options.get("compression", zipfile.ZIP_STORED)
        zf.writestr(info, b"model bytes " * 100)
    data = bytearray(buffer.getvalue())
    if patch:
        patch(data)
    return bytes(data)


def _encrypted(data: bytearray) -> None:
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x1


def _method_99(data: bytearray) -> None:
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.find(signature)
        data[at + offset:at + offset + 2] = struct.pack("<H", 99)


def _corrupt_deflate(data: bytearray) -> None:
    at = data.find(b"PK\x03\x04") + 30 + len("m/model.onnx")
    data[at:at + 8] = b"\xff" * 8


@pytest.mark.parametrize("archive", [
    _zip(patch=_encrypted),  # RuntimeError: password required
    _zip(patch=_method_99),  # NotImplementedError: compression method not supported
    _zip(patch=_corrupt_deflate, compression=zipfile.ZIP_DEFLATED),  # zlib.error
], ids=["encrypted", "unknown-method", "corrupt-deflate"])
def test_zip_archives_zipfile_cannot_read(tmp_path, archive):
    from edge.asr.install import add

    source = tmp_path / "m.zip"
    source.write_bytes(archive)
    with pytest.raises(ArchiveError, match="unreadable archive"):
        add(source, tmp_path / "models")
    assert not (tmp_path / "models" / "m").exists()


def test_archive_that_unpacks_past_the_size_limit_is_refused_before_writing(tmp_path, monkeypatch):
    import tarfile

    from edge.asr import install

    monkeypatch.setattr(install, "MAX_UNPACKED_BYTES", 1 << 20)
    source = tmp_path / "bomb.tar.gz"
    with tarfile.open(source, "w:gz") as tar:  # 4 MB of zeros, a few KB compressed
        info = tarfile.TarInfo("m/model.onnx")
        info.size = 4 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert source.stat().st_size < 64 * 1024
    with pytest.raises(ArchiveError, match="GB limit"):
        install.add(source, tmp_path / "models")
    assert not list((tmp_path / "models").rglob("model.onnx"))


def test_model_directory_with_a_dangling_link(tmp_path):
    from edge.asr.install import add

    source = tmp_path / "model"
    source.mkdir()
    (source / "tokens.txt").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="cannot copy the model directory"):  # was shutil.Error
        add(source, tmp_path / "models")


@pytest.mark.parametrize("settings,message", [
    ({"max_concurrent": "mon-fri=09:00-18:00"}, "must be int"),
    ({"max_concurrent": True}, "must be int"),
    ({"sender": 5}, "must be str"),
    ({"timezone": None}, "must be str"),
    ({"hours": ["mon"]}, "must be dict"),
    ({"ring_timeout_s": "30"}, "must be int or float"),
    ({"hours": {"mon": 5}}, "wrong form"),
    ({"voicemail_message": "{sender.__class__} {0}"}, "only {sender}"),
])
def test_campaign_settings_of_the_wrong_type(tmp_path, settings, message):
    from edge.calls import Records
    from edge.calls import campaign as campaigns

    db = Records.open(tmp_path / "calls.db").db
    with pytest.raises(CampaignError, match=message):  # was ValueError/TypeError: a 500 on the dashboard
        campaigns.create(db, "c", settings, actor="test")
    created = campaigns.create(db, "ok", {"ring_timeout_s": 20, "max_concurrent": 3}, actor="test")
    assert created.settings.ring_timeout_s == 20


def _nameless(data: bytearray) -> None:
    for signature, offset in ((b"PK\x03\x04", 30), (b"PK\x01\x02", 46)):
        data[data.find(signature) + offset] = 0  # zipfile cuts a name at NUL: the entry is called ""


def test_zip_entry_without_a_name(tmp_path):
    """Found by atheris: ZipInfo.is_dir() indexes filename[-1] and raised IndexError on ""."""
    from edge.asr.install import add

    source = tmp_path / "m.zip"
    source.write_bytes(_zip(patch=_nameless))
    assert [i.filename for i in zipfile.ZipFile(source).infolist()] == [""]
    with pytest.raises(ArchiveError, match="has no name"):
        add(source, tmp_path / "models")


def test_tar_made_with_dot_entries_still_installs_past_the_name_checks(tmp_path):
    """`tar -C model -czf m.tgz .` writes "./" and "./x" entries: not refused as nameless or escaping."""
    import tarfile

    from edge.asr.install import _extract

    source = tmp_path / "m.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        info = tarfile.TarInfo("./")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        info = tarfile.TarInfo("./tokens.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"a 0"))
    _extract(source, tmp_path / "out")
    assert (tmp_path / "out" / "tokens.txt").read_bytes() == b"a 0"


@pytest.mark.parametrize("reply", [b"Response: Timeout\r\nActionID: fuzz-1\r\n\r\n",
                                   b"Response: Disconnected\r\nActionID: fuzz-1\r\n\r\n"])
def test_ami_reply_that_names_an_outcome_without_a_message(reply):
    # The PBX, not only our client, can say Timeout / Disconnected; without a Message field it was a KeyError.
    from tests.helpers.fuzz_targets import ami_stream

    ami_stream(reply)
