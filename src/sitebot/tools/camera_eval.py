"""Camera perception against the simulator's ground truth (no ROS).

Renders views of the shipped worlds with PyBullet (:class:`sitebot.sim.scene.Scene` and
:class:`sitebot.sim.sensors.Camera` on a free-floating, invisible camera body), across the
world lighting presets (bright, dim, low sun with glare, coloured light), distances and
angles, with clutter boxes in the scene, and runs the fiducial detector and the gauge reader.

Each view looks at one gauge (its value drawn at random) from 1-3 m, up to 35 deg off its
axis.  A view is one of

* ``clean``: nothing in the way; the reader should report, and be right;
* ``occluded``: a body inserted between the camera and the dial, covering part of it;
* ``blurred``: the frame blurred (Gaussian, sigma 2.5-4 px, or a 9-15 px motion streak);
* ``glare``: a clipped specular blob laid over part of the dial.

The last three are unreadable by construction: a report on them is a failure.  Fiducial pose
errors are measured for every tag detected 1-3 m from the camera in every view.
"""
from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pybullet as pb

from sitebot.perception.fiducials import FiducialDetector, detector_for_registry, marker_pose
from sitebot.perception.gauge import GaugeReader, GaugeReading, layouts_from_world
from sitebot.sim.scene import Scene
from sitebot.sim.sensors import Camera, CameraConfig
from sitebot.sim.world import WorldSpec
from sitebot.sim.world_loader import load_world

__all__ = ["CameraRig", "ViewResult", "run_camera_eval", "summarize", "format_table",
           "CONDITIONS", "UNREADABLE", "AIMS"]

CONDITIONS = ("clean", "occluded", "blurred", "glare")
UNREADABLE = ("occluded", "blurred", "glare")
PRESETS = ("bright", "dim", "low_sun", "coloured")
#: The issue's aims.
AIMS = {"gauge_p95_pct_fs": 2.0, "unreadable_reports": 0, "tag_pos_cm": 2.0,
        "tag_rot_deg": 2.0}


class CameraRig:
    """A world built into its own PyBullet client with a free camera."""

    def __init__(self, world: WorldSpec | str, width: int = 640, height: int = 480) -> None:
        self.world = load_world(world) if isinstance(world, str) else world
        self._tmp = tempfile.TemporaryDirectory(prefix="sitebot-cameval-")
        self.cid = pb.connect(pb.DIRECT)
        self.scene = Scene(self.cid, self.world, Path(self._tmp.name) / "textures")
        self.body = pb.createMultiBody(baseMass=0, baseCollisionShapeIndex=-1,
                                       baseVisualShapeIndex=-1, basePosition=[0, 0, 0],
                                       physicsClientId=self.cid)
        self.camera = Camera(self.cid, self.body, -1, CameraConfig(width, height))
        self._extra: list[int] = []

    @property
    def K(self) -> np.ndarray:
        return np.array(self.camera.K)

    def look(self, eye: Sequence[float], target: Sequence[float]) -> np.ndarray:
        """Place the camera at *eye* looking at *target*; return T_world_optical (4x4)."""
        eye = np.asarray(eye, dtype=float)
        v = np.asarray(target, dtype=float) - eye
        yaw = math.atan2(v[1], v[0])
        pitch = -math.atan2(v[2], math.hypot(v[0], v[1]))
        q = pb.getQuaternionFromEuler([0.0, pitch, yaw])
        pb.resetBasePositionAndOrientation(self.body, eye.tolist(), q, physicsClientId=self.cid)
        R = np.array(pb.getMatrixFromQuaternion(q)).reshape(3, 3)
        T = np.eye(4)
        T[:3, :3] = np.column_stack([-R[:, 1], -R[:, 2], R[:, 0]])
        T[:3, 3] = eye
        return T

    def add_box(self, centre: Sequence[float], half: Sequence[float],
                rgba: Sequence[float], yaw: float = 0.0) -> int:
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=list(half), rgbaColor=list(rgba),
                                   physicsClientId=self.cid)
        bid = pb.createMultiBody(baseMass=0, baseVisualShapeIndex=vis,
                                 basePosition=list(centre),
                                 baseOrientation=pb.getQuaternionFromEuler([0, 0, yaw]),
                                 physicsClientId=self.cid)
        self._extra.append(bid)
        return bid

    def clear_extra(self) -> None:
        for b in self._extra:
            pb.removeBody(b, physicsClientId=self.cid)
        self._extra.clear()

    def render(self, preset: str) -> np.ndarray:
        return self.camera.render(self.world.lighting_presets[preset]).rgb

    def close(self) -> None:
        if self.cid >= 0:
            pb.disconnect(physicsClientId=self.cid)
            self.cid = -1
            self._tmp.cleanup()


@dataclass
class ViewResult:
    world: str
    asset: str
    condition: str
    preset: str
    distance_m: float
    angle_deg: float
    truth: float
    span: float
    reading: GaugeReading | None
    tag_errors: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    # (tag, distance [m], position error [m], rotation error [deg], predicted sigma [m])
    t_fid_ms: float = 0.0
    t_gauge_ms: float = 0.0

    @property
    def reported(self) -> bool:
        return self.reading is not None and self.reading.valid

    @property
    def error_pct_fs(self) -> float:
        if not self.reported:
            return math.nan
        return 100.0 * abs(self.reading.value - self.truth) / self.span


def _rot_err_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _glare(img: np.ndarray, centre: tuple[float, float], radius: float,
           rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    cx = centre[0] + rng.uniform(-0.4, 0.4) * radius
    cy = centre[1] + rng.uniform(-0.4, 0.4) * radius
    s = radius * rng.uniform(0.35, 0.6)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)) * 400.0
    return np.clip(img.astype(np.float32) + blob[..., None], 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(2.5, 4.0))
    n = int(rng.integers(9, 16))
    k = np.zeros((n, n), np.float32)
    a = rng.uniform(0, math.pi)
    c = (n - 1) / 2
    cv2.line(k, (int(round(c - c * math.cos(a))), int(round(c - c * math.sin(a)))),
             (int(round(c + c * math.cos(a))), int(round(c + c * math.sin(a)))), 1.0, 1)
    return cv2.filter2D(img, -1, k / k.sum())


def _eval_world(world: WorldSpec, views: int, rng: np.random.Generator, width: int,
                height: int, detector: FiducialDetector, reader: GaugeReader,
                conditions: Sequence[str]) -> list[ViewResult]:
    layouts = layouts_from_world(world)
    if not layouts:
        return []
    rig = CameraRig(world, width, height)
    out: list[ViewResult] = []
    try:
        K = rig.K
        assets = sorted(layouts)
        for i in range(views):
            asset = assets[int(rng.integers(len(assets)))]
            lay = layouts[asset]
            g = world.gauge(asset)
            cond = conditions[i % len(conditions)]
            preset = PRESETS[(i // len(conditions)) % len(PRESETS)]
            truth = float(rng.uniform(g.face.min_value, g.face.max_value))
            rig.scene.set_gauge_value(asset, round(truth, 6))
            truth = rig.scene.gauge_value(asset)
            tag = world.fiducial(lay.tag_id)
            T_w_dial = marker_pose(tag) @ lay.T_tag_dial
            centre = T_w_dial[:3, 3]
            normal = -T_w_dial[:3, 2]                # the face looks out of the dial
            dist = float(rng.uniform(1.0, 2.2 if cond == "clean" else 2.0))
            ang = float(rng.uniform(-35.0, 35.0))
            a = math.radians(ang)
            nh = np.array([normal[0], normal[1]]) / max(1e-9, math.hypot(normal[0], normal[1]))
            dirv = np.array([nh[0] * math.cos(a) - nh[1] * math.sin(a),
                             nh[0] * math.sin(a) + nh[1] * math.cos(a), 0.0])
            eye = centre + dist * dirv
            eye[2] = float(rng.uniform(1.0, 1.6))
            tag_c = marker_pose(tag)[:3, 3]
            target = 0.5 * (centre + tag_c) + rng.normal(0.0, 0.04, 3)
            T_w_cam = rig.look(eye, target)
            rig.clear_extra()
            # clutter: boxes beside the line of sight
            side = np.cross(dirv, [0.0, 0.0, 1.0])
            for _ in range(3):
                along = rng.uniform(0.2, 0.8) * dist
                lat = rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 1.0)
                p = centre + along * dirv + lat * side
                p[2] = rng.uniform(0.2, 1.0)
                rig.add_box(p, rng.uniform(0.05, 0.2, 3), (*rng.uniform(0.1, 0.95, 3), 1.0),
                            float(rng.uniform(0, math.pi)))
            if cond == "occluded":
                # a body 15-40 cm in front of the dial covering part of it
                f = rng.uniform(0.15, 0.4)
                p = centre + f * (eye - centre) / np.linalg.norm(eye - centre)
                off = rng.uniform(0.1, 0.6) * g.radius_m
                dirn = rng.uniform(0, 2 * math.pi)
                up = np.array([0.0, 0.0, 1.0])
                p = p + off * (math.cos(dirn) * side + math.sin(dirn) * up)
                half = [rng.uniform(0.02, 0.05), rng.uniform(0.02, 0.05),
                        rng.uniform(0.03, 0.2)]
                if rng.random() < 0.5:
                    half[2] = rng.uniform(0.02, 0.05)
                    half[0], half[1] = rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.2)
                rig.add_box(p, half, (*rng.uniform(0.05, 0.95, 3), 1.0),
                            float(rng.uniform(0, math.pi)))
            img = rig.render(preset)
            T_cam_dial = np.linalg.inv(T_w_cam) @ T_w_dial
            zc = T_cam_dial[2, 3]
            uc = K[0, 0] * T_cam_dial[0, 3] / zc + K[0, 2]
            vc = K[1, 1] * T_cam_dial[1, 3] / zc + K[1, 2]
            r_px = K[0, 0] * g.radius_m / zc
            if cond == "blurred":
                img = _blur(img, rng)
            elif cond == "glare":
                img = _glare(img, (uc, vc), r_px, rng)
            # a level robot knows where "up" is in its camera (the mount)
            detector.up_hint_cam = T_w_cam[:3, :3].T @ np.array([0.0, 0.0, 1.0])
            t0 = time.perf_counter()
            dets = detector.detect(img, K)
            t1 = time.perf_counter()
            by_tag = {d.tag_id: d for d in dets}
            reading = None
            if lay.tag_id in by_tag:
                reading = reader.read_detection(img, K, lay, by_tag[lay.tag_id])
            t2 = time.perf_counter()
            res = ViewResult(world.id, asset, cond, preset, dist, ang, truth,
                             g.face.max_value - g.face.min_value, reading,
                             t_fid_ms=1e3 * (t1 - t0), t_gauge_ms=1e3 * (t2 - t1))
            if cond in ("clean", "occluded"):
                for d in dets:
                    try:
                        gt = np.linalg.inv(T_w_cam) @ marker_pose(world.fiducial(d.tag_id))
                    except KeyError:
                        continue
                    dd = float(np.linalg.norm(gt[:3, 3]))
                    if 1.0 <= dd <= 3.0:
                        res.tag_errors.append((
                            d.tag_id, dd, float(np.linalg.norm(d.T_cam_tag[:3, 3] - gt[:3, 3])),
                            _rot_err_deg(d.T_cam_tag[:3, :3], gt[:3, :3]),
                            float(math.sqrt(np.trace(d.covariance[:3, :3]))), d.size_m))
            out.append(res)
    finally:
        rig.close()
    return out


def run_camera_eval(views: int = 24, seed: int = 0, width: int = 640, height: int = 480,
                    worlds: Sequence[str] = ("substation", "construction", "datacentre"),
                    conditions: Sequence[str] = CONDITIONS,
                    detector: FiducialDetector | None = None,
                    reader: GaugeReader | None = None) -> list[ViewResult]:
    """Render *views* views per world and run the camera pipelines on each."""
    rng = np.random.default_rng(seed)
    reader = reader or GaugeReader()
    out: list[ViewResult] = []
    for name in worlds:
        w = load_world(name)
        det = detector or detector_for_registry(w.registry)
        out.extend(_eval_world(w, views, rng, width, height, det, reader, conditions))
    return out


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def summarize(results: Sequence[ViewResult]) -> dict[str, Any]:
    """Figures of a run (JSON-ready)."""
    clean = [r for r in results if r.condition == "clean"]
    rep = [r for r in clean if r.reported]
    errs = [r.error_pct_fs for r in rep]
    unread = {c: [r for r in results if r.condition == c] for c in UNREADABLE}
    tags = [e for r in results for e in r.tag_errors]
    by_preset = {}
    for p in PRESETS:
        cp = [r for r in clean if r.preset == p]
        rp = [r for r in cp if r.reported]
        by_preset[p] = {"views": len(cp), "reported": len(rp),
                        "p95_err_pct_fs": _pct([r.error_pct_fs for r in rp], 95)}
    out: dict[str, Any] = {
        "views": len(results),
        "gauge": {
            "clean_views": len(clean), "reported": len(rep),
            "fraction_reported": len(rep) / len(clean) if clean else math.nan,
            "p50_err_pct_fs": _pct(errs, 50), "p95_err_pct_fs": _pct(errs, 95),
            "max_err_pct_fs": max(errs) if errs else math.nan,
            "within_2pct": (sum(e <= 2.0 for e in errs) / len(errs)) if errs else math.nan,
            "by_preset": by_preset,
            "unreadable": {c: {"views": len(v), "reports": sum(r.reported for r in v)}
                           for c, v in unread.items()},
            "unreadable_reports": sum(r.reported for v in unread.values() for r in v),
            "refusal_reasons": _reasons(clean),
        },
        "fiducials": {
            "detections_1_3m": len(tags),
            "pos_p50_cm": _pct([100 * t[2] for t in tags], 50),
            "pos_p95_cm": _pct([100 * t[2] for t in tags], 95),
            "rot_p50_deg": _pct([t[3] for t in tags], 50),
            "rot_p95_deg": _pct([t[3] for t in tags], 95),
            "by_size": {},
            "normalized_pos_err_rms": (float(np.sqrt(np.mean([(t[2] / t[4]) ** 2 for t in tags
                                                              if t[4] > 0])))
                                       if tags else math.nan),
        },
        "timing_ms": {"fiducials_mean": float(np.mean([r.t_fid_ms for r in results]))
                      if results else math.nan,
                      "gauge_mean": float(np.mean([r.t_gauge_ms for r in results if r.reading]))
                      if any(r.reading for r in results) else math.nan},
    }
    for size in sorted({t[5] for t in tags}):
        ts = [t for t in tags if t[5] == size]
        out["fiducials"]["by_size"][f"{size:g}"] = {
            "n": len(ts), "pos_p50_cm": _pct([100 * t[2] for t in ts], 50),
            "pos_p95_cm": _pct([100 * t[2] for t in ts], 95),
            "rot_p50_deg": _pct([t[3] for t in ts], 50),
            "rot_p95_deg": _pct([t[3] for t in ts], 95)}
    return out


def _reasons(results: Sequence[ViewResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        if r.reported:
            continue
        key = "tag not detected" if r.reading is None else r.reading.failure_reason.split(":")[0]
        out[key] = out.get(key, 0) + 1
    return out


def format_table(s: dict[str, Any], width: int, height: int) -> str:
    g, f = s["gauge"], s["fiducials"]
    lines = [f"camera perception vs ground truth: {s['views']} views at {width}x{height}",
             "",
             f"{'gauge reading':44s} {'value':>10s} {'aim':>10s}",
             f"{'  clean views / reported':44s} {g['clean_views']:>5d}/{g['reported']:<4d}",
             f"{'  fraction of clean views reported':44s} {g['fraction_reported']:>10.2f}",
             f"{'  error p50 [% full scale]':44s} {g['p50_err_pct_fs']:>10.2f}",
             f"{'  error p95 of reports [% full scale]':44s} {g['p95_err_pct_fs']:>10.2f} "
             f"{'<= 2.0':>10s}",
             f"{'  reports within 2% FS':44s} {g['within_2pct']:>10.2f} {'>= 0.95':>10s}",
             f"{'  max error [% FS]':44s} {g['max_err_pct_fs']:>10.2f}"]
    for c, v in g["unreadable"].items():
        lines.append(f"{'  reports on ' + c + ' dials':44s} {v['reports']:>5d}/{v['views']:<4d}"
                     f" {'0':>10s}")
    for p, v in g["by_preset"].items():
        lines.append(f"{'  ' + p + ': reported / p95 err [%FS]':44s} "
                     f"{v['reported']:>3d}/{v['views']:<3d} {v['p95_err_pct_fs']:>6.2f}")
    if g["refusal_reasons"]:
        lines.append("  clean views not reported: " + ", ".join(
            f"{k} x{n}" for k, n in sorted(g["refusal_reasons"].items())))
    lines += ["",
              f"{'fiducial pose, tags 1-3 m':44s} {'p50':>10s} {'p95':>10s} {'aim':>10s}",
              f"{'  position error [cm] (' + str(f['detections_1_3m']) + ' detections)':44s} "
              f"{f['pos_p50_cm']:>10.2f} {f['pos_p95_cm']:>10.2f} {'< 2':>10s}",
              f"{'  rotation error [deg]':44s} {f['rot_p50_deg']:>10.2f} "
              f"{f['rot_p95_deg']:>10.2f} {'< 2':>10s}"]
    for size, v in f["by_size"].items():
        lines.append(f"{'  tag ' + size + ' m: pos [cm] / rot [deg] (n=' + str(v['n']) + ')':44s}"
                     f" {v['pos_p50_cm']:>5.1f}/{v['rot_p50_deg']:<4.1f}"
                     f" {v['pos_p95_cm']:>5.1f}/{v['rot_p95_deg']:<4.1f}")
    lines.append(f"{'  position error / predicted sigma (rms)':44s} "
                 f"{f['normalized_pos_err_rms']:>10.2f} {'~1':>10s}")
    t = s["timing_ms"]
    lines.append(f"\nper frame: fiducials {t['fiducials_mean']:.1f} ms, gauge read "
                 f"{t['gauge_mean']:.1f} ms (mean)")
    return "\n".join(lines)
