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
