"""Building a site's 2D occupancy map from a survey (no ROS): laser scans and wheel odometry
in, a nav2 map and the corrected trajectory out.

Method (the libraries do the numerics; nothing here optimises by hand):

1. **Keyframes.** A scan becomes a keyframe when odometry has moved ``keyframe_dist_m`` or
   turned ``keyframe_yaw_rad`` since the last one.  Its points (beams within range, in the
   base frame through the laser's mount) are voxel-filtered.
2. **Scan to map.** Each keyframe is registered with Open3D's point-to-point ICP against a
   local map (the points of the last ``submap_keyframes`` keyframes, placed by their
   estimated poses), starting from the previous estimate composed with the odometry
   increment.  A registration that fits too little (``min_fitness``) or moves the guess
   too far (``max_correction_m``) is not trusted: the odometry increment is kept.  The
   result, projected to SE(2), becomes the keyframe's pose; consecutive keyframes are joined
   by an odometry edge of the pose graph with the information ICP gives
   (``get_information_matrix_from_point_clouds``).
3. **Loop closures.** After the pass, each keyframe is registered against earlier keyframes
   within ``loop_radius_m`` that lie at least ``loop_min_separation`` keyframes back; a
   registration that fits well (``loop_min_fitness``, ``loop_max_rmse_m``) adds an
   uncertain edge, which Open3D's global optimisation (Levenberg-Marquardt with line
   process edge pruning) accepts or prunes.
4. **The map.** Beams are traced through a log-odds grid at the optimised poses (free along
   the beam, occupied at the hit); cells above ``occupied_log_odds`` are occupied, below
   ``free_log_odds`` free, the rest unknown (-1).

5. **Where the map is unreliable.** A keyframe whose registration was not trusted, or that
   follows more than ``gap_m`` of travel without a usable scan, rests on odometry alone.
   :meth:`ScanMapper.unreliable` lists such stretches; :meth:`ScanMapper.reliability_problem`
   refuses the survey when more than ``max_unreliable_fraction`` of the keyframes, or one
   stretch longer than ``max_unreliable_stretch_m``, do (too little overlap between scans:
   driven too fast, too far from structure, or the lidar blinded).

Open3D works in 3D: points lie at z = 0 and every transform is projected back to
(x, y, yaw).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import open3d as o3d

from sitebot.types import Pose2D, se2_apply, se2_compose, se2_inverse

__all__ = ["MapperConfig", "Keyframe", "ScanMapper", "MapResult"]

_reg = o3d.pipelines.registration


@dataclass(frozen=True)
class MapperConfig:
    """Parameters of :class:`ScanMapper` (metres, radians)."""
    keyframe_dist_m: float = 0.25
    keyframe_yaw_rad: float = 0.15
    voxel_m: float = 0.04
    submap_keyframes: int = 12
    icp_max_dist_m: float = 0.25
    icp_iterations: int = 30
    min_fitness: float = 0.5
    max_correction_m: float = 0.5
    loop_radius_m: float = 2.5
    loop_min_separation: int = 30
    loop_min_fitness: float = 0.7
    loop_max_rmse_m: float = 0.04
    resolution_m: float = 0.05
    max_range_m: float = 12.0
    gap_m: float = 1.0                   # odometry travel without a usable scan: a gap
    max_unreliable_fraction: float = 0.15   # more untrusted keyframes than this: no map
    max_unreliable_stretch_m: float = 2.0   # a longer untrusted stretch: no map
    occupied_log_odds: float = 0.8
    free_log_odds: float = -0.9
    hit_log_odds: float = 0.85
    miss_log_odds: float = -0.4


@dataclass
class Keyframe:
    """A scan kept for the map: ``t`` [s], ``odom`` (the odometry pose then), ``pose`` (the
    estimated map pose), ``points`` (N, 2) in the base frame, ``beams`` (M, 2) the
    (angle in the base frame, range) of every in-range beam and of every max-range beam
    (``hit`` False) for ray tracing."""
    t: float
    odom: Pose2D
    pose: Pose2D
    points: np.ndarray = field(repr=False)
    origin: tuple[float, float] = (0.0, 0.0)        # the laser in the base frame
    beams: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 3)))
    doubt: str = ""          # why its pose rests on odometry alone ('' = scan-matched)


@dataclass(frozen=True)
class MapResult:
    """The built map: nav_msgs values (rows = y), origin and cell edge; the optimised
    keyframe poses; how many loop closures the optimisation kept of those proposed."""
    values: np.ndarray
    origin: tuple[float, float]
    resolution_m: float
    trajectory: list[tuple[float, Pose2D]]
    loops_proposed: int
    loops_kept: int


def _cloud(xy: np.ndarray) -> o3d.geometry.PointCloud:
    pc = o3d.geometry.PointCloud()
    pc.points = o3d.utility.Vector3dVector(np.column_stack([xy, np.zeros(len(xy))]))
    return pc


def _walls(xy: np.ndarray, radius: float) -> o3d.geometry.PointCloud:
    """The scan points extruded into short vertical walls (z = -0.1, 0, 0.1) with their
    normals: in 3D a planar scan has no surface to fit, a wall does (its normals are
    horizontal, so point-to-plane ICP works on the 2D structure)."""
    xyz = np.vstack([np.column_stack([xy, np.full(len(xy), z)]) for z in (-0.1, 0.0, 0.1)])
    pc = o3d.geometry.PointCloud()
    pc.points = o3d.utility.Vector3dVector(xyz)
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=20))
    return pc


def _icp(source: np.ndarray, target: np.ndarray, max_dist: float, init: np.ndarray,
         iterations: int):
    """Point-to-plane ICP of 2D points (see :func:`_walls`); the result's transform is
    projected to SE(2) by the caller."""
    return _reg.registration_icp(
        _walls(source, 3 * max_dist), _walls(target, 3 * max_dist), max_dist, init,
        _reg.TransformationEstimationPointToPlane(),
        _reg.ICPConvergenceCriteria(max_iteration=iterations))


def _matrix(p: Sequence[float]) -> np.ndarray:
    x, y, yaw = (float(v) for v in p)
    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:2, 3] = (x, y)
    return m


def _pose(m: np.ndarray) -> Pose2D:
    return Pose2D(float(m[0, 3]), float(m[1, 3]), math.atan2(m[1, 0], m[0, 0]))


class ScanMapper:
    """Incremental scan matching, then loop closure and pose-graph optimisation (see the
    module doc).  ``laser`` is the laser's pose in the base frame."""

    def __init__(self, config: MapperConfig = MapperConfig(),
                 laser: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.cfg = config
        self.laser = Pose2D.of(laser)
        self.keyframes: list[Keyframe] = []
        #: pose-graph edges (source j, target i, T_i_j, information)
        self.edges: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self.rejected = 0                        # registrations not trusted (odometry kept)

    # ------------------------------------------------------------------ input
    def add_scan(self, t: float, odom: Sequence[float], ranges: Sequence[float],
                 angle_min: float, angle_increment: float, range_min: float,
                 range_max: float) -> bool:
        """One scan with the odometry pose at its stamp; True when it became a keyframe.
        Non-finite ranges and ranges outside [range_min, range_max] are not hits (a
        ``range_max`` or infinite reading still clears the beam's cells)."""
        cfg = self.cfg
        odom = Pose2D.of(odom)
        if not all(math.isfinite(v) for v in odom):
            raise ValueError(f"odometry pose {tuple(odom)} is not finite")
        if self.keyframes:
            last = self.keyframes[-1]
            d = se2_compose(se2_inverse(last.odom), odom)
            if math.hypot(d[0], d[1]) < cfg.keyframe_dist_m and \
                    abs(d[2]) < cfg.keyframe_yaw_rad:
                return False
        r = np.asarray(ranges, dtype=np.float64)
        a = angle_min + angle_increment * np.arange(len(r)) + self.laser.yaw
        lim = min(range_max, cfg.max_range_m)
        hit = np.isfinite(r) & (r >= range_min) & (r <= lim)
        clear = ~hit & ((r > lim) | np.isposinf(r))
        lx, ly = self.laser.x, self.laser.y
        pts = np.column_stack([lx + r[hit] * np.cos(a[hit]), ly + r[hit] * np.sin(a[hit])])
        if len(pts) < 20:
            return False                          # nothing to match against
        beams = np.column_stack([np.concatenate([a[hit], a[clear]]),
                                 np.concatenate([r[hit], np.full(clear.sum(), lim)]),
                                 np.concatenate([np.ones(hit.sum()), np.zeros(clear.sum())])])
        down = np.asarray(_cloud(pts).voxel_down_sample(cfg.voxel_m).points)[:, :2]
        if not self.keyframes:
            self.keyframes.append(Keyframe(t, odom, odom, down, (lx, ly), beams))
            return True
        last = self.keyframes[-1]
        guess = Pose2D(*se2_compose(last.pose, se2_compose(se2_inverse(last.odom), odom)))
        pose, doubt = self._register(down, guess)
        step = math.dist(last.odom[:2], odom[:2])
        if step > cfg.gap_m:
            doubt = (doubt + "; " if doubt else "") + \
                f"{step:.1f} m of travel without a usable scan"
        self.keyframes.append(Keyframe(t, odom, pose, down, (lx, ly), beams, doubt))
        # Open3D's edge (source j, target i) carries the transform of j's frame into i's
        # (what registering j's points onto i's gives), information in i's frame
        rel = np.linalg.inv(_matrix(last.pose)) @ _matrix(pose)
        info = _reg.get_information_matrix_from_point_clouds(
            _cloud(down), _cloud(last.points), self.cfg.icp_max_dist_m, rel)
        i = len(self.keyframes) - 2
        self.edges.append((i + 1, i, rel, info))
        return True

    def _register(self, points: np.ndarray, guess: Pose2D) -> tuple[Pose2D, str]:
        cfg = self.cfg
        sub = self.keyframes[-cfg.submap_keyframes:]
        target = np.asarray(_cloud(np.vstack([se2_apply(k.pose, k.points) for k in sub]))
                            .voxel_down_sample(cfg.voxel_m).points)[:, :2]
        res = _icp(points, target, cfg.icp_max_dist_m, _matrix(guess), cfg.icp_iterations)
        pose = _pose(res.transformation)
        moved = math.hypot(pose.x - guess.x, pose.y - guess.y)
        if res.fitness < cfg.min_fitness or moved > cfg.max_correction_m:
            self.rejected += 1
            why = (f"scan overlap {100 * res.fitness:.0f} % < {100 * cfg.min_fitness:.0f} %"
                   if res.fitness < cfg.min_fitness else
                   f"scan matching moved the odometry guess {moved:.2f} m > "
                   f"{cfg.max_correction_m:g} m")
            return guess, why
        return pose, ""

    def unreliable(self) -> list[dict]:
        """The stretches of the survey whose keyframes rest on odometry alone (consecutive
        doubtful keyframes), each with its extent in the map, length along the trajectory
        [m], keyframe count and reasons; longest first."""
        out: list[dict] = []
        run: list[Keyframe] = []
        kfs = self.keyframes
        for n, k in enumerate(kfs + [None]):
            if k is not None and k.doubt:
                run.append(k)
                continue
            if run:
                # from the last scan-matched keyframe before the run: odometry alone from there
                first = n - len(run)
                path = ([kfs[first - 1]] if first > 0 else []) + run
                xy = np.array([(q.pose.x, q.pose.y) for q in path])
                length = max(float(np.hypot(*np.diff(xy, axis=0).T).sum()),
                             self.cfg.keyframe_dist_m)
                out.append({"from": [round(float(v), 2) for v in xy[0]],
                            "to": [round(float(v), 2) for v in xy[-1]],
                            "length_m": round(length, 2), "keyframes": len(run),
                            "t": [round(run[0].t, 2), round(run[-1].t, 2)],
                            "reasons": sorted({q.doubt for q in run})[:3]})
                run = []
        return sorted(out, key=lambda r: -r["length_m"])

    def reliability_problem(self) -> str:
        """'' when the map can be trusted; else why not (too many doubtful keyframes, or
        one doubtful stretch too long), naming where."""
        cfg = self.cfg
        bad = self.unreliable()
        n = sum(r["keyframes"] for r in bad)
        frac = n / max(1, len(self.keyframes))
        long = [r for r in bad if r["length_m"] > cfg.max_unreliable_stretch_m]
        if frac <= cfg.max_unreliable_fraction and not long:
            return ""
        where = "; ".join(f"{r['length_m']:.1f} m from ({r['from'][0]:.1f}, {r['from'][1]:.1f}) "
                          f"to ({r['to'][0]:.1f}, {r['to'][1]:.1f}) at t {r['t'][0]:.0f}-"
                          f"{r['t'][1]:.0f} s ({r['reasons'][0]})" for r in bad[:3])
        return (f"{n} of {len(self.keyframes)} keyframes ({100 * frac:.0f} %) rest on "
                f"odometry alone" + (f", {len(long)} stretch(es) longer than "
                                     f"{cfg.max_unreliable_stretch_m:g} m" if long else "")
                + f": {where}")

    # ------------------------------------------------------------------ optimise
    def close_loops(self) -> tuple[int, int]:
        """Find loop closures, optimise the pose graph; (proposed, kept)."""
        cfg = self.cfg
        kfs = self.keyframes
        loops: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        xy = np.array([(k.pose.x, k.pose.y) for k in kfs])
        for j in range(len(kfs)):
            near = np.nonzero(np.hypot(*(xy[:j - cfg.loop_min_separation + 1] - xy[j]).T)
                              < cfg.loop_radius_m)[0] if j >= cfg.loop_min_separation else []
            if len(near) == 0:
                continue
            i = int(near[np.argmin(np.hypot(*(xy[near] - xy[j]).T))])
            src, tgt = _cloud(kfs[j].points), _cloud(kfs[i].points)
            init = np.linalg.inv(_matrix(kfs[i].pose)) @ _matrix(kfs[j].pose)
            res = _icp(kfs[j].points, kfs[i].points, cfg.icp_max_dist_m, init, 50)
            if res.fitness >= cfg.loop_min_fitness and res.inlier_rmse <= cfg.loop_max_rmse_m:
                rel = _matrix(_pose(res.transformation))
                info = _reg.get_information_matrix_from_point_clouds(
                    src, tgt, cfg.icp_max_dist_m, rel)
                loops.append((j, i, rel, info))
        if not loops:
            return 0, 0
        graph = _reg.PoseGraph()
        for k in kfs:
            graph.nodes.append(_reg.PoseGraphNode(_matrix(k.pose)))
        for j, i, rel, info in self.edges:
            graph.edges.append(_reg.PoseGraphEdge(j, i, rel, info, uncertain=False))
        for j, i, rel, info in loops:
            graph.edges.append(_reg.PoseGraphEdge(j, i, rel, info, uncertain=True))
        option = _reg.GlobalOptimizationOption(
            max_correspondence_distance=cfg.icp_max_dist_m, edge_prune_threshold=0.25,
            reference_node=0)
        with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
            _reg.global_optimization(graph, _reg.GlobalOptimizationLevenbergMarquardt(),
                                     _reg.GlobalOptimizationConvergenceCriteria(), option)
        for k, node in zip(kfs, graph.nodes):
            k.pose = _pose(node.pose)
        kept = sum(1 for e in graph.edges if e.uncertain)
        return len(loops), kept

    # ------------------------------------------------------------------ map
    def build(self, progress: Callable[[str, float], None] | None = None) -> MapResult:
        """Close loops, then trace every keyframe's beams into the occupancy map."""
        if len(self.keyframes) < 2:
            raise ValueError("the survey has fewer than 2 usable scans: nothing to map")
        if progress:
            progress("loop closure", 0.0)
        proposed, kept = self.close_loops()
        cfg = self.cfg
        res = cfg.resolution_m
        ends = np.vstack([se2_apply(k.pose, k.points) for k in self.keyframes]
                         + [np.array([(k.pose.x, k.pose.y) for k in self.keyframes])])
        lo = np.floor(ends.min(axis=0) / res) * res - 1.0
        hi = np.ceil(ends.max(axis=0) / res) * res + 1.0
        cols, rows = (int(round(v)) for v in (hi - lo) / res)
        logodds = np.zeros((rows, cols), np.float32)

        def cells(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The distinct grid cells (rows, columns) holding the points, on the grid."""
            rc = np.unique(np.column_stack([((y - lo[1]) / res).astype(int),
                                            ((x - lo[0]) / res).astype(int)]), axis=0)
            ok = (rc[:, 0] >= 0) & (rc[:, 0] < rows) & (rc[:, 1] >= 0) & (rc[:, 1] < cols)
            return rc[ok, 0], rc[ok, 1]

        for n, k in enumerate(self.keyframes):
            if progress and n % 25 == 0:
                progress("tracing beams", n / len(self.keyframes))
            ox, oy = se2_apply(k.pose, np.array([k.origin]))[0]
            ang = k.beams[:, 0] + k.pose.yaw
            rng, hit = k.beams[:, 1], k.beams[:, 2] > 0
            steps = np.arange(0.0, rng.max() + res, res * 0.5)
            d = steps[None, :]
            inside = d < (rng[:, None] - res)            # free up to a cell before the hit
            fx = (ox + d * np.cos(ang)[:, None])[inside]
            fy = (oy + d * np.sin(ang)[:, None])[inside]
            fr, fc = cells(fx, fy)
            logodds[fr, fc] += cfg.miss_log_odds
            hr, hc = cells(ox + rng[hit] * np.cos(ang[hit]), oy + rng[hit] * np.sin(ang[hit]))
            logodds[hr, hc] += cfg.hit_log_odds
        values = np.full((rows, cols), -1, np.int8)
        values[logodds <= cfg.free_log_odds] = 0
        values[logodds >= cfg.occupied_log_odds] = 100
        if progress:
            progress("done", 1.0)
        return MapResult(values, (float(lo[0]), float(lo[1])), res,
                         [(k.t, k.pose) for k in self.keyframes], proposed, kept)
