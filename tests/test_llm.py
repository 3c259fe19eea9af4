"""The optional local LLM phraser: used when it answers in time, the template otherwise."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge import config
from edge.dialog.llm import LlmPhraser
from edge.errors import ConfigError
from edge.kb import KnowledgeBase
from tests.fakes import dialogue


class _Handler(BaseHTTPRequestHandler):
    delay_s = 0.0
    reply = "一个账号一年一千二。"

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["messages"][0]["role"] == "system"
        time.sleep(self.delay_s)
        payload = json.dumps({"choices": [{"message": {"content": self.reply}}]}, ensure_ascii=False).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except BrokenPipeError:
            pass  # the phraser gave up waiting, as it should

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/chat/completions", _Handler
    httpd.shutdown()
    _Handler.delay_s = 0.0


def test_phrased_answer_is_used(server):
    url, _ = server
    bot = dialogue(["多少钱"], knowledge=KnowledgeBase.builtin(), classifier=None)
    assert "1200元" in bot.log[-1].bot
    phrased = dialogue([], knowledge=KnowledgeBase.builtin())
    phrased.phraser = LlmPhraser(url, timeout_ms=2000)
    phrased.hear("多少钱")
    assert phrased.log[-1].bot.startswith("一个账号一年一千二。")


def test_slow_or_absent_llm_falls_back_to_the_template(server):
    url, handler = server
    handler.delay_s = 1.0
    bot = dialogue([], knowledge=KnowledgeBase.builtin())
    bot.phraser = LlmPhraser(url, timeout_ms=100)
    started = time.perf_counter()
    bot.hear("多少钱")
    assert time.perf_counter() - started < 0.8
    assert "1200元" in bot.log[-1].bot
    assert LlmPhraser("http://127.0.0.1:9/v1/chat/completions", timeout_ms=200).phrase("多少钱", ["x"]) is None


def test_llm_config_is_local_only(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[llm]\nurl = "https://api.example.com/v1/chat/completions"\n')
    with pytest.raises(ConfigError, match="llm.url must be a local"):
        config.load(path)
    path.write_text('[llm]\nurl = "http://127.0.0.1:8000/v1/chat/completions"\ntimeout_ms = 500\n'
                    '[dialog]\ntimezone = "Asia/Hong_Kong"\n[kb]\ntop_k = 5\n')
    cfg = config.load(path)
    assert cfg.llm.timeout_ms == 500 and cfg.dialog.timezone == "Asia/Hong_Kong" and cfg.kb.top_k == 5
    assert config.Config.from_dict(cfg.to_dict() | {"kb": {"top_k": 5}, "records": {}}).llm == cfg.llm
    path.write_text('[dialog]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="dialog.timezone"):
        config.load(path)
