"""``sitebot demo``: the main job. A simulated site mission, headless, outputs in one folder.

Until the mission's skills exist (later issues) the mission is a scripted tour: the
simulator and the ``tour`` node run as separate processes from ``launch/demo.launch.yaml``;
this command watches them, prints progress, and writes to ``--out``:

  launch.log        every line the processes printed
  tour.json         the tour node's report (stops, outcomes, arrival times)
  snapshots/*.png   the camera image at each stop
  trajectory.csv    ground truth and odometry (map frame) over time
  map.png           the world's map with zones, places, the true and the odometry path
  summary.json      outcome, distances, sim/wall time, real-time factor, odometry drift
"""
from __future__ import annotations

import argparse
import bisect
import csv
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from sitebot.errors import SitebotError
from sitebot.site.registry import ZoneKind
from sitebot.sim.world import WorldSpec, load_world

__all__ = ["main", "draw_map"]


def _to_map(odom: list, start: tuple[float, float, float]) -> list:
    sx, sy, syaw = start
    c, s = math.cos(syaw), math.sin(syaw)
    return [(t, sx + c * x - s * y, sy + s * x + c * y, syaw + yaw) for t, x, y, yaw in odom]


def draw_map(world: WorldSpec, truth: list, odom_map: list, stops: list,
             px_per_m: float = 20.0) -> np.ndarray:
    """A BGR picture of the world: obstacles, zones, places, true and odometry paths."""
    grid = world.occupancy_grid(0.05, 0.0)
    img = np.flipud(np.where(grid.occupied, 70, 245).astype(np.uint8))  # row 0 = top = y_max
    scale = px_per_m * grid.resolution_m
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h = img.shape[0]

    def px(x: float, y: float) -> tuple[int, int]:
        return (int((x - grid.origin_x) * px_per_m), int(h - (y - grid.origin_y) * px_per_m))

    colors = {ZoneKind.KEEP_OUT: (60, 60, 220), ZoneKind.SLOW: (40, 200, 230),
              ZoneKind.RESTRICTED: (220, 120, 40)}
    overlay = img.copy()
    for z in world.registry.zones:
        pts = np.array([px(x, y) for x, y in z.polygon], np.int32)
        cv2.fillPoly(overlay, [pts], colors[z.kind])
    img = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)
    for z in world.registry.zones:
        pts = np.array([px(x, y) for x, y in z.polygon], np.int32)
        cv2.polylines(img, [pts], True, colors[z.kind], 2)
    for path, color in ((odom_map, (200, 90, 30)), (truth, (40, 160, 40))):
        if len(path) > 1:
            pts = np.array([px(x, y) for _, x, y, _ in path], np.int32)
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
    for i, st in enumerate(stops, 1):
        x, y = st["goal"][0], st["goal"][1]
        ok = st["outcome"] == "reached"
        cv2.circle(img, px(x, y), 6, (40, 160, 40) if ok else (40, 40, 220), -1)
        cv2.putText(img, f"{i} {st['place']}", (px(x, y)[0] + 8, px(x, y)[1] - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
    legend = [("true path", (40, 160, 40)), ("odometry", (200, 90, 30)),
              ("keep-out", colors[ZoneKind.KEEP_OUT]), ("slow", colors[ZoneKind.SLOW]),
              ("restricted", colors[ZoneKind.RESTRICTED])]
    for i, (label, color) in enumerate(legend):
        cv2.rectangle(img, (10, 10 + 18 * i), (24, 22 + 18 * i), color, -1)
        cv2.putText(img, label, (30, 21 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (20, 20, 20), 1, cv2.LINE_AA)
    return img


def _nearest(series: list, t: float):
    if not series:
        return None
    ts = [s[0] for s in series]
    i = min(bisect.bisect_left(ts, t), len(series) - 1)
    if i > 0 and abs(ts[i - 1] - t) < abs(ts[i] - t):
        i -= 1
    return series[i]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="sitebot demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="substation")
    ap.add_argument("--route", default="", help="route id (default: the world's longest)")
    ap.add_argument("--out", default="out/demo", help="output folder (replaced)")
    ap.add_argument("--no-dock", action="store_true", help="do not end the tour at the dock")
    ap.add_argument("--real-time-factor", type=float, default=0.0,
                    help="0 (default) runs the simulation as fast as it can")
    ap.add_argument("--timeout", type=float, default=900.0, help="wall-clock limit [s]")
    a = ap.parse_args(argv)

    from sitebot.launcher import launched
    from sitebot.nodes.observer import TrajectoryObserver

    world = load_world(a.world)
    out = Path(a.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = open(out / "launch.log", "w", buffering=1)

    def on_line(line: str) -> None:
        log.write(line + "\n")
        if line.startswith("[tour]") or "[ERROR]" in line or "process has died" in line:
            print(line.replace("[tour] ", "", 1) if line.startswith("[tour] [INFO]") else line,
                  flush=True)

    # The demo's processes and its own observer share one DDS domain, kept on this host
    # (a caller's ROS_DOMAIN_ID is respected; otherwise one is picked so that two demos on
    # one machine do not mix).
    os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = {k: os.environ[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    print(f"sitebot demo: world '{world.id}', outputs in {out}", flush=True)
    t_wall0 = time.monotonic()
    observer = TrajectoryObserver()
    try:
        with launched("demo.launch.yaml",
                      {"world": a.world, "route": a.route, "out_dir": str(out),
                       "dock": "false" if a.no_dock else "true",
                       "real_time_factor": str(a.real_time_factor)},
                      env=env, on_line=on_line) as h:
            deadline = t_wall0 + a.timeout
            while time.monotonic() < deadline:
                if "tour" in h.exit_codes or h.failed:
                    break
                time.sleep(0.2)
            codes = dict(h.exit_codes)
            failed = list(h.failed)
        wall_s = time.monotonic() - t_wall0
    finally:
        truth, odom = observer.snapshot()
        sim_time = observer.sim_time_s
        observer.close()
        log.close()

    start = tuple(world.spawn_poses["robot1"])
    odom_map = _to_map(odom, start)
    report_path = out / "tour.json"
    tour = json.loads(report_path.read_text()) if report_path.exists() else {"stops": [], "success": False}
    with open(out / "trajectory.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "t_s", "x_m", "y_m", "yaw_rad"])
        for t, x, y, yaw in truth:
            w.writerow(["truth", f"{t:.3f}", f"{x:.4f}", f"{y:.4f}", f"{yaw:.4f}"])
        for t, x, y, yaw in odom_map:
            w.writerow(["odom", f"{t:.3f}", f"{x:.4f}", f"{y:.4f}", f"{yaw:.4f}"])
    cv2.imwrite(str(out / "map.png"), draw_map(world, truth, odom_map, tour["stops"]))

    dist = sum(math.dist(p[1:3], q[1:3]) for p, q in zip(truth, truth[1:]))
    rows = []
    for st in tour["stops"]:
        tr = _nearest(truth, st["arrival_sim_time_s"])
        od = _nearest(odom_map, st["arrival_sim_time_s"])
        goal_err = math.dist(tr[1:3], st["goal"][:2]) if tr else math.nan
        drift = math.dist(tr[1:3], od[1:3]) if tr and od else math.nan
        rows.append({**{k: st[k] for k in ("index", "place", "outcome", "arrival_sim_time_s")},
                     "true_goal_error_m": round(goal_err, 3), "odom_drift_m": round(drift, 3)})
    evaluated = len(truth) > 0 and len(odom) > 0
    tour_ok = bool(tour.get("success")) and codes.get("tour") == 0 and not \
        [n for n in failed if n != "tour"] and evaluated
    summary = {
        "world": world.id, "success": tour_ok, "evaluated": evaluated, "stops": rows,
        "stops_reached": sum(r["outcome"] == "reached" for r in rows),
        "stops_total": len(rows),
        "distance_travelled_m": round(dist, 2),
        "sim_time_s": round(sim_time, 2) if math.isfinite(sim_time) else None,
        "wall_time_s": round(wall_s, 2),
        "real_time_factor": round(sim_time / wall_s, 2) if math.isfinite(sim_time) else None,
        "exit_codes": codes, "failed_processes": failed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    print(f"\n{'#':>2}  {'place':<26} {'outcome':<9} {'t [s]':>7} {'goal err [m]':>12} {'odom drift [m]':>14}")
    for r in rows:
        print(f"{r['index']:>2}  {r['place']:<26} {r['outcome']:<9} {r['arrival_sim_time_s']:>7.1f} "
              f"{r['true_goal_error_m']:>12.3f} {r['odom_drift_m']:>14.3f}")
    print(f"\n{summary['stops_reached']}/{summary['stops_total']} stops reached, "
          f"{dist:.1f} m driven, {summary['sim_time_s']} s simulated in {wall_s:.1f} s wall "
          f"(real-time factor {summary['real_time_factor']}); outputs in {out}")
    if not tour_ok:
        print("demo FAILED: " + (f"processes failed: {failed}" if failed else
                                 "the observer received no ground truth/odometry, so the run "
                                 "could not be evaluated" if not evaluated else
                                 "the tour did not reach every stop" if tour["stops"] else
                                 "no tour report (timed out?)"), file=sys.stderr)
        return 1
    return 0
