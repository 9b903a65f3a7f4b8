"""The localization EKF: planar state, per-input fused fields, Mahalanobis gating, a history
buffer for delayed and out-of-order measurements, and a health monitor that tells when the
estimate is wrong (NIS consistency, jump / kidnap detection, re-localization from fixes).

No ROS here; every call carries its time. See docs/localization.md for the model.

    ekf = Ekf(config, markers={tag: (x, y, z, yaw)})
    ekf.initialize(t, (x, y, yaw))
    result = ekf.add(Measurement("odom", t, z=[v, w], cov=...), now=t)
    x, P = ekf.estimate_at(t)
    health = ekf.health(now)
"""
from __future__ import annotations

import bisect
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from sitebot.localization import smallmat
from sitebot.localization.config import INPUT_FIELDS, EkfConfig, InputConfig, chi2_upper
from sitebot.localization.models import (ANGULAR, IX, IY, IYAW, N, measure, motion,
                                         robot_pose_from_fix)
from sitebot.types import Pose2D, se2_compose, se2_inverse, wrap_angle

__all__ = ["markers_from_registry", "Ekf", "Measurement", "Result", "Health", "InputStats", "STATE_OK",
           "STATE_DEAD_RECKONING", "STATE_DIVERGED"]

STATE_OK, STATE_DEAD_RECKONING, STATE_DIVERGED = 0, 1, 2
_SYM_TOL = 1e-9
_JUMP_HOLD_S = 1.0      # a re-localization keeps the divergence flag up this long


@dataclass
class Measurement:
    """One measurement of input ``source`` (odom, imu, fiducial, pose) stamped ``stamp`` [s].

    ``z``: all fields of the input in the order of ``INPUT_FIELDS[source]`` (fields that are
    not fused may be NaN); ``cov``: their covariance (n x n), or None when the input's
    covariance policy does not need it. Fiducials: ``tag`` (AprilTag id) and ``height``
    (tag centre height above the base frame [m], NaN = not checked).
    """
    source: str
    stamp: float
    z: Sequence[float]
    cov: Sequence[Sequence[float]] | np.ndarray | None = None
    tag: int | None = None
    height: float = math.nan


@dataclass(frozen=True)
class Result:
    accepted: bool
    reason: str            # "ok" or why it was rejected
    nis: float = math.nan  # normalised innovation squared (NaN when not computed)
    dof: int = 0
    replayed: int = 0      # later measurements re-filtered because this one came late
    relocalized: bool = False


@dataclass
class InputStats:
    """Counters and the NIS window of one input."""
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    nis: deque = field(default_factory=deque)          # (nis, dof) of accepted updates
    last_stamp: float = -math.inf

    def nis_mean(self) -> float:
        return sum(n for n, _ in self.nis) / len(self.nis) if self.nis else math.nan

    def nis_bound(self, probability: float) -> float:
        """Upper bound of the window's mean NIS (chi-square over the summed dof)."""
        if not self.nis:
            return math.nan
        dof = sum(d for _, d in self.nis)
        return chi2_upper(dof, probability) / len(self.nis)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass(frozen=True)
class Health:
    state: int                 # STATE_OK / STATE_DEAD_RECKONING / STATE_DIVERGED
    diverged: bool
    reasons: tuple[str, ...]
    position_std_m: float
    yaw_std_rad: float
    seconds_since_fix: float   # -1: never
    nis_mean: float            # fiducial window mean (NaN: no data)
    nis_upper_bound: float
    fixes_accepted: int
    fixes_rejected: int
    message: str


def markers_from_registry(registry) -> dict[int, tuple[float, float, float, float, float]]:
    """tag -> (x, y, z, yaw, size) of a :class:`~sitebot.site.registry.SiteRegistry`'s markers."""
    return {int(m.tag): (m.x, m.y, m.z, m.yaw, m.size_m) for m in registry.markers}


class _Entry:
    """A history snapshot: the state after fusing ``meas`` (None: an initial pose)."""
    __slots__ = ("t", "meas", "x", "P")

    def __init__(self, t: float, meas: "_Prepared | None", x: list, P: list):
        self.t, self.meas, self.x, self.P = t, meas, x, P


class _Prepared:
    """A validated measurement: fused-field values, noise and Jacobian inputs, as floats."""
    __slots__ = ("source", "stamp", "z", "R", "idx", "ang", "marker", "tag")

    def __init__(self, source: str, stamp: float, z: list, R: list, idx: tuple,
                 ang: tuple, marker: tuple | None, tag: int | None = None) -> None:
        self.source, self.stamp, self.z, self.R = source, stamp, z, R
        self.idx, self.ang, self.marker, self.tag = idx, ang, marker, tag


class Ekf:
    """The filter. ``markers``: AprilTag id -> surveyed (x, y, z, yaw[, size]) in the map
    frame (see :func:`markers_from_registry`).

    The state lives in Python lists (``smallmat``); :attr:`x` and :attr:`P` are NumPy
    copies for callers.
    """

    def __init__(self, config: EkfConfig | None = None,
                 markers: Mapping[int, Sequence[float]] | None = None) -> None:
        self.config = cfg = config or EkfConfig()
        self.markers = {int(k): tuple(float(v) for v in m) for k, m in (markers or {}).items()}
        self._x = [0.0] * N
        self._P = self._initial_P()
        self.t: float | None = None
        self.initialized = False
        self._hist: list[_Entry] = []
        self._times: list[float] = []
        self.stats = {name: InputStats(nis=deque(maxlen=cfg.nis_window))
                      for name in INPUT_FIELDS}
        self.rejected_other: Counter = Counter()    # unknown inputs
        self.consecutive_rejected_fixes = 0
        self.last_fix_stamp: float | None = None
        self._rejected_fixes: deque = deque(maxlen=64)  # (t, implied pose, filter pose, tag)
        self.relocalizations = 0
        self.last_relocalization: float | None = None
        self.divergence_since: float | None = None
        self._qdiag = [cfg.process_noise_position, cfg.process_noise_position,
                       cfg.process_noise_yaw, cfg.process_noise_accel ** 2,
                       cfg.process_noise_angular_accel ** 2, cfg.process_noise_gyro_bias ** 2]

    def _initial_P(self) -> list:
        std = self.config.initial_std
        return [[std[i] ** 2 if i == j else 0.0 for j in range(N)] for i in range(N)]

    # ------------------------------------------------------------------ views
    @property
    def x(self) -> np.ndarray:
        """The state [x, y, yaw, v, w, gyro bias] at :attr:`t` (a copy)."""
        return np.array(self._x)

    @property
    def P(self) -> np.ndarray:
        """Its covariance (a copy)."""
        return np.array(self._P)

    @property
    def pose(self) -> Pose2D:
        """The map pose at :attr:`t`."""
        return Pose2D(self._x[IX], self._x[IY], self._x[IYAW])

    def covariance_valid(self) -> bool:
        """The covariance is finite, symmetric and positive definite."""
        P = self.P
        if not np.isfinite(P).all() or np.abs(P - P.T).max() > 1e-9:
            return False
        try:
            np.linalg.cholesky(P)
        except np.linalg.LinAlgError:
            return False
        return True

    # ------------------------------------------------------------------ set-up
    def initialize(self, t: float | None, pose: Sequence[float],
                   pose_std: Sequence[float] | None = None, keep_motion: bool = True) -> None:
        """Set the pose (x, y, yaw) at time ``t`` (None: at the first measurement's stamp).

        ``pose_std``: its standard deviations (default: ``initial_std``). With
        ``keep_motion`` the speed, yaw rate and gyro bias estimates (and their covariance)
        are kept; the history is cleared (the past no longer fits the new pose).
        """
        try:
            vals = [float(v) for v in pose]
        except (TypeError, ValueError):
            vals = []
        if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
            raise ValueError(f"initial pose {pose!r}: accepted: 3 finite numbers (x, y, yaw)")
        std = [float(v) for v in pose_std] if pose_std is not None \
            else list(self.config.initial_std[:3])
        if len(std) != 3 or not all(math.isfinite(v) and v > 0 for v in std):
            raise ValueError(f"initial pose std {pose_std!r}: accepted: 3 positive numbers")
        if t is not None and not math.isfinite(t):
            raise ValueError(f"initial time {t!r} is not finite")
        if not (keep_motion and self.initialized):
            self._x = [0.0] * N
            self._P = self._initial_P()
        self._x[0], self._x[1], self._x[2] = vals[0], vals[1], wrap_angle(vals[2])
        for i in range(3):
            for j in range(N):
                self._P[i][j] = self._P[j][i] = 0.0
            self._P[i][i] = std[i] ** 2
        if t is not None:
            self.t = float(t)
        self.initialized = True
        self.consecutive_rejected_fixes = 0
        self._rejected_fixes.clear()
        self._reset_history()

    def _reset_history(self) -> None:
        self._hist = []
        self._times = []
        if self.t is not None:
            self._push(None)

    def _push(self, meas: _Prepared | None) -> None:
        self._hist.append(_Entry(self.t, meas, self._x[:], smallmat.copy_matrix(self._P)))
        self._times.append(self.t)

    # ------------------------------------------------------------------ prediction
    def _predict(self, x: list, P: list, dt: float) -> tuple[list, list]:
        step = self.config.max_predict_s
        while dt > 0.0:
            h = dt if dt <= step else step
            x, f = motion(x, h)
            P = smallmat.predict(P, f, self._qdiag, h)
            dt -= h
        return x, P

    def estimate_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The state and covariance at ``t`` (predicted from the newest snapshot at or
        before ``t``; nothing is committed)."""
        x, P = self._estimate_at(t)
        return np.array(x), np.array(P)

    def _estimate_at(self, t: float) -> tuple[list, list]:
        if self.t is None:
            return self._x[:], smallmat.copy_matrix(self._P)
        if t >= self.t or not self._hist:
            return self._predict(self._x, self._P, max(0.0, t - self.t))
        i = bisect.bisect_right(self._times, t) - 1
        e = self._hist[max(i, 0)]
        return self._predict(e.x, e.P, max(0.0, t - e.t))

    # ------------------------------------------------------------------ measurements
    def add(self, m: Measurement, now: float | None = None) -> Result:
        """Validate and fuse one measurement; ``now`` = the clock (for future stamps).

        Late measurements (stamp older than the newest fused one, within
        ``history_length_s``) are inserted in order and the later ones re-filtered.
        """
        cfg = self.config
        src = getattr(m, "source", None)
        if src not in INPUT_FIELDS:
            self.rejected_other["unknown_input"] += 1
            return Result(False, "unknown_input")
        st = self.stats[src]
        pm = self._prepare(m, cfg.inputs[src], now)
        if isinstance(pm, str):
            st.rejected[pm] += 1       # invalid data says nothing about the pose
            return Result(False, pm)
        if self.t is None:
            self.t = pm.stamp
            self._reset_history()
        replayed = 0
        if pm.stamp >= self.t:
            res = self._process(pm)
            self._push(pm)
        else:
            i = bisect.bisect_right(self._times, pm.stamp)
            if i == 0 or pm.stamp < self.t - cfg.history_length_s:
                st.rejected["too_old"] += 1
                return Result(False, "too_old")
            later = [e.meas for e in self._hist[i:]]
            base = self._hist[i - 1]
            del self._hist[i:]
            del self._times[i:]
            self._x, self._P, self.t = base.x[:], smallmat.copy_matrix(base.P), base.t
            res = self._process(pm)
            self._push(pm)
            for lm in later:
                if lm is not None:
                    self._process(lm)
                self._push(lm)
            replayed = len(later)
        self._prune()
        if pm.stamp > st.last_stamp:
            st.last_stamp = pm.stamp
        if res.accepted:
            st.accepted += 1
            st.nis.append((res.nis, res.dof))
        else:
            st.rejected[res.reason] += 1
        relocalized = False
        if src == "fiducial":
            if res.accepted:
                self.consecutive_rejected_fixes = 0
                self._rejected_fixes.clear()
                if self.last_fix_stamp is None or pm.stamp > self.last_fix_stamp:
                    self.last_fix_stamp = pm.stamp
            elif res.reason == "gated":
                self.consecutive_rejected_fixes += 1
                relocalized = self._maybe_relocalize(pm)
        if replayed or relocalized:
            res = Result(res.accepted, res.reason, res.nis, res.dof, replayed, relocalized)
        return res

    def _prepare(self, m: Measurement, icfg: InputConfig, now: float | None
                 ) -> _Prepared | str:
        """Check a measurement; the reason it is rejected, or its prepared form."""
        cfg = self.config
        try:
            stamp = float(m.stamp)
        except (TypeError, ValueError):
            return "bad_stamp"
        if not math.isfinite(stamp) or stamp < 0.0:
            return "bad_stamp"
        if now is not None and stamp > now + cfg.future_tolerance_s:
            return "from_future"
        if self.t is not None and stamp < self.t - cfg.history_length_s:
            return "too_old"
        if not icfg.enabled:
            return "input_disabled"
        names = INPUT_FIELDS[m.source]
        n = len(names)
        try:
            z_all = [float(v) for v in (m.z.tolist() if hasattr(m.z, "tolist") else m.z)]
        except (TypeError, ValueError):
            return "bad_shape"
        if len(z_all) != n:
            return "bad_shape"
        idx = icfg.fields
        z = [z_all[i] for i in idx]
        if not all(math.isfinite(v) for v in z):
            return "non_finite"
        marker = None
        if m.source == "fiducial":
            try:
                mk = self.markers.get(int(m.tag)) if m.tag is not None else None
            except (TypeError, ValueError):
                mk = None
            if mk is None:
                return "unknown_marker"
            if math.hypot(z_all[0], z_all[1]) > cfg.fiducial_max_range_m:
                return "too_far"
            tol = cfg.fiducial_height_tolerance_m
            h = m.height
            if tol > 0.0 and h is not None and math.isfinite(h) and abs(h - mk[2]) > tol:
                return "height_mismatch"
            marker = (mk[0], mk[1], mk[3])
        if icfg.covariance == "message":
            c = m.cov
            if c is None:
                return "covariance_missing"
            try:
                c = c.tolist() if hasattr(c, "tolist") else [list(r) for r in c]
                rows = [[float(c[i][j]) for j in idx] for i in idx]
                ok_shape = len(c) == n and all(len(r) == n for r in c)
            except (TypeError, ValueError, IndexError):
                return "covariance_bad_shape"
            if not ok_shape:
                return "covariance_bad_shape"
            if not all(math.isfinite(v) for r in rows for v in r):
                return "covariance_non_finite"
            k = len(idx)
            scale = max(1.0, max(abs(v) for r in rows for v in r))
            if any(abs(rows[i][j] - rows[j][i]) > _SYM_TOL * scale
                   for i in range(k) for j in range(i)):
                return "covariance_not_symmetric"
            if any(rows[i][i] < 0.0 for i in range(k)) or not smallmat.is_psd(rows):
                return "covariance_not_psd"
            R = rows
        elif icfg.covariance == "fixed":
            R = [[icfg.fixed_std[i] ** 2 if i == j else 0.0 for j in idx] for i in idx]
        else:             # fiducial detector model: at the predicted range (_process)
            R = None
        if R is not None:
            floor = icfg.min_variance
            for i in range(len(idx)):
                if R[i][i] < floor:
                    R[i][i] = floor
        ang = tuple(ANGULAR[m.source][i] for i in idx)
        return _Prepared(m.source, stamp, z, R, idx, ang, marker,
                         int(m.tag) if marker is not None else None)

    def _fix_model(self, z: list, mk: tuple, idx: tuple) -> list:
        """Range-dependent covariance of a fix at tag position ``z[:2]`` in the base frame
        (config ``fiducial_model_std``)."""
        a, b, c, e, d = self.config.fiducial_model_std
        r = max(math.hypot(z[0], z[1]), 1e-3)
        s = mk[4] if len(mk) > 4 else 0.16
        lat, dep = a + b * r, a + c * r * r / s
        ux, uy = z[0] / r, z[1] / r
        full = [[dep * dep * ux * ux + lat * lat * uy * uy, (dep * dep - lat * lat) * ux * uy, 0.0],
                [(dep * dep - lat * lat) * ux * uy, dep * dep * uy * uy + lat * lat * ux * ux, 0.0],
                [0.0, 0.0, (e + d * r / s) ** 2]]
        return [[full[i][j] for j in idx] for i in idx]

    def _process(self, pm: _Prepared) -> Result:
        """Predict to the measurement's stamp and update (gated)."""
        if pm.stamp > self.t:
            self._x, self._P = self._predict(self._x, self._P, pm.stamp - self.t)
            self.t = pm.stamp
        h_all, H_all = measure(pm.source, self._x, pm.marker)
        y, H = [], []
        for k, i in enumerate(pm.idx):
            d = pm.z[k] - h_all[i]
            y.append(wrap_angle(d) if pm.ang[k] else d)
            H.append(H_all[i])
        icfg = self.config.inputs[pm.source]
        R = pm.R
        if R is None:
            # range from the prediction, not the measurement: an outlier must not widen
            # its own noise
            R = self._fix_model(h_all, self.markers[pm.tag], pm.idx)
            for i in range(len(R)):
                R[i][i] = max(R[i][i], icfg.min_variance)
        gate = icfg.rejection_threshold
        x1, P1, nis = smallmat.update(self._x, self._P, y, H, R, gate * gate)
        dof = len(y)
        if x1 is None:
            if not math.isfinite(nis):
                return Result(False, "numerical")
            return Result(False, "gated" if gate > 0.0 and nis > gate * gate else "numerical",
                          nis, dof)
        if not all(math.isfinite(v) for v in x1):
            return Result(False, "numerical", nis, dof)
        x1[IYAW] = wrap_angle(x1[IYAW])
        self._x, self._P = x1, P1
        if pm.source == "pose":
            self.initialized = True
        return Result(True, "ok", nis, dof)

    def _prune(self) -> None:
        horizon = self.t - self.config.history_length_s
        k = bisect.bisect_left(self._times, horizon) - 1   # keep one snapshot before
        if k > 64:
            del self._hist[:k]
            del self._times[:k]

    # ------------------------------------------------------------------ jumps
    def _maybe_relocalize(self, pm: _Prepared) -> bool:
        """Keep the robot pose each rejected fix implies; when enough of them (moved to the
        present with the filter's own motion since) agree, re-initialize there."""
        cfg = self.config
        if len(pm.idx) != 3:           # a full relative pose is needed to imply a pose
            return False
        implied = robot_pose_from_fix(pm.marker, pm.z[0], pm.z[1], pm.z[2])
        x_then, _ = self._estimate_at(pm.stamp)
        self._rejected_fixes.append((pm.stamp, implied, (x_then[IX], x_then[IY], x_then[IYAW]),
                                     pm.tag))
        if not cfg.relocalize:
            return False
        recent = [f for f in self._rejected_fixes if f[0] >= self.t - cfg.relocalize_window_s]
        if len(recent) < cfg.relocalize_min_fixes:
            return False
        now_pose = (self._x[IX], self._x[IY], self._x[IYAW])
        moved = [se2_compose(imp, se2_compose(se2_inverse(then), now_pose)) for _, imp, then, _ in recent]
        best: list[int] = []
        for p in moved:
            group = [j for j, q in enumerate(moved)
                     if math.hypot(p[0] - q[0], p[1] - q[1]) <= cfg.relocalize_position_tol_m
                     and abs(wrap_angle(p[2] - q[2])) <= cfg.relocalize_yaw_tol_rad]
            if len(group) > len(best):
                best = group
        tags = {recent[j][3] for j in best}
        if len(best) < cfg.relocalize_min_fixes or len(tags) < cfg.relocalize_min_tags:
            return False
        px = sum(moved[j][0] for j in best) / len(best)
        py = sum(moved[j][1] for j in best) / len(best)
        pyaw = math.atan2(sum(math.sin(moved[j][2]) for j in best),
                          sum(math.cos(moved[j][2]) for j in best))
        spread = max(math.hypot(moved[j][0] - px, moved[j][1] - py) for j in best)
        std_p = max(cfg.relocalize_position_tol_m / 2.0, spread)
        std_y = cfg.relocalize_yaw_tol_rad / 2.0
        self.initialize(self.t, (px, py, pyaw), (std_p, std_p, std_y), keep_motion=True)
        self.relocalizations += 1
        self.last_relocalization = self.t
        return True

    # ------------------------------------------------------------------ health
    def health(self, now: float) -> Health:
        """How much to trust the estimate at ``now``."""
        cfg = self.config
        x, P = self._estimate_at(now)
        a, b, c = P[0][0], P[1][1], P[0][1]
        lam = 0.5 * (a + b) + math.sqrt(max(0.25 * (a - b) ** 2 + c * c, 0.0))
        pos_std = math.sqrt(max(lam, 0.0))
        yaw_std = math.sqrt(max(P[IYAW][IYAW], 0.0))
        fs = self.stats["fiducial"]
        mean = fs.nis_mean()
        bound = fs.nis_bound(cfg.nis_probability)
        reasons = []
        if not self.initialized:
            reasons.append("not_initialized")
        if len(fs.nis) >= cfg.nis_min_samples and mean > bound:
            reasons.append("fix_nis_high")
        ps = self.stats["pose"]
        if len(ps.nis) >= cfg.nis_min_samples and ps.nis_mean() > ps.nis_bound(cfg.nis_probability):
            reasons.append("pose_nis_high")
        if self.consecutive_rejected_fixes >= cfg.jump_rejections:
            reasons.append("fixes_rejected")
        if self.last_relocalization is not None and \
                0.0 <= now - self.last_relocalization < _JUMP_HOLD_S:
            reasons.append("jumped")          # re-localized: the map pose just jumped
        if not pos_std <= cfg.max_position_std_m:
            reasons.append("position_uncertain")
        if not all(math.isfinite(v) for v in x):
            reasons.append("non_finite_state")
        diverged = bool(reasons)
        if diverged and self.divergence_since is None:
            self.divergence_since = now
        elif not diverged:
            self.divergence_since = None
        since_fix = -1.0 if self.last_fix_stamp is None else max(0.0, now - self.last_fix_stamp)
        if diverged:
            state = STATE_DIVERGED
            msg = "diverged: " + ", ".join(reasons)
        elif self.last_fix_stamp is None or since_fix > cfg.dead_reckoning_after_s:
            state = STATE_DEAD_RECKONING
            msg = "dead reckoning: " + ("no fiducial fix yet" if self.last_fix_stamp is None
                                        else f"last fix {since_fix:.1f} s ago")
        else:
            state = STATE_OK
            msg = f"ok: last fix {since_fix:.1f} s ago"
        if self.last_relocalization is not None and 0.0 <= now - self.last_relocalization < 5.0:
            msg += f"; re-localized from fixes {now - self.last_relocalization:.1f} s ago"
        return Health(state, diverged, tuple(reasons), pos_std, yaw_std, since_fix, mean,
                      bound, fs.accepted, fs.rejected_total, msg)
