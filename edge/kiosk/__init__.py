"""Kiosk mode: the box's own microphone and speaker instead of a phone line.

A conversation starts with the push-to-talk key, a start phrase or a voice,
runs the handler the config selects (the voice call loop) on a `MediaCall`
whose transport is "kiosk", and ends on an idle timeout. A half-duplex gate
keeps the bot from hearing itself.

    stats = asyncio.run(Kiosk(SoundCardPort(), handler, config.kiosk, starters=[EnterKey()]).run())
"""

from edge.kiosk.gate import HalfDuplexGate
from edge.kiosk.handlers import build_handler
from edge.kiosk.port import AudioPort, LoopbackPort
from edge.kiosk.runner import Conversation, Kiosk, KioskStats
from edge.kiosk.sound import SoundCardPort, SoundDevice, find_device, list_devices
from edge.kiosk.triggers import EnterKey, PhraseSpotter, VoiceStart

__all__ = ["AudioPort", "Conversation", "EnterKey", "HalfDuplexGate", "Kiosk", "KioskStats", "LoopbackPort",
           "PhraseSpotter", "SoundCardPort", "SoundDevice", "VoiceStart", "build_handler", "find_device",
           "list_devices"]
