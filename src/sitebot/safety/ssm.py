"""Speed and separation monitoring (ISO/TS 15066, clause 5.5.4) for the mobile base.

Protective separation distance [m] for one person/obstacle::

    S_p(v_r) = S_h + S_r + S_s + C + Z_d + Z_r
    S_h = v_h * (T_r + T_s)             person's travel while the robot reacts and stops
    S_r = v_r * T_r                     robot's travel during the reaction time
    S_s = v_r * T_cl + v_r^2 / (2 a)    robot's travel while stopping
    T_s = T_cl + v_r / a                robot's stopping time

with v_r [m/s] the robot's speed toward the person, v_h [m/s] the person's speed toward
the robot (``person_speed_mps`` = 1.6 unless measured; 0 for static obstacles), T_r
``reaction_time_s``, T_cl ``stop_latency_s`` (control loop), a ``braking_decel_mps2``,
C ``intrusion_distance_m`` (people only), Z_d ``sensing_uncertainty_m`` (+ 2 sigma of a
tracked person's position), Z_r ``position_uncertainty_m``.  Expanded, a quadratic in v_r::

    S_p(v_r) = K + B v_r + A v_r^2
    K = v_h (T_r + T_cl) + C + Z_d + Z_r,  B = T_r + T_cl + v_h / a,  A = 1 / (2 a)

The separation is the clearance [m] between the robot's footprint circle (radius
``footprint_radius_m`` about the base origin) and the obstacle's circle:
``d = |p| - r_footprint - r_obstacle``.  The condition ``d >= S_p(c * v)`` gives the largest
speed ``v* = (-B + sqrt(B^2 + 4 A (d - K))) / (2 A c)``, where ``c`` in [0, 1] is the share
of the robot's speed directed at the obstacle (:func:`approach_factors`).  ``d < K`` for a
person: even standing still is too close -> PROTECTIVE_STOP.  For a static obstacle
(``v_h`` = 0) ``d < K`` only forbids moving toward it (``v*`` = 0 when ``c`` > 0), so the
robot can always back away from a wall.

Automatic restart (:class:`RestartInterlock`): once a person was inside ``K``, every person
must be beyond ``K`` plus ``person_restart_margin_m`` for ``person_restart_delay_s`` before
the robot moves again, so a person standing at the edge of the protective field holds the
robot still instead of letting it inch toward them stop by stop (the separation to a person
seen by a scan shrinks by ``v_h`` times the scan's age between two scans, and grows back
with each new scan).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sitebot.safety.config import SafetyConfig
from sitebot.safety.sources import ObstacleSet
from sitebot.safety.types import ZERO_VERDICT, Cause, Verdict
from sitebot.types import SafetyLevel

__all__ = ["RestartInterlock", "SeparationMonitor", "SsmResult", "protective_separation", "max_safe_speed",
           "approach_factors", "stopping_distance"]

#: approach shares below this count as "not approaching"
_C_EPS = 1e-9


def protective_separation(v_r: float, v_h: float, *, reaction_time_s: float,
                          stop_latency_s: float, braking_decel_mps2: float,
                          intrusion_distance_m: float = 0.0, sensing_uncertainty_m: float = 0.0,
                          position_uncertainty_m: float = 0.0) -> float:
    """S_p [m] for robot speed ``v_r`` [m/s] and person speed ``v_h`` [m/s] (see the module
    docstring).  Works element-wise on numpy arrays."""
    t_r, t_cl, a = reaction_time_s, stop_latency_s, braking_decel_mps2
    t_s = t_cl + v_r / a
    s_h = v_h * (t_r + t_s)
    s_r = v_r * t_r
    s_s = v_r * t_cl + v_r * v_r / (2.0 * a)
    return s_h + s_r + s_s + intrusion_distance_m + sensing_uncertainty_m + \
        position_uncertainty_m


def stopping_distance(v_mps: float, config: SafetyConfig) -> float:
    """Distance [m] the base covers from a decision to standstill: ``|v| (T_r + T_cl) +
    v^2 / (2 a)`` (S_r + S_s)."""
    v = abs(v_mps)
    return v * (config.reaction_time_s + config.stop_latency_s) + \
        v * v / (2.0 * config.braking_decel_mps2)


def max_safe_speed(d: np.ndarray, K: np.ndarray, B: np.ndarray, A: float) -> np.ndarray:
    """The largest ``u >= 0`` with ``K + B u + A u^2 <= d`` (element-wise); -1 where even
    ``u = 0`` fails (``d < K``)."""
    disc = B * B + 4.0 * A * (d - K)
    with np.errstate(invalid="ignore"):
        u = (np.sqrt(np.maximum(disc, 0.0)) - B) / (2.0 * A)
    return np.where(d >= K, np.maximum(u, 0.0), -1.0)


def approach_factors(x: np.ndarray, y: np.ndarray, v_mps: float, w_radps: float,
                     horizon_s: float) -> np.ndarray:
    """Share ``c`` in [0, 1] of the base speed directed at each point (x, y) [m] (base
    frame) for a motion (v, w).

    ``c = cos(max(0, |b| - delta))`` (0 beyond 90 degrees), with ``b`` the bearing of the
    point from the direction of travel (+x forward, -x reversing) and ``delta = min(pi,
    |w| * horizon_s)`` the heading change the turn can bring before the robot stops.
    """
    if v_mps < 0.0:
        b = np.arctan2(-y, -x)
    else:
        b = np.arctan2(y, x)
    delta = min(math.pi, abs(w_radps) * horizon_s)
    ang = np.maximum(np.abs(b) - delta, 0.0)
    return np.where(ang < 0.5 * math.pi, np.cos(ang), 0.0)


@dataclass(frozen=True)
class SsmResult:
    """One separation check: the verdict, the closest clearance [m] (inf: nothing seen),
    the S_p [m] required for that obstacle at the checked speed, whether the closest is a
    person, and whether a person is within ``reduced_speed_distance_m``."""

    verdict: Verdict
    closest_separation_m: float = math.inf
    required_separation_m: float = math.inf
    closest_is_person: bool = False
    person_near: bool = False
    closest_person_m: float = math.inf


class SeparationMonitor:
    """Speed and separation monitoring over an :class:`ObstacleSet`.

    :meth:`verdict` ``(v_mps, w_radps, obstacles, directional=True)``:

    * ``directional=True`` (a command): every obstacle limits the speed by its approach
      share ``c`` for this motion; static obstacles only limit motion toward them;
    * ``directional=False`` (the status, whatever the next command): only people limit, as
      if the robot drove straight at each (``c = 1``).

    Either way a person with ``d < K`` gives PROTECTIVE_STOP (``person_in_protective_field``)
    and a person closer than ``reduced_speed_distance_m`` gives REDUCED_SPEED at
    ``reduced_max_linear_mps`` (``person_nearby``).  A binding limit from static obstacles
    (below ``|v|``) is reported as ``obstacle_in_protective_field`` (zero allowed) or
    ``obstacle_ahead``.
    """

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        a = config.braking_decel_mps2
        self.A = 1.0 / (2.0 * a)
        self.t_rc = config.reaction_time_s + config.stop_latency_s
        self.base_margin = config.sensing_uncertainty_m + config.position_uncertainty_m
        self._prep_for: ObstacleSet | None = None
        self._prep: tuple = ()

    def coefficients(self, obstacles: ObstacleSet) -> tuple[np.ndarray, np.ndarray]:
        """(K, B) per obstacle: S_p(v_r) = K + B v_r + A v_r^2 [m]."""
        K = obstacles.vh * self.t_rc + obstacles.margin + self.base_margin
        B = self.t_rc + obstacles.vh / self.config.braking_decel_mps2
        return K, B

    def separations(self, obstacles: ObstacleSet) -> np.ndarray:
        """Clearance d [m] between the footprint and each obstacle (negative: overlap)."""
        return np.hypot(obstacles.x, obstacles.y) - self.config.footprint_radius_m - \
            obstacles.radius

    def horizon_s(self, v_mps: float) -> float:
        """Time [s] from a decision at speed v to standstill: T_r + T_cl + |v| / a."""
        return self.t_rc + abs(v_mps) / self.config.braking_decel_mps2

    def _prepare(self, obstacles: ObstacleSet) -> tuple:
        """Per-set quantities that do not depend on the motion (cached per set)."""
        if obstacles is self._prep_for:
            return self._prep
        d = self.separations(obstacles)
        K, B = self.coefficients(obstacles)
        u = max_safe_speed(d, K, B, self.A)           # allowed approach speed, -1: none
        i = int(np.argmin(d))
        person = obstacles.person
        any_person = bool(person.any())
        self._prep = (d, K, B, u, i, person, any_person)
        self._prep_for = obstacles
        return self._prep

    def verdict(self, v_mps: float, w_radps: float, obstacles: ObstacleSet,
                directional: bool = True, data_age_s: float = 0.0,
                robot_speed_mps: float = 0.0, person_margin_m: float = 0.0) -> SsmResult:
        """See the class docstring; ``closest``/``required`` always describe the motion
        (v, w) itself.

        ``data_age_s`` [s]: how old the obstacle data is; each separation is reduced by
        ``data_age_s * (robot_speed_mps + v_h)`` (the robot's measured speed and the
        obstacle's assumed speed since the data was taken).

        ``person_margin_m`` [m]: extra separation every person must keep (the restart
        hysteresis after a protective stop: the caller passes it while a person who entered
        the protective field has not yet left it by that much).
        """
        n = len(obstacles)
        if n == 0:
            return SsmResult(ZERO_VERDICT)
        cfg = self.config
        d, K, B, u, i, person, any_person = self._prepare(obstacles)
        if data_age_s > 0.0 or (person_margin_m > 0.0 and any_person):
            d = d - data_age_s * (abs(robot_speed_mps) + obstacles.vh) \
                - np.where(person, person_margin_m, 0.0)
            u = max_safe_speed(d, K, B, self.A)
            i = int(np.argmin(d))
        speed = abs(v_mps)
        horizon = self.horizon_s(v_mps)
        if directional:
            c = approach_factors(obstacles.x, obstacles.y, v_mps, w_radps, horizon)
            c_i = float(c[i])
        else:
            c = person.astype(float)
            c_i = float(approach_factors(obstacles.x[i:i + 1], obstacles.y[i:i + 1], v_mps,
                                         w_radps, horizon)[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            vmax = np.where(c > _C_EPS, np.maximum(u, 0.0) / np.maximum(c, _C_EPS), np.inf)
        # report: the closest obstacle and its S_p at this motion
        closest = float(d[i])
        vr = c_i * speed
        required = float(K[i] + B[i] * vr + self.A * vr * vr)
        causes: list[Cause] = []
        level = SafetyLevel.NORMAL
        limit = math.inf
        person_near = False
        closest_person = math.inf
        if any_person:
            dp = np.where(person, d, np.inf)
            j = int(np.argmin(dp))
            closest_person = float(dp[j])
            inside = person & (u < 0.0)
            if inside.any():
                k = int(np.argmax(np.where(inside, K - d, -np.inf)))
                level = SafetyLevel.PROTECTIVE_STOP
                causes.append(Cause(
                    "person_in_protective_field", level,
                    f"person at {float(d[k]) + person_margin_m:.2f} m, protective "
                    f"separation at standstill {float(K[k]):.2f} m"
                    + (f" (+ {person_margin_m:.2f} m to restart)" if person_margin_m else ""),
                    "ssm"))
                limit = 0.0
            else:
                pl = float(np.min(np.where(person, vmax, np.inf)))
                if pl < limit:
                    limit = pl
                if closest_person < cfg.reduced_speed_distance_m:
                    person_near = True
                    level = SafetyLevel.REDUCED_SPEED
                    limit = min(limit, cfg.reduced_max_linear_mps)
                    causes.append(Cause(
                        "person_nearby", level,
                        f"person at {closest_person:.2f} m (reduced speed within "
                        f"{cfg.reduced_speed_distance_m:g} m)", "ssm"))
                if pl < speed:
                    causes.append(Cause(
                        "person_separation_limit", SafetyLevel.REDUCED_SPEED,
                        f"speed limited to {pl:.2f} m/s to keep the protective separation "
                        "from a person", "ssm"))
                    level = max(level, SafetyLevel.REDUCED_SPEED)
        if directional:
            static = ~person
            if static.any():
                sl = float(np.min(np.where(static, vmax, np.inf)))
                if sl < limit:
                    limit = sl
                if sl < speed:
                    code = "obstacle_in_protective_field" if sl <= 0.0 else "obstacle_ahead"
                    causes.append(Cause(
                        code, SafetyLevel.REDUCED_SPEED,
                        f"obstacle ahead: speed toward it limited to {sl:.2f} m/s", "ssm"))
                    level = max(level, SafetyLevel.REDUCED_SPEED)
        if level >= SafetyLevel.PROTECTIVE_STOP:
            v = Verdict(level, 0.0, 0.0, tuple(causes))
        else:
            v = Verdict(level, limit, math.inf, tuple(causes))
        return SsmResult(v, closest, required, bool(person[i]), person_near, closest_person)


class RestartInterlock:
    """Automatic restart after a person entered the protective field (see the module
    docstring): :meth:`margin_m` is the extra separation to pass to
    :meth:`SeparationMonitor.verdict`; :meth:`update` takes its result and returns a
    protective stop while the restart delay runs (None otherwise)."""

    CODE = "person_restart_delay"

    def __init__(self, config: SafetyConfig) -> None:
        self.margin = config.person_restart_margin_m
        self.delay_s = config.person_restart_delay_s
        self.held = False
        self._clear_since: float | None = None

    def margin_m(self) -> float:
        return self.margin if self.held else 0.0

    def update(self, result: SsmResult, now_s: float) -> Verdict | None:
        if "person_in_protective_field" in result.verdict.codes:
            self.held, self._clear_since = True, None
            return None
        if not self.held:
            return None
        if self._clear_since is None or now_s < self._clear_since:
            self._clear_since = now_s
        waited = now_s - self._clear_since
        if waited >= self.delay_s:
            self.held, self._clear_since = False, None
            return None
        return Verdict(SafetyLevel.PROTECTIVE_STOP, 0.0, 0.0, (Cause(
            self.CODE, SafetyLevel.PROTECTIVE_STOP,
            f"person left the protective field {waited:.1f} s ago: automatic restart after "
            f"{self.delay_s:g} s beyond it by {self.margin:.2f} m", "ssm"),))
