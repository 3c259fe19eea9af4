"""Dashboard access: the admin password and API token, sessions, login rate limiting.

There is no default password. On first start `Credentials.ensure` makes a
random admin password and API token, returns them once to be printed, and
keeps only hashes in `<data dir>/admin.json` (mode 0600): the password with
scrypt and a per-file salt, the token (random, 256 bits) with SHA-256.
Sessions live in memory (a restart logs everyone out); each has its own
CSRF token.

Example:
    >>> creds, fresh = Credentials.ensure(data_dir)
    >>> fresh.password is not None        # first start only
    True
    >>> creds.check_password(fresh.password), creds.check_token(fresh.api_token)
    (True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from edge.errors import AuthError

FILE_NAME: Final = "admin.json"
USER: Final = "admin"
SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1}
"""scrypt cost: ~16 MB and ~50 ms per check on this box, which also slows guessing."""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogateescape"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


@dataclass(frozen=True)
class Fresh:
    """Secrets made just now: shown once, never stored."""

    password: str | None = None
    api_token: str | None = None


class Credentials:
    """The hashed admin password and API token of one box."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self._data = data

    @classmethod
    def ensure(cls, data_dir: Path) -> tuple[Credentials, Fresh]:
        """Load the credentials, making them on first start.

        Raises:
            AuthError: the file is unreadable or corrupt, or the directory is not writable.
        """
        path = Path(data_dir) / FILE_NAME
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                data["password"]["hash"], data["api_token"]["sha256"]  # noqa: B018 (shape check)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise AuthError(f"{path} is unreadable or damaged ({exc}); move it away and start again to make new "
                                "credentials, or run `salesbot dashboard --reset-password`") from None
            return cls(path, data), Fresh()
        password, token = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        data = {"user": USER, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "password": _hash_password(password), "api_token": _hash_token(token)}
        _write(path, data)
        return cls(path, data), Fresh(password, token)

    @classmethod
    def reset(cls, data_dir: Path) -> str:
        """A new admin password (the API token stays); returns it to be shown once."""
        creds, fresh = cls.ensure(data_dir)
        if fresh.password:
            return fresh.password
        password = secrets.token_urlsafe(12)
        creds._data["password"] = _hash_password(password)
        _write(creds.path, creds._data)
        return password

    @property
    def user(self) -> str:
        return self._data.get("user", USER)

    def check_password(self, password: str) -> bool:
        entry = self._data["password"]
        try:
            salt = bytes.fromhex(entry["salt"])
            expected = bytes.fromhex(entry["hash"])
            got = _scrypt(password[:256], salt, entry["n"], entry["r"], entry["p"])
        except UnicodeEncodeError:  # a lone surrogate cannot be the password
            return False
        except (KeyError, ValueError, TypeError):
            return False
        return hmac.compare_digest(got, expected)

    def check_token(self, token: str) -> bool:
        # surrogateescape: a header of non-UTF-8 bytes is a wrong token, not a 500
        digest = hashlib.sha256(token[:256].encode("utf-8", "surrogateescape")).hexdigest()
        return hmac.compare_digest(digest, self._data["api_token"]["sha256"])


def _hash_password(password: str) -> dict:
    salt = secrets.token_bytes(16)
    return {"algo": "scrypt", **SCRYPT, "salt": salt.hex(), "hash": _scrypt(password, salt, **SCRYPT).hex()}


def _hash_token(token: str) -> dict:
    return {"sha256": hashlib.sha256(token.encode("utf-8")).hexdigest()}


def _write(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, path)
    except OSError as exc:
        raise AuthError(f"cannot write {path}: {exc.strerror}; check the data directory's permissions") from None


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class Sessions:
    """Logged-in browsers: session id -> user, CSRF token, expiry."""

    def __init__(self, hours: float = 12.0, clock=time.time):
        self._sessions: dict[str, Session] = {}
        self.ttl_s = hours * 3600
        self._clock = clock

    def create(self, user: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), self._clock() + self.ttl_s)
        self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None or session.expires < self._clock():
            self._sessions.pop(sid, None)
            return None
        return session

    def drop(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)


class LoginLimiter:
    """At most `attempts` failed logins per address in `window_s`, and ten times that from all addresses."""

    def __init__(self, attempts: int = 5, window_s: float = 300.0, clock=time.monotonic):
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, queue: deque[float]) -> None:
        cutoff = self._clock() - self.window_s
        while queue and queue[0] < cutoff:
            queue.popleft()

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try again (0: now)."""
        queue = self._failures.get(address, deque())
        self._trim(queue)
        self._trim(self._all)
        if len(queue) >= self.attempts:
            return max(1, int(queue[0] + self.window_s - self._clock()) + 1)
        if len(self._all) >= self.attempts * 10:
            return max(1, int(self._all[0] + self.window_s - self._clock()) + 1)
        return 0

    def failed(self, address: str) -> None:
        now = self._clock()
        self._failures.setdefault(address, deque()).append(now)
        self._all.append(now)
        if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
            self._failures.clear()

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
