"""Slot extraction: times relative to the call time, contacts, size, budget, supplier, channel, role."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.nlu.numbers import parse_amount, parse_int, spoken_digits
from edge.nlu.slots import SAME_AS_PHONE, extract
from edge.nlu.timeexpr import find_times, resolve

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 5, 14, 20, tzinfo=TZ)  # a Wednesday afternoon


def times(text, now=NOW):
    return [resolve(m.value, now).isoformat() for m in extract(text, now) if m.kind == "time" and not m.negated]


def values(text, kind):
    return [m.value for m in extract(text, NOW) if m.kind == kind and not m.negated]


@pytest.mark.parametrize("text, expected", [
    ("明天下午三点", "2025-03-06T15:00:00+08:00"),
    ("下周一上午", "2025-03-10T10:00:00+08:00"),
    ("过两天", "2025-03-07T10:00:00+08:00"),
    ("月底吧", "2025-03-31T10:00:00+08:00"),
    ("周五上午十点", "2025-03-07T10:00:00+08:00"),
    ("下午四点以后打", "2025-03-05T16:00:00+08:00"),
    ("十点半", "2025-03-06T10:30:00+08:00"),  # 10:30 today has passed
    ("下周三下午两点半个演示吧", "2025-03-12T14:00:00+08:00"),  # 半个: "half a", not half past
    ("揸紧车呀你第二时再打嚟啦 听日下昼啦", "2025-03-06T15:00:00+08:00"),  # 第二时 is "another time", not 2 o'clock
    ("今晚八点", "2025-03-05T20:00:00+08:00"),
    ("三月八号下午", "2025-03-08T15:00:00+08:00"),
    ("十五号", "2025-03-15T10:00:00+08:00"),
    ("三号", "2025-04-03T10:00:00+08:00"),  # the 3rd has passed: next month's
    ("下个月中", "2025-04-15T10:00:00+08:00"),
    ("一个小时后再打", "2025-03-05T15:20:00+08:00"),
    ("晚点再打", "2025-03-05T15:30:00+08:00"),  # one hour on, up to the quarter
    ("星期天下午", "2025-03-09T15:00:00+08:00"),
    ("大后天上午九点", "2025-03-08T09:00:00+08:00"),
    ("15:30", "2025-03-05T15:30:00+08:00"),
    # Cantonese and Sichuanese forms
    ("听日下昼打嚟", "2025-03-06T15:00:00+08:00"),
    ("后日先啦", "2025-03-07T10:00:00+08:00"),
    ("听朝十点", "2025-03-06T10:00:00+08:00"),
    ("下礼拜一先", "2025-03-10T10:00:00+08:00"),
    ("明儿个下午", "2025-03-06T15:00:00+08:00"),
    ("下个月十号以后", "2025-04-10T10:00:00+08:00"),
    ("周三下午再打吧 今天都排满了", "2025-03-05T15:00:00+08:00"),
    ("下下周一", "2025-03-17T10:00:00+08:00"),
])
def test_time_expressions(text, expected):
    assert times(text) == [expected]


def test_time_rolls_over_month_and_year():
    end_of_year = datetime(2025, 12, 31, 18, 0, tzinfo=TZ)
    assert times("明天上午", end_of_year) == ["2026-01-01T10:00:00+08:00"]
    assert times("下周一", end_of_year) == ["2026-01-05T10:00:00+08:00"]
    assert times("月初", end_of_year) == ["2026-01-01T10:00:00+08:00"]


@pytest.mark.parametrize("text", ["这个有一点贵", "我们有三点要求", "我的号码是多少", "快一点", "两点意见"])
def test_not_times(text):
    assert times(text) == []


def test_negated_times_and_correction_base():
    mentions = find_times("不是三点 是四点", NOW)
    assert [m.negated for m in mentions] == [True, False]
    base = datetime(2025, 3, 6, 15, 0, tzinfo=TZ)
    assert resolve(mentions[1], NOW, base).isoformat() == "2025-03-06T16:00:00+08:00"
    later = find_times("后天吧", NOW)[0]
    assert resolve(later, NOW, base).isoformat() == "2025-03-07T15:00:00+08:00"
    assert find_times("三点不行 四点吧", NOW)[0].negated
    assert not find_times("是不是三点", NOW)[0].negated  # a question, not a denial


@pytest.mark.parametrize("text, hour, negated", [("唔系三点", 15, True), ("听日上昼十点", 10, False),
                                                 ("挨晚六点", 18, False), ("系唔系三点", 15, False)])
def test_cantonese_time_words(text, hour, negated):
    (mention,) = [m for m in extract(text, NOW) if m.kind == "time"]
    assert (mention.value.hour, mention.negated) == (hour, negated)


def test_a_second_time_right_after_the_first_is_not_its_minutes():
    # 三点十四 would be 3:14, but the 点 after 十四 makes it an hour of its own
    mentions = find_times("三点十四点", NOW)
    assert [(m.hour, m.minute, m.negated) for m in mentions] == [(15, 0, False), (14, 0, False)]
    assert [(m.hour, m.minute) for m in find_times("三点四点都行", NOW)] == [(15, 0), (16, 0)]
    assert [(m.hour, m.minute) for m in find_times("三点十四", NOW)] == [(15, 14)]
    assert [(m.hour, m.minute) for m in find_times("三点十四分", NOW)] == [(15, 14)]
    assert times("有一点点贵") == []
    # the same for a weekday: 下周三点 is next week at three (a lone 点 is no time), 下周三三点 next Wednesday
    assert [(m.day.isoformat(), m.hour) for m in find_times("下周三点", NOW)] == [("2025-03-10", 15)]
    # the same after a weekday: 礼拜五下昼三点 heard as 星期五下周三点 (NOW is a Wednesday)
    assert [(m.day.isoformat(), m.hour) for m in find_times("星期五下周三点", NOW)] == [("2025-03-07", 15)]
    assert [(m.day.isoformat(), m.hour) for m in find_times("周四上周十点", NOW)] == [("2025-03-06", 10)]
    assert [m.day.isoformat() for m in find_times("周五下周一再说", NOW)] == ["2025-03-07", "2025-03-10"]
    assert [(m.day.isoformat(), m.hour) for m in find_times("下周三三点", NOW)] == [("2025-03-12", 15)]


def test_same_sound_slips_no_caller_means_are_mended():
    # after 不是三点 the correction's 是 heard as 十 (both shi): "not three, four", not "not three, fourteen"
    mentions = find_times("不对不是三点十四点", NOW)
    assert [(m.text, m.hour, m.negated) for m in mentions] == [("三点", 15, True), ("四点", 16, False)]
    assert [m.hour for m in find_times("不是三点半十五点", NOW)] == [15, 17]
    # a day then "next week" is no time: Cantonese 下昼/上昼 (afternoon/morning) heard as 下周/上周
    assert [(m.day.isoformat(), m.hour) for m in find_times("明天下周三点", NOW)] == [("2025-03-06", 15)]
    assert [(m.day.isoformat(), m.hour) for m in find_times("后天上周十点", NOW)] == [("2025-03-07", 10)]
    assert [m.day.isoformat() for m in find_times("明天下周三", NOW)] == ["2025-03-06", "2025-03-12"]
    assert [(m.day.isoformat(), m.hour) for m in find_times("下周三点", NOW)] == [("2025-03-10", 15)]
    # a date's 号 heard as 好 (both hao) before a time of day: Cantonese 二十号下昼两点
    assert [(m.day.isoformat(), m.hour) for m in find_times("二十好下午两点", NOW)] == [("2025-03-20", 14)]
    assert [(m.day.isoformat(), m.hour) for m in find_times("8好上午十点", NOW)] == [("2025-03-08", 10)]
    assert [m.hour for m in find_times("四十好下午两点", NOW)] == [14]  # no 40th: left alone
    assert find_times("都好下午再说", NOW)[0].day is None  # no number before 好
    assert find_times("第二好下午", NOW)[0].day is None  # an ordinal, not a date
    assert [m.text for m in find_times("星期二好下午三点", NOW)] == ["星期二", "下午三点"]  # a weekday, not the 2nd


@pytest.mark.parametrize("text, value", [("二十五", 25), ("一千五", 1500), ("三万五", 35000), ("两百", 200),
                                         ("一百零五", 105), ("一百二", 120), ("3万", 30000), ("十", 10)])
def test_numbers(text, value):
    assert parse_int(text) == value


def test_amounts_and_digits():
    assert parse_amount("五六万") == (60000, True)
    assert parse_amount("十五六") == (16, True)
    assert parse_amount("廿几") == (25, True)
    assert parse_amount("两百来") == (200, True)
    assert parse_amount("十几") == (15, True)
    assert spoken_digits("幺三八 一二三四 五六七八") == [("13812345678", 0, 13)]


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_extract_never_crashes(text):
    for mention in extract(text, NOW):
        assert mention.kind and 0 <= mention.confidence <= 1


@pytest.mark.parametrize("text, kind, expected", [
    ("我手机是幺三八 一二三四 五六七八", "phone", ["13812345678"]),
    ("微信号是 zhang_san88", "wechat", ["zhang_san88"]),
    ("微信同号", "wechat", [SAME_AS_PHONE]),
    ("微信就是这个号", "wechat", [SAME_AS_PHONE]),
    ("邮箱是 li.ming@qq.com", "email", ["li.ming@qq.com"]),
    ("邮箱 wang 艾特 163 点 com", "email", ["wang@163.com"]),
    ("员工两百来人", "company_size", [200]),
    ("我们销售团队二十来个人", "company_size", [20]),
    ("一个人一年最多一千", "company_size", []),
    ("预算就五万", "budget", [50000]),
    ("准备了五六万块钱的样子", "budget", [60000]),
    ("今年没预算了", "budget", [0]),
    ("一个人一年最多一千", "budget_per_seat", [1000]),
    ("我们在用钉钉", "supplier", ["钉钉"]),
    ("公司买咗销售易", "supplier", ["销售易"]),
    ("发我微信", "channel", ["wechat"]),
    ("发邮箱吧", "channel", ["email"]),
    ("能对接企业微信吗", "channel", []),
    ("我是老板", "role", ["owner"]),
    ("我就是IT负责人", "role", ["it_lead"]),
    ("这事我说了算", "role", ["owner"]),
    ("我做不了主 要问老板", "role", ["staff"]),
    ("发给我们老板", "role", []),
    ("万一不好用呢", "budget", []),
    ("我哋公司廿几个人", "company_size", [25]),
    ("业务员有十五六个", "count", [16]),
    ("买二十个账号", "count", []),
    ("我得问问我们领导", "role", ["staff"]),
    ("我系老细", "role", ["owner"]),
    ("呢单嘢我话事", "role", ["owner"]),
    ("我话事唔到 要问老细", "role", ["staff"]),
    ("我只喺个文完 要问下老细先", "role", ["staff"]),  # Cantonese 问下 (ask); 系 文员 misheard
    # role phrases and words of 3+ characters also match by sound: a recogniser writes 我话事 as 我话是
    ("我系老细 我话是", "role", ["owner"]),
    ("我话是唔到", "role", ["staff"]),
    ("这个我说了蒜", "role", ["owner"]),
    ("我是公司的销售总见", "role", ["sales_lead"]),
    ("销售总见今天不在", "role", []),  # a role word counts only when the caller says it of themselves
    ("我是老版", "role", []),  # 2-character forms: exact only (too many same-sound words)
    ("发邮箱 wang点li at 163点com", "email", ["wang.li@163.com"]),
    ("发我微信 就是这个手机号", "wechat", [SAME_AS_PHONE]),
])
def test_slot_values(text, kind, expected):
    assert values(text, kind) == expected


def test_supplier_cue_and_negation():
    named = [m for m in extract("能对接钉钉吗", NOW) if m.kind == "supplier"]
    assert named and not named[0].cue
    corrected = [(m.value, m.negated) for m in extract("不是钉钉 是飞书", NOW) if m.kind == "supplier"]
    assert corrected == [("钉钉", True), ("飞书", False)]
    assert [m.negated for m in extract("我不是老板", NOW) if m.kind == "role"] == [True]


def test_hostile_text_is_bounded():
    text = "明天下午三点" * 2000 + "😀" * 100
    mentions = extract(text, NOW)
    assert mentions and all(m.start < 2000 for m in mentions)
