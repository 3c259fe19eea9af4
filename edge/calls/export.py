"""Exports for CRMs: the calls of a campaign (and date range) as CSV or JSON,
and one call as JSON.

CSV cells that a spreadsheet would run as a formula (starting with = + - @,
a tab or a carriage return, e.g. a lead named `=HYPERLINK(...)` or
`=cmd|' /C calc'!A0`) are written with a leading apostrophe, so Excel and
WPS show them as text. Plain numbers are left alone. The CSV starts with a
UTF-8 BOM so Excel on Chinese Windows opens it without garbling. Phone
numbers are masked unless `unmask`; the CSV has them in the national form
CRMs in China store (13800138000, 02187654321), the JSON in E.164.

Example:
    >>> with open("calls.csv", "w", encoding="utf-8-sig", newline="") as out:
    ...     export_calls(db, out, "csv", CallFilter(campaign="三月华东"))
    120
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from typing import Any, Final, TextIO

from sqlite_utils import Database

from edge.calls.phone import national
from edge.calls.query import CallFilter, call_detail, iter_calls
from edge.errors import InputError
from edge.telephony.privacy import mask_phone

FORMATS: Final = ("csv", "json")
FORMAT_TAG: Final = "edge-salesbot/calls@1"
CSV_COLUMNS: Final = ("call_id", "campaign", "started_at", "ended_at", "duration_s", "attempt", "disposition",
                      "outcome", "grade", "dnc", "lead_name", "company", "phone", "tags", "tasks", "objections",
                      "intents", "variables", "transcript")
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER: Final = re.compile(r"^[+-]?\d+(\.\d+)?$")


def escape_cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet will evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _intents_and_tasks(db: Database, call_ids: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    intents: dict[str, list[str]] = {}
    tasks: dict[str, list[str]] = {}
    if not call_ids:
        return intents, tasks
    marks = ",".join("?" for _ in call_ids)
    for row in db.execute(f"select call_id, intents from turns where call_id in ({marks}) order by call_id, idx",
                          call_ids):
        intents.setdefault(row[0], []).extend(json.loads(row[1]))
    for row in db.execute(f"select call_id, kind, due, channel from tasks where call_id in ({marks})", call_ids):
        tasks.setdefault(row[0], []).append(f"{row[1]}@{row[2]} via {row[3]}")
    return intents, tasks


def _chunks(rows: Iterable[dict[str, Any]], size: int = 500) -> Iterable[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def export_calls(db: Database, out: TextIO, fmt: str, filters: CallFilter, *, unmask: bool = False,
                 transcripts: bool = True) -> int:
    """Write the calls matching `filters` to `out` (oldest last); returns how many.

    Raises:
        InputError: an unknown format or a bad date.
    """
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {FORMATS}, got {fmt!r}")
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    else:
        out.write(f'{{"format": "{FORMAT_TAG}", "calls": [')
    count = 0
    for chunk in _chunks(iter_calls(db, filters, unmask=True)):
        intents, tasks = _intents_and_tasks(db, [row["id"] for row in chunk])
        for row in chunk:
            transcript = _transcript(db, row["id"], unmask) if transcripts else []
            if writer is not None:
                row["phone"] = national(row["phone"]) if row["phone"] else ""  # what Chinese CRMs store
            if not unmask:
                row["phone"] = mask_phone(row["phone"]) if row["phone"] else ""
            if writer is not None:
                writer.writerow([escape_cell(v) for v in (
                    row["id"], row["campaign"], row["started_at"], row["ended_at"], row["duration_s"],
                    row["attempt"], row["disposition"], row["outcome"], row["grade"], row["dnc"],
                    row["lead_name"], row["company"], row["phone"], ";".join(row["tags"]),
                    "; ".join(tasks.get(row["id"], [])), ";".join(row["objections"]),
                    ";".join(intents.get(row["id"], [])), json.dumps(row["vars"], ensure_ascii=False),
                    "\n".join(f"{line['speaker']}: {line['text']}" for line in transcript))])
            else:
                item = {k: row[k] for k in ("campaign", "started_at", "ended_at", "duration_s", "attempt",
                                            "disposition", "outcome", "grade", "dnc", "lead_name", "company",
                                            "phone", "tags", "objections")}
                item = {"call_id": row["id"], **item, "variables": row["vars"], "tasks": tasks.get(row["id"], []),
                        "intents": intents.get(row["id"], [])}
                if transcripts:
                    item["transcript"] = transcript
                out.write(("," if count else "") + "\n " + json.dumps(item, ensure_ascii=False))
            count += 1
    if writer is None:
        out.write("\n]}\n")
    return count


def _transcript(db: Database, call_id: str, unmask: bool) -> list[dict[str, Any]]:
    return call_detail(db, call_id, unmask=unmask)["transcript"]


def call_json(db: Database, call_id: str, *, unmask: bool = False) -> dict[str, Any]:
    """One call, as the call page shows it (the CRM's one-call import)."""
    return {"format": "edge-salesbot/call-detail@1", **call_detail(db, call_id, unmask=unmask)}
