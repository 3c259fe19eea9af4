"""Install the systemd unit: `salesbot systemd install` writes it, pointing at this install.

The unit (`systemd/edge-salesbot.service` in the repository, shipped in the
package as `edge/data/systemd/`) runs `PREFIX/bin/salesbot serve` as a
sandboxed dynamic user, `Type=notify`: the daemon tells systemd READY=1 once it
listens with its handler loaded and STOPPING=1 when it drains on SIGTERM;
`systemctl reload` sends SIGHUP (script and knowledge reload). Installing rewrites PREFIX to the virtual
environment `salesbot` runs from (or `--prefix`), writes the unit to
`/etc/systemd/system/` and, if there is none yet, a commented
`/etc/edge-salesbot/config.toml`. It does not start anything: it prints the
two `systemctl` commands that do.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from edge.config import PACKAGE_DIR
from edge.errors import ConfigError

__all__ = ["UNIT_NAME", "InstallResult", "install", "render_unit"]

_LOGGER = logging.getLogger(__name__)

UNIT_NAME: Final = "edge-salesbot.service"
TEMPLATE: Final = PACKAGE_DIR / "data" / "systemd" / UNIT_NAME
TEMPLATE_PREFIX: Final = "/opt/edge-salesbot"
CONFIG_TEMPLATE: Final = """\
# edge-salesbot configuration. Every key is optional: the built-in defaults run.
# Unknown keys are errors that name the key. Secrets (the AMI password) do not
# belong here: the service reads them with systemd's LoadCredential=.
#
# [nlu]
# engine = "onnxruntime"   # or "openvino"
# threads = 1
#
# [telephony]
# audiosocket = "tcp://127.0.0.1:9092"   # tcp://0.0.0.0:9092 when Asterisk runs on another box
# websocket = "ws://127.0.0.1:9093"      # FreeSWITCH/jambonz media (off unless set)
#
# [server]
# admin = "127.0.0.1:8080"         # /health /calls /reload /metrics; token: printed once (journal), or --new-admin-token
# max_calls = 100
# call_budget_s = 600              # a call's handler is cut off (and the call recorded) after this
# shutdown_grace_s = 20            # on stop, calls get this long to finish; keep under TimeoutStopSec=30
"""


@dataclass(frozen=True)
class InstallResult:
    unit_path: Path
    config_path: Path
    config_written: bool
    """False when a config already existed (it is never overwritten)."""


def render_unit(prefix: str | Path) -> str:
    """The unit text with ExecStart pointing at PREFIX/bin/salesbot.

    Raises:
        ConfigError: the prefix is not an absolute path (systemd requires one).
    """
    prefix = Path(prefix)
    if not prefix.is_absolute():
        raise ConfigError(f"--prefix must be an absolute path (systemd needs one), got {prefix}")
    text = TEMPLATE.read_text(encoding="utf-8")
    needle = f"ExecStart={TEMPLATE_PREFIX}/bin/salesbot "
    if needle not in text:
        raise ConfigError(f"{TEMPLATE}: no '{needle.strip()}' line to rewrite; the unit template was edited")
    return text.replace(needle, f"ExecStart={prefix}/bin/salesbot ")


def default_prefix() -> Path:
    """The environment this `salesbot` runs from (its bin/ holds the console script)."""
    return Path(sys.prefix)


def install(prefix: str | Path | None = None, root: str | Path = "/") -> InstallResult:
    """Write the unit (and a commented config if none exists) under `root`.

    Args:
        prefix: the virtual environment holding bin/salesbot; default: the running one.
        root: "/" on the box; a staging directory for packaging and tests.

    Raises:
        ConfigError: PREFIX/bin/salesbot is missing or not executable.
    """
    prefix = Path(prefix) if prefix is not None else default_prefix()
    if not prefix.is_absolute():
        raise ConfigError(f"--prefix must be an absolute path (systemd needs one), got {prefix}")
    executable = prefix / "bin" / "salesbot"
    if not os.access(executable, os.X_OK):
        raise ConfigError(f"{executable} is missing or not executable; pass --prefix with the virtual "
                          "environment where edge-salesbot is installed (pip install .)")
    root = Path(root)
    unit_path = root / "etc" / "systemd" / "system" / UNIT_NAME
    config_path = root / "etc" / "edge-salesbot" / "config.toml"
    unit_path.parent.mkdir(parents=True, exist_ok=True)
    unit_path.write_text(render_unit(prefix), encoding="utf-8")
    unit_path.chmod(0o644)
    written = not config_path.exists()
    if written:
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.parent.chmod(0o755)
        config_path.write_text(CONFIG_TEMPLATE, encoding="utf-8")
        config_path.chmod(0o644)
    _LOGGER.info("wrote %s (ExecStart %s serve)", unit_path, executable)
    return InstallResult(unit_path, config_path, written)
