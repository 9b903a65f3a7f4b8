"""A campaign's HTML report (no ROS): one self-contained page, ``report.html`` in the
campaign folder (``sitebot campaign report DIR``), with hand-made inline SVG plots drawn
with the regression report's helpers (``sitebot.regress.report``).

From the top: the safety figures over all runs (red when any run violated safety: zero
tolerance), success rates with their Wilson 95 % intervals per template, world and skill,
the time missions took, success by template variable, the failure causes ranked, then every
run that did not pass with its failure label and evidence, its reason, its path over the map
(``plot.json``), a link to its bag and the command that replays it, and a table of all runs.
The page needs no script and no file besides itself (the bag links point into the campaign
folder, relative to the page).
"""
from __future__ import annotations

import html
import json
import math
import os
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from sitebot.campaign.summary import load_campaign, read_plot, run_skills, summarize
from sitebot.regress.report import CSS, STATUS_COLOR, Frame, map_svg, plot_world

__all__ = ["write_report", "render", "rates_svg", "times_svg", "bars_svg", "replay_command"]

_CSS = CSS + """.safety{border:2px solid;border-radius:6px;padding:8px 12px;margin:12px 0}
.safety.ok{border-color:#2e7d32;background:#e8f5e9}.safety.unsafe{border-color:#c62828;
background:#ffebee}.safety.unsafe h2{color:#c62828}code{background:#f3f3f3;padding:1px 4px}
.muted{color:#757575}h2{margin-top:28px}
"""
_BLUE, _GREY = "#1565c0", "#9e9e9e"


def _e(v: Any) -> str:
    return html.escape(str(v))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f} %"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "\u2026"


def _num(v: Any, digits: int) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def replay_command(run_dir: str) -> str:
    """The command that replays a run (quoted for a POSIX shell: names hold ``[seed=N]``)."""
    return f"sitebot regress --replay {shlex.quote(str(run_dir))}"


def _href(path: str | Path, base: Path) -> str:
    try:
        rel = os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:
        return Path(path).resolve().as_uri()
    return quote(Path(rel).as_posix()) + ("/" if Path(path).is_dir() else "")


# ---------------------------------------------------------------------------- SVG
def _svg_open(w: int, h: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}"><rect width="{w}" height="{h}" fill="#fafafa"/>')


def _row_label(x: float, y: float, text: str, n: int = 34) -> str:
    return (f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="11"><title>{_e(text)}</title>'
            f'{_e(_short(text, n))}</text>')


def rates_svg(rows: Sequence[tuple[str, Mapping[str, Any]]], w: int = 660) -> str:
    """Success rates as dots with their 95 % interval as whiskers, one row each
    (``rows``: (name, rate entry with passed, judged, rate, ci95))."""
    left, right, top, row_h = 240, 120, 22, 20
    h = top + row_h * max(len(rows), 1) + 8
    f = Frame(0.0, 1.0, 0.0, 1.0, w - left - right, h, 0)
    parts = [_svg_open(w, h)] + _grid(f, left, top, h, [(q, f"{100 * q:.0f} %")
                                                        for q in (0.0, 0.25, 0.5, 0.75, 1.0)])
    for i, (name, r) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        parts.append(_row_label(4, y, name))
        if not r.get("judged"):
            parts.append(f'<text x="{left + 4}" y="{y + 4:.1f}" font-size="11" '
                         f'fill="{_GREY}">no verdict</text>')
            continue
        lo, hi = (left + f.x(v) for v in r["ci95"])
        x = left + f.x(r["rate"])
        parts.append(f'<line x1="{lo:.1f}" y1="{y:.1f}" x2="{hi:.1f}" y2="{y:.1f}" '
                     f'stroke="{_BLUE}" stroke-width="2"/>')
        for xe in (lo, hi):
            parts.append(f'<line x1="{xe:.1f}" y1="{y - 5:.1f}" x2="{xe:.1f}" '
                         f'y2="{y + 5:.1f}" stroke="{_BLUE}" stroke-width="2"/>')
        tip = (f"{name}: {r['passed']}/{r['judged']} = {_pct(r['rate'])}, 95 % CI "
               f"{_pct(r['ci95'][0])} - {_pct(r['ci95'][1])}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{_BLUE}">'
                     f'<title>{_e(tip)}</title></circle>')
        parts.append(f'<text x="{w - right + 8}" y="{y + 4:.1f}" font-size="11">'
                     f'{r["passed"]}/{r["judged"]} = {_pct(r["rate"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _grid(f: Frame, left: float, top: float, h: float,
          ticks: Sequence[tuple[float, str]]) -> list[str]:
    """Vertical grid lines of a row plot, each labelled above the rows."""
    return [f'<line x1="{left + f.x(v):.1f}" y1="{top - 4}" x2="{left + f.x(v):.1f}" '
            f'y2="{h - 6}" stroke="#ddd"/><text x="{left + f.x(v):.1f}" y="{top - 8}" '
            f'font-size="10" text-anchor="middle">{label}</text>' for v, label in ticks]


def _ticks(vmax: float) -> list[float]:
    """Round axis ticks from 0 to at least ``vmax`` (steps of 1, 2 or 5 times a power of
    ten, at most 6 ticks)."""
    vmax = max(float(vmax), 1e-6)
    mag = 10.0 ** math.floor(math.log10(vmax / 5))
    step = next(m * mag for m in (1, 2, 5, 10) if vmax / (m * mag) <= 5)
    n = math.ceil(vmax / step - 1e-9)
    return [round(k * step, 9) for k in range(n + 1)]


def times_svg(rows: Sequence[tuple[str, Mapping[str, Any]]], w: int = 660) -> str:
    """Times to complete, one row each (``rows``: (name, entry with times, min, median,
    p90, max)): every run a dot, a line from min to max, a box from the median to p90."""
    left, right, top, row_h = 240, 120, 22, 22
    h = top + row_h * max(len(rows), 1) + 8
    ticks = _ticks(max((r["max"] for _, r in rows if r.get("n")), default=1.0))
    f = Frame(0.0, ticks[-1], 0.0, 1.0, w - left - right, h, 0)
    parts = [_svg_open(w, h)] + _grid(f, left, top, h, [(v, f"{v:g} s") for v in ticks])
    for i, (name, r) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        parts.append(_row_label(4, y, name))
        if not r.get("n"):
            parts.append(f'<text x="{left + 4}" y="{y + 4:.1f}" font-size="11" '
                         f'fill="{_GREY}">no completion time</text>')
            continue
        x0, x1 = left + f.x(r["min"]), left + f.x(r["max"])
        xm, x9 = left + f.x(r["median"]), left + f.x(r["p90"])
        parts.append(f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" '
                     f'stroke="#757575"/>')
        parts.append(f'<rect x="{xm:.1f}" y="{y - 5:.1f}" width="{max(x9 - xm, 1.0):.1f}" '
                     'height="10" fill="#90caf9"/>')
        for t in r["times"]:
            parts.append(f'<circle cx="{left + f.x(t):.1f}" cy="{y:.1f}" r="2.5" '
                         f'fill="{_BLUE}" fill-opacity="0.5"/>')
        tip = (f"{name}: {r['n']} runs, min {r['min']} s, median {r['median']} s, p90 "
               f"{r['p90']} s, max {r['max']} s")
        parts.append(f'<line x1="{xm:.1f}" y1="{y - 7:.1f}" x2="{xm:.1f}" y2="{y + 7:.1f}" '
                     f'stroke="#0d47a1" stroke-width="2"><title>{_e(tip)}</title></line>')
        parts.append(f'<text x="{w - right + 8}" y="{y + 4:.1f}" font-size="11">'
                     f'median {r["median"]:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(rows: Sequence[tuple[str, int]], w: int = 660, color: str = "#c62828") -> str:
    """Counts as horizontal bars, one row each."""
    left, right, row_h = 240, 60, 20
    h = row_h * max(len(rows), 1) + 8
    f = Frame(0.0, float(max((n for _, n in rows), default=1)), 0.0, 1.0,
              w - left - right, h, 0)
    parts = [_svg_open(w, h)]
    for i, (name, n) in enumerate(rows):
        y = 4 + row_h * i + row_h / 2
        parts.append(_row_label(4, y, name))
        parts.append(f'<rect x="{left}" y="{y - 6:.1f}" width="{max(f.x(n), 1.0):.1f}" '
                     f'height="12" fill="{color}"/><text x="{left + f.x(n) + 6:.1f}" '
                     f'y="{y + 4:.1f}" font-size="11">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------- sections
def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells already HTML)."""
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def _badge(status: str) -> str:
    return (f"<span class='badge' style='background:{STATUS_COLOR.get(status, '#999')}'>"
            f"{_e(status)}</span>")


def _fig(f: Mapping[str, Any] | None, unit: str, link: Mapping[str, str]) -> tuple[str, str]:
    if not f:
        return "not measured", ""
    run = str(f.get("run"))
    where = f"<a href='#{link[run]}'>{_e(run)}</a>" if run in link else _e(run)
    return f"{f['value']:g} {unit}", where


def _names(names: Sequence[str], link: Mapping[str, str], n: int = 8) -> str:
    out = [f"<a href='#{link[x]}'>{_e(x)}</a>" if x in link else _e(x) for x in names[:n]]
    return ", ".join(out) + (f" and {len(names) - n} more" if len(names) > n else "")


def _safety(s: Mapping[str, Any], link: Mapping[str, str]) -> str:
    bad = bool(s["violations"])
    head = (f"Safety: {len(s['violations'])} run(s) violated safety (zero tolerance)" if bad
            else "Safety: no violation")
    rows = [("runs measured", f"{s['runs_measured']} of {s['runs']}", "")]
    for key, title in (("contacts", "runs with contact with people"),
                       ("keep_out_excursions", "runs entering a keep-out zone"),
                       ("collisions", "runs touching static structure"),
                       ("slow_zone_speeding", "runs speeding in a slow zone")):
        rows.append((title, str(len(s[key])), _names(s[key], link)))
    for key, title, unit in (
            ("min_separation_m", "minimum separation to people", "m"),
            ("min_separation_robot_moving_m", "... while the robot moved toward them", "m"),
            ("min_separation_robot_still_m", "... while it did not (people walking into it)",
             "m"),
            ("min_keep_out_clearance_m", "minimum footprint clearance to keep-out zones",
             "m"),
            ("min_static_clearance_m", "minimum chassis clearance to structure", "m"),
            ("max_slow_zone_excess_mps", "most speed above a slow zone's limit", "m/s")):
        rows.append((title, *_fig(s[key], unit, link)))
    near = s["max_speed_near_people_mps"]
    value, where = _fig(near, "m/s", link)
    if near and near.get("distance_m") is not None:
        value += f" (people within {near['distance_m']:g} m)"
    rows.append(("highest speed near people", value, where))
    out = [f"<div class='safety {'unsafe' if bad else 'ok'}' id='safety'><h2>{_e(head)}</h2>",
           "<table><tr><th>figure</th><th>value</th><th>run</th></tr>"
           + "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{c}</td></tr>"
                     for a, b, c in rows) + "</table>"]
    if bad:
        vrows = []
        for v in s["violations"]:
            name = str(v["run"])
            cell = f"<a href='#{link[name]}'>{_e(name)}</a>" if name in link else _e(name)
            vrows.append((cell, _e(v.get("status")), _e(", ".join(v["checks"]) or "-"),
                          _e(", ".join(v["measured"]) or "-"),
                          f"<code>{_e(replay_command(v['run_dir']))}</code>"
                          if v.get("run_dir") else ""))
        out.append("<h3>Violations</h3><p>Failed safety checks, and figures beyond a check's "
                   "limit that the template did not check.</p>"
                   + _table(("run", "status", "failed safety checks", "measured beyond the "
                             "limit", "replay"), vrows, raw=True))
    out.append("</div>")
    return "".join(out)


def _rates_section(title: str, rates: Mapping[str, Mapping[str, Any]]) -> str:
    if not rates:
        return f"<h3>{_e(title)}</h3><p class='muted'>none</p>"
    rows = [(k, v["passed"], v["judged"], _pct(v["rate"]),
             f"{_pct(v['ci95'][0])} - {_pct(v['ci95'][1])}", v["skipped"], v["errors"])
            for k, v in rates.items()]
    return (f"<h3>{_e(title)}</h3>" + rates_svg(list(rates.items())) +
            _table((title.split()[-1], "passed", "judged", "rate", "95 % interval", "skipped",
                    "errors"), rows))


def _times_section(title: str, times: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [(k, v["n"], v["min"], v["median"], v["p90"], v["max"], v["without_time"])
            for k, v in times.items()]
    rows = [tuple("-" if c is None else c for c in r) for r in rows]
    return (f"<h3>{_e(title)}</h3>" + times_svg(list(times.items())) +
            _table((title.split()[-1], "passed runs timed", "min [s]", "median [s]",
                    "p90 [s]", "max [s]", "passed without a time"), rows))


def _variables_section(variables: Sequence[Mapping[str, Any]]) -> str:
    if not variables:
        return "<p class='muted'>No template variable and no derived variable that varies.</p>"
    out = []
    for v in variables:
        what = "drawn" if v["source"] == "draw" else "derived from the run folders"
        unknown = f", unknown in {v['unknown']} run(s)" if v["unknown"] else ""
        where = f"{v['template']}: " if v.get("template") else "all templates: "
        out.append(f"<h3>{_e(where)}<code>{_e(v['variable'])}</code> <span class='muted'>"
                   f"({what}, "
                   f"{v['distinct']} distinct value(s){unknown})</span></h3>")
        if v["kind"] == "untabulated":
            out.append(f"<p class='muted'>Not tabulated: {v['distinct']} distinct values, "
                       "too many to say anything each.</p>")
            continue
        if v["kind"] == "bins":
            out.append("<p class='muted'>Quantile bins of the drawn values.</p>")
        out.append(rates_svg([(g["value"], g) for g in v["groups"]]))
        out.append(_table(("value" if v["kind"] == "values" else "bin", "runs", "passed",
                           "judged", "rate", "95 % interval"),
                          [(_short(g["value"], 100), g["runs"], g["passed"], g["judged"],
                            _pct(g["rate"]),
                            f"{_pct(g['ci95'][0])} - {_pct(g['ci95'][1])}")
                           for g in v["groups"]]))
    return "".join(out)


def _causes_section(causes: Sequence[Mapping[str, Any]], link: Mapping[str, str]) -> str:
    if not causes:
        return "<p class='muted'>Every run passed or was skipped.</p>"
    return (bars_svg([(c["label"], c["count"]) for c in causes]) +
            _table(("rank", "label", "runs", "which"),
                   [(i + 1, _e(c["label"]), c["count"], _names(c["runs"], link, 5))
                    for i, c in enumerate(causes)], raw=True))


def _run_section(r: Mapping[str, Any], anchor: str, base: Path, worlds: dict[str, Any],
                 violation: Mapping[str, Any] | None = None) -> str:
    out = [f"<div class='run' id='{anchor}'><h3>{_e(r['name'])} {_badge(str(r['status']))}"
           "</h3>"]
    if r.get("label"):
        out.append(f"<p><b>Label:</b> <code>{_e(r['label'])}</code>; evidence: "
                   f"{_e(r.get('evidence') or '-')}</p>")
    if r.get("reason"):
        out.append(f"<p><b>Reason:</b> {_e(r['reason'])}</p>")
    if violation:
        what = [f"failed {', '.join(violation['checks'])}"] if violation["checks"] else []
        what += [f"measured beyond the limit of {', '.join(violation['measured'])} (not "
                 "checked by its template)"] if violation["measured"] else []
        out.append(f"<p style='color:#c62828'><b>Safety violation:</b> {_e('; '.join(what))}"
                   "</p>")
    facts = [f"template {r.get('template')}", f"world {r.get('world')}",
             f"seed {r.get('seed')}"]
    if r.get("skills"):
        facts.append("skills " + ", ".join(r["skills"]))
    out.append(f"<p>{_e('; '.join(facts))}</p>")
    run_dir = r.get("run_dir")
    if run_dir:
        out.append(f"<p>Replay: <code>{_e(replay_command(run_dir))}</code></p>")
    bag = r.get("bag") or (str(Path(run_dir) / "bag") if run_dir and
                           (Path(run_dir) / "bag").is_dir() else "")
    if bag:
        out.append(f"<p>Bag: <a href='{_e(_href(bag, base))}'>{_e(bag)}</a></p>")
    else:
        out.append("<p class='muted'>No bag: the run left none.</p>")
    info = []
    failed = [c for c in r.get("checks") or [] if isinstance(c, dict) and not c.get("ok")]
    if failed:
        info.append(_table(("failed check", "value", "limit", "detail"),
                           [(c.get("name"), c.get("value"), c.get("limit"),
                             c.get("detail", "")) for c in failed]))
    if r.get("draws"):
        info.append(_table(("drawn", "value"),
                           [(k, _short(json.dumps(v, separators=(",", ":")), 160))
                            for k, v in r["draws"].items()]))
    plot = read_plot(r)
    if plot is not None:
        world = plot_world(plot, worlds, r.get("run_dir"))
        note = "" if world is not None else " (the world file is gone: the path alone)"
        picture = (f"<div><b>Path over the map{_e(note)}</b><br/>" + map_svg(world, plot)
                   + "</div>")
    else:
        picture = ("<div class='muted'>No plot.json: the run ended before its ground truth "
                   "was recorded.</div>")
    out.append("<div class='plots'>" + picture + "<div>" + "<br/>".join(info) + "</div></div>")
    out.append("</div>")
    return "".join(out)


def render(doc: Mapping[str, Any], runs: Sequence[Mapping[str, Any]],
           summary: Mapping[str, Any], base: Path, title: str = "sitebot campaign") -> str:
    """The page: ``doc`` is campaign.json, ``runs`` its runs merged with their results
    (``summary.load_campaign``), ``summary`` theirs (``summary.summarize``), ``base`` the
    folder the page is written to (links are relative to it).  A run's ``skills`` are
    shown when it has them (``summary.run_skills``)."""
    unsafe = {v["run"]: v for v in summary["safety"]["violations"]}
    bad = [r for r in runs if r.get("status") not in ("passed", "skipped")
           or r.get("name") in unsafe]
    link = {str(r["name"]): f"run-{i}" for i, r in enumerate(bad)}
    counts: dict[str, int] = {}
    for r in runs:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    out = ["<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'/>"
           f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>",
           f"<p>{len(runs)} run(s) of {len(doc.get('templates') or [])} template(s) "
           + (f"(seeds {doc['first_seed']} .. {doc['first_seed'] + doc['runs_per_template'] - 1}"
              ") " if isinstance(doc.get("first_seed"), int)
              and isinstance(doc.get("runs_per_template"), int) else "")
           + (f"in {doc['wall_s']:g} s " if isinstance(doc.get("wall_s"), (int, float)) else "")
           + " ".join(_badge(k) + f" {v}" for k, v in sorted(counts.items())) + "</p>",
           _safety(summary["safety"], link),
           "<h2>Success rates</h2><p>Passes among the runs with a verdict, with the Wilson "
           "95 % interval; skipped runs and infrastructure errors are counted apart. A run "
           "counts in every skill it exercises.</p>",
           _rates_section("per template", summary["per_template"]),
           _rates_section("per world", summary["per_world"]),
           _rates_section("per skill", summary["per_skill"]),
           "<h2>Time to complete</h2><p>Simulated time at which the mission ended, over the "
           "passed runs (dots: runs; line: min to max; box: median to p90).</p>",
           _times_section("per template", summary["time_to_complete"]["per_template"]),
           _times_section("per world", summary["time_to_complete"]["per_world"]),
           "<h2>Success by variable</h2>", _variables_section(summary["by_variable"]),
           "<h2>Failure causes</h2>", _causes_section(summary["failure_causes"], link),
           f"<h2>Runs that did not pass or violated safety ({len(bad)})</h2>"]
    worlds: dict[str, Any] = {}
    if not bad:
        out.append("<p class='muted'>None.</p>")
    for r in bad:
        out.append(_run_section(r, link[str(r["name"])], base, worlds,
                                unsafe.get(r["name"])))
    out.append("<h2>All runs</h2>")
    rows = []
    for r in runs:
        name = str(r["name"])
        m = r.get("metrics") or {}
        rows.append((f"<a href='#{link[name]}'>{_e(name)}</a>" if name in link else _e(name),
                     _badge(str(r.get("status"))), _e(r.get("label") or ""),
                     _e(", ".join(r.get("skills") or [])),
                     _num(m.get("mission_time_s"), 1), _num(m.get("min_separation_m"), 3)))
    out.append(_table(("run", "status", "label", "skills", "mission time [s]",
                       "min separation [m]"), rows, raw=True))
    out.append("</body></html>\n")
    return "".join(out)


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the campaign in ``folder`` (its ``campaign.json``) to ``out``
    (default ``folder/report.html``); SitebotError naming the file on a missing or broken
    campaign.json."""
    doc, runs = load_campaign(folder)
    p = Path(folder)
    camp_dir = p if p.is_dir() else p.parent
    dest = Path(out) if out else camp_dir / "report.html"
    runs = [{**r, "skills": run_skills(r)} for r in runs]
    summary = summarize(runs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render(doc, runs, summary, dest.parent,
                           title=f"sitebot campaign: {camp_dir.resolve().name}"))
    return dest
