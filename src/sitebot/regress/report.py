"""Suite reports (no ROS): JUnit XML for CI systems and one self-contained HTML page with
hand-made inline SVG plots per run (path over the map with zones and people, speed against
separation over time, the safety state timeline)."""
from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping, Sequence

from sitebot.sim.world import WorldSpec
from sitebot.sim.world_loader import load_world
from sitebot.site.registry import ZoneKind

__all__ = ["write_junit", "write_html", "summary_table", "map_svg", "series_svg", "timeline_svg",
           "plot_world", "Frame", "polyline", "STATUS_COLOR", "CSS"]

STATUS_COLOR = {"passed": "#2e7d32", "failed": "#c62828", "error": "#6a1b9a",
                "skipped": "#757575", "flaky": "#ef6c00"}
_LEVEL_COLOR = {"NORMAL": "#66bb6a", "REDUCED_SPEED": "#ffca28", "PROTECTIVE_STOP": "#ef5350",
                "EMERGENCY_STOP": "#8e24aa"}
_ZONE_COLOR = {ZoneKind.KEEP_OUT: "#e53935", ZoneKind.SLOW: "#fdd835",
               ZoneKind.RESTRICTED: "#1e88e5"}


def _failures(r: Mapping[str, Any]) -> list[str]:
    out = [f"{c['name']}: {c['value']!r} (limit {c['limit']!r}) {c.get('detail', '')}".strip()
           for c in r.get("checks", []) if not c["ok"]]
    if r.get("reason") and r["status"] in ("failed", "error"):
        out.insert(0, r["reason"])
    return out


def write_junit(results: Sequence[Mapping[str, Any]], path: str | Path,
                suite: str = "sitebot.regress") -> Path:
    """One <testcase> per run (classname = scenario file stem)."""
    fails = sum(r["status"] == "failed" for r in results)
    errs = sum(r["status"] == "error" for r in results)
    skips = sum(r["status"] == "skipped" for r in results)
    total_t = sum(float(r.get("metrics", {}).get("wall_time_s") or r.get("worker_wall_s") or 0)
                  for r in results)
    ts = ET.Element("testsuite", name=suite, tests=str(len(results)), failures=str(fails),
                    errors=str(errs), skipped=str(skips), time=f"{total_t:.2f}")
    for r in results:
        name = r["name"] + (f"#{r['repeat']}" if r.get("repeat") else "")
        cls = f"regress.{Path(str(r.get('file') or 'scenario')).stem}"
        wall = float(r.get("metrics", {}).get("wall_time_s") or r.get("worker_wall_s") or 0.0)
        tc = ET.SubElement(ts, "testcase", classname=cls, name=name, time=f"{wall:.2f}")
        msgs = _failures(r)
        if r["status"] == "failed":
            f = ET.SubElement(tc, "failure", message=msgs[0] if msgs else "failed",
                              type="ScenarioFailure")
            f.text = "\n".join(msgs)
        elif r["status"] == "error":
            e = ET.SubElement(tc, "error", message=r.get("reason") or "error", type="RunError")
            e.text = r.get("traceback", "") or r.get("reason", "")
        elif r["status"] == "skipped":
            ET.SubElement(tc, "skipped", message=r.get("reason") or "skipped")
        props = ET.SubElement(tc, "properties")
        m = r.get("metrics", {})
        for k in ("sim_time_s", "real_time_factor", "min_separation_m", "path_length_m",
                  "mission_time_s", "max_level"):
            if m.get(k) is not None:
                ET.SubElement(props, "property", name=k, value=str(m[k]))
        if r.get("bag"):
            ET.SubElement(props, "property", name="bag", value=str(r["bag"]))
        out = ET.SubElement(tc, "system-out")
        out.text = json.dumps({"checks": r.get("checks", []), "run_dir": r.get("run_dir")},
                              indent=1)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(ts).write(p, encoding="utf-8", xml_declaration=True)
    return p


# ---------------------------------------------------------------------------- SVG
class Frame:
    def __init__(self, x0: float, x1: float, y0: float, y1: float, w: int, h: int,
                 pad: int = 30) -> None:
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1)
        self.w, self.h, self.pad = w, h, pad

    def x(self, v: float) -> float:
        return self.pad + (v - self.x0) / (self.x1 - self.x0) * (self.w - 2 * self.pad)

    def y(self, v: float) -> float:
        return self.h - self.pad - (v - self.y0) / (self.y1 - self.y0) * (self.h - 2 * self.pad)


def polyline(points: Sequence[tuple[float, float]], color: str, width: float = 1.5,
             dash: str = "") -> str:
    if len(points) < 2:
        return ""
    d = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    da = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}"{da}/>'


def plot_world(plot: Mapping[str, Any], cache: dict[str, WorldSpec | None],
               run_dir: str | Path | None = None) -> WorldSpec | None:
    """The world of a run's ``plot.json`` (its ``world_file``, or the file of that name in
    the run folder's ``world/`` when the folder moved), parsed once per file into
    ``cache``.  None when it cannot be read."""
    wf = str(plot.get("world_file") or "")
    if not wf:
        return None
    cands = [Path(wf)] + ([Path(run_dir) / "world" / Path(wf).name] if run_dir else [])
    path = next((str(c) for c in cands if c.is_file()), wf)
    if path not in cache:
        try:
            cache[path] = load_world(path)
        except Exception:       # noqa: BLE001 - a report without a map is still a report
            cache[path] = None
    return cache[path]


def map_svg(world: WorldSpec | None, plot: Mapping[str, Any], w: int = 460) -> str:
    """The run's path over the map, with zones and people; without a world (its file is
    gone), the path and people alone, on the area they cover."""
    truth = plot.get("truth", [])
    xs = [p[1] for p in truth] + [q[0] for _, ps in plot.get("people", []) for q in ps]
    ys = [p[2] for p in truth] + [q[1] for _, ps in plot.get("people", []) for q in ps]
    if world is None:
        x0, x1 = (min(xs) - 2, max(xs) + 2) if xs else (-5.0, 5.0)
        y0, y1 = (min(ys) - 2, max(ys) + 2) if ys else (-5.0, 5.0)
    elif truth:   # zoom to the area of the run (with margin), within the world
        b = world.bounds
        x0, x1 = max(b.x_min, min(xs) - 4), min(b.x_max, max(xs) + 4)
        y0, y1 = max(b.y_min, min(ys) - 4), min(b.y_max, max(ys) + 4)
    else:
        b = world.bounds
        x0, x1, y0, y1 = b.x_min, b.x_max, b.y_min, b.y_max
    span = max(x1 - x0, y1 - y0)
    x1, y1 = x0 + span, y0 + span
    f = Frame(x0, x1, y0, y1, w, w, 10)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{w}" '
             f'viewBox="0 0 {w} {w}"><rect width="{w}" height="{w}" fill="#fafafa"/>']
    for fp in world.obstacle_footprints() if world is not None else ():
        if fp.cx + fp.half_x < x0 or fp.cx - fp.half_x > x1 or \
                fp.cy + fp.half_y < y0 or fp.cy - fp.half_y > y1:
            continue
        if fp.radius_m:
            r = fp.radius_m * (f.w - 2 * f.pad) / (f.x1 - f.x0)
            parts.append(f'<circle cx="{f.x(fp.cx):.1f}" cy="{f.y(fp.cy):.1f}" r="{r:.1f}" '
                         'fill="#9e9e9e"/>')
        else:
            c, s = math.cos(fp.yaw), math.sin(fp.yaw)
            pts = [(fp.cx + c * dx - s * dy, fp.cy + s * dx + c * dy)
                   for dx, dy in ((-fp.half_x, -fp.half_y), (fp.half_x, -fp.half_y),
                                  (fp.half_x, fp.half_y), (-fp.half_x, fp.half_y))]
            d = " ".join(f"{f.x(px):.1f},{f.y(py):.1f}" for px, py in pts)
            parts.append(f'<polygon points="{d}" fill="#9e9e9e"/>')
    for body in plot.get("bodies", []):
        bx, by, yaw = body["pose"]
        sx, sy = body["size"][0] / 2, body["size"][1] / 2
        c, s = math.cos(yaw), math.sin(yaw)
        pts = [(bx + c * dx - s * dy, by + s * dx + c * dy)
               for dx, dy in ((-sx, -sy), (sx, -sy), (sx, sy), (-sx, sy))]
        d = " ".join(f"{f.x(px):.1f},{f.y(py):.1f}" for px, py in pts)
        parts.append(f'<polygon points="{d}" fill="#8d6e63"><title>{html.escape(body["id"])}'
                     '</title></polygon>')
    for z in world.registry.zones if world is not None else ():
        d = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in z.polygon)
        col = _ZONE_COLOR[z.kind]
        parts.append(f'<polygon points="{d}" fill="{col}" fill-opacity="0.25" stroke="{col}">'
                     f'<title>{html.escape(z.kind.value)}: {html.escape(z.name)}</title></polygon>')
    npeople = max((len(ps) for _, ps in plot.get("people", [])), default=0)
    for j in range(npeople):
        pts = [(f.x(ps[j][0]), f.y(ps[j][1])) for _, ps in plot.get("people", []) if len(ps) > j]
        parts.append(polyline(pts, "#fb8c00", 1.2, "4 3"))
        if pts:
            parts.append(f'<circle cx="{pts[-1][0]:.1f}" cy="{pts[-1][1]:.1f}" r="4" '
                         'fill="#fb8c00"/>')
    pts = [(f.x(p[1]), f.y(p[2])) for p in truth]
    parts.append(polyline(pts, "#1565c0", 2.0))
    if pts:
        parts.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="4" fill="#1565c0"/>')
        parts.append(f'<rect x="{pts[-1][0] - 4:.1f}" y="{pts[-1][1] - 4:.1f}" width="8" '
                     'height="8" fill="#1565c0"/>')
    parts.append(f'<text x="6" y="{w - 6}" font-size="10" fill="#333">{x1 - x0:.0f} m wide; '
                 'blue: robot (ground truth), orange: people, red: keep-out, yellow: slow, '
                 'blue area: restricted</text></svg>')
    return "".join(parts)


def series_svg(plot: Mapping[str, Any], w: int = 520, h: int = 200) -> str:
    s = plot.get("series", [])
    if not s:
        return "<p>no data</p>"
    t0, t1 = s[0][0], s[-1][0]
    seps = [x[2] for x in s if x[2] is not None]
    smax = min(max(seps, default=1.0), 6.0)
    vmax = max(max(x[1] for x in s), 0.1)
    fv = Frame(t0, t1, 0.0, vmax * 1.1, w, h, 34)
    fs = Frame(t0, t1, 0.0, max(smax, 0.5) * 1.1, w, h, 34)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
             f'<rect width="{w}" height="{h}" fill="#fafafa"/>',
             f'<line x1="34" y1="{h - 34}" x2="{w - 34}" y2="{h - 34}" stroke="#999"/>']
    parts.append(polyline([(fv.x(t), fv.y(v)) for t, v, _ in s], "#1565c0", 1.5))
    parts.append(polyline([(fs.x(t), fs.y(min(d, smax * 1.1))) for t, _, d in s
                           if d is not None], "#fb8c00", 1.5))
    parts.append(f'<text x="36" y="14" font-size="11" fill="#1565c0">speed [m/s] '
                 f'(max {vmax:.2f})</text><text x="{w - 230}" y="14" font-size="11" '
                 f'fill="#fb8c00">separation to people [m] (axis 0-{smax * 1.1:.1f})</text>'
                 f'<text x="36" y="{h - 18}" font-size="10">t = {t0:.0f} s</text>'
                 f'<text x="{w - 90}" y="{h - 18}" font-size="10">t = {t1:.0f} s</text></svg>')
    return "".join(parts)


def timeline_svg(plot: Mapping[str, Any], w: int = 520, h: int = 46) -> str:
    tl = plot.get("timeline", [])
    if not tl:
        return "<p>no safety state</p>"
    t0, t1 = tl[0]["t0"], max(tl[-1]["t1"], tl[0]["t0"] + 1e-3)
    f = Frame(t0, t1, 0, 1, w, h, 4)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">']
    for seg in tl:
        x0, x1 = f.x(seg["t0"]), f.x(max(seg["t1"], seg["t0"]))
        col = _LEVEL_COLOR.get(seg["level"], "#999")
        tip = f"{seg['t0']:.2f}-{seg['t1']:.2f} s {seg['level']} {', '.join(seg['reasons'])}"
        parts.append(f'<rect x="{x0:.1f}" y="4" width="{max(x1 - x0, 0.6):.1f}" height="22" '
                     f'fill="{col}"><title>{html.escape(tip)}</title></rect>')
    parts.append(f'<text x="4" y="{h - 4}" font-size="10">{t0:.0f} s</text>'
                 f'<text x="{w - 40}" y="{h - 4}" font-size="10">{t1:.0f} s</text>'
                 '<text x="60" y="40" font-size="10">green NORMAL, yellow REDUCED_SPEED, red '
                 'PROTECTIVE_STOP, purple EMERGENCY_STOP</text></svg>')
    return "".join(parts)


def summary_table(results: Sequence[Mapping[str, Any]]) -> str:
    """The terminal summary."""
    lines = [f"{'scenario':<52} {'status':<8} {'sim [s]':>8} {'wall [s]':>8} {'RTF':>5}  note"]
    for r in results:
        m = r.get("metrics", {})
        name = r["name"] + (f"#{r['repeat']}" if r.get("repeat") else "")
        note = r.get("reason", "") if r["status"] in ("skipped", "error") else \
            "; ".join(f"{c['name']}={c['value']}" for c in r.get("checks", []) if not c["ok"])
        lines.append(f"{name[:52]:<52} {r['status']:<8} {m.get('sim_time_s', '-')!s:>8} "
                     f"{m.get('wall_time_s', r.get('worker_wall_s', '-'))!s:>8} "
                     f"{m.get('real_time_factor', '-')!s:>5}  {note[:80]}")
    return "\n".join(lines)


CSS = """body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:3px 6px;font-size:13px;text-align:left}
.badge{color:#fff;padding:2px 8px;border-radius:4px;font-weight:bold}
.run{border:1px solid #ccc;margin:16px 0;padding:10px;border-radius:6px}
.bad{background:#ffebee}.good{background:#e8f5e9}.plots{display:flex;gap:12px;flex-wrap:wrap}
"""


def write_html(results: Sequence[Mapping[str, Any]], path: str | Path, *,
               title: str = "sitebot regression suite", summary: Mapping[str, Any] | None = None,
               regressions: Sequence[Mapping[str, Any]] = (),
               flaky: Sequence[str] = ()) -> Path:
    worlds: dict[str, WorldSpec | None] = {}
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    out.append("<p>" + " ".join(f"<span class='badge' style='background:"
                                f"{STATUS_COLOR.get(k, '#999')}'>{k}: {v}</span>"
                                for k, v in sorted(counts.items())) + "</p>")
    if summary:
        out.append("<p>" + html.escape(", ".join(f"{k}: {v}" for k, v in summary.items()))
                   + "</p>")
    if flaky:
        out.append("<p><b>Flaky (verdict differs between repeats):</b> "
                   + html.escape(", ".join(flaky)) + "</p>")
    if regressions:
        out.append("<h2>Baseline regressions</h2><table><tr><th>scenario</th><th>metric</th>"
                   "<th>baseline</th><th>now</th><th>change</th><th>threshold</th></tr>")
        for g in regressions:
            out.append(f"<tr class='bad'><td>{html.escape(g['name'])}</td><td>{g['metric']}"
                       f"</td><td>{g['baseline']}</td><td>{g['value']}</td><td>"
                       f"{g['change']:+.1%}</td><td>{g['threshold']:+.0%}</td></tr>")
        out.append("</table>")
    out.append("<h2>Runs</h2><table><tr><th>scenario</th><th>verdict</th><th>sim [s]</th>"
               "<th>wall [s]</th><th>RTF</th><th>min sep [m]</th><th>path [m]</th>"
               "<th>max level</th></tr>")
    for i, r in enumerate(results):
        m = r.get("metrics", {})
        col = STATUS_COLOR.get(r["status"], "#999")
        name = r["name"] + (f"#{r['repeat']}" if r.get("repeat") else "")
        out.append(f"<tr><td><a href='#run{i}'>{html.escape(name)}</a></td><td><span "
                   f"class='badge' style='background:{col}'>{r['status']}</span></td>"
                   f"<td>{m.get('sim_time_s', '')}</td><td>{m.get('wall_time_s', '')}</td>"
                   f"<td>{m.get('real_time_factor', '')}</td><td>"
                   f"{m.get('min_separation_m', '')}</td><td>{m.get('path_length_m', '')}</td>"
                   f"<td>{m.get('max_level', '')}</td></tr>")
    out.append("</table>")
    for i, r in enumerate(results):
        col = STATUS_COLOR.get(r["status"], "#999")
        name = r["name"] + (f"#{r['repeat']}" if r.get("repeat") else "")
        out.append(f"<div class='run' id='run{i}'><h3>{html.escape(name)} <span class='badge' "
                   f"style='background:{col}'>{r['status']}</span></h3>")
        if r.get("description"):
            out.append(f"<p>{html.escape(r['description'])}</p>")
        if r.get("reason"):
            out.append(f"<p><b>{'Reason' if r['status'] != 'failed' else 'Note'}:</b> "
                       f"{html.escape(r['reason'])}</p>")
        if r.get("checks"):
            out.append("<table><tr><th>criterion</th><th>value</th><th>limit</th><th>ok</th>"
                       "<th>detail</th></tr>")
            for c in r["checks"]:
                cls = "good" if c["ok"] else "bad"
                out.append(f"<tr class='{cls}'><td>{html.escape(c['name'])}</td><td>"
                           f"{html.escape(str(c['value']))}</td><td>"
                           f"{html.escape(str(c['limit']))}</td><td>"
                           f"{'PASS' if c['ok'] else 'FAIL'}</td><td>"
                           f"{html.escape(c.get('detail', ''))}</td></tr>")
            out.append("</table>")
        plot_file = Path(r.get("run_dir", "")) / "plot.json"
        if r["status"] not in ("skipped",) and plot_file.is_file():
            plot = json.loads(plot_file.read_text())
            world = plot_world(plot, worlds, r.get("run_dir"))
            out.append("<div class='plots'>")
            if world is not None:
                out.append("<div><b>Path over the map</b><br>" + map_svg(world, plot)
                           + "</div>")
            out.append("<div><b>Speed and separation over time</b><br>" + series_svg(plot)
                       + "<br><b>Safety state timeline</b><br>" + timeline_svg(plot) + "</div>")
            out.append("</div>")
        if r.get("bag"):
            out.append(f"<p>bag: <code>{html.escape(str(r['bag']))}</code>; audit log: <code>"
                       f"{html.escape(str(r.get('audit_log', '')))}</code></p>")
        out.append("</div>")
    out.append("</body></html>")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(out))
    return p
