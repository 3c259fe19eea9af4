"""When a lead may be dialled: calling hours per weekday in the lead's time
zone, public holidays and make-up working days, retries per call result, and
the window in which booked callbacks are honoured.

Windows are half-open: "09:00-12:00" allows 09:00:00 up to 11:59:59.

Example:
    >>> hours = CallingHours.from_spec({"mon-fri": "09:00-12:00,13:30-18:00"}, holidays="cn")
    >>> tz = ZoneInfo("Asia/Shanghai")
    >>> hours.allows(datetime(2025, 3, 5, 12, 0, tzinfo=tz))
    False
    >>> hours.next_open(datetime(2025, 3, 5, 12, 0, tzinfo=tz)).isoformat()
    '2025-03-05T13:30:00+08:00'
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from edge.config import DATA_DIR
from edge.errors import CampaignError

HOLIDAYS_FILE: Final = DATA_DIR / "holidays_cn.yaml"
DEFAULT_HOURS: Final = {"mon-fri": "09:00-12:00,13:30-18:00"}
DEFAULT_CALLBACK_HOURS: Final = "08:00-21:00"
SEARCH_DAYS: Final = 400
"""How far ahead next_open looks before deciding the hours never open."""
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW: Final = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")

Window = tuple[int, int]
"""Minutes after midnight: [start, end)."""


def parse_windows(text: str, where: str = "hours") -> list[Window]:
    """ "09:00-12:00,13:30-18:00" -> [(540, 720), (810, 1080)]; "" -> []."""
    windows = []
    for part in filter(None, (p.strip() for p in re.split(r"[,，;]", text or ""))):
        match = _WINDOW.match(part)
        if not match:
            raise CampaignError(f"{where}: {part!r} is not a window like 09:00-12:00")
        h1, m1, h2, m2 = map(int, match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60 or start >= end:
            raise CampaignError(f"{where}: {part!r} must run forwards within one day (00:00-24:00)")
        windows.append((start, end))
    windows.sort()
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        if start < end:
            raise CampaignError(f"{where}: windows {text!r} overlap")
    return windows


def parse_hours_spec(text: str) -> dict[str, str]:
    """ "mon-fri=09:00-12:00,13:30-18:00;sat=10:00-12:00" -> {"mon-fri": "...", "sat": "..."} (validated)."""
    hours = {}
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        days, sep, windows = part.partition("=")
        if not sep:
            raise CampaignError(f"hours: {part!r}: write DAYS=WINDOWS, e.g. mon-fri=09:00-12:00,13:30-18:00")
        _day_keys(days.strip())
        parse_windows(windows, f"hours[{days.strip()}]")
        hours[days.strip()] = windows.strip()
    return hours


def format_windows(windows: list[Window]) -> str:
    return ",".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in windows)


def _day_keys(key: str) -> list[int]:
    """ "mon-fri" | "sat" | "1-5" | "7" -> weekday numbers (Monday 0)."""
    names = {name: i for i, name in enumerate(_DAYS)} | {str(i + 1): i for i in range(7)}
    parts = [p.strip().lower() for p in key.split("-")]
    if len(parts) == 1 and parts[0] in names:
        return [names[parts[0]]]
    if len(parts) == 2 and all(p in names for p in parts) and names[parts[0]] <= names[parts[1]]:
        return list(range(names[parts[0]], names[parts[1]] + 1))
    raise CampaignError(f"hours: {key!r} is not a weekday or range like mon-fri, sat or 1-5")


@functools.lru_cache(maxsize=1)
def china_calendar() -> tuple[frozenset[date], frozenset[date]]:
    """(holidays, make-up working days) from edge/data/holidays_cn.yaml."""
    data = yaml.safe_load(HOLIDAYS_FILE.read_text(encoding="utf-8"))
    holidays: set[date] = set()
    workdays: set[date] = set()
    for year in data.values():
        for item in year.get("holidays", []):
            holidays.update(_dates(item))
        for item in year.get("workdays", []):
            workdays.update(_dates(item))
    return frozenset(holidays), frozenset(workdays)


def _dates(item: Any) -> list[date]:
    if isinstance(item, date):
        return [item]
    text = str(item)
    try:
        if ".." in text:
            first, last = (date.fromisoformat(p.strip()) for p in text.split(".."))
            return [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [date.fromisoformat(text.strip())]
    except ValueError:
        raise CampaignError(f"{text!r} is not a date (YYYY-MM-DD) or range (YYYY-MM-DD..YYYY-MM-DD)") from None


def parse_dates(items: list[Any] | None) -> frozenset[date]:
    out: set[date] = set()
    for item in items or []:
        out.update(_dates(item))
    return frozenset(out)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Asia" (a directory), a 300-char name
        raise CampaignError(f"time zone {name!r} is not an IANA zone such as 'Asia/Shanghai'") from None


@dataclass(frozen=True)
class CallingHours:
    """Allowed windows per weekday (Monday 0), minus holidays, plus make-up working days."""

    weekly: tuple[tuple[Window, ...], ...]
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    """Make-up working days (调休): called with Monday's windows even on a weekend."""

    @classmethod
    def from_spec(cls, spec: dict[str, str] | None = None, *, holidays: str = "cn",
                  extra_holidays: list[Any] | None = None, extra_workdays: list[Any] | None = None) -> CallingHours:
        """Args:
            spec: {"mon-fri": "09:00-12:00,13:30-18:00", "sat": "10:00-12:00"}; days not named are closed.
            holidays: "cn" (the built-in mainland calendar) or "none".
        """
        weekly: list[list[Window]] = [[] for _ in range(7)]
        for key, text in (DEFAULT_HOURS if spec is None else spec).items():
            windows = parse_windows(text, f"hours[{key}]")
            for day in _day_keys(key):
                weekly[day] = windows
        if holidays == "cn":
            base_holidays, base_workdays = china_calendar()
        elif holidays == "none":
            base_holidays, base_workdays = frozenset(), frozenset()
        else:
            raise CampaignError(f"holidays must be 'cn' or 'none', got {holidays!r}")
        return cls(tuple(tuple(w) for w in weekly), base_holidays | parse_dates(extra_holidays),
                   (base_workdays | parse_dates(extra_workdays)) - parse_dates(extra_holidays))

    @classmethod
    def daily(cls, text: str) -> CallingHours:
        """The same windows every day, holidays included (the callback window)."""
        windows = tuple(parse_windows(text, "callback_hours"))
        return cls(tuple(windows for _ in range(7)))

    def windows_on(self, day: date) -> tuple[Window, ...]:
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.weekly[0]
        return self.weekly[day.weekday()]

    def allows(self, when: datetime, tz: ZoneInfo | None = None) -> bool:
        """True if `when` (aware) falls inside a window, in `tz` (default: when's own zone)."""
        local = when.astimezone(tz) if tz is not None else when
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.windows_on(local.date()))

    def next_open(self, when: datetime, tz: ZoneInfo | None = None) -> datetime:
        """The first moment at or after `when` that the hours allow (in `when`'s zone on return).

        Raises:
            CampaignError: no window opens within SEARCH_DAYS days.
        """
        if when.tzinfo is None:
            raise CampaignError("next_open needs an aware datetime (with a time zone)")
        local = when.astimezone(tz) if tz is not None else when
        zone_ = local.tzinfo
        if self.allows(local):
            return when
        minute = local.hour * 60 + local.minute
        for offset in range(SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            for start, _end in self.windows_on(day):
                if offset == 0 and start <= minute:
                    continue
                opened = datetime.combine(day, time(start // 60, start % 60), tzinfo=zone_)
                return opened.astimezone(when.tzinfo)
        raise CampaignError(f"the calling hours never open in the next {SEARCH_DAYS} days; check the campaign's hours")

    def describe(self) -> dict[str, str]:
        return {_DAYS[i]: format_windows(list(w)) for i, w in enumerate(self.weekly)}


@dataclass(frozen=True)
class RetryRule:
    after_min: int
    """Wait at least this long before dialling again."""
    max_retries: int
    """Redial at most this many times after a result of this kind."""


DEFAULT_RETRY: Final = {
    "no_answer": RetryRule(120, 2),
    "busy": RetryRule(30, 3),
    "voicemail": RetryRule(24 * 60, 1),
    "unreachable": RetryRule(240, 2),
    "failed": RetryRule(60, 1),
    "handoff_failed": RetryRule(10, 2),
}
"""unreachable: switched off / out of coverage (a carrier announcement); failed: the network or PBX;
handoff_failed: answered, but the bot never talked with the lead (refused, not taken, cut before a turn)."""


@dataclass(frozen=True)
class RetryPolicy:
    rules: dict[str, RetryRule] = field(default_factory=lambda: dict(DEFAULT_RETRY))
    max_attempts: int = 4
    """Dials per lead in all, whatever the results."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, max_attempts: int = 4) -> RetryPolicy:
        rules = dict(DEFAULT_RETRY)
        for name, value in (data or {}).items():
            if name not in DEFAULT_RETRY:
                raise CampaignError(f"retry: unknown result {name!r}; known: {sorted(DEFAULT_RETRY)}")
            try:
                rule = RetryRule(int(value["after_min"]), int(value["max_retries"]))
            except (KeyError, TypeError, ValueError):
                raise CampaignError(f"retry.{name} needs integer after_min and max_retries") from None
            if rule.after_min < 1 or rule.max_retries < 0:
                raise CampaignError(f"retry.{name}: after_min must be >= 1 and max_retries >= 0")
            rules[name] = rule
        if max_attempts < 1:
            raise CampaignError(f"max_attempts must be >= 1, got {max_attempts}")
        return cls(rules, max_attempts)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {name: {"after_min": r.after_min, "max_retries": r.max_retries} for name, r in self.rules.items()}

    def next_attempt(self, disposition: str, same_before: int, attempts: int, now: datetime) -> datetime | None:
        """When to dial again after a result, or None when this lead is finished.

        Args:
            disposition: the result just recorded (no_answer, busy, ...).
            same_before: how many earlier dials of this lead ended with the same result.
            attempts: dials of this lead so far, this one included.
        """
        rule = self.rules.get(disposition)
        if rule is None or same_before >= rule.max_retries or attempts >= self.max_attempts:
            return None
        return now + timedelta(minutes=rule.after_min)
