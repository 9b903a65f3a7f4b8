"""Benchmarks of the spatial pipelines (no ROS): prints figures, aims and ratios.

``python -m sitebot.tools.spatial_bench [--repeat N]``, or through ``sitebot bench
perception`` (the perception dispatcher calls :func:`main`). Inputs are synthetic (known
geometry, :mod:`sitebot.tools.spatial_synth`) at the simulator's sizes: a 320x240 depth
image of a floor, crates and a person; a 720-beam scan with two people and six crates.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Callable, Sequence

import numpy as np

__all__ = ["main", "run_bench"]


_CPU: dict[int, float] = {}


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, p95) wall time [ms]; the median process CPU time goes to _CPU (on a shared
    machine the wall time measures the other tenants too; CPU time does not)."""
    fn()                                         # warm up (imports, caches)
    ts, cs = [], []
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
        cs.append((time.process_time() - c0) * 1e3)
    _CPU[len(_CPU)] = float(np.median(cs))
    return float(np.median(ts)), float(np.percentile(ts, 95))


def run_bench(repeat: int = 50) -> list[tuple[str, float, float, float | None, float]]:
    """[(what, median ms, p95 ms, aim ms or None, median CPU ms)]."""
    rows = _run(repeat)
    cpu = iter([_CPU[k] for k in sorted(_CPU)])
    _CPU.clear()
    return [r + ((next(cpu),) if math.isfinite(r[2]) else (math.nan,)) for r in rows]


def _run(repeat: int) -> list[tuple[str, float, float, float | None]]:
    from sitebot.description.urdf import load_robot_description
    from sitebot.perception.cloud import CloudConfig, CloudPipeline
    from sitebot.perception.localmap import LocalMap
    from sitebot.perception.people import Detection, PeopleTracker, PersonDetector, scan_points
    from sitebot.perception.spatial_pipeline import SpatialPerception
    from sitebot.perception.spatial_setup import default_spatial, robot_mounts
    from sitebot.tools.spatial_synth import default_camera, render_depth, render_scan

    T_cam, laser = robot_mounts(load_robot_description())
    K = default_camera(320, 240)
    boxes = [(2.5, -0.8, 0.6, 0.6, 0.6, 0.2), (3.2, 0.9, 0.6, 0.6, 0.6, 0.0),
             (4.0, 0.0, 1.2, 1.0, 0.15, 0.0), (2.0, 1.6, 0.12, 0.12, 0.12, 0.0)]
    person = (3.0, 0.2, 0.225, 1.75)
    depth = render_depth(T_cam, K, 320, 240, boxes=boxes, cylinders=[person])
    rows: list[tuple[str, float, float, float | None]] = []
    for method in ("grid", "dbscan"):
        p = CloudPipeline(CloudConfig(cluster_method=method), T_cam)
        med, p95 = _time(lambda: p.process(depth, K), repeat)
        rows.append((f"point cloud pipeline 320x240 ({method} clustering)", med, p95, 30.0))
        res = p.process(depth, K)
        for stage in ("project_ms", "voxel_ms", "ground_ms", "cluster_ms"):
            rows.append((f"  stage {stage[:-3]} ({method})", res.timings_ms[stage],
                         math.nan, None))

    rng = np.random.default_rng(0)
    crates = [(2.0 * math.cos(a), 2.0 * math.sin(a) + 0.5, 0.6, 0.6, a) for a in
              np.linspace(0.5, 5.5, 6)]
    people = [(3.0, 0.0, 0.225), (-2.0, 2.5, 0.225)]
    ranges, amin, inc = render_scan(laser, circles=people, boxes=crates, noise_m=0.01, rng=rng)
    det = PersonDetector()
    trk = PeopleTracker()
    state = {"t": 0.0}

    def detect_and_track() -> None:
        xy, idx, rr = scan_points(ranges, amin, inc, 0.1, 20.0)
        xy = xy + np.array(laser[:2])
        cand, feats = det.scan_candidates(xy, idx, rr, len(ranges), inc, laser[:2])
        dets = det.detect(cand, feats, None)
        state["t"] += 0.1
        trk.update(dets, state["t"])

    med, p95 = _time(detect_and_track, repeat)
    rows.append(("people detection + tracking per scan (720 beams)", med, p95, 5.0))
    trk2 = PeopleTracker()
    dets10 = [Detection(float(i), float(i % 3), 0.05, 0.8, "scan") for i in range(10)]
    state2 = {"t": 0.0}

    def track_only() -> None:
        state2["t"] += 0.1
        trk2.update(dets10, state2["t"])
    med, p95 = _time(track_only, repeat)
    rows.append(("  tracking alone, 10 people", med, p95, None))

    lm = LocalMap()
    angles = amin + inc * np.arange(len(ranges))
    st = {"t": 0.0}

    def lm_update() -> None:
        st["t"] += 0.1
        lm.update_scan((0.24, 0.0, 0.0), ranges, angles, 0.1, 20.0, st["t"])
    med, p95 = _time(lm_update, repeat)
    rows.append(("local map update per scan (10 m, 5 cm, rays to 6 m)", med, p95, None))
    med, p95 = _time(lambda: lm.grid(), repeat)
    rows.append(("local map grid output (200x200 int8)", med, p95, None))

    # the node's core at the simulator's rates: 1 depth frame + 2 scans + 10 odometry
    sp = SpatialPerception(default_spatial(), T_cam, laser, None, (0.0, 0.0, 0.0))
    clock = {"t": 0.0}

    def cycle() -> None:
        for k in range(10):
            clock["t"] += 0.02
            sp.on_odom(clock["t"], 0.0, 0.0, 0.0)
        sp.on_depth(depth, K, clock["t"])
        for _ in range(2):
            sp.on_scan(ranges, amin, inc, 0.1, 20.0, clock["t"])
    med, p95 = _time(cycle, max(5, repeat // 5))
    rows.append(("node core, one 0.2 s cycle (depth + 2 scans + 10 odom)", med, p95, 200.0))
    return rows


def format_rows(rows) -> str:
    out = [f"{'benchmark [ms]':58s} {'median':>8s} {'p95':>8s} {'CPU':>8s} {'aim':>6s} "
           f"{'aim/median':>10s} {'aim/CPU':>8s}"]
    for what, med, p95, aim, cpu in rows:
        p95s = f"{p95:8.2f}" if math.isfinite(p95) else "       -"
        cpus = f"{cpu:8.2f}" if math.isfinite(cpu) else "       -"
        aims = f"{aim:6.0f}" if aim else "     -"
        ratio = f"{aim / med:9.1f}x" if aim else "         -"
        ratio_c = f"{aim / cpu:7.1f}x" if aim and math.isfinite(cpu) else "       -"
        out.append(f"{what:58s} {med:8.2f} {p95s} {cpus} {aims} {ratio} {ratio_c}")
    out.append("CPU = median process CPU time (all threads); on a shared machine compare it, "
               "not the wall time, with the aims")
    cyc = [r for r in rows if r[0].startswith("node core")]
    if cyc:
        out.append(f"node core sustains {200.0 / cyc[0][1]:.1f}x (wall) / "
                   f"{200.0 / cyc[0][4]:.1f}x (CPU) the simulator's sensor rates "
                   "(5 Hz depth, 10 Hz scan)")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spatial_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=50, help="timed repetitions per figure")
    a = ap.parse_args(list(argv) if argv is not None else None)
    if a.repeat < 1:
        print("--repeat must be >= 1")
        return 2
    print(format_rows(run_bench(a.repeat)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
