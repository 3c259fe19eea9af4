"""Campaigns running inside the server: one asyncio task per running campaign
that dials what is due, waits for the next due moment, and stops when the
campaign is paused or has nothing left to do. Campaigns left "running" by a
previous process are picked up again at start.

Example:
    >>> service = CampaignService(records, make_placer)
    >>> await service.start("三月华东", actor="admin")
    >>> service.running("三月华东")
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from edge.calls import campaign as _campaign
from edge.calls.campaign import Campaign
from edge.calls.records import Records
from edge.calls.runner import CallPlacer, CampaignRunner

_LOGGER = logging.getLogger(__name__)

POLL_S: Final = 5.0
"""Longest sleep between passes (a new lead, a resumed campaign or a callback is noticed within this)."""


class CampaignService:
    def __init__(self, records: Records, make_placer: Callable[[Campaign], CallPlacer],
                 clock: Callable[[], datetime], *, poll_s: float = POLL_S):
        self.records = records
        self.make_placer = make_placer
        self.clock = clock
        self.poll_s = poll_s
        self._tasks: dict[str, asyncio.Task] = {}
        self.last_error: dict[str, str] = {}

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def start(self, name: str, *, actor: str) -> Campaign:
        campaign = _campaign.set_status(self.records.db, name, "running", actor=actor)
        self._spawn(campaign)
        return campaign

    async def pause(self, name: str, *, actor: str) -> Campaign:
        """In-flight calls finish; nothing new is dialled."""
        return _campaign.set_status(self.records.db, name, "paused", actor=actor)

    def resume_all(self) -> None:
        """Start a task for every campaign whose status is running (after a restart)."""
        for campaign in _campaign.all_campaigns(self.records.db):
            if campaign.status == "running":
                self._spawn(campaign)

    def _spawn(self, campaign: Campaign) -> None:
        if self.running(campaign.name):
            return
        task = asyncio.get_running_loop().create_task(self._loop(campaign), name=f"campaign-{campaign.id}")
        self._tasks[campaign.name] = task

    async def _loop(self, campaign: Campaign) -> None:
        runner = CampaignRunner(self.records, campaign.name, self.make_placer(campaign), actor="dashboard")
        runner.recover(self.clock())
        self.last_error.pop(campaign.name, None)
        try:
            while _campaign.get(self.records.db, campaign.name).status == "running":
                summary = await runner.run_due(self.clock())
                if summary.placed or summary.deferred or summary.blocked_dnc:
                    continue
                if summary.next_due is None and not self._waiting(campaign.id):
                    runner.finish_if_done()
                    break
                wait = self.poll_s
                if summary.next_due is not None:
                    ahead = (datetime.fromisoformat(summary.next_due) - self.clock()).total_seconds()
                    wait = min(wait, max(0.05, ahead))
                await asyncio.sleep(wait)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep the server up; show the error on the campaigns page
            _LOGGER.exception("campaign %s stopped", campaign.name)
            self.last_error[campaign.name] = str(exc)

    def _waiting(self, campaign_id: int) -> bool:
        return self.records.db.execute("select 1 from leads where campaign_id = ? and status in "
                                       "('pending', 'retry', 'callback', 'in_call') limit 1",
                                       [campaign_id]).fetchone() is not None

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
