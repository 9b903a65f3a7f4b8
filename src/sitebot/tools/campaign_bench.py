"""``sitebot bench campaign``: a campaign's throughput on the local pool and on Ray.

The same small campaign (default: ``tests/campaign/templates/substation_drive_short_random.yaml``,
4 seeds, 2 at a time) runs twice in one invocation, one backend after the other, each as a
``sitebot campaign`` command of its own into a fresh folder: on the local process pool,
then as Ray tasks on a private Ray instance of the same size (``--ray local``).  Printed
per backend: runs per hour and simulated seconds per wall-clock second (over the whole
command: Python's start, the draws' checks, Ray's start, the runs), the campaign's own
wall time (the runs alone) and, for Ray, how long its instance took to start; then Ray's
overhead, the extra wall time in percent of the local pool's.  ``--rounds N`` alternates
the backends N times and adds the rounds up, so that a change in the machine's other load
weighs on both alike.

    sitebot bench campaign [--runs 4] [--jobs 2] [--run-cpus 1] [--rounds 1] [TEMPLATE ...]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "DEFAULT_TEMPLATE", "measure"]

DEFAULT_TEMPLATE = (Path(__file__).resolve().parents[3] / "tests" / "campaign" / "templates"
                    / "substation_drive_short_random.yaml")
#: the sitebot command beside this interpreter (the venv's console script)
_SITEBOT = str(Path(sys.executable).with_name("sitebot"))


def measure(templates: list[str], out: Path, runs: int, jobs: int, extra: list[str]) -> dict:
    """Run one campaign into ``out`` (a fresh folder) and return its figures: ``wall_s``
    (the whole command), ``pool_wall_s`` (campaign.json's: the runs alone), ``runs``,
    ``verdicts``, ``sim_s`` (simulated seconds of all runs), ``ray_start_s`` (or None) and
    the command's exit status."""
    cmd = [_SITEBOT, "campaign", *templates, "--runs", str(runs), "--jobs", str(jobs),
           "--out", str(out), "--quiet", *extra]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    camp_file = out / "campaign.json"
    if not camp_file.is_file():
        raise RuntimeError(f"{' '.join(cmd)} wrote no {camp_file} (exit {p.returncode}):\n"
                           + (p.stdout + p.stderr)[-2000:])
    camp = json.loads(camp_file.read_text())
    sim = 0.0
    for r in camp["runs"]:
        try:
            res = json.loads((Path(r["run_dir"]) / "result.json").read_text())
            sim += float(res.get("metrics", {}).get("sim_time_s") or 0.0)
        except (OSError, ValueError, TypeError):
            pass                                   # a run without a result adds no sim time
    up = re.search(r"up in ([0-9.]+) s", p.stdout)
    return {"wall_s": wall, "pool_wall_s": float(camp.get("wall_s") or 0.0),
            "runs": len(camp["runs"]),
            "verdicts": sum(r["status"] in ("passed", "failed", "skipped")
                            for r in camp["runs"]),
            "sim_s": sim, "ray_start_s": float(up.group(1)) if up else None,
            "exit": p.returncode}


def _total(rounds: list[dict]) -> dict:
    """The rounds of one backend added up (Ray's start: the mean)."""
    out = {k: sum(f[k] for f in rounds)
           for k in ("wall_s", "pool_wall_s", "runs", "verdicts", "sim_s")}
    ups = [f["ray_start_s"] for f in rounds if f["ray_start_s"] is not None]
    out["ray_start_s"] = sum(ups) / len(ups) if ups else None
    out["exit"] = max(f["exit"] for f in rounds)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench campaign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("templates", nargs="*", default=[str(DEFAULT_TEMPLATE)],
                    help="template files or folders (default: the short drive template)")
    ap.add_argument("--runs", type=int, default=4, help="runs (seeds) per template")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time on either backend")
    ap.add_argument("--run-cpus", type=float, default=1.0, help="CPUs each Ray task declares")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the backends")
    ap.add_argument("--keep", metavar="DIR", help="keep the campaign folders in DIR")
    a = ap.parse_args(argv)
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="sitebot-bench-campaign-"))
    backends = [("local pool", "local", []),
                ("ray local", "ray", ["--ray", "local", "--run-cpus", str(a.run_cpus)])]
    print(f"sitebot bench campaign: {a.runs} run(s) per template of "
          f"{', '.join(Path(t).name for t in a.templates)}, {a.jobs} at a time, on each "
          f"backend in turn, {a.rounds} round(s)", flush=True)
    rounds: dict[str, list[dict]] = {name: [] for name, _, _ in backends}
    try:
        for k in range(max(1, a.rounds)):
            for name, folder, extra in backends:
                out = base / f"{folder}{k}"
                if out.exists():
                    shutil.rmtree(out)
                f = measure(a.templates, out, a.runs, a.jobs, extra)
                rounds[name].append(f)
                print(f"  round {k + 1}, {name}: {f['runs']} run(s) in {f['wall_s']:.1f} s",
                      flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    figures = {name: _total(fs) for name, fs in rounds.items()}
    print(f"\n{'backend':<11} {'runs':>4} {'verdicts':>8} {'wall s':>7} {'runs/h':>7} "
          f"{'sim s/wall s':>12} {'runs only s':>11} {'ray up s':>8}")
    for name, f in figures.items():
        up = f"{f['ray_start_s']:.1f}" if f["ray_start_s"] is not None else "-"
        print(f"{name:<11} {f['runs']:>4} {f['verdicts']:>8} {f['wall_s']:>7.1f} "
              f"{3600.0 * f['runs'] / f['wall_s']:>7.0f} {f['sim_s'] / f['wall_s']:>12.2f} "
              f"{f['pool_wall_s']:>11.1f} {up:>8}")
    loc, ray = figures["local pool"], figures["ray local"]
    over = 100.0 * (ray["wall_s"] / loc["wall_s"] - 1.0)
    runs_only = (100.0 * (ray["pool_wall_s"] / loc["pool_wall_s"] - 1.0)
                 if loc["pool_wall_s"] > 0 else float("nan"))
    print(f"\nRay's overhead: {over:+.1f} % wall time for the same runs "
          f"({runs_only:+.1f} % for the runs alone, without the commands' and Ray's start)")
    ok = all(f["exit"] == 0 and f["verdicts"] == f["runs"] for f in figures.values())
    if not ok:
        print("warning: a campaign ended with errors or safety violations "
              f"(exit {loc['exit']} local, {ray['exit']} ray)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
