"""A model backend that raises or hangs in one call: that call's turn is lost and the call goes on to a
record; the other calls are heard. The runtime's batcher first, then the daemon with the real call loop."""

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np

from edge.calls import Records
from edge.calls.ledger import read_ledger
from edge.calls.batcher import MicroBatcher
from edge.calls.session import CallLoop
from edge.errors import BatchError, BatchTimeoutError
from edge.telephony.audiosocket import encode_audio, encode_hangup
from tests.daemon_peers import Peer, config_for
from tests.fakes import voice_runtime
from tests.test_daemon import run, running


class Backend:
    """fn(items): "hang" blocks until released, "bad" raises, anything else comes back upper-cased."""

    def __init__(self):
        self.release = threading.Event()
        self.batches = []

    def __call__(self, items):
        self.batches.append(list(items))
        if "hang" in items:
            self.release.wait(30)
        if "bad" in items:
            raise RuntimeError("the model blew up")
        return [item.upper() for item in items]


def test_one_bad_item_fails_alone_and_a_hung_batch_is_cut_off():
    backend = Backend()
    pool = ThreadPoolExecutor(2)

    async def main():
        batcher = MicroBatcher(backend, max_batch=8, max_wait_ms=0, name="asr", batch_timeout_s=0.3, executor=pool)
        mixed = await asyncio.gather(*(batcher.submit(x) for x in ("a", "bad", "b")), return_exceptions=True)
        hung = await asyncio.gather(batcher.submit("hang"), return_exceptions=True)
        after = await batcher.submit("c")  # the stuck thread is left behind; this runs on a fresh one
        return mixed, hung, after, batcher

    try:
        mixed, hung, after, batcher = run(main())
    finally:
        backend.release.set()
        pool.shutdown(wait=False)
    assert mixed[0] == "A" and mixed[2] == "B" and isinstance(mixed[1], BatchError)
    assert isinstance(mixed[1].__cause__, RuntimeError)
    assert ["a", "bad", "b"] in backend.batches and ["bad"] in backend.batches, "retried one at a time"
    assert isinstance(hung[0], BatchTimeoutError) and "cut off" in str(hung[0])
    assert after == "C" and batcher.stats.hung == 1


def test_inline_batches_isolate_a_bad_item_too():
    backend = Backend()

    async def main():
        batcher = MicroBatcher(backend, max_wait_ms=0, name="intent", inline=True)
        return await asyncio.gather(*(batcher.submit(x) for x in ("a", "bad")), return_exceptions=True)

    a, bad = run(main())
    assert a == "A" and isinstance(bad, BatchError) and isinstance(bad.__cause__, RuntimeError)


class LoudnessKeyedAsr:
    """Tells the callers apart by how loud they speak: the loudest call's decode hangs, the middle one's
    raises, the quiet one is heard as 喂 你好. Armed after warm-up."""

    def __init__(self, peak):
        self.peak = peak
        self.armed = False
        self.raised = 0
        self.release = threading.Event()
        self.info = {"backend": "faulty", "kind": "test", "model": None, "streaming": False}

    def decode_segments(self, items, languages=None):
        loudness = [float(np.abs(pcm).max()) / self.peak if pcm.size else 0.0 for pcm in items]
        if self.armed and any(level > 0.75 for level in loudness):
            self.release.wait(30)
        if self.armed and any(0.4 < level <= 0.75 for level in loudness):
            self.raised += 1
            raise RuntimeError("the ASR backend crashed")
        return [SimpleNamespace(text="喂 你好" if level > 0.05 else "", raw_text=None) for level in loudness]


async def speak(peer, pcm8k, lead_s, total_s):
    """Paced 20 ms frames: quiet noise, the speech at lead_s, quiet noise until total_s, then a hangup."""
    rng = np.random.default_rng(lead_s.__hash__() & 0xFFFF)
    n_total = int(total_s / 0.02)
    start_frame = int(lead_s / 0.02)
    speech = [pcm8k[i:i + 160] for i in range(0, len(pcm8k) - 159, 160)]
    began = time.monotonic()
    for n in range(n_total):
        if peer.closed.done():
            return
        index = n - start_frame
        frame = speech[index] if 0 <= index < len(speech) else rng.normal(0, 20, 160).astype("<i2")
        peer.writer.write(encode_audio(np.asarray(frame, "<i2").tobytes()))
        await asyncio.sleep(max(0.0, began + (n + 1) * 0.02 - time.monotonic()))
    peer.writer.write(encode_hangup())
    await peer.wait_closed(limit_s=10)


def test_a_hung_and_a_crashing_asr_cost_their_calls_one_turn_and_the_other_call_is_heard(
        tmp_path, voice_cache, speech):
    pcm8k = np.asarray(speech[::2], dtype=np.int16)  # 16 kHz -> 8 kHz; aliasing is fine for this
    peak = float(np.abs(pcm8k).max())
    asr = LoudnessKeyedAsr(peak)
    runtime = voice_runtime(voice_cache, recognizer=asr, offload=True, model_timeout_s=1.0)
    asr.armed = True
    records = Records.open(tmp_path / "data" / "calls.db")
    ids = {"hangs": uuid.uuid4(), "raises": uuid.uuid4(), "fine": uuid.uuid4()}

    async def main():
        async with running(config_for(tmp_path, call_budget_s=60), handler=CallLoop(runtime, records),
                           name="call loop") as daemon:
            port = daemon.ports["audiosocket"]
            peers = {name: await Peer.connect(port, call_id) for name, call_id in ids.items()}
            await asyncio.gather(speak(peers["hangs"], pcm8k, 0.4, 11.0),
                                 speak(peers["raises"], (pcm8k * 0.55).astype(np.int16), 2.6, 11.0),
                                 speak(peers["fine"], (pcm8k * 0.25).astype(np.int16), 5.0, 11.0))
        return daemon

    try:
        daemon = run(main(), timeout=60)
    finally:
        asr.release.set()
    ledger = {row["call_id"]: row for row in read_ledger(daemon.ledger.path)}
    for name, call_id in ids.items():
        row = ledger[str(call_id)]
        assert row["ended_at"] and row["outcome"] not in ("budget_exceeded", "error"), (name, row)
        assert records.report(str(call_id))["ended_at"], f"{name}: the call has its record"
    heard = {name: [t for (t,) in records.db.execute("select caller from turns where call_id = ?", [str(i)])]
             for name, i in ids.items()}
    # (the fake ASR says 喂 你好 for any loud audio: a turn recognized in pieces, at its pauses, repeats it)
    assert any("喂 你好" in text for text in heard["fine"]), heard
    assert not any("喂 你好" in text for text in heard["hangs"] + heard["raises"]), heard
    assert runtime._batchers["asr"].stats.hung == 1 and asr.raised >= 1
