"""Sound devices for kiosk mode: PortAudio present, the configured devices found and able to do 16 kHz mono."""

from __future__ import annotations

from edge.config import Config
from edge.doctor.finding import Finding
from edge.errors import SoundDeviceError


def check(config: Config) -> list[Finding]:
    from edge.kiosk.sound import _sounddevice, find_device, list_devices

    wanted = config.kiosk.input is not None or config.kiosk.output is not None
    miss = "fail" if wanted else "skip"
    try:
        devices = list_devices()
    except SoundDeviceError as exc:
        return [Finding("sound", miss, f"{exc}" + ("" if wanted else " (needed only in kiosk mode)"), str(exc))]
    if not devices:
        return [Finding("sound", miss, "PortAudio sees no sound devices" + ("" if wanted else " (kiosk mode only)"),
                        "plug in a USB microphone/speaker; check `aplay -l`, that the service user is in group "
                        "'audio', and that the sound server (PipeWire/PulseAudio) runs for that user")]
    sd = _sounddevice()
    findings = []
    for kind, spec, probe in (("input", config.kiosk.input, sd.check_input_settings),
                              ("output", config.kiosk.output, sd.check_output_settings)):
        name = f"sound {kind}"
        try:
            device = find_device(spec, kind, devices)
        except SoundDeviceError as exc:
            findings.append(Finding(name, miss if spec is None else "fail", str(exc),
                                    f"set [kiosk] {kind} to a device `salesbot devices` lists"))
            continue
        index = None if device is None else device.index
        label = "PortAudio's default" if device is None else f"{device.index}: {device.name}"
        try:
            probe(device=index, channels=1, dtype="int16", samplerate=16000)
        except Exception as exc:  # PortAudioError or ValueError: the device refuses the format
            findings.append(Finding(name, "fail", f"{label} refuses 16 kHz mono 16-bit ({exc})",
                                    "use the ALSA 'default', 'pulse' or a 'plughw:' device, which convert the rate"))
            continue
        findings.append(Finding(name, "ok", f"{label} takes 16 kHz mono"))
    return findings
