"""What a recognizer reports: partial and final results with timestamps."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Result:
    """One hypothesis for one stretch of caller speech."""

    text: str
    """The recognized text (after the bundle's rescoring, if any)."""
    is_final: bool
    """False for a partial that may still change; True once the segment ended."""
    start_s: float
    """Segment start, seconds from the start of the stream."""
    end_s: float
    """Segment end, seconds from the start of the stream."""
    tokens: tuple[str, ...] = ()
    """Output tokens (characters or words), where the backend reports them."""
    timestamps: tuple[float, ...] = ()
    """Start time of each token, seconds from the start of the stream."""
    raw_text: str | None = None
    """The backend's text before rescoring (for a turn of unknown language searched again under a guessed
    language's graph, the first, greedy search's); None when neither ran."""

    def to_dict(self) -> dict:
        return asdict(self)
