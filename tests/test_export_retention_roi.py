"""CSV/JSON export (formula escaping, masking), the retention purge (aggregates stay, personal data goes),
and the ROI report."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.calls import Records
from edge.calls import campaign as campaigns
from edge.calls.callers import CallerBook
from edge.calls.export import call_json, escape_cell, export_calls
from edge.calls.leads import import_leads
from edge.calls.placers import TextCallPlacer, build_dialogues
from edge.calls.query import CallFilter, list_calls
from edge.calls.retention import purge
from edge.calls.roi import compute, write_report
from edge.calls.runner import CampaignRunner
from edge.config import Config, RoiConfig
from tests.fakes import KeywordClassifier

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 3, 5, 9, 0, tzinfo=SH)
LEADS = [
    ("13800138001", "张伟", "华星科技", "meeting"),
    ("13800138002", '=HYPERLINK("http://evil.example","点我")', "+SUM(1,2)", "meeting"),
    ("13800138003", "@李娜", "-2+3", "callback"),
    ("13800138004", "王芳", "华东建材", "info"),
    ("13800138005", "赵磊", "蓝海物流", "complaint"),
    ("13800138006", "刘洋", "北辰", "no_answer"),
    ("13800138007", "陈静", "南山", "voicemail"),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small campaign run through the built-in callers over two simulated days."""
    tmp = tmp_path_factory.mktemp("campaign")
    records = Records.open(tmp / "calls.db")
    campaign = campaigns.create(records.db, "三月华东", {"sender": "智销云", "holidays": "none",
                                                      "voicemail_action": "message"}, actor="test")
    path = tmp / "leads.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "name", "company", "caller"])
        writer.writerows(LEADS)
    assert import_leads(records.db, campaign.id, campaign.name, path).accepted == len(LEADS)
    make = build_dialogues(Config(), campaign.settings, KeywordClassifier(), None)
    placer = TextCallPlacer(records, campaign, make, CallerBook.load())
    summary = asyncio.run(CampaignRunner(records, campaign.name, placer).run(START, until=START + timedelta(days=2)))
    assert summary.placed >= len(LEADS)
    return records, tmp


def test_escape_cell():
    assert escape_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    for risky in ("+SUM(1,2)", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert escape_cell(risky).startswith("'")
    assert escape_cell("+8613800138000") == "+8613800138000" and escape_cell("-12.5") == "-12.5"
    assert escape_cell("张伟") == "张伟" and escape_cell(None) == "" and escape_cell(True) == "1"


def test_csv_export_escapes_formulas_and_masks_numbers(finished):
    records, _ = finished
    out = io.StringIO()
    count = export_calls(records.db, out, "csv", CallFilter(campaign="三月华东"))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == len(rows) >= len(LEADS)
    names = {row["lead_name"] for row in rows}
    assert "'=HYPERLINK(\"http://evil.example\",\"点我\")" in names and "'@李娜" in names
    assert {row["company"] for row in rows} >= {"'+SUM(1,2)", "'-2+3", "华星科技"}
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")) or value.startswith("'")
    assert all(row["phone"].startswith("138****800") for row in rows)  # national form, masked
    text = out.getvalue()
    assert "13800138001" not in text  # not in transcripts or contacts either
    meeting = next(row for row in rows if row["lead_name"] == "张伟" and row["disposition"] == "answered")
    assert meeting["grade"] == "A" and meeting["tasks"].startswith("meeting@") and "bot: 您好" in meeting["transcript"]
    unmasked = io.StringIO()
    export_calls(records.db, unmasked, "csv", CallFilter(campaign="三月华东"), unmask=True)
    assert "13800138001" in unmasked.getvalue()


def test_json_export_and_one_call(finished):
    records, _ = finished
    out = io.StringIO()
    one_day = CallFilter(campaign="三月华东", since="2025-03-05", until="2025-03-05")
    count = export_calls(records.db, out, "json", one_day)
    data = json.loads(out.getvalue())
    assert data["format"] == "edge-salesbot/calls@1" and len(data["calls"]) == count > 0
    assert {c["started_at"][:10] for c in data["calls"]} == {"2025-03-05"}
    assert data["calls"][0]["lead_name"] in {lead[1] for lead in LEADS}  # raw text in JSON: no spreadsheet runs it
    assert data["calls"][0]["phone"].startswith("+861******")
    one = call_json(records.db, data["calls"][0]["call_id"])
    assert one["format"] == "edge-salesbot/call-detail@1" and "transcript" in one
    empty = io.StringIO()
    assert export_calls(records.db, empty, "json", CallFilter(campaign="nope")) == 0
    assert json.loads(empty.getvalue())["calls"] == []


def test_roi_report(finished, tmp_path):
    records, _ = finished
    data = compute(records.db, "三月华东", RoiConfig())
    f = data["funnel"]
    assert f["leads"] == f["dialled"] == len(LEADS)
    assert f["leads"] >= f["dialled"] >= f["connected"] >= f["talked_30s"] >= f["b_plus"] >= f["a"] >= 1
    assert data["outcomes"]["meeting_booked"] == 2 and data["dispositions"]["voicemail"] >= 1
    assert data["cost"]["human_per_qualified_cny"] == round(280_000 / (20 * 200 * 22 * 0.018), 2)
    assert data["cost"]["bot_per_qualified_cny"] < data["cost"]["human_per_qualified_cny"]
    assert "busy" in data["objections"] and data["best_hours"]
    paths = write_report(records.db, "三月华东", RoiConfig(), tmp_path / "roi")
    for kind in ("funnel", "hours", "intents", "cost"):
        assert paths[kind].read_bytes()[:4] == b"\x89PNG"
    html = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in html and "funnel.png" in html and "三月华东" in html
    assert "| 线索 | 7 |" in paths["markdown"].read_text(encoding="utf-8")


def test_retention_purge_keeps_aggregates_and_deletes_personal_data(finished, tmp_path):
    records, tmp = finished
    copy = tmp_path / "copy.db"
    records.db.conn.execute(f"vacuum into '{copy}'")
    db = Records.open(copy).db
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    wav = recordings / "one.wav"
    wav.write_bytes(b"RIFF....WAVE")
    outside = tmp_path / "keep.wav"
    outside.write_bytes(b"RIFF")
    first, second = [r[0] for r in db.execute("select id from calls order by started_at limit 2")]
    db["calls"].update(first, {"recording": str(wav)})
    db["calls"].update(second, {"recording": str(outside)})
    before = compute(db, "三月华东", RoiConfig())
    dnc_before = [r["key"] for r in db["dnc"].rows]
    not_yet = purge(db, now=START + timedelta(days=30), days=180, recordings_dir=recordings)
    assert not_yet.calls == 0 and wav.exists()
    report = purge(db, now=datetime(2025, 12, 1, tzinfo=UTC), days=180, recordings_dir=recordings)
    # every lead but the one with a callback still booked (it will be dialled again, so it keeps its number)
    assert report.calls == db["calls"].count and report.leads == len(LEADS) - 1 and report.recordings == 2
    waiting = db.execute("select name, status from leads where purged_at is null").fetchall()
    assert waiting == [("@李娜", "callback")]
    assert not wav.exists() and outside.exists()  # never deletes outside the recordings directory
    after = compute(db, "三月华东", RoiConfig())
    for key in ("funnel", "rates", "dispositions", "outcomes", "intents", "objections", "hours", "best_hours", "dials",
                "minutes"):
        assert before[key] == after[key], key
    assert [r["key"] for r in db["dnc"].rows] == dnc_before  # the DNC list must keep working
    dump = "\n".join(db.conn.iterdump())
    for dnc_key in dnc_before:  # the only full numbers left are on the DNC list
        assert dump.count(dnc_key) == 1
        dump = dump.replace(dnc_key, "<dnc>")
    for phone, name, company, caller in LEADS:
        if caller == "callback":
            continue
        for secret in (name, company if len(company) > 3 else None, phone, "+86" + phone):
            if secret and secret not in ("北辰", "南山"):
                assert secret not in dump.replace("+861******", ""), secret
    assert "我在开会" not in dump and "您好，这是智销云" not in dump
    calls = list_calls(db, CallFilter(campaign="三月华东", limit=500))
    assert all((c["lead_name"] == "" or c["lead_name"] == "@李娜") and c["purged_at"] for c in calls)
    again = purge(db, now=datetime(2025, 12, 1, tzinfo=UTC), days=180, recordings_dir=recordings)
    assert again.calls == 0 and again.leads == 0
