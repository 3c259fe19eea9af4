"""The daemon (`salesbot serve`): transports, admin HTTP API, health, /metrics; and the dashboard."""
