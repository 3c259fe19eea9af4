"""The campaign dialler against the text simulator and a fake Asterisk AMI: dispositions, DNC before every
dial (booked callbacks too), calling hours, retry limits, pause, concurrency, crash recovery."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.calls import Records, dnc
from edge.calls import campaign as campaigns
from edge.calls.callers import CallerBook
from edge.calls.leads import import_leads
from edge.calls.live import LiveCalls
from edge.calls.placers import AmiCallPlacer, TextCallPlacer, build_dialogues
from edge.calls.query import call_detail
from edge.calls.runner import CampaignRunner, Placed
from edge.config import Config
from edge.errors import CampaignError
from tests.fakes import KeywordClassifier

SH = ZoneInfo("Asia/Shanghai")
WEDNESDAY_10 = datetime(2025, 3, 5, 10, 0, tzinfo=SH)
CALLERS = {
    "meeting": "#! speech_ms: 800\n喂 你好\n我们公司有二十个销售\n可以 约个时间吧\n明天下午三点\n对\n我拍板\n",
    "callback": "喂\n我在开会 明天上午十点再打\n",
    "complaint": "喂\n别再打了 骚扰电话\n",
    "no_answer": "#! answer: no_answer\n",
    "busy": "#! answer: busy\n",
    "voicemail": "#! speech_ms: 5200\n#! beep: yes\n您好，我现在不方便接听您的电话，请在提示音后留言。\n",
    "switched_off": "您好，您拨打的电话已关机。\n",
    "empty_number": "您拨打的号码是空号，请查证后再拨。\n",
}


@pytest.fixture
def records(tmp_path):
    return Records.open(tmp_path / "calls.db")


@pytest.fixture
def callers(tmp_path):
    folder = tmp_path / "callers"
    folder.mkdir()
    for name, text in CALLERS.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return CallerBook.load(folder)


def setup(records, tmp_path, rows, settings=None, name="三月华东"):
    campaign = campaigns.create(records.db, name, {"sender": "智销云", "holidays": "none", **(settings or {})},
                                actor="test")
    path = tmp_path / f"{name}.csv"
    path.write_text("phone,name,company,caller,timezone\n" + "".join(
        f"{phone},{lead},公司{i},{caller},{tz}\n" for i, (phone, lead, caller, tz) in enumerate(rows)),
        encoding="utf-8")
    report = import_leads(records.db, campaign.id, campaign.name, path)
    assert report.rejected == 0, report.rejections
    return campaign


def text_runner(records, name, callers, live=None):
    campaign = campaigns.get(records.db, name)
    make = build_dialogues(Config(), campaign.settings, KeywordClassifier(), None)
    return CampaignRunner(records, name, TextCallPlacer(records, campaign, make, callers, live=live))


def lead_rows(records):
    return {row["name"]: row for row in records.db.query("select * from leads order by id")}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_one_pass_records_every_kind_of_result(records, tmp_path, callers):
    setup(records, tmp_path, [(f"1380013800{i}", name, name, "") for i, name in enumerate(CALLERS)])
    live = LiveCalls()
    summary = run(text_runner(records, "三月华东", callers, live).run(WEDNESDAY_10))
    assert summary.placed == 8
    assert dict(summary.dispositions) == {"answered": 3, "no_answer": 1, "busy": 1, "voicemail": 1,
                                          "unreachable": 1, "invalid": 1}
    assert dict(summary.outcomes) == {"meeting_booked": 1, "callback_booked": 1, "do_not_call": 1}
    leads = lead_rows(records)
    assert (leads["meeting"]["status"], leads["meeting"]["grade"]) == ("done", "A")
    assert (leads["callback"]["status"], leads["callback"]["next_at"]) == ("callback", "2025-03-06T02:00:00+00:00")
    assert leads["complaint"]["status"] == "dnc" and dnc.is_blocked(records.db, "13800138002")
    # rang out 10:00:30, +120 min falls in the lunch break: the next opening, 13:30
    assert (leads["no_answer"]["status"], leads["no_answer"]["next_at"]) == ("retry", "2025-03-05T05:30:00+00:00")
    assert (leads["busy"]["status"], leads["busy"]["next_at"]) == ("retry", "2025-03-05T02:30:04+00:00")
    assert leads["voicemail"]["next_at"] == "2025-03-06T02:00:06+00:00"  # a day after the 6.2 s call ended
    assert leads["switched_off"]["last_result"] == "unreachable" and leads["empty_number"]["status"] == "failed"
    assert {c["state"] for c in live.snapshot()} == {"ended"} and len(live.snapshot()) == 8
    complaint = [a for a in records.db["audit"].rows if a["action"] == "dnc.add"]
    assert complaint[0]["actor"].startswith("bot:call ") and complaint[0]["target"] == "+861******8002"
    call = records.db.execute("select id from calls where lead_id = ?", [leads["meeting"]["id"]]).fetchone()[0]
    detail = call_detail(records.db, call)
    assert detail["transcript"][0]["text"].startswith("您好，这是智销云的智能语音助理来电。")
    assert detail["turns"][-1]["node"] == "close_meeting" and detail["attempt"] == 1


def test_voicemail_message_is_left_when_asked(records, tmp_path, callers):
    setup(records, tmp_path, [("13800138000", "vm", "voicemail", "")], {"voicemail_action": "message"})
    run(text_runner(records, "三月华东", callers).run(WEDNESDAY_10))
    call_id = records.db.execute("select id from calls").fetchone()[0]
    detail = call_detail(records.db, call_id)
    assert detail["disposition"] == "voicemail" and detail["detail"]["verdict"]["kind"] == "voicemail"
    assert [line["speaker"] for line in detail["transcript"]] == ["caller", "bot"]
    assert "智销云" in detail["transcript"][1]["text"]


def test_dnc_is_enforced_even_for_booked_callbacks(records, tmp_path, callers):
    setup(records, tmp_path, [("13800138000", "cb", "callback", ""), ("13900139000", "other", "callback", "")])
    runner = text_runner(records, "三月华东", callers)
    first = run(runner.run(WEDNESDAY_10))
    assert first.callbacks_booked == 2
    dnc.add(records.db, "+86 139 0013 9000", actor="test", reason="asked by email")
    # the DNC add marks the lead at once; a lead the list misses is still caught right before the dial
    records.db.execute("update leads set status = 'callback' where e164 = '+8613900139000'")
    dnc.add(records.db, "13800138000", actor="test", reason="complained to the carrier")
    records.db.execute("update leads set status = 'callback' where e164 = '+8613800138000'")
    second = run(runner.run(WEDNESDAY_10 + timedelta(days=1)))
    assert second.placed == 0 and second.blocked_dnc == 2
    assert {row["status"] for row in lead_rows(records).values()} == {"dnc"}
    assert records.db.execute("select count(*) from calls").fetchone()[0] == 2  # only the first calls


def test_dnc_added_while_a_call_waits_for_a_line(records, tmp_path, callers):
    setup(records, tmp_path, [("13800138000", "a", "callback", ""), ("13900139000", "b", "callback", "")],
          {"max_concurrent": 1})
    campaign = campaigns.get(records.db, "三月华东")

    class ComplainingPlacer:
        name = "test"

        def __init__(self):
            self.dialled = []

        async def place(self, lead, now):
            self.dialled.append(lead.e164)
            dnc.add(records.db, "13900139000", actor="test", reason="came in during the first call")
            records.db.execute("update leads set status = 'in_call' where e164 = '+8613900139000'")  # as queued
            call_id = records.start_call({}, "s", 1, now.isoformat(), lead_id=lead.id, campaign_id=campaign.id)
            return Placed(call_id, "no_answer", now, now + timedelta(seconds=30))

    placer = ComplainingPlacer()
    summary = run(CampaignRunner(records, "三月华东", placer).run_due(WEDNESDAY_10))
    assert placer.dialled == ["+8613800138000"] and summary.blocked_dnc == 1


def test_retry_limits_and_max_attempts(records, tmp_path, callers):
    setup(records, tmp_path, [("13800138000", "busy", "busy", "")],
          {"retry": {"busy": {"after_min": 30, "max_retries": 2}}, "max_attempts": 5})
    summary = run(text_runner(records, "三月华东", callers).run(WEDNESDAY_10, until=WEDNESDAY_10 + timedelta(days=2)))
    assert summary.placed == 3 and summary.exhausted == 1
    starts = [r[0] for r in records.db.execute("select started_at from calls order by started_at")]
    assert starts == ["2025-03-05T10:00:00+08:00", "2025-03-05T10:30:04+08:00", "2025-03-05T11:00:08+08:00"]
    lead = lead_rows(records)["busy"]
    assert (lead["status"], lead["attempts"], lead["last_result"]) == ("exhausted", 3, "busy")
    setup(records, tmp_path, [("13900139000", "capped", "no_answer", "")],
          {"retry": {"no_answer": {"after_min": 10, "max_retries": 9}}, "max_attempts": 2}, name="capped")
    run(text_runner(records, "capped", callers).run(WEDNESDAY_10, until=WEDNESDAY_10 + timedelta(days=1)))
    assert lead_rows(records)["capped"]["attempts"] == 2


def test_calling_hours_defer_and_time_zones_per_lead(records, tmp_path, callers):
    setup(records, tmp_path, [("13800138000", "sh", "meeting", ""), ("13900139000", "xj", "meeting", "Asia/Urumqi")])
    runner = text_runner(records, "三月华东", callers)
    evening = datetime(2025, 3, 5, 20, 0, tzinfo=SH)
    summary = run(runner.run(evening))
    assert summary.placed == 0 and summary.deferred == 2
    leads = lead_rows(records)
    assert leads["sh"]["next_at"] == "2025-03-06T01:00:00+00:00"  # 09:00 Shanghai
    assert leads["xj"]["next_at"] == "2025-03-06T03:00:00+00:00"  # 09:00 in Urumqi = 11:00 Shanghai
    summary = run(runner.run(evening, until=evening + timedelta(days=1)))
    starts = dict(records.db.execute("select l.name, c.started_at from calls c join leads l on l.id = c.lead_id"))
    assert starts == {"sh": "2025-03-06T09:00:00+08:00", "xj": "2025-03-06T11:00:00+08:00"}
    assert campaigns.get(records.db, "三月华东").status == "done"


def test_paused_campaign_dials_nothing_and_pause_stops_a_run(records, tmp_path, callers):
    setup(records, tmp_path, [(f"1380013800{i}", f"l{i}", "meeting", "") for i in range(4)], {"max_concurrent": 1})
    campaigns.set_status(records.db, "三月华东", "paused", actor="test")
    with pytest.raises(CampaignError, match="paused; resume it first"):
        run(text_runner(records, "三月华东", callers).run(WEDNESDAY_10))
    campaigns.set_status(records.db, "三月华东", "running", actor="test")
    runner = text_runner(records, "三月华东", callers)
    original = runner.placer.place

    async def pause_after_first(lead, now):
        placed = await original(lead, now)
        campaigns.set_status(records.db, "三月华东", "paused", actor="admin")
        return placed

    runner.placer.place = pause_after_first
    summary = run(runner.run(WEDNESDAY_10))
    assert summary.placed == 1 and summary.status == "paused"
    statuses = [row["status"] for row in lead_rows(records).values()]
    assert statuses.count("done") == 1 and statuses.count("pending") == 3
    assert [a["action"] for a in records.db["audit"].rows][-1] == "campaign.paused"


def test_at_most_max_concurrent_calls_and_a_crash_is_contained(records, tmp_path, callers):
    setup(records, tmp_path, [(f"138001380{i:02d}", f"l{i}", "meeting", "") for i in range(12)],
          {"max_concurrent": 3})
    campaign = campaigns.get(records.db, "三月华东")
    active, peak = 0, 0

    class SlowPlacer:
        name = "slow"

        async def place(self, lead, now):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            if lead.name == "l5":
                raise RuntimeError("the simulator broke")
            call_id = records.start_call({}, "s", 1, now.isoformat(), lead_id=lead.id, campaign_id=campaign.id)
            return Placed(call_id, "busy", now, now + timedelta(seconds=4))

    summary = run(CampaignRunner(records, "三月华东", SlowPlacer()).run_due(WEDNESDAY_10))
    assert peak == 3 and summary.placed == 11 and summary.errors == ["lead 6: the simulator broke"]
    assert lead_rows(records)["l5"]["status"] == "retry"


def test_leads_left_in_a_call_by_a_dead_process_are_dialled_again(records, tmp_path, callers):
    setup(records, tmp_path, [("13800138000", "stuck", "meeting", "")])
    lead_id = lead_rows(records)["stuck"]["id"]
    records.db.execute("update leads set status = 'in_call', attempts = 1 where id = ?", [lead_id])
    records.start_call({}, "s", 1, "2025-03-05T09:59:00+08:00", lead_id=lead_id)
    run(text_runner(records, "三月华东", callers).run(WEDNESDAY_10))
    dispositions = [r[0] for r in records.db.execute("select disposition from calls order by started_at")]
    assert dispositions == ["failed", "answered"] and lead_rows(records)["stuck"]["status"] == "done"


def test_disclosure_and_recording_notice(records, tmp_path, callers):
    settings = campaigns.CampaignSettings.from_dict({"sender": "智销云", "recording": True})
    assert settings.disclosure_line("本次通话可能会被录音。") == "您好，这是智销云的智能语音助理来电。"
    assert settings.disclosure_line("您好").endswith("本次通话会被录音。")
    assert campaigns.CampaignSettings.from_dict({"disclosure": False}).disclosure_line("x") == ""
    with pytest.raises(CampaignError, match="unknown campaign setting 'colour'"):
        campaigns.CampaignSettings.from_dict({"colour": "red"})
    with pytest.raises(CampaignError, match="voicemail_action"):
        campaigns.CampaignSettings.from_dict({"voicemail_action": "sing"})


def test_ami_placer_originates_and_maps_results(records, tmp_path):
    from tests.test_ami import FakeAmi
    from edge.telephony.ami import AmiClient

    plan = {"13800138000": "answer", "13900139000": "busy", "13700137000": "noanswer", "13600136000": "nosuch"}

    daemon = Records.open(tmp_path / "calls.db")  # the daemon's connection to the same calls.db

    class NumberedAmi(FakeAmi):
        async def _originate(self, send, writer, aid, channel):
            number = channel.split("/")[1].split("@")[0]
            if plan[number] == "answer":  # the daemon's call loop takes the call by CALL_UUID and records it
                call_uuid = dict(v.split("=", 1) for v in self.actions[-1]["Variable"])["CALL_UUID"]
                daemon.start_call({}, "s", 1, "2025-03-05T10:00:00+08:00", call_id=call_uuid)
                daemon.finish_call(call_uuid, {"ended_at": "2025-03-05T10:03:00+08:00", "outcome": "meeting_booked",
                                               "grade": "A", "dnc": False, "transferred": False,
                                               "decision_maker": True, "objections": [], "slots": {}, "tasks": []})
            await super()._originate(send, writer, aid, f"PJSIP/{plan[number]}@trunk")

    setup(records, tmp_path, [(number, tech, "", "") for number, tech in plan.items()],
          {"channel": "PJSIP/{number}@trunk", "caller_id": '"Sales" <02112345678>'})

    async def main():
        async with NumberedAmi() as pbx:
            client = await AmiClient.connect(pbx.uri, "salesbot", "good")
            campaign = campaigns.get(records.db, "三月华东")
            summary = await CampaignRunner(records, "三月华东", AmiCallPlacer(records, campaign, client)).run(
                WEDNESDAY_10)
            await client.close()
            return summary, pbx.actions

    summary, actions = run(main())
    assert dict(summary.dispositions) == {"answered": 1, "busy": 1, "no_answer": 1, "failed": 1}
    originates = [a for a in actions if a["Action"] == ["Originate"]]
    channels = sorted(a["Channel"][0] for a in originates)
    assert channels[0] == "PJSIP/13600136000@trunk" and originates[0]["CallerID"] == ['"Sales" <02112345678>']
    answered = next(a for a in originates if a["Channel"] == ["PJSIP/13800138000@trunk"])
    call_uuid = answered["Variable"][0].split("=", 1)[1]
    row = records.db["calls"].get(call_uuid)  # the voice loop finds the call by CALL_UUID
    assert row["disposition"] == "answered" and row["placer"] == "ami" and row["taken_at"]
    assert json.loads(row["detail"])["ami_outcome"] == "answered"
    leads = lead_rows(records)
    assert (leads["answer"]["status"], leads["answer"]["grade"]) == ("done", "A"), "booked from its outcome"
    assert leads["busy"]["status"] == "retry"
    assert leads["nosuch"]["last_result"] == "failed"


def test_builtin_callers_parse(callers):
    book = CallerBook.load()
    assert {"meeting", "voicemail", "no_answer", "complaint"} <= set(book.callers)
    assert book.for_lead("+8613800138000").name == book.for_lead("+8613800138000").name
    assert book.callers["voicemail"].beep and book.callers["no_answer"].answer == "no_answer"
    assert Path(callers.callers["meeting"].name).name == "meeting"
