"""Read labelled utterance CSVs: the project's corpus and users' own files.

Two formats are accepted, told apart by the header:
- the seed's: `transcript,intent_label`
- the project's: `transcript,intent_label,dialect,family`
A compound utterance carries two labels joined by `|`. Every problem is
reported with file and line; nothing is silently dropped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Iterable

from edge.errors import CorpusError
from edge.textfile import read_text

REQUIRED: Final = ("transcript", "intent_label")
OPTIONAL: Final = ("dialect", "family")
DIALECTS: Final = ("mandarin", "cantonese", "sichuanese")
LABEL_SEPARATOR: Final = "|"
MAX_TEXT_CHARS: Final = 500
MAX_FILE_BYTES: Final = 200 * 1024 * 1024


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[str, ...]
    dialect: str
    family: str
    source: str
    """file:line, for messages."""

    @property
    def is_compound(self) -> bool:
        return len(self.labels) > 1


def parse_labels(raw: str, where: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in raw.split(LABEL_SEPARATOR))
    if not raw.strip() or any(not part for part in parts):
        raise CorpusError(f"{where}: empty intent label {raw!r}")
    if len(set(parts)) != len(parts):
        raise CorpusError(f"{where}: label repeated in {raw!r}")
    return parts


def read_csv(path: str | Path, known_labels: Iterable[str] | None = None) -> list[Example]:
    """Load and validate one CSV.

    Raises:
        CorpusError: unreadable file, bad encoding, missing columns, empty text,
            empty or unknown label, bad dialect, or a duplicate text (also when
            the duplicate carries another label). The message names file and line.
    """
    path = Path(path)
    text = read_text(path, "labelled CSV", MAX_FILE_BYTES, CorpusError)
    return parse_rows(text, str(path), known_labels)


def parse_rows(text: str, name: str, known_labels: Iterable[str] | None = None) -> list[Example]:
    known = set(known_labels) if known_labels is not None else None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CorpusError(f"{name}: empty file; expected a header `transcript,intent_label`") from None
    except csv.Error as exc:
        raise CorpusError(f"{name}:1: malformed CSV ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CorpusError(f"{name}:1: header lacks column(s) {missing}; expected `transcript,intent_label[,dialect,family]`")
    index = {c: header.index(c) for c in REQUIRED + OPTIONAL if c in header}
    examples: list[Example] = []
    seen: dict[str, str] = {}
    try:
        for row in reader:
            line = reader.line_num
            where = f"{name}:{line}"
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CorpusError(f"{where}: {len(row)} fields, header has {len(header)} (quote fields that contain commas)")
            transcript = row[index["transcript"]].strip()
            if not transcript:
                raise CorpusError(f"{where}: empty transcript")
            if len(transcript) > MAX_TEXT_CHARS:
                raise CorpusError(f"{where}: transcript of {len(transcript)} characters; an utterance is at most {MAX_TEXT_CHARS}")
            labels = parse_labels(row[index["intent_label"]], where)
            if known is not None:
                unknown = [label for label in labels if label not in known]
                if unknown:
                    raise CorpusError(f"{where}: unknown intent label(s) {unknown}")
            dialect = row[index["dialect"]].strip() if "dialect" in index else "mandarin"
            if dialect not in DIALECTS:
                raise CorpusError(f"{where}: dialect {dialect!r} not one of {DIALECTS}")
            family = row[index["family"]].strip() if "family" in index else ""
            if transcript in seen:
                raise CorpusError(f"{where}: duplicate transcript {transcript!r} (first at line {seen[transcript]})")
            seen[transcript] = str(line)
            examples.append(Example(transcript, labels, dialect, family or f"{name}:{line}", where))
    except csv.Error as exc:
        raise CorpusError(f"{name}:{reader.line_num}: malformed CSV ({exc})") from None
    if not examples:
        raise CorpusError(f"{name}: no labelled rows")
    return examples


def read_corpus(paths: Iterable[str | Path], known_labels: Iterable[str] | None = None) -> list[Example]:
    """Read CSV files or directories of them (sorted); duplicates across files are errors too."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.glob("*.csv")))
        else:
            files.append(path)
    if not files:
        raise CorpusError(f"no CSV files in {list(map(str, paths))}")
    examples: list[Example] = []
    first_seen: dict[str, str] = {}
    for file in files:
        for example in read_csv(file, known_labels):
            if example.text in first_seen:
                raise CorpusError(f"{example.source}: duplicate transcript {example.text!r} (also at {first_seen[example.text]})")
            first_seen[example.text] = example.source
            examples.append(example)
    return examples
