"""The machine's sound card through PortAudio (`sounddevice`, imported on first use).

`list_devices()` is what `salesbot devices` prints; `find_device()` turns a
config value (an index, or part of a name) into one device; `SoundCardPort`
is the kiosk's `AudioPort` on a real card: one duplex stream at 16 kHz mono
int16 with 20 ms blocks, so every callback hands one microphone frame in and
takes one speaker frame out on the card's own clock.

PortAudio does not resample: a raw ALSA `hw:` device that only runs at
48 kHz refuses 16 kHz. The ALSA `default`, `pulse` or `plughw:` devices
convert the rate for us; the error says so.

Example:
    >>> for device in list_devices():
    ...     print(device.index, device.name, device.max_input_channels, device.max_output_channels)
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from edge.errors import SoundDeviceError
from edge.kiosk import levels
from edge.telephony.media import FRAME_SAMPLES, RUNTIME_RATE_HZ

__all__ = ["APT_PACKAGE", "SoundCardPort", "SoundDevice", "find_device", "list_devices", "portaudio_version"]

_LOGGER = logging.getLogger(__name__)

APT_PACKAGE: Final = "libportaudio2"
"""The Debian / Ubuntu / Raspberry Pi OS package that provides PortAudio on Linux."""

Kind = Literal["input", "output"]


def _sounddevice() -> Any:
    """The sounddevice module, or an error that says what to install."""
    try:
        import sounddevice
    except ModuleNotFoundError:
        raise SoundDeviceError("the kiosk needs the sounddevice package: pip install 'edge-salesbot[kiosk]' "
                               f"(and on Linux: apt-get install {APT_PACKAGE})") from None
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found") when the library is missing
        raise SoundDeviceError(f"PortAudio is not installed ({exc}): apt-get install {APT_PACKAGE} "
                               "(Debian, Ubuntu, Raspberry Pi OS)") from None
    return sounddevice


def portaudio_version() -> str:
    """PortAudio's version text, e.g. "PortAudio V19.6.0-devel ..."."""
    return str(_sounddevice().get_portaudio_version()[1])


@dataclass(frozen=True)
class SoundDevice:
    """One PortAudio device."""

    index: int
    name: str
    hostapi: str
    """"ALSA", "JACK", "Core Audio", ..."""
    max_input_channels: int
    max_output_channels: int
    default_samplerate_hz: float
    default_input: bool = False
    default_output: bool = False

    def can(self, kind: Kind) -> bool:
        return (self.max_input_channels if kind == "input" else self.max_output_channels) > 0


def list_devices() -> list[SoundDevice]:
    """Every device PortAudio sees (empty on a machine without sound cards).

    Raises:
        SoundDeviceError: sounddevice or PortAudio is not installed.
    """
    sd = _sounddevice()
    try:
        raw = sd.query_devices()
        apis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise SoundDeviceError(f"PortAudio cannot list the sound devices ({exc})") from None
    return [SoundDevice(index=int(d["index"]), name=str(d["name"]), hostapi=str(apis[d["hostapi"]]["name"]),
                        max_input_channels=int(d["max_input_channels"]),
                        max_output_channels=int(d["max_output_channels"]),
                        default_samplerate_hz=float(d["default_samplerate"]),
                        default_input=int(d["index"]) == default_in, default_output=int(d["index"]) == default_out)
            for d in raw]


def find_device(spec: str | int | None, kind: Kind, devices: list[SoundDevice] | None = None) -> SoundDevice | None:
    """The device a config value names: an index, or part of its name (case-insensitive); None: the default.

    Raises:
        SoundDeviceError: no such device, it has no channels of that kind, or the name matches several.
    """
    devices = list_devices() if devices is None else devices
    usable = [d for d in devices if d.can(kind)]
    listing = "; ".join(f"{d.index}: {d.name}" for d in usable) or "none"
    if spec is None or spec == "":
        chosen = [d for d in usable if (d.default_input if kind == "input" else d.default_output)]
        if chosen:
            return chosen[0]
        if not usable:
            raise SoundDeviceError(f"no {kind} sound device found; plug one in, or check that the user may open "
                                   "/dev/snd (group 'audio') and `salesbot devices` lists it")
        return None  # PortAudio's own default
    if isinstance(spec, int) or str(spec).strip().isdigit():
        index = int(spec)
        for device in devices:
            if device.index == index:
                if not device.can(kind):
                    raise SoundDeviceError(f"sound device {index} ({device.name}) has no {kind} channels; "
                                           f"{kind} devices: {listing}")
                return device
        raise SoundDeviceError(f"no sound device with index {index}; {kind} devices: {listing}")
    wanted = str(spec).strip().lower()
    exact = [d for d in usable if d.name.lower() == wanted]
    matches = exact or [d for d in usable if wanted in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SoundDeviceError(f"no {kind} sound device named like {spec!r}; {kind} devices: {listing}")
    raise SoundDeviceError(f"{spec!r} matches several {kind} devices ("
                           + "; ".join(f"{d.index}: {d.name}" for d in matches) + "); give the index")


@dataclass
class PortStats:
    blocks: int = 0
    """Callbacks run (20 ms each)."""
    input_overflows: int = 0
    output_underflows: int = 0


class SoundCardPort:
    """The kiosk's AudioPort on a real sound card (one PortAudio duplex stream).

    Args:
        input_device: microphone (None: the default).
        output_device: speaker (None: the default).
        latency: PortAudio's latency hint: "low" or "high", or seconds.
    """

    def __init__(self, input_device: SoundDevice | None = None, output_device: SoundDevice | None = None,
                 latency: str | float = "low") -> None:
        self.input_device = input_device
        self.output_device = output_device
        self.latency = latency
        self.latency_s = 0.0
        """Input plus output latency the opened stream reports (the gate adds it to its tail)."""
        self.stats = PortStats()
        self._out: deque[np.ndarray] = deque()
        self._stream: Any = None
        self._on_block: Callable[[np.ndarray, bool], None] | None = None
        self._on_end: Callable[[], None] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        def label(device: SoundDevice | None) -> str:
            return "default" if device is None else f"{device.index}:{device.name}"
        return f"{label(self.input_device)} -> {label(self.output_device)}"

    def start(self, on_block: Callable[[np.ndarray, bool], None], on_end: Callable[[], None]) -> None:
        """Open and start the stream; `on_block(mic, speaker_audible)` runs on PortAudio's thread.

        Raises:
            SoundDeviceError: a device refuses 16 kHz mono int16, or cannot be opened.
        """
        sd = _sounddevice()
        devices = (None if self.input_device is None else self.input_device.index,
                   None if self.output_device is None else self.output_device.index)
        self._on_block, self._on_end = on_block, on_end
        for kind, check, index in (("input", sd.check_input_settings, devices[0]),
                                   ("output", sd.check_output_settings, devices[1])):
            try:
                check(device=index, channels=1, dtype="int16", samplerate=RUNTIME_RATE_HZ)
            except (sd.PortAudioError, ValueError) as exc:
                raise SoundDeviceError(
                    f"the {kind} device {index if index is not None else '(default)'} refuses 16 kHz mono 16-bit "
                    f"audio ({exc}); choose the ALSA 'default', 'pulse' or a 'plughw:' device, which convert the "
                    "rate (`salesbot devices` lists them)") from None
        try:
            self._stream = sd.Stream(samplerate=RUNTIME_RATE_HZ, blocksize=FRAME_SAMPLES, device=devices, channels=1,
                                     dtype="int16", latency=self.latency, callback=self._callback,
                                     finished_callback=self._finished)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise SoundDeviceError(f"cannot open the sound devices {self.name} ({exc}); is another program "
                                   "using them? `salesbot devices` lists what PortAudio sees") from None
        latency = self._stream.latency
        self.latency_s = float(sum(latency)) if isinstance(latency, (tuple, list)) else float(latency)
        _LOGGER.info("sound devices %s open at %d Hz, latency %.0f ms", self.name, RUNTIME_RATE_HZ,
                     self.latency_s * 1000)

    def _callback(self, indata, outdata, frames, time, status) -> None:  # PortAudio's thread
        self.stats.blocks += 1
        if status.input_overflow:
            self.stats.input_overflows += 1
        if status.output_underflow:
            self.stats.output_underflows += 1
        try:
            frame = self._out.popleft()
        except IndexError:
            frame = None
        if frame is None or len(frame) != frames:
            outdata.fill(0)
            audible = False
        else:
            outdata[:, 0] = frame
            audible = levels.audible(frame)
        if self._on_block is not None:
            self._on_block(indata[:, 0].copy(), audible)

    def _finished(self) -> None:
        if self._on_end is not None:
            self._on_end()

    def play(self, frame: np.ndarray) -> None:
        """Queue one 20 ms frame (320 int16 samples) for the speaker; any thread."""
        self._out.append(frame)

    def queued(self) -> int:
        return len(self._out)

    def flush(self) -> None:
        """Drop the frames not yet handed to the card (barge-in)."""
        self._out.clear()

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            self._on_end = None
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # a device that vanished cannot be stopped cleanly; nothing left to do
                _LOGGER.debug("closing the sound stream: %s", exc)
