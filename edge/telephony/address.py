"""Listen and connect addresses written as URIs: `tcp://127.0.0.1:9092`, `ws://0.0.0.0:9093`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from edge.errors import ConfigError

__all__ = ["Address", "parse_uri"]


@dataclass(frozen=True)
class Address:
    scheme: str
    host: str
    port: int
    path: str = ""

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_uri(uri: str, schemes: tuple[str, ...]) -> Address:
    """Split `scheme://host:port[/path]`; port 0 asks the OS for a free one.

    Raises:
        ConfigError: another scheme, no host or no port.

    Example:
        >>> parse_uri("tcp://127.0.0.1:9092", ("tcp",))
        Address(scheme='tcp', host='127.0.0.1', port=9092, path='')
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad address {uri!r}: {exc}; write it as {schemes[0]}://HOST:PORT") from None
    if parts.scheme not in schemes:
        raise ConfigError(f"address {uri!r} must start with one of {[s + '://' for s in schemes]}, "
                          f"e.g. {schemes[0]}://127.0.0.1:9092")
    if not parts.hostname or port is None:
        raise ConfigError(f"address {uri!r} needs a host and a port, e.g. {schemes[0]}://127.0.0.1:9092")
    return Address(parts.scheme, parts.hostname, port, parts.path)
