"""The PBX's ports: AMI reachable (TCP, short timeout), our media listen addresses served or free.

Only the addresses in [telephony] are contacted; nothing else.
"""

from __future__ import annotations

import errno
import socket
from typing import Final

from edge.config import Config
from edge.doctor.finding import Finding

TIMEOUT_S: Final = 1.5
AMI_BANNER: Final = b"Asterisk Call Manager"


def check(config: Config) -> list[Finding]:
    from edge.telephony.address import parse_uri

    telephony = config.telephony
    findings = []
    if telephony.ami is None:
        findings.append(Finding("pbx ami", "skip", "no [telephony] ami configured (no outbound dialling)"))
    else:
        findings.append(_ami(parse_uri(telephony.ami, ("tcp",))))
    for name, uri, scheme in (("audiosocket", telephony.audiosocket, "tcp"), ("websocket", telephony.websocket, "ws")):
        if uri is not None:
            findings.append(_listen(name, parse_uri(uri, (scheme,))))
    return findings


def _ami(address) -> Finding:
    name = f"pbx ami {address.host}:{address.port}"
    try:
        with socket.create_connection((address.host, address.port), timeout=TIMEOUT_S) as sock:
            sock.settimeout(TIMEOUT_S)
            try:
                banner = sock.recv(64)
            except TimeoutError:
                banner = b""
    except OSError as exc:
        return Finding(name, "fail", f"cannot connect: {exc.strerror or exc}",
                       "check the PBX is up and reachable from this box, that manager.conf has enabled = yes and "
                       "bindaddr/port match, and that no firewall blocks the port; then fix [telephony] ami")
    if not banner.startswith(AMI_BANNER):
        return Finding(name, "warn", f"connected, but the greeting is not Asterisk's ({banner[:40]!r})",
                       "check that [telephony] ami points at Asterisk's manager port (usually 5038)")
    return Finding(name, "ok", banner.decode("ascii", "replace").strip())


def _listen(kind: str, address) -> Finding:
    name = f"{kind} {address.host}:{address.port}"
    try:
        with socket.create_connection((address.host, address.port), timeout=TIMEOUT_S):
            return Finding(name, "ok", "a server is listening (the service is running)")
    except OSError:
        pass
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address.host, address.port))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return Finding(name, "fail", f"{address.host} is not an address of this machine",
                           f"set [telephony] {kind} to an address of this box (0.0.0.0 for all)")
        if exc.errno == errno.EACCES:
            return Finding(name, "fail", f"port {address.port} needs privileges to bind",
                           f"use a port above 1024 in [telephony] {kind}")
        return Finding(name, "warn", f"cannot bind the address ({exc.strerror}) and nothing answers on it",
                       f"find what holds port {address.port} (ss -ltnp) or change [telephony] {kind}")
    return Finding(name, "warn", "nothing is listening yet (the service is not running); the port is free",
                   "start the service: sudo systemctl start edge-salesbot")

