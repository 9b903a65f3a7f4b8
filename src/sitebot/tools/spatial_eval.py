"""Evaluation of the spatial pipelines against the simulator's ground truth (no ROS).

``python -m sitebot.tools.spatial_eval --views 12 --seed 0 [--json FILE]``, or through
``sitebot eval perception`` (the perception dispatcher calls :func:`main`).

For each world (substation, construction, datacentre) and ``--views`` views per world, the
robot is placed (teleported, at rest) in :class:`sitebot.sim.simulation.SiteSimulation`, and
a short sequence is run: people walk their scripts, the lidar scans at 10 Hz and the depth
camera renders at 5 Hz, under the four lighting presets in turn (depth and lidar do not
depend on lighting; the presets are cycled to show that). Views are of three kinds:

* ``person``: the robot 1-4.8 m from a walking person, facing anywhere within +-75 deg of
  them (so the person is often outside the camera's 70 deg field: lidar only);
* ``clutter``: extra crates, pallets and carts (boxes of random size and yaw that are not
  in the static map) 1-4 m around the robot, and the world's own movable clutter;
* ``aisle`` (datacentre): between rack rows.

Ground truth: people positions from the scene; a person counts as *visible* when at least
3 lidar rays (cast by this script against PyBullet, noise free) hit their body. Obstacles
from a segmentation render of the same camera view: every body whose visible part above
8 cm and within 3 m (horizontal) spans more than 10 cm.

Metrics (printed as a table): people recall within 5 m (a confirmed track within 0.5 m of a
visible person), false-positive frames (a frame with a confirmed track within 5 m that is
not within 0.75 m of any person), both with the static map and with geometry only; obstacle
recall (at least half of an obstacle's visible points inside a cluster box grown by 5 cm).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from sitebot.types import quaternion_to_yaw

__all__ = ["EvalConfig", "run_eval", "main"]

WORLDS = ("substation", "construction", "datacentre")
PRESETS = ("bright", "dim", "low_sun", "coloured")


@dataclass
class EvalConfig:
    worlds: Sequence[str] = WORLDS
    views: int = 12                  # per world
    seed: int = 0
    scans_per_view: int = 8          # 10 Hz
    warmup_scans: int = 3
    person_range_m: float = 5.0
    obstacle_range_m: float = 3.0
    map_pose_error: tuple[float, float, float] = (0.05, -0.04, math.radians(1.0))
    geometric_baseline: bool = True  # also run without the static map ('geom' columns)


@dataclass
class Tally:
    people_visible: int = 0
    people_found: int = 0
    people_found_geom: int = 0
    frames: int = 0
    fp_frames: int = 0
    fp_frames_geom: int = 0
    obstacles: int = 0
    obstacles_found: int = 0
    views: int = 0
    missed: list = field(default_factory=list)
    fps: list = field(default_factory=list)
    missed_obstacles: list = field(default_factory=list)

    def add(self, o: "Tally") -> None:
        for k, v in asdict(o).items():
            if isinstance(v, list):
                getattr(self, k).extend(v)
            else:
                setattr(self, k, getattr(self, k) + v)


def _camera_seg(sim, rig):
    """Depth and segmentation of the robot's camera view (same view as Camera.render)."""
    import pybullet as pb

    from sitebot.types import quaternion_matrix
    cam = rig.camera
    cfg = cam.config
    link = rig.body.link_index("camera_link")
    st = pb.getLinkState(rig.body.body_id, link, computeForwardKinematics=True,
                         physicsClientId=sim.client_id)
    eye = np.asarray(st[4])
    rot = quaternion_matrix(st[5])
    forward, down = rot[:, 0], -rot[:, 2]
    view = pb.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), (-down).tolist())
    proj = pb.computeProjectionMatrixFOV(fov=math.degrees(cfg.vertical_fov_rad),
                                         aspect=cfg.width / cfg.height, nearVal=cfg.near_m,
                                         farVal=cfg.far_m)
    _, _, _, dbuf, seg = pb.getCameraImage(cfg.width, cfg.height, viewMatrix=view,
                                           projectionMatrix=proj,
                                           renderer=pb.ER_TINY_RENDERER,
                                           physicsClientId=sim.client_id)
    d = np.asarray(dbuf, np.float64).reshape(cfg.height, cfg.width)
    depth = cfg.far_m * cfg.near_m / (cfg.far_m - (cfg.far_m - cfg.near_m) * d)
    depth[d >= 1 - 1e-7] = np.inf
    seg = np.asarray(seg, np.int64).reshape(cfg.height, cfg.width)
    return depth.astype(np.float32), seg & ((1 << 24) - 1)


def _lidar_visible(sim, rig, actor_ids: dict[str, int]) -> dict[str, int]:
    """Beams (noise free) that hit each actor's body first (PyBullet's rays, whatever casts
    the simulated scans: the judge's own view of the world)."""
    import pybullet as pb

    from sitebot.sim.sensors import Lidar
    link = rig.body.link_index("laser_link")
    lid = Lidar(sim.client_id, rig.body.body_id, link, rig.lidar.config)
    st = pb.getLinkState(rig.body.body_id, link, computeForwardKinematics=True,
                         physicsClientId=sim.client_id)
    o = np.asarray(st[4])
    yaw = quaternion_to_yaw(st[5])
    a = lid.config.angles_rad() + yaw
    d = np.column_stack([np.cos(a), np.sin(a), np.zeros_like(a)])
    hits = pb.rayTestBatch(np.broadcast_to(o, d.shape).tolist(),
                           (o + d * 6.0).tolist(), collisionFilterMask=lid.collision_mask,
                           physicsClientId=sim.client_id)
    body = np.array([h[0] for h in hits])
    return {aid: int((body == bid).sum()) for aid, bid in actor_ids.items()}


class _Clutter:
    """Extra boxes (crates, pallets, carts) that are not in the static map."""

    KINDS = (("crate", (0.4, 0.8), (0.4, 0.8), (0.4, 0.9)),
             ("pallet", (1.0, 1.2), (0.8, 1.0), (0.12, 0.18)),
             ("cart", (0.5, 0.9), (0.4, 0.6), (0.8, 1.0)),
             ("post_box", (0.25, 0.35), (0.25, 0.35), (0.8, 1.2)))

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.ids: list[int] = []
        self.specs: list[tuple] = []

    def add(self, rng: np.random.Generator, x: float, y: float) -> None:
        import pybullet as pb
        kind, sx, sy, sz = self.KINDS[int(rng.integers(len(self.KINDS)))]
        size = (rng.uniform(*sx), rng.uniform(*sy), rng.uniform(*sz))
        yaw = rng.uniform(-math.pi, math.pi)
        half = [s / 2 for s in size]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=self.cid)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half,
                                   rgbaColor=[0.6, 0.45, 0.25, 1], physicsClientId=self.cid)
        bid = pb.createMultiBody(0.0, col, vis, [x, y, size[2] / 2],
                                 pb.getQuaternionFromEuler([0, 0, yaw]),
                                 physicsClientId=self.cid)
        self.ids.append(bid)
        self.specs.append((kind, x, y, size, yaw))

    def clear(self) -> None:
        import pybullet as pb
        for b in self.ids:
            pb.removeBody(b, physicsClientId=self.cid)
        self.ids.clear()
        self.specs.clear()


def _free(world, grid, x: float, y: float, margin: float) -> bool:
    if not world.bounds.contains(x, y, 0.5):
        return False
    return world.clearance(x, y)[0] > margin


def _views_for(world, rng: np.random.Generator, n: int) -> list[tuple[str, float]]:
    kinds = ["person", "clutter"] + (["aisle"] if world.id == "datacentre" else [])
    return [(kinds[i % len(kinds)], float(rng.uniform(0, 60))) for i in range(n)]


def _run_world(name: str, cfg: EvalConfig, rng: np.random.Generator, log) -> dict[str, Tally]:
    from sitebot.perception.spatial_pipeline import SpatialPerception
    from sitebot.perception.spatial_setup import default_spatial, robot_mounts
    from sitebot.sim.simulation import RobotSpawn, SimConfig, SiteSimulation
    from sitebot.sim.world_loader import load_world

    world = load_world(name)
    sim = SiteSimulation(world, [RobotSpawn("", tuple(world.spawn_poses["robot1"]))],
                         SimConfig(seed=cfg.seed))
    out: dict[str, Tally] = {}
    try:
        rig = sim.robot("")
        T_cam, laser = robot_mounts(sim.description)
        static_grid = world.occupancy_grid(0.1, default_spatial().static_margin_m, keep_out=False)
        actor_ids = dict(sim.scene.actor_body_ids)
        clutter = _Clutter(sim.client_id)
        for vi, (kind, t0) in enumerate(_views_for(world, rng, cfg.views)):
            preset = PRESETS[vi % len(PRESETS)]
            lighting = sim.scene.lighting(preset)
            pose = _place(kind, world, sim, rng, t0, clutter)
            if pose is None:
                continue
            rig.body.reset(pose)
            err = cfg.map_pose_error
            believed = (pose[0] + err[0], pose[1] + err[1], pose[2] + err[2])
            full = SpatialPerception(default_spatial(), T_cam, laser, static_grid, believed)
            geom = SpatialPerception(default_spatial(), T_cam, laser, None, believed) \
                if cfg.geometric_baseline else None
            tally = out.setdefault(f"{name}/{preset}", Tally())
            tally.views += 1
            for k in range(cfg.scans_per_view):
                t = t0 + 0.1 * k
                sim.scene.update(t, [])
                pipes = (full, geom) if geom is not None else (full,)
                for sp in pipes:
                    sp.on_odom(t, 0.0, 0.0, 0.0)
                if k % 2 == 0:
                    frame = rig.camera.render(lighting)
                    for sp in pipes:
                        sp.on_depth(frame.depth_m, frame.K, t)
                    if k == (cfg.scans_per_view - 1) // 2 * 2:      # the last depth frame
                        _score_obstacles(sim, rig, full, tally, cfg, name, vi)
                scan = rig.lidar.scan(rig.rng)
                outs = [sp.on_scan(scan.ranges, scan.angle_min, scan.angle_increment,
                                   scan.range_min, scan.range_max, t) for sp in pipes]
                if k < cfg.warmup_scans:
                    continue
                _score_people(sim, rig, pose, outs, actor_ids, tally, cfg, name, vi, t)
            clutter.clear()
    finally:
        sim.close()
    return out


def _place(kind, world, sim, rng, t0, clutter):
    """A robot pose for a view (and clutter bodies for 'clutter' views)."""
    sim.scene.update(t0, [])
    people = sim.scene.people()
    for _ in range(200):
        if kind == "person" and people:
            p = people[int(rng.integers(len(people)))]
            d = rng.uniform(1.0, 4.8)
            b = rng.uniform(-math.pi, math.pi)
            x, y = p.x + d * math.cos(b), p.y + d * math.sin(b)
            yaw = math.atan2(p.y - y, p.x - x) + rng.uniform(-1.3, 1.3)
        elif kind == "aisle":
            # between rack rows of the datacentre: y in the aisles, x along the rows
            y = float(rng.choice([-4.2, -0.6, 3.0, 6.6])) + rng.uniform(-0.2, 0.2)
            x = rng.uniform(-4.5, 1.0)
            yaw = float(rng.choice([0.0, math.pi])) + rng.uniform(-0.4, 0.4)
        else:
            b = world.bounds
            x, y = rng.uniform(b.x_min + 1, b.x_max - 1), rng.uniform(b.y_min + 1, b.y_max - 1)
            yaw = rng.uniform(-math.pi, math.pi)
        if not _free(world, None, x, y, 0.5):
            continue
        if any(math.hypot(q.x - x, q.y - y) < 0.8 for q in people):
            continue
        if kind == "clutter":
            placed = 0
            for _ in range(60):
                if placed >= 4:
                    break
                d, b2 = rng.uniform(1.2, 4.0), yaw + rng.uniform(-1.6, 1.6)
                cx, cy = x + d * math.cos(b2), y + d * math.sin(b2)
                if not _free(world, None, cx, cy, 0.7):
                    continue
                if any(math.hypot(q.x - cx, q.y - cy) < 1.5 for q in people):
                    continue
                if any(math.hypot(s[1] - cx, s[2] - cy) < 1.3 for s in clutter.specs):
                    continue
                clutter.add(rng, cx, cy)
                placed += 1
        return (float(x), float(y), float(yaw))
    return None


def _score_people(sim, rig, pose, outs, actor_ids, tally, cfg, world, vi, t):
    truth = sim.scene.people()
    beams = _lidar_visible(sim, rig, actor_ids)
    tally.frames += 1
    for label, out in zip(("full", "geom"), outs):
        # tracks back into the true map frame through the believed pose
        base = _to_base(out, pose, cfg.map_pose_error)
        mp = [_from_base(b, pose) for b in base]
        fp = False
        for (bx, by), (mx, my) in zip(base, mp):
            if math.hypot(bx, by) > cfg.person_range_m:
                continue
            if not any(math.hypot(q.x - mx, q.y - my) <= 0.75 for q in truth):
                fp = True
                if label == "full":
                    tally.fps.append((world, vi, round(t, 1), round(mx, 2), round(my, 2)))
        if label == "full":
            tally.fp_frames += fp
        else:
            tally.fp_frames_geom += fp
        for q in truth:
            d = math.hypot(q.x - pose[0], q.y - pose[1])
            if d > cfg.person_range_m or beams.get(q.id, 0) < 3:
                continue
            found = any(math.hypot(q.x - mx, q.y - my) <= 0.5 for mx, my in mp)
            if label == "full":
                tally.people_visible += 1
                tally.people_found += found
                if not found:
                    tally.missed.append((world, vi, round(t, 1), q.id, round(d, 2),
                                         beams[q.id]))
            else:
                tally.people_found_geom += found
    if len(outs) == 1:              # no geometric baseline: its columns repeat the full one
        tally.fp_frames_geom = tally.fp_frames
        tally.people_found_geom = tally.people_found


def _to_base(out, pose, err):
    """Output people (map frame of the *believed* pose) -> the true base frame."""
    believed = (pose[0] + err[0], pose[1] + err[1], pose[2] + err[2])
    c, s = math.cos(believed[2]), math.sin(believed[2])
    res = []
    for p in out.people:
        dx, dy = p.x - believed[0], p.y - believed[1]
        res.append((c * dx + s * dy, -s * dx + c * dy))
    return res


def _from_base(b, pose):
    c, s = math.cos(pose[2]), math.sin(pose[2])
    return (pose[0] + c * b[0] - s * b[1], pose[1] + s * b[0] + c * b[1])


def _score_obstacles(sim, rig, sp, tally, cfg, world, vi):
    from sitebot.perception.cloud import depth_to_points, transform_points
    depth, seg = _camera_seg(sim, rig)
    K = rig.camera.K
    valid = np.isfinite(depth) & (depth > 0.1) & (depth < 8.0)
    pts = transform_points(sp.T_base_cam, depth_to_points(np.where(valid, depth, np.nan), K))
    ids = seg[valid]
    res = sp.last_cloud
    if res is None:
        return
    mins, maxs = res.clusters.mins - 0.05, res.clusters.maxs + 0.05
    keep = (pts[:, 2] > 0.08) & (pts[:, 2] < sp.config.cloud.max_obstacle_height_m) \
        & (np.hypot(pts[:, 0], pts[:, 1]) <= cfg.obstacle_range_m)
    robot = rig.body.body_id
    for bid in np.unique(ids[keep]):
        if bid == robot or bid == sim.scene.ground_id:
            continue
        p = pts[keep & (ids == bid)]
        if len(p) < 10 or (p.max(axis=0) - p.min(axis=0)).max() < 0.10:
            continue
        tally.obstacles += 1
        inside = np.zeros(len(p), bool)
        for lo, hi in zip(mins, maxs):
            inside |= np.all((p >= lo) & (p <= hi), axis=1)
        if inside.mean() >= 0.5:
            tally.obstacles_found += 1
        else:
            h = sim.scene.describe(int(bid))
            tally.missed_obstacles.append((world, vi, h.name if h else int(bid), len(p),
                                           round(float(inside.mean()), 2)))


def run_eval(cfg: EvalConfig, log=print) -> dict[str, Tally]:
    rng = np.random.default_rng(cfg.seed)
    out: dict[str, Tally] = {}
    for w in cfg.worlds:
        out.update(_run_world(w, cfg, np.random.default_rng([cfg.seed, WORLDS.index(w)
                                                            if w in WORLDS else 9]), log))
    del rng
    return out


def _ratio(a: int, b: int) -> str:
    return f"{100.0 * a / b:6.1f}%" if b else "    - "


def summarize(results: dict[str, Tally]) -> tuple[str, Tally]:
    total = Tally()
    lines = [f"{'world/lighting':24s} {'views':>5s} {'people':>6s} {'recall':>7s} "
             f"{'geom':>7s} {'frames':>6s} {'FP fr.':>7s} {'geom':>7s} {'obst.':>5s} "
             f"{'found':>7s}"]
    for key in sorted(results):
        t = results[key]
        total.add(t)
        lines.append(f"{key:24s} {t.views:5d} {t.people_visible:6d} "
                     f"{_ratio(t.people_found, t.people_visible)} "
                     f"{_ratio(t.people_found_geom, t.people_visible)} {t.frames:6d} "
                     f"{_ratio(t.fp_frames, t.frames)} {_ratio(t.fp_frames_geom, t.frames)} "
                     f"{t.obstacles:5d} {_ratio(t.obstacles_found, t.obstacles)}")
    t = total
    lines.append(f"{'TOTAL':24s} {t.views:5d} {t.people_visible:6d} "
                 f"{_ratio(t.people_found, t.people_visible)} "
                 f"{_ratio(t.people_found_geom, t.people_visible)} {t.frames:6d} "
                 f"{_ratio(t.fp_frames, t.frames)} {_ratio(t.fp_frames_geom, t.frames)} "
                 f"{t.obstacles:5d} {_ratio(t.obstacles_found, t.obstacles)}")
    lines.append("aims: people recall (within 5 m, visible) >= 99 %, false-positive frames "
                 "< 1 %, obstacles (> 10 cm, within 3 m, in view) found 100 %")
    lines.append("'geom' = without the static map (geometric classifier and depth only)")
    return "\n".join(lines), total


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spatial_eval", description=__doc__.split("\n")[0])
    ap.add_argument("--views", type=int, default=12, help="views per world")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worlds", default=",".join(WORLDS))
    ap.add_argument("--json", default="", help="write the figures to this file")
    ap.add_argument("--verbose", action="store_true", help="list misses and false positives")
    a = ap.parse_args(list(argv) if argv is not None else None)
    if a.views < 1:
        print("--views must be >= 1", file=sys.stderr)
        return 2
    cfg = EvalConfig(worlds=tuple(w for w in a.worlds.split(",") if w), views=a.views,
                     seed=a.seed)
    t0 = time.perf_counter()
    res = run_eval(cfg)
    table, total = summarize(res)
    print(table)
    print(f"({time.perf_counter() - t0:.1f} s)")
    if a.verbose:
        for m in total.missed:
            print("missed person:", m)
        for f in total.fps:
            print("false positive:", f)
        for m in total.missed_obstacles:
            print("missed obstacle:", m)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({k: asdict(v) for k, v in res.items()} | {"total": asdict(total)}, f,
                      indent=1, default=str)
    ok = (total.people_visible == 0 or total.people_found >= 0.99 * total.people_visible) and \
        total.fp_frames <= 0.01 * max(total.frames, 1) and \
        total.obstacles_found == total.obstacles
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
