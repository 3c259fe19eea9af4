"""Run one kiosk conversation through real PortAudio on a PulseAudio null sink (run in a subprocess).

The sink's monitor is the microphone, so everything the kiosk plays comes straight back into it,
like a speaker next to a microphone. The bot plays a 1 s prompt; a "visitor" (pacat into the same
sink) speaks at 1.8 s. Prints one JSON object with what the microphone got and
what the bot heard. Usage: PULSE_SERVER=unix:/path python tests/helpers/kiosk_loopback.py DEVICE
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np

from edge.config import KioskConfig
from edge.kiosk import Kiosk, SoundCardPort, find_device
from edge.kiosk.levels import rms_dbfs
from edge.telephony.media import MediaCall
from edge.telephony.testing import tone

PROMPT_S = 1.0
VISITOR_AT_S = 1.6


class Prompt:
    def __init__(self) -> None:
        self.heard: list[float] = []

    async def handle(self, call: MediaCall) -> None:
        await call.play(tone(PROMPT_S, 440.0, 8000))
        async for frame in call.audio():
            self.heard.append(rms_dbfs(frame))
            if len(self.heard) * 0.02 >= 3.0:
                return


async def main(device: str) -> dict:
    port = SoundCardPort(find_device(device, "input"), find_device(device, "output"))
    raw: list[float] = []
    start_block = port._callback

    def spy(indata, outdata, frames, time, status):
        start_block(indata, outdata, frames, time, status)
        raw.append(rms_dbfs(indata[:, 0]))

    port._callback = spy
    handler = Prompt()
    kiosk = Kiosk(port, handler, KioskConfig(idle_timeout_s=10.0), starters=[])
    visitor = tone(0.5, 300.0, 8000)

    async def drive() -> None:
        await kiosk.ready.wait()
        kiosk.press()
        await asyncio.sleep(VISITOR_AT_S)
        # The visitor speaks through PulseAudio directly (a second PortAudio stream on the ALSA pulse
        # plugin is unreliable in a busy container).
        player = await asyncio.create_subprocess_exec(
            "pacat", "--playback", "--rate=16000", "--channels=1", "--format=s16le", "--latency-msec=40",
            stdin=asyncio.subprocess.PIPE)
        await player.communicate(visitor.tobytes())

    driver = asyncio.create_task(drive())
    stats = await asyncio.wait_for(kiosk.run(max_conversations=1), 15)
    await driver
    conversation = stats.conversations[0]
    heard = np.array(handler.heard)
    prompt_steps = int(PROMPT_S / 0.02)
    return {
        "latency_s": port.latency_s, "blocks": port.stats.blocks, "underflows": port.stats.output_underflows,
        "hold_ms": kiosk.gate.hold_frames * 20, "frames_gated": conversation.frames_gated,
        "frames_out": conversation.frames_out, "end_detail": conversation.end_detail,
        "raw_loud_frames": int(sum(level > -35 for level in raw)),
        "heard_max_dbfs_during_prompt": float(heard[:prompt_steps].max()) if len(heard) else None,
        "heard_loud_frames": int((heard > -35).sum()),
        "heard_loud_first_s": float(np.argmax(heard > -35) * 0.02) if (heard > -35).any() else None,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "pulse"))))
