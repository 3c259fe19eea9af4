"""Mainland China phone numbers: validate and normalise to E.164.

Mobiles are 11 digits starting 13-19; landlines are an area code (010, 02X:
two digits after the trunk 0; others three) and a 7-8 digit subscriber
number; 400/800 service numbers are 10 digits. Separators, full-width
digits and a +86 / 0086 / 86 prefix are accepted. A landline without its
area code takes the campaign's default area code, if it has one.

Example:
    >>> parse("138 0013 8000").e164
    '+8613800138000'
    >>> parse("(0755) 8765-4321").e164, parse("0755-87654321").kind
    ('+8675587654321', 'landline')
    >>> parse("87654321", default_area_code="021").e164
    '+862187654321'
    >>> national("+8675587654321")
    '075587654321'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from edge.errors import InputError

_SEPARATORS: Final = re.compile(r"[\s\-().·/]")
_SCIENTIFIC: Final = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")
_EXTENSION: Final = re.compile(r"(转|分机|ext\.?|x)\s*\d+$", re.IGNORECASE)
_TWO_DIGIT_AREAS: Final = frozenset({"10", "20", "21", "22", "23", "24", "25", "27", "28", "29"})


class PhoneError(InputError):
    """A phone number that cannot be dialled as a mainland China number; says why."""


@dataclass(frozen=True)
class Phone:
    e164: str
    """+86 and the national number without its trunk 0, e.g. +8613800138000."""
    kind: str
    """mobile | landline | service"""


def parse(raw: str, default_area_code: str | None = None) -> Phone:
    """Normalise one number.

    Raises:
        PhoneError: empty, not digits, wrong length, not mainland China, an
            extension, or Excel's scientific notation; the message says which.
    """
    if raw and len(raw) == 11 and raw.isascii() and raw.isdigit() and raw[0] == "1" and raw[1] in "3456789":
        return Phone("+86" + raw, "mobile")  # the common case, without the general parse
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise PhoneError("empty phone number")
    if _SCIENTIFIC.match(text):
        raise PhoneError(f"{text!r} is a number Excel shortened to scientific notation; "
                         "format the phone column as text and export again")
    if _EXTENSION.search(text):
        raise PhoneError(f"{text!r} has an extension; the dialler calls numbers without extensions")
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("+"):
        if not compact.startswith("+86"):
            raise PhoneError(f"{text!r} is not a mainland China number (+86)")
        digits = compact[3:]
    elif compact.startswith("0086"):
        digits = compact[4:]
    else:
        digits = compact
    if not digits.isdigit() or not digits.isascii():
        raise PhoneError(f"{text!r} is not a phone number (only digits, spaces, - ( ) and a leading + allowed)")
    if len(digits) == 13 and digits.startswith("86") and digits[2] == "1":
        digits = digits[2:]  # 86 13800138000 without the +
    if len(digits) == 11 and digits[0] == "1":
        if digits[1] not in "3456789":
            raise PhoneError(f"{text!r}: mobile numbers start 13-19")
        return Phone("+86" + digits, "mobile")
    if len(digits) == 10 and digits[:3] in ("400", "800"):
        return Phone("+86" + digits, "service")
    if not digits.startswith("0") and len(digits) in (10, 11, 12) and compact.startswith(("+86", "0086", "86")):
        digits = "0" + (digits[2:] if compact.startswith("86") else digits)  # +86 21 87654321: area code sans 0
    if digits.startswith("0"):
        return Phone(_landline(digits, text), "landline")
    if len(digits) in (7, 8):
        if not default_area_code:
            raise PhoneError(f"{text!r} is a landline number without its area code; write it as 0XX-{digits} "
                             "or set the campaign's default area code")
        area = default_area_code if default_area_code.startswith("0") else "0" + default_area_code
        return Phone(_landline(area + digits, text), "landline")
    raise PhoneError(f"{text!r} has {len(digits)} digits: a mobile has 11, a landline 0 + area code + 7-8")


def _landline(digits: str, text: str) -> str:
    rest = digits[1:]
    if len(rest) < 9:  # "0", "010": too short to hold an area code and a subscriber number
        raise PhoneError(f"{text!r} has {len(digits)} digits: a landline is 0 + area code + 7-8 digits")
    area_len = 2 if rest[:2] in _TWO_DIGIT_AREAS else 3
    area, subscriber = rest[:area_len], rest[area_len:]
    if area[0] == "1" and area != "10":
        raise PhoneError(f"{text!r}: no area code starts 01 other than 010")
    if len(subscriber) not in ((8,) if area_len == 2 else (7, 8)) or subscriber[0] in "01":
        raise PhoneError(f"{text!r}: after area code 0{area} the number must have "
                         f"{'8' if area_len == 2 else '7 or 8'} digits and not start with 0 or 1")
    return "+86" + area + subscriber


def national(e164: str) -> str:
    """The number as dialled inside China: mobiles and 400/800 as is, landlines with the trunk 0."""
    if not e164.startswith("+86"):
        return e164.lstrip("+")
    digits = e164[3:]
    if (len(digits) == 11 and digits[0] == "1") or digits[:3] in ("400", "800"):
        return digits
    return "0" + digits


def key(raw: str) -> str:
    """The form a number is compared in (DNC list, dedupe): E.164 when it parses, else its digits."""
    try:
        return parse(raw).e164
    except PhoneError:
        digits = "".join(ch for ch in unicodedata.normalize("NFKC", raw or "") if ch.isdigit())
        return digits or (raw or "").strip()
