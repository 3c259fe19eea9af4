"""`salesbot ...`: thin commands over the library."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from edge import __version__
from edge import config as config_module
from edge.config import ENGINES
from edge.errors import SalesbotError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _Group(click.Group):
    """Turns library errors into one clean line and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SalesbotError as exc:
            raise click.ClickException(str(exc)) from None


class _DefaultGroup(_Group):
    """A group whose first argument, if not a subcommand, goes to a default one
    (`salesbot intent "多少钱"` and `salesbot intent eval data.csv` both work)."""

    default_command = "classify"

    def parse_args(self, ctx, args):
        # Before click parses options: `intent --json TEXT` belongs to the default command too.
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="salesbot")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              envvar="SALESBOT_CONFIG", help="TOML config file (default: built-in defaults).")
@click.option("--debug", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """edge-salesbot: an offline appliance that makes and answers Chinese sales calls."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = config_module.load(config_path)


def _config(ctx: click.Context, bundle: Path | None = None, engine: str | None = None):
    """The loaded config, with command-line flags taking precedence."""
    config = ctx.find_root().obj or config_module.load(None)
    if bundle is not None:
        config.nlu.intent_bundle = bundle
    if engine is not None:
        config.nlu.engine = engine
    return config


bundle_option = click.option("--bundle", type=click.Path(path_type=Path), default=None,
                             help="Intent bundle directory (default: config, else the built-in one).")
engine_option = click.option("--engine", type=click.Choice(ENGINES), default=None,
                             help="Inference engine (default: config, else onnxruntime).")


@cli.group(cls=_DefaultGroup, context_settings=CONTEXT_SETTINGS)
def intent() -> None:
    """Classify caller utterances, or evaluate a bundle on labelled data."""


@intent.command("classify", context_settings=CONTEXT_SETTINGS)
@click.argument("texts", nargs=-1, required=True)
@bundle_option
@engine_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text: label, score, labels, scores.")
@click.pass_context
def intent_classify(ctx, texts: tuple[str, ...], bundle: Path | None, engine: str | None, as_json: bool) -> None:
    """Print the intents of each TEXT (trained and few-shot intents).

    \b
    Example:
        salesbot intent "喂 你们这个多少钱 能对接企业微信吗"
        salesbot intent --json "听日再打过嚟啦"
    """
    from edge.nlu import open_intents

    model = open_intents(_config(ctx, bundle, engine))
    for text, result in zip(texts, model.predict(list(texts))):
        if as_json:
            click.echo(json.dumps({"text": text, **result.to_dict()}, ensure_ascii=False))
        else:
            shown = " + ".join(f"{label} {result.scores[label]:.2f}" for label in result.labels)
            click.echo(f"{text}\t{shown}")


@intent.command("eval", context_settings=CONTEXT_SETTINGS)
@click.argument("csv_file", type=click.Path(path_type=Path))
@bundle_option
@engine_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Also write the full quality report (Markdown, JSON, confusion and reliability PNGs) here.")
@click.pass_context
def intent_eval(ctx, csv_file: Path, bundle: Path | None, engine: str | None, as_json: bool,
                report_dir: Path | None) -> None:
    """Accuracy, macro-F1 and per-intent F1 of a bundle on a labelled CSV
    (`transcript,intent_label[,dialect,family]`).

    \b
    Example:
        salesbot intent eval --bundle out/intent my_calls.csv
        salesbot intent eval my_calls.csv --report out/quality
    """
    from edge.nlu import open_intents
    from edge.nlu import report as quality_report
    from edge.nlu.labelled import read_csv
    from edge.nlu.metrics import evaluate, format_report

    examples = read_csv(csv_file)  # a bad file fails before the model loads
    model = open_intents(_config(ctx, bundle, engine))
    unknown = sorted({l for e in examples for l in e.labels} - set(model.labels))
    if unknown:
        click.echo(f"warning: labels the model does not know (always counted wrong): {unknown}", err=True)
    results = []
    batch = 64
    for start in range(0, len(examples), batch):
        results.extend(model.predict([e.text for e in examples[start:start + batch]]))
    other = getattr(model, "model", model).other_label
    report = evaluate([e.labels for e in examples], [r.labels for r in results], other)
    if report_dir is not None:
        quality_report.write(report_dir, examples, results, model.labels, other,
                             title=f"Intent model quality on {csv_file.name}")
        click.echo(f"report written to {report_dir}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        config = _config(ctx, bundle, engine)
        click.echo(format_report(report, title=f"{csv_file} on {config.nlu.intent_bundle} ({config.nlu.engine})"))


@intent.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--examples", "examples_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="UTF-8 text file, one example utterance per line (10-20 work best).")
@bundle_option
@click.pass_context
def intent_add(ctx, name: str, examples_file: Path, bundle: Path | None) -> None:
    """Add (or replace) a few-shot intent NAME from example utterances; no retraining.

    \b
    Example:
        salesbot intent add ask_invoice --examples invoice.txt
    """
    from edge.nlu import FewShotIntentModel, FewShotStore, IntentModel, fewshot_db

    config = _config(ctx, bundle)
    try:
        lines = examples_file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise click.ClickException(f"{examples_file}: not valid UTF-8") from None
    examples = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    model = IntentModel.load(config.nlu.intent_bundle, engine=config.nlu.engine)
    db = fewshot_db(config.data.resolved())
    db.parent.mkdir(parents=True, exist_ok=True)
    store = FewShotStore(db)
    intent = store.add(name, examples, known_labels=model.labels)
    fewshot = FewShotIntentModel(model, store)
    fewshot.embed(intent.examples[:1])  # fail now, not at call time, if the bundle can't
    click.echo(f"added few-shot intent {intent.name} ({len(intent.examples)} examples) to {db}")
    _echo_check(fewshot, intent.name)


def _echo_check(fewshot, name: str) -> None:
    """Each example left out of the prototype in turn: the ones that come back as another intent."""
    checks = fewshot.check_examples(name)
    strays = [c for c in checks if c.label != name]
    click.echo(f"self-check: {len(checks) - len(strays)}/{len(checks)} examples come back as {name} when each "
               "is left out of the prototype")
    for check in strays:
        click.echo(f"  {check.text} -> {check.label} ({check.score:.2f})")
    if strays:
        click.echo(f"  reword or drop these: turns like them will be answered as shown, not as {name}")


@intent.command("check", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@bundle_option
@click.pass_context
def intent_check(ctx, name: str, bundle: Path | None) -> None:
    """Classify each example of few-shot intent NAME with the others as its prototype (after a bundle update,
    say) and list those that come back as another intent.

    \b
    Example:
        salesbot intent check ask_invoice
    """
    from edge.nlu import FewShotIntentModel, FewShotStore, IntentModel, fewshot_db

    config = _config(ctx, bundle)
    db = fewshot_db(config.data.resolved())
    if not db.is_file():
        raise click.ClickException(f"no few-shot intent named {name!r}")
    model = IntentModel.load(config.nlu.intent_bundle, engine=config.nlu.engine)
    _echo_check(FewShotIntentModel(model, FewShotStore(db)), name)


@intent.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.pass_context
def intent_remove(ctx, name: str) -> None:
    """Remove a few-shot intent.

    \b
    Example:
        salesbot intent remove ask_invoice
    """
    from edge.nlu import FewShotStore, fewshot_db

    db = fewshot_db(_config(ctx).data.resolved())
    if not db.is_file() or not FewShotStore(db).remove(name):
        raise click.ClickException(f"no few-shot intent named {name!r}")
    click.echo(f"removed few-shot intent {name}")


@intent.command("list", context_settings=CONTEXT_SETTINGS)
@click.pass_context
def intent_list(ctx) -> None:
    """List the trained intents of the bundle and the few-shot intents added.

    \b
    Example:
        salesbot intent list
    """
    from edge.nlu import FewShotIntentModel, open_intents

    model = open_intents(_config(ctx))
    trained = model.model.labels if isinstance(model, FewShotIntentModel) else model.labels
    click.echo("trained: " + " ".join(trained))
    if isinstance(model, FewShotIntentModel):
        for intent in model.store.all():
            click.echo(f"few-shot: {intent.name} ({len(intent.examples)} examples, added {intent.created})")


@cli.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
def export() -> None:
    """Build model bundles (needs the [export] extra: torch, transformers, onnx, nncf), or export call records."""


@export.command("intent", context_settings=CONTEXT_SETTINGS)
@click.option("--corpus", "corpus", multiple=True, required=True, type=click.Path(exists=True),
              help="Labelled CSV file or directory of them (repeatable).")
@click.option("--test", "test_csv", type=click.Path(exists=True), default=None,
              help="Separate held-out CSV; default: a by-family split of the corpus.")
@click.option("--train-extra", "train_extra", multiple=True, type=click.Path(exists=True),
              help="CSV file or folder of rows that only join training (after the split; rows equal to a corpus "
                   "row are dropped). Repeatable.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Bundle directory to write.")
@click.option("--init", "init", type=click.Path(exists=True), default=None,
              help="Local transformers checkpoint to initialise the teacher from.")
@click.option("--teacher-epochs", type=int, default=6, show_default=True)
@click.option("--student-epochs", type=int, default=20, show_default=True)
@click.option("--max-per-intent", type=int, default=None, help="Subsample for a quick run.")
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--slim", is_flag=True, help="Keep only the INT8 models the runtime needs.")
@click.option("--slim-copy", type=click.Path(path_type=Path), default=None,
              help="Also write a runtime-only copy of the bundle here (how the built-in one is made).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def export_intent(corpus, test_csv, train_extra, out, init, teacher_epochs, student_epochs, max_per_intent, seed, slim,
                  slim_copy, no_progress) -> None:
    """Corpus -> teacher -> distilled student -> INT8 ONNX + OpenVINO bundle.

    \b
    Example:
        salesbot export intent --corpus export/data/intents --out out/intent
        salesbot export intent --corpus train.csv --test test.csv --out out/mine
    """
    try:
        from export.pipeline import ExportOptions, run, slim_copy as write_slim_copy, summary_table
    except ImportError as exc:
        raise click.ClickException(f"the export stage needs the [export] extra ({exc.name} is missing): "
                                   "pip install torch==2.13.0 && pip install -e '.[export]'") from None
    manifest = run(ExportOptions(corpus=list(corpus), out=str(out), test=test_csv, train_extra=list(train_extra),
                                 init=init, seed=seed,
                                 teacher_epochs=teacher_epochs, student_epochs=student_epochs,
                                 max_per_label=max_per_intent, slim=slim, progress=not no_progress))
    if slim_copy:
        write_slim_copy(out, slim_copy)
    click.echo(summary_table(manifest))
    click.echo(f"bundle: {out}  (threshold {manifest['decision']['threshold']}, "
               f"{manifest['build']['durations_s']['total']} s)")


@cli.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
def systemd() -> None:
    """Run the appliance as a systemd service."""


@systemd.command("install", context_settings=CONTEXT_SETTINGS)
@click.option("--prefix", type=click.Path(path_type=Path), default=None, show_default="this environment",
              help="Virtual environment whose bin/salesbot the unit runs.")
@click.option("--root", type=click.Path(path_type=Path), default=Path("/"), show_default=True,
              help="Install under this directory instead of / (staging, packaging).")
@click.option("--print", "print_only", is_flag=True, help="Print the unit instead of writing it.")
def systemd_install(prefix: Path | None, root: Path, print_only: bool) -> None:
    """Write /etc/systemd/system/edge-salesbot.service (and a commented
    /etc/edge-salesbot/config.toml if there is none); start nothing.

    \b
    Example:
        sudo /opt/edge-salesbot/bin/salesbot systemd install
        sudo systemctl daemon-reload && sudo systemctl enable --now edge-salesbot
    """
    from edge import systemd as unit

    if print_only:
        click.echo(unit.render_unit(prefix or unit.default_prefix()), nl=False)
        return
    result = unit.install(prefix, root)
    click.echo(f"wrote {result.unit_path}")
    click.echo(f"{'wrote' if result.config_written else 'kept existing'} {result.config_path}")
    click.echo("next: systemctl daemon-reload && systemctl enable --now edge-salesbot")


@cli.command("serve", context_settings=CONTEXT_SETTINGS)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML config file (overrides the one given before the command).")
@click.option("--audiosocket", metavar="HOST:PORT|off", default=None,
              help="Asterisk AudioSocket listen address (default: [telephony] audiosocket, 127.0.0.1:9092).")
@click.option("--websocket", metavar="HOST:PORT|off", default=None,
              help="WebSocket media listen address (default: [telephony] websocket, off).")
@click.option("--admin", metavar="HOST:PORT", default=None,
              help="Admin API address (default: [server] admin, 127.0.0.1:8080).")
@click.option("--handler", default=None, metavar="auto|echo|tone|MODULE:FACTORY",
              help="What runs each call (default: [server] handler, auto = the call loop when installed).")
@click.option("--max-calls", type=int, default=None, help="Calls at once over all transports (default 100).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="State directory: calls.db, admin.token (default: [data] dir, $STATE_DIRECTORY, ...).")
@click.option("--new-admin-token", is_flag=True,
              help="Print a new admin API token, store its hash, and exit (restart a running daemon to use it).")
@click.pass_context
def serve(ctx, config_path: Path | None, audiosocket: str | None, websocket: str | None, admin: str | None,
          handler: str | None, max_calls: int | None, data_dir: Path | None, new_admin_token: bool) -> None:
    """Run the appliance: take calls over AudioSocket and WebSocket media,
    serve the admin API (/health, /calls, /reload, /metrics) until SIGTERM.

    Logs are JSON lines on stdout. The admin API needs the bearer token that
    the first start prints once; DATA_DIR/admin.token keeps only its hash.

    \b
    Example:
        salesbot serve --config /etc/edge-salesbot/config.toml
        salesbot serve --handler echo --audiosocket 0.0.0.0:9092 --websocket off
        TOKEN=$(salesbot serve --new-admin-token)       # a new token (the old one stops working)
        curl -H "Authorization: Bearer $TOKEN" 127.0.0.1:8080/health
    """
    from edge.server.daemon import serve as run_daemon

    config = config_module.load(config_path) if config_path is not None else _config(ctx)
    if new_admin_token:
        from edge.server.admin_api import store_new_token

        if data_dir is not None:
            config.data.dir = data_dir
        click.echo(store_new_token(config.server.token_path(config.data.resolved())))
        return
    for key, value, scheme in (("audiosocket", audiosocket, "tcp"), ("websocket", websocket, "ws")):
        if value is not None:
            address = config_module.parse_host_port(value, f"--{key}") if "://" not in value else value
            setattr(config.telephony, key, address if address is None or isinstance(address, str)
                    else f"{scheme}://[{address[0]}]:{address[1]}" if ":" in address[0]
                    else f"{scheme}://{address[0]}:{address[1]}")
    for key, value in (("admin", admin), ("handler", handler), ("max_calls", max_calls)):
        if value is not None:
            setattr(config.server, key, value)
    if data_dir is not None:
        config.data.dir = data_dir
    config.server.validate()
    config.telephony.validate()
    sys.exit(run_daemon(config, debug=bool(ctx.find_root().params.get("debug"))))


def _register_dialog_commands() -> None:
    from edge import cli_dialog, cli_voice

    cli_dialog.register(cli)
    cli_voice.register(cli)


_register_dialog_commands()


def _register_kiosk_commands() -> None:
    from edge import cli_kiosk

    cli_kiosk.register(cli, CONTEXT_SETTINGS, _config)


_register_kiosk_commands()


def _register_campaign_commands() -> None:
    from edge import cli_campaign

    cli_campaign.register(cli)


_register_campaign_commands()


# --- speech: say / hear / models (edge.tts, edge.asr) ---------------------------------------------


@cli.command("say", context_settings=CONTEXT_SETTINGS)
@click.argument("text")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="WAV file to write.")
@click.option("--voice", default="cmn", show_default=True,
              help="cmn (Mandarin), yue (Cantonese), an espeak-ng variant like cmn+f3, or a piper .onnx path.")
@click.option("--speed", type=float, default=None, help="Speaking speed, 1.0 is normal.")
@click.option("--pitch", type=int, default=None, help="Base pitch 0-100 (built-in voices).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Prompt cache directory (default: none for this command).")
def say(text: str, out: Path, voice: str, speed: float | None, pitch: int | None, cache_dir: Path | None) -> None:
    """Speak TEXT into a 16 kHz mono WAV file.

    \b
    Example:
        salesbot say "您好，我是智销云的小王。" --out hello.wav
        salesbot say "听日再打畀你" --voice yue --out yue.wav
        salesbot say "您好" --voice voices/zh_CN-huayan-medium.onnx --out piper.wav
    """
    from edge import tts
    from edge.audio import write_wav
    from edge.config import TtsConfig

    synth = tts.open(TtsConfig(voice=voice, speed=speed, pitch=pitch, cache_dir=cache_dir))
    pcm = synth.synthesize(text)
    if len(pcm) == 0:
        raise click.ClickException("nothing to say: the text has no speakable characters")
    write_wav(out, pcm)
    click.echo(f"{out}\t{len(pcm) / 16000:.2f} s")


@cli.command("hear", context_settings=CONTEXT_SETTINGS)
@click.argument("wav", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="Model directory (default: the built-in Mandarin/Cantonese model).")
@click.option("--phrases", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Phrase list, one per line (vosk models).")
@click.option("--no-rescore", is_flag=True, help="Skip the bundle's homophone rescoring.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per final result, with timestamps.")
def hear(wav: Path, model: Path | None, phrases: Path | None, no_rescore: bool, as_json: bool) -> None:
    """Print what is said in WAV (PCM, any rate, mono or stereo).

    \b
    Example:
        salesbot hear call.wav
        salesbot hear --json --model ~/.local/share/edge-salesbot/models/vosk-model-small-cn-0.22 call.wav
    """
    from edge import asr
    from edge.audio import read_wav
    from edge.config import AsrConfig

    pcm = read_wav(wav)
    config = AsrConfig(phrases=phrases, rescore=not no_rescore)
    if model is not None:
        config.model = model
    finals = asr.transcribe(asr.open(config), pcm)
    if as_json:
        for result in finals:
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        click.echo(" ".join(result.text for result in finals))


@cli.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
def models() -> None:
    """Install and check speech models (sherpa-onnx, vosk, exported bundles)."""


@models.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Directory name to install under (default: from SOURCE).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where models live (default: $SALESBOT_DATA_DIR/models).")
@click.option("--force", is_flag=True, help="Replace an installed model of the same name.")
def models_add(source: Path, name: str | None, models_dir: Path | None, force: bool) -> None:
    """Check and install a model directory or archive (.tar.gz, .tar.bz2, .zip).

    \b
    Example:
        salesbot models add sherpa-onnx-paraformer-zh-2023-09-14.tar.bz2
        salesbot models add ./vosk-model-small-cn-0.22 --name vosk-cn
    """
    from edge.asr.install import add
    from edge.config import AsrConfig

    target, model = add(source, models_dir or AsrConfig().models_dir, name=name, force=force)
    click.echo(f"{target}\t{model.backend} {model.kind}")
    click.echo(f'use it with:  [asr] model = "{target}"   or   salesbot hear --model {target} x.wav')


@models.command("check", context_settings=CONTEXT_SETTINGS)
@click.argument("path", type=click.Path(path_type=Path))
def models_check(path: Path) -> None:
    """Say what kind of model PATH holds, or what is wrong with it.

    \b
    Example:
        salesbot models check edge/models/default/asr
    """
    from edge.asr.modeldir import inspect

    model = inspect(path)
    click.echo(f"{path}\t{model.backend} {model.kind}{' (streaming)' if model.streaming else ''}")


def main() -> None:
    # numpy's OpenBLAS would start a thread pool for every mid-sized matrix product (the telephony
    # resampler batches 100 calls into one): on 2 shared cores that costs ~20x. Set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cli(prog_name="salesbot")


if __name__ == "__main__":
    sys.exit(main())
