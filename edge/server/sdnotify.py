"""systemd's readiness protocol (Type=notify) with a plain unix datagram socket, no dependency.

systemd sets $NOTIFY_SOCKET for a Type=notify service; the daemon sends
`READY=1` once it listens and its handler is loaded, `STOPPING=1` when a
shutdown begins, and `STATUS=...` lines that `systemctl status` shows.
Without $NOTIFY_SOCKET (a terminal, tests) every call is a no-op.

Example:
    >>> notify("READY=1", "STATUS=taking calls")
    False
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["notify"]

_LOGGER = logging.getLogger(__name__)


def notify(*fields: str) -> bool:
    """Send `fields` (e.g. "READY=1") to $NOTIFY_SOCKET; True if sent, False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    elif not address.startswith("/"):
        _LOGGER.warning("NOTIFY_SOCKET %r is not a unix socket path; systemd readiness not sent", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode("utf-8"))
    except OSError as exc:
        _LOGGER.warning("could not notify systemd at %s: %s", address.lstrip("\0"), exc)
        return False
    return True
