"""``sitebot campaign``: randomized runs of scenario templates, with success rates.

  sitebot campaign TEMPLATES... --runs N [--first-seed S] [--jobs J] [--out DIR]
                   [--ray local|auto|ADDRESS [--run-cpus C]]   (runs as Ray tasks)
  sitebot campaign TEMPLATES... --explain SEED
  sitebot campaign compare BASE CANDIDATE [--alpha 0.05]   (the release gate)
  sitebot campaign report DIR [--out FILE]                 (the HTML report again)

Each template (``docs/campaigns.md``) runs with the seeds S .. S+N-1, each run a regression
run in a worker process of its own (``sitebot.regress.pool``: its own DDS domain, bag,
metrics, verdict).  Outputs in ``--out`` (default ``out/campaign``): ``runs/<ID[seed=N]>/``
per run, ``campaign.json`` (the runs; per template, world and skill the success rate with
its Wilson 95 % interval; times to complete, safety figures, success by variable:
``sitebot.campaign.summary``) and ``report.html`` (``sitebot.campaign.report``).

A campaign folder resumes: a run that already has a verdict there (passed, failed,
skipped) is not run again, so a campaign interrupted by a crash or Ctrl-C goes on where it
stopped, and ``--runs`` can grow.  A run that ended in an infrastructure error (a worker
that died, a stack that did not come up) is retried ``--retries`` times and reported apart
from mission failures.  Any safety violation (a contact, a keep-out excursion, speeding
near people or in a slow zone: ``sitebot.campaign.gate.SAFETY_CHECKS``) fails the
campaign.  Exit status 0 when every run has a verdict and none violated safety, 1
otherwise, 2 on bad input.  ``compare`` exits 1 when the gate fails (sitebot.campaign.gate).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import yaml

from sitebot.campaign.gate import compare, safety_violations, unjudged_safety
from sitebot.campaign.ray_backend import RayBackend
from sitebot.campaign.report import write_report
from sitebot.campaign.summary import mission_skills, run_skills, summarize
from sitebot.campaign.taxonomy import label_run
from sitebot.errors import SitebotError
from sitebot.regress.pool import RunPool, run_dir_name
from sitebot.regress.prepare import check_world
from sitebot.regress.scenario import Scenario, collect_files
from sitebot.regress.template import MAX_SEED, Template, is_template, load_template

__all__ = ["main", "summarize"]

#: the statuses that are a verdict on the mission (an ``error`` is the infrastructure's)
VERDICTS = ("passed", "failed", "skipped")


def _templates(targets: Sequence[str]) -> list[Template]:
    files = [f for f in collect_files(targets) if is_template(f)]
    if not files:
        raise SitebotError(f"no scenario template (a file with a 'random' section) in "
                           f"{', '.join(targets)}")
    out = [load_template(f) for f in files]
    ids = [t.id for t in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SitebotError(f"two templates share the id {dup[0]!r}")
    return out


def _check_worlds(runs: list[Scenario]) -> None:
    """Every draw must judge safety (zero tolerance needs every run measured) and make a
    valid world (a drawn path through a wall is the template's error, not a failed
    mission): the draws that do not, named with their seeds."""
    for sc in runs:
        missing = unjudged_safety(sc.criteria)
        if missing:
            raise SitebotError(f"{sc.file}: {sc.name}: a campaign judges safety on every run; "
                               f"add to criteria: {', '.join(missing)}")
    bad = []
    for sc in runs:
        try:
            check_world(sc)
        except SitebotError as e:
            bad.append(f"{sc.name}: {e}")
    if bad:
        raise SitebotError(f"{len(bad)} draw(s) make an invalid world:\n  "
                           + "\n  ".join(bad[:10]) + ("\n  ..." if len(bad) > 10 else ""))


def _previous(out: Path, sc: Scenario) -> dict | None:
    """The run's result in the campaign folder, if it has a verdict."""
    p = out / "runs" / run_dir_name(sc) / "result.json"
    try:
        res = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return res if res.get("status") in VERDICTS and res.get("seed") == sc.seed else None


class _Progress:
    """Live progress of a campaign: runs ended by status, running, and the time left."""

    def __init__(self, total: int, done: int, jobs: int, t0: float) -> None:
        self.total, self.before, self.jobs, self.t0 = total, done, jobs, t0
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def ended(self, res: dict) -> str:
        with self._lock:               # (pool threads end runs concurrently)
            self.counts[res["status"]] = self.counts.get(res["status"], 0) + 1
            ended = sum(self.counts.values())
            done = self.before + ended
            left = self.total - done
            per = (time.monotonic() - self.t0) / ended
            eta = f"about {per * left / 60.0:.1f} min left" if left else "all ended"
            by = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))
            line = (f"campaign: {done}/{self.total} ended ({by} in this sitting), "
                    f"{min(self.jobs, left)} running, {eta}")
            print(line, flush=True)
            return line


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return _compare(argv[1:])
    if argv[:1] == ["report"]:
        return _report(argv[1:])
    ap = argparse.ArgumentParser(prog="sitebot campaign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="+", help="template files or folders")
    ap.add_argument("--runs", type=int, default=0, help="runs (seeds) per template")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    ap.add_argument("--retries", type=int, default=1,
                    help="reruns of a run that ended in an infrastructure error")
    ap.add_argument("--out", default="out/campaign", help="campaign folder (resumed)")
    ap.add_argument("--explain", type=int, metavar="SEED",
                    help="print what each template draws for SEED, run nothing")
    ap.add_argument("--ray", metavar="ADDRESS",
                    help="run each run as a Ray task: 'local' (a private Ray instance on this "
                    "machine with --jobs x --run-cpus CPUs), 'auto' (the Ray cluster this "
                    "machine belongs to) or a cluster's address (ray://HEAD:10001, HEAD:6379)")
    ap.add_argument("--run-cpus", type=float, default=1.0,
                    help="CPUs each run declares to Ray's scheduler (default 1; with --ray)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        templates = _templates(a.targets)
        if a.explain is not None:
            for t in templates:
                print(yaml.safe_dump({f"{t.id}[seed={a.explain}]": t.explain(a.explain)},
                                     sort_keys=False, allow_unicode=True,
                                     default_flow_style=None), end="")
            return 0
        if a.runs < 1 or a.jobs < 1 or a.retries < 0:
            raise SitebotError("--runs and --jobs must be >= 1, --retries >= 0")
        if not a.run_cpus > 0:
            raise SitebotError(f"--run-cpus must be > 0, not {a.run_cpus:g}")
        if not 0 <= a.first_seed <= MAX_SEED - a.runs + 1:
            raise SitebotError(f"--first-seed must be in [0, {MAX_SEED - a.runs + 1}]")
        runs = [t.sample(seed) for t in templates
                for seed in range(a.first_seed, a.first_seed + a.runs)]
        _check_worlds(runs)
    except SitebotError as e:
        print(f"sitebot campaign: error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    done = {sc.name: r for sc in runs if (r := _previous(out, sc)) is not None}
    todo = [sc for sc in runs if sc.name not in done]
    backend = None
    if a.ray and todo:
        try:
            backend = RayBackend(a.ray, a.jobs, a.run_cpus)     # imports ray only now
        except SitebotError as e:
            print(f"sitebot campaign: error: {e}", file=sys.stderr)
            return 2
        print(f"sitebot campaign: on {backend.describe}", flush=True)
    print(f"sitebot campaign: {len(runs)} run(s) of {len(templates)} template(s): "
          f"{len(done)} already done in {out}, {len(todo)} to run, "
          f"{backend.slots if backend else a.jobs} in parallel", flush=True)
    t0 = time.monotonic()
    results = dict(done)
    try:
        for attempt in range(a.retries + 1):
            if not todo:
                break
            if attempt:
                print(f"sitebot campaign: retrying {len(todo)} run(s) that ended in an "
                      "infrastructure error", flush=True)
            pairs = [(sc, 0) for sc in todo]
            pool = (backend.pool(pairs, out, a.quiet) if backend is not None
                    else RunPool(pairs, out, a.jobs, a.quiet))
            pool.on_result = _Progress(len(runs), len(results), pool.jobs,
                                       time.monotonic()).ended
            for r in pool.run():
                results[r["name"]] = r
            todo = [sc for sc in todo if results[sc.name]["status"] == "error"]
    finally:
        if backend is not None:
            backend.close()
    by_id = {t.id: t for t in templates}
    ordered = [{**results[sc.name], "template": sc.id, "world": sc.world,
                "draws": by_id[sc.id].explain(sc.seed),
                "skills": mission_skills(sc.mission.kind, sc.mission.steps,
                                         bool(sc.mission.drive)),
                "safety_violations": safety_violations(results[sc.name].get("checks", [])),
                "label": label_run(results[sc.name])} for sc in runs]
    for r in ordered:
        r["skills"] = run_skills(r)
    summary = summarize(ordered)
    wall = time.monotonic() - t0
    (out / "campaign.json").write_text(json.dumps(
        {"templates": [str(t.file) for t in templates], "first_seed": a.first_seed,
         "runs_per_template": a.runs, "wall_s": round(wall, 1), **summary,
         "runs": [{**{k: r.get(k) for k in ("name", "template", "world", "seed", "status",
                                            "reason", "safety_violations", "run_dir",
                                            "draws", "skills")},
                   "label": r["label"][0] if r["label"] else None,
                   "evidence": r["label"][1] if r["label"] else None} for r in ordered]},
        indent=1))
    causes = summary["failure_causes"]
    if causes:
        print("\nfailure causes:")
        for c in causes:
            print(f"  {c['count']:>4}  {c['label']:<26} e.g. {c['runs'][0]}")
    for key, title in (("per_template", "template"), ("per_world", "world"),
                       ("per_skill", "skill")):
        print(f"\nsuccess per {title}:")
        for name, s in summary[key].items():
            extra = "".join(f", {s[k]} {k}" for k in ("skipped", "errors") if s[k])
            print(f"  {name:<40} {s['text']}{extra}")
    errors = [r["name"] for r in ordered if r["status"] == "error"]
    unsafe = [f"{r['name']} ({', '.join(r['safety_violations'])})" for r in ordered
              if r["safety_violations"]]
    print(f"\ncampaign: {len(ordered)} runs, {len(ordered) - len(errors)} with a verdict, "
          f"{len(unsafe)} with a safety violation, {wall:.0f} s; {out / 'campaign.json'}")
    if errors:
        print("infrastructure errors: " + ", ".join(errors))
    if unsafe:
        print("SAFETY VIOLATIONS (zero tolerance): " + ", ".join(unsafe))
    try:
        print(f"report: {write_report(out)}")
    except (SitebotError, OSError) as e:     # the runs and campaign.json stand without it
        print(f"sitebot campaign: the report was not written: {e}", file=sys.stderr)
    return 1 if errors or unsafe else 0


def _compare(argv: Sequence[str]) -> int:
    """``sitebot campaign compare BASE CANDIDATE``: the release gate (sitebot.campaign.gate)."""
    ap = argparse.ArgumentParser(prog="sitebot campaign compare",
                                 description="the release gate: a candidate campaign "
                                 "against a base run on the same seeds")
    ap.add_argument("base", help="the base campaign folder (or its campaign.json)")
    ap.add_argument("candidate", help="the candidate campaign folder (or its campaign.json)")
    ap.add_argument("--alpha", type=float, default=0.05, help="significance (one-sided)")
    ap.add_argument("--json", help="write the comparison here")
    a = ap.parse_args(list(argv))
    try:
        runs = []
        for where in (a.base, a.candidate):
            p = Path(where)
            p = p / "campaign.json" if p.is_dir() else p
            try:
                runs.append(json.loads(p.read_text())["runs"])
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise SitebotError(f"{p}: not a campaign result ({e})") from None
        verdict = compare(runs[0], runs[1], a.alpha)
    except (SitebotError, ValueError) as e:
        print(f"sitebot campaign compare: error: {e}", file=sys.stderr)
        return 2
    for t, d in verdict["per_template"].items():
        print(f"{t}: {d['base_passed']}/{d['paired']} -> {d['candidate_passed']}/{d['paired']} "
              f"on the same seeds; {len(d['worse'])} worse, {len(d['better'])} better, "
              f"p(worse) = {d['p_worse']:.4f}" + ("  SIGNIFICANT DROP" if d["significant_drop"]
                                                  else ""))
        for f in d["worse"]:
            print(f"  seed {f['seed']}: passed -> failed: {f['reason']}  "
                  f"(sitebot regress --replay {f['run_dir']})")
        for f in d["better"]:
            print(f"  seed {f['seed']}: failed -> passed")
    if a.json:
        Path(a.json).write_text(json.dumps(verdict, indent=1))
    print("\nrelease gate: " + ("PASSED" if verdict["passed"] else
                                "FAILED\n  " + "\n  ".join(verdict["reasons"])))
    return 0 if verdict["passed"] else 1


def _report(argv: Sequence[str]) -> int:
    """``sitebot campaign report DIR``: the campaign's HTML report (sitebot.campaign.report)."""
    ap = argparse.ArgumentParser(prog="sitebot campaign report",
                                 description="write a campaign folder's HTML report")
    ap.add_argument("folder", help="the campaign folder (or its campaign.json)")
    ap.add_argument("--out", help="the page to write (default FOLDER/report.html)")
    a = ap.parse_args(list(argv))
    try:
        path = write_report(a.folder, a.out)
    except (SitebotError, OSError) as e:
        print(f"sitebot campaign report: error: {e}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0
