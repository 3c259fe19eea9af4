"""The dashboard's JSON API: thin handlers over the same library calls as the CLI.

    GET  /api/me                          user, CSRF token, the box's time zone
    GET  /api/live                        calls in progress (LiveCalls)
    GET  /api/calls?campaign&disposition&grade&outcome&from&to&q&limit&offset
    GET  /api/calls/{id}                  transcript, intents, state, tasks
    GET  /api/calls/{id}/recording        WAV, if the call was recorded
    GET  /api/campaigns                   with lead counts
    POST /api/campaigns                   create
    POST /api/campaigns/{id}/settings     change settings (audited: old and new values)
    POST /api/campaigns/{id}/leads        import a lead CSV (multipart "file")
    POST /api/campaigns/{id}/start|pause
    GET  /api/campaigns/{id}/leads?grade&status&q
    GET  /api/campaigns/{id}/export?format=csv|json&from&to
    GET  /api/campaigns/{id}/roi          figures; /roi/{chart}.png charts
    GET  /api/dnc?q    POST /api/dnc    POST /api/dnc/remove
    GET  /api/kb/search?q    POST /api/kb/import (multipart "file")
    GET  /api/audit?prefix
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from edge.calls import audit, dnc, export, query, roi
from edge.calls import campaign as _campaign
from edge.calls.leads import import_leads
from edge.calls.records import Records
from edge.calls.schedule import parse_hours_spec
from edge.errors import InputError
from edge.server.app import MAX_UPLOAD_BYTES, SESSION, STATE, actor, json_response

KB_SUFFIXES: Final = (".csv", ".jsonl", ".md", ".markdown")
LEAD_SUFFIXES: Final = (".csv", ".txt", ".tsv")


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value))) if value not in (None, "") else default
    except ValueError:
        raise InputError(f"{value!r} is not a number") from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise InputError("send a JSON object") from None
    if not isinstance(data, dict):
        raise InputError("send a JSON object")
    return data


def _campaign_of(request: web.Request) -> _campaign.Campaign:
    state = request.app[STATE]
    return _campaign.get_by_id(state.records.db, _int(request.match_info["campaign_id"], 0, 0, 2**31))


async def me(request: web.Request) -> web.Response:
    session = request.get(SESSION)
    return json_response({"user": actor(request), "csrf": session.csrf if session else None,
                          "timezone": request.app[STATE].cfg.dialog.timezone})


async def live(request: web.Request) -> web.Response:
    registry = request.app[STATE].live
    return json_response({"version": registry.version, "calls": registry.snapshot()})


async def calls(request: web.Request) -> web.Response:
    db = request.app[STATE].records.db
    q = request.query
    filters = query.CallFilter(campaign=q.get("campaign") or None, disposition=q.get("disposition") or None,
                               grade=q.get("grade") or None, outcome=q.get("outcome") or None,
                               since=q.get("from") or None, until=q.get("to") or None, search=q.get("q") or None,
                               limit=_int(q.get("limit"), 50, 1, 500), offset=_int(q.get("offset"), 0, 0, 10**9))
    return json_response({"total": query.count_calls(db, filters), "calls": query.list_calls(db, filters)})


async def call(request: web.Request) -> web.Response:
    detail = query.call_detail(request.app[STATE].records.db, request.match_info["call_id"])
    detail["has_recording"] = _recording_path(request, detail) is not None
    detail.pop("recording", None)
    return json_response(detail)


def _recording_path(request: web.Request, detail: dict[str, Any]) -> Path | None:
    """The call's WAV, only if it lies inside the recordings directory."""
    if not detail.get("recording"):
        return None
    root = request.app[STATE].recordings_dir.resolve()
    path = Path(detail["recording"])
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


async def recording(request: web.Request) -> web.StreamResponse:
    detail = query.call_detail(request.app[STATE].records.db, request.match_info["call_id"])
    path = _recording_path(request, detail)
    if path is None:
        raise web.HTTPNotFound(text="no recording for this call")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


async def campaigns(request: web.Request) -> web.Response:
    state = request.app[STATE]
    db = state.records.db
    out = []
    for item in _campaign.all_campaigns(db):
        out.append({**item.to_dict(), "leads": _campaign.lead_counts(db, item.id),
                    "running": state.service.running(item.name), "error": state.service.last_error.get(item.name)})
    return json_response({"campaigns": out})


async def campaign_create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _body(request)
    settings: dict[str, Any] = {}
    for key in ("sender", "timezone", "holidays", "voicemail_action", "default_area_code", "callback_hours"):
        if body.get(key) not in (None, ""):
            settings[key] = str(body[key])
    for key in ("disclosure", "recording"):
        if key in body:
            settings[key] = bool(body[key])
    if body.get("max_concurrent") not in (None, ""):
        settings["max_concurrent"] = _int(str(body["max_concurrent"]), 10, 1, 200)
    if body.get("hours"):
        settings["hours"] = parse_hours_spec(str(body["hours"]))
    created = _campaign.create(state.records.db, str(body.get("name", "")), settings, actor=actor(request))
    return json_response(created.to_dict(), status=201)


async def campaign_settings(request: web.Request) -> web.Response:
    """Change some settings of a campaign (audited with the old and new values)."""
    item = _campaign_of(request)
    changes = await _body(request)
    if isinstance(changes.get("hours"), str):
        changes["hours"] = parse_hours_spec(changes["hours"])
    updated = _campaign.update_settings(request.app[STATE].records.db, item.name, changes, actor=actor(request))
    return json_response(updated.to_dict())


async def _save_upload(request: web.Request, allowed: tuple[str, ...]) -> tuple[Path, str]:
    """The multipart field "file", streamed to a temporary file in the data directory."""
    state = request.app[STATE]
    if not request.content_type.startswith("multipart/"):  # aiohttp only asserts this (gone under python -O)
        raise InputError(f"upload the file as multipart/form-data (field 'file'), not {request.content_type}")
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            raise InputError("no file uploaded (multipart field 'file')")
        if getattr(part, "name", None) == "file":
            break
    filename = Path(part.filename or "upload.csv").name
    suffix = Path(filename).suffix.lower()
    if suffix not in allowed:
        raise InputError(f"{filename}: expected one of {', '.join(allowed)}")
    folder = state.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False)  # noqa: SIM115
    size = 0
    with handle:
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                break
            handle.write(chunk)
    if size > MAX_UPLOAD_BYTES:
        Path(handle.name).unlink(missing_ok=True)  # noqa: ASYNC240 (one small local unlink)
        raise InputError(f"{filename} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it, or import it "
                         "with `salesbot leads import` on the box")
    return Path(handle.name), filename


def _import_in_thread(records_path: Path, campaign_id: int, name: str, path: Path, area: str | None):
    records = Records.open(records_path)
    try:
        return import_leads(records.db, campaign_id, name, path, default_area_code=area)
    finally:
        records.close()


async def campaign_leads_import(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item = _campaign_of(request)
    path, filename = await _save_upload(request, LEAD_SUFFIXES)
    try:
        report = await asyncio.to_thread(_import_in_thread, state.records_path, item.id, item.name, path,
                                         item.settings.default_area_code)
    finally:
        path.unlink(missing_ok=True)
    report.file = filename
    audit.record(state.records.db, actor(request), "leads.import", item.name,
                 {"file": filename, "accepted": report.accepted, "rejected": report.rejected})
    return json_response(report.to_dict())


async def campaign_start(request: web.Request) -> web.Response:
    item = _campaign_of(request)
    started = await request.app[STATE].service.start(item.name, actor=actor(request))
    return json_response(started.to_dict())


async def campaign_pause(request: web.Request) -> web.Response:
    item = _campaign_of(request)
    paused = await request.app[STATE].service.pause(item.name, actor=actor(request))
    return json_response(paused.to_dict())


async def campaign_leads(request: web.Request) -> web.Response:
    item = _campaign_of(request)
    q = request.query
    rows = query.list_leads(request.app[STATE].records.db, item.id, grade=q.get("grade") or None,
                            status=q.get("status") or None, search=q.get("q") or None,
                            limit=_int(q.get("limit"), 100, 1, 1000), offset=_int(q.get("offset"), 0, 0, 10**9))
    return json_response({"campaign": item.name, "leads": rows})


async def campaign_export(request: web.Request) -> web.StreamResponse:
    item = _campaign_of(request)
    fmt = request.query.get("format", "csv")
    filters = query.CallFilter(campaign=item.name, since=request.query.get("from") or None,
                               until=request.query.get("to") or None)
    buffer = io.StringIO()
    count = await asyncio.to_thread(_export_in_thread, request.app[STATE].records_path, buffer, fmt, filters)
    body = ("\ufeff" if fmt == "csv" else "") + buffer.getvalue()
    name = f"calls-{item.id}.{fmt}"
    return web.Response(text=body, content_type="text/csv" if fmt == "csv" else "application/json",
                        charset="utf-8", headers={
                            "Content-Disposition": f"attachment; filename=\"{name}\"; "
                                                   f"filename*=UTF-8''{quote(item.name)}-{name}",
                            "X-Call-Count": str(count)})


def _export_in_thread(records_path: Path, out: io.StringIO, fmt: str, filters: query.CallFilter) -> int:
    records = Records.open(records_path)
    try:
        return export.export_calls(records.db, out, fmt, filters)
    finally:
        records.close()


async def campaign_roi(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item = _campaign_of(request)
    return json_response(roi.compute(state.records.db, item.name, state.cfg.roi))


async def campaign_roi_chart(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item = _campaign_of(request)
    kind = request.match_info["chart"]
    if kind not in roi.CHARTS:
        raise web.HTTPNotFound(text=f"charts: {', '.join(roi.CHARTS)}")
    data = roi.compute(state.records.db, item.name, state.cfg.roi)
    png = await asyncio.to_thread(roi.chart_png, data, kind)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


async def dnc_list(request: web.Request) -> web.Response:
    from edge.telephony.privacy import mask_phone

    db = request.app[STATE].records.db
    rows = [{**entry.__dict__, "key": mask_phone(entry.key)}
            for entry in dnc.entries(db, search=request.query.get("q") or None)]
    return json_response({"count": dnc.count(db), "entries": rows, "audit": audit.entries(db, prefix="dnc.", limit=50)})


async def dnc_add(request: web.Request) -> web.Response:
    body = await _body(request)
    added = dnc.add(request.app[STATE].records.db, str(body.get("number", "")), actor=actor(request),
                    reason=str(body.get("reason", "")))
    return json_response({"added": added})


async def dnc_remove(request: web.Request) -> web.Response:
    body = await _body(request)
    removed = dnc.remove(request.app[STATE].records.db, str(body.get("number", "")), actor=actor(request),
                         reason=str(body.get("reason", "")))
    if not removed:
        raise InputError("that number is not on the do-not-call list")
    return json_response({"removed": True})


def _knowledge(state):
    from edge.kb import KnowledgeBase

    if state.kb_path.is_file():
        return KnowledgeBase.open(state.kb_path, rrf_k=state.cfg.kb.rrf_k)
    return KnowledgeBase.builtin()


async def kb_search(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = request.query.get("q", "").strip()
    if not text:
        return json_response({"hits": [], "source": str(state.kb_path)})
    hits = await asyncio.to_thread(lambda: [hit.__dict__ for hit in _knowledge(state).search(text, k=5)])
    return json_response({"hits": hits, "source": str(state.kb_path) if state.kb_path.is_file() else "built-in"})


def _kb_import_in_thread(kb_path: Path, rrf_k: int, path: Path):
    from edge.kb import KnowledgeBase

    knowledge = KnowledgeBase.open(kb_path, rrf_k=rrf_k)
    try:
        return knowledge.import_file(path)
    finally:
        knowledge.close()


async def kb_import(request: web.Request) -> web.Response:
    state = request.app[STATE]
    path, filename = await _save_upload(request, KB_SUFFIXES)
    try:
        report = await asyncio.to_thread(_kb_import_in_thread, state.kb_path, state.cfg.kb.rrf_k, path)
    finally:
        path.unlink(missing_ok=True)
    audit.record(state.records.db, actor(request), "kb.import", filename,
                 {"added": report.added, "updated": report.updated, "version": report.version})
    return json_response({"file": filename, **report.__dict__})


async def audit_list(request: web.Request) -> web.Response:
    prefix = request.query.get("prefix") or None
    return json_response({"entries": audit.entries(request.app[STATE].records.db, prefix=prefix)})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/me", me)
    r.add_get("/api/live", live)
    r.add_get("/api/calls", calls)
    r.add_get("/api/calls/{call_id}", call)
    r.add_get("/api/calls/{call_id}/recording", recording)
    r.add_get("/api/campaigns", campaigns)
    r.add_post("/api/campaigns", campaign_create)
    r.add_post("/api/campaigns/{campaign_id}/settings", campaign_settings)
    r.add_post("/api/campaigns/{campaign_id}/leads", campaign_leads_import)
    r.add_get("/api/campaigns/{campaign_id}/leads", campaign_leads)
    r.add_post("/api/campaigns/{campaign_id}/start", campaign_start)
    r.add_post("/api/campaigns/{campaign_id}/pause", campaign_pause)
    r.add_get("/api/campaigns/{campaign_id}/export", campaign_export)
    r.add_get("/api/campaigns/{campaign_id}/roi", campaign_roi)
    r.add_get("/api/campaigns/{campaign_id}/roi/{chart}.png", campaign_roi_chart)
    r.add_get("/api/dnc", dnc_list)
    r.add_post("/api/dnc", dnc_add)
    r.add_post("/api/dnc/remove", dnc_remove)
    r.add_get("/api/kb/search", kb_search)
    r.add_post("/api/kb/import", kb_import)
    r.add_get("/api/audit", audit_list)
