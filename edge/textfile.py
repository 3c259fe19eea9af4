"""Reading a user's text file (corpus, script, knowledge, caller lines) safely."""

from __future__ import annotations

from pathlib import Path

from edge.errors import SalesbotError


def read_text(path: str | Path, what: str, max_bytes: int, error: type[SalesbotError]) -> str:
    """UTF-8 (BOM allowed) text of a file, or `error` naming the file, the line and the fix.

    Args:
        path: the file.
        what: how messages name it ("script", "caller file", ...).
        max_bytes: larger files are refused before decoding.
        error: the SalesbotError subclass to raise.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise error(f"{path}: {len(raw)} bytes; a {what} is at most {max_bytes} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not valid UTF-8 (save the {what} as UTF-8; GBK is not accepted)") from None
