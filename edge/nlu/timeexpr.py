"""Time expressions relative to the call time: 明天下午三点, 下周一上午, 过两天, 月底.

Text comes in already normalised by the lexicon (听日 -> 明天, 下昼 -> 下午),
so the grammar here is Mandarin only. `find_times(text, now)` returns the
mentions with their dates worked out from `now`; `resolve(mention, now, base)`
turns one into an aware datetime, taking what the mention leaves open (the
day of "四点", the hour of "后天") from `base`, the value being corrected.

Rules for what callers leave open (documented, tested):
- a clock hour without 上午/下午: 1-6 is afternoon (13-18), 7-12 as said;
- a day without a time: 10:00; a part of day without a clock: 早上 9:00,
  上午 10:00, 中午 12:00, 下午 15:00, 傍晚 17:00, 晚上 19:00;
- a time without a day: today if still ahead, else tomorrow;
- 晚点/待会/一会儿: one hour on, rounded up to the quarter hour.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from edge.nlu.numbers import parse_amount, parse_int

_N: Final = r"[零〇一二两三四五六七八九十\d]{1,3}"
_WEEKDAYS: Final = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
                    "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
PART_DEFAULTS: Final = {"凌晨": (6, 0), "早上": (9, 0), "早晨": (9, 0), "一早": (9, 0), "上午": (10, 0),
                        "中午": (12, 0), "午饭后": (13, 30), "午休后": (13, 30), "下午": (15, 0),
                        "傍晚": (17, 0), "下班前": (17, 0), "下班后": (18, 30), "晚上": (19, 0), "夜里": (20, 0)}
_PM_PARTS: Final = {"下午", "傍晚", "晚上", "夜里", "下班后", "下班前"}
DEFAULT_TIME: Final = (10, 0)
_DAY_WORDS: Final = {"今天": (0, None), "今早": (0, "早上"), "今晚": (0, "晚上"), "明天": (1, None),
                     "明日": (1, None), "明早": (1, "早上"), "明晚": (1, "晚上"), "后天": (2, None),
                     "大后天": (3, None)}

_PATTERNS: Final = [
    # 下周三点: the 三 is the hour's (a lone 点 is no time), so that reads 下周 + 三点
    ("week", r"(?P<wpre>下下个?|下个?|这个?|本)?(?:周|星期)(?P<wd>[一二三四五六日天1-7])(?!点|时|:|：)"),
    ("weekend", r"(?P<epre>下个?|这个?|本)?周末"),
    ("nextweek", r"下个?(?:周|星期)"),
    ("month", r"(?P<mpre>下个?|这个?|本)?月(?P<mpart>底|末|初|中)(?!午)"),
    ("nextmonth", r"下个?月"),
    ("yearend", r"年底"),
    ("date", rf"(?:(?P<mon>{_N})月)?(?P<dom>{_N})(?:号|日)"),
    ("inndays", rf"(?P<nd>{_N})天(?:后|以后|之后)"),
    ("pass", r"过(?P<pd>一两|两|几|三|一)天"),
    ("vague", r"过一阵子?|过段时间|过些天|改天"),
    ("day", "|".join(sorted(_DAY_WORDS, key=len, reverse=True))),
    ("part", "|".join(sorted(PART_DEFAULTS, key=len, reverse=True))),
    # a number right after 点 is its minutes, unless 点 follows it too: 三点十四点 is 3 o'clock then 14;
    # 半个 is "half a" (两点半个演示 is 看 misheard), not half past; an ordinal is no hour (第二时: "another time")
    ("clock", rf"(?<!第)(?P<h>{_N})(?:点钟|点|:|：|时)(?:(?P<half>半)(?!个)|(?P<q1>一刻)|(?P<q3>三刻)|"
              rf"(?P<min>{_N})(?!{_N}|点|时|:|：)分?)?"),
    ("hours", rf"(?:过)?(?P<hn>{_N}|半)个?(?:小时|钟头)(?P<hafter>后|以后|之后)?"),
    ("minutes", rf"(?:过)?(?P<mn>{_N})分钟(?P<mafter>后|以后|之后)?"),
    ("soon", r"一会儿?|待会儿?|等会儿?|晚点|晚一点|稍后|等一下|等阵"),
]
_SCANNER: Final = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _PATTERNS))
_KINDS: Final = [kind for kind, _ in _PATTERNS]
_GLUE: Final = re.compile(r"[\s的,，、]{0,2}")
_NEG_BEFORE: Final = re.compile(r"((?<!是)不是|不要|别|不能|不在)\s*$")  # 是不是三点 asks, it does not deny
_NEG_AFTER: Final = re.compile(r"^\s*(都|也|已经|全)?(不行|不方便|没空|不可以|不太行|没时间|不在|有事|不合适|不好|排满|满了|"
                               r"约满|有安排|要加班|加班|开会)")
_DAY_THEN_WEEK: Final = re.compile(rf"(今天|明天|后天|明日|今日|(?:星期|周)[一二三四五六日天1-7])([上下])周"
                                   rf"(?=$|[\s,，]|{_N}(?:点|时))")
_NOT_THEN_TEN: Final = re.compile(rf"(不是{_N}(?:点钟|点半|点))十(?=[一二三四五六七八九](?:点|时))")
_DATE_THEN_GOOD: Final = re.compile(rf"(?<![零〇一二两三四五六七八九十\d第期周])({_N})好(?=上午|下午|早上|中午|晚上|{_N}(?:点|时))")
_NOT_CLOCK_BEFORE: Final = re.compile(r"[有一好快慢这那]$")
"""有两点 / 这三点: "points", not o'clock. (After 点 comes a second time: 三点四点都行; 一点点 is caught as 一点.)"""
_NOT_CLOCK_AFTER: Final = re.compile(r"^(意见|要求|建议|问题|内容|东西|事|理由|原因|看法|不足|好处|优势|需求|区别)")
_DAY_KINDS: Final = {"week", "weekend", "nextweek", "month", "nextmonth", "yearend", "date", "inndays", "pass",
                     "vague", "day"}


@dataclass(frozen=True)
class TimeMention:
    """One time expression found in a turn."""

    text: str
    start: int
    end: int
    day: date | None = None
    """The date it names, worked out from the call time; None if it names none."""
    hour: int | None = None
    minute: int | None = None
    part: str | None = None
    """Part of day (上午, 下午 ...) if said."""
    delta: timedelta | None = None
    """For "一个小时后": the offset from the call time."""
    approx: bool = False
    """Vague on purpose (过两天, 晚点): a slot filled from it is not certain."""
    negated: bool = False
    """Said to be wrong or impossible (不是三点, 三点不行)."""


def find_times(text: str, now: datetime) -> list[TimeMention]:
    """All time mentions in `text` (normalised Mandarin), in order."""
    text = _mend_misheard(text)
    tokens = []
    for match in _SCANNER.finditer(text):
        kind = next(k for k in _KINDS if match.group(k) is not None)
        if _keep(kind, match, text):
            tokens.append((kind, match))
    mentions, group = [], []
    for kind, match in tokens:
        if group and _joins(group, kind, match, text):
            group.append((kind, match))
            continue
        if group:
            mentions.append(_build(group, text, now))
        group = [(kind, match)]
    if group:
        mentions.append(_build(group, text, now))
    return [m for m in mentions if m is not None]


def resolve(mention: TimeMention, now: datetime, base: datetime | None = None) -> datetime:
    """An aware datetime for `mention`; open parts come from `base`, else the rules above."""
    if mention.delta is not None:
        when = now + mention.delta
        if mention.approx:
            quarter = (-(when.minute % 15)) % 15
            when += timedelta(minutes=quarter)
        return when.replace(second=0, microsecond=0)
    day = mention.day or (base.date() if base is not None else None)
    if mention.hour is not None:
        hour, minute = mention.hour, mention.minute or 0
    elif mention.part is not None:
        hour, minute = PART_DEFAULTS[mention.part]
    elif base is not None:
        hour, minute = base.hour, base.minute
    else:
        hour, minute = DEFAULT_TIME
    if day is None:
        day = now.date()
        if datetime.combine(day, datetime.min.time(), now.tzinfo).replace(hour=hour, minute=minute) <= now:
            day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=now.tzinfo)


def _mend_misheard(text: str) -> str:
    """Undo same-sound slips of speech recognition that no caller means (same length, so offsets hold)."""
    # 明天下周三点, 星期五下周三点: a day then "next week" is no time; Cantonese 下昼/上昼 (afternoon/morning)
    # sound like 下周/上周
    text = _DAY_THEN_WEEK.sub(lambda m: m.group(1) + m.group(2) + "午", text)
    # 不是三点十四点: the correction's 是 heard as 十 (both shi): 不是三点，是四点
    text = _NOT_THEN_TEN.sub(lambda m: m.group(1) + "是", text)
    # 二十好下午两点: a day of the month's 号 heard as 好 (both hao) before a time of day (not after 第 or a
    # weekday's 星期/周: 星期二好 is Tuesday, fine)
    return _DATE_THEN_GOOD.sub(lambda m: m.group(1) + ("号" if 1 <= (parse_int(m.group(1)) or 0) <= 31 else "好"), text)


def _keep(kind: str, match: re.Match, text: str) -> bool:
    if kind == "clock":
        hour = parse_int(match.group("h"))
        if hour is None or hour > 24 or _NOT_CLOCK_AFTER.match(text[match.end():]):
            return False
        said_exactly = match.group("half") or match.group("q1") or match.group("q3") or match.group("min")
        # "有一点贵", "快一点": 一点 is "a little", not one o'clock
        if not said_exactly and (hour == 1 or _NOT_CLOCK_BEFORE.search(text[:match.start()])) \
                and not re.search(r"(上午|下午|中午|晚上|早上|凌晨|天|号)\s*$", text[:match.start()]):
            return False
    if kind in ("hours", "minutes"):
        after = match.group("hafter") if kind == "hours" else match.group("mafter")
        return bool(after) or match.group().startswith("过")
    if kind == "date" and match.group("mon") is None:
        return not re.match(r"码", text[match.end():])  # 号码
    return True


def _joins(group, kind: str, match: re.Match, text: str) -> bool:
    previous_kind, previous = group[-1]
    if not _GLUE.fullmatch(text[previous.end():match.start()]):
        return False
    if previous_kind in ("nextmonth", "month") and kind == "date" and match.group("mon") is None \
            and len(group) == 1:
        return True  # 下个月十号
    kinds = {_slot_of(k) for k, _ in group}
    order = ("day", "part", "clock")
    slot = _slot_of(kind)
    if slot not in order or slot in kinds:
        return False
    return order.index(slot) > order.index(_slot_of(previous_kind))


def _slot_of(kind: str) -> str:
    if kind in _DAY_KINDS:
        return "day"
    return kind if kind in ("part", "clock") else "rel"


def _build(group, text: str, now: datetime) -> TimeMention | None:
    today = now.date()
    fields: dict = {"day": None, "hour": None, "minute": None, "part": None, "delta": None, "approx": False}
    start, end = group[0][1].start(), group[-1][1].end()
    if len(group) > 1 and group[0][0] in ("nextmonth", "month") and group[1][0] == "date":
        month_start, _, _ = _day("nextmonth" if group[0][0] == "nextmonth" or
                                 (group[0][1].group("mpre") or "").startswith("下") else "date0", group[0][1], today)
        group = [("monthday", (month_start, group[1][1]))] + group[2:]
    for kind, match in group:
        if kind == "monthday":
            month_start, date_match = match
            dom = parse_int(date_match.group("dom"))
            try:
                fields["day"] = month_start.replace(day=dom) if dom else None
            except ValueError:
                return None
            if fields["day"] is None:
                return None
            continue
        if kind in _DAY_KINDS:
            day, approx, part = _day(kind, match, today)
            if day is None:
                return None
            fields["day"], fields["approx"] = day, approx
            fields["part"] = fields["part"] or part
        elif kind == "part":
            fields["part"] = match.group()
        elif kind == "clock":
            fields["hour"], fields["minute"] = _clock(match, fields["part"])
            if fields["hour"] is None:
                return None
        else:
            fields["delta"], fields["approx"] = _relative(kind, match)
    negated = bool(_NEG_BEFORE.search(text[max(0, start - 3):start]) or _NEG_AFTER.search(text[end:end + 4]))
    return TimeMention(text=text[start:end], start=start, end=end, negated=negated, **fields)


def _day(kind: str, match: re.Match, today: date) -> tuple[date | None, bool, str | None]:
    monday = today - timedelta(days=today.weekday())
    if kind == "date0":  # this month, for 这个月十号
        return today.replace(day=1), False, None
    if kind == "day":
        offset, part = _DAY_WORDS[match.group()]
        return today + timedelta(days=offset), False, part
    if kind == "week":
        weekday, prefix = _WEEKDAYS[match.group("wd")], match.group("wpre") or ""
        if prefix.startswith("下下"):
            return monday + timedelta(days=14 + weekday), False, None
        if prefix.startswith("下"):
            return monday + timedelta(days=7 + weekday), False, None
        day = monday + timedelta(days=weekday)
        return (day if day >= today else day + timedelta(days=7)), False, None
    if kind == "weekend":
        prefix = match.group("epre") or ""
        saturday = monday + timedelta(days=5 + (7 if prefix.startswith("下") else 0))
        return (today if today.weekday() == 6 and not prefix.startswith("下") else saturday), False, None
    if kind == "nextweek":
        return monday + timedelta(days=7), True, None
    if kind in ("month", "nextmonth"):
        year, month = today.year, today.month
        if kind == "nextmonth" or (match.group("mpre") or "").startswith("下"):
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        which = match.group("mpart") if kind == "month" else "初"
        last = calendar.monthrange(year, month)[1]
        dom = {"底": last, "末": last, "初": 1, "中": 15}[which]
        day = date(year, month, dom)
        if day < today:  # 月初 said mid-month means next month's
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            day = date(year, month, min(dom, calendar.monthrange(year, month)[1]))
        return day, which in "初中" or kind == "nextmonth", None
    if kind == "yearend":
        return date(today.year, 12, 31), True, None
    if kind == "date":
        dom = parse_int(match.group("dom"))
        month = parse_int(match.group("mon")) if match.group("mon") else today.month
        if dom is None or month is None:
            return None, False, None
        try:
            day = date(today.year, month, dom)
            if day < today:
                day = date(today.year + 1, month, dom) if match.group("mon") else \
                    date(today.year + (month == 12), month % 12 + 1, dom)
        except ValueError:
            return None, False, None
        return day, False, None
    if kind == "inndays":
        days = parse_int(match.group("nd"))
        return (today + timedelta(days=days), False, None) if days is not None and days < 400 else (None, False, None)
    if kind == "pass":
        days = {"一两": 2, "两": 2, "几": 3, "三": 3, "一": 1}[match.group("pd")]
        return today + timedelta(days=days), True, None
    # vague: 过一阵 / 过段时间 a week on, 改天 tomorrow
    return today + timedelta(days=1 if match.group() == "改天" else 7), True, None


def _clock(match: re.Match, part: str | None) -> tuple[int | None, int]:
    hour = parse_int(match.group("h"))
    if hour is None or hour > 24:
        return None, 0
    minute = 30 if match.group("half") else 15 if match.group("q1") else 45 if match.group("q3") else 0
    if match.group("min"):
        minute = parse_int(match.group("min")) or 0
        if minute > 59:
            return None, 0
    if part in _PM_PARTS and hour < 12:
        hour += 12
    elif part == "中午" and hour in (1, 2):
        hour += 12
    elif part is None and 1 <= hour <= 6:
        hour += 12
    return hour % 24, minute


def _relative(kind: str, match: re.Match) -> tuple[timedelta, bool]:
    if kind == "hours":
        raw = match.group("hn")
        hours = 0.5 if raw == "半" else (parse_amount(raw) or (1, False))[0]
        return timedelta(minutes=int(hours * 60)), False
    if kind == "minutes":
        return timedelta(minutes=parse_int(match.group("mn")) or 10), False
    return timedelta(hours=1), True
