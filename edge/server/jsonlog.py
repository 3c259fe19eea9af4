"""Logs for journald: one JSON object per line on stdout, phone numbers masked.

Each line has `ts` (UTC), `level`, `logger`, `msg` and whatever the code passed
in `extra=` (`event`, `call_id`, `transport`, ...). Messages, tracebacks and the
number-carrying fields (caller, callee, phone, ...) go through `mask_phone`.

Example:
    >>> import io
    >>> stream = io.StringIO()
    >>> setup(logging.INFO, stream)
    >>> logging.getLogger("demo").info("dialled %s", "13800138000", extra={"event": "dial"})
    >>> json.loads(stream.getvalue())["msg"]
    'dialled 138****8000'
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from edge.telephony.privacy import mask_phone

__all__ = ["JsonFormatter", "setup"]

_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                     "taskName"}
_NUMBER_FIELDS: Final = frozenset({"caller", "callee", "phone", "number", "from", "to", "lead_phone"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": mask_phone(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_") or key in out:
                continue
            out[key] = mask_phone(str(value)) if key in _NUMBER_FIELDS and value is not None else value
        if record.exc_info:
            out["exc"] = mask_phone(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stdout) as JSON lines, replacing other root handlers."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiohttp.access", "websockets", "asyncio", "edge.telephony.websocket_media.protocol"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
