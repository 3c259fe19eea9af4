"""Build the dashboard's state from the config and serve it (`salesbot dashboard`).

The daemon (`salesbot serve`, later) builds the same state and mounts the
same app next to its call servers, passing its own LiveCalls registry.

Example:
    >>> state, fresh = build_state(config, classifier=IntentModel.load())
    >>> serve(config)                    # blocks; Ctrl-C stops
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from edge.calls.callers import CallerBook
from edge.calls.campaign import Campaign
from edge.calls.live import LiveCalls
from edge.calls.placers import TextCallPlacer, build_dialogues
from edge.calls.records import Records
from edge.config import Config
from edge.errors import ConfigError
from edge.server.app import AppState, create_app
from edge.server.auth import Credentials, Fresh, LoginLimiter, Sessions
from edge.server.service import CampaignService

_LOGGER = logging.getLogger(__name__)


def build_state(cfg: Config, *, classifier, records_path: Path | None = None, callers_dir: Path | None = None,
                pace_s: float | None = None, live: LiveCalls | None = None, clock=None) -> tuple[AppState, Fresh]:
    """Everything the app needs; `Fresh` holds the password and token if they were made just now."""
    data_dir = cfg.data.resolved()
    records_path = records_path or cfg.records.path(data_dir)
    records = Records.open(records_path)
    credentials, fresh = Credentials.ensure(data_dir)
    live = live or LiveCalls()
    callers = CallerBook.load(callers_dir)
    pace = cfg.server.sim_pace_s if pace_s is None else pace_s
    kb_path = cfg.kb.database or data_dir / "kb.db"
    zone = ZoneInfo(cfg.dialog.timezone)
    clock = clock or (lambda: datetime.now(zone))

    def make_placer(campaign: Campaign) -> TextCallPlacer:
        from edge.kb import KnowledgeBase

        # the knowledge base the dashboard imports into, else the built-in knowledge
        knowledge = KnowledgeBase.open(kb_path, rrf_k=cfg.kb.rrf_k) if kb_path.is_file() else KnowledgeBase.builtin()
        make = build_dialogues(cfg, campaign.settings, classifier, knowledge)
        return TextCallPlacer(records, campaign, make, callers, live=live, pace_s=pace)

    service = CampaignService(records, make_placer, clock)
    state = AppState(cfg=cfg, records=records, records_path=Path(records_path), credentials=credentials,
                     sessions=Sessions(cfg.server.session_hours),
                     limiter=LoginLimiter(cfg.server.login_attempts, cfg.server.login_window_s), live=live,
                     service=service, kb_path=Path(kb_path), recordings_dir=cfg.compliance.recordings(data_dir),
                     data_dir=data_dir)
    return state, fresh


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--admin must be HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host.strip("[]"), int(port)


def serve(cfg: Config, *, classifier, admin: str | None = None, records_path: Path | None = None,
          callers_dir: Path | None = None, pace_s: float | None = None, echo=print) -> None:
    """Run the dashboard until interrupted; prints the admin password and API token on first start."""
    host, port = split_address(admin or cfg.server.admin)
    state, fresh = build_state(cfg, classifier=classifier, records_path=records_path, callers_dir=callers_dir,
                               pace_s=pace_s)
    if fresh.password:
        echo("First start: these are shown once and stored only as hashes in "
             f"{state.credentials.path}")
        echo(f"  admin password: {fresh.password}")
        echo(f"  API token:      {fresh.api_token}   (Authorization: Bearer <token>)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        _LOGGER.warning("the dashboard listens on %s, not only this machine: put a TLS proxy in front", host)
    echo(f"dashboard: http://{host}:{port}/  (user {state.credentials.user})")
    web.run_app(create_app(state), host=host, port=port, print=None, handle_signals=True)
