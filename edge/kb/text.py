"""Chinese-aware terms for search, without a word segmenter.

FTS5's trigram tokenizer cannot match 2-character words (价格, 钉钉), and most
Chinese words are two characters, so the index holds character bigrams that
this module writes itself (plus whole latin words: crm, api). The same
function cuts the caller's question, so index and query always agree. Text is
first put in canonical form by the lexicon: dialect forms to Mandarin,
synonyms (多少钱, 收费, 几多钱) to one group word (价格), and words with no
topic (你们, 这个, 吗) out.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from edge.nlu.lexicon import Lexicon

_RUN: Final = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK: Final = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MAX_QUERY_TERMS: Final = 64


def terms(text: str, lexicon: Lexicon) -> list[str]:
    """Character bigrams of each Chinese run (a lone character stays a unigram) and latin words."""
    out: list[str] = []
    for run in _RUN.findall(lexicon.content(text)):
        if not _CJK.match(run) or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


def fts_query(text: str, lexicon: Lexicon, common: frozenset[str] | set[str] = frozenset()) -> str | None:
    """A safe FTS5 query: each term double-quoted, joined by OR; None if nothing to search.

    Terms in `common` (found in a large share of a big knowledge base) are
    left out: their BM25 weight is near zero, yet an OR over them makes FTS5
    score almost every row (10 ms instead of 1 ms at 10,000 entries).

    Terms hold only CJK characters, latin letters and digits, and are quoted
    besides (a quote inside would be doubled), so no caller text can become
    FTS5 syntax (AND, NEAR, *, column filters); the query itself is passed as
    a bound parameter, so it cannot become SQL.
    """
    unique = [t for t in dict.fromkeys(terms(text, lexicon)) if t not in common][:MAX_QUERY_TERMS]
    if not unique:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in unique)


def ngrams(text: str, lexicon: Lexicon) -> Counter:
    """Character 1-3-grams of each run of the canonical text (for the vector side)."""
    grams: list[str] = []
    for run in _RUN.findall(lexicon.content(text)):
        if not _CJK.match(run):
            grams.append(run)
            continue
        grams.extend(run)
        grams.extend([run[i:i + 2] for i in range(len(run) - 1)])
        grams.extend([run[i:i + 3] for i in range(len(run) - 2)])
    return Counter(grams)
