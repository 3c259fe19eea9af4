"""`salesbot models add`: install a speech model directory or archive into the data directory.

The model is unpacked into a temporary directory beside the target, checked
with :func:`edge.asr.modeldir.inspect` (files, metadata, bundle checksums),
and only then renamed into place, so a bad model never replaces a good one.
Archive entries that would land outside the target (absolute paths, `..`,
symbolic or hard links, devices) are refused before anything is written, as
are archives that unpack to more than MAX_UNPACKED_BYTES or MAX_MEMBERS
entries (a "zip bomb" would fill the data directory's disk).
"""

from __future__ import annotations

import logging
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from edge.asr.modeldir import ModelDir, inspect
from edge.errors import ArchiveError, InputError

_LOGGER = logging.getLogger(__name__)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
MAX_UNPACKED_BYTES = 8 * 1024**3
"""Largest model an archive may unpack to (the biggest sherpa-onnx Chinese models are ~1 GB)."""
MAX_MEMBERS = 20_000
# What a damaged archive raises besides its module's own error: decompressors' errors, a
# truncated stream, an encrypted or unsupported zip entry (RuntimeError, NotImplementedError).
_UNREADABLE = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError, RuntimeError,
               NotImplementedError, ValueError)


def add(source: str | Path, models_dir: Path, name: str | None = None, force: bool = False) -> tuple[Path, ModelDir]:
    """Install ``source`` (directory or archive) as ``models_dir/name``; return (path, checked model)."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"model not found: {source}")
    name = name or _default_name(source)
    if not name or "/" in name or name in (".", ".."):
        raise InputError(f"bad model name {name!r}; pass --name with a plain directory name")
    target = Path(models_dir) / name
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        if source.is_dir():
            try:
                shutil.copytree(source, staging / "model", symlinks=False)
            except OSError as exc:  # shutil.Error too: a dangling link, an unreadable file
                raise InputError(f"cannot copy the model directory {source}: {str(exc)[:200]}") from None
            root = staging / "model"
        else:
            _extract(source, staging / "model")
            root = _single_top_dir(staging / "model")
        model = inspect(root)
        if target.exists():
            shutil.rmtree(target)
        os.replace(root, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _LOGGER.info("installed %s model %s at %s", model.backend, model.kind, target)
    return target, model


def _default_name(source: Path) -> str:
    base = source.name
    for suffix in ARCHIVE_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _single_top_dir(root: Path) -> Path:
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def _safe_member(archive: Path, name: str) -> PurePosixPath:
    if not name:  # zipfile's is_dir() fails on it; "./" (tar -C dir .) stays fine
        raise ArchiveError(f"{archive}: an entry has no name ({name!r}); refusing the archive")
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: entry {name!r} has an absolute path; refusing to unpack it")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: entry {name!r} climbs out of the target directory ('..'); refusing it")
    return path


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    if archive.name.endswith(".zip"):
        _extract_zip(archive, dest)
    elif archive.name.endswith(ARCHIVE_SUFFIXES):
        _extract_tar(archive, dest)
    else:
        raise ArchiveError(f"{archive}: not a directory or a supported archive ({', '.join(ARCHIVE_SUFFIXES)})")


def _check_size(archive: Path, count: int, total: int) -> None:
    if count > MAX_MEMBERS:
        raise ArchiveError(f"{archive}: {count} entries; a model archive has at most {MAX_MEMBERS}")
    if total > MAX_UNPACKED_BYTES:
        raise ArchiveError(f"{archive}: unpacks to {total / 1024**3:.1f} GB, over the "
                           f"{MAX_UNPACKED_BYTES / 1024**3:.0f} GB limit for a model; is it the right file?")


def _copy(archive: Path, source: BinaryIO, target: Path, size: int) -> None:
    """Copy at most the entry's declared size (an entry must not grow past what was checked)."""
    with open(target, "wb") as out:
        left = size
        while block := source.read(min(1 << 20, left + 1)):
            left -= len(block)
            if left < 0:
                raise ArchiveError(f"{archive}: entry {target.name!r} is longer than its header says")
            out.write(block)


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _check_size(archive, len(members), sum(m.size for m in members if m.isfile()))
            for member in members:
                _safe_member(archive, member.name)
                if member.issym() or member.islnk():
                    raise ArchiveError(f"{archive}: entry {member.name!r} is a link ({member.linkname!r}); "
                                       "model archives must hold plain files")
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(f"{archive}: entry {member.name!r} is not a file or directory")
            for member in members:
                target = dest / _safe_member(archive, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy(archive, tar.extractfile(member), target, member.size)
    except _UNREADABLE as exc:
        raise ArchiveError(f"{archive}: unreadable archive ({str(exc)[:200]})") from None


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_size(archive, len(infos), sum(i.file_size for i in infos))
            for info in infos:
                _safe_member(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise ArchiveError(f"{archive}: entry {info.filename!r} is a symbolic link; "
                                       "model archives must hold plain files")
            for info in infos:
                target = dest / _safe_member(archive, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source:
                    _copy(archive, source, target, info.file_size)
    except _UNREADABLE as exc:
        raise ArchiveError(f"{archive}: unreadable archive ({str(exc)[:200]})") from None
