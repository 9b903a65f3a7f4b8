"""Lidar scans and depth images: PyBullet against Open3D's RaycastingScene, side by side.

For each world, with the robot at its spawn, at two places of the site and 3 m from the
first person facing them (the dynamic scene in view), in one run:
  * lidar      ``Lidar.scan`` (one ``rayTestBatch``) against ``RaycastLidar.scan``,
  * depth      ``Camera.render`` (tiny renderer: RGB and depth together) against
               ``RaycastDepthCamera.depth`` (depth only), at 320x240 and 640x480,
  * build      building every Open3D scene (static bodies, one per link of a moving body):
               done once per world, and what rebuilding the world for a frame would cost.
Times are CPU time of this process (all its threads; wall time on a shared machine
measures the neighbours), medians of repeated calls, PyBullet and Open3D alternating [ms];
an Open3D frame includes reading the moving links' poses and casting into them, so it costs
the same whether people walk or not. Agreement: fraction of beams / pixels within 2 cm
(both without a return counts as agreeing), median and p99 of the absolute difference
where both have one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable

import numpy as np

__all__ = ["main", "agreement"]

PLACES = {
    "substation": ("t1_bay", "yard_centre"),
    "construction": ("laydown_area", "scaffold_base"),
    "datacentre": ("rack_a3_front", "hot_aisle_west"),
}
TOLERANCE_M = 0.02


def agreement(a: np.ndarray, b: np.ndarray, tol_m: float = TOLERANCE_M
              ) -> tuple[float, float, float]:
    """(fraction within ``tol_m`` or both non-finite alike, median and p99 |a - b| [m]
    over the elements finite in both)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    fin = np.isfinite(a) & np.isfinite(b)
    d = np.abs(a[fin] - b[fin])
    alike = ~np.isfinite(a) & ~np.isfinite(b) & ((a == b) | (np.isnan(a) & np.isnan(b)))
    frac = (int((d <= tol_m).sum()) + int(alike.sum())) / max(1, a.size)
    if d.size == 0:
        return frac, 0.0, 0.0
    return frac, float(np.median(d)), float(np.percentile(d, 99))


def _cpu_ms(f: Callable[[], object]) -> float:
    t0 = time.process_time()
    f()
    return (time.process_time() - t0) * 1e3


def _time_pair(f_pb: Callable[[], object], f_o3d: Callable[[], object], n: int
               ) -> tuple[float, float]:
    """Median CPU ms of each, calls interleaved so that machine load hits both alike."""
    ts: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        ts[0].append(_cpu_ms(f_pb))
        ts[1].append(_cpu_ms(f_o3d))
    return statistics.median(ts[0]), statistics.median(ts[1])


def bench_world(world: str, repeats: int, nthreads: int) -> list[dict]:
    from sitebot.sim.raycast import RaycastDepthCamera, RaycastLidar, RaycastWorld
    from sitebot.sim.sensors import Camera, CameraConfig
    from sitebot.sim.simulation import SimConfig, SiteSimulation

    rows: list[dict] = []
    with SiteSimulation(world, config=SimConfig(camera_enabled=True)) as sim:
        cid = sim.client_id
        rig = sim.robot("")
        body, group = rig.body.body_id, rig.body.collision_group
        lidar_world = RaycastWorld(cid, source="collision", exclude_group=group,
                                   nthreads=nthreads)
        depth_world = RaycastWorld(cid, source="visual", exclude_group=group, nthreads=nthreads)
        lidar = RaycastLidar(lidar_world, body, rig.body.link_index("laser_link"),
                             sim.config.lidar)
        cam_link = rig.body.link_index("camera_link")
        cams = []
        for w, h in ((320, 240), (640, 480)):
            cfg = CameraConfig(width=w, height=h)
            cams.append((f"depth {w}x{h}", Camera(cid, body, cam_link, cfg),
                         RaycastDepthCamera(depth_world, body, cam_link, cfg)))

        for label, w_ in (("lidar (collision)", lidar_world), ("depth (visual)", depth_world)):
            ms = statistics.median(_cpu_ms(w_.rebuild) for _ in range(max(3, repeats // 2)))
            rows.append({"world": world, "pose": "-", "frame": f"build {label}",
                         "build_ms": ms, "dynamic_bodies": len(w_.dynamic_body_ids),
                         "instances": len(w_.instances), "skipped_shapes": len(w_.skipped)})
        places = [("spawn", tuple(sim.world.spawn_poses["robot1"]))]
        places += [(p, tuple(sim.world.registry.place(p).pose)) for p in PLACES.get(world, ())]
        people = sim.scene.people()
        if people:
            # 3 m west of the first person, facing east
            places.append((f"3m to {people[0].id}", (people[0].x - 3.0, people[0].y, 0.0)))
        for name, pose in places:
            rig.body.reset(pose)
            a, b = rig.lidar.scan().ranges, lidar.scan().ranges
            ms = _time_pair(rig.lidar.scan, lidar.scan, repeats * 3)
            rows.append(_row(world, name, f"lidar {len(a)} beams", ms, agreement(a, b)))
            for label, pb_cam, o3d_cam in cams:
                a = pb_cam.render(sim.lighting).depth_m
                b = o3d_cam.depth()
                n = repeats if "320" in label else max(3, repeats // 2)
                ms = _time_pair(lambda: pb_cam.render(sim.lighting), o3d_cam.depth, n)
                rows.append(_row(world, name, label, ms, agreement(a, b)))
    return rows


def _row(world: str, pose: str, frame: str, ms: tuple[float, float],
         agree: tuple[float, float, float]) -> dict:
    return {"world": world, "pose": pose, "frame": frame, "pybullet_ms": ms[0],
            "open3d_ms": ms[1], "ratio": ms[0] / ms[1], "within_2cm": agree[0],
            "median_mm": agree[1] * 1e3, "p99_mm": agree[2] * 1e3}


def _print(rows: list[dict]) -> None:
    print(f"{'world':<13}{'pose':<18}{'frame':<24}{'PyBullet':>9}{'Open3D':>8}"
          f"{'PB/O3D':>8}{'<=2cm':>9}{'med mm':>8}{'p99 mm':>8}")
    for r in rows:
        if "build_ms" in r:
            print(f"{r['world']:<13}{r['pose']:<18}{r['frame']:<24}{'-':>9}"
                  f"{r['build_ms']:>8.2f}   ({r['instances']} links of {r['dynamic_bodies']} "
                  f"moving bodies, {r['skipped_shapes']} shapes skipped)")
            continue
        print(f"{r['world']:<13}{r['pose']:<18}{r['frame']:<24}{r['pybullet_ms']:>9.2f}"
              f"{r['open3d_ms']:>8.2f}{r['ratio']:>7.1f}x"
              f"{100 * r['within_2cm']:>8.2f}%{r['median_mm']:>8.2f}{r['p99_mm']:>8.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench ray", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="+", default=list(PLACES))
    ap.add_argument("--repeats", type=int, default=10,
                    help="calls per 320x240 depth figure (lidar 3x, 640x480 half)")
    ap.add_argument("--threads", type=int, default=1,
                    help="Open3D/Embree threads (0 = all cores; PyBullet uses one)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args(argv)
    import open3d
    print(f"lidar and depth per frame [ms], PyBullet vs Open3D {open3d.__version__} "
          f"RaycastingScene ({a.threads or 'all'} thread(s)), {os.cpu_count()} CPUs; "
          "PyBullet depth = getCameraImage (RGB + depth), Open3D = depth only")
    rows: list[dict] = []
    for world in a.worlds:
        rows.extend(bench_world(world, a.repeats, a.threads))
    _print(rows)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
