"""Phone numbers never reach a log whole."""

from __future__ import annotations

import re

__all__ = ["mask_phone"]

_DIGIT_RUN = re.compile(r"\+?\d[\d -]{5,}\d")


def mask_phone(text: str | None) -> str:
    """Mask every phone-number-like run of 7+ digits: keep the first 3 and last 4 digits.

    Works on bare numbers and on strings that carry one (an Asterisk channel,
    a SIP URI). Shorter digit runs (extensions, ports) are left alone.

    Example:
        >>> mask_phone("13800138000")
        '138****8000'
        >>> mask_phone("PJSIP/+8613800138000@trunk")
        'PJSIP/+861******8000@trunk'
        >>> mask_phone(None)
        '-'
    """
    if not text:
        return "-"

    def _mask(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = sum(ch.isdigit() for ch in run)
        if digits < 7:
            return run
        out, seen = [], 0
        for ch in run:
            if ch.isdigit():
                seen += 1
                out.append(ch if seen <= 3 or seen > digits - 4 else "*")
            else:
                out.append(ch)
        return "".join(out)

    return _DIGIT_RUN.sub(_mask, text)
