"""`salesbot call --simulate` and `salesbot demo`: whole simulated voice calls, audio in to audio out.

Thin over edge.calls.simulate; registered on the root group by edge/cli.py
(`call --simulate` is dispatched here from edge/cli_dialog.py).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import click

from edge import config as _config
from edge.config import DATA_DIR, DEFAULT_ASR_DIR, ENGINES
from edge.errors import ModelDirError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
DEMO_DIR: Final = DATA_DIR / "demo"
DEFAULT_DEMO: Final = "meeting"
MARKS: Final = ("asr_final", "nlu_done", "reply_chosen", "first_audio")


def load_runtime(cfg: _config.Config, *, bundle: Path | None = None, engine: str | None = None,
                 script_path: Path | None = None, kb_path: Path | None = None, oracle: bool = False):
    """The call runtime for a simulated call (model work inline, as the simulator needs)."""
    from edge import cli_dialog
    from edge.calls.oracle import OracleRecognizer
    from edge.calls.runtime import Runtime

    cfg.call.offload = False
    if script_path is not None:
        cfg.dialog.script = script_path
    classifier = cli_dialog.load_classifier(cfg, bundle, engine)
    recognizer = OracleRecognizer() if oracle else None
    try:
        return Runtime.load(cfg, recognizer=recognizer, classifier=classifier,
                            knowledge=cli_dialog.open_knowledge(cfg, kb_path))
    except ModelDirError as exc:
        raise ModelDirError(f"{exc}\nwithout a speech model, add --oracle-asr: the bot is then told what the "
                            "simulated callee said (checks the call loop, not recognition)") from None


def run_simulated(cfg: _config.Config, caller_file: Path, out: Path | None, *, as_json: bool, lead: str | None,
                  now: datetime | None, records_path: Path | None, no_record: bool, oracle: bool,
                  bundle: Path | None = None, engine: str | None = None, script_path: Path | None = None,
                  kb_path: Path | None = None) -> dict[str, Any]:
    """Run one simulated call and print it; returns the post-call JSON."""
    from edge.calls import Records
    from edge.calls.simcallee import read_callee_file
    from edge.calls.simulate import parse_lead, simulate

    script = read_callee_file(caller_file)
    runtime = load_runtime(cfg, bundle=bundle, engine=engine, script_path=script_path, kb_path=kb_path,
                           oracle=oracle)
    records = None if no_record else Records.open(records_path or cfg.records.path(cfg.data.resolved()))
    try:
        call = asyncio.run(simulate(runtime, script, lead=parse_lead(lead) if lead else None, now=now,
                                    records=records))
    finally:
        runtime.close()
    report = call.report
    report["voice"]["callee"] = [vars(said) for said in call.callee_log]
    if out is not None:
        call.write_wav(out)
        report["voice"]["wav"] = str(out)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
        return report
    for line in transcript_lines(report):
        click.echo(line)
    from edge.cli_dialog import _print_summary

    _print_summary(report)
    click.echo("")
    for line in latency_table(report["voice"]["latency_ms"]):
        click.echo(line)
    asr = report["voice"]["asr"]
    click.echo(f"\nASR: {asr.get('backend')} {asr.get('kind')}   call: {report['voice']['duration_s']} s, "
               f"ended by {report['voice']['end_reason']}")
    if out is not None:
        click.echo(f"wrote {out} (stereo 16 kHz: callee left, bot right)")
    return report


def transcript_lines(report: dict[str, Any]) -> list[str]:
    """The call as a timeline: what the callee said, what the bot heard and understood, what it said."""
    entries: list[tuple[float, int, str]] = [(0.0, 0, f"{0.0:6.1f}s bot      {report['transcript'][0]['text']}")]
    for said in report["voice"].get("callee", []):
        kind = said["kind"]
        if kind == "silence":
            text = "(stays silent)"
        elif kind == "hangup":
            text = "(hangs up)"
        else:
            text = said["text"]
        who = "callee~ " if kind == "interrupt" else "callee  "
        entries.append((said["at_s"], 1, f"{said['at_s']:6.1f}s {who} {text}"))
    for turn in report["turns"]:
        marks = turn["timings_ms"]
        heard_at = marks.get("speech_end_s", marks.get("no_input_at_s", 0.0))
        if turn["caller"]:
            verdict = " (backchannel: not a turn)" if turn["ignored"] else (" (barge-in)" if turn["barge_in"] else "")
            info = (f"heard: {turn['caller']} | intents: {' + '.join(turn['intents'])} | mood: {turn['mood']} | "
                    f"state: {turn['node']}{verdict}")
        else:
            info = f"no input for the silence time | state: {turn['node']}"
        entries.append((heard_at + 0.001, 2, f"{'':8}         {info}"))
        if turn["ignored"] or not turn["bot"]:
            continue
        wait = (marks.get("endpoint_silence", 0) + marks.get("first_audio", marks.get("reply_chosen", 0))) / 1000
        at = heard_at + wait
        entries.append((at, 3, f"{at:6.1f}s bot      {turn['bot']}"))
    return [text for _, _, text in sorted(entries, key=lambda e: (e[0], e[1]))]


def latency_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per-turn latency: ms after the endpoint (the caller's speech end plus the trailing silence)."""
    lines = ["turn latency, ms after the end of caller speech was detected (trailing silence not included):",
             f"{'turn':>4} {'silence':>7} {'asr':>7} {'nlu':>7} {'reply':>7} {'1st audio':>9}  heard"]
    firsts = []
    for row in rows:
        cells = [f"{row.get(m, float('nan')):7.1f}" for m in MARKS[:3]]
        first = row.get("first_audio")
        if first is not None and "no_input_at_s" not in row and "queued_behind_s" not in row:
            firsts.append(first)
        lines.append(f"{row['turn']:>4} {row.get('endpoint_silence', 0):>7} {' '.join(cells)} "
                     f"{first if first is not None else float('nan'):9.1f}  {row['caller'] or '(no input)'}")
    if firsts:
        lines.append(f"first audio p50 {_percentile(firsts, 0.5):.1f} ms, p95 {_percentile(firsts, 0.95):.1f} ms "
                     f"over {len(firsts)} answered turns")
    return lines


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def demo_files() -> dict[str, Path]:
    return {path.stem: path for path in sorted(DEMO_DIR.glob("*.txt"))}


def register(root: click.Group) -> None:
    @root.command("demo", context_settings=CONTEXT_SETTINGS)
    @click.option("--scenario", default=DEFAULT_DEMO, show_default=True,
                  help="Demo caller script under edge/data/demo/ (see --list), or a caller file path.")
    @click.option("--list", "list_only", is_flag=True, help="List the demo scenarios.")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("demo.wav"),
                  show_default=True, help="Stereo WAV of the call (callee left, bot right).")
    @click.option("--json", "as_json", is_flag=True, help="Print the post-call JSON with per-turn latencies.")
    @click.option("--oracle-asr", is_flag=True,
                  help="Tell the bot what the callee said instead of recognizing it (the default when no "
                       "speech model is installed).")
    @click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML config file.")
    @click.option("--engine", type=click.Choice(ENGINES), help="Intent inference engine (default: from config).")
    def demo(scenario, list_only, out, as_json, oracle_asr, config_path, engine):
        """A whole simulated sales call on the built-in models: a callee speaks through the built-in TTS
        and a phone line, the bot hears, decides and answers; prints the transcript, grade and latencies.

        \b
        Example:
            salesbot demo
            salesbot demo --scenario cantonese_callback --out yue.wav
            salesbot demo --list
        """
        files = demo_files()
        if list_only:
            for name, path in files.items():
                title = _title(path)
                click.echo(f"{name:24} {title}")
            return
        path = files.get(scenario) or Path(scenario)
        if not path.is_file():
            raise click.UsageError(f"no demo scenario {scenario!r}; choose one of: {', '.join(files)}")
        cfg = _config.load(config_path)
        oracle = oracle_asr
        if not oracle and not (Path(cfg.asr.model) / "manifest.json").is_file() and cfg.asr.model == DEFAULT_ASR_DIR:
            oracle = True
            click.echo("note: the built-in speech model is not installed here; the bot is told what the callee "
                       "said (--oracle-asr). Everything else is the real loop.\n", err=True)
        if not as_json:
            click.echo(f"demo: {_title(path) or path.stem}\n")
        run_simulated(cfg, path, out, as_json=as_json, lead=None, now=None, records_path=None, no_record=True,
                      oracle=oracle, engine=engine)


def _title(path: Path) -> str:
    from edge.calls.simcallee import read_callee_file

    return read_callee_file(path).directives.get("title", "")
