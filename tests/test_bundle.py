import json

import pytest

from edge.bundle import Bundle, sha256_file
from edge.errors import BundleError


def make_bundle(root, files=None, kind="intent"):
    root.mkdir(parents=True, exist_ok=True)
    files = files or {"a.bin": b"abc", "sub/b.txt": b"hello"}
    entries = {}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        entries[name] = {"sha256": sha256_file(root / name), "bytes": len(data)}
    (root / "manifest.json").write_text(json.dumps({"kind": kind, "format_version": 1, "files": entries}))
    return root


def test_round_trip(tmp_path):
    bundle = Bundle.open(make_bundle(tmp_path / "b"), kind="intent")
    assert bundle.path("sub/b.txt").read_bytes() == b"hello"
    with pytest.raises(BundleError, match="lists no file"):
        bundle.path("other.bin")


def test_checksum_mismatch_names_file(tmp_path):
    root = make_bundle(tmp_path / "b")
    (root / "a.bin").write_bytes(b"abd")
    with pytest.raises(BundleError, match=r"a\.bin: sha256 mismatch"):
        Bundle.open(root, kind="intent")


def test_missing_file(tmp_path):
    root = make_bundle(tmp_path / "b")
    (root / "sub" / "b.txt").unlink()
    with pytest.raises(BundleError, match=r"file sub/b\.txt listed in the manifest is missing"):
        Bundle.open(root, kind="intent")


def test_wrong_kind_missing_dir_and_manifest(tmp_path):
    root = make_bundle(tmp_path / "b", kind="asr")
    with pytest.raises(BundleError, match="kind is 'asr', expected 'intent'"):
        Bundle.open(root, kind="intent")
    with pytest.raises(BundleError, match="not found"):
        Bundle.open(tmp_path / "none", kind="intent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.open(tmp_path / "empty", kind="intent")


@pytest.mark.parametrize("manifest", ["{not json", "[]", '{"kind": "intent", "format_version": 1}',
                                      '{"kind": "intent", "format_version": 99, "files": {}}',
                                      '{"kind": "intent", "format_version": 1, "files": {"x": {}}}'])
def test_malformed_manifest(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(BundleError):
        Bundle.open(tmp_path, kind="intent")


def test_entry_escaping_bundle_is_refused(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    root = tmp_path / "b"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"kind": "intent", "format_version": 1, "files": {
        "../secret.txt": {"sha256": sha256_file(outside)}}}))
    with pytest.raises(BundleError, match="outside the bundle"):
        Bundle.open(root, kind="intent")
