"""Test helpers for the daemon: an Asterisk-like AudioSocket peer, an admin API client, a read-only directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from edge.config import Config
from edge.telephony.audiosocket import FrameDecoder, Kind, encode_audio, encode_hangup, encode_uuid

TIMEOUT = 5.0


def config_for(tmp_path: Path, **server) -> Config:
    """Loopback listeners on free ports, websocket off, a short grace; the data directory under tmp_path.
    `websocket="ws://127.0.0.1:0"` turns the WebSocket listener on."""
    config = Config()
    config.data.dir = tmp_path / "data"
    config.telephony.audiosocket = "tcp://127.0.0.1:0"
    config.telephony.websocket = server.pop("websocket", None)
    config.server.admin = "127.0.0.1:0"
    config.server.shutdown_grace_s = 0.5
    config.server.min_free_mb = 1
    for key, value in server.items():
        setattr(config.server, key, value)
    return config


def tone8k(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * 8000)) / 8000
    return (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2")


class Peer:
    """What Asterisk does: UUID first, then paced 20 ms slin frames; it records what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call_id: uuid.UUID) -> None:
        self.reader, self.writer, self.call_id = reader, writer, call_id
        self.decoder = FrameDecoder()
        self.audio_frames = 0
        self.got_hangup = False
        self.closed = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, port: int, call_id: uuid.UUID | None = None) -> Peer:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        peer = cls(reader, writer, call_id or uuid.uuid4())
        writer.write(encode_uuid(peer.call_id))
        return peer

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(4096)
                if not data:
                    break
                for frame in self.decoder.feed(data):
                    if frame.kind is Kind.AUDIO:
                        self.audio_frames += 1
                    elif frame.kind is Kind.HANGUP:
                        self.got_hangup = True
        except (ConnectionError, OSError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)

    async def stream(self, seconds: float, hz: float = 440.0) -> None:
        """Send `seconds` of tone as paced 20 ms frames (stops early if the call was closed)."""
        pcm = tone8k(seconds, hz)
        start = time.monotonic()
        for n, offset in enumerate(range(0, len(pcm), 160)):
            if self.closed.done() or self.writer.is_closing():
                return
            self.writer.write(encode_audio(pcm[offset:offset + 160].tobytes()))
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))

    async def hangup(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_hangup())
        await self.wait_closed()

    async def wait_closed(self, limit_s: float = TIMEOUT) -> None:
        await asyncio.wait_for(asyncio.shield(self.closed), limit_s)
        self.writer.close()


async def admin_get(daemon, path: str, token: str | None = "", method: str = "GET") -> tuple[int, str]:
    """(status, body) of an admin API request; token "" means the daemon's own, None no header."""
    import aiohttp

    token = daemon.token.value if token == "" else token
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"http://127.0.0.1:{daemon.ports['admin']}{path}"
    async with aiohttp.ClientSession() as session, session.request(
            method, url, headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as response:
        return response.status, await response.text()


@contextlib.contextmanager
def read_only(path: Path):
    """Make a directory unwritable even for root (chattr +i), or skip when that is impossible here."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o500)
        undo = lambda: path.chmod(0o700)  # noqa: E731
    else:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a directory read-only for root here (no chattr +i)")
        undo = lambda: subprocess.run([chattr, "-i", str(path)], check=True)  # noqa: E731
    try:
        yield undo
    finally:
        with contextlib.suppress(Exception):
            undo()
