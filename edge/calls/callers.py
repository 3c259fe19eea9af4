"""Simulated callees for `salesbot campaign run --simulate`: caller files, one per kind of person.

A caller file is a text-call file (edge/calls/textcall.py: one turn per
line, empty line = silence, `#` comment, `~` said over the bot) whose
`#!` lines say how the line behaves before anyone talks:

    #! answer: no_answer      answered (default) | no_answer | busy | failed
    #! speech_ms: 5200        how long the first utterance runs without a pause
    #! beep: yes              a recorder's beep after the greeting

Each lead gets the file named in its `caller` column, else one picked by
its number (stable across runs). The built-in callers are in edge/data/callers/.

Example:
    >>> book = CallerBook.load("my_callers/")
    >>> book.for_lead(lead).name
    'busy_callback'
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from edge.calls.textcall import MAX_FILE_BYTES, CallerLine, parse_caller_lines
from edge.config import DATA_DIR
from edge.errors import InputError
from edge.textfile import read_text

BUILTIN_DIR: Final = DATA_DIR / "callers"
ANSWERS: Final = ("answered", "no_answer", "busy", "failed")
MAX_CALLERS: Final = 1000


@dataclass(frozen=True)
class SimCaller:
    name: str
    turns: list[CallerLine] = field(default_factory=list)
    answer: str = "answered"
    speech_ms: float | None = None
    beep: bool = False

    @property
    def greeting(self) -> str:
        """The first thing the callee says (what voicemail detection hears)."""
        return next((t.text for t in self.turns if t.text), "")


def parse_caller(text: str, name: str, where: str | None = None) -> SimCaller:
    """Raises: InputError naming the file and the bad directive."""
    where = where or name
    directives: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#!"):
            key, sep, value = line[2:].partition(":")
            if not sep:
                raise InputError(f"{where}:{number}: a directive is '#! key: value'")
            directives[key.strip()] = value.strip()
    unknown = set(directives) - {"answer", "speech_ms", "beep"}
    if unknown:
        raise InputError(f"{where}: unknown directive(s) {sorted(unknown)}; known: answer, speech_ms, beep")
    answer = directives.get("answer", "answered")
    if answer not in ANSWERS:
        raise InputError(f"{where}: answer must be one of {ANSWERS}, got {answer!r}")
    try:
        speech_ms = float(directives["speech_ms"]) if "speech_ms" in directives else None
    except ValueError:
        raise InputError(f"{where}: speech_ms must be a number of milliseconds") from None
    beep = directives.get("beep", "no").lower() in ("yes", "true", "1")
    return SimCaller(name, parse_caller_lines(text.splitlines(), where), answer, speech_ms, beep)


class CallerBook:
    """The simulated callers a campaign run picks from."""

    def __init__(self, callers: dict[str, SimCaller]):
        if not callers:
            raise InputError("no caller files (*.txt) to simulate with")
        self.callers = callers
        self._names = sorted(callers)

    @classmethod
    def load(cls, directory: str | Path | None = None) -> CallerBook:
        """*.txt files of a directory (default: the built-in callers).

        Raises:
            InputError: no such directory, no *.txt in it, or a file that is not valid.
        """
        root = Path(directory) if directory is not None else BUILTIN_DIR
        if not root.is_dir():
            raise InputError(f"callers directory {root} does not exist")
        files = sorted(root.glob("*.txt"))[:MAX_CALLERS]
        callers = {}
        for path in files:
            text = read_text(path, "caller file", MAX_FILE_BYTES, InputError)
            callers[path.stem] = parse_caller(text, path.stem, str(path))
        if not callers:
            raise InputError(f"no caller files (*.txt) in {root}")
        return cls(callers)

    def for_lead(self, phone: str, wanted: str | None = None) -> SimCaller:
        """The caller named `wanted` (a lead's `caller` column), else one chosen by the number."""
        if wanted:
            if wanted not in self.callers:
                raise InputError(f"no caller file {wanted!r}.txt; known: {', '.join(self._names)}")
            return self.callers[wanted]
        return self.callers[self._names[zlib.crc32(phone.encode()) % len(self._names)]]
