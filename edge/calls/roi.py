"""The ROI report of a campaign: funnel (leads -> dialled -> connected ->
talked >= 30 s -> B+ -> A), connect and conversion rates, outcome, intent and
objection counts, the best calling hours, and cost per qualified lead
against a human team (inputs in [roi] of the config). Written as JSON,
Markdown and HTML with PNG charts (matplotlib).

Cost model, stated in the report:
    bot  = connected minutes x line cost per minute + box cost per month x campaign days / 30
    human cost per qualified lead = team cost per month /
        (team size x dials per agent-day x workdays per month x human conversion)
    qualified = leads graded A or B.

Example:
    >>> data = compute(db, "三月华东", RoiConfig())
    >>> data["funnel"]["connected"], data["rates"]["connect_rate"]
    (71, 0.59)
    >>> write_report(db, "三月华东", RoiConfig(), Path("out/roi"))
"""

from __future__ import annotations

import functools
import html
import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml
from sqlite_utils import Database

from edge.calls import campaign as _campaign
from edge.config import DATA_DIR, RoiConfig

WORDS_FILE: Final = DATA_DIR / "report.yaml"
TALKED_S: Final = 30.0
QUALIFIED: Final = ("A", "B")
CHARTS: Final = ("funnel", "hours", "intents", "cost")
CJK_FONTS: Final = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC",
                    "Source Han Sans SC", "SimHei", "Microsoft YaHei", "PingFang SC")
_CJK_FILES: Final = ("wqy", "notosanscjk", "sourcehansans", "simhei", "msyh", "pingfang")
MIN_DIALS_FOR_HOUR: Final = 3
"""An hour needs this many dials to be ranked among the best hours."""
FUNNEL: Final = ("leads", "dialled", "connected", "talked_30s", "b_plus", "a")


@functools.lru_cache(maxsize=1)
def _all_words() -> dict[str, dict[str, str]]:
    return yaml.safe_load(WORDS_FILE.read_text(encoding="utf-8"))


def words(lang: str = "zh") -> dict[str, str]:
    return _all_words()[lang]


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def compute(db: Database, campaign_name: str, inputs: RoiConfig) -> dict[str, Any]:
    """All the report's figures as plain data (also what /api/campaigns/{id}/roi returns)."""
    campaign = _campaign.get(db, campaign_name)
    cid = campaign.id
    one = lambda sql: db.execute(sql, [cid]).fetchone()[0] or 0  # noqa: E731
    funnel = {
        "leads": one("select count(*) from leads where campaign_id = ?"),
        "dialled": one("select count(distinct lead_id) from calls where campaign_id = ?"),
        "connected": one("select count(distinct lead_id) from calls where campaign_id = ? "
                         "and disposition = 'answered'"),
        "talked_30s": one(f"select count(distinct lead_id) from calls where campaign_id = ? "
                          f"and disposition = 'answered' and duration_s >= {TALKED_S}"),
        "b_plus": one("select count(distinct c.lead_id) from calls c join outcomes o on o.call_id = c.id "
                      "where c.campaign_id = ? and o.grade in ('A', 'B')"),
        "a": one("select count(distinct c.lead_id) from calls c join outcomes o on o.call_id = c.id "
                 "where c.campaign_id = ? and o.grade = 'A'"),
    }
    dials = one("select count(*) from calls where campaign_id = ? and disposition is not null")
    seconds = one("select sum(duration_s) from calls where campaign_id = ? and disposition = 'answered'")
    dispositions = dict(db.execute("select disposition, count(*) from calls where campaign_id = ? and "
                                   "disposition is not null group by 1 order by 2 desc", [cid]).fetchall())
    outcomes = dict(db.execute("select o.outcome, count(*) from outcomes o join calls c on c.id = o.call_id "
                               "where c.campaign_id = ? group by 1 order by 2 desc", [cid]).fetchall())
    intents: Counter = Counter()
    for (labels,) in db.execute("select t.intents from turns t join calls c on c.id = t.call_id "
                                "where c.campaign_id = ?", [cid]):
        intents.update(label for label in json.loads(labels) if label != "other")
    objections: Counter = Counter()
    for (items,) in db.execute("select o.objections from outcomes o join calls c on c.id = o.call_id "
                               "where c.campaign_id = ?", [cid]):
        objections.update(json.loads(items or "[]"))
    hours = _hours(db, cid)
    span = db.execute("select min(started_at), max(started_at) from calls where campaign_id = ?", [cid]).fetchone()
    days = _days(span[0], span[1])
    minutes = round(seconds / 60.0, 1)
    bot_cost = round(minutes * inputs.line_cost_per_min_cny + inputs.bot_monthly_cost_cny * days / 30.0, 2)
    human_dials = inputs.human_team_size * inputs.human_dials_per_agent_day * inputs.workdays_per_month
    human_cpl = inputs.human_team_monthly_cost_cny / (human_dials * inputs.human_conversion)
    qualified = funnel["b_plus"]
    return {
        "campaign": campaign.name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "funnel": funnel,
        "rates": {"connect_rate": _ratio(funnel["connected"], funnel["dialled"]),
                  "talked_rate": _ratio(funnel["talked_30s"], funnel["connected"]),
                  "conversion": _ratio(funnel["b_plus"], funnel["dialled"]),
                  "a_rate": _ratio(funnel["a"], funnel["dialled"])},
        "dials": dials, "minutes": minutes, "days": days,
        "dispositions": dispositions, "outcomes": outcomes,
        "intents": dict(intents.most_common(15)), "objections": dict(objections.most_common(10)),
        "hours": hours,
        "best_hours": [h["hour"] for h in sorted((h for h in hours if h["dials"] >= MIN_DIALS_FOR_HOUR),
                                                 key=lambda h: (-(h["connect_rate"] or 0), -h["dials"]))[:3]],
        "cost": {
            "bot_total_cny": bot_cost,
            "bot_per_qualified_cny": round(bot_cost / qualified, 2) if qualified else None,
            "human_per_qualified_cny": round(human_cpl, 2),
            "human_for_same_qualified_cny": round(human_cpl * qualified, 2),
            "saving_cny": round(human_cpl * qualified - bot_cost, 2) if qualified else None,
            "inputs": {k: getattr(inputs, k) for k in inputs.__dataclass_fields__},
        },
    }


def _hours(db: Database, campaign_id: int) -> list[dict[str, Any]]:
    """Dials and connect rate per local hour of day (the hour the call started, in its own offset)."""
    per: dict[int, list[int]] = {}
    for started, disposition in db.execute("select started_at, disposition from calls where campaign_id = ? "
                                           "and disposition is not null", [campaign_id]):
        try:
            hour = datetime.fromisoformat(started).hour
        except (TypeError, ValueError):
            continue
        counts = per.setdefault(hour, [0, 0])
        counts[0] += 1
        counts[1] += disposition == "answered"
    return [{"hour": h, "dials": d, "connected": c, "connect_rate": _ratio(c, d)} for h, (d, c) in sorted(per.items())]


def _days(first: str | None, last: str | None) -> float:
    if not first or not last:
        return 0.0
    span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() / 86400
    return round(max(1.0, span), 2)


# ---- charts -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A CJK font family matplotlib can use, if one is installed."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    if found is None:  # matplotlib's font cache predates the font: add the files directly
        for path in font_manager.findSystemFonts():
            if any(part in path.lower() for part in _CJK_FILES):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
        found = next((name for name in CJK_FONTS if name in installed), None)
    return found


def chart_language() -> str:
    return "zh" if cjk_font() else "en"


def chart_png(data: dict[str, Any], kind: str) -> bytes:
    """One chart as PNG bytes: funnel | hours | intents | cost."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if kind not in CHARTS:
        raise ValueError(f"chart must be one of {CHARTS}")
    w = words(chart_language())
    font = cjk_font()
    rc = {"font.family": [font, "DejaVu Sans"]} if font else {}
    with matplotlib.rc_context(rc):
        figure = Figure(figsize=(6.4, 3.6), dpi=100)
        ax = figure.add_subplot()
        if kind == "funnel":
            values = [data["funnel"][k] for k in FUNNEL]
            bars = ax.barh([w[k] for k in FUNNEL][::-1], values[::-1], color="#2f6db5")
            ax.bar_label(bars, padding=3)
            ax.set_title(w["funnel"])
        elif kind == "hours":
            hours = data["hours"]
            ax.bar([f"{h['hour']:02d}" for h in hours], [h["dials"] for h in hours], color="#b8c7dc",
                   label=w["dials"])
            ax.set_xlabel(w["hour"])
            ax.set_ylabel(w["dials"])
            twin = ax.twinx()
            twin.plot([f"{h['hour']:02d}" for h in hours], [h["connect_rate"] or 0 for h in hours], "o-",
                      color="#c0392b", label=w["connect_rate"])
            twin.set_ylim(0, 1)
            twin.set_ylabel(w["connect_rate"])
            ax.set_title(w["hours"])
        elif kind == "intents":
            items = list(data["intents"].items())[:10] or [(w["none"], 0)]
            ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color="#4a9b6e")
            ax.set_title(w["intents"])
        else:
            cost = data["cost"]
            values = [cost["bot_per_qualified_cny"] or 0, cost["human_per_qualified_cny"]]
            bars = ax.bar([w["bot"], w["human"]], values, color=["#2f6db5", "#999999"])
            ax.bar_label(bars, fmt="%.0f", padding=3)
            ax.set_title(w["cost_per_qualified"])
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ---- documents ----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def markdown(data: dict[str, Any], lang: str = "zh") -> str:
    w = words(lang)
    f, r, cost = data["funnel"], data["rates"], data["cost"]
    lines = [f"# {w['title'].format(campaign=data['campaign'])}", "", f"{w['generated']}: {data['generated_at']}", "",
             f"## {w['funnel']}", "", f"| | {w['count']} | {w['rate']} |", "|---|---:|---:|"]
    previous = None
    for key in FUNNEL:
        lines.append(f"| {w[key]} | {f[key]} | {_pct(_ratio(f[key], previous)) if previous is not None else ''} |")
        previous = f[key]
    lines += ["", f"- {w['connect_rate']}: {_pct(r['connect_rate'])}", f"- {w['conversion']}: {_pct(r['conversion'])}",
              f"- {w['dials']}: {data['dials']}, {w['minutes']}: {data['minutes']}", "", "![funnel](funnel.png)", "",
              f"## {w['dispositions']} / {w['outcomes']}", ""]
    lines += [f"- {k}: {v}" for k, v in data["dispositions"].items()] or [f"- {w['none']}"]
    lines += [""] + [f"- {k}: {v}" for k, v in data["outcomes"].items()]
    intents = [f"- {k}: {v}" for k, v in data["intents"].items()] or [f"- {w['none']}"]
    lines += ["", f"## {w['intents']}", "", *intents]
    lines += ["", "![intents](intents.png)", "", f"## {w['objections']}", ""]
    lines += [f"- {k}: {v}" for k, v in data["objections"].items()] or [f"- {w['none']}"]
    best = ", ".join(f"{h:02d}:00" for h in data["best_hours"]) or w["none"]
    bot = cost["bot_per_qualified_cny"] if cost["bot_per_qualified_cny"] is not None else "-"
    lines += ["", f"## {w['hours']}", "", f"{w['best_hours']}: {best}", "", "![hours](hours.png)", "",
              f"## {w['cost']}", "", f"| | {w['cost_per_qualified']} |", "|---|---:|",
              f"| {w['bot']} | {bot} |",
              f"| {w['human']} | {cost['human_per_qualified_cny']} |", "", "![cost](cost.png)", "",
              f"{w['cost_inputs']}: " + ", ".join(f"{k}={v}" for k, v in cost["inputs"].items()), ""]
    return "\n".join(lines)


def html_page(data: dict[str, Any], lang: str = "zh") -> str:
    """The same report as a self-contained page (charts as sibling PNG files); every value is escaped."""
    w = words(lang)
    e = html.escape
    f, r, cost = data["funnel"], data["rates"], data["cost"]
    rows = "".join(f"<tr><td>{e(w[k])}</td><td>{f[k]}</td></tr>" for k in FUNNEL)

    def listing(items: dict[str, Any]) -> str:
        return "".join(f"<li>{e(str(k))}: {v}</li>" for k, v in items.items()) or f"<li>{e(w['none'])}</li>"

    best = ", ".join(f"{h:02d}:00" for h in data["best_hours"]) or w["none"]
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{e(w['title'].format(campaign=data['campaign']))}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:.3rem .6rem}}img{{max-width:100%}}</style></head>
<body><h1>{e(w['title'].format(campaign=data['campaign']))}</h1><p>{e(w['generated'])}: {e(data['generated_at'])}</p>
<h2>{e(w['funnel'])}</h2><table>{rows}</table>
<p>{e(w['connect_rate'])}: {_pct(r['connect_rate'])} · {e(w['conversion'])}: {_pct(r['conversion'])} ·
{e(w['dials'])}: {data['dials']} · {e(w['minutes'])}: {data['minutes']}</p><img src="funnel.png" alt="funnel">
<h2>{e(w['dispositions'])}</h2><ul>{listing(data['dispositions'])}</ul>
<h2>{e(w['outcomes'])}</h2><ul>{listing(data['outcomes'])}</ul>
<h2>{e(w['intents'])}</h2><ul>{listing(data['intents'])}</ul><img src="intents.png" alt="intents">
<h2>{e(w['objections'])}</h2><ul>{listing(data['objections'])}</ul>
<h2>{e(w['hours'])}</h2><p>{e(w['best_hours'])}: {e(best)}</p><img src="hours.png" alt="hours">
<h2>{e(w['cost'])}</h2><table><tr><td>{e(w['bot'])}</td><td>{cost['bot_per_qualified_cny'] or '-'}</td></tr>
<tr><td>{e(w['human'])}</td><td>{cost['human_per_qualified_cny']}</td></tr></table><img src="cost.png" alt="cost">
<p>{e(w['cost_inputs'])}: {e(', '.join(f'{k}={v}' for k, v in cost['inputs'].items()))}</p>
</body></html>
"""


def write_report(db: Database, campaign_name: str, inputs: RoiConfig, out_dir: Path) -> dict[str, Path]:
    """roi.json, report.md, report.html and the four PNG charts in `out_dir`; returns their paths."""
    data = compute(db, campaign_name, inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "roi.json", "markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    paths["markdown"].write_text(markdown(data), encoding="utf-8")
    paths["html"].write_text(html_page(data), encoding="utf-8")
    for kind in CHARTS:
        paths[kind] = out_dir / f"{kind}.png"
        paths[kind].write_bytes(chart_png(data, kind))
    return paths
