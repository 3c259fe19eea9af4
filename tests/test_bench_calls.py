"""benchmarks/calls.py: how a caller counts the bot's late frames (the load target's 'underruns')."""

import argparse
import asyncio

import numpy as np

from benchmarks.calls import Caller


def _caller(bot_times, speech_starts=()):
    async def make():
        args = argparse.Namespace(quiet_ms=600.0, reply_timeout_s=6.0, greet_wait_s=2.0)
        caller = Caller([], [b""], args)
        caller.bot_times, caller.speech_starts, caller.connected_at = list(bot_times), list(speech_starts), 0.0
        return caller

    return asyncio.run(make())


def _paced(start, count):
    return [start + 0.02 * i for i in range(count)]


def test_a_frame_over_40_ms_behind_its_slot_is_an_underrun_a_45_ms_gap_is_not():
    no_stalls = np.zeros((0, 2))
    jitter = _paced(0.0, 10) + _paced(0.225, 10)  # one 45 ms gap: a frame 25 ms late
    assert _caller(jitter).underruns(no_stalls) == (0, 0) and _caller(jitter).long_gaps() == 1
    dropout = _paced(0.0, 10) + _paced(0.25, 10)  # one 70 ms gap: 50 ms late, then on the new schedule
    caller = _caller(dropout)
    assert caller.underruns(no_stalls) == (1, 0) and caller.late_frames[0]["late_ms"] == 50.0
    drift = [0.02 * i + 0.008 * (i // 2) for i in range(30)]  # frames fall behind a little at a time
    assert _caller(drift).underruns(no_stalls)[0] >= 1 and _caller(drift).long_gaps() == 0


def test_the_silence_around_a_callers_turn_is_no_underrun_but_a_stall_of_ours_is_told():
    turns = _paced(0.0, 10) + _paced(3.0, 10)
    assert _caller(turns, speech_starts=[1.0]).underruns(np.zeros((0, 2))) == (0, 0)
    assert _caller(turns).underruns(np.array([[1.0, 2.0]])) == (1, 1)  # no caller turn between: a stall
