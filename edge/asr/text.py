"""Transcript normalization and character error rate (CER).

One definition, shared by the runtime, the export stage and the benchmark:
compare characters after dropping whitespace and punctuation and
upper-casing Latin letters (full-width forms folded by NFKC).
"""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """The character sequence a recognizer is scored on.

    Example:
        >>> normalize("喂，你好！ api 呢？")
        '喂你好API呢'
    """
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch.upper() for ch in text if unicodedata.category(ch)[0] in "LN")


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance between two strings (substitutions, insertions, deletions)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def edits(ref: str, hyp: str) -> list[tuple[str, str]]:
    """One minimal set of edits turning ``ref`` into ``hyp``: (ref char, hyp char) for a substitution,
    (ref char, "") for a deletion, ("", hyp char) for an insertion; ``len(edits(r, h)) == edit_distance(r, h)``.

    Example:
        >>> edits("回放吗", "回访")
        [('放', '访'), ('吗', '')]
        >>> edits("贵得很", "对得很")
        [('贵', '对')]
    """
    rows = [list(range(len(hyp) + 1))]
    for i, r in enumerate(ref, 1):
        row = [i]
        for j, h in enumerate(hyp, 1):
            row.append(min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + (r != h)))
        rows.append(row)
    out, i, j = [], len(ref), len(hyp)
    while i or j:  # matches first, then a deletion or insertion over a substitution of the same cost
        if i and j and ref[i - 1] == hyp[j - 1] and rows[i][j] == rows[i - 1][j - 1]:
            i, j = i - 1, j - 1
        elif i and rows[i][j] == rows[i - 1][j] + 1:
            out.append((ref[i - 1], ""))
            i -= 1
        elif j and rows[i][j] == rows[i][j - 1] + 1:
            out.append(("", hyp[j - 1]))
            j -= 1
        else:
            out.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
    return out[::-1]


def cer(refs: list[str], hyps: list[str]) -> float:
    """Corpus CER: total edits over total reference characters, after :func:`normalize`."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = sum(edit_distance(normalize(r), normalize(h)) for r, h in zip(refs, hyps))
    total = sum(len(normalize(r)) for r in refs)
    return errors / max(1, total)
