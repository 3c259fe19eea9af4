"""Text-mode calls: a scripted caller file in, transcript, grade and tasks out.

Caller file: UTF-8, one callee turn per line; an empty line is a turn of
silence; lines starting with `#` are comments; a line starting with `~` was
said while the bot was still speaking (a backchannel there is ignored, other
words barge in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Iterable

from edge.calls.outcome import summarize
from edge.calls.records import Records
from edge.calls.report import post_call
from edge.dialog.engine import Dialogue
from edge.errors import InputError
from edge.textfile import read_text

MAX_FILE_BYTES: Final = 1024 * 1024
MAX_TURNS: Final = 500
SECONDS_PER_TURN: Final = 8
"""Simulated time between turns: bot line plus the caller's answer."""


@dataclass(frozen=True)
class CallerLine:
    text: str
    overlap: bool = False
    line: int = 0


def read_caller_file(path: str | Path) -> list[CallerLine]:
    """The caller's turns from a text file.

    Raises:
        InputError: unreadable, not UTF-8, too large, or more than MAX_TURNS turns.
    """
    path = Path(path)
    text = read_text(path, "caller file", MAX_FILE_BYTES, InputError)
    return parse_caller_lines(text.splitlines(), str(path))


def parse_caller_lines(lines: Iterable[str], name: str = "<caller>") -> list[CallerLine]:
    turns = []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("#"):
            continue
        overlap = line.startswith("~")
        turns.append(CallerLine(line[1:].strip() if overlap else line.strip(), overlap, number))
    while turns and not turns[-1].text and not turns[-1].overlap:
        turns.pop()  # trailing empty lines are the end of the file, not silences
    if len(turns) > MAX_TURNS:
        raise InputError(f"{name}: {len(turns)} turns; a text call takes at most {MAX_TURNS}")
    return turns


def run_text_call(dialogue: Dialogue, turns: list[CallerLine], start: datetime,
                  records: Records | None = None) -> dict[str, Any]:
    """Play the caller's turns against the dialogue; returns the post-call JSON.

    The call ends when the script ends it or the turns run out (outcome
    "incomplete": the caller hung up). Each turn is recorded as it happens.
    """
    opening = dialogue.start(start)
    call_id = "text-" + start.strftime("%Y%m%d%H%M%S")
    if records is not None:
        call_id = records.start_call(dialogue.lead, dialogue.script.name, dialogue.script.version,
                                     start.isoformat(timespec="seconds"))
    now = start
    for turn in turns:
        if dialogue.ended:
            break
        now = now + timedelta(seconds=SECONDS_PER_TURN)
        dialogue.hear(turn.text, now=now, overlap=turn.overlap)
        if records is not None:
            records.add_turn(call_id, dialogue.log[-1])
    ended = now + timedelta(seconds=SECONDS_PER_TURN)
    outcome = summarize(dialogue.script, dialogue.state, ended, dialogue.lexicon, dialogue.lead)
    report = post_call(call_id, dialogue, outcome, opening.text, ended)
    report["unused_turns"] = max(0, len(turns) - len(dialogue.log))
    if records is not None:
        records.finish_call(call_id, report)
    return report
