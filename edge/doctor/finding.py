"""One result of a doctor check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Finding:
    name: str
    """What was checked: "python", "package numpy", "bundle intent", "data directory", ..."""
    status: Status
    """"fail" makes `salesbot doctor` exit 1; "warn" is worth a look; "skip" did not apply here."""
    detail: str
    """What was found."""
    fix: str | None = None
    """What to do about it (for warn and fail)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
