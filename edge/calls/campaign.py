"""Campaigns: a named lead list with its calling hours, retry rules and
compliance settings, and a status (draft -> running <-> paused -> done).

Settings are stored as JSON with the campaign; every change is validated
(the error names the setting) and written to the audit trail with who made it.

Example:
    >>> campaign = create(db, "三月华东", {"sender": "智销云", "hours": {"mon-sat": "09:00-12:00,13:30-18:00"}},
    ...                   actor="admin")
    >>> campaign.settings.calling_hours().allows(now)
    True
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml
from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from edge.calls import audit
from edge.calls.schedule import DEFAULT_CALLBACK_HOURS, DEFAULT_HOURS, CallingHours, RetryPolicy, zone
from edge.config import DATA_DIR
from edge.errors import CampaignError

TEXTS_FILE: Final = DATA_DIR / "campaign.yaml"
STATUSES: Final = ("draft", "running", "paused", "done")
VOICEMAIL_ACTIONS: Final = ("hangup", "message")
MAX_NAME_CHARS: Final = 60


@functools.lru_cache(maxsize=1)
def texts() -> dict[str, str]:
    return yaml.safe_load(TEXTS_FILE.read_text(encoding="utf-8"))


@dataclass
class CampaignSettings:
    """Per-campaign settings (all optional; the defaults are a cautious mainland-China campaign)."""

    timezone: str = "Asia/Shanghai"
    """IANA zone of the calling hours; a lead's own `timezone` column wins for that lead."""
    hours: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HOURS))
    """Windows per weekday, e.g. {"mon-fri": "09:00-12:00,13:30-18:00", "sat": "10:00-12:00"}."""
    holidays: str = "cn"
    """"cn": no calls on mainland public holidays, Monday hours on make-up working days; "none"."""
    extra_holidays: list[str] = field(default_factory=list)
    extra_workdays: list[str] = field(default_factory=list)
    callback_hours: str = DEFAULT_CALLBACK_HOURS
    """A callback the lead booked is dialled at the booked time if it falls in this daily window,
    else at the window's next opening."""
    max_concurrent: int = 10
    """Calls of this campaign at the same time."""
    max_attempts: int = 4
    """Dials per lead in all."""
    retry: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per result: {"no_answer": {"after_min": 120, "max_retries": 2}, ...}; see schedule.DEFAULT_RETRY."""
    script: str | None = None
    """Script file; None: the config's [dialog] script."""
    sender: str = ""
    """Who is calling, as said in the disclosure (company or product)."""
    disclosure: bool = True
    """Say "this is an automated call from {sender}" before the opening line."""
    recording: bool = False
    """Record calls (WAV, both channels) and say so at the start."""
    voicemail_action: str = "hangup"
    """On an answering machine: "hangup" or "message" (leave voicemail_message)."""
    voicemail_message: str | None = None
    default_area_code: str | None = None
    """For landline numbers imported without one, e.g. "021"."""
    channel: str = "PJSIP/{number}@trunk"
    """AMI dial string; {number} is the national number (13800138000, 02187654321)."""
    caller_id: str | None = None
    ring_timeout_s: float = 30.0
    handoff_timeout_s: float = 10.0
    """AMI: once the PBX answers, the bot's daemon has this long to take the call (adopt its record); after
    that the dialler writes the call off and books the lead for a retry (edge/calls/handoff.py)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CampaignSettings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in data or {}:
            if key not in known:
                raise CampaignError(f"unknown campaign setting {key!r}; known: {sorted(known)}")
        for key, value in (data or {}).items():
            _check_type(key, value, known[key])
        try:
            settings = cls(**(data or {}))
        except TypeError as exc:
            raise CampaignError(f"campaign settings: {exc}") from None
        try:
            settings.validate()
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:  # a value of the wrong shape
            raise CampaignError(f"campaign settings: a value has the wrong form ({str(exc)[:120]})") from None
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        zone(self.timezone)
        self.calling_hours()
        self.callback_window()
        self.retry_policy()
        if not 1 <= int(self.max_concurrent) <= 200:
            raise CampaignError(f"max_concurrent must be in [1, 200], got {self.max_concurrent}")
        if self.voicemail_action not in VOICEMAIL_ACTIONS:
            raise CampaignError(f"voicemail_action must be one of {VOICEMAIL_ACTIONS}, got {self.voicemail_action!r}")
        if "{number}" not in self.channel or any(ch in self.channel for ch in "\r\n"):
            raise CampaignError(f"channel must contain {{number}} and no line breaks, got {self.channel!r}")
        if self.default_area_code and not self.default_area_code.lstrip("0").isdigit():
            raise CampaignError(f"default_area_code must be digits like 021, got {self.default_area_code!r}")
        if not 5 <= float(self.ring_timeout_s) <= 120:
            raise CampaignError(f"ring_timeout_s must be in [5, 120], got {self.ring_timeout_s}")
        if not 1 <= float(self.handoff_timeout_s) <= 120:
            raise CampaignError(f"handoff_timeout_s must be in [1, 120], got {self.handoff_timeout_s}")
        if len(self.sender) > 40:
            raise CampaignError("sender must be at most 40 characters")
        if self.voicemail_message is not None:
            try:
                self.voicemail_message.format(sender="x")
            except (KeyError, IndexError, ValueError, AttributeError):
                raise CampaignError("voicemail_message may use only {sender} in braces") from None

    def calling_hours(self) -> CallingHours:
        return CallingHours.from_spec(self.hours, holidays=self.holidays, extra_holidays=self.extra_holidays,
                                      extra_workdays=self.extra_workdays)

    def callback_window(self) -> CallingHours:
        hours = CallingHours.daily(self.callback_hours)
        return dataclasses.replace(hours, holidays=frozenset())

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_dict(self.retry, self.max_attempts)

    def disclosure_line(self, opening: str = "") -> str:
        """What is said before the script's opening line (may be empty)."""
        words = texts()
        sender = self.sender or words["default_sender"]
        line = words["disclosure"].format(sender=sender) if self.disclosure else ""
        if self.recording and "录音" not in opening:
            line += words["recording_notice"]
        return line

    def voicemail_text(self) -> str:
        return (self.voicemail_message or texts()["voicemail_message"]).format(
            sender=self.sender or texts()["default_sender"])


def _check_type(key: str, value: Any, spec: dataclasses.Field) -> None:
    """A setting's JSON type must match its default's (the dashboard sends any JSON)."""
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    if default is None:
        wanted: tuple[type, ...] = (str, type(None))
    elif isinstance(default, bool):
        wanted = (bool,)
    elif isinstance(default, float):
        wanted = (int, float)
    else:
        wanted = (type(default),)
    if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in wanted)
        raise CampaignError(f"campaign setting {key!r} must be {names}, got {type(value).__name__} {str(value)[:40]!r}")


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    status: str
    settings: CampaignSettings
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "created_at": self.created_at,
                "settings": self.settings.to_dict()}


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(row: dict[str, Any]) -> Campaign:
    return Campaign(row["id"], row["name"], row["status"], CampaignSettings.from_dict(json.loads(row["settings"])),
                    row["created_at"])


def _check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME_CHARS or any(ch in name for ch in "/\\\x00"):
        raise CampaignError(f"a campaign name is 1-{MAX_NAME_CHARS} characters without / or \\, got {name!r}")
    return name


def create(db: Database, name: str, settings: dict[str, Any] | None = None, *, actor: str) -> Campaign:
    """A new campaign in status "draft".

    Raises:
        CampaignError: the name is taken or a setting is invalid.
    """
    name = _check_name(name)
    parsed = CampaignSettings.from_dict(settings)
    if parsed.script and not Path(parsed.script).is_file():
        raise CampaignError(f"script file {parsed.script} does not exist")
    stamp = _stamp()
    with db.atomic():
        if db.execute("select 1 from campaigns where name = ?", [name]).fetchone():
            raise CampaignError(f"a campaign named {name!r} exists already; pick another name")
        db["campaigns"].insert({"name": name, "status": "draft", "settings": json.dumps(parsed.to_dict(),
                                ensure_ascii=False), "created_at": stamp, "updated_at": stamp})
        audit.record(db, actor, "campaign.create", name, {"settings": settings or {}}, at=stamp)
    return get(db, name)


def get(db: Database, name: str) -> Campaign:
    """Raises: CampaignError naming the campaigns that exist."""
    rows = list(db["campaigns"].rows_where("name = ?", [name]))
    if not rows:
        names = [r[0] for r in db.execute("select name from campaigns order by id limit 10")]
        hint = f"; campaigns: {', '.join(names)}" if names else "; create one with `salesbot campaign create NAME`"
        raise CampaignError(f"no campaign named {name!r}{hint}")
    return _row(rows[0])


def get_by_id(db: Database, campaign_id: int) -> Campaign:
    try:
        return _row(db["campaigns"].get(campaign_id))
    except NotFoundError:
        raise CampaignError(f"no campaign with id {campaign_id}") from None


def all_campaigns(db: Database) -> list[Campaign]:
    return [_row(r) for r in db["campaigns"].rows_where(order_by="id desc")]


def get_or_create(db: Database, name: str, *, actor: str) -> tuple[Campaign, bool]:
    try:
        return get(db, name), False
    except CampaignError:
        return create(db, name, actor=actor), True


def update_settings(db: Database, name: str, changes: dict[str, Any], *, actor: str) -> Campaign:
    """Change some settings; the audit trail keeps the old and new values."""
    campaign = get(db, name)
    old = campaign.settings.to_dict()
    merged = CampaignSettings.from_dict({**old, **changes})
    diff = {k: {"from": old[k], "to": v} for k, v in merged.to_dict().items() if old.get(k) != v}
    stamp = _stamp()
    with db.atomic():
        db["campaigns"].update(campaign.id, {"settings": json.dumps(merged.to_dict(), ensure_ascii=False),
                                             "updated_at": stamp})
        audit.record(db, actor, "campaign.settings", campaign.name, diff, at=stamp)
    return get(db, name)


def set_status(db: Database, name: str, status: str, *, actor: str) -> Campaign:
    if status not in STATUSES:
        raise CampaignError(f"status must be one of {STATUSES}, got {status!r}")
    campaign = get(db, name)
    if campaign.status != status:
        stamp = _stamp()
        with db.atomic():
            db["campaigns"].update(campaign.id, {"status": status, "updated_at": stamp})
            audit.record(db, actor, f"campaign.{status}", campaign.name, {"from": campaign.status}, at=stamp)
    return get(db, name)


def lead_counts(db: Database, campaign_id: int) -> dict[str, int]:
    """Leads per status (pending, retry, callback, in_call, done, exhausted, dnc, failed)."""
    return {row[0]: row[1] for row in db.execute(
        "select status, count(*) from leads where campaign_id = ? group by status", [campaign_id])}
