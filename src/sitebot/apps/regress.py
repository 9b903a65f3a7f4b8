"""``sitebot regress``: run scenario suites headless, in parallel, and report.

  sitebot regress [FILES or DIRS] [--jobs N] [--repeat K] [--junit FILE] [--out DIR]
  sitebot regress --replay RUN_DIR [--repeat K]
                  [--baseline FILE] [--save-baseline FILE] [--filter PATTERN] [--tags T,..]
                  [--export-dataset DIR] [--list]

Each run is a worker process (``python -m sitebot.regress.worker``) with a ROS_DOMAIN_ID of
its own (taken from 200..232 under a lock file, so that parallel runs, and parallel suites
of other users on the machine, never share DDS traffic), killed after the scenario's
``wall_limit`` (plus a margin). Outputs in ``--out`` (default ``out/regress``):
``runs/<name>/`` per run (bag, metrics, audit log, launch log), ``results.json``,
``report.html``, ``incidents.json``/``.csv``, the JUnit file when asked. Exit status 0 when
every run passed (or was skipped: missing executables), 1 when a run failed, errored, was
flaky over ``--repeat`` or regressed against ``--baseline``, 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

from sitebot.errors import SitebotError
from sitebot.regress import report
from sitebot.regress import results as R
from sitebot.regress.pool import RunPool
from sitebot.regress.scenario import Scenario, load_scenarios, select
from sitebot.regress.template import is_template, load_template

__all__ = ["main"]

def estimate_wall_s(sc: Scenario, previous: dict[str, float] | None = None) -> float:
    """Expected wall time [s] of one run: the last measured one (``previous``: name ->
    worker wall time from an earlier results.json), else a guess from the scenario (start-up
    of its stack plus its duration; task-stack missions usually end well before theirs)."""
    if previous and sc.name in previous:
        return previous[sc.name]
    kind = sc.mission.kind
    startup = {"none": 5.0, "goals": 6.0}.get(kind, 10.0)
    sim = sc.duration if kind in ("none", "goals") else 0.5 * sc.duration
    if sc.criteria.mission == "refused":
        sim = 2.0
    rtf = min(max(sc.real_time_factor, 0.2), 1.0) * (0.85 if sc.camera else 1.0)
    return startup + sim / rtf


def order_runs(runs: list[tuple[Scenario, int]], previous: dict[str, float] | None = None
               ) -> list[tuple[Scenario, int]]:
    """Longest first (so that two parallel jobs end close together instead of one long
    mission starting last); ties keep the file order."""
    return sorted(runs, key=lambda r: -estimate_wall_s(r[0], previous))


def _previous_walls(out: Path) -> dict[str, float]:
    try:
        data = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    walls: dict[str, float] = {}
    for r in data.get("runs", []):
        w = r.get("worker_wall_s")
        if isinstance(w, (int, float)) and r.get("name") and r.get("status") != "skipped":
            walls[r["name"]] = max(walls.get(r["name"], 0.0), float(w))
    return walls


def _default_targets() -> list[str]:
    for cand in (Path("tests/scenarios"), Path(__file__).resolve().parents[3] / "tests/scenarios"):
        if cand.is_dir():
            return [str(cand)]
    raise SitebotError("no scenario files given and no tests/scenarios directory here")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot regress", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="scenario files or directories "
                    "(default: tests/scenarios)")
    ap.add_argument("--jobs", "-j", type=int, default=2, help="runs in parallel (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="run each scenario K times "
                    "(reports flaky ones)")
    ap.add_argument("--junit", help="write JUnit XML here")
    ap.add_argument("--out", default="out/regress", help="output folder (default out/regress)")
    ap.add_argument("--baseline", help="compare with this baseline JSON; regressions fail")
    ap.add_argument("--save-baseline", help="write a baseline JSON from this run's passing runs")
    ap.add_argument("--filter", help="only scenarios whose name matches this glob/substring")
    ap.add_argument("--tags", default="", help="only scenarios with all these tags (comma list)")
    ap.add_argument("--export-dataset", help="copy bags + labels of the runs to this folder")
    ap.add_argument("--labels", help="an incidents.csv with labels to carry into the new index")
    ap.add_argument("--list", action="store_true", help="list the selected runs and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--paced", action="store_true",
                    help="pace each run at its scenario's real-time factor (default: unpaced, "
                         "the simulator in lockstep with the stack: results independent of "
                         "the machine's load)")
    ap.add_argument("--replay", metavar="RUN_DIR",
                    help="run a recorded run again (its scenario, seed and pacing mode; "
                         "--repeat K times) and report whether it reproduced: the same "
                         "verdict, and how far the trajectories diverged")
    ap.add_argument("--no-order", action="store_true", help="run in file order (default: "
                    "longest first, by the last results.json in --out or an estimate)")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    if a.jobs < 1 or a.repeat < 1:
        print("sitebot regress: error: --jobs and --repeat must be >= 1", file=sys.stderr)
        return 2
    if a.replay:
        return _replay(a)
    try:
        scenarios = load_scenarios(a.targets or _default_targets())
    except SitebotError as e:
        print(f"sitebot regress: error: {e}", file=sys.stderr)
        return 2
    tags = [t for t in a.tags.split(",") if t.strip()]
    chosen = select(scenarios, a.filter, tags)
    runs = [(sc, k) for sc in chosen for k in range(a.repeat)]
    if a.list or not runs:
        for sc, k in runs:
            print(f"{sc.name}{'#' + str(k) if k else ''}  [{sc.world}, {sc.mission.kind}, "
                  f"tags: {', '.join(sc.tags)}]  {sc.file}")
        if not runs:
            print("sitebot regress: no scenario selected", file=sys.stderr)
            return 2
        return 0
    out = Path(a.out).resolve()
    if not a.no_order:
        runs = order_runs(runs, _previous_walls(out))
    if (out / "runs").exists():
        shutil.rmtree(out / "runs")
    out.mkdir(parents=True, exist_ok=True)
    print(f"sitebot regress: {len(runs)} run(s) of {len(chosen)} scenario(s), {a.jobs} "
          f"in parallel; outputs in {out}", flush=True)
    t0 = time.monotonic()
    res = RunPool(runs, out, a.jobs, a.quiet, a.paced).run()
    wall = time.monotonic() - t0
    flaky = R.flaky(res) if a.repeat > 1 else []
    spread = R.spread(res) if a.repeat > 1 else {}
    regressions: list[dict] = []
    if a.baseline:
        try:
            base = json.loads(Path(a.baseline).read_text())
        except (OSError, ValueError) as e:
            print(f"sitebot regress: error: baseline {a.baseline}: {e}", file=sys.stderr)
            return 2
        regressions = R.compare_baseline(res, base)
    if a.save_baseline:
        Path(a.save_baseline).write_text(json.dumps(R.make_baseline(res), indent=2))
    counts: dict[str, int] = {}
    for r in res:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    sim_total = sum(float(r.get("metrics", {}).get("sim_time_s") or 0) for r in res)
    summary = {"runs": len(res), **counts, "suite_wall_s": round(wall, 1),
               "sim_total_s": round(sim_total, 1), "jobs": a.jobs,
               "suite_real_time_factor": round(sim_total / wall, 2) if wall > 0 else None}
    rows = R.incidents(res)
    R.write_incidents(rows, out, Path(a.labels) if a.labels else None)
    (out / "results.json").write_text(json.dumps(
        {"summary": summary, "flaky": flaky, "spread": spread, "regressions": regressions,
         "runs": res}, indent=1, default=str))
    report.write_html(res, out / "report.html", summary=summary, regressions=regressions,
                      flaky=flaky)
    if a.junit:
        report.write_junit(res, a.junit)
    if a.export_dataset:
        R.export_dataset(res, rows, Path(a.export_dataset))
    print("\n" + report.summary_table(res))
    for k, d in spread.items():
        print(f"repeat spread {k}: " + ", ".join(f"{m} {v:g}" for m, v in d.items()))
    if flaky:
        print("FLAKY: " + ", ".join(flaky))
    for g in regressions:
        print(f"REGRESSION {g['name']}: {g['metric']} {g['baseline']} -> {g['value']} "
              f"(threshold {g['threshold']:+.0%})")
    print(f"\nsuite wall time {wall:.1f} s for {sim_total:.1f} s simulated ({len(res)} runs, "
          f"--jobs {a.jobs}); " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f"; report {out / 'report.html'}")
    bad = any(r["status"] in ("failed", "error") for r in res) or flaky or regressions
    return 1 if bad else 0


def _replay(a: argparse.Namespace) -> int:
    """``--replay RUN_DIR``: rerun one recorded run and compare (sitebot.regress.replay)."""
    from sitebot.regress.replay import compare_runs, load_run
    try:
        orig = load_run(a.replay)
        if is_template(orig["file"]):         # a campaign's run: its template's draw
            found = [load_template(orig["file"]).sample(int(orig["seed"]))]
        else:
            found = [sc for sc in load_scenarios([orig["file"]]) if sc.name == orig["name"]]
    except SitebotError as e:
        print(f"sitebot regress: error: {e}", file=sys.stderr)
        return 2
    if not found:
        print(f"sitebot regress: error: {orig['file']} has no scenario {orig['name']!r} "
              "any more", file=sys.stderr)
        return 2
    out = Path(a.out if a.out != "out/regress" else Path(a.replay) / "replay").resolve()
    if (out / "runs").exists():
        shutil.rmtree(out / "runs")
    out.mkdir(parents=True, exist_ok=True)
    lockstep = bool(orig.get("lockstep", False))
    print(f"sitebot regress: replaying {orig['name']} (seed {orig.get('seed')}, "
          f"{'lockstep' if lockstep else 'paced'}) {a.repeat} time(s); outputs in {out}",
          flush=True)
    res = RunPool([(found[0], k) for k in range(a.repeat)], out, a.jobs, a.quiet,
                  paced=not lockstep).run()
    verdicts = []
    for r in res:
        v = compare_runs(a.replay, r["run_dir"])
        verdicts.append(v)
        d = v["divergence"]
        print(f"replay {Path(r['run_dir']).name}: {v['verdict']} -> {v['replay_verdict']}, "
              f"trajectory divergence max {d['max_m']} m, final {d['final_m']} m, duration "
              f"{d['duration_diff_s']} s: "
              + ("reproduced" if v["reproduced"] else "NOT reproduced")
              + (" (the scenario file changed since)" if v["scenario_changed"] else ""))
    (out / "replay.json").write_text(json.dumps(verdicts, indent=1))
    return 0 if all(v["reproduced"] for v in verdicts) else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
