"""`salesbot chat | call | kb | script`: text-mode calls, knowledge, script checks.

Registered on the root group by edge/cli.py; thin commands over edge.dialog,
edge.kb and edge.calls.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from edge import config as _config
from edge.config import DATA_DIR, DEFAULT_INTENT_DIR, ENGINES
from edge.errors import InputError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
DEFAULT_LABELS = DATA_DIR / "intents.txt"


def load_classifier(cfg: _config.Config, bundle: Path | None, engine: str | None):
    """The intent model the calls use (tests replace this function)."""
    from edge.nlu import IntentModel

    return IntentModel.load(bundle or cfg.nlu.intent_bundle, engine=engine or cfg.nlu.engine,
                            threads=cfg.nlu.threads, threshold=cfg.nlu.threshold, device=cfg.nlu.device)


def open_knowledge(cfg: _config.Config, path: Path | None):
    """--kb, else [kb] database, else the built-in knowledge in memory."""
    from edge.kb import KnowledgeBase

    path = path or cfg.kb.database
    if path is None:
        return KnowledgeBase.builtin()
    if not Path(path).is_file():
        raise InputError(f"knowledge base {path} does not exist; create it with `salesbot kb import FILE --db {path}`")
    return KnowledgeBase.open(path, rrf_k=cfg.kb.rrf_k)


def parse_lead(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    parts = [p.strip() for p in value.replace("，", ",").split(",", 2)]
    if not parts[0]:
        raise click.BadParameter("give NAME,COMPANY (e.g. --lead 张总,华星科技)", param_hint="--lead")
    return {"lead_name": parts[0], "company": parts[1] if len(parts) > 1 else "",
            "phone": parts[2] if len(parts) > 2 else ""}


def parse_now(value: str | None, timezone: str) -> datetime:
    tz = ZoneInfo(timezone)
    if not value:
        return datetime.now(tz).replace(microsecond=0)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time such as 2025-03-05T14:20",
                                 param_hint="--now") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def call_options(command):
    """Options shared by `chat` and `call`."""
    options = [
        click.option("--lead", "lead", metavar="NAME,COMPANY[,PHONE]", help="Who is called (fills {lead_name} {company})."),
        click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML config file."),
        click.option("--script", "script_path", type=click.Path(path_type=Path), help="Script file (default: built-in)."),
        click.option("--kb", "kb_path", type=click.Path(path_type=Path), help="Knowledge base (default: built-in)."),
        click.option("--bundle", type=click.Path(path_type=Path), help="Intent bundle directory (default: built-in)."),
        click.option("--engine", type=click.Choice(ENGINES), help="Inference engine (default: from config)."),
        click.option("--records", "records_path", type=click.Path(path_type=Path),
                     help="Call records database (default: [records] database)."),
        click.option("--no-record", is_flag=True, help="Do not write call records."),
        click.option("--now", "now_text", metavar="ISO", help="Call time (default: now); makes runs repeatable."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _setup(lead, config_path, script_path, kb_path, bundle, engine, records_path, no_record):
    from edge.calls import Records
    from edge.dialog.engine import Dialogue
    from edge.dialog.llm import LlmPhraser
    from edge.dialog.script import Script

    cfg = _config.load(config_path)
    classifier = load_classifier(cfg, bundle, engine)
    script = Script.load(script_path or cfg.dialog.script, list(classifier.labels))
    phraser = LlmPhraser(cfg.llm.url, cfg.llm.model, cfg.llm.timeout_ms) if cfg.llm.url else None
    dialogue = Dialogue(script, classifier, knowledge=open_knowledge(cfg, kb_path), lead=parse_lead(lead),
                        timezone=cfg.dialog.timezone, phraser=phraser, max_answer_chars=cfg.dialog.max_answer_chars)
    records = None if no_record else Records.open(records_path or cfg.records.path(cfg.data.resolved()))
    return cfg, dialogue, records


def _print_summary(report: dict) -> None:
    click.echo(f"\noutcome: {report['outcome']}   grade: {report['grade']}   dnc: {'yes' if report['dnc'] else 'no'}")
    for task in report["tasks"]:
        contact = f" ({task['contact']})" if task.get("contact") else ""
        click.echo(f"task: {task['kind']} due {task['due']} by {task['channel']}{contact}")
    slots = {name: slot["value"] for name, slot in report["slots"].items() if slot["status"] != "denied"}
    if slots:
        click.echo("slots: " + ", ".join(f"{k}={v}" for k, v in slots.items()))


def register(root: click.Group) -> None:
    group_class = type(root)

    @root.command("call", context_settings=CONTEXT_SETTINGS)
    @click.option("--text", "text_file", type=click.Path(path_type=Path),
                  help="Text call. Caller file: one turn per line, empty line = silence, # comment, "
                       "~ = said over the bot.")
    @click.option("--simulate", "simulate_file", type=click.Path(path_type=Path),
                  help="Voice call with a simulated callee speaking this caller file (as for --text, plus "
                       "[interrupt] and [hangup]; see edge/data/demo/).")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                  help="With --simulate: write the call as a stereo WAV (callee left, bot right).")
    @click.option("--oracle-asr", is_flag=True,
                  help="With --simulate: tell the bot what the callee said instead of recognizing it.")
    @click.option("--json", "as_json", is_flag=True, help="Print the post-call JSON instead of the transcript.")
    @call_options
    def call(text_file, simulate_file, out, oracle_asr, as_json, lead, config_path, script_path, kb_path, bundle,
             engine, records_path, no_record, now_text):
        """Run a call against a scripted caller: as text, or as a simulated voice call; print the
        transcript, grade and tasks (and, for voice calls, what the ASR heard and per-turn latencies).

        \b
        Example:
            salesbot call --text caller.txt --lead 张总,华星科技
            salesbot call --text caller.txt --json --now 2025-03-05T14:20
            salesbot call --simulate edge/data/demo/meeting.txt --out call.wav
        """
        from edge.calls import read_caller_file, run_text_call

        if (text_file is None) == (simulate_file is None):
            raise click.UsageError("give one of --text FILE (a text call) or --simulate FILE (a voice call)")
        if simulate_file is not None:
            from edge.cli_voice import run_simulated

            cfg = _config.load(config_path)
            now = parse_now(now_text, cfg.dialog.timezone) if now_text else None
            run_simulated(cfg, simulate_file, out, as_json=as_json, lead=lead, now=now, records_path=records_path,
                          no_record=no_record, oracle=oracle_asr, bundle=bundle, engine=engine,
                          script_path=script_path, kb_path=kb_path)
            return
        if out is not None or oracle_asr:
            raise click.UsageError("--out and --oracle-asr go with --simulate")
        turns = read_caller_file(text_file)
        cfg, dialogue, records = _setup(lead, config_path, script_path, kb_path, bundle, engine, records_path,
                                        no_record)
        report = run_text_call(dialogue, turns, parse_now(now_text, cfg.dialog.timezone), records)
        if as_json:
            click.echo(json.dumps(report, ensure_ascii=False, indent=1))
            return
        for line in report["transcript"]:
            marker = "bot   " if line["speaker"] == "bot" else ("caller~" if line.get("overlap") else "caller")
            click.echo(f"{marker} {line['text'] or '(silence)'}")
        _print_summary(report)

    @root.command("chat", context_settings=CONTEXT_SETTINGS)
    @call_options
    def chat(lead, config_path, script_path, kb_path, bundle, engine, records_path, no_record, now_text):
        """Talk to the bot in the terminal: you are the callee.

        An empty line is silence, a line starting with ~ is said over the bot,
        Ctrl-D hangs up.

        \b
        Example:
            salesbot chat --lead 张总,华星科技
        """
        from edge.calls.outcome import summarize
        from edge.calls.report import post_call

        cfg, dialogue, records = _setup(lead, config_path, script_path, kb_path, bundle, engine, records_path,
                                        no_record)
        fixed_now = parse_now(now_text, cfg.dialog.timezone) if now_text else None
        opening = dialogue.start(fixed_now)
        call_id = "chat"
        if records is not None:
            call_id = records.start_call(dialogue.lead, dialogue.script.name, dialogue.script.version,
                                         dialogue.started_at.isoformat(timespec="seconds"))
        click.echo(f"bot> {opening.text}")
        while not dialogue.ended:
            click.echo("you> ", nl=False)
            line = sys.stdin.readline()
            if not line:
                click.echo()
                break
            line = line.rstrip("\n")
            overlap = line.startswith("~")
            reply = dialogue.hear(line[1:] if overlap else line, now=fixed_now, overlap=overlap)
            if records is not None:
                records.add_turn(call_id, dialogue.log[-1])
            if not reply.ignored:
                click.echo(f"bot> {reply.text}")
        ended = fixed_now or datetime.now(ZoneInfo(cfg.dialog.timezone))
        outcome = summarize(dialogue.script, dialogue.state, ended, dialogue.lexicon, dialogue.lead)
        report = post_call(call_id, dialogue, outcome, opening.text, ended)
        if records is not None:
            records.finish_call(call_id, report)
        _print_summary(report)

    @root.group("kb", cls=group_class, context_settings=CONTEXT_SETTINGS)
    def kb() -> None:
        """The knowledge base: import question/answer files, search them."""

    db_option = click.option("--db", "db_path", type=click.Path(path_type=Path),
                             help="Knowledge base file (default: [kb] database; for search: the built-in knowledge).")
    config_option = click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML config file.")

    @kb.command("import", context_settings=CONTEXT_SETTINGS)
    @click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
    @db_option
    @config_option
    @click.option("--prune", is_flag=True, help="Delete entries that came from the same file but are no longer in it.")
    def kb_import(files, db_path, config_path, prune):
        """Import CSV, JSONL or Markdown question/answer FILES (re-import is safe).

        CSV/JSONL fields: question, answer[, tags, source, aliases, id].
        Markdown: `## question` headings, the answer below, optional `tags:` line.

        \b
        Example:
            salesbot kb import products.csv faq.md --db kb.db
        """
        from edge.kb import KnowledgeBase

        cfg = _config.load(config_path)
        path = db_path or cfg.kb.database
        if path is None:
            raise click.UsageError("say where the knowledge base lives: --db kb.db (or [kb] database in the config)")
        knowledge = KnowledgeBase.open(path, rrf_k=cfg.kb.rrf_k)
        for file in files:
            report = knowledge.import_file(file, prune=prune)
            click.echo(f"{file}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
                       f"{report.removed} removed (knowledge version {report.version})")

    @kb.command("search", context_settings=CONTEXT_SETTINGS)
    @click.argument("query")
    @db_option
    @config_option
    @click.option("--tag", "tags", multiple=True, help="Only entries with this tag (repeatable).")
    @click.option("-k", "k", type=click.IntRange(1, 50), default=3, show_default=True, help="Results to show.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per result.")
    def kb_search(query, db_path, config_path, tags, k, as_json):
        """Search the knowledge base as the bot does during a call.

        \b
        Example:
            salesbot kb search "你们这个几多钱"
            salesbot kb search --db kb.db --tag 价格 "多少钱一年"
        """
        cfg = _config.load(config_path)
        knowledge = open_knowledge(cfg, db_path)
        hits = knowledge.search(query, tags=list(tags) or None, k=k)
        for rank, hit in enumerate(hits, 1):
            if as_json:
                click.echo(json.dumps({"rank": rank, **hit.__dict__}, ensure_ascii=False))
            else:
                click.echo(f"{rank}. [{hit.id}] {hit.question}  (score {hit.score:.4f})\n   {hit.answer}")
        if not hits and not as_json:
            click.echo("no match")

    @root.group("script", cls=group_class, context_settings=CONTEXT_SETTINGS)
    def script() -> None:
        """Scripts (话术): check one before using it."""

    @script.command("check", context_settings=CONTEXT_SETTINGS)
    @click.argument("file", required=False, type=click.Path(path_type=Path))
    @click.option("--bundle", type=click.Path(path_type=Path), default=None,
                  help="Check intents against this bundle's labels (default: the built-in bundle, else the "
                       "built-in label list).")
    def script_check(file, bundle):
        """List every problem in a script FILE (default: the built-in script).

        \b
        Example:
            salesbot script check my_script.yaml
        """
        from edge.dialog.script import Script
        from edge.dialog.validate import problems

        path = file or _config.DEFAULT_SCRIPT
        labels, where = _labels(bundle)
        parsed, lines = Script.parse(path)
        found = problems(parsed, labels, lines)
        for problem in found:
            click.echo(problem)
        if found:
            raise click.ClickException(f"{len(found)} problem(s) in {path}")
        click.echo(f"ok: {path}: {len(parsed.nodes)} nodes, {len(parsed.handlers)} global handlers, "
                   f"intents checked against {len(labels)} labels of {where}")


def _labels(bundle: Path | None) -> tuple[list[str], str]:
    from edge.bundle import Bundle

    root = bundle or DEFAULT_INTENT_DIR
    if bundle is not None or (root / "manifest.json").is_file():
        opened = Bundle.open(root, kind="intent", verify=False)
        return json.loads(opened.path("labels.json").read_text(encoding="utf-8")), str(root)
    lines = DEFAULT_LABELS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")], str(DEFAULT_LABELS)
