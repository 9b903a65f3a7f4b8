"""``sitebot eval localization``: the EKF against the simulator's ground truth.

Drives the robot along each world's registry routes (the navigation stack,
:mod:`sitebot.navigation`, on the static map with the lidar's obstacles, driven on the TRUE
pose, so that the evaluation measures the estimator and not the closed loop) with the
simulation core stepped as fast as it goes (no ROS), and feeds the same sensor stream
to two filters side by side: one with fiducial fixes, one without. Prints position and
heading error (RMS, max), drift per 100 m without fixes, consistency (NEES of the pose and
NIS per input against chi-square bounds) and a kidnapped-robot test (the robot is
teleported in front of a marker; time until the filter flags divergence and until it has
re-localized).

Fixes come from one of two detectors (``--detector``):
  sim   ground truth -> markers in the camera frustum, facing it, large enough, not
        occluded, with corner-pixel noise and 2 % gross outliers (default);
  real  sitebot.perception.fiducials.FiducialDetector on rendered camera frames (needs
        that module; slower: the camera is rendered at 5 Hz).
Fixes reach the filter 0.1 s after their stamp (detector latency), through the history
buffer.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from sitebot.localization.config import EkfConfig
from sitebot.localization.ekf import Ekf, Measurement, markers_from_registry
from sitebot.localization.fixes import PlanarFix, SimulatedDetector, fix_measurement, planar_fix
from sitebot.types import quaternion_to_yaw, wrap_angle

__all__ = ["main", "evaluate_world", "camera_mount", "WorldResult"]

CHI2_95 = {1: 3.841, 2: 5.991, 3: 7.815}
FIX_LATENCY_S = 0.1
FIX_PERIOD_S = 0.2
EVAL_PERIOD_S = 0.1
CONTROL_PERIOD_S = 0.02
#: a route stop not reached within this is given up for the next one
LEG_TIMEOUT_S = 90.0


def camera_mount(description=None, frame: str = "camera_color_optical_frame") -> np.ndarray:
    """4x4 pose of ``frame`` in base_footprint from the URDF's fixed joints."""
    from sitebot.description.kinematics import fixed_transform
    from sitebot.description.urdf import load_robot_description
    return fixed_transform(description or load_robot_description(), "base_footprint", frame)


@dataclass
class _Track:
    """Errors and consistency of one filter."""
    name: str
    ekf: Ekf
    pos_err: list = field(default_factory=list)
    yaw_err: list = field(default_factory=list)
    nees: list = field(default_factory=list)
    cov_trace: list = field(default_factory=list)   # position covariance xx + yy [m^2]
    nis: dict = field(default_factory=dict)      # input -> [(nis, dof)]

    def add_nis(self, src: str, res) -> None:
        if math.isfinite(res.nis) and res.dof:
            self.nis.setdefault(src, []).append((res.nis, res.dof))

    def summary(self) -> dict:
        pe, ye, ne = np.array(self.pos_err), np.array(self.yaw_err), np.array(self.nees)
        out = {"pos_rms_m": float(np.sqrt(np.mean(pe ** 2))), "pos_max_m": float(pe.max()),
               "yaw_rms_deg": float(np.degrees(np.sqrt(np.mean(ye ** 2)))),
               "yaw_max_deg": float(np.degrees(np.abs(ye).max())),
               "final_pos_err_m": float(pe[-1]),
               "nees_mean": float(ne.mean()),
               "cov_trace_max_m2": float(max(self.cov_trace, default=math.nan)),
               "nees_within_95": float(np.mean(ne <= CHI2_95[3]))}
        for src, vals in self.nis.items():
            a = np.array(vals)
            out[f"nis_{src}_mean"] = float(a[:, 0].mean())
            out[f"nis_{src}_within_95"] = float(np.mean(
                [n <= CHI2_95[int(d)] for n, d in vals]))
        st = self.ekf.stats["fiducial"]
        out["fixes_accepted"] = st.accepted
        out["fixes_rejected"] = dict(st.rejected)
        return out


@dataclass
class WorldResult:
    world: str
    sim_seconds: float
    distance_m: float
    wall_seconds: float
    filters: dict
    kidnap: dict | None
    fixes_true_outliers: int = 0


def _odom_measurement(t: float, od) -> Measurement:
    tc = np.asarray(od.twist_covariance)
    return Measurement("odom", t, [od.v_mps, od.w_radps],
                       [[tc[0, 0], tc[0, 5]], [tc[5, 0], tc[5, 5]]])


def _imu_measurement(t: float, imu) -> Measurement:
    q = imu.orientation_xyzw
    yaw = quaternion_to_yaw(q)
    oc, gc = np.asarray(imu.orientation_covariance), np.asarray(imu.angular_velocity_covariance)
    return Measurement("imu", t, [yaw, float(imu.angular_velocity_radps[2])],
                       [[oc[2, 2], 0.0], [0.0, gc[2, 2]]])


class _RealDetector:
    """The perception module's detector on rendered frames (second evaluation mode)."""

    def __init__(self, registry, T_base_cam: np.ndarray) -> None:
        from sitebot.perception.fiducials import FiducialDetector  # type: ignore
        self.det = FiducialDetector({m.tag: m.size_m for m in registry.markers})
        self.T_base_cam = T_base_cam

    def detect(self, frame) -> list[PlanarFix]:
        out = []
        for d in self.det.detect(frame.rgb, frame.K):
            out.append(planar_fix(int(d.tag_id), self.T_base_cam @ np.asarray(d.T_cam_tag)))
        return out


def _kidnap_target(world, costmap, rng, current: tuple[float, float, float], detector):
    """A pose the robot may stand at (``costmap``) 1.6 to 3 m in front of a marker, facing
    it, at least 3 m from ``current``, from where the detector sees a marker (most markers
    seen first)."""
    best, best_n = (None, None), 0
    markers = list(world.registry.markers)
    rng.shuffle(markers)
    for mk in markers:
        for dist in (2.0, 1.6, 2.4, 3.0):
            x = mk.x + dist * math.cos(mk.yaw)
            y = mk.y + dist * math.sin(mk.yaw)
            if costmap.forbidden_reason(x, y) is not None:
                continue
            if math.hypot(x - current[0], y - current[1]) < 3.0:
                continue
            pose = (x, y, wrap_angle(mk.yaw + math.pi))
            n = len(detector.visible(pose))
            if n > best_n:
                best, best_n = (pose, mk.tag), n
            if n >= 2:
                return best
    return best


def evaluate_world(world_id: str, sim_seconds: float = 600.0, seed: int = 0,
                   detector: str = "sim", fixes: bool = True, kidnap: bool = True,
                   config: EkfConfig | None = None, progress=None,
                   variants: dict[str, EkfConfig] | None = None) -> WorldResult:
    """Drive ``world_id``'s routes for ``sim_seconds`` and score the filters.

    :param variants: more filters without fixes, by name, fed the same stream side by side
        (process-noise tuning: one drive scores every candidate)."""
    import pybullet as pb

    from sitebot.description.urdf import load_robot_description
    from sitebot.navigation.config import navigation_config_from_params
    from sitebot.navigation.stack import NavigationStack
    from sitebot.sim.sensors import camera_intrinsics
    from sitebot.sim.simulation import SampleKind, SensorRates, SimConfig, SiteSimulation
    from sitebot.sim.world_loader import load_world

    world = load_world(world_id)
    cfg = config or EkfConfig()
    real = detector == "real"
    rates = SensorRates(joint_states_hz=0.0, ground_truth_hz=0.0, scan_hz=10.0,
                        camera_hz=5.0 if real else 0.0)
    simcfg = SimConfig(camera_enabled=real, supervisor_required=False, seed=seed, rates=rates)
    markers = markers_from_registry(world.registry)
    T_base_cam = camera_mount()
    rng = np.random.default_rng([seed, 7])
    wall0 = time.perf_counter()
    with SiteSimulation(world, config=simcfg) as sim:
        rig = sim.robot()
        ctl = rig.controller
        spawn = rig.spawn_pose
        tracks = []
        for name, use in (("fixes", True), ("no fixes", False)):
            if use and not fixes:
                continue
            ekf = Ekf(cfg, markers)
            ekf.initialize(0.0, spawn, (0.02, 0.02, 0.01))
            tracks.append((_Track(name, ekf), use))
        for name, vcfg in (variants or {}).items():
            ekf = Ekf(vcfg, markers)
            ekf.initialize(0.0, spawn, (0.02, 0.02, 0.01))
            tracks.append((_Track(name, ekf), False))
        K = camera_intrinsics(simcfg.camera)
        simdet = SimulatedDetector(markers, T_base_cam, K, (simcfg.camera.width,
                                                             simcfg.camera.height),
                                   client_id=sim.client_id)
        realdet = _RealDetector(world.registry, T_base_cam) if real else None
        # the navigation stack on the true pose (no supervisor): scans mark the obstacles
        # the static map does not have (people), the behaviour replans and recovers
        nav = NavigationStack(world.registry, spawn, navigation_config_from_params(
            {"pose_source": "filter", "safety_required": False}), load_robot_description())
        nav.use_site_map(world)
        stops = [p for r in world.registry.routes for p in r.waypoints]
        stop_i = 0
        driving = False
        follow_since = 0.0
        pending: list[tuple[float, float, PlanarFix]] = []   # (deliver at, stamp, fix)
        next_fix = FIX_PERIOD_S
        next_eval = EVAL_PERIOD_S
        next_ctl = 0.0
        dist = 0.0
        last_xy = spawn[:2]
        kid: dict | None = None
        phase = "drive"
        t_kidnap = math.inf
        kidnap_end = math.inf
        n_outliers = 0
        gt_pose = spawn
        odom_pose = (0.0, 0.0, 0.0)
        raw = {"pos": [], "yaw": []}

        def truth():
            g = sim.ground_truth()
            return (g.x_m, g.y_m, g.yaw_rad)

        while True:
            t = sim.time_s
            if phase == "drive" and t >= sim_seconds:
                if not (kidnap and fixes):
                    break
                phase = "stop"
                stop_until = t + 1.0
            if phase == "stop" and t >= stop_until:
                target, tag = _kidnap_target(world, nav.nav.static, rng, gt_pose, simdet)
                if target is None:
                    break
                z = rig.body.base_pose().z_m
                pb.resetBasePositionAndOrientation(
                    rig.body.body_id, (target[0], target[1], z),
                    pb.getQuaternionFromEuler((0, 0, target[2])), physicsClientId=sim.client_id)
                pb.resetBaseVelocity(rig.body.body_id, (0, 0, 0), (0, 0, 0),
                                     physicsClientId=sim.client_id)
                t_kidnap = t
                kidnap_end = t + 6.0
                before = tracks[0][0].ekf.pose
                kid = {"jump_m": math.hypot(target[0] - before[0], target[1] - before[1]),
                       "tag": tag, "detected_s": None, "relocalized_s": None}
                phase = "kidnapped"
            if phase == "kidnapped" and t >= kidnap_end:
                break
            # ---- control (50 Hz) on the true pose
            if t >= next_ctl:
                next_ctl += CONTROL_PERIOD_S
                gt_pose = truth()
                v = w = 0.0
                if phase == "drive":
                    nav.frames.set_filter(gt_pose, "map", t)
                    if not driving and stops:      # a refused stop: the next one next time
                        place = stops[stop_i % len(stops)]
                        stop_i += 1
                        driving = nav.start(nav.goal_for_place(place), t) is None
                        follow_since = t
                    if driving:
                        tick = nav.tick(t)
                        if tick is not None:
                            v, w = tick.v, tick.w
                        if (tick is not None and tick.outcome is not None) \
                                or t - follow_since > LEG_TIMEOUT_S:
                            driving = False
                ctl.set_base_command(v, w, t)
                dist += math.hypot(gt_pose[0] - last_xy[0], gt_pose[1] - last_xy[1]) \
                    if phase == "drive" else 0.0
                last_xy = gt_pose[:2]
            # ---- fixes (5 Hz), delivered after the detector's latency
            if fixes and not real and t >= next_fix:
                next_fix += FIX_PERIOD_S
                for noisy, true in simdet.detect(truth(), rng):
                    n_outliers += abs(wrap_angle(noisy.byaw - true.byaw)) > 0.4
                    pending.append((t + FIX_LATENCY_S, t, noisy))
            samples = sim.step()
            t = sim.time_s
            for s in samples:
                if s.kind is SampleKind.ODOM:
                    m = _odom_measurement(s.stamp_s, s.data)
                    odom_pose = (s.data.x_m, s.data.y_m, s.data.yaw_rad)
                elif s.kind is SampleKind.IMU:
                    m = _imu_measurement(s.stamp_s, s.data)
                elif s.kind is SampleKind.SCAN:
                    if phase == "drive":
                        sc = s.data
                        nav.scan("laser_link", sc.ranges, sc.angle_min, sc.angle_increment,
                                 sc.range_min, sc.range_max, s.stamp_s)
                    continue
                elif s.kind is SampleKind.CAMERA and realdet is not None:
                    for fx in realdet.detect(s.data):
                        pending.append((s.stamp_s + FIX_LATENCY_S, s.stamp_s, fx))
                    continue
                else:
                    continue
                for tr, _ in tracks:
                    res = tr.ekf.add(m, now=t)
                    if phase != "kidnapped":
                        tr.add_nis(m.source, res)
            while pending and pending[0][0] <= t:
                _, stamp, fx = pending.pop(0)
                for tr, use in tracks:
                    if use:
                        res = tr.ekf.add(fix_measurement(fx, stamp), now=t)
                        if phase != "kidnapped":       # consistency of the normal run only
                            tr.add_nis("fiducial", res)
            # ---- scoring (10 Hz)
            if t >= next_eval:
                next_eval += EVAL_PERIOD_S
                g = truth()
                if phase != "kidnapped":
                    from sitebot.types import se2_compose
                    o = se2_compose(spawn, odom_pose)
                    raw["pos"].append(math.hypot(o[0] - g[0], o[1] - g[1]))
                    raw["yaw"].append(wrap_angle(o[2] - g[2]))
                for tr, use in tracks:
                    if phase == "kidnapped":
                        if use and kid is not None:
                            h = tr.ekf.health(t)
                            if h.diverged and kid["detected_s"] is None:
                                kid["detected_s"] = t - t_kidnap
                            if tr.ekf.last_relocalization is not None and \
                                    tr.ekf.last_relocalization >= t_kidnap and \
                                    kid["relocalized_s"] is None:
                                kid["relocalized_s"] = tr.ekf.last_relocalization - t_kidnap
                            x, _ = tr.ekf.estimate_at(t)
                            kid["final_error_m"] = math.hypot(x[0] - g[0], x[1] - g[1])
                        continue
                    x, P = tr.ekf.estimate_at(t)
                    e = np.array([x[0] - g[0], x[1] - g[1], wrap_angle(x[2] - g[2])])
                    tr.pos_err.append(math.hypot(e[0], e[1]))
                    tr.yaw_err.append(e[2])
                    tr.cov_trace.append(float(P[0, 0] + P[1, 1]))
                    try:
                        tr.nees.append(float(e @ np.linalg.solve(P[:3, :3], e)))
                    except np.linalg.LinAlgError:
                        tr.nees.append(math.inf)
                if progress and int(t) % 60 == 0 and int(t - EVAL_PERIOD_S) % 60 != 0:
                    progress(f"  {world_id}: {t:.0f} s simulated")
        filters = {tr.name: tr.summary() for tr, _ in tracks}
        rp, ry = np.array(raw["pos"]), np.array(raw["yaw"])
        filters["odom only"] = {"pos_rms_m": float(np.sqrt(np.mean(rp ** 2))),
                                "pos_max_m": float(rp.max()), "final_pos_err_m": float(rp[-1]),
                                "yaw_rms_deg": float(np.degrees(np.sqrt(np.mean(ry ** 2)))),
                                "yaw_max_deg": float(np.degrees(np.abs(ry).max()))}
        if dist > 1.0:
            filters["odom only"]["drift_per_100m_m"] = float(rp[-1]) / dist * 100.0
        filters_nofix = filters.get("no fixes")
        if filters_nofix is not None and dist > 1.0:
            filters_nofix["drift_per_100m_m"] = filters_nofix["final_pos_err_m"] / dist * 100.0
            filters_nofix["max_err_per_100m_m"] = filters_nofix["pos_max_m"] / dist * 100.0
        return WorldResult(world_id, min(sim.time_s, sim_seconds), dist,
                           time.perf_counter() - wall0, filters, kid, n_outliers)


def _fmt(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot eval localization", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="+", default=["substation", "construction", "datacentre"])
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per world")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fixes", action="store_true", help="only the filter without fixes")
    ap.add_argument("--no-kidnap", action="store_true", help="skip the kidnapped-robot test")
    ap.add_argument("--detector", choices=["sim", "real"], default="sim",
                    help="where fixes come from (see above)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args(argv)
    if a.detector == "real":
        try:
            import importlib
            importlib.import_module("sitebot.perception.fiducials")
        except Exception as e:  # noqa: BLE001
            print(f"--detector real needs sitebot.perception.fiducials: {e}", file=sys.stderr)
            return 2
    results = []
    for w in a.worlds:
        print(f"{w}: driving {a.minutes:g} simulated min (seed {a.seed}, fixes: "
              f"{'none' if a.no_fixes else a.detector + ' detector'})", flush=True)
        r = evaluate_world(w, a.minutes * 60.0, a.seed, a.detector, not a.no_fixes,
                           not a.no_kidnap, progress=lambda s: print(s, flush=True))
        results.append(r)
    print()
    print(f"{'world':<12} {'filter':<9} {'dist m':>7} {'pos RMS':>8} {'pos max':>8} "
          f"{'yaw RMS':>8} {'yaw max':>8} {'drift/100m':>10} {'NEES<95%':>9} {'NEESmean':>8} "
          f"{'fixNIS<95%':>10} {'fixes ok/rej':>12}")
    for r in results:
        for name, f in r.filters.items():
            rej = sum(f["fixes_rejected"].values()) if name == "fixes" else 0
            if name == "odom only":
                print(f"{r.world:<12} {'odom':<9} {r.distance_m:7.0f} {f['pos_rms_m']:8.3f} "
                      f"{f['pos_max_m']:8.3f} {f['yaw_rms_deg']:7.2f}d {f['yaw_max_deg']:7.2f}d "
                      f"{_fmt(f.get('drift_per_100m_m')):>10}   (raw wheel odometry)")
                continue
            print(f"{r.world:<12} {name:<9} {r.distance_m:7.0f} {f['pos_rms_m']:8.3f} "
                  f"{f['pos_max_m']:8.3f} {f['yaw_rms_deg']:7.2f}d {f['yaw_max_deg']:7.2f}d "
                  f"{_fmt(f.get('drift_per_100m_m')):>10} {f['nees_within_95']:9.2f} "
                  f"{f['nees_mean']:8.2f} {_fmt(f.get('nis_fiducial_within_95'), '.2f'):>10} "
                  + (f"{f['fixes_accepted']:>6}/{rej:<5}" if name == "fixes" else f"{'-':>12}"))
    print("(errors in m and degrees; NEES of (x, y, yaw) within the chi-square 95 % bound "
          "(7.81, 3 dof): ideal 0.95, mean ideal 3; drift = final error without fixes per "
          "100 m driven)")
    for r in results:
        for name in r.filters:
            if name == "odom only":
                continue
            f = r.filters[name]
            nis = ", ".join(f"{k[4:-10]} {v:.2f}" for k, v in f.items()
                            if k.startswith("nis_") and k.endswith("_within_95"))
            print(f"  {r.world} {name}: NIS within 95 % per input: {nis}")
    if any(r.kidnap for r in results):
        print("\nkidnapped robot (teleported in front of a marker, aim: detected < 2 s):")
        for r in results:
            k = r.kidnap
            if k:
                print(f"  {r.world:<12} jump {k['jump_m']:.1f} m: divergence flagged after "
                      f"{_fmt(k['detected_s'], '.2f')} s, re-localized after "
                      f"{_fmt(k['relocalized_s'], '.2f')} s, error then "
                      f"{_fmt(k.get('final_error_m'))} m")
    for r in results:
        print(f"  {r.world}: {r.sim_seconds:.0f} sim s in {r.wall_seconds:.0f} wall s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump([r.__dict__ for r in results], fh, indent=2, default=str)
    return 0
