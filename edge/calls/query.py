"""Reading the records back: call lists with filters, one call's detail,
leads with grades and follow-ups. Used by the CLI, the export and the dashboard.

Phone numbers come back masked unless `unmask=True`.

Example:
    >>> rows = list_calls(db, CallFilter(campaign="三月华东", grade="A"))
    >>> detail = call_detail(db, rows[0]["id"])
    >>> [line["speaker"] for line in detail["transcript"]][:2]
    ['bot', 'caller']
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlite_utils import Database

from edge.errors import InputError
from edge.storage import LIKE_ESCAPE, like
from edge.telephony.privacy import mask_phone

MAX_LIMIT: Final = 1000
CONTACT_SLOTS: Final = frozenset({"phone", "wechat", "email", "sms"})
_CALL_COLUMNS: Final = """
    c.id, c.started_at, c.ended_at, c.duration_s, c.attempt, c.disposition, c.placer, c.recording, c.detail,
    c.purged_at, c.lead_id, k.name as campaign, l.name as lead_name, l.company, coalesce(l.e164, l.phone) as phone,
    l.tags, l.vars, o.outcome, o.grade, o.dnc, o.objections"""
_FROM: Final = """
    from calls c left join leads l on l.id = c.lead_id left join campaigns k on k.id = c.campaign_id
    left join outcomes o on o.call_id = c.id"""


def mask_contact(kind: str, value: Any) -> Any:
    """A phone, WeChat ID or email address with most of it hidden; other slot values unchanged."""
    if kind not in CONTACT_SLOTS or not isinstance(value, str) or not value:
        return value
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    masked = mask_phone(value)
    if masked != value or len(value) < 4:
        return masked
    return value[:2] + "*" * (len(value) - 3) + value[-1:]


@dataclass
class CallFilter:
    campaign: str | None = None
    disposition: str | None = None
    grade: str | None = None
    outcome: str | None = None
    since: str | None = None
    """First day (YYYY-MM-DD, the call's local date), inclusive."""
    until: str | None = None
    """Last day, inclusive."""
    search: str | None = None
    """Part of the lead's name or company, or digits of the number."""
    limit: int = 100
    offset: int = 0

    def where(self) -> tuple[str, list[Any]]:
        clauses, args = [], []
        for column, value in (("k.name", self.campaign), ("c.disposition", self.disposition),
                              ("o.grade", self.grade), ("o.outcome", self.outcome)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        for bound, op in ((self.since, ">="), (self.until, "<=")):
            if bound:
                if len(bound) != 10 or bound[4] != "-" or bound[7] != "-":
                    raise InputError(f"dates are YYYY-MM-DD, got {bound!r}")
                clauses.append(f"substr(c.started_at, 1, 10) {op} ?")
                args.append(bound)
        if self.search:
            digits = "".join(ch for ch in self.search if ch.isdigit())
            like_ = f"like ? {LIKE_ESCAPE}"
            part = f"(l.name {like_} or l.company {like_}" + (f" or l.e164 {like_})" if digits else ")")
            clauses.append(part)
            args += [like(self.search), like(self.search)] + ([like(digits)] if digits else [])
        return ("where " + " and ".join(clauses)) if clauses else "", args


def _call_row(row: dict[str, Any], unmask: bool) -> dict[str, Any]:
    out = dict(row)
    out["phone"] = out["phone"] if unmask else mask_phone(out["phone"]) if out["phone"] else ""
    out["tags"] = json.loads(out["tags"] or "[]")
    out["vars"] = json.loads(out["vars"] or "{}")
    out["objections"] = json.loads(out["objections"] or "[]")
    out["detail"] = json.loads(out["detail"] or "{}")
    out["dnc"] = bool(out["dnc"]) if out["dnc"] is not None else None
    return out


def iter_calls(db: Database, filters: CallFilter, *, unmask: bool = False, page: bool = False
               ) -> Iterator[dict[str, Any]]:
    """Calls newest first (all of them unless `page`, for exports)."""
    where, args = filters.where()
    sql = f"select {_CALL_COLUMNS} {_FROM} {where} order by c.started_at desc, c.rowid desc"
    if page:
        sql += " limit ? offset ?"
        args = [*args, max(1, min(filters.limit, MAX_LIMIT)), max(0, filters.offset)]
    for row in db.query(sql, args):
        yield _call_row(row, unmask)


def list_calls(db: Database, filters: CallFilter, *, unmask: bool = False) -> list[dict[str, Any]]:
    return list(iter_calls(db, filters, unmask=unmask, page=True))


def count_calls(db: Database, filters: CallFilter) -> int:
    where, args = filters.where()
    return db.execute(f"select count(*) {_FROM} {where}", args).fetchone()[0]


def call_detail(db: Database, call_id: str, *, unmask: bool = False) -> dict[str, Any]:
    """Everything the call page shows: the call, its lead, transcript, per-turn intents, state, tasks.

    Raises:
        InputError: no such call.
    """
    rows = list(db.query(f"select {_CALL_COLUMNS}, c.script {_FROM} where c.id = ?", [call_id]))
    if not rows:
        raise InputError(f"no call {call_id!r} in the records")
    call = _call_row(rows[0], unmask)
    report_row = db.execute("select report from outcomes where call_id = ?", [call_id]).fetchone()
    report = json.loads(report_row[0]) if report_row else {}
    text = (lambda value: value or "") if unmask else (lambda value: mask_phone(value) if value else "")
    contact = (lambda kind, value: value) if unmask else mask_contact
    turns = []
    for t in db.query("select * from turns where call_id = ? order by idx", [call_id]):
        mentions = json.loads(t["mentions"] or "[]")
        for mention in mentions:
            if mention.get("kind") in CONTACT_SLOTS:
                mention["value"] = contact(mention["kind"], mention.get("value"))
                mention["text"] = contact(mention["kind"], mention.get("text"))
        turns.append({"index": t["idx"], "at": t["at"], "caller": text(t["caller"]),
                      "intents": json.loads(t["intents"]), "scores": json.loads(t["scores"]), "node": t["node"],
                      "bot": t["bot"], "barge_in": bool(t["barge_in"]), "mentions": mentions,
                      "state": {k: contact(k, v) for k, v in json.loads(t["state"] or "{}").items()}})
    transcript = report.get("transcript") or _machine_transcript(call["detail"])
    transcript = [{**line, "text": text(line.get("text"))} for line in transcript]
    tasks = [dict(t) for t in db.query("select kind, due, channel, contact, done from tasks where call_id = ?",
                                       [call_id])]
    for task in tasks:
        task["contact"] = contact(task["channel"], task["contact"])
    slots = {k: {**v, "value": contact(k, v.get("value"))} for k, v in report.get("slots", {}).items()}
    return {**call, "transcript": transcript, "turns": turns, "tasks": tasks, "slots": slots,
            "decision_maker": report.get("decision_maker"), "transferred": report.get("transferred"),
            "disclosure": report.get("disclosure", "")}


def _machine_transcript(detail: dict[str, Any]) -> list[dict[str, str]]:
    lines = []
    if detail.get("greeting"):
        lines.append({"speaker": "caller", "text": detail["greeting"]})
    if detail.get("left_message"):
        lines.append({"speaker": "bot", "text": detail["left_message"]})
    return lines


def list_leads(db: Database, campaign_id: int, *, grade: str | None = None, status: str | None = None,
               search: str | None = None, limit: int = 100, offset: int = 0, unmask: bool = False
               ) -> list[dict[str, Any]]:
    """A campaign's leads with grade, status, next dial and open follow-up tasks."""
    clauses, args = ["l.campaign_id = ?"], [campaign_id]
    if grade:
        clauses.append("l.grade = ?")
        args.append(grade)
    if status:
        clauses.append("l.status = ?")
        args.append(status)
    if search:
        clauses.append(f"(l.name like ? {LIKE_ESCAPE} or l.company like ? {LIKE_ESCAPE})")
        args += [like(search), like(search)]
    rows = list(db.query(
        f"select l.id, l.name, l.company, coalesce(l.e164, l.phone) as phone, l.tags, l.status, l.attempts, "
        f"l.next_at, l.grade, l.last_result, l.line from leads l where {' and '.join(clauses)} "
        "order by case l.grade when 'A' then 0 when 'B' then 1 when 'C' then 2 when 'D' then 3 when 'E' then 4 "
        "else 5 end, l.id limit ? offset ?", [*args, max(1, min(limit, MAX_LIMIT)), max(0, offset)]))
    ids = [r["id"] for r in rows]
    tasks: dict[int, list[dict[str, Any]]] = {}
    if ids:
        marks = ",".join("?" for _ in ids)
        for t in db.query(f"select c.lead_id, t.kind, t.due, t.channel, t.done from tasks t join calls c "
                          f"on c.id = t.call_id where c.lead_id in ({marks}) order by t.due", ids):
            tasks.setdefault(t["lead_id"], []).append({k: t[k] for k in ("kind", "due", "channel", "done")})
    for row in rows:
        row["phone"] = row["phone"] if unmask else mask_phone(row["phone"]) if row["phone"] else ""
        row["tags"] = json.loads(row["tags"] or "[]")
        row["tasks"] = tasks.get(row["id"], [])
    return rows
