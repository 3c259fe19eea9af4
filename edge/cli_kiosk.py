"""`salesbot devices`, `salesbot kiosk`, `salesbot doctor`: the box's own hardware and installation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import click

from edge.config import KIOSK_HANDLERS, KIOSK_STARTS, Config

_LOGGER = logging.getLogger(__name__)


def register(cli: click.Group, context_settings: dict, get_config) -> None:
    """Add the commands to the `salesbot` group; `get_config(ctx)` returns the loaded Config."""

    @cli.command("devices", context_settings=context_settings)
    def devices() -> None:
        """List the sound devices PortAudio sees (for `salesbot kiosk --input/--output`).

        \b
        Example:
            salesbot devices
            salesbot kiosk --input "USB" --output 3
        """
        from edge.kiosk import list_devices

        found = list_devices()
        if not found:
            click.echo("no sound devices found (is the user in group 'audio'? is a sound server running?)")
            return
        click.echo("index  in  out  rate    api   name")
        for d in found:
            mark = ("<" if d.default_input else "") + (">" if d.default_output else "")
            click.echo(f"{d.index:>5} {d.max_input_channels:>3} {d.max_output_channels:>4}  "
                       f"{d.default_samplerate_hz:>6.0f}  {d.hostapi:<5} {d.name}" + (f" {mark}" if mark else ""))
        click.echo("< default input, > default output; name or index go in [kiosk] input/output")

    @cli.command("kiosk", context_settings=context_settings)
    @click.option("--input", "input_device", default=None, help="Microphone: index or part of its name.")
    @click.option("--output", "output_device", default=None, help="Speaker: index or part of its name.")
    @click.option("--start", type=click.Choice(KIOSK_STARTS), default=None,
                  help="How a conversation starts (default: [kiosk] start, else enter).")
    @click.option("--handler", type=click.Choice(KIOSK_HANDLERS), default=None,
                  help="What talks (default: [kiosk] handler, else the call loop if installed).")
    @click.option("--idle-timeout", type=float, default=None,
                  help="Seconds of visitor silence that end a conversation.")
    @click.option("--conversations", type=int, default=None, help="Stop after this many conversations.")
    @click.pass_context
    def kiosk(ctx, input_device, output_device, start, handler, idle_timeout, conversations) -> None:
        """Talk to visitors through this machine's microphone and speaker.

        Press Enter to start a conversation (and again to end it), or say a start
        phrase (--start phrase); it also ends after --idle-timeout seconds of silence.
        The bot's own voice is gated out of the microphone. Ctrl-C quits.

        \b
        Example:
            salesbot kiosk --input USB --output USB
            salesbot kiosk --start voice --idle-timeout 15
        """
        config = get_config(ctx)
        options = config.kiosk
        for key, value in (("input", input_device), ("output", output_device), ("start", start),
                           ("handler", handler), ("idle_timeout_s", idle_timeout)):
            if value is not None:
                setattr(options, key, value)
        if options.max_conversation_s < options.idle_timeout_s:
            options.max_conversation_s = options.idle_timeout_s
        options.validate()
        stats = run_kiosk(config, conversations)
        for c in stats.conversations:
            length = (c.ended_s or c.started_s) - c.started_s
            click.echo(f"{c.call_id}  {c.trigger:<6} {length:6.1f} s  {c.end_detail:<14} "
                       f"bot {c.frames_out * 0.02:5.1f} s  gated {c.frames_gated * 0.02:5.1f} s"
                       + (f"  error: {c.handler_error}" if c.handler_error else ""))

    @cli.command("doctor", context_settings=context_settings)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
    @click.option("--no-sound", is_flag=True, help="Skip the sound device checks (a box without a kiosk).")
    @click.pass_context
    def doctor(ctx, as_json: bool, no_sound: bool) -> None:
        """Check this installation end to end; print what is wrong and how to fix it.

        Exit status 1 when any check fails (warnings alone exit 0).

        \b
        Example:
            salesbot doctor
            salesbot --config /etc/edge-salesbot/config.toml doctor --json
        """
        import json

        from edge import doctor as checks

        findings = checks.run(get_config(ctx), sound=not no_sound)
        if as_json:
            for finding in findings:
                click.echo(json.dumps(finding.to_dict(), ensure_ascii=False))
        else:
            click.echo(checks.format_report(findings))
        if any(f.status == "fail" for f in findings):
            ctx.exit(1)


def _starters(config: Config) -> list:
    from edge.kiosk import EnterKey, PhraseSpotter, VoiceStart
    from edge.kiosk.triggers import load_start_words

    start = config.kiosk.start
    starters: list = []
    if start in ("enter", "both"):
        starters.append(EnterKey())
    if start == "voice":
        starters.append(VoiceStart())
    if start in ("phrase", "both"):
        phrases, intents = load_start_words()
        starters.append(PhraseSpotter(_transcriber(config), phrases, classify=_classifier(config), intents=intents))
    return starters


def _transcriber(config: Config):
    """pcm16 -> text through the configured speech recognizer (edge.asr), when this install has one."""
    import importlib.util

    from edge.errors import ConfigError

    if importlib.util.find_spec("edge.asr") is None:
        raise ConfigError("kiosk.start = \"phrase\" needs the speech recognizer (edge.asr), which this install does "
                          "not have; use start = \"enter\" (push-to-talk) or \"voice\"")
    from edge import asr

    recognizer = asr.open(getattr(config, "asr", None))
    return lambda pcm: "".join(r.text for r in asr.transcribe(recognizer, pcm))


def _classifier(config: Config):
    """text -> intent labels, or None when no intent bundle loads (the phrase list still works)."""
    from edge.errors import SalesbotError
    from edge.nlu import open_intents

    try:
        model = open_intents(config)
    except SalesbotError as exc:
        _LOGGER.warning("start intents off (%s); the start phrases still work", exc)
        return None
    return lambda text: model.predict([text])[0].labels


def run_kiosk(config: Config, max_conversations: int | None = None):
    """Open the devices and handler the config names and run until Ctrl-C (or max_conversations)."""
    from edge.kiosk import Kiosk, SoundCardPort, build_handler, find_device

    port = SoundCardPort(find_device(config.kiosk.input, "input"), find_device(config.kiosk.output, "output"))
    handler, name = build_handler(config)
    kiosk = Kiosk(port, handler, config.kiosk, starters=_starters(config))
    how = {"enter": "press Enter to talk (Enter again ends)", "voice": "speak to start",
           "phrase": "say a start phrase such as 你好", "both": "press Enter or say 你好"}[config.kiosk.start]
    click.echo(f"kiosk on {port.name} with the {name} handler: {how}; Ctrl-C quits", err=True)

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, kiosk.stop)
        return await kiosk.run(max_conversations)

    stats = asyncio.run(main())
    sys.stdout.flush()
    return stats
