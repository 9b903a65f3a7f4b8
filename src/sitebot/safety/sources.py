"""Data sources of the supervisor: what it hears from the rest of the robot, with a
watchdog each.

Every source has a ``name``, a ``timeout_s`` and a ``required`` flag; ``update(...)`` takes
the data with the time it was stamped and the supervisor's ``now`` [s]; ``age_s(now)`` is
how old the newest accepted data is; ``verdict(now)`` turns stale or missing data of a
required source into PROTECTIVE_STOP (cause ``<name>_stale``) and, when fresh, asks the
source's own rule (:meth:`DataSource.assess`).

Updates are refused (``update`` returns a reason string; ``None`` = accepted) for
non-finite data, a stamp equal to the last one (duplicate) or older (time going backwards).
The data time of an update is ``min(stamp_s, now)`` (a stamp of 0 or None means "now"), so
neither a clock running ahead nor a late message looks fresher than it is.

The scan source turns a LaserScan into obstacles with numpy only (no per-beam Python):
points in the base frame, clusters split where consecutive points jump by more than
``cluster_gap_m``, and clusters of person width as person candidates.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from sitebot.safety.config import SafetyConfig
from sitebot.safety.types import ZERO_VERDICT, Cause, Obstacle, RobotState, SensorPose, Verdict
from sitebot.types import SafetyLevel

__all__ = ["DataSource", "ObstacleSet", "ScanSource", "PeopleSource", "OdometrySource",
           "LocalizationSource", "BatterySource", "HeartbeatSource", "ScanClusters",
           "cluster_scan", "EMPTY_OBSTACLES"]

#: a scan with more beams than this is refused (a malformed message, not a laser)
MAX_BEAMS = 100_000
#: a person list longer than this is refused
MAX_PEOPLE = 1_000
#: tracked people: the position standard deviation counts this many times in Z_d
POSITION_STD_FACTOR = 2.0


# ---------------------------------------------------------------------------------------
# obstacles as arrays (what the separation monitor iterates over, vectorised)
# ---------------------------------------------------------------------------------------
class ObstacleSet:
    """Obstacles as columns (numpy float arrays of one length), base frame.

    ``x``, ``y`` [m] centre, ``radius`` [m], ``vh`` [m/s] the speed toward the robot to
    assume (person speed, measured approach speed, or 0 for static things), ``margin`` [m]
    extra distance added to the protective separation (intrusion distance C for people and
    a tracker's position uncertainty), ``person`` (bool).
    """

    __slots__ = ("x", "y", "radius", "vh", "margin", "person", "source")

    def __init__(self, x: np.ndarray, y: np.ndarray, radius: np.ndarray, vh: np.ndarray,
                 margin: np.ndarray, person: np.ndarray, source: str = "") -> None:
        self.x = x
        self.y = y
        self.radius = radius
        self.vh = vh
        self.margin = margin
        self.person = person
        self.source = source

    def __len__(self) -> int:
        return int(self.x.size)

    @classmethod
    def empty(cls, source: str = "") -> "ObstacleSet":
        z = np.zeros(0)
        return cls(z, z, z, z, z, np.zeros(0, bool), source)

    @classmethod
    def from_obstacles(cls, obstacles: Sequence[Obstacle], config: SafetyConfig,
                       source: str = "") -> "ObstacleSet":
        """Build from :class:`Obstacle` values: ``vh`` per the config (measured approach
        speed, never below 0, when measured and ``use_measured_person_speed``; else
        ``person_speed_mps`` for people and 0 for things)."""
        if len(obstacles) == 0:
            return cls.empty(source)
        return cls.from_array(_obstacle_array(obstacles), config, source)

    @classmethod
    def from_array(cls, a: np.ndarray, config: SafetyConfig, source: str = ""
                   ) -> "ObstacleSet":
        """From rows (x, y, radius, vx, vy, position_std, is_person, measured_speed)."""
        if a.shape[0] == 0:
            return cls.empty(source)
        x, y, r, vx, vy, std = a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
        person = a[:, 6] > 0.5
        measured = (a[:, 7] > 0.5) & config.use_measured_person_speed
        dist = np.hypot(x, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            approach = np.where(dist > 1e-9, -(vx * x + vy * y) / dist,
                                np.hypot(vx, vy))
        approach = np.maximum(approach, 0.0)
        vh = np.where(person, np.where(measured, approach, config.person_speed_mps),
                      np.where(measured, approach, 0.0))
        margin = np.where(person, config.intrusion_distance_m, 0.0) + \
            POSITION_STD_FACTOR * np.maximum(std, 0.0)
        return cls(x, y, np.maximum(r, 0.0), vh, margin, person, source)

    def to_obstacles(self) -> list[Obstacle]:
        """As :class:`Obstacle` values (for inspection and tests; not on the hot path)."""
        return [Obstacle(float(x), float(y), float(r), is_person=bool(p), source=self.source)
                for x, y, r, p in zip(self.x, self.y, self.radius, self.person)]

    @staticmethod
    def concat(sets: Sequence["ObstacleSet"]) -> "ObstacleSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            return ObstacleSet.empty()
        if len(sets) == 1:
            return sets[0]
        return ObstacleSet(*(np.concatenate([getattr(s, k) for s in sets])
                             for k in ("x", "y", "radius", "vh", "margin", "person")),
                           source="+".join(s.source for s in sets))


EMPTY_OBSTACLES = ObstacleSet.empty()


def _obstacle_array(obstacles: Sequence[Obstacle]) -> np.ndarray:
    """Rows (x, y, radius, vx, vy, position_std, is_person, measured_speed) [SI units]."""
    return np.array([(o.x_m, o.y_m, o.radius_m, o.vx_mps, o.vy_mps, o.position_std_m,
                      float(o.is_person), float(o.measured_speed)) for o in obstacles],
                    dtype=float).reshape(-1, 8)


# ---------------------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------------------
class DataSource(abc.ABC):
    """One input with a watchdog.  Subclasses add ``update(...)`` and :meth:`assess`."""

    def __init__(self, name: str, timeout_s: float, required: bool) -> None:
        self.name = name
        self.timeout_s = float(timeout_s)        # [s]
        self.required = bool(required)
        self._data_time: float | None = None     # [s] data time of the newest update
        self._stamp: float | None = None         # [s] its stamp as received
        self.updates = 0
        self.rejected = 0

    # -- watchdog ----------------------------------------------------------------------
    def _accept_time(self, stamp_s: float | None, now: float) -> str | None:
        """Check the stamp; on success remember it and return None, else a reason."""
        if not math.isfinite(now):
            return "non_finite_time"
        if stamp_s is None or stamp_s == 0.0:
            stamp = now
        else:
            stamp = float(stamp_s)
            if not math.isfinite(stamp):
                return "non_finite_stamp"
        if self._stamp is not None:
            if stamp == self._stamp:
                return "duplicate_stamp"
            if stamp < self._stamp:
                return "stamp_backwards"
        self._stamp = stamp
        self._data_time = min(stamp, now)
        return None

    def _rejected(self, reason: str) -> str:
        self.rejected += 1
        return reason

    def _accepted(self) -> None:
        self.updates += 1

    @property
    def received(self) -> bool:
        """True once an update was accepted (since construction or :meth:`reset`)."""
        return self._data_time is not None

    def age_s(self, now: float) -> float:
        """Age [s] of the newest accepted data at ``now``; inf when none (or when ``now``
        lies before it: the clock went backwards)."""
        if self._data_time is None or not now >= self._data_time:
            return math.inf
        return now - self._data_time

    def fresh(self, now: float) -> bool:
        """True when data arrived and is not older than ``timeout_s``."""
        return self.age_s(now) <= self.timeout_s

    def verdict(self, now: float) -> Verdict:
        """PROTECTIVE_STOP (``<name>_stale``) when required and stale or missing; nothing
        when stale and optional; else :meth:`assess`."""
        if self.fresh(now):
            return self.assess(now)
        if not self.required:
            return ZERO_VERDICT
        age = self.age_s(now)
        text = (f"no {self.name} received" if self._data_time is None else
                f"{self.name} is {age:.3g} s old (timeout {self.timeout_s:g} s)"
                if math.isfinite(age) else f"{self.name} stamped after now (clock went back)")
        return Verdict(SafetyLevel.PROTECTIVE_STOP, 0.0, 0.0,
                       (Cause(f"{self.name}_stale", SafetyLevel.PROTECTIVE_STOP, text,
                              self.name),))

    def reset(self) -> None:
        """Forget all data (after the clock jumped backwards)."""
        self._data_time = None
        self._stamp = None

    @abc.abstractmethod
    def assess(self, now: float) -> Verdict:
        """This source's rule for fresh data."""


# ---------------------------------------------------------------------------------------
# laser scan
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanClusters:
    """The result of :func:`cluster_scan`: every valid point (base frame, [m]) and, per
    cluster, its first/last point index, the centre of its bounding box [m], its width [m]
    (the bounding box diagonal plus one beam's spacing: a circle of half that width about
    the centre covers every point) and whether it is person-sized."""

    x: np.ndarray
    y: np.ndarray
    start: np.ndarray
    end: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    width: np.ndarray
    person: np.ndarray


class _BeamCache:
    """cos/sin of the beam directions in the base frame, kept while the scan geometry and
    the laser pose stay the same."""

    __slots__ = ("key", "c", "s")

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.c = np.zeros(0)
        self.s = np.zeros(0)

    def get(self, n: int, angle_min: float, inc: float, yaw: float) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        key = (n, angle_min, inc, yaw)
        if key != self.key:
            ang = angle_min + inc * np.arange(n) + yaw
            self.c, self.s, self.key = np.cos(ang), np.sin(ang), key
        return self.c, self.s


def cluster_scan(ranges: np.ndarray, angle_min_rad: float, angle_increment_rad: float,
                 laser: SensorPose, config: SafetyConfig, range_min_m: float = 0.0,
                 range_max_m: float = math.inf, _cache: _BeamCache | None = None
                 ) -> ScanClusters:
    """Split a scan into clusters, vectorised.

    Valid beams: finite and within [range_min_m, range_max_m]; ``-inf`` (REP-117: closer
    than range_min) counts as an obstacle at range_min; ``+inf`` and NaN are no return.
    Points go to the base frame through ``laser`` (base <- laser).  A new cluster starts where two consecutive valid
    points (in beam order) lie more than ``cluster_gap_m`` apart.  A cluster is a person
    candidate when its width lies in [person_min_width_m, person_max_width_m].
    """
    r = np.asarray(ranges, dtype=float).ravel()
    cache = _cache or _BeamCache()
    c, s = cache.get(r.size, angle_min_rad, angle_increment_rad, laser.yaw_rad)
    rmin = max(range_min_m, 0.0)
    too_close = np.isneginf(r)
    if too_close.any():
        # REP-117: -inf = something closer than range_min: an obstacle at range_min
        r = np.where(too_close, rmin, r)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(r) & (r >= rmin) & (r <= range_max_m)
    idx = np.flatnonzero(valid)
    rv = r[idx]
    x = laser.x_m + rv * c[idx]
    y = laser.y_m + rv * s[idx]
    if config.scan_ignore_radius_m > 0.0 and x.size:
        keep = (x * x + y * y) >= config.scan_ignore_radius_m ** 2
        x, y, rv = x[keep], y[keep], rv[keep]
    m = x.size
    if m == 0:
        z = np.zeros(0)
        zi = np.zeros(0, dtype=np.intp)
        return ScanClusters(z, z, zi, zi, z, z, z, np.zeros(0, bool))
    gap2 = config.cluster_gap_m ** 2
    dx = np.diff(x)
    dy = np.diff(y)
    breaks = np.flatnonzero(dx * dx + dy * dy > gap2) + 1
    start = np.concatenate(([0], breaks))
    end = np.concatenate((breaks, [m])) - 1
    x_lo, x_hi = np.minimum.reduceat(x, start), np.maximum.reduceat(x, start)
    y_lo, y_hi = np.minimum.reduceat(y, start), np.maximum.reduceat(y, start)
    cx = 0.5 * (x_lo + x_hi)
    cy = 0.5 * (y_lo + y_hi)
    beam = abs(angle_increment_rad) * 0.5 * (rv[start] + rv[end])
    width = np.hypot(x_hi - x_lo, y_hi - y_lo) + beam
    person = (width >= config.person_min_width_m) & (width <= config.person_max_width_m)
    return ScanClusters(x, y, start, end, cx, cy, width, person)


class ScanSource(DataSource):
    """The laser scan: static obstacle points plus person candidates.

    ``update(ranges, angle_min_rad, angle_increment_rad, now, stamp_s=None,
    range_min_m=0.0, range_max_m=inf, laser=None)``: ``laser`` is the transform
    base <- laser (default: ``laser_x_m``, ``laser_y_m``, ``laser_yaw_rad`` of the config).
    """

    def __init__(self, config: SafetyConfig, name: str = "scan") -> None:
        super().__init__(name, config.scan_timeout_s, config.scan_required)
        self.config = config
        self.default_laser = SensorPose(config.laser_x_m, config.laser_y_m,
                                        config.laser_yaw_rad)
        self._cache = _BeamCache()
        self.clusters: ScanClusters | None = None
        self.points: ObstacleSet = ObstacleSet.empty(name)
        self.version = 0       # increments with every accepted scan

    def update(self, ranges: Sequence[float] | np.ndarray, angle_min_rad: float,
               angle_increment_rad: float, now: float, stamp_s: float | None = None,
               range_min_m: float = 0.0, range_max_m: float = math.inf,
               laser: SensorPose | None = None) -> str | None:
        try:
            r = np.asarray(ranges, dtype=float).ravel()
        except (TypeError, ValueError):
            return self._rejected("ranges_not_numeric")
        if r.size == 0 or r.size > MAX_BEAMS:
            return self._rejected("ranges_empty_or_too_long")
        lp = laser or self.default_laser
        geometry = (angle_min_rad, angle_increment_rad, range_min_m, lp.x_m, lp.y_m,
                    lp.yaw_rad)
        if not all(math.isfinite(float(g)) for g in geometry) or \
                angle_increment_rad == 0.0 or math.isnan(range_max_m):
            return self._rejected("bad_scan_geometry")
        why = self._accept_time(stamp_s, now)
        if why:
            return self._rejected(why)
        cl = cluster_scan(r, angle_min_rad, angle_increment_rad, lp, self.config,
                          range_min_m, range_max_m, self._cache)
        self.clusters = cl
        n = cl.x.size
        zeros = np.zeros(n)
        self.points = ObstacleSet(cl.x, cl.y, zeros, zeros, zeros, np.zeros(n, bool),
                                  self.name)
        self.version += 1
        self._accepted()
        return None

    def candidates(self, covered_by: ObstacleSet | None = None,
                   mapped: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                   ) -> ObstacleSet:
        """Person-sized clusters as people (speed ``person_speed_mps``), minus those within
        ``people_match_radius_m`` of a tracked person in ``covered_by``, and minus those
        ``mapped(cx, cy) -> bool mask`` says are known static structure (base-frame centres;
        they stay in the scan points as obstacles)."""
        cl = self.clusters
        if cl is None or not self.config.scan_person_candidates or not cl.person.any():
            return ObstacleSet.empty(self.name)
        cx, cy, w = cl.cx[cl.person], cl.cy[cl.person], cl.width[cl.person]
        if mapped is not None and cx.size:
            keep = ~mapped(cx, cy)
            cx, cy, w = cx[keep], cy[keep], w[keep]
        if covered_by is not None and len(covered_by):
            d2 = (cx[:, None] - covered_by.x[None, :]) ** 2 + \
                (cy[:, None] - covered_by.y[None, :]) ** 2
            lim = (self.config.people_match_radius_m + covered_by.radius[None, :]) ** 2
            keep = ~(d2 <= lim).any(axis=1)
            cx, cy, w = cx[keep], cy[keep], w[keep]
        n = cx.size
        cfg = self.config
        return ObstacleSet(cx, cy, 0.5 * w, np.full(n, cfg.person_speed_mps),
                           np.full(n, cfg.intrusion_distance_m), np.ones(n, bool),
                           self.name + "_person")

    def assess(self, now: float) -> Verdict:
        return ZERO_VERDICT

    def reset(self) -> None:
        super().reset()
        self.clusters = None
        self.points = ObstacleSet.empty(self.name)
        self.version += 1


# ---------------------------------------------------------------------------------------
# tracked people
# ---------------------------------------------------------------------------------------
class PeopleSource(DataSource):
    """Tracked people (base frame) with velocity and position uncertainty.

    ``update(people, now, stamp_s=None)``; every entry counts as a person.
    """

    def __init__(self, config: SafetyConfig, name: str = "people") -> None:
        super().__init__(name, config.people_timeout_s, config.people_required)
        self.config = config
        self.people: ObstacleSet = ObstacleSet.empty(name)
        self.version = 0

    def update(self, people: Sequence[Obstacle], now: float,
               stamp_s: float | None = None) -> str | None:
        try:
            people = list(people)
        except TypeError:
            return self._rejected("people_not_a_list")
        if len(people) > MAX_PEOPLE:
            return self._rejected("too_many_people")
        if not all(isinstance(p, Obstacle) for p in people):
            return self._rejected("not_an_obstacle")
        try:
            a = _obstacle_array(people)
        except (TypeError, ValueError):
            return self._rejected("non_numeric_person")
        if not np.isfinite(a).all():
            return self._rejected("non_finite_person")
        why = self._accept_time(stamp_s, now)
        if why:
            return self._rejected(why)
        a[:, 6] = 1.0                                  # every entry is a person
        self.people = ObstacleSet.from_array(a, self.config, self.name)
        self.version += 1
        self._accepted()
        return None

    def assess(self, now: float) -> Verdict:
        return ZERO_VERDICT

    def reset(self) -> None:
        super().reset()
        self.people = ObstacleSet.empty(self.name)
        self.version += 1


# ---------------------------------------------------------------------------------------
# odometry
# ---------------------------------------------------------------------------------------
class OdometrySource(DataSource):
    """The base's measured body twist: ``update(v_mps, w_radps, now, stamp_s=None)``."""

    def __init__(self, config: SafetyConfig, name: str = "odometry") -> None:
        super().__init__(name, config.odometry_timeout_s, config.odometry_required)
        self.v_mps = 0.0
        self.w_radps = 0.0

    def update(self, v_mps: float, w_radps: float, now: float,
               stamp_s: float | None = None) -> str | None:
        try:
            v, w = float(v_mps), float(w_radps)
        except (TypeError, ValueError):
            return self._rejected("non_numeric")
        if not (math.isfinite(v) and math.isfinite(w)):
            return self._rejected("non_finite_twist")
        why = self._accept_time(stamp_s, now)
        if why:
            return self._rejected(why)
        self.v_mps, self.w_radps = v, w
        self._accepted()
        return None

    def assess(self, now: float) -> Verdict:
        return ZERO_VERDICT

    def reset(self) -> None:
        super().reset()
        self.v_mps = self.w_radps = 0.0


# ---------------------------------------------------------------------------------------
# localization
# ---------------------------------------------------------------------------------------
class LocalizationSource(DataSource):
    """The map pose with its health: ``update(state, now, cov_trace_m2=0.0, nis=None)``.

    Diverging = the position covariance trace (xx + yy) [m^2] above
    ``localization_max_cov_trace_m2``, or the normalised innovation squared above
    ``localization_max_nis`` (a NaN in either also counts).  Diverging -> REDUCED_SPEED
    (``localization_diverging``) at once; once it has lasted ``divergence_stop_s``
    (``localization_diverged``) no translation, only turning in place up to
    ``relocalize_turn_radps`` (a robot that does not know where it is may look around for
    markers, and the scan's fields still watch the circle it turns in), or a
    PROTECTIVE_STOP when that is 0; a healthy update clears it.
    """

    def __init__(self, config: SafetyConfig, name: str = "localization") -> None:
        super().__init__(name, config.localization_timeout_s, config.localization_required)
        self.config = config
        self.state: RobotState | None = None
        self.cov_trace_m2 = 0.0
        self.nis: float | None = None
        self.diverging_since: float | None = None

    def update(self, state: RobotState, now: float, cov_trace_m2: float = 0.0,
               nis: float | None = None) -> str | None:
        if not isinstance(state, RobotState):
            return self._rejected("not_a_robot_state")
        try:
            pose = (float(state.x_m), float(state.y_m), float(state.yaw_rad))
        except (TypeError, ValueError):
            return self._rejected("non_numeric_pose")
        if not all(math.isfinite(v) for v in pose):
            return self._rejected("non_finite_pose")
        why = self._accept_time(state.stamp_s, now)
        if why:
            return self._rejected(why)
        cfg = self.config
        try:
            cov = float(cov_trace_m2)
            nis_f = None if nis is None else float(nis)
        except (TypeError, ValueError):
            cov, nis_f = math.nan, None
        diverging = not (cov <= cfg.localization_max_cov_trace_m2) or (
            nis_f is not None and not nis_f <= cfg.localization_max_nis)
        if diverging:
            if self.diverging_since is None:
                self.diverging_since = self._data_time
        else:
            self.diverging_since = None
        self.state, self.cov_trace_m2, self.nis = state, cov, nis_f
        self._accepted()
        return None

    def assess(self, now: float) -> Verdict:
        if self.diverging_since is None:
            return ZERO_VERDICT
        cfg = self.config
        how = (f"covariance trace {self.cov_trace_m2:.3g} m^2 (max "
               f"{cfg.localization_max_cov_trace_m2:g}), NIS {self.nis!r} (max "
               f"{cfg.localization_max_nis:g})")
        lasted = now - self.diverging_since
        if lasted >= cfg.divergence_stop_s:
            turn = cfg.relocalize_turn_radps
            level = SafetyLevel.REDUCED_SPEED if turn > 0.0 else SafetyLevel.PROTECTIVE_STOP
            only = f"; turning in place only (|w| <= {turn:g} rad/s)" if turn > 0.0 else ""
            return Verdict(level, 0.0, turn, (Cause(
                "localization_diverged", level,
                f"localization diverging for {lasted:.3g} s: {how}{only}", self.name),))
        return Verdict(SafetyLevel.REDUCED_SPEED, cfg.reduced_max_linear_mps,
                       cfg.reduced_max_angular_radps, (Cause(
                           "localization_diverging", SafetyLevel.REDUCED_SPEED,
                           f"localization diverging: {how}", self.name),))

    def reset(self) -> None:
        super().reset()
        self.state = None
        self.diverging_since = None


# ---------------------------------------------------------------------------------------
# battery
# ---------------------------------------------------------------------------------------
class BatterySource(DataSource):
    """Charge fraction in [0, 1]: ``update(fraction, now, stamp_s=None)``.

    Below ``battery_low_fraction``: cause ``battery_low``; policy ``finish`` -> REDUCED_SPEED
    at the reduced-mode limits; policy ``return`` -> level NORMAL with the cause (the
    supervisor raises ``return_requested`` for the executor).
    """

    def __init__(self, config: SafetyConfig, name: str = "battery") -> None:
        super().__init__(name, config.battery_timeout_s, config.battery_required)
        self.config = config
        self.fraction: float | None = None

    def update(self, fraction: float, now: float, stamp_s: float | None = None) -> str | None:
        try:
            f = float(fraction)
        except (TypeError, ValueError):
            return self._rejected("non_numeric")
        if not 0.0 <= f <= 1.0:
            return self._rejected("fraction_out_of_range")
        why = self._accept_time(stamp_s, now)
        if why:
            return self._rejected(why)
        self.fraction = f
        self._accepted()
        return None

    @property
    def low(self) -> bool:
        return self.fraction is not None and self.fraction < self.config.battery_low_fraction

    def assess(self, now: float) -> Verdict:
        if not self.low:
            return ZERO_VERDICT
        cfg = self.config
        text = f"battery at {self.fraction:.0%} (low below {cfg.battery_low_fraction:.0%})"
        if cfg.battery_policy == "return":
            return Verdict(causes=(Cause("battery_low", SafetyLevel.NORMAL,
                                         text + ": return to dock requested", self.name),))
        return Verdict(SafetyLevel.REDUCED_SPEED, cfg.reduced_max_linear_mps,
                       cfg.reduced_max_angular_radps,
                       (Cause("battery_low", SafetyLevel.REDUCED_SPEED,
                              text + ": finishing at reduced speed", self.name),))

    def reset(self) -> None:
        super().reset()
        self.fraction = None


# ---------------------------------------------------------------------------------------
# heartbeats
# ---------------------------------------------------------------------------------------
class HeartbeatSource(DataSource):
    """A named node's heartbeat: ``update(now, stamp_s=None)``; always required (a node is
    listed in ``heartbeat_nodes`` because it is needed)."""

    def __init__(self, node: str, timeout_s: float) -> None:
        super().__init__(f"heartbeat_{node}", timeout_s, True)
        self.node = node

    def update(self, now: float, stamp_s: float | None = None) -> str | None:
        why = self._accept_time(stamp_s, now)
        if why:
            return self._rejected(why)
        self._accepted()
        return None

    def assess(self, now: float) -> Verdict:
        return ZERO_VERDICT
