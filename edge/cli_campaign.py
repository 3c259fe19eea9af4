"""`salesbot leads | dnc | campaign | export calls | report | retention | dashboard`.

Registered on the root group by edge/cli.py; thin commands over edge.calls
(campaigns, leads, DNC, export, ROI, retention) and edge.server (the dashboard).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from datetime import datetime
from pathlib import Path

import click

from edge import config as _config

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

records_option = click.option("--records", "records_path", type=click.Path(path_type=Path), default=None,
                              help="Call records database (default: [records] database, else "
                                   "$SALESBOT_DATA_DIR/calls.db).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
unmask_option = click.option("--unmask", is_flag=True, help="Show phone numbers in full (they are masked by default).")


def _cfg(ctx: click.Context) -> _config.Config:
    return ctx.find_root().obj or _config.load(None)


def _records(ctx: click.Context, path: Path | None):
    from edge.calls import Records

    cfg = _cfg(ctx)
    return Records.open(path or cfg.records.path(cfg.data.resolved()))


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _when(value: str | None, timezone: str) -> datetime:
    from edge.cli_dialog import parse_now

    return parse_now(value, timezone)


def build_dialogues(cfg: _config.Config, settings, classifier=None):
    """Lead variables -> Dialogue for one campaign, with the intent model and knowledge the CLI uses."""
    from edge.calls.placers import build_dialogues as build
    from edge.cli_dialog import load_classifier, open_knowledge

    return build(cfg, settings, classifier or load_classifier(cfg, None, None), open_knowledge(cfg, None))


def register(root: click.Group) -> None:
    group_class = type(root)

    # ---- leads ------------------------------------------------------------------------------------

    @root.group("leads", cls=group_class, context_settings=CONTEXT_SETTINGS)
    def leads() -> None:
        """Lead lists: import a CSV into a campaign, list leads with grades and follow-ups."""

    @leads.command("import", context_settings=CONTEXT_SETTINGS)
    @click.argument("file", type=click.Path(path_type=Path))
    @click.option("--campaign", "campaign_name", required=True, help="Campaign to add the leads to (created if new).")
    @click.option("--encoding", default=None, help="Force the file's encoding (utf-8, gbk); default: detected.")
    @click.option("--area-code", default=None, help="Area code for landline numbers written without one (021).")
    @json_option
    @records_option
    @click.pass_context
    def leads_import(ctx, file, campaign_name, encoding, area_code, as_json, records_path):
        """Import a lead list (CSV from Excel or a CRM: UTF-8, UTF-8 with BOM or GBK).

        Columns: phone (电话/手机), name (姓名), company (公司), tags (标签), timezone;
        any other column becomes a script variable. Prints accepted / rejected
        counts and each rejection with its line and reason.

        \b
        Example:
            salesbot leads import leads.csv --campaign 三月华东
            salesbot leads import 客户.csv --campaign 三月华东 --area-code 021 --json
        """
        from edge.calls import campaign as _campaign
        from edge.calls.leads import import_leads

        records = _records(ctx, records_path)
        campaign, created = _campaign.get_or_create(records.db, campaign_name, actor=actor())
        size = file.stat().st_size if file.is_file() else 0
        bar = None
        if not as_json and sys.stderr.isatty() and size > 1_000_000:
            bar = click.progressbar(length=size, label="importing", file=sys.stderr)
            bar.__enter__()
        done = [0]

        def progress(read: int) -> None:
            if bar is not None:
                bar.update(read - done[0])
            done[0] = read

        try:
            report = import_leads(records.db, campaign.id, campaign.name, file, encoding=encoding,
                                  default_area_code=area_code or campaign.settings.default_area_code,
                                  progress=progress)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        if as_json:
            click.echo(json.dumps({**report.to_dict(), "campaign_created": created}, ensure_ascii=False, indent=1))
            return
        if created:
            click.echo(f"created campaign {campaign.name} (draft, default settings)")
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        click.echo(f"{file}: {report.accepted} accepted, {report.rejected} rejected ({report.encoding}, "
                   f"{report.delimiter}-separated)")
        if report.variables:
            click.echo("script variables: " + ", ".join(report.variables))
        shown = 50
        for rejection in report.rejections[:shown]:
            click.echo(f"line {rejection.line}: {rejection.reason}")
        if report.rejected > shown:
            click.echo(f"... and {report.rejected - shown} more (--json lists them all)")

    @leads.command("list", context_settings=CONTEXT_SETTINGS)
    @click.option("--campaign", "campaign_name", required=True)
    @click.option("--grade", type=click.Choice(list("ABCDE")), default=None)
    @click.option("--status", default=None, help="pending, retry, callback, done, exhausted, dnc, failed.")
    @click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
    @json_option
    @unmask_option
    @records_option
    @click.pass_context
    def leads_list(ctx, campaign_name, grade, status, limit, as_json, unmask, records_path):
        """List a campaign's leads, best grades first, with their follow-up tasks.

        \b
        Example:
            salesbot leads list --campaign 三月华东 --grade A
        """
        from edge.calls import campaign as _campaign
        from edge.calls.query import list_leads

        records = _records(ctx, records_path)
        campaign = _campaign.get(records.db, campaign_name)
        rows = list_leads(records.db, campaign.id, grade=grade, status=status, limit=limit, unmask=unmask)
        for row in rows:
            if as_json:
                click.echo(json.dumps(row, ensure_ascii=False))
                continue
            tasks = "; ".join(f"{t['kind']} {t['due']}" for t in row["tasks"])
            click.echo(f"{row['grade'] or '-'}  {row['status']:<9} {row['phone']:<16} {row['name']} "
                       f"{row['company']}  {tasks}".rstrip())

    # ---- dnc --------------------------------------------------------------------------------------

    @root.group("dnc", cls=group_class, context_settings=CONTEXT_SETTINGS)
    def dnc() -> None:
        """The do-not-call list: checked before every dial; every change is audited."""

    @dnc.command("add", context_settings=CONTEXT_SETTINGS)
    @click.argument("number")
    @click.option("--reason", default="", help="Why (kept in the audit trail).")
    @records_option
    @click.pass_context
    def dnc_add(ctx, number, reason, records_path):
        """Put NUMBER on the do-not-call list (any spelling: 138 0013 8000, +86...).

        \b
        Example:
            salesbot dnc add 13800138000 --reason "asked by email"
        """
        from edge.calls import dnc as _dnc
        from edge.calls.phone import key as phone_key
        from edge.telephony.privacy import mask_phone

        records = _records(ctx, records_path)
        added = _dnc.add(records.db, number, actor=actor(), reason=reason)
        click.echo(f"{'added' if added else 'already listed'}: {mask_phone(phone_key(number))}")

    @dnc.command("remove", context_settings=CONTEXT_SETTINGS)
    @click.argument("number")
    @click.option("--reason", required=True, help="Why it comes off (kept in the audit trail).")
    @records_option
    @click.pass_context
    def dnc_remove(ctx, number, reason, records_path):
        """Take NUMBER off the do-not-call list.

        \b
        Example:
            salesbot dnc remove 13800138000 --reason "customer asked to be called (ticket 4711)"
        """
        from edge.calls import dnc as _dnc
        from edge.calls.phone import key as phone_key
        from edge.telephony.privacy import mask_phone

        records = _records(ctx, records_path)
        if not _dnc.remove(records.db, number, actor=actor(), reason=reason):
            raise click.ClickException(f"{mask_phone(phone_key(number))} is not on the do-not-call list")
        click.echo(f"removed: {mask_phone(phone_key(number))}")

    @dnc.command("list", context_settings=CONTEXT_SETTINGS)
    @click.argument("number", required=False)
    @click.option("--audit", "show_audit", is_flag=True, help="Show the audit trail of DNC changes instead.")
    @json_option
    @unmask_option
    @records_option
    @click.pass_context
    def dnc_list(ctx, number, show_audit, as_json, unmask, records_path):
        """List the do-not-call numbers (or those matching NUMBER's digits).

        \b
        Example:
            salesbot dnc list
            salesbot dnc list 8000 --unmask
            salesbot dnc list --audit
        """
        from edge.calls import audit as _audit
        from edge.calls import dnc as _dnc
        from edge.telephony.privacy import mask_phone

        records = _records(ctx, records_path)
        if show_audit:
            for entry in _audit.entries(records.db, prefix="dnc."):
                click.echo(json.dumps(entry, ensure_ascii=False) if as_json else
                           f"{entry['at']}  {entry['action']:<10} {entry['target']:<16} {entry['actor']}  "
                           f"{entry['detail'].get('reason', '')}")
            return
        for entry in _dnc.entries(records.db, search=number):
            key = entry.key if unmask else mask_phone(entry.key)
            if as_json:
                click.echo(json.dumps({**entry.__dict__, "key": key}, ensure_ascii=False))
            else:
                click.echo(f"{key:<16} {entry.at}  {entry.source:<7} {entry.note}")

    @dnc.command("import", context_settings=CONTEXT_SETTINGS)
    @click.argument("file", type=click.Path(path_type=Path))
    @click.option("--reason", default="imported", show_default=True)
    @records_option
    @click.pass_context
    def dnc_import(ctx, file, reason, records_path):
        """Add every number in FILE (first column of a CSV, or one per line).

        \b
        Example:
            salesbot dnc import complaints.csv --reason "carrier complaint list 2025-03"
        """
        from edge.calls import dnc as _dnc

        result = _dnc.import_file(_records(ctx, records_path).db, file, actor=actor(), reason=reason)
        click.echo(f"{file}: {result['added']} added, {result['already']} already listed, "
                   f"{len(result['rejected'])} rejected")
        for item in result["rejected"][:50]:
            click.echo(f"line {item['line']}: {item['reason']}")

    # ---- campaign ---------------------------------------------------------------------------------

    @root.group("campaign", cls=group_class, context_settings=CONTEXT_SETTINGS)
    def campaign() -> None:
        """Campaigns: create, run (simulated or through the PBX), pause, resume."""

    @campaign.command("create", context_settings=CONTEXT_SETTINGS)
    @click.argument("name")
    @click.option("--settings", "settings_text", default=None, metavar="JSON|@FILE",
                  help="Campaign settings as JSON, or @file.json (see `campaign show`).")
    @click.option("--sender", default=None, help="Who is calling, said in the disclosure.")
    @click.option("--hours", default=None, metavar="DAYS=WINDOWS",
                  help='Calling hours, e.g. "mon-fri=09:00-12:00,13:30-18:00;sat=10:00-12:00".')
    @click.option("--timezone", default=None, help="IANA zone of the hours (default Asia/Shanghai).")
    @records_option
    @click.pass_context
    def campaign_create(ctx, name, settings_text, sender, hours, timezone, records_path):
        """Create a campaign (status draft).

        \b
        Example:
            salesbot campaign create 三月华东 --sender 智销云 --hours "mon-sat=09:00-12:00,13:30-18:00"
        """
        from edge.calls import campaign as _campaign

        settings = _settings_arg(settings_text)
        if sender is not None:
            settings["sender"] = sender
        if timezone is not None:
            settings["timezone"] = timezone
        if hours is not None:
            settings["hours"] = _hours_arg(hours)
        created = _campaign.create(_records(ctx, records_path).db, name, settings, actor=actor())
        click.echo(f"created campaign {created.name}")

    @campaign.command("list", context_settings=CONTEXT_SETTINGS)
    @json_option
    @records_option
    @click.pass_context
    def campaign_list(ctx, as_json, records_path):
        """List campaigns with their status and lead counts.

        \b
        Example:
            salesbot campaign list
        """
        from edge.calls import campaign as _campaign

        db = _records(ctx, records_path).db
        for item in _campaign.all_campaigns(db):
            counts = _campaign.lead_counts(db, item.id)
            if as_json:
                click.echo(json.dumps({"name": item.name, "status": item.status, "leads": counts}, ensure_ascii=False))
            else:
                shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no leads"
                click.echo(f"{item.name:<20} {item.status:<8} {shown}")

    @campaign.command("show", context_settings=CONTEXT_SETTINGS)
    @click.argument("name")
    @records_option
    @click.pass_context
    def campaign_show(ctx, name, records_path):
        """Print a campaign's settings and lead counts as JSON.

        \b
        Example:
            salesbot campaign show 三月华东
        """
        from edge.calls import campaign as _campaign

        db = _records(ctx, records_path).db
        item = _campaign.get(db, name)
        click.echo(json.dumps({**item.to_dict(), "leads": _campaign.lead_counts(db, item.id)}, ensure_ascii=False,
                              indent=1))

    def _status_command(command_name: str, status: str, verb: str):
        @campaign.command(command_name, context_settings=CONTEXT_SETTINGS,
                          help=f"{verb.capitalize()} campaign NAME (status {status}).\n\n\b\nExample:\n"
                               f"    salesbot campaign {command_name} 三月华东")
        @click.argument("name")
        @records_option
        @click.pass_context
        def set_status(ctx, name, records_path):
            from edge.calls import campaign as _campaign

            _campaign.set_status(_records(ctx, records_path).db, name, status, actor=actor())
            click.echo(f"{verb} {name}")

    _status_command("pause", "paused", "paused")
    _status_command("resume", "running", "resumed")

    @campaign.command("run", context_settings=CONTEXT_SETTINGS)
    @click.argument("name")
    @click.option("--simulate", is_flag=True, help="Call simulated callees through the text dialogue engine.")
    @click.option("--callers", "callers_dir", type=click.Path(path_type=Path), default=None,
                  help="Directory of caller files (*.txt) for --simulate (default: the built-in callers).")
    @click.option("--now", "now_text", metavar="ISO", help="Pretend it is this time (default: now).")
    @click.option("--until", "until_text", metavar="ISO",
                  help="With --simulate: go on in simulated time up to here (retries, callbacks, next days).")
    @click.option("--ami", "ami_uri", metavar="tcp://HOST:PORT", default=None,
                  help="Dial through Asterisk AMI instead (secret in $SALESBOT_AMI_SECRET).")
    @click.option("--ami-user", default="salesbot", show_default=True)
    @json_option
    @records_option
    @click.pass_context
    def campaign_run(ctx, name, simulate, callers_dir, now_text, until_text, ami_uri, ami_user, as_json,
                     records_path):
        """Dial the campaign's due leads, honouring calling hours, the DNC list and retries.

        \b
        Example:
            salesbot campaign run 三月华东 --simulate --now 2025-03-05T09:00
            salesbot campaign run 三月华东 --simulate --callers my_callers/ --until 2025-03-07T18:00
        """
        from edge.calls import campaign as _campaign

        if simulate == bool(ami_uri):
            raise click.UsageError("say how to dial: --simulate (text simulator) or --ami tcp://HOST:PORT")
        if until_text and not simulate:
            raise click.UsageError("--until only works with --simulate (it moves a simulated clock)")
        cfg = _cfg(ctx)
        records = _records(ctx, records_path)
        item = _campaign.get(records.db, name)
        now = _when(now_text, item.settings.timezone)
        until = _when(until_text, item.settings.timezone) if until_text else None
        if simulate:
            summary = asyncio.run(_simulate(cfg, records, item, now, until, callers_dir))
        else:
            summary = asyncio.run(_dial_ami(cfg, records, item, now, ami_uri, ami_user))
        if as_json:
            click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=1))
            return
        shown = ", ".join(f"{k} {v}" for k, v in summary.dispositions.most_common()) or "none"
        click.echo(f"{summary.placed} calls placed: {shown}")
        if summary.outcomes:
            click.echo("outcomes: " + ", ".join(f"{k} {v}" for k, v in summary.outcomes.most_common()))
        click.echo(f"retries booked {summary.retries_booked}, callbacks booked {summary.callbacks_booked}, "
                   f"finished without reaching {summary.exhausted}, not dialled (DNC) {summary.blocked_dnc}, "
                   f"deferred to calling hours {summary.deferred}")
        for error in summary.errors[:10]:
            click.echo(f"error: {error}", err=True)
        if summary.next_due:
            click.echo(f"next due: {summary.next_due}  (campaign {summary.status})")
        else:
            click.echo(f"campaign {summary.status}")

    # ---- export, report, retention ----------------------------------------------------------------

    export_group = root.commands.get("export")
    if export_group is not None:
        export_group.add_command(_export_calls, "calls")
        export_group.add_command(_export_call, "call")
    root.add_command(_report, "report")

    @root.group("retention", cls=group_class, context_settings=CONTEXT_SETTINGS)
    def retention() -> None:
        """Personal data retention: purge old transcripts, recordings and contacts."""

    @retention.command("purge", context_settings=CONTEXT_SETTINGS)
    @click.option("--days", type=int, default=None, help="Retention period (default: [compliance] retention_days).")
    @click.option("--now", "now_text", metavar="ISO", default=None)
    @click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
    @records_option
    @click.pass_context
    def retention_purge(ctx, days, now_text, dry_run, records_path):
        """Remove personal data of calls older than the retention period; aggregates and the DNC list stay.

        \b
        Example:
            salesbot retention purge --dry-run
            salesbot retention purge --days 90
        """
        from edge.calls.retention import purge

        cfg = _cfg(ctx)
        report = purge(_records(ctx, records_path).db, now=_when(now_text, cfg.dialog.timezone),
                       days=days or cfg.compliance.retention_days,
                       recordings_dir=cfg.compliance.recordings(cfg.data.resolved()), dry_run=dry_run)
        verb = "would purge" if dry_run else "purged"
        click.echo(f"{verb}: {report.calls} calls, {report.leads} leads, {report.recordings} recordings "
                   f"(started before {report.cutoff})")

    @root.command("dashboard", context_settings=CONTEXT_SETTINGS)
    @click.option("--admin", default=None, metavar="HOST:PORT",
                  help="Where to listen (default: [server] admin, 127.0.0.1:8080).")
    @click.option("--callers", "callers_dir", type=click.Path(path_type=Path), default=None,
                  help="Caller files for campaigns started on the dashboard (simulated; default: built-in).")
    @click.option("--pace", type=float, default=None, help="Seconds between simulated turns (default: [server]).")
    @click.option("--reset-password", is_flag=True, help="Make a new admin password, print it once, and exit.")
    @records_option
    @click.pass_context
    def dashboard(ctx, admin, callers_dir, pace, reset_password, records_path):
        """Run the admin dashboard (login, live calls, campaigns, leads, DNC, knowledge, ROI).

        The first start makes an admin password and an API token, prints them
        once and keeps only their hashes in the data directory.

        \b
        Example:
            salesbot dashboard
            salesbot dashboard --admin 127.0.0.1:9000
        """
        from edge.cli_dialog import load_classifier
        from edge.server import auth
        from edge.server.run import serve

        cfg = _cfg(ctx)
        if reset_password:
            password = auth.Credentials.reset(cfg.data.resolved())
            from edge.calls import audit

            records = _records(ctx, records_path)  # a credential change belongs in the audit trail
            audit.record(records.db, actor(), "auth.password_reset", auth.USER)
            records.close()
            click.echo(f"new admin password (shown once): {password}")
            return
        serve(cfg, classifier=load_classifier(cfg, None, None), admin=admin, records_path=records_path,
              callers_dir=callers_dir, pace_s=pace, echo=click.echo)


async def _simulate(cfg, records, item, now, until, callers_dir):
    from edge.calls.callers import CallerBook
    from edge.calls.placers import TextCallPlacer
    from edge.calls.runner import CampaignRunner

    placer = TextCallPlacer(records, item, build_dialogues(cfg, item.settings), CallerBook.load(callers_dir))
    return await CampaignRunner(records, item.name, placer, actor=actor()).run(now, until)


async def _dial_ami(cfg, records, item, now, uri, user):
    import os

    from edge.calls.placers import AmiCallPlacer
    from edge.calls.runner import CampaignRunner
    from edge.telephony.ami import AmiClient

    secret = os.environ.get("SALESBOT_AMI_SECRET")
    if not secret:
        raise click.UsageError("set $SALESBOT_AMI_SECRET to the AMI user's secret (manager.conf)")
    async with await AmiClient.connect(uri, user, secret) as client:
        # the daemon cuts a call at its budget; past that and a minute it is gone (see AmiCallPlacer)
        placer = AmiCallPlacer(records, item, client, script=item.settings.script or "",
                               talk_timeout_s=cfg.server.call_budget_s + 60)
        return await CampaignRunner(records, item.name, placer, actor=actor()).run(now)


def _settings_arg(text: str | None) -> dict:
    if not text:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {text[1:]}: {exc.strerror}", param_hint="--settings") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--settings") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--settings")
    return value


def _hours_arg(text: str) -> dict[str, str]:
    from edge.calls.schedule import parse_hours_spec

    return parse_hours_spec(text)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--campaign", "campaign_name", default=None, help="Only this campaign (default: all calls).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--from", "since", metavar="YYYY-MM-DD", default=None, help="First day (the call's local date).")
@click.option("--to", "until", metavar="YYYY-MM-DD", default=None, help="Last day, inclusive.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="File to write (default: stdout).")
@click.option("--no-transcripts", is_flag=True, help="Leave the transcripts out.")
@unmask_option
@records_option
@click.pass_context
def _export_calls(ctx, campaign_name, fmt, since, until, out, no_transcripts, unmask, records_path):
    """Export calls for a CRM as CSV (Excel-safe, UTF-8 with BOM) or JSON.

    \b
    Example:
        salesbot export calls --campaign 三月华东 --format csv --out calls.csv
        salesbot export calls --campaign 三月华东 --format json --from 2025-03-01 --to 2025-03-31
    """
    from edge.calls import campaign as _campaign
    from edge.calls.export import export_calls
    from edge.calls.query import CallFilter

    records = _records(ctx, records_path)
    if campaign_name:
        _campaign.get(records.db, campaign_name)
    filters = CallFilter(campaign=campaign_name, since=since, until=until)
    if out is None:
        count = export_calls(records.db, sys.stdout, fmt, filters, unmask=unmask, transcripts=not no_transcripts)
    else:
        with open(out, "w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as handle:
            count = export_calls(records.db, handle, fmt, filters, unmask=unmask, transcripts=not no_transcripts)
    click.echo(f"{count} calls exported{f' to {out}' if out else ''}", err=True)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("call_id")
@unmask_option
@records_option
@click.pass_context
def _export_call(ctx, call_id, unmask, records_path):
    """Print one call as JSON: transcript, intents per turn, state, grade, tasks.

    \b
    Example:
        salesbot export call 3f2a9c1d0b7e4a11
    """
    from edge.calls.export import call_json

    click.echo(json.dumps(call_json(_records(ctx, records_path).db, call_id, unmask=unmask), ensure_ascii=False,
                          indent=1))


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--campaign", "campaign_name", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for report.md/.html and PNGs.")
@json_option
@records_option
@click.pass_context
def _report(ctx, campaign_name, out, as_json, records_path):
    """Write a campaign's ROI report: funnel, rates, intents, objections, best hours, cost per lead.

    \b
    Example:
        salesbot report --campaign 三月华东 --out reports/三月华东
    """
    from edge.calls.roi import compute, write_report

    cfg = _cfg(ctx)
    records = _records(ctx, records_path)
    paths = write_report(records.db, campaign_name, cfg.roi, out)
    if as_json:
        click.echo(json.dumps(compute(records.db, campaign_name, cfg.roi), ensure_ascii=False, indent=1))
        return
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    f = data["funnel"]
    click.echo(" -> ".join(f"{k} {f[k]}" for k in ("leads", "dialled", "connected", "talked_30s", "b_plus", "a")))
    cost = data["cost"]
    click.echo(f"cost per qualified lead: bot {cost['bot_per_qualified_cny'] or '-'} CNY, "
               f"human team {cost['human_per_qualified_cny']} CNY")
    click.echo(f"written: {paths['html']}, {paths['markdown']}")
