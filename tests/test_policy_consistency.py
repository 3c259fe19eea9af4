"""Policy rules that keep a classifier's slip from ending a good call."""

from tests.fakes import NOW, KeywordClassifier, dialogue


def test_a_caller_stating_their_role_is_not_a_wrong_number():
    # A real intent model labels 我是总经理 as wrong_person (it sounds like 我不是X); the role slot says otherwise.
    classifier = KeywordClassifier(extra={"我是总经理": ["wrong_person"], "我不是老板，你打错了": ["wrong_person"]})
    bot = dialogue(["喂，你好", "三十个人", "可以，约个时间", "明天下午三点", "对"], classifier=classifier)
    assert bot.state.node == "ask_role"
    reply = bot.hear("我是总经理", now=NOW)
    assert reply.node == "close_meeting" and bot.state.value("role") == "owner"
    wrong = dialogue(["喂，你好"], classifier=classifier)
    assert wrong.hear("我不是老板，你打错了", now=NOW).node == "close_wrong_person"


def test_a_stated_headcount_is_not_a_request_for_a_person():
    # The shipped intent model reads 二十来个人 (about twenty people) as request_human (来个人: send someone)
    # and 得十个人左右 as wrong_person; the company_size slot says the caller answered the question.
    classifier = KeywordClassifier(extra={"我们销售就二十来个人": ["request_human"],
                                          "我哋细公司嚟嘅，得十个人左右": ["wrong_person"],
                                          "你们找个人跟我说": ["request_human"]})
    bot = dialogue(["喂，你好"], classifier=classifier)
    assert bot.state.node == "discovery"
    reply = bot.hear("我们销售就二十来个人", now=NOW)
    assert reply.node == "pitch" and bot.state.value("company_size") == 20
    small = dialogue(["喂，你好"], classifier=classifier)
    assert small.hear("我哋细公司嚟嘅，得十个人左右", now=NOW).node == "pitch"
    human = dialogue(["喂，你好"], classifier=classifier)
    assert human.hear("你们找个人跟我说", now=NOW).node == "transfer_human"  # no headcount: still a request


def test_naming_a_day_when_asked_for_a_demo_day_agrees_to_the_demo():
    # Asked "which day suits for a demo?", 明儿个三点半吧 names one; a model that reads it as other must not
    # send the call to "not interested". A time that refuses, or one at a node that confirms, does not agree.
    classifier = KeywordClassifier(extra={"明儿个三点半吧": ["other"], "明天也不行": ["other"]})
    bot = dialogue(["喂，你好", "三十个人"], classifier=classifier)
    assert bot.state.node == "pitch"
    reply = bot.hear("明儿个三点半吧", now=NOW)
    assert reply.node == "confirm_meeting" and bot.state.value("meeting_time") is not None
    refusing = dialogue(["喂，你好", "三十个人"], classifier=classifier)
    assert refusing.hear("明天也不行", now=NOW).node != "confirm_meeting"


def test_a_turn_that_opens_with_a_yes_word_answers_yes_when_the_model_reads_nothing():
    # 对头 (Sichuanese) and 系 (Cantonese) answer yes; the shipped model never saw those families (they are in
    # its test split), so it reads 对头就这么定了 as other. Questions and 对了 stay what they are.
    from edge.dialog.policy import opens_with_yes

    script = dialogue().script
    assert [opens_with_yes(script, t) for t in ("对头就这么定了", "系呀就四点", "喂，系，你讲啦")] == [True] * 3
    assert not any(opens_with_yes(script, t) for t in ("是不是真的", "系咪你哋", "对了，多少钱", "系边个呀", "嗯我想想"))
    classifier = KeywordClassifier(extra={"对头就这么定了": ["other"], "对了，你们在哪": ["other"],
                                          "喂，系，你讲啦": ["other"]})
    bot = dialogue(["喂，你好", "三十个人", "可以，约个时间", "明天下午三点"], classifier=classifier)
    assert bot.state.node == "confirm_meeting"
    assert bot.hear("对头就这么定了", now=NOW).node == "ask_role"
    unsure = dialogue(["喂，你好", "三十个人", "可以，约个时间", "明天下午三点"], classifier=classifier)
    assert unsure.hear("对了，你们在哪", now=NOW).node == "confirm_meeting"
    opening = dialogue(classifier=classifier)
    assert opening.hear("喂，系，你讲啦", now=NOW).node == "discovery"
