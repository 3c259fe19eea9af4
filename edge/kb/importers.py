"""Read knowledge files: CSV, JSONL and Markdown, all to the same entries.

CSV and JSONL fields: question, answer (required); tags, source, aliases, id
(optional). Tags and aliases are lists in JSONL, `|`-separated in CSV.
Markdown: one entry per `## question` heading, its paragraphs the answer;
lines `tags:` / `标签:`, `source:` / `来源:`, `aliases:` / `别名:`, `id:` set
the other fields. A whole file is checked before anything is written: the
first problem raises KnowledgeError with the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.errors import KnowledgeError
from edge.textfile import read_text

MAX_FILE_BYTES: Final = 50 * 1024 * 1024
MAX_QUESTION_CHARS: Final = 300
MAX_ANSWER_CHARS: Final = 5000
FORMATS: Final = (".csv", ".jsonl", ".md")
_LIST_SPLIT: Final = re.compile(r"\s*[|｜]\s*")
_TAG_SPLIT: Final = re.compile(r"\s*[|｜,，、;；]\s*")
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MD_META: Final = {"tags": "tags", "标签": "tags", "source": "source", "来源": "source", "aliases": "aliases",
                   "别名": "aliases", "相似问": "aliases", "id": "id"}


@dataclass(frozen=True)
class Entry:
    """One question and its answer."""

    id: str
    question: str
    answer: str
    tags: tuple[str, ...] = ()
    source: str = ""
    """Where the answer comes from (a price list, a manual page)."""
    aliases: tuple[str, ...] = ()
    """Other ways to ask the same question."""
    where: str = ""
    """file:line it was read from."""

    def digest(self) -> str:
        """Content hash: a re-import rewrites an entry only when this changes."""
        payload = json.dumps([self.question, self.answer, self.tags, self.source, self.aliases], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read(path: str | Path) -> list[Entry]:
    """Entries of one knowledge file, by its extension (.csv, .jsonl, .md).

    Raises:
        KnowledgeError: unknown format, unreadable file, bad encoding, malformed
            row, missing or over-long field, duplicate id or question.
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise KnowledgeError(f"{path}: unknown knowledge format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    text = read_text(path, "knowledge file", MAX_FILE_BYTES, KnowledgeError)
    reader = {".csv": _csv, ".jsonl": _jsonl, ".md": _markdown}[path.suffix.lower()]
    entries = reader(text, str(path))
    if not entries:
        raise KnowledgeError(f"{path}: no entries found")
    _check_unique(entries)
    return entries


def _entry(fields: dict[str, Any], where: str) -> Entry:
    question = _text(fields.get("question"), "question", where, MAX_QUESTION_CHARS)
    answer = _text(fields.get("answer"), "answer", where, MAX_ANSWER_CHARS)
    tags = _list(fields.get("tags"), _TAG_SPLIT, "tags", where)
    aliases = _list(fields.get("aliases"), _LIST_SPLIT, "aliases", where)
    for alias in aliases:
        _text(alias, "alias", where, MAX_QUESTION_CHARS)
    source = fields.get("source") or ""
    if not isinstance(source, str):
        raise KnowledgeError(f"{where}: source must be text")
    entry_id = fields.get("id") or ""
    if not isinstance(entry_id, str) or (entry_id and not _ID.fullmatch(entry_id)):
        raise KnowledgeError(f"{where}: id {entry_id!r} must be 1-64 letters, digits, '_', '.' or '-'")
    if not entry_id:
        entry_id = "q-" + hashlib.sha256(" ".join(question.split()).encode()).hexdigest()[:12]
    return Entry(entry_id, question, answer, tags, source.strip(), aliases, where)


def _text(value: Any, name: str, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeError(f"{where}: empty or missing {name}")
    value = " ".join(value.split())
    if len(value) > limit:
        raise KnowledgeError(f"{where}: {name} of {len(value)} characters; at most {limit}")
    return value


def _list(value: Any, split: re.Pattern, name: str, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = split.split(value.strip())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KnowledgeError(f"{where}: {name} must be a list of text")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


def _csv(text: str, name: str) -> list[Entry]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ("question", "answer") if c not in header]
        if missing:
            raise KnowledgeError(f"{name}:1: header lacks {missing}; expected question,answer[,tags,source,aliases,id]")
        unknown = [h for h in header if h not in ("question", "answer", "tags", "source", "aliases", "id")]
        if unknown:
            raise KnowledgeError(f"{name}:1: unknown column(s) {unknown}; known: question,answer,tags,source,aliases,id")
        reader.fieldnames = header
        entries = []
        for row in reader:
            where = f"{name}:{reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                raise KnowledgeError(f"{where}: {len(header)} fields expected (quote fields that contain commas)")
            if all(not (v or "").strip() for v in row.values()):
                continue
            entries.append(_entry(row, where))
        return entries
    except csv.Error as exc:
        raise KnowledgeError(f"{name}:{reader.line_num}: malformed CSV ({exc})") from None


def _jsonl(text: str, name: str) -> list[Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KnowledgeError(f"{where}: not a JSON object ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:  # a 5000-digit number, [[[[... nested past the stack
            raise KnowledgeError(f"{where}: not a usable JSON object ({str(exc)[:80]})") from None
        if not isinstance(fields, dict):
            raise KnowledgeError(f"{where}: each line must be a JSON object with question and answer")
        unknown = [k for k in fields if k not in ("question", "answer", "tags", "source", "aliases", "id")]
        if unknown:
            raise KnowledgeError(f"{where}: unknown field(s) {unknown}")
        entries.append(_entry(fields, where))
    return entries


def _markdown(text: str, name: str) -> list[Entry]:
    entries, current, start = [], None, 0

    def finish():
        if current is not None:
            current["answer"] = "\n".join(current.pop("lines")).strip()
            entries.append(_entry(current, f"{name}:{start}"))

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            finish()
            current, start = {"question": line[3:].strip(), "lines": []}, number
            continue
        if current is None:
            if line.strip() and not line.startswith("#"):
                raise KnowledgeError(f"{name}:{number}: text before the first `## question` heading")
            continue
        if not line.strip() and not current["lines"]:
            continue
        meta = re.match(r"^\s*([A-Za-z\u4e00-\u9fff]+)\s*[:：]\s*(.*)$", line)
        if meta and meta.group(1).lower() in _MD_META and not current["lines"]:
            current[_MD_META[meta.group(1).lower()]] = meta.group(2).strip()
            continue
        current["lines"].append(line)
    finish()
    return entries


def _check_unique(entries: list[Entry]) -> None:
    ids: dict[str, str] = {}
    questions: dict[str, str] = {}
    for entry in entries:
        key = entry.question.lower()
        if key in questions:
            raise KnowledgeError(f"{entry.where}: duplicate question {entry.question!r} (first at {questions[key]})")
        questions[key] = entry.where
        if entry.id in ids:
            raise KnowledgeError(f"{entry.where}: duplicate id {entry.id!r} (first at {ids[entry.id]})")
        ids[entry.id] = entry.where
