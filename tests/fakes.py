"""Test doubles: a keyword intent classifier with the IntentModel interface, a fake recognizer.

Dialogue tests use it so they check the dialogue logic, not a trained model's
exact outputs. Labels come out in the order their keywords appear in the text
(a compound turn "多少钱 能对接钉钉吗" -> ask_price, ask_integration).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from edge.calls.oracle import OracleRecognizer
from edge.config import DEFAULT_SCRIPT
from edge.nlu import IntentResult

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 5, 14, 20, tzinfo=TZ)
"""Call time of the tests: Wednesday 5 March 2025, 14:20 in Shanghai."""

LABELS = ["ask_price", "ask_feature", "ask_integration", "ask_discount", "ask_trial", "ask_security", "budget_info",
          "already_have_supplier", "interested", "not_interested", "busy_call_later", "agree_meeting", "send_info",
          "confirm_yes", "deny_no", "ask_repeat", "who_are_you", "how_got_my_number", "request_human",
          "complaint_do_not_call", "wrong_person", "greeting", "other"]

KEYWORDS = [
    ("complaint_do_not_call", r"别再打|不要再打|投诉|骚扰|别打了|删掉我的号码"),
    ("request_human", r"转人工|真人|人工客服|找个人"),
    ("how_got_my_number", r"号码.{0,3}(哪|怎么)|哪里来的号码|怎么有我.{0,2}(电话|号码)"),
    ("who_are_you", r"你是谁|哪家公司|什么公司|咩公司"),
    ("wrong_person", r"打错|不是他|不是本人|不认识这个人"),
    ("ask_price", r"多少钱|几多钱|好多钱|收费|价格|贵不贵|怎么卖"),
    ("ask_discount", r"优惠|折扣|便宜点|打折"),
    ("ask_integration", r"对接|打通|集成|接口"),
    ("ask_trial", r"试用|试一下|试试"),
    ("ask_security", r"安全|泄露|私有化|本地部署"),
    ("ask_feature", r"功能|能做什么|能干嘛|有没有.{0,6}(功能|报表)"),
    ("busy_call_later", r"在忙|忙紧|开会|开车|没空|晚点再打|(?<![别不要])再打|回头再说|唔得闲"),
    ("agree_meeting", r"约个?时间|可以约|来一趟|演示可以|见面|过来吧|那就.{0,8}(演示|看看)|约吧"),
    ("send_info", r"发.{0,2}资料|加.{0,2}微信|发我|发到|发给我|发个"),
    ("already_have_supplier", r"已经有|在用|用的是|已经用了|买了"),
    ("not_interested", r"不需要|不感兴趣|没兴趣|不用了|唔使|冇兴趣"),
    ("budget_info", r"预算"),
    ("interested", r"感兴趣|有兴趣|听听|介绍一下|了解一下|可以啊说说"),
    ("ask_repeat", r"没听清|再说一遍|什么\?|听不清|讲多次"),
    ("deny_no", r"^(不是|不对|没有|不行|不要|不可以|不方便|唔系)"),
    ("confirm_yes", r"^(是的|对的|好的|可以|没问题|行|方便|是我|对|好|系|要得)"),
    ("greeting", r"^(喂|你好|您好)"),
]


class KeywordClassifier:
    """`predict(texts) -> [IntentResult]` from a regex table; `labels` like a bundle's."""

    labels = LABELS
    other_label = "other"

    def __init__(self, extra: dict[str, list[str]] | None = None):
        """Args: extra: exact text -> labels, overriding the table (for one-off cases)."""
        self.extra = extra or {}
        self.calls = 0

    def predict(self, texts):
        self.calls += 1
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> IntentResult:
        if text in self.extra:
            found = self.extra[text]
        else:
            hits = []
            for label, pattern in KEYWORDS:
                match = re.search(pattern, text)
                if match:
                    hits.append((match.start(), label))
            found = [label for _, label in sorted(hits)][:3] or ["other"]
        scores = {label: (0.95 if label in found else 0.01) for label in LABELS}
        return IntentResult(label=found[0], score=scores[found[0]], labels=list(found), scores=scores)


def dialogue(lines=None, *, knowledge=None, lead=None, classifier=None, script=None, now=None):
    """A Dialogue on the default script with the keyword classifier, started at NOW.

    With `lines`, plays them (str, or (str, overlap) pairs) and returns the dialogue.
    """
    from datetime import timedelta

    from edge.dialog.engine import Dialogue
    from edge.dialog.script import Script

    script = script or Script.load(DEFAULT_SCRIPT)
    bot = Dialogue(script, classifier or KeywordClassifier(), knowledge=knowledge, lead=lead)
    start = now or NOW
    bot.start(start)
    for index, line in enumerate(lines or [], 1):
        text, overlap = (line, False) if isinstance(line, str) else line
        if bot.ended:
            break
        bot.hear(text, now=start + timedelta(seconds=8 * index), overlap=overlap)
    return bot


class FakeRecognizer(OracleRecognizer):
    """Fake ASR for voice-call tests: hears exactly the line the simulated callee is saying.

    Deterministic and model-free (the built-in ASR model may be absent); each
    utterance the endpointer cuts takes the oldest line not yet heard, so the
    tests check the call loop (VAD, endpointing, barge-in, timing), not
    recognition. See edge.calls.oracle.
    """


def voice_runtime(cache_dir, *, recognizer=None, classifier=None, **call_options):
    """A call Runtime for tests: fake ASR and keyword intents, real VAD, real espeak TTS with its prompt
    cache in cache_dir, the built-in script and knowledge, model work inline (unless offload=True)."""
    from edge.calls.runtime import Runtime
    from edge.config import CallConfig, Config, TtsConfig

    config = Config(tts=TtsConfig(cache_dir=cache_dir), call=CallConfig(**{"offload": False, **call_options}))
    return Runtime.load(config, recognizer=recognizer or FakeRecognizer(), classifier=classifier or KeywordClassifier(),
                        knowledge=_builtin_knowledge())


def _builtin_knowledge():
    global _KNOWLEDGE
    if _KNOWLEDGE is None:
        from edge.kb import KnowledgeBase

        _KNOWLEDGE = KnowledgeBase.builtin()
    return _KNOWLEDGE


_KNOWLEDGE = None
