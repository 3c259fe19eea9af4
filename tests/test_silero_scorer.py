"""edge/audio/silero.WindowScorer: closing it while its thread is inside the model."""

import asyncio
import threading

import numpy as np
import pytest

from edge.audio.silero import CONTEXT, WINDOW, SileroState, WindowScorer


class _HeldModel:
    """Stands in for SileroModel: each batch waits until the test lets it go."""

    threshold = 0.5

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def probabilities(self, inputs, states):
        self.entered.set()
        self.release.wait(5)
        return np.full(len(inputs), 0.9, np.float32), states


def test_closing_while_the_model_runs_fails_the_chunk_and_leaves_the_thread_quietly():
    model, errors = _HeldModel(), []
    hook, threading.excepthook = threading.excepthook, lambda args: errors.append(args.exc_value)
    try:
        async def scenario():
            scorer = WindowScorer(model, offload=True)
            future = SileroState(model).submit(np.zeros(WINDOW + CONTEXT, np.float32), scorer)
            assert await asyncio.to_thread(model.entered.wait, 5)
            scorer.close()
            model.release.set()
            with pytest.raises(RuntimeError, match="closed"):
                await asyncio.wait_for(future, 5)
            scorer._thread.join(5)
            return scorer._thread.is_alive()

        assert asyncio.run(scenario()) is False
    finally:
        threading.excepthook = hook
    assert errors == []
