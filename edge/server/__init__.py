"""The daemon's HTTP side: the admin dashboard and API (aiohttp), login and sessions.

    state = build_state(config)          # edge/server/run.py
    app = create_app(state)              # mount in the daemon, or `salesbot dashboard`
"""

from edge.server.app import AppState, create_app
from edge.server.run import build_state, serve

__all__ = ["AppState", "build_state", "create_app", "serve"]
