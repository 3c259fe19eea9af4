"""Phone numbers to E.164, calling hours (boundaries, holidays, make-up days, time zones), retry rules,
voicemail detection."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.calls.phone import PhoneError, key, national, parse
from edge.calls.schedule import CallingHours, RetryPolicy, parse_hours_spec
from edge.calls.voicemail import Greeting, detect
from edge.errors import CampaignError

SH = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize("raw, e164, kind", [
    ("13800138000", "+8613800138000", "mobile"),
    ("138 0013 8000", "+8613800138000", "mobile"),
    ("+86 138-0013-8000", "+8613800138000", "mobile"),
    ("008613800138000", "+8613800138000", "mobile"),
    ("8613800138000", "+8613800138000", "mobile"),
    ("１３８００１３８０００", "+8613800138000", "mobile"),  # full-width digits
    ("010-65432100", "+861065432100", "landline"),
    ("(0755) 8765-4321", "+8675587654321", "landline"),
    ("0571-8765432", "+865718765432", "landline"),  # 7-digit subscriber after a 3-digit area code
    ("+86 21 87654321", "+862187654321", "landline"),
    ("400-123-4567", "+864001234567", "service"),
])
def test_numbers_normalise_to_e164(raw, e164, kind):
    assert parse(raw) == parse(e164) and parse(raw).e164 == e164 and parse(raw).kind == kind


@pytest.mark.parametrize("raw, message", [
    ("", "empty"),
    ("12800138000", "mobile numbers start 13-19"),
    ("1380013800", "has 10 digits"),
    ("021-8765432", "must have 8 digits"),
    ("+852 91234567", "not a mainland China number"),
    ("1.38001E+10", "scientific notation"),
    ("13800138000转123", "extension"),
    ("=cmd|' /C calc'!A0", "not a phone number"),
    ("87654321", "without its area code"),
])
def test_bad_numbers_say_why(raw, message):
    with pytest.raises(PhoneError, match=message):
        parse(raw)


def test_landline_without_area_code_takes_the_campaign_default_and_national_form():
    assert parse("87654321", default_area_code="021").e164 == "+862187654321"
    assert national("+862187654321") == "02187654321" and national("+8613800138000") == "13800138000"
    assert key("138-0013-8000") == key("+8613800138000") == "+8613800138000"


def test_calling_hours_boundaries():
    hours = CallingHours.from_spec(holidays="none")  # default: Mon-Fri 09:00-12:00, 13:30-18:00
    wednesday = datetime(2025, 3, 5, tzinfo=SH)
    at = lambda h, m, s=0: wednesday.replace(hour=h, minute=m, second=s)  # noqa: E731
    assert not hours.allows(at(8, 59, 59)) and hours.allows(at(9, 0))
    assert hours.allows(at(11, 59, 59)) and not hours.allows(at(12, 0))
    assert not hours.allows(at(13, 29, 59)) and hours.allows(at(13, 30))
    assert hours.allows(at(17, 59, 59)) and not hours.allows(at(18, 0))
    assert hours.next_open(at(12, 0)) == at(13, 30)
    assert hours.next_open(at(18, 0)) == at(9, 0) + timedelta(days=1)
    friday_evening = datetime(2025, 3, 7, 18, 0, tzinfo=SH)
    assert hours.next_open(friday_evening) == datetime(2025, 3, 10, 9, 0, tzinfo=SH)  # Monday
    saturday = datetime(2025, 3, 8, 10, 0, tzinfo=SH)
    assert not hours.allows(saturday)


def test_holidays_and_make_up_working_days():
    hours = CallingHours.from_spec(holidays="cn")
    national_day = datetime(2025, 10, 1, 10, 0, tzinfo=SH)
    assert not hours.allows(national_day)
    assert hours.next_open(national_day) == datetime(2025, 10, 9, 9, 0, tzinfo=SH)
    make_up_sunday = datetime(2025, 9, 28, 10, 0, tzinfo=SH)  # 调休: a Sunday that is a working day
    assert make_up_sunday.weekday() == 6 and hours.allows(make_up_sunday)
    extra = CallingHours.from_spec(holidays="none", extra_holidays=["2025-03-05"], extra_workdays=["2025-03-08"])
    assert not extra.allows(datetime(2025, 3, 5, 10, 0, tzinfo=SH))
    assert extra.allows(datetime(2025, 3, 8, 10, 0, tzinfo=SH))


def test_time_zones():
    hours = CallingHours.from_spec(holidays="none")
    shanghai = ZoneInfo("Asia/Shanghai")
    assert hours.allows(datetime(2025, 3, 5, 1, 0, tzinfo=UTC), shanghai)  # 09:00 in Shanghai
    assert not hours.allows(datetime(2025, 3, 5, 0, 59, tzinfo=UTC), shanghai)
    # A lead in Xinjiang time (UTC+6): 09:30 in Shanghai is 07:30 there.
    urumqi = ZoneInfo("Asia/Urumqi")
    when = datetime(2025, 3, 5, 9, 30, tzinfo=shanghai)
    assert hours.allows(when, shanghai) and not hours.allows(when, urumqi)
    assert hours.next_open(when, urumqi) == datetime(2025, 3, 5, 11, 0, tzinfo=shanghai)
    # Across a daylight-saving change: Saturday 18:00 EST -> Monday 09:00 EDT.
    new_york = ZoneInfo("America/New_York")
    opened = hours.next_open(datetime(2025, 3, 8, 18, 0, tzinfo=new_york))
    assert opened == datetime(2025, 3, 10, 9, 0, tzinfo=new_york) and opened.utcoffset() == timedelta(hours=-4)


def test_hours_spec_errors_name_the_setting():
    assert parse_hours_spec("mon-fri=09:00-12:00,13:30-18:00;sat=10:00-12:00")["sat"] == "10:00-12:00"
    for bad, message in (("mon-fri=9-12", "not a window"), ("funday=09:00-10:00", "not a weekday"),
                         ("mon=12:00-09:00", "run forwards"), ("mon=09:00-12:00,11:00-13:00", "overlap"),
                         ("09:00-12:00", "DAYS=WINDOWS")):
        with pytest.raises(CampaignError, match=message):
            parse_hours_spec(bad)
    with pytest.raises(CampaignError, match="never open"):
        CallingHours.from_spec({"mon-sun": ""}, holidays="none").next_open(datetime(2025, 3, 5, tzinfo=SH))


def test_retry_limits():
    policy = RetryPolicy.from_dict({"busy": {"after_min": 30, "max_retries": 2}}, max_attempts=5)
    now = datetime(2025, 3, 5, 10, 0, tzinfo=SH)
    assert policy.next_attempt("busy", 0, 1, now) == now + timedelta(minutes=30)
    assert policy.next_attempt("busy", 1, 2, now) is not None
    assert policy.next_attempt("busy", 2, 3, now) is None  # two retries used
    assert policy.next_attempt("no_answer", 0, 5, now) is None  # max_attempts reached
    assert policy.next_attempt("invalid", 0, 1, now) is None
    with pytest.raises(CampaignError, match="unknown result"):
        RetryPolicy.from_dict({"sunny": {"after_min": 1, "max_retries": 1}})


@pytest.mark.parametrize("greeting, kind", [
    (Greeting("喂 你好", speech_ms=700), "human"),
    (Greeting("喂，哪位？", speech_ms=900), "human"),
    (Greeting("您好，我现在不方便接听您的电话，请在提示音后留言。", speech_ms=5200, beep=True), "voicemail"),
    (Greeting("请在嘀声后留言"), "voicemail"),
    (Greeting("嗯", speech_ms=300, beep=True), "voicemail"),
    (Greeting("你好欢迎致电某某公司我们的营业时间是周一至周五早上九点到下午六点", speech_ms=6500), "voicemail"),
    (Greeting("您好，您拨打的电话已关机。"), "unreachable"),
    (Greeting("您拨打的用户正忙，请稍后再拨"), "busy"),
    (Greeting("您拨打的号码是空号，请查证后再拨"), "invalid"),
    (Greeting("The subscriber you dialed is powered off"), "unreachable"),
])
def test_voicemail_and_carrier_announcements(greeting, kind):
    assert detect(greeting).kind == kind


def test_holiday_calendar_covers_the_years_it_names():
    from edge.calls.schedule import china_calendar

    holidays, workdays = china_calendar()
    assert date(2025, 1, 29) in holidays and date(2026, 2, 17) in holidays and not holidays & workdays
