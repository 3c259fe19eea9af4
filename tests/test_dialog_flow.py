"""Scripted callers through every branch of the default script (keyword classifier, fixed call time)."""

import pytest

from edge.calls.outcome import summarize
from edge.dialog.engine import MAX_TURN_CHARS, Dialogue
from edge.dialog.script import Script
from edge.errors import InputError
from edge.kb import KnowledgeBase
from tests.fakes import NOW, KeywordClassifier, dialogue


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.builtin()


def outcome(bot):
    return summarize(bot.script, bot.state, NOW, bot.lexicon, bot.lead)


def test_interest_to_meeting_booked_with_decision_maker(kb):
    bot = dialogue(["是我 你说", "我们五十多个销售 用的Excel", "可以啊 约个时间吧", "明天下午三点", "对的", "我是老板"],
                   knowledge=kb, lead={"lead_name": "张总", "company": "华星科技"})
    assert bot.state.outcome == "meeting_booked" and bot.ended
    assert bot.state.goal()["meeting_time"] == "2025-03-06T15:00:00+08:00"
    assert bot.state.slots["meeting_time"].status == "confirmed"
    assert bot.state.goal()["company_size"] == 50 and bot.state.goal()["role"] == "owner"
    result = outcome(bot)
    assert result.grade == "A" and result.decision_maker is True
    assert [(t.kind, t.due) for t in result.tasks] == [("meeting", "2025-03-06T15:00:00+08:00")]
    assert "华星科技" in bot.log[0].bot and "明天下午3点" in bot.log[3].bot


def test_meeting_without_decision_maker_is_b():
    bot = dialogue(["好的", "二十来个人", "有兴趣 约个时间吧", "周五上午十点", "是的", "我做不了主 要问老板"])
    assert bot.state.outcome == "meeting_booked"
    assert bot.state.goal()["meeting_time"] == "2025-03-07T10:00:00+08:00"
    assert outcome(bot).grade == "B" and outcome(bot).decision_maker is False


@pytest.mark.parametrize("answer, decides", [("对的", True), ("是我", True), ("不是 要问老板", False)])
def test_a_plain_answer_to_who_decides(answer, decides):
    # the bot asked 是您这边拍板，还是……？: a plain yes means the caller decides, a no does not
    bot = dialogue(["好的", "二十来个人", "有兴趣 约个时间吧", "周五上午十点", "是的", answer])
    assert bot.state.outcome == "meeting_booked"
    assert outcome(bot).decision_maker is decides
    assert outcome(bot).grade == ("A" if decides else "B")


def test_time_given_with_agreement_skips_the_question():
    bot = dialogue(["好的", "三十个人", "那就下周二下午两点演示吧"])
    assert bot.state.node == "confirm_meeting"
    assert "2025-03-11T14:00:00+08:00" == bot.state.goal()["meeting_time"]


def test_correction_overwrites_and_keeps_the_day():
    bot = dialogue(["好的", "三十个人", "可以 约个时间", "明天下午三点", "不是三点 是四点"])
    assert bot.state.goal()["meeting_time"] == "2025-03-06T16:00:00+08:00"
    assert bot.state.corrections == [{"slot": "meeting_time", "old": "2025-03-06T15:00:00+08:00",
                                      "new": "2025-03-06T16:00:00+08:00", "turn": 5}]
    assert bot.state.node == "confirm_meeting" and "明天下午4点" in bot.log[-1].bot


def test_denied_time_is_asked_again():
    bot = dialogue(["好的", "三十个人", "可以 约个时间", "明天下午三点", "不对"])
    assert "meeting_time" not in bot.state.goal()
    assert bot.state.node == "ask_meeting_time"


def test_busy_callback_booked_with_the_right_datetime():
    bot = dialogue(["我在开会 你明天下午三点再打"])
    assert bot.state.outcome == "callback_booked"
    result = outcome(bot)
    assert result.grade == "C"
    assert [(t.kind, t.due, t.channel) for t in result.tasks] == [("callback", "2025-03-06T15:00:00+08:00", "phone")]
    assert "明天下午3点" in bot.log[-1].bot


def test_busy_then_time_in_the_next_turn():
    bot = dialogue(["现在没空", "下周一上午吧"])
    assert bot.log[0].node == "ask_callback"
    assert bot.state.goal()["callback_time"] == "2025-03-10T10:00:00+08:00"
    assert bot.state.outcome == "callback_booked"


@pytest.mark.parametrize("answer", ["下周一上午吧", "下个礼拜一上昼啦", "下个礼拜一上昼喇"])
def test_a_bare_time_with_a_final_particle_answers_the_callback_question(answer):
    classifier = KeywordClassifier()
    bot = Dialogue(Script.load("edge/data/script.yaml"), classifier)
    bot.start(NOW)
    bot.hear("揸紧车呀你第二时再打嚟啦", now=NOW, intents=classifier.predict(["现在没空"])[0])
    assert bot.state.node == "ask_callback"  # 第二时 is "another time": no time was named
    bot.hear(answer, now=NOW, intents=classifier.predict(["约个时间吧"])[0])  # read as agreeing to a demo
    assert bot.state.outcome == "callback_booked"
    assert bot.state.goal()["callback_time"] == "2025-03-10T10:00:00+08:00"


def test_a_bare_time_answers_the_callback_question_whatever_the_model_reads_into_it():
    # Models label a bare time as agree_meeting (most times in the corpus book demos); asked for a
    # callback time, it is the callback time.
    classifier = KeywordClassifier()
    bot = Dialogue(Script.load("edge/data/script.yaml"), classifier)
    bot.start(NOW)
    bot.hear("现在没空", now=NOW)
    assert bot.state.node == "ask_callback"
    bot.hear("明天下午四点吧", now=NOW, intents=classifier.predict(["约个时间吧"])[0])
    assert bot.state.outcome == "callback_booked"
    assert bot.state.goal()["callback_time"] == "2025-03-06T16:00:00+08:00"
    assert "meeting_time" not in bot.state.goal()
    assert outcome(bot).grade == "C"


def test_a_time_with_words_for_a_demo_still_books_the_demo():
    bot = dialogue(["现在没空", "那还是约个时间吧 明天下午四点"])
    assert bot.state.goal().get("meeting_time") == "2025-03-06T16:00:00+08:00"
    assert bot.state.outcome != "callback_booked"


def test_price_question_is_answered_from_knowledge_then_resumes(kb):
    bot = dialogue(["好的", "你们这个多少钱"], knowledge=kb)
    reply = bot.log[-1]
    assert reply.node == "discovery"  # resumed where the call was
    assert reply.answers == ["price-model"]
    assert "1200元" in reply.bot and reply.bot.endswith("销售团队大概多少人呢？")
    bot.hear("五十来个人", now=NOW)
    assert bot.state.node == "pitch"


def test_compound_intents_are_answered_in_order_in_one_reply(kb):
    bot = dialogue(["你们这个多少钱 能对接钉钉吗"], knowledge=kb)
    turn = bot.log[-1]
    assert turn.intents == ["ask_price", "ask_integration"]
    assert turn.answers == ["price-model", "integration-dingtalk"]
    assert turn.bot.index("1200元") < turn.bot.index("钉钉登录")
    assert turn.node == "opening"


def test_compound_answer_then_transition(kb):
    bot = dialogue(["好的", "三十人", "多少钱 可以约个时间"], knowledge=kb)
    turn = bot.log[-1]
    assert turn.answers == ["price-model"] and turn.node == "ask_meeting_time"
    assert turn.bot.endswith("您看哪天什么时间方便？")


def test_complaint_marks_dnc_and_ends_whatever_else_was_said(kb):
    bot = dialogue(["多少钱 别再打了 我要投诉"], knowledge=kb)
    assert bot.ended and bot.state.dnc and bot.state.outcome == "do_not_call"
    assert bot.log[-1].answers == []  # no price answer to an angry caller
    result = outcome(bot)
    assert result.dnc and result.grade == "D" and result.tasks == []


def test_request_human_transfers():
    bot = dialogue(["给我转人工"])
    result = outcome(bot)
    assert bot.state.transferred and result.outcome == "transferred"
    assert [t.kind for t in result.tasks] == ["handoff"]


@pytest.mark.parametrize("answer, misread, role, grade", [
    ("我话唔到事㗎，要老细话事", "not_interested", "staff", "B"),
    ("我定不了 得问老板", "deny_no", "staff", "B"),
    ("我是公司的技术负责人 选系统我们技术部定就行", "already_have_supplier", "it_lead", "A"),
    ("不是，这个要大家一起商量", "not_interested", "shared", "B"),
    ("唔系我一个人话事 要大家一齐倾", "deny_no", "shared", "B"),
])
def test_a_role_answer_is_not_read_as_an_objection(answer, misread, role, grade):
    """Asked who decides, the words of a role answer (唔到, 不了, 选系统) are no refusal or supplier."""
    from edge.nlu.intent import IntentResult

    bot = dialogue(["好的", "二十来个人", "有兴趣 约个时间吧", "周五上午十点", "是的"])
    assert bot.state.node == "ask_role"
    bot.hear(answer, now=NOW, intents=IntentResult(misread, 0.7, [misread], {misread: 0.7}))
    assert bot.state.outcome == "meeting_booked" and bot.state.goal()["role"] == role
    assert outcome(bot).grade == grade


def test_asked_who_decides_a_wrong_number_reading_does_not_end_the_call():
    """A role answer with no role word in it (我是公司的, cut short by the recogniser) read as wrong_person."""
    from edge.nlu.intent import IntentResult

    bot = dialogue(["好的", "二十来个人", "有兴趣 约个时间吧", "周五上午十点", "是的"])
    assert bot.state.node == "ask_role"
    reply = bot.hear("我是公司的", now=NOW,
                     intents=IntentResult("wrong_person", 0.8, ["wrong_person"], {"wrong_person": 0.8}))
    assert not reply.ended and bot.state.node == "ask_role"  # asked again, not hung up on
    bot.hear("技术负责人，我能做主", now=NOW)
    assert bot.state.outcome == "meeting_booked" and outcome(bot).grade == "A"


def test_wrong_person_is_e():
    bot = dialogue(["你打错了"])
    assert outcome(bot).grade == "E" and bot.state.outcome == "wrong_person"


def test_a_weak_guess_at_an_intent_that_ends_the_call_does_not_count():
    """settings.min_scores: a turn read as request_human below the script's floor must not transfer the call
    (a stated headcount never counts as one: tests/test_policy_consistency.py)."""
    from edge.nlu.intent import IntentResult

    bot = dialogue()
    floor = bot.script.settings.min_scores["request_human"]
    weak = IntentResult("request_human", floor - 0.07, ["request_human"], {"request_human": floor - 0.07})
    bot.hear("你们那边谁来跟我说", now=NOW, intents=weak)
    assert not bot.state.transferred and bot.log[-1].intents == ["other"]
    sure = IntentResult("request_human", floor, ["request_human"], {"request_human": floor})
    bot.hear("你们那边谁来跟我说", now=NOW, intents=sure)
    assert bot.state.transferred


@pytest.mark.parametrize("answer", ["嗯你说", "您说您说", "你讲啦", "请讲"])
def test_go_ahead_answers_the_opening_question(answer):
    assert dialogue([answer]).log[0].node == "discovery"  # read as nothing by the keyword model: a yes-word


def test_a_turn_with_slots_at_the_opening_moves_on_after_a_no_match():
    # 我就是老板 公司八个销售 after an unheard first turn: the caller is on the line, not "signal bad"
    bot = dialogue(["呃呃", "我就是老板 公司八个销售"])
    assert [t.node for t in bot.log] == ["opening", "pitch"]
    assert bot.state.goal()["company_size"] == 8 and not bot.ended


def test_silence_twice_falls_back():
    bot = dialogue(["", ""])
    assert [t.node for t in bot.log] == ["opening", "close_no_response"]
    assert "能听到吗" in bot.log[0].bot
    assert bot.state.outcome == "no_response"


def test_gibberish_rephrases_then_falls_back_per_node():
    bot = dialogue(["好的", "三十人", "呜啦啦啦", "asdf qwer"])
    assert [t.node for t in bot.log[-2:]] == ["pitch", "objection_not_interested"]
    assert bot.log[-2].bot.startswith("我们可以给您做一个二十分钟的线上演示")


def test_answering_a_question_resets_the_no_match_count(kb):
    bot = dialogue(["", "多少钱", ""], knowledge=kb)
    assert not bot.ended and bot.state.node == "opening"


def test_not_interested_then_refused_is_d():
    bot = dialogue(["不需要 谢谢", "不用了"])
    assert [t.node for t in bot.log] == ["objection_not_interested", "close_refused"]
    assert outcome(bot).grade == "D" and "not_interested" in bot.state.objections


def test_supplier_objection_then_send_info_by_wechat():
    bot = dialogue(["好的", "我们已经在用纷享销客了", "那你发个资料吧", "加微信吧 微信同号"],
                   lead={"phone": "13800000000"})
    assert bot.state.goal()["supplier"] == "纷享销客"
    assert "纷享销客" in bot.log[1].bot
    assert bot.state.outcome == "info_requested"
    task = outcome(bot).tasks[0]
    assert (task.kind, task.channel, task.contact, task.due) == ("send_info", "wechat", "13800000000",
                                                                 "2025-03-05T14:20:00+08:00")
    assert "微信" in bot.log[-1].bot


def test_send_info_by_email_with_decision_maker_is_a():
    bot = dialogue(["我是老板 你发个资料到邮箱", "li.ming@qq.com"])
    assert [t.node for t in bot.log] == ["ask_email", "close_send_info"]
    assert bot.state.outcome == "info_requested"
    assert bot.state.goal()["email"] == "li.ming@qq.com"
    result = outcome(bot)
    assert result.grade == "A" and result.tasks[0].contact == "li.ming@qq.com"


def test_dialect_caller_cantonese():
    bot = dialogue(["喂 你好", "唔得闲啊 听日下昼三点再打过嚟"])
    assert bot.state.goal()["callback_time"] == "2025-03-06T15:00:00+08:00"
    assert bot.state.outcome == "callback_booked"


def test_dialect_caller_sichuanese(kb):
    bot = dialogue(["要得", "你们这个好多钱嘛"], knowledge=kb)
    assert bot.log[-1].answers == ["price-model"]


def test_who_are_you_and_repeat():
    bot = dialogue(["你是谁啊", "没听清 再说一遍"])
    assert "我是智销云的小智" in bot.log[0].bot and bot.log[0].node == "opening"
    assert bot.log[1].bot == bot.log[0].bot


def test_backchannel_over_the_bot_is_no_turn():
    bot = dialogue([("嗯", True), ("对对", True)])
    assert bot.state.turns == 0 and all(t.ignored and t.bot == "" for t in bot.log)
    assert bot.state.intents == []


def test_backchannel_as_an_answer_means_yes_where_yes_is_expected():
    bot = dialogue(["嗯"], classifier=KeywordClassifier(extra={"嗯": ["other"]}))
    assert bot.state.node == "discovery"


def test_barge_in_only_where_interruptible():
    bot = dialogue([("你们多少钱", True)])
    assert not bot.log[0].barge_in  # the opening is a compliance line
    bot = dialogue(["好的", ("不需要", True)])
    assert bot.log[-1].barge_in and bot.state.node == "objection_not_interested"


def test_hostile_input_does_not_break_the_call(kb):
    bot = dialogue(["😀😀 hello how much 多少钱?", "a" * 10_000, "\x00\u202e 喂", "' OR 1=1; --", ""], knowledge=kb)
    assert len(bot.log) == 5
    assert all(len(t.caller) <= MAX_TURN_CHARS for t in bot.log)
    assert "price-model" in bot.log[0].answers
    assert bot.log[2].caller == "喂" and bot.log[2].node == "discovery"


def test_max_turns_closes_politely(kb):
    script = Script.load("edge/data/script.yaml")
    bot = dialogue(["多少钱"] * 40, knowledge=kb, script=script)
    assert bot.state.outcome == "closed" and bot.state.turns == script.settings.max_turns


def test_hearing_after_the_end_is_an_error():
    bot = dialogue(["你打错了"])
    with pytest.raises(InputError, match="ended"):
        bot.hear("喂", now=NOW)


def test_precomputed_intents_skip_the_classifier():
    classifier = KeywordClassifier()
    bot = Dialogue(Script.load("edge/data/script.yaml"), classifier)
    bot.start(NOW)
    result = classifier.predict(["好的"])[0]
    calls = classifier.calls
    bot.hear("好的", now=NOW, intents=result)
    assert classifier.calls == calls and bot.state.node == "discovery"


def test_state_snapshot_is_plain_data():
    import json

    bot = dialogue(["我在开会 明天上午十点再打"])
    json.dumps(bot.state.to_dict(), ensure_ascii=False)
    assert bot.log[-1].goal == {"callback_time": "2025-03-06T10:00:00+08:00"}
    assert set(bot.log[-1].timings_ms) >= {"nlu", "slots", "policy", "reply", "total"}


def test_wechat_question_and_a_plain_yes():
    bot = dialogue(["好的", "三十个", "发个资料吧", "发我微信", "对"])
    assert bot.state.goal()["company_size"] == 30  # a bare count answers the head-count question
    assert [t.node for t in bot.log[-2:]] == ["ask_wechat", "close_send_info"]
    assert bot.state.goal()["wechat"] == "same_as_phone" and bot.state.outcome == "info_requested"


def test_bare_count_elsewhere_is_not_a_head_count():
    bot = dialogue(["好的", "三十人", "要二十个"])
    assert bot.state.goal()["company_size"] == 30


@pytest.mark.parametrize("text, outcome_", [("听日再打嚟啦", "callback_booked"), ("唔好再打嚟啦", "do_not_call"),
                                             ("明天下午别再打来了", "do_not_call")])
def test_a_do_not_call_read_into_a_timed_call_again_is_a_callback(text, outcome_):
    # a classifier that learnt 唔好再打嚟 reads every 再打嚟 as do-not-call
    models = KeywordClassifier({text: ["complaint_do_not_call"]})
    bot = dialogue(["喂", "而家唔得闲", text], classifier=models)
    assert bot.state.outcome == outcome_
    assert outcome(bot).dnc is (outcome_ == "do_not_call")


def test_a_callback_time_is_no_agreement_to_a_demo():
    models = KeywordClassifier({"你周四上午十一点再打过来吧": ["busy_call_later", "agree_meeting"]})
    bot = dialogue(["喂", "我在开会", "你周四上午十一点再打过来吧"], classifier=models)
    assert bot.state.outcome == "callback_booked"
    assert outcome(bot).grade == "C"  # not B: the caller agreed to a call, not to a demo


def test_a_denied_time_with_no_new_one_is_asked_again_not_read_back():
    bot = dialogue(["好的", "三十个人", "可以 约个时间吧", "明天下午三点", "不是三点"])
    assert bot.state.node == "ask_meeting_time"
    assert "约定的时间" not in bot.log[-1].bot  # the placeholder for a missing time
    assert "太好了" not in bot.log[-1].bot  # the caller just said no
    bot = dialogue(["好的", "三十个人", "可以 约个时间吧", "明天下午三点", "不是三点", "四点吧"])
    assert bot.state.goal()["meeting_time"] == "2025-03-06T16:00:00+08:00"
