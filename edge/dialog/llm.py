"""Optional: phrase knowledge answers with a local OpenAI-compatible LLM.

Off by default ([llm] url unset); the appliance runs fully without it. Each
request has a hard deadline; on timeout, refusal or any malformed answer
`phrase` returns None and the reply falls back to the template answer.
Only local addresses are accepted (checked in edge.config.LlmConfig).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Final

_LOGGER = logging.getLogger(__name__)

SYSTEM_PROMPT: Final = ("You answer a caller's question on a sales phone call. Reply in Simplified Chinese, in one "
                        "or two short spoken sentences, using only facts from the passages. No lists, no markdown.")
MAX_PASSAGE_CHARS: Final = 600
_POOL: Final = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llm")


class LlmPhraser:
    """`phrase(question, passages) -> str | None` through a chat-completions endpoint.

    Example:
        >>> phraser = LlmPhraser("http://127.0.0.1:8000/v1/chat/completions", timeout_ms=800)
        >>> phraser.phrase("多少钱", ["每个账号每年1200元。"])  # None if the server is not there
    """

    def __init__(self, url: str, model: str = "local", timeout_ms: int = 800, max_tokens: int = 120):
        self.url = url
        self.model = model
        self.timeout_s = timeout_ms / 1000.0
        self.max_tokens = max_tokens

    def phrase(self, question: str, passages: list[str]) -> str | None:
        future = _POOL.submit(self._request, question, passages)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            _LOGGER.debug("llm at %s gave no answer within %.0f ms", self.url, self.timeout_s * 1000)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means: use the template
            _LOGGER.debug("llm at %s failed: %s", self.url, exc)
            return None

    def _request(self, question: str, passages: list[str]) -> str | None:
        context = "\n".join(f"- {p[:MAX_PASSAGE_CHARS]}" for p in passages)
        body = {"model": self.model, "temperature": 0.2, "max_tokens": self.max_tokens,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": f"Passages:\n{context}\n\nCaller: {question}"}]}
        request = urllib.request.Request(self.url, data=json.dumps(body, ensure_ascii=False).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - local URL only
            data = json.loads(response.read(1 << 20))
        text = data["choices"][0]["message"]["content"]
        if not isinstance(text, str) or not text.strip():
            return None
        return " ".join(text.split())
