"""Half-duplex gating: the kiosk never hears its own voice.

A kiosk's microphone picks up its own speaker. Without a gate the bot would
transcribe its prompt and answer itself. While the speaker plays, and for a
tail after its last sound (room echo plus the sound card's latency), the
microphone frames are replaced by silence, or lowered by a fixed number of
dB so that a visitor speaking right at the microphone can still barge in.
Frames are never dropped: the call loop's clock (VAD, endpointing) keeps
running on 20 ms steps.

No acoustic echo canceller is used. Of the pip packages that offer one, the
maintained candidate is LiveKit's WebRTC audio processing module (package
`livekit`, `rtc.AudioProcessingModule`, AEC3); the smaller bindings
(webrtc-apm, aec-audio-processing, speexdsp) are single-author or stale. It
has not been integrated or measured yet: full-duplex barge-in at a kiosk
needs it; this gate is the safe minimum.

Example:
    >>> gate = HalfDuplexGate(tail_ms=200)
    >>> heard, gated = gate.process(mic_frame, speaker_audible=True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.errors import ConfigError
from edge.telephony.media import FRAME_MS

__all__ = ["GateStats", "HalfDuplexGate"]


@dataclass
class GateStats:
    frames: int = 0
    frames_gated: int = 0


class HalfDuplexGate:
    """Mutes (or attenuates) microphone frames while the bot's audio is in the room.

    Args:
        tail_ms: how long the gate stays closed after the speaker's last sound.
        latency_ms: the sound card's input + output latency, added to the tail
            (the speaker's sound reaches the microphone that much later).
        attenuation_db: None mutes; a number lowers gated frames by that many dB.
    """

    def __init__(self, tail_ms: int = 200, latency_ms: float = 0.0, attenuation_db: float | None = None) -> None:
        if tail_ms < 0 or latency_ms < 0:
            raise ConfigError(f"gate tail and latency must be >= 0 ms, got {tail_ms} and {latency_ms}")
        self.hold_frames = math.ceil((tail_ms + latency_ms) / FRAME_MS)
        """Frames kept gated after the last audible speaker frame."""
        self.gain = None if attenuation_db is None else 10 ** (-attenuation_db / 20)
        self.stats = GateStats()
        self._left = 0

    @property
    def closed(self) -> bool:
        """True while the next microphone frame would be gated (the bot's sound may still be in the room)."""
        return self._left > 0

    def process(self, mic: np.ndarray, speaker_audible: bool) -> tuple[np.ndarray, bool]:
        """One 20 ms step: the microphone frame and whether the speaker played sound in the same step.

        Returns:
            (the frame the bot hears, whether it was gated).
        """
        self.stats.frames += 1
        if speaker_audible:
            self._left = self.hold_frames + 1
        if self._left == 0:
            return mic, False
        self._left -= 1
        self.stats.frames_gated += 1
        if self.gain is None:
            return np.zeros_like(mic), True
        return np.rint(mic.astype(np.float32) * self.gain).astype(np.int16), True

    def reset(self) -> None:
        self._left = 0
