"""Slot mentions in one caller turn: times, phone, WeChat, email, company size,
budget, current supplier, contact channel, decision role.

Extraction only finds what was said; deciding which dialogue slot a mention
fills (a callback or a meeting time, whether a named vendor is the caller's
supplier) is the state tracker's job, with the intents at hand.

Example:
    >>> from datetime import datetime; from zoneinfo import ZoneInfo
    >>> now = datetime(2025, 3, 5, 14, 20, tzinfo=ZoneInfo("Asia/Shanghai"))
    >>> [(m.kind, m.value) for m in extract("员工两百来人 微信同号", now)]
    [('company_size', 200), ('wechat', 'same_as_phone'), ('channel', 'wechat')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from edge.nlu import lexicon as _lexicon
from edge.nlu.numbers import parse_amount, spoken_digits
from edge.nlu.text import occurrences, pinyin_of, word_sounds
from edge.nlu.timeexpr import TimeMention, find_times

SLOT_KINDS: Final = ("time", "phone", "wechat", "email", "company_size", "budget", "budget_per_seat",
                     "supplier", "channel", "role", "count")
"""`count` is a bare "二十个": a head count only where the bot asked for one."""
SOUND_MATCH_MIN_CHARS: Final = 3
SAME_AS_PHONE: Final = "same_as_phone"
"""WeChat value when the caller says the WeChat ID is the phone number."""

_AMOUNT: Final = r"[零一二两三四五六七八九十廿卅\d几][零一二两三四五六七八九十百千万\d几来多]*"
_PEOPLE: Final = re.compile(rf"(?P<n>{_AMOUNT})(?:来|多|左右)?(?:个|名|号)?(?:人|员工|销售|业务员)")
_MONEY: Final = re.compile(rf"(?P<n>{_AMOUNT}(?:万|千|百))(?:左右|来|多)?(?:块钱|块|元)?|(?P<m>{_AMOUNT})(?:块钱|块|元)")
_COUNT: Final = re.compile(rf"(?P<n>{_AMOUNT})(?:来|多)?(?:个|位)(?=$|[\s，,。！？!?吧啊呢哦嘛左右的样])")
_ASK_BOSS: Final = re.compile(r"(要|得|需要|还得|还要)(先)?(问|问问|请示|汇报|商量|报给|跟)(一下|下)?(我们|我们的|公司|我哋)?"
                              r"(老板|领导|经理|老总|上面|老细|上头)")  # Cantonese: 要问下老细
_BUDGET_CUE: Final = re.compile(r"预算|最多|上限|不超过|以内|能接受|能出|准备了|顶天|投入|批了|花个?|控制在")
_NO_BUDGET: Final = re.compile(r"没(有)?(这笔|这个|什么)?预算|预算(已经|都)?(用完|花完|没了)")
_PER_SEAT: Final = re.compile(r"每人|一个人|人均|每个账号|一个账号|按人头|每个销售|一个销售|每个人|每个用户|一个用户")
_SIZE_EXCLUDE_AFTER: Final = re.compile(r"^(一年|每年|每月|一个月|一月|的价格|多少钱)")
_MOBILE: Final = re.compile(r"1[3-9]\d{9}")
_LANDLINE: Final = re.compile(r"0\d{9,11}")
_WECHAT_ID: Final = re.compile(r"(?:微信号?|vx|wx)\s*(?:号)?\s*(?:是|就是|:)?\s*(?P<id>[a-z][a-z0-9_-]{5,19})")
_WECHAT_SAME: Final = re.compile(r"微信(号)?(就是|跟|和)?(这个|手机|电话)?(号|号码)?(同号|一样|也是这个)|微信同号|"
                                 r"微信[^，,。]{0,4}(就是|也是|用)(这个|我的|呢个)?(手机|电话)?号|"
                                 r"(这个|手机|电话)号(码)?(就是|也是)微信|就?用(这个|呢个)号加|手机号就是微信")
_EMAIL: Final = re.compile(r"(?<![a-z0-9._+-])(?P<user>[a-z0-9][a-z0-9._+-]{0,63}(?:点[a-z0-9][a-z0-9._+-]{0,63}){0,3})"
                           r"\s*(?:@|艾特|at)\s*"
                           r"(?P<domain>[a-z0-9-]{1,63}(?:\s*(?:\.|点)\s*[a-z0-9-]{1,63}){1,4})")
_NEGATION_BEFORE: Final = re.compile(r"(不是|不用|别|不要|没有?|不)\s*$")
_SELF: Final = re.compile(r"(我|本人)(就|也|只)?(不)?(是|系|做|当)[^，,。\s]{0,6}$")
_SUPPLIER_CUE: Final = re.compile(r"(在用|用的是|用的|用了|用着|已经有|已经上了|买了|签了|一直用|现在用|合作|上了|有在用|"
                                  r"正在用|用紧|买咗|用咗|在跟|换了|用过)[^，,。]{0,4}$")


@dataclass(frozen=True)
class SlotMention:
    """One thing a slot can be filled from."""

    kind: str
    """One of SLOT_KINDS."""
    value: Any
    """Canonical value: str or int; a TimeMention for kind "time"."""
    text: str
    """The words it was read from (normalised)."""
    start: int
    confidence: float
    """How sure the extractor is, in [0, 1]."""
    negated: bool = False
    """Said to be wrong: 不是三点, 不是钉钉."""
    cue: bool = True
    """For budget and supplier: said as such (预算五万, 我们在用钉钉), not just named."""


def extract(text: str, now: datetime, lexicon: _lexicon.Lexicon | None = None) -> list[SlotMention]:
    """Every slot mention in one turn, in the order spoken.

    Args:
        text: the caller's words, raw (normalised here).
        now: the call time (aware); relative times are worked out from it.
        lexicon: word lists; the built-in one by default.
    """
    lexicon = lexicon or _lexicon.load()
    norm = lexicon.normalize(text)
    found: list[SlotMention] = []
    found += [_time(m) for m in find_times(norm, now)]
    found += _contacts(norm)
    found += _size_and_budget(norm)
    suppliers = _suppliers(norm, lexicon)
    found += suppliers
    taken = [(m.start, m.start + len(m.text)) for m in suppliers]
    found += _channels(norm, lexicon, taken, found)
    found += _roles(norm, lexicon)
    unique, seen = [], set()
    for mention in sorted(found, key=lambda m: m.start):
        key = (mention.kind, mention.value if mention.kind != "time" else mention.start, mention.negated)
        if key not in seen:
            seen.add(key)
            unique.append(mention)
    return unique


def _time(mention: TimeMention) -> SlotMention:
    return SlotMention("time", mention, mention.text, mention.start, 0.6 if mention.approx else 0.9,
                       negated=mention.negated)


def _negated(text: str, start: int) -> bool:
    return bool(_NEGATION_BEFORE.search(text[max(0, start - 2):start]))


def _contacts(text: str) -> list[SlotMention]:
    found = []
    for digits, start, end in spoken_digits(text):
        if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
            wechat_said = re.search(r"(微信|vx|wx)号?[^，,。\d]{0,4}$", text[max(0, start - 8):start])
            kind = "wechat" if wechat_said else "phone"
            found.append(SlotMention(kind, digits, text[start:end], start, 0.95 if digits[0] == "1" else 0.8))
    for match in _WECHAT_ID.finditer(text):
        if not _MOBILE.fullmatch(match.group("id")):
            found.append(SlotMention("wechat", match.group("id"), match.group(), match.start(), 0.85))
    for match in _WECHAT_SAME.finditer(text):
        found.append(SlotMention("wechat", SAME_AS_PHONE, match.group(), match.start(), 0.9))
    for match in _EMAIL.finditer(text):
        domain = re.sub(r"\s*(?:\.|点)\s*", ".", match.group("domain"))
        user = match.group("user").replace("点", ".")
        found.append(SlotMention("email", f"{user}@{domain}", match.group(), match.start(), 0.9))
    return found


def _size_and_budget(text: str) -> list[SlotMention]:
    found = []
    money_spans = []
    per_seat = bool(_PER_SEAT.search(text))
    budget_cue = bool(_BUDGET_CUE.search(text))
    for match in _MONEY.finditer(text):
        if _PEOPLE.match(text, match.start()):
            continue  # 两百来人 is a head count
        parsed = parse_amount(match.group("n") or match.group("m"))
        if parsed is None or parsed[0] <= 0:
            continue
        money_spans.append((match.start(), match.end()))
        kind = "budget_per_seat" if per_seat else "budget"
        found.append(SlotMention(kind, parsed[0], match.group(), match.start(), 0.6 if parsed[1] else 0.85,
                                 negated=_negated(text, match.start()), cue=budget_cue))
    no_budget = _NO_BUDGET.search(text)
    if no_budget and not found:
        found.append(SlotMention("budget", 0, no_budget.group(), no_budget.start(), 0.8))
    for match in _PEOPLE.finditer(text):
        if any(s <= match.start() < e for s, e in money_spans) or _SIZE_EXCLUDE_AFTER.match(text[match.end():]):
            continue
        parsed = parse_amount(match.group("n"))
        if parsed is None or parsed[0] < 2 or parsed[0] > 1_000_000:
            continue
        found.append(SlotMention("company_size", parsed[0], match.group(), match.start(),
                                 0.6 if parsed[1] or "来" in match.group() or "多" in match.group() else 0.85,
                                 negated=_negated(text, match.start())))
    if not any(m.kind == "company_size" for m in found):
        for match in _COUNT.finditer(text):
            parsed = parse_amount(match.group("n"))
            if parsed is not None and 1 <= parsed[0] <= 1_000_000 and \
                    not any(s <= match.start() < e for s, e in money_spans):
                found.append(SlotMention("count", parsed[0], match.group(), match.start(), 0.6))
    return found


def _words(text: str, forms: dict[str, Any], sounds: list[str] | None = None):
    """Non-overlapping matches of the forms, longest first; latin forms match whole words only.

    sounds: the text's toneless pinyin (`pinyin_of`), to match by sound instead, forms of
    SOUND_MATCH_MIN_CHARS Chinese characters or more only (a recogniser writes a phrase it heard with a
    same-sound character, 我话事 -> 我话是; shorter forms sound like too many other words).
    """
    spans = []
    for form in sorted(forms, key=len, reverse=True):
        if sounds is not None:
            if len(form) < SOUND_MATCH_MIN_CHARS or form.isascii():
                continue
            found = [(start, start + len(form)) for start in occurrences(sounds, list(word_sounds(form)))]
        else:
            pattern = re.escape(form)
            if form.isascii():
                pattern = rf"(?<![a-z0-9]){pattern}(?![a-z0-9])"
            found = [match.span() for match in re.finditer(pattern, text)]
        for start, end in found:
            if not any(s < end and start < e for s, e, _ in spans):
                spans.append((start, end, forms[form]))
    return sorted(spans)


def _heard(text: str, forms: dict[str, Any], sounds: list[str]):
    """`_words`, plus matches by sound that overlap none of them: a recogniser writes a role it heard with
    a same-sound character (我话事 -> 我话是, 销售总监 -> 销售总见)."""
    spans = _words(text, forms)
    spans += [(start, end, name) for start, end, name in _words(text, forms, sounds)
              if not any(s < end and start < e for s, e, _ in spans)]
    return sorted(spans)


def _suppliers(text: str, lexicon: _lexicon.Lexicon) -> list[SlotMention]:
    found = []
    for start, end, name in _words(text, lexicon.suppliers):
        before = text[max(0, start - 8):start]
        cue = bool(_SUPPLIER_CUE.search(before)) or bool(re.match(r"^\s*(在用|用着|用得|用咗|用了)", text[end:]))
        found.append(SlotMention("supplier", name, text[start:end], start, 0.85 if cue else 0.5,
                                 negated=_negated(text, start), cue=cue))
    return found


def _channels(text: str, lexicon: _lexicon.Lexicon, taken, found) -> list[SlotMention]:
    channels = []
    for start, end, name in _words(text, lexicon.channels):
        if any(s <= start < e for s, e in taken):
            continue  # 微信 inside 企业微信
        channels.append(SlotMention("channel", name, text[start:end], start, 0.8, negated=_negated(text, start)))
    kinds = {m.kind for m in found}
    if not channels:
        for kind, channel in (("email", "email"), ("wechat", "wechat")):
            if kind in kinds:
                first = next(m for m in found if m.kind == kind)
                channels.append(SlotMention("channel", channel, first.text, first.start, 0.8))
    return channels


def _roles(text: str, lexicon: _lexicon.Lexicon) -> list[SlotMention]:
    found = []
    phrases = {p: role.name for role in lexicon.roles.values() for p in role.phrases}
    words = {w: role.name for role in lexicon.roles.values() for w in role.words}
    sounds = pinyin_of(text)  # once for phrases and words
    for start, end, name in _heard(text, phrases, sounds):
        found.append(SlotMention("role", name, text[start:end], start, 0.8))
    for match in _ASK_BOSS.finditer(text):
        if not any(s <= match.start() < s + len(m.text) for m in found for s in (m.start,)):
            found.append(SlotMention("role", "staff", match.group(), match.start(), 0.7))
    taken = [(m.start, m.start + len(m.text)) for m in found]
    for start, end, name in _heard(text, words, sounds):
        if any(s <= start < e for s, e in taken):
            continue
        self_said = _SELF.search(text[max(0, start - 10):start])
        if self_said:
            found.append(SlotMention("role", name, text[start:end], start, 0.85, negated=bool(self_said.group(3))))
    return found
