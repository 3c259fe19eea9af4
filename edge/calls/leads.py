"""Lead lists: import a CSV into a campaign (validated, normalised, deduplicated),
read leads back.

Columns: phone (required), name, company, tags, timezone, under any of the
header names in edge/data/lead_columns.yaml; every other column is kept as a
script variable ({column} in the script). A row is rejected, with its line
and the reason, when its number is not a mainland China number, is already
in the campaign or earlier in the file, is on the do-not-call list, or a
field is too long. The file is read as a stream and written in one
transaction: a file that cannot be read as a whole adds nothing.

Example:
    >>> report = import_leads(records.db, campaign, "leads.csv")
    >>> report.accepted, [(r.line, r.reason) for r in report.rejections][:1]
    (998, [(7, "'1380013800' has 10 digits: a mobile has 11, a landline 0 + area code + 7-8")])
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml
from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from edge.calls import phone as _phone
from edge.calls.csvfile import open_csv
from edge.calls.schedule import zone
from edge.config import DATA_DIR
from edge.errors import CampaignError, InputError
from edge.telephony.privacy import mask_phone

COLUMNS_FILE: Final = DATA_DIR / "lead_columns.yaml"
MAX_VALUE_CHARS: Final = 500
"""A name, company, tag list or variable longer than this rejects its row."""
MAX_COLUMNS: Final = 100
BATCH: Final = 2000
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_TAG_SPLIT: Final = re.compile(r"[,，;；|、]")

Progress = Callable[[int], None]
"""Called with the bytes read so far."""


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    code: str
    """phone | duplicate | dnc | too_long | columns | timezone | malformed"""
    value: str = ""
    """The phone cell as written (masked, cut to 40 characters)."""


@dataclass
class ImportReport:
    file: str
    campaign: str
    encoding: str
    delimiter: str
    accepted: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    """Extra columns kept as script variables."""
    notes: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def reasons(self) -> dict[str, int]:
        """Rejections counted by code."""
        return dict(Counter(r.code for r in self.rejections))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rejected": self.rejected, "reasons": self.reasons()}


@dataclass(frozen=True)
class Lead:
    """One lead of a campaign, as the dialler sees it."""

    id: int
    campaign_id: int
    name: str
    company: str
    e164: str
    tags: list[str]
    vars: dict[str, str]
    status: str
    attempts: int
    next_at: str | None
    grade: str | None = None
    last_result: str | None = None

    def script_vars(self) -> dict[str, str]:
        """What the script's {variables} and the post-call JSON get."""
        return {**self.vars, "lead_name": self.name, "company": self.company, "phone": self.e164}

    @property
    def timezone(self) -> str | None:
        return self.vars.get("timezone")


LEAD_STATUSES: Final = ("pending", "retry", "callback", "in_call", "done", "exhausted", "dnc", "failed")
"""pending: never dialled; retry / callback: waiting for next_at; in_call: being dialled; done: talked;
exhausted: retries used up; dnc: on the do-not-call list; failed: the number does not exist."""


@functools.lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    data = yaml.safe_load(COLUMNS_FILE.read_text(encoding="utf-8"))
    return {_norm_header(alias): column for column, names in data.items() for alias in names}


def _norm_header(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "_")


def _clean(value: str) -> str:
    if value.isprintable() and "  " not in value and value == value.strip():
        return value  # the common case
    return " ".join(_CONTROL.sub("", value).split())


_json: Final = json.JSONEncoder(ensure_ascii=False).encode


def import_leads(db: Database, campaign_id: int, campaign_name: str, path: str | Path, *,
                 encoding: str | None = None, default_area_code: str | None = None,
                 progress: Progress | None = None, now: datetime | None = None) -> ImportReport:
    """Import a lead CSV into a campaign.

    Raises:
        InputError: the file is unreadable, not UTF-8/GBK text, has no phone column, or breaks off
            mid-file with bytes of another encoding (nothing is imported then).
    """
    from edge.calls import dnc as _dnc

    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    with open_csv(path, encoding) as table:
        report = ImportReport(str(path), campaign_name, table.encoding.label,
                              {"\t": "tab", ",": "comma", ";": "semicolon"}[table.delimiter])
        if note := table.encoding.note():
            report.notes.append(note)
        columns = _map_columns(table.header, str(path))
        report.variables = [h for h, c in columns if c is None]
        seen: dict[str, int] = {row[0]: -1 for row in db.execute(
            "select e164 from leads where campaign_id = ? and e164 is not null", [campaign_id])}
        blocked = _dnc.blocked_keys(db)
        batch: list[dict[str, Any]] = []
        with db.atomic():  # one transaction: all accepted rows or none
            for row in table.rows():
                lead = _lead(row, columns, len(table.header), default_area_code, seen, blocked, report)
                if lead is not None:
                    batch.append({**lead, "campaign_id": campaign_id, "status": "pending", "attempts": 0,
                                  "created_at": stamp, "updated_at": stamp, "line": row.line})
                    report.accepted += 1
                if len(batch) >= BATCH:
                    _insert(db, batch)
                    batch = []
                    if progress is not None:
                        progress(table.bytes_read())
            _insert(db, batch)
        if progress is not None:
            progress(table.size)
    return report


def _map_columns(header: list[str], name: str) -> list[tuple[str, str | None]]:
    if len(header) > MAX_COLUMNS:
        raise InputError(f"{name}: {len(header)} columns; a lead list has at most {MAX_COLUMNS}")
    aliases = _aliases()
    mapped: list[tuple[str, str | None]] = []
    taken: set[str] = set()
    for title in header:
        column = aliases.get(_norm_header(title))
        if column in taken:
            column = None  # a second phone column stays a variable
        if column:
            taken.add(column)
        mapped.append((_clean(title) or f"column{len(mapped) + 1}", column))
    if "phone" not in taken:
        known = sorted(k for k, v in aliases.items() if v == "phone")
        raise InputError(f"{name}: no phone column in the header {header[:8]}; name it one of {known[:8]}")
    return mapped


def _lead(row, columns, width: int, area: str | None, seen: dict[str, int], blocked: set[str],
          report: ImportReport) -> dict[str, Any] | None:
    def reject(reason: str, code: str, value: str = "") -> None:
        report.rejections.append(Rejection(row.line, reason, code, mask_phone(value[:40]) if value else ""))

    if row.fields is None:
        reject(row.error or "unreadable row", "too_long" if "longer" in (row.error or "") else "malformed")
        return None
    if len(row.fields) > width and any(f.strip() for f in row.fields[width:]):
        reject(f"{len(row.fields)} fields but the header has {width} (a comma inside an unquoted value?)",
               "columns")
        return None
    values: dict[str, str] = {}
    variables: dict[str, str] = {}
    for (title, column), raw in zip(columns, row.fields, strict=False):  # short rows: missing cells
        if len(raw) > MAX_VALUE_CHARS:
            reject(f"column {title} is {len(raw)} characters long (at most {MAX_VALUE_CHARS})", "too_long")
            return None
        value = _clean(raw)
        if column is None:
            if value:
                variables[title] = value
        else:
            values[column] = value
    raw_phone = values.get("phone", "")
    try:
        number = _phone.parse(raw_phone, area)
    except _phone.PhoneError as exc:
        reject(str(exc), "phone", raw_phone)
        return None
    if number.e164 in seen:
        first = seen[number.e164]
        reject("already in this campaign" if first < 0 else f"duplicate of line {first}", "duplicate", raw_phone)
        return None
    if number.e164 in blocked:
        reject("on the do-not-call list", "dnc", raw_phone)
        return None
    if values.get("timezone"):
        try:
            zone(values["timezone"])
        except CampaignError as exc:
            reject(str(exc), "timezone")
            return None
        variables["timezone"] = values["timezone"]
    seen[number.e164] = row.line
    tag_text = values.get("tags", "")
    tags = [t.strip() for t in _TAG_SPLIT.split(tag_text) if t.strip()] if tag_text else []
    return {"name": values.get("name", ""), "company": values.get("company", ""), "phone": number.e164,
            "e164": number.e164, "tags": _json(tags) if tags else "[]",
            "vars": _json(variables) if variables else "{}"}


def _insert(db: Database, batch: list[dict[str, Any]]) -> None:
    if not batch:
        return
    keys = list(batch[0])
    db.conn.executemany(f"insert into leads ({', '.join(keys)}) values ({', '.join('?' for _ in keys)})",
                        [tuple(item[k] for k in keys) for item in batch])


def from_row(row: dict[str, Any]) -> Lead:
    return Lead(id=row["id"], campaign_id=row["campaign_id"], name=row["name"] or "", company=row["company"] or "",
                e164=row["e164"] or row["phone"] or "", tags=json.loads(row["tags"] or "[]"),
                vars=json.loads(row["vars"] or "{}"), status=row["status"], attempts=row["attempts"] or 0,
                next_at=row["next_at"], grade=row.get("grade"), last_result=row.get("last_result"))


def get(db: Database, lead_id: int) -> Lead:
    try:
        return from_row(db["leads"].get(lead_id))
    except NotFoundError:
        raise InputError(f"no lead with id {lead_id}") from None
