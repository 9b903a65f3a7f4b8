"""Benchmark of the safety supervisor's cycle: ``python -m sitebot.tools.safety_bench``.

One cycle = a 360-beam scan (source update + clustering), a people message with 10 tracked
people, one gated command (SSM + zones along the arc + combine) and the status
(``update``), on the substation registry (or no registry with ``--no-zones``).  Prints the
median and the 99th percentile of the cycle time over ``--cycles`` cycles and the ratio to
the 0.5 ms target, as wall time and as the thread's CPU time (which a busy machine's
preemption does not inflate).
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Sequence

import numpy as np

from sitebot.safety.config import SafetyConfig
from sitebot.safety.supervisor import Supervisor
from sitebot.safety.types import BaseCommand, Obstacle, RobotState

__all__ = ["main", "run_bench", "TARGET_MS"]

#: the budget of one cycle [ms]
TARGET_MS = 0.5


def _scene_scan(rng: np.random.Generator, people_xy: np.ndarray, n_beams: int
                ) -> np.ndarray:
    """A room of 6 m x 10 m walls with people as 0.25 m-radius circles; ranges [m]."""
    ang = -math.pi + (2 * math.pi / n_beams) * np.arange(n_beams)
    c, s = np.cos(ang), np.sin(ang)
    with np.errstate(divide="ignore"):
        tx = np.where(c > 0, 5.0 / c, np.where(c < 0, -5.0 / c, np.inf))
        ty = np.where(s > 0, 3.0 / s, np.where(s < 0, -3.0 / s, np.inf))
    r = np.minimum(tx, ty)
    for px, py in people_xy:
        # ray-circle intersection
        b = c * px + s * py
        disc = b * b - (px * px + py * py - 0.25 ** 2)
        hit = (disc >= 0) & (b > 0)
        t = b - np.sqrt(np.maximum(disc, 0))
        r = np.where(hit & (t < r), t, r)
    return r + rng.normal(0.0, 0.01, n_beams)


def run_bench(cycles: int = 3000, n_people: int = 10, n_beams: int = 360,
              zones: bool = True, seed: int = 0) -> dict[str, float]:
    """Run the cycle ``cycles`` times; returns {'median_ms', 'p99_ms', 'mean_ms', ...}."""
    rng = np.random.default_rng(seed)
    registry = None
    if zones:
        from sitebot.paths import data_path  # local: only the bench needs the shipped worlds
        from sitebot.site.loader import load_registry
        registry = load_registry(data_path("worlds", "substation.site.yaml"))
    sup = Supervisor(SafetyConfig(), registry, "")
    people_xy = np.column_stack([rng.uniform(1.5, 4.5, n_people),
                                 rng.uniform(-2.5, 2.5, n_people)])
    scans = [_scene_scan(rng, people_xy + rng.normal(0, 0.02, people_xy.shape), n_beams)
             for _ in range(16)]
    people = [Obstacle(float(x), float(y), 0.25, -0.3, 0.1, True, True, "tracker", 0.05)
              for x, y in people_xy]
    pose = (-6.0, -4.6, -0.6)   # heading into the substation slow zone 0.9 m away
    t = 1000.0
    dt = 0.05
    times = np.empty(cycles)
    cpu = np.empty(cycles)
    # warm-up
    for k in range(50):
        t += dt
        _cycle(sup, scans[k % 16], people, pose, t, n_beams)
    for k in range(cycles):
        t += dt
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        _cycle(sup, scans[k % 16], people, pose, t, n_beams)
        times[k] = time.perf_counter_ns() - t0
        cpu[k] = time.thread_time_ns() - c0
    ms = times * 1e-6
    cpu_ms = cpu * 1e-6
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "max_ms": float(ms.max()),
            "cpu_median_ms": float(np.median(cpu_ms)),
            "cpu_p99_ms": float(np.percentile(cpu_ms, 99)), "cycles": cycles,
            "people": n_people, "beams": n_beams, "zones": zones,
            "obstacles": len(sup.obstacles(t)),
            "level": int(sup.status.level) if sup.status else -1}


def _cycle(sup: Supervisor, ranges: np.ndarray, people: list, pose: tuple, t: float,
           n_beams: int) -> None:
    sup.on_scan(ranges, -math.pi, 2 * math.pi / n_beams, t, stamp_s=t)
    sup.on_people(people, t, stamp_s=t)
    sup.on_odometry(0.3, 0.1, t, stamp_s=t)
    sup.on_localization(RobotState(pose[0], pose[1], pose[2], 0.3, 0.1, t), t)
    sup.on_command(BaseCommand(0.6, 0.2, t), t)
    sup.update(t)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sitebot.tools.safety_bench",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=3000)
    ap.add_argument("--people", type=int, default=10)
    ap.add_argument("--beams", type=int, default=360)
    ap.add_argument("--no-zones", action="store_true", help="no site registry")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    r = run_bench(a.cycles, a.people, a.beams, not a.no_zones, a.seed)
    print(f"safety supervisor cycle ({r['beams']} beams, {r['people']} people, "
          f"zones={'on' if r['zones'] else 'off'}, {r['obstacles']} obstacles, "
          f"{r['cycles']} cycles):")
    print(f"  median {r['median_ms']:.3f} ms   p99 {r['p99_ms']:.3f} ms   "
          f"mean {r['mean_ms']:.3f} ms   max {r['max_ms']:.3f} ms")
    print(f"  thread CPU time (without preemption by other processes): median "
          f"{r['cpu_median_ms']:.3f} ms   p99 {r['cpu_p99_ms']:.3f} ms")
    print(f"  target {TARGET_MS} ms: median at {r['median_ms'] / TARGET_MS:.2f}x, "
          f"p99 at {r['p99_ms'] / TARGET_MS:.2f}x (CPU p99 at "
          f"{r['cpu_p99_ms'] / TARGET_MS:.2f}x) of the budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
