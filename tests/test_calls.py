"""Call outcome, records (SQLite, WAL, migrations), the post-call JSON and text-call files."""

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from edge.calls import Records, read_caller_file, run_text_call
from edge.calls.outcome import next_workday
from edge.calls.records import MIGRATIONS
from edge.calls.textcall import parse_caller_lines
from edge.errors import InputError, RecordsError
from tests.conftest import ROOT
from tests.fakes import NOW, dialogue


def test_text_call_is_recorded_turn_by_turn(tmp_path):
    records = Records.open(tmp_path / "calls.db")
    bot = dialogue(lead={"lead_name": "张总", "company": "华星科技", "phone": "13800000000"})
    turns = parse_caller_lines(["# comment", "~嗯", "好的", "", "我在开会 明天上午十点再打", "这行不会用到"])
    report = run_text_call(bot, turns, NOW, records)
    assert report["outcome"] == "callback_booked" and report["grade"] == "C" and report["dnc"] is False
    assert report["tasks"] == [{"kind": "callback", "due": "2025-03-06T10:00:00+08:00", "channel": "phone",
                                "contact": "13800000000"}]
    assert report["unused_turns"] == 1
    assert [t["speaker"] for t in report["transcript"]] == ["bot", "caller", "caller", "bot", "caller", "bot",
                                                           "caller", "bot"]
    assert report["transcript"][1] == {"speaker": "caller", "text": "嗯", "at": "2025-03-05T14:20:08+08:00",
                                       "overlap": True}
    db = records.db
    assert db.journal_mode == "wal"
    assert db["turns"].count == 4 and db["outcomes"].count == 1 and db["tasks"].count == 1
    row = next(db.query("select * from turns where idx = 4"))
    assert json.loads(row["intents"]) == ["busy_call_later"]
    assert json.loads(row["state"]) == {"callback_time": "2025-03-06T10:00:00+08:00"}
    assert set(json.loads(row["timings"])) >= {"nlu", "total"}
    assert records.report(report["call_id"]) == json.loads(json.dumps(report, ensure_ascii=False))
    assert [m.name for m in MIGRATIONS.applied(db)] == ["001_records", "002_campaigns", "003_call_source", "004_turn_voice",
                                                     "005_call_handoff"]


def test_dnc_call_lands_on_the_dnc_list(tmp_path):
    records = Records.open(tmp_path / "calls.db")
    bot = dialogue(lead={"lead_name": "李总", "phone": "13900000000"})
    report = run_text_call(bot, parse_caller_lines(["别再打了 骚扰电话"]), NOW, records)
    assert report["dnc"] is True and report["grade"] == "D"
    assert [r["key"] for r in records.db["dnc"].rows] == ["+8613900000000"]  # E.164: any spelling matches


def test_caller_who_hangs_up_is_incomplete(tmp_path):
    bot = dialogue()
    report = run_text_call(bot, parse_caller_lines(["好的", "三十个人"]), NOW)
    assert report["outcome"] == "incomplete" and report["tasks"] == [] and report["grade"] == "D"


def test_interest_without_an_end_is_b():
    bot = dialogue()
    report = run_text_call(bot, parse_caller_lines(["挺感兴趣的 你说说"]), NOW)
    assert report["outcome"] == "incomplete" and report["grade"] == "B"


def test_post_call_json_has_the_crm_fields():
    bot = dialogue()
    report = run_text_call(bot, parse_caller_lines(["我在开会 下周一上午再打"]), NOW)
    assert {"grade", "dnc", "tasks", "slots", "turns", "transcript", "outcome", "lead", "call_id"} <= set(report)
    assert report["slots"]["callback_time"] == {"value": "2025-03-10T10:00:00+08:00", "confidence": 0.9,
                                                "status": "heard"}
    turn = report["turns"][0]
    assert {"caller", "intents", "scores", "mentions", "goal", "bot", "timings_ms"} <= set(turn)
    json.dumps(report, ensure_ascii=False)


def test_next_workday_skips_the_weekend():
    friday = NOW.replace(day=7)
    assert next_workday(friday).isoformat() == "2025-03-10T10:00:00+08:00"


def test_caller_files(tmp_path):
    path = tmp_path / "caller.txt"
    path.write_text("# 注释\n喂\n\n~嗯\n多少钱\n\n\n", encoding="utf-8")
    turns = read_caller_file(path)
    assert [(t.text, t.overlap) for t in turns] == [("喂", False), ("", False), ("嗯", True), ("多少钱", False)]
    path.write_bytes("喂\n".encode("gbk") + b"\xff\n")
    with pytest.raises(InputError, match="caller.txt:2: not valid UTF-8"):
        read_caller_file(path)
    with pytest.raises(InputError, match="cannot read caller file"):
        read_caller_file(tmp_path / "none.txt")
    with pytest.raises(InputError, match="at most 500"):
        parse_caller_lines(["喂"] * 501)


def test_records_refuse_a_non_database(tmp_path):
    path = tmp_path / "calls.db"
    path.write_text("not a database" * 100)
    with pytest.raises(RecordsError, match="cannot open call records"):
        Records.open(path)


def test_records_survive_a_killed_process(tmp_path):
    """A process killed mid-call keeps every turn it had recorded."""
    db = tmp_path / "calls.db"
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from edge.calls import Records
        from tests.fakes import NOW, dialogue
        records = Records.open({str(db)!r})
        bot = dialogue()
        call = records.start_call({{}}, "t", 1, NOW.isoformat())
        for text in ["好的", "三十个人"]:
            bot.hear(text, now=NOW)
            records.add_turn(call, bot.log[-1])
        os._exit(9)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from turns").fetchone()[0] == 2
        assert conn.execute("select count(*) from outcomes").fetchone()[0] == 0


def test_a_servers_records_start_a_call_on_their_writer_thread(tmp_path):
    """The call loop awaits start_call_async: on a server (background writer) the event loop does not
    wait on SQLite; the id comes back as start_call returns it (a replayed id gets a fresh one)."""
    import asyncio
    import threading

    from edge.calls.records import Records

    records = Records.open(tmp_path / "calls.db", background=True)
    threads = []
    original = records.start_call

    def start_call(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    records.start_call = start_call

    async def main():
        first = await records.start_call_async({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id="abc")
        again = await records.start_call_async({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id="abc")
        return first, again

    first, again = asyncio.run(main())
    assert first == "abc" and again != "abc" and all(name.startswith("records") for name in threads)
    inline = Records.open(tmp_path / "inline.db")
    assert asyncio.run(inline.start_call_async({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id="x")) == "x"
