"""``sitebot bench nav``: global planning time per world at 5 cm, side by side with the
same planner's search on the whole fine grid, and the controller's cycle time.

Core only (no ROS). For each world: the costmap from the world's static map and zones;
a fixed, seeded set of start/goal pairs drawn from the cells where a goal is allowed; the
planner's median and p95 time over all pairs (search and smoothing included), and, on the
first ``--baseline-pairs`` of them, the baseline: the same :class:`GlobalPlanner` without
its coarse pass (``coarse_factor`` 0: the fine search over the whole map, smoothing included)
on the same costmap, with the ratio of their times. The 30 m x 30 m
substation is also planned on its central 20 m x 20 m crop (the size the issue's 50 ms aim
names). Then the control step (behaviour + regulated pure pursuit + collision check) and the
scan integration + costmap update are timed on a kinematic drive.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import statistics
import time

import numpy as np

from sitebot.errors import SitebotError
from sitebot.navigation.behaviour import Goal, Navigator
from sitebot.navigation.controller import RegulatedPurePursuit
from sitebot.navigation.costmap import INSCRIBED, Costmap, CostmapConfig
from sitebot.navigation.planner import GlobalPlanner, PlanError, PlannerConfig
from sitebot.sim.world_loader import load_world

WORLDS = ("substation", "construction", "datacentre")


def _pairs(cm: Costmap, n: int, rng: np.random.Generator, min_dist: float = 3.0):
    free_r, free_c = np.nonzero(cm.cost < INSCRIBED)
    out = []
    tries = 0
    while len(out) < n and tries < 100 * n:
        tries += 1
        i, j = rng.integers(0, free_r.size, 2)
        a = cm.center(free_r[i], free_c[i])
        b = cm.center(free_r[j], free_c[j])
        if math.dist(a, b) < min_dist or cm.forbidden_reason(*b) is not None:
            continue
        out.append(((float(a[0]), float(a[1]), float(rng.uniform(-math.pi, math.pi))),
                    (float(b[0]), float(b[1]), float(rng.uniform(-math.pi, math.pi)))))
    return out


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs), q)) if xs else math.nan


def _timed(fn):
    """(result or the PlanError/SitebotError raised, wall [s], CPU time of this process [s])."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = fn()
    except SitebotError as e:
        out = e
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_world(label: str, cm: Costmap, n_pairs: int, n_base: int, seed: int,
                planner: GlobalPlanner) -> dict:
    rng = np.random.default_rng(seed)
    pairs = _pairs(cm, n_pairs, rng)
    planner._cache_key = None
    _, prep_wall, prep_cpu = _timed(lambda: planner.prepare(cm))
    walls, cpus, lengths, methods, fails = [], [], [], {}, 0
    for s, g in pairs:
        p, tw, tc = _timed(lambda: planner.plan(cm, s, g))
        walls.append(tw)
        cpus.append(tc)
        if isinstance(p, PlanError):
            fails += 1
            continue
        lengths.append(p.length_m)
        methods[p.method] = methods.get(p.method, 0) + 1
    base = GlobalPlanner(dataclasses.replace(planner.config, coarse_factor=0))
    base.prepare(cm)
    ratios, base_cpu = [], []
    for k, (s, g) in enumerate(pairs[:n_base]):
        _, tw, tc = _timed(lambda: base.plan(cm, s, g))
        base_cpu.append(tc)
        ratios.append(tc / max(cpus[k], 1e-9))
    cells = cm.shape[0] * cm.shape[1]
    ms = lambda xs, q=50: 1e3 * _pct(xs, q)  # noqa: E731
    print(f"{label:<27} {cm.shape[1]}x{cm.shape[0]} ({cells / 1e3:.0f}k cells), {len(pairs)} "
          f"pairs, failed {fails}, methods {methods}, median length "
          f"{statistics.median(lengths) if lengths else math.nan:.1f} m")
    print(f"{'':<27} CPU  median {ms(cpus):6.1f} ms  p95 {ms(cpus, 95):6.1f} ms  | wall median "
          f"{ms(walls):6.1f} ms  p95 {ms(walls, 95):6.1f} ms  | per costmap change "
          f"(factors + coarse grid) {1e3 * prep_cpu:.1f} ms CPU")
    if base_cpu:
        print(f"{'':<27} baseline (fine search on the whole map), first {len(base_cpu)} "
              f"pairs: CPU median {ms(base_cpu):7.1f} ms vs ours "
              f"{ms(cpus[:len(base_cpu)]):5.1f} ms: baseline/ours median ratio "
              f"{statistics.median(ratios):.1f}x")
    return {"median_ms": ms(cpus), "p95_ms": ms(cpus, 95)}


def bench_control(world: str, seconds: float = 40.0) -> None:
    w = load_world(world)
    cm = Costmap.from_site(w)
    nav = Navigator(GlobalPlanner(), RegulatedPurePursuit(), static_costmap=copy.deepcopy(cm))
    s = w.spawn_poses["robot1"]
    # the farthest allowed place: a long drive
    places = [p for p in w.registry.places if cm.forbidden_reason(p.x, p.y) is None]
    target = max(places, key=lambda p: math.hypot(p.x - s.x, p.y - s.y))
    nav.start(Goal(target.x, target.y, target.yaw, target.id), 0.0)
    pose = [s.x, s.y, s.yaw]
    dt, t = 0.05, 0.0
    step_t, scan_t = [], []
    n = 720
    while t < seconds:
        if round(t / dt) % 2 == 0:     # a 10 Hz scan (a ring at 3 m) into a separate costmap
            ranges = np.full(n, 3.0)
            ranges[::3] = np.inf
            t0 = time.process_time()
            cm.integrate_scan(tuple(pose), ranges, 0.0, 2 * math.pi / n, 0.1, 20.0, t)
            cm.update(t)
            scan_t.append(time.process_time() - t0)
        t0 = time.process_time()
        out = nav.step(t, tuple(pose), nav.static)
        step_t.append(time.process_time() - t0)
        if out.outcome is not None:
            break
        pose[0] += out.v * math.cos(pose[2]) * dt
        pose[1] += out.v * math.sin(pose[2]) * dt
        pose[2] += out.w * dt
        t += dt
    steady = step_t[5:] or step_t
    print(f"control step, CPU ({world}, to {target.id}, {len(step_t)} steps, first plan included "
          f"in the max): median {1e3 * statistics.median(steady):.2f} ms, p95 "
          f"{1e3 * _pct(steady, 95):.2f} ms, max {1e3 * max(step_t):.1f} ms; outcome "
          f"{out.outcome.code if out.outcome else out.state}")
    print(f"scan integration + costmap update, CPU (720 beams, 4 m marking, 5 m raytrace): median "
          f"{1e3 * statistics.median(scan_t):.2f} ms, p95 {1e3 * _pct(scan_t, 95):.2f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench nav", description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=30, help="start/goal pairs per world")
    ap.add_argument("--baseline-pairs", type=int, default=5,
                    help="pairs also planned by the baseline (coarse factor 0)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--worlds", nargs="*", default=list(WORLDS))
    ap.add_argument("--coarse-factor", type=int, default=PlannerConfig().coarse_factor,
                    help="0 = fine search on the whole map")
    args = ap.parse_args(argv)
    if args.pairs < 1 or args.baseline_pairs < 0:
        ap.error("--pairs must be >= 1 and --baseline-pairs >= 0")
    planner = GlobalPlanner(PlannerConfig(coarse_factor=args.coarse_factor))
    cfg = CostmapConfig()
    print(f"global planning at {cfg.resolution_m:g} m (footprint {cfg.footprint_radius_m:g} m, "
          f"inflation {cfg.inflation_radius_m:g} m), coarse factor {args.coarse_factor}, "
          f"seed {args.seed}; times include smoothing. CPU = this process's CPU time (the "
          f"figure to compare on a shared machine), wall = elapsed")
    for name in args.worlds:
        w = load_world(name)
        cm = Costmap.from_site(w, cfg)
        bench_world(name, cm, args.pairs, args.baseline_pairs, args.seed, planner)
        if cm.width_m > 20.5 or cm.height_m > 20.5:
            cx, cy = w.bounds.center
            crop = Costmap.from_site(w, cfg, crop=(cx - 10, cy - 10, cx + 10, cy + 10))
            bench_world(f"{name} (20x20 m crop)", crop, args.pairs, args.baseline_pairs,
                        args.seed, planner)
    bench_control(args.worlds[0] if args.worlds else "substation")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
