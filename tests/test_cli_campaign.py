"""`salesbot leads | dnc | campaign | export calls | report | retention | dashboard` through click's runner."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

import edge.cli_dialog
from edge.cli import cli
from tests.fakes import KeywordClassifier

NEW_GROUPS = ("leads", "dnc", "campaign", "retention")


@pytest.fixture(autouse=True)
def fake_model(monkeypatch, tmp_path):
    monkeypatch.setattr(edge.cli_dialog, "load_classifier", lambda *args: KeywordClassifier())
    monkeypatch.setenv("SALESBOT_DATA_DIR", str(tmp_path / "data"))


def run(*args):
    return CliRunner().invoke(cli, list(args))


def new_commands():
    for name in NEW_GROUPS:
        for sub in cli.commands[name].commands:
            yield (name, sub)
    yield ("export", "calls")
    yield ("export", "call")
    yield ("report",)
    yield ("dashboard",)


@pytest.mark.parametrize("path", list(new_commands()), ids=" ".join)
def test_every_new_command_has_help_with_an_example(path):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "salesbot " in result.output


@pytest.fixture
def leads_file(tmp_path):
    path = tmp_path / "客户.csv"
    text = ("电话,姓名,公司,caller\n13800138001,张伟,华星科技,meeting\n13800138002,李娜,=1+2,complaint\n"
            "1380013800,坏号,x,meeting\n13800138003,王芳,蓝海,no_answer\n")
    path.write_bytes(text.encode("gbk"))
    return path


def test_leads_import_text_and_json(leads_file):
    result = run("leads", "import", str(leads_file), "--campaign", "三月华东")
    assert result.exit_code == 0, result.output
    assert "created campaign 三月华东" in result.output
    assert "3 accepted, 1 rejected (GBK, comma-separated)" in result.output
    assert "line 4: '1380013800' has 10 digits" in result.output and "script variables: caller" in result.output
    assert "read as GBK" in result.output  # the note goes to stderr; the runner mixes both
    again = run("leads", "import", str(leads_file), "--campaign", "三月华东", "--json")
    data = json.loads(again.stdout)
    assert data["accepted"] == 0 and data["reasons"] == {"duplicate": 3, "phone": 1}
    assert [r["line"] for r in data["rejections"]] == [2, 3, 4, 5]
    missing = run("leads", "import", "nope.csv", "--campaign", "三月华东")
    assert missing.exit_code == 1 and "cannot read nope.csv" in missing.output and "Traceback" not in missing.output


def test_dnc_add_list_remove_with_audit():
    assert run("dnc", "add", "138 0013 8000", "--reason", "asked by email").output == "added: +861******8000\n"
    assert run("dnc", "add", "+8613800138000").output == "already listed: +861******8000\n"
    listed = run("dnc", "list")
    assert listed.output.startswith("+861******8000") and "asked by email" in listed.output
    assert "+8613800138000" in run("dnc", "list", "8000", "--unmask").output
    no_reason = run("dnc", "remove", "13800138000")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    assert run("dnc", "remove", "13800138000", "--reason", "ticket 4711").exit_code == 0
    assert run("dnc", "list").output == ""
    gone = run("dnc", "remove", "13800138000", "--reason", "again")
    assert gone.exit_code == 1 and "not on the do-not-call list" in gone.output
    trail = [json.loads(line) for line in run("dnc", "list", "--audit", "--json").stdout.splitlines()]
    assert [t["action"] for t in trail] == ["dnc.remove", "dnc.add"]
    assert trail[0]["detail"] == {"reason": "ticket 4711"} and trail[0]["actor"].startswith("cli")


def test_campaign_lifecycle_run_export_and_report(leads_file, tmp_path):
    created = run("campaign", "create", "三月华东", "--sender", "智销云", "--hours", "mon-sat=09:00-12:00,13:30-18:00",
                  "--settings", '{"holidays": "none"}')
    assert created.exit_code == 0, created.output
    assert run("campaign", "create", "三月华东").exit_code == 1
    bad = run("campaign", "create", "x", "--hours", "mon-fri=9-12")
    assert bad.exit_code == 1 and "not a window like 09:00-12:00" in bad.output
    run("leads", "import", str(leads_file), "--campaign", "三月华东")
    assert run("campaign", "run", "三月华东").exit_code == 2  # --simulate or --ami
    run("campaign", "pause", "三月华东")
    paused = run("campaign", "run", "三月华东", "--simulate", "--now", "2025-03-05T10:00")
    assert paused.exit_code == 1 and "paused; resume it first" in paused.output
    run("campaign", "resume", "三月华东")
    result = run("campaign", "run", "三月华东", "--simulate", "--now", "2025-03-05T10:00", "--json")
    summary = json.loads(result.stdout)
    assert summary["placed"] == 3 and summary["dispositions"] == {"answered": 2, "no_answer": 1}
    assert summary["outcomes"] == {"meeting_booked": 1, "do_not_call": 1}
    text = run("campaign", "run", "三月华东", "--simulate", "--now", "2025-03-05T10:00", "--until", "2025-03-07T18:00")
    assert "calls placed: no_answer 2" in text.output and "campaign done" in text.output
    listed = run("campaign", "list").output
    assert "三月华东" in listed and "done" in listed and "exhausted 1" in listed
    assert json.loads(run("campaign", "show", "三月华东").stdout)["settings"]["sender"] == "智销云"
    leads = run("leads", "list", "--campaign", "三月华东", "--grade", "A").output
    assert leads.startswith("A  done") and "张伟" in leads and "meeting 2025-03-06T15:00:00+08:00" in leads
    out = tmp_path / "calls.csv"
    exported = run("export", "calls", "--campaign", "三月华东", "--format", "csv", "--out", str(out))
    assert exported.exit_code == 0 and "5 calls exported" in exported.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 with BOM correctly
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {r["company"] for r in rows} == {"华星科技", "'=1+2", "蓝海"}
    call_id = rows[0]["call_id"]
    one = json.loads(run("export", "call", call_id).stdout)
    assert one["id"] == call_id and one["format"] == "edge-salesbot/call-detail@1"
    as_json = json.loads(run("export", "calls", "--campaign", "三月华东", "--format", "json").stdout)
    assert len(as_json["calls"]) == 5
    report = run("report", "--campaign", "三月华东", "--out", str(tmp_path / "roi"))
    assert report.exit_code == 0, report.output
    assert "leads 3 -> dialled 3 -> connected 2" in report.output and (tmp_path / "roi" / "report.html").is_file()
    purge = run("retention", "purge", "--dry-run", "--now", "2026-01-01T00:00", "--days", "30")
    assert purge.output.startswith("would purge: 5 calls, 3 leads")
    unknown = run("export", "calls", "--campaign", "nope")
    assert unknown.exit_code == 1 and "no campaign named 'nope'; campaigns: 三月华东" in unknown.output


def test_dashboard_reset_password(tmp_path):
    first = run("dashboard", "--reset-password")
    assert first.exit_code == 0 and "new admin password (shown once):" in first.output
    second = run("dashboard", "--reset-password")
    assert first.output != second.output
    stored = (tmp_path / "data" / "admin.json").read_text()
    assert second.output.split(": ")[1].strip() not in stored
