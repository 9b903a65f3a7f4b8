"""``sitebot bench profile SCENARIO``: where a regression run's CPU goes, per process.

Runs one scenario of ``tests/scenarios`` through ``sitebot regress`` (its own DDS domain,
the whole stack as the suite runs it) and samples every process of the run with psutil:
CPU seconds (user + system, all threads) per simulated second.  With ``--py-spy`` each
Python process is also sampled by py-spy (non-blocking, so the stack is not paused) and its
samples are sorted into what the time went to: physics, lidar ray casts, camera rendering,
message conversion, DDS, perception, localization, planning, executor, ...  (py-spy adds a
few percent of CPU per process: take the CPU figures from a run without it.)

    sitebot bench profile substation_read_gauge_instruction [--py-spy] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["main", "categorise", "process_name", "CATEGORIES"]

#: (category, pattern) tried on each frame from the innermost outwards; the first frame that
#: matches any pattern names the sample's category
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("physics", r"stepSimulation"),
    ("lidar/depth ray casts", r"rayTestBatch|RaycastingScene|cast_rays"),
    ("camera rendering", r"getCameraImage"),
    ("message conversion", r"sitebot/nodes/convert|convert_images\.py|numpy_msg|_array_to"),
    ("DDS publish/take", r"rclpy/publisher\.py|rclpy/subscription\.py|take_message|"
                         r"serialize|rclpy/executors\.py.*(_take|take)"),
    ("perception", r"sitebot/perception/"),
    ("localization", r"sitebot/localization/"),
    ("navigation/planning", r"sitebot/navigation/"),
    ("arm planning", r"sitebot/arm/"),
    ("safety", r"sitebot/safety/"),
    ("executor/planner", r"sitebot/executor/|sitebot/language/"),
    ("control loop", r"sitebot/control/"),
    ("sensor models", r"sitebot/sim/"),
    ("recording (regress driver)", r"sitebot/regress/"),
    ("rclpy executor", r"rclpy/executors\.py|rclpy/"),
    ("launch", r"sitebot/launcher/|launch/"),
)
_COMPILED = tuple((c, re.compile(p)) for c, p in CATEGORIES)


def categorise(frames: list[str]) -> str:
    """The category of one sampled stack (outermost first, as py-spy writes them)."""
    for frame in reversed(frames):
        for cat, rx in _COMPILED:
            if rx.search(frame):
                return cat
    return "other"


def process_name(cmdline: list[str]) -> str:
    """A readable name for one process of the run from its command line."""
    for arg in cmdline:
        m = re.search(r"__node:=([\w/]+)", arg)
        if m:
            return m.group(1)
    for arg in cmdline:
        m = re.search(r"sitebot\.(?:nodes|regress)\.(\w+)", arg)
        if m:
            return m.group(1)
    for arg in cmdline[:3]:
        base = os.path.basename(arg)
        if base and not base.startswith("python") and not base.startswith("-"):
            return base
    return os.path.basename(cmdline[0]) if cmdline else "?"


def _read_pyspy(path: Path) -> Counter:
    out: Counter = Counter()
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        out[categorise(stack.split(";"))] += int(n)
    return out


def profile(scenario: str, out: Path, py_spy: bool, interval_s: float = 0.25) -> dict:
    import psutil
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    spy_dir = out / "py-spy"
    spy_dir.mkdir()
    exe = shutil.which("sitebot") or str(Path(sys.executable).parent / "sitebot")
    cmd = [exe, "regress", "tests/scenarios", "--filter",
           scenario, "--jobs", "1", "--out", str(out / "regress"), "--quiet"]
    runner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    me = psutil.Process(runner.pid)
    cpu: dict[int, list[tuple[float, float]]] = defaultdict(list)   # (wall, CPU s)
    names: dict[int, str] = {}
    spies: list[subprocess.Popen] = []
    spy_exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    while runner.poll() is None:
        try:
            procs = [me] + me.children(recursive=True)
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    total = t.user + t.system
                    if p.pid not in names:
                        cl = p.cmdline()
                        names[p.pid] = ("regress (runner)" if p.pid == runner.pid
                                        else process_name(cl))
                        if py_spy and cl and "python" in os.path.basename(cl[0]) \
                                and p.pid != runner.pid:
                            spies.append(subprocess.Popen(
                                [spy_exe, "record", "--pid", str(p.pid), "--nonblocking",
                                 "--rate", "50", "--format", "raw", "--output",
                                 str(spy_dir / f"{names[p.pid]}.{p.pid}.txt")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                cpu[p.pid].append((time.time(), total))
            except psutil.Error:
                pass
        time.sleep(interval_s)
    for s in spies:
        try:
            s.wait(timeout=20)
        except subprocess.TimeoutExpired:
            s.kill()
    results = sorted((out / "regress").rglob("result.json"))
    if not results:
        raise SystemExit(f"sitebot bench profile: no run of {scenario!r} ended with a result")
    res = json.loads(results[0].read_text())
    m = res.get("metrics", {})
    sim_s = float(m.get("sim_time_s") or 0.0)
    # the simulated part of the run: it ends when the stack is stopped (the simulator's last
    # sample) and lasted the run's wall time less its start-up; start-up (imports, discovery)
    # is counted apart
    sims = [pid for pid, n in names.items() if n == "simulator"]
    t_end = cpu[sims[0]][-1][0] if sims else time.time()
    t_up = t_end - (float(m.get("wall_time_s") or 0.0) - float(m.get("startup_wall_s") or 0.0))
    per: dict[str, float] = defaultdict(float)
    startup: dict[str, float] = defaultdict(float)
    for pid, series in cpu.items():
        before = [c for t, c in series if t <= t_up]
        upto = [c for t, c in series if t <= t_end] or [0.0]
        per[names[pid]] += upto[-1] - (before[-1] if before else 0.0)
        startup[names[pid]] += before[-1] if before else 0.0
    cats: dict[str, Counter] = defaultdict(Counter)
    for f in spy_dir.glob("*.txt"):
        cats[f.name.split(".")[0]] += _read_pyspy(f)
    return {"scenario": scenario, "status": res.get("status"), "sim_time_s": sim_s,
            "real_time_factor": m.get("real_time_factor"),
            "cpu_s": dict(per), "startup_cpu_s": dict(startup),
            "startup_wall_s": m.get("startup_wall_s"), "categories": {k: dict(v) for k, v in cats.items()}}


def report(r: dict) -> str:
    sim = max(r["sim_time_s"], 1e-9)
    lines = [f"{r['scenario']}: {r['status']}, {r['sim_time_s']:.1f} s simulated, "
             f"real-time factor {r['real_time_factor']}; start-up {r['startup_wall_s']:.1f} s "
             f"wall, {sum(r['startup_cpu_s'].values()):.1f} s CPU (not counted below)",
             f"{'process':<26} {'CPU s':>7} {'CPU s / sim s':>14}  where (py-spy samples)"]
    total = 0.0
    for name, c in sorted(r["cpu_s"].items(), key=lambda kv: -kv[1]):
        total += c
        cat = r["categories"].get(name, {})
        n = sum(cat.values())
        where = ", ".join(f"{k} {100 * v / n:.0f} %" for k, v in
                          sorted(cat.items(), key=lambda kv: -kv[1])[:4] if v / n >= 0.05)
        lines.append(f"{name:<26} {c:7.1f} {c / sim:14.3f}  {where}")
    lines.append(f"{'total':<26} {total:7.1f} {total / sim:14.3f}  "
                 f"(on 2 cores at most {2 * sim / max(total, 1e-9):.2f}x real time)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench profile", description=__doc__.split("\n")[0])
    ap.add_argument("scenario", help="scenario name (as `sitebot regress --list` shows)")
    ap.add_argument("--py-spy", action="store_true", help="also sample every Python process")
    ap.add_argument("--out", default="out/profile", help="output folder")
    ap.add_argument("--json", help="write the figures here as JSON")
    a = ap.parse_args(argv)
    r = profile(a.scenario, Path(a.out), a.py_spy)
    print(report(r), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2))
    return 0 if r["status"] == "passed" else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
