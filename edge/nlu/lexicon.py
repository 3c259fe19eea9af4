"""The word lists in edge/data/lexicon.yaml: dialect forms, synonyms, suppliers,
roles and channels, loaded once and checked on load."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from edge.config import DATA_DIR
from edge.errors import ConfigError

DEFAULT_LEXICON: Final = DATA_DIR / "lexicon.yaml"
MAX_TEXT_CHARS: Final = 2000
"""Longer text is cut before any matching (a 10k-character turn is noise)."""


@dataclass(frozen=True)
class Role:
    name: str
    decides: bool
    words: tuple[str, ...]
    """Count when said of oneself: 我是老板."""
    phrases: tuple[str, ...] = ()
    """Count on their own: 我说了算."""


@dataclass(frozen=True)
class Lexicon:
    dialect: dict[str, str]
    synonyms: dict[str, str]
    """variant -> group name."""
    suppliers: dict[str, str]
    """form -> canonical supplier name."""
    roles: dict[str, Role]
    channels: dict[str, str]
    """form -> channel name."""
    stopwords: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    """Words that tell the bot not to do something (不要, 唔好): matched on the original text."""

    def refuses(self, text: str) -> bool:
        text = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).lower()
        return any(word in text for word in self.refusals)

    @functools.cached_property
    def _dialect_re(self) -> re.Pattern:
        return _alternation(self.dialect)

    @functools.cached_property
    def _synonym_re(self) -> re.Pattern:
        return _alternation(self.synonyms)

    def normalize(self, text: str) -> str:
        """NFKC, lower case, dialect forms rewritten to Mandarin."""
        text = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).lower()
        if not self.dialect:
            return text
        return self._dialect_re.sub(lambda m: self.dialect[m.group()], text)

    def canonical(self, text: str) -> str:
        """`normalize`, then every synonym replaced by its group name (for search)."""
        text = self.normalize(text)
        if not self.synonyms:
            return text
        return self._synonym_re.sub(lambda m: self.synonyms[m.group()], text)

    @functools.cached_property
    def _stop_re(self) -> re.Pattern | None:
        return _alternation(dict.fromkeys(self.stopwords, "")) if self.stopwords else None

    def content(self, text: str) -> str:
        """`canonical`, with stopwords turned into spaces (what search indexes)."""
        text = self.canonical(text)
        return self._stop_re.sub(" ", text) if self._stop_re is not None else text

    def role(self, name: str) -> Role | None:
        return self.roles.get(name)


def _alternation(table: dict[str, str]) -> re.Pattern:
    return re.compile("|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)))


@functools.lru_cache(maxsize=4)
def load(path: str | Path = DEFAULT_LEXICON) -> Lexicon:
    """Read and check a lexicon file (cached per path).

    Raises:
        ConfigError: unreadable file or a section of the wrong shape; names the section.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read lexicon {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a lexicon is a mapping of sections (dialect, synonyms, ...)")

    def section(name: str) -> dict:
        value = data.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping")
        return value

    def forms(name: str, key: str, value) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{path}: {name}.{key} must be a list of non-empty words")
        return [_norm(v) for v in value]

    dialect = {}
    for key, value in section("dialect").items():
        if not isinstance(value, str) or len(str(key)) < 2:
            raise ConfigError(f"{path}: dialect.{key} must map a form of 2+ characters to a Mandarin word")
        dialect[_norm(str(key))] = _norm(value)
    synonyms = {}
    for group, variants in section("synonyms").items():
        for variant in [*forms("synonyms", group, variants), _norm(str(group))]:
            synonyms[variant] = _norm(str(group))
    suppliers = {form: str(name) for name, values in section("suppliers").items()
                 for form in forms("suppliers", name, values)}
    roles = {}
    for name, spec in section("roles").items():
        if not isinstance(spec, dict) or not isinstance(spec.get("decides"), bool):
            raise ConfigError(f"{path}: roles.{name} needs `decides: true|false` and `words: [...]`")
        phrases = forms("roles", f"{name}.phrases", spec["phrases"]) if "phrases" in spec else []
        roles[str(name)] = Role(str(name), spec["decides"], tuple(forms("roles", name, spec.get("words"))),
                                tuple(phrases))
    channels = {form: str(name) for name, values in section("channels").items()
                for form in forms("channels", name, values)}
    lists = {}
    for key in ("stopwords", "refusals"):
        words = data.get(key) or []
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ConfigError(f"{path}: {key} must be a list of words")
        lists[key] = tuple(_norm(w) for w in words)
    return Lexicon(dialect, synonyms, suppliers, roles, channels, **lists)


def _norm(word: str) -> str:
    return unicodedata.normalize("NFKC", word).lower().strip()
