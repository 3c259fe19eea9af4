"""`salesbot models add` against generated hostile archives: '../', absolute paths, Windows drive
names, backslashes, symbolic and hard links, devices and FIFOs, duplicate names, a file where a
directory should be. The contract: installed, or refused with ArchiveError/InputError/ModelDirError,
and never a file written outside the models directory (checked by listing the whole scratch tree,
and by a canary path that absolute entries aim at)."""

from __future__ import annotations

import io
import tarfile
import warnings
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.fuzz_targets import Escaped, install_archive, scratch
from tests.test_fuzz_parsers import assert_ok

CANARY = "canary-written-by-archive"
parts = st.sampled_from(["m", "..", ".", "", "a", "tokens.txt", "model.onnx", "C:", "\\..\\x", CANARY, "...",
                         "a\\..\\..", "~"])


@st.composite
def member_names(draw) -> str:
    name = "/".join(draw(st.lists(parts, min_size=1, max_size=5)))
    if draw(st.integers(0, 5)) == 0:
        name = str(scratch().parent.parent / CANARY) + "/" + name  # absolute: aimed at the canary
    return name


kinds = st.sampled_from(["file", "file", "file", "dir", "sym", "hard", "fifo", "chr"])
members = st.lists(st.tuples(member_names(), kinds, st.binary(max_size=64), member_names()), min_size=1, max_size=6)
HOSTILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tar_bytes(entries, mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, kind, payload, link in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            info.linkname = link if kind in ("sym", "hard") else ""
            tar.addfile(info)
    return buffer.getvalue()


def zip_bytes(entries) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are part of the attack
        for name, kind, payload, link in entries:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            if kind == "sym":  # how zip marks a symbolic link: S_IFLNK in the Unix mode
                info.external_attr = 0o120777 << 16
                payload = link.encode()
            elif kind == "fifo":
                info.external_attr = 0o010644 << 16
            zf.writestr(info, payload)
    return buffer.getvalue()


def assert_contained(data: bytes, suffix: str) -> None:
    assert_ok({".zip": "model_archive_zip", ".tar": "model_archive_tar"}.get(suffix, "model_archive_tgz"), data)
    assert not (scratch().parent.parent / CANARY).exists(), "an absolute entry was written"


@HOSTILE
@given(entries=members, mode=st.sampled_from(["w", "w:gz"]))
def test_hostile_tar_archives_never_write_outside(entries, mode):
    assert_contained(tar_bytes(entries, mode), ".tar" if mode == "w" else ".tar.gz")


@HOSTILE
@given(entries=members)
def test_hostile_zip_archives_never_write_outside(entries):
    assert_contained(zip_bytes(entries), ".zip")


def test_the_escape_check_itself_catches_an_escape(tmp_path):
    """If the product ever wrote outside, would the target see it? Plant a file the way an escape would."""
    import pytest

    from tests.helpers import fuzz_targets

    original = fuzz_targets._file

    def escaping(name, data):
        (scratch() / "escaped.txt").write_bytes(b"x")  # beside models/, as '../escaped.txt' would land
        return original(name, data)

    fuzz_targets._file = escaping
    try:
        with pytest.raises(Escaped):
            install_archive(b"not an archive", ".zip")
    finally:
        fuzz_targets._file = original
        (scratch() / "escaped.txt").unlink(missing_ok=True)
