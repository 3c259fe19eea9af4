"""Chinese numerals as ASR writes them: 两百, 一千五, 三万五, 十来, 五六万, 幺三八.

Only the forms callers use on the phone; anything else returns None rather
than a guess.
"""

from __future__ import annotations

import re
from typing import Final

DIGITS: Final = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
                 "六": 6, "七": 7, "八": 8, "九": 9}
UNITS: Final = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
TENS: Final = {"廿": "二十", "卅": "三十"}
"""Cantonese and written forms of 20 and 30 (廿几个人)."""
NUMERAL_CHARS: Final = "".join(DIGITS) + "".join(UNITS) + "0123456789"
NUMBER_RE: Final = re.compile(rf"[{NUMERAL_CHARS}]+")
"""A run of numeral characters; parse it with `parse_int`."""
_ARABIC = re.compile(r"\d+")


def parse_int(text: str) -> int | None:
    """Value of one numeral: "二十五" -> 25, "一千五" -> 1500, "三万五" -> 35000,
    "两百" -> 200, "1500" -> 1500, "3万" -> 30000. None if it is not one number."""
    if not text:
        return None
    if _ARABIC.fullmatch(text):
        return int(text)
    for short, full in TENS.items():
        text = text.replace(short, full)
    total, section = 0, 0
    digit: int | None = None
    unit_before: int | None = None
    """The unit right before the pending digit (for the shorthand 一千五 = 1500)."""
    for token in re.findall(r"\d+|.", text):
        if token.isdigit() or token in DIGITS:
            value = int(token) if token.isdigit() else DIGITS[token]
            if digit is not None and digit != 0:
                return None  # "五六" is a range, not a number
            if value == 0:
                unit_before = None
            digit = value
        elif token in UNITS:
            unit = UNITS[token]
            if unit >= 10_000:
                section = (section + (digit or 0)) or 1
                total = (total + section) * unit
                section = 0
            else:
                section += (digit if digit is not None else 1) * unit
            digit, unit_before = None, unit
        else:
            return None
    if digit is not None:
        if unit_before is not None and unit_before >= 100:
            digit *= unit_before // 10
        section += digit
    return total + section


def parse_amount(text: str) -> tuple[int, bool] | None:
    """A spoken amount with ranges and approximations.

    Returns (value, approximate): "五六万" -> (60000, True) (the upper end of a
    range), "十来万" -> (100000, True), "两百来" -> (200, True), "十几" -> (15, True),
    "几十" -> (30, True), "三万" -> (30000, False). None if unreadable.
    """
    text = text.strip()
    for short, full in TENS.items():
        text = text.replace(short, full)
    approx = False
    for marker in ("来", "多", "左右", "上下", "出头", "几"):
        if marker in text:
            approx = True
    base = text.replace("来", "").replace("多", "").replace("左右", "").replace("上下", "").replace("出头", "")
    if "几" in base:
        base = base.replace("十几", "十五").replace("几十", "三十").replace("几百", "三百").replace("几千", "三千") \
            .replace("几万", "三万")
        if "几" in base:
            return None
    digits = "".join(DIGITS)
    pair = re.fullmatch(rf"([{digits}])([{digits}])([{''.join(UNITS)}]*)", base)
    if pair and DIGITS[pair.group(2)] == DIGITS[pair.group(1)] + 1:
        value = parse_int(pair.group(2) + pair.group(3))
        return (value, True) if value is not None else None
    # "十五六", "二十七八": a range of units after the tens
    tail = re.fullmatch(rf"(.*十)([{digits}])([{digits}])", base)
    if tail and DIGITS[tail.group(3)] == DIGITS[tail.group(2)] + 1:
        value = parse_int(tail.group(1) + tail.group(3))
        return (value, True) if value is not None else None
    value = parse_int(base)
    return (value, approx) if value is not None else None


_SPOKEN_DIGIT = re.compile(r"[零〇一幺二两三四五六七八九0-9][零〇一幺二两三四五六七八九0-9\s-]{5,}[零〇一幺二两三四五六七八九0-9]")


def spoken_digits(text: str) -> list[tuple[str, int, int]]:
    """Runs of 7 or more digits read out one by one ("幺三八 一二三四"), as
    (digits, start, end); spaces and dashes inside a run are dropped."""
    found = []
    for match in _SPOKEN_DIGIT.finditer(text):
        digits = "".join(str(DIGITS[c]) if c in DIGITS else c for c in match.group() if c not in " \t-")
        if len(digits) >= 7:
            found.append((digits, match.start(), match.end()))
    return found
