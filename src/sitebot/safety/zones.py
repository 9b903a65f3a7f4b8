"""Zone rules over the site registry: keep-out, slow and restricted zones.

The robot is the footprint circle (``footprint_radius_m``) about its map pose; keep-out
and forbidden restricted zones keep an extra ``zone_margin_m`` (localization error).

* keep-out (and restricted without the active role): never entered.  A command is
  checked along the arc it commands (constant v, w) for ``max(|v| * zone_lookahead_s,
  stopping distance)``; when the footprint would come closer than the margin, |v| is cut
  so that the stopping distance (``|v| (T_r + T_cl) + v^2 / (2 a)``) ends before the
  contact: 0 at the boundary.  Turning in place and arcs that lead away stay allowed.
  The centre inside such a zone -> PROTECTIVE_STOP.
* slow: inside (footprint overlapping) -> ``speed_limit_mps = max_speed_mps``; ahead on
  the arc -> |v| limited so that the base can brake to ``max_speed_mps`` by the boundary.
* restricted with the active role: no rule.

The arc is sampled every ``zone_sample_step_m`` (ds) and each sample is tested with the
footprint inflated by ds/2, so the continuous arc between samples is covered too.  If the
footprint already overlaps the inflated boundary at the start, the arc is allowed as long as
it does not bring the footprint closer than it is now (so the robot can leave).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from sitebot.safety.config import SafetyConfig
from sitebot.safety.ssm import stopping_distance
from sitebot.safety.types import ZERO_VERDICT, Cause, RobotState, Verdict, combine
from sitebot.site.registry import SiteRegistry, Zone, ZoneKind
from sitebot.types import SafetyLevel

__all__ = ["ZoneRule", "PolygonGeometry", "PathCheck", "arc_samples"]

#: speeds below this [m/s] are standstill for the arc (no translation to check)
_V_EPS = 1e-12


class PolygonGeometry:
    """A zone polygon prepared for vectorised clearance queries."""

    __slots__ = ("zone", "ax", "ay", "bx", "by", "ex", "ey", "len2", "xmin", "xmax", "ymin",
                 "ymax")

    def __init__(self, zone: Zone) -> None:
        p = np.asarray(zone.polygon, dtype=float)
        q = np.roll(p, -1, axis=0)
        self.zone = zone
        self.ax, self.ay = p[:, 0], p[:, 1]
        self.bx, self.by = q[:, 0], q[:, 1]
        self.ex, self.ey = self.bx - self.ax, self.by - self.ay
        self.len2 = np.maximum(self.ex ** 2 + self.ey ** 2, 1e-18)
        self.xmin, self.xmax = float(p[:, 0].min()), float(p[:, 0].max())
        self.ymin, self.ymax = float(p[:, 1].min()), float(p[:, 1].max())

    def bbox_distance(self, x: float, y: float) -> float:
        """Distance [m] from (x, y) to the polygon's bounding box (0 inside it)."""
        dx = max(self.xmin - x, 0.0, x - self.xmax)
        dy = max(self.ymin - y, 0.0, y - self.ymax)
        return math.hypot(dx, dy)

    def boundary_distance(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Unsigned distance [m] from each point to the polygon boundary."""
        px = px[:, None]
        py = py[:, None]
        t = ((px - self.ax) * self.ex + (py - self.ay) * self.ey) / self.len2
        np.clip(t, 0.0, 1.0, out=t)
        dx = px - self.ax - t * self.ex
        dy = py - self.ay - t * self.ey
        return np.sqrt((dx * dx + dy * dy).min(axis=1))

    def clearance(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Signed distance [m] from each point to the polygon boundary: positive outside,
        negative inside (even-odd rule; points on the boundary: 0)."""
        px = np.asarray(px, dtype=float)[:, None]
        py = np.asarray(py, dtype=float)[:, None]
        t = ((px - self.ax) * self.ex + (py - self.ay) * self.ey) / self.len2
        np.clip(t, 0.0, 1.0, out=t)
        dx = px - (self.ax + t * self.ex)
        dy = py - (self.ay + t * self.ey)
        dist = np.sqrt((dx * dx + dy * dy).min(axis=1))
        straddle = (self.ay > py) != (self.by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = self.ax + (py - self.ay) * self.ex / np.where(self.ey == 0.0, 1.0, self.ey)
        inside = (np.count_nonzero(straddle & (px < xc), axis=1) % 2) == 1
        return np.where(inside, -dist, dist)


@dataclass(frozen=True)
class PathCheck:
    """Result of :meth:`ZoneRule.path_allowed`; truthy when allowed."""

    ok: bool
    reason: str = ""
    zone_id: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator:
        return iter((self.ok, self.reason))


def arc_samples(x0: float, y0: float, yaw0: float, v_mps: float, w_radps: float,
                length_m: float, step_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (x, y [m]) every ``step_m`` of arc length along the motion (v, w) from the pose,
    from 0 to at least ``length_m``; also the arc lengths [m]."""
    if abs(v_mps) < _V_EPS:
        return np.full(1, x0), np.full(1, y0), np.zeros(1)
    n = int(math.ceil(max(length_m, 0.0) / step_m)) + 1
    s = np.arange(n) * step_m
    sign = math.copysign(1.0, v_mps)
    k = w_radps / abs(v_mps)              # heading change per metre of arc [rad/m]
    if abs(k) * s[-1] < 1e-9:
        d = sign * s
        return x0 + d * math.cos(yaw0), y0 + d * math.sin(yaw0), s
    yaw = yaw0 + k * s
    r = sign / k
    return (x0 + r * (np.sin(yaw) - math.sin(yaw0)),
            y0 - r * (np.cos(yaw) - math.cos(yaw0)), s)


class ZoneRule:
    """The zone part of the supervisor (see the module docstring).

    ``verdict_at(state)``: rules of where the robot is (status); ``verdict(state, v, w)``:
    those plus the rules of where the command leads; ``path_allowed(path_xy)``.
    """

    def __init__(self, config: SafetyConfig, registry: SiteRegistry | None,
                 role: str = "") -> None:
        self.config = config
        self.registry = registry
        self._zones = tuple(registry.zones) if registry is not None else ()
        self.set_role(role)

    @property
    def has_zones(self) -> bool:
        return bool(self._zones)

    def set_role(self, role: str) -> None:
        """Restricted zones not listing ``role`` become keep-out."""
        self.role = role or ""
        forbid: list[PolygonGeometry] = []
        slow: list[PolygonGeometry] = []
        for z in self._zones:
            if z.kind is ZoneKind.KEEP_OUT or (z.kind is ZoneKind.RESTRICTED
                                               and self.role not in z.roles):
                forbid.append(PolygonGeometry(z))
            elif z.kind is ZoneKind.SLOW and z.max_speed_mps is not None:
                slow.append(PolygonGeometry(z))
        self.forbidden = tuple(forbid)
        self.slow = tuple(slow)

    # ---------------------------------------------------------------------------------
    def _no_pose(self) -> Verdict:
        return Verdict(SafetyLevel.PROTECTIVE_STOP, 0.0, 0.0, (Cause(
            "pose_unknown", SafetyLevel.PROTECTIVE_STOP,
            "no valid map pose: zones cannot be checked", "zones"),))

    def verdict_at(self, state: RobotState | None) -> Verdict:
        """Where the robot is: inside a forbidden zone -> PROTECTIVE_STOP
        (``inside_keep_out`` / ``inside_restricted_zone``); footprint in a slow zone -> its
        speed limit (``slow_zone``)."""
        if not self._zones:
            return ZERO_VERDICT
        if state is None:
            return self._no_pose()
        x, y = state.x_m, state.y_m
        r = self.config.footprint_radius_m
        px, py = np.array([x]), np.array([y])
        verdicts = []
        for g in self.forbidden:
            if g.bbox_distance(x, y) > 0.0:
                continue
            if g.clearance(px, py)[0] <= 0.0:
                code = ("inside_keep_out" if g.zone.kind is ZoneKind.KEEP_OUT
                        else "inside_restricted_zone")
                verdicts.append(Verdict(SafetyLevel.PROTECTIVE_STOP, 0.0, 0.0, (Cause(
                    code, SafetyLevel.PROTECTIVE_STOP,
                    f"robot inside zone '{g.zone.id}' ({g.zone.kind.value}"
                    + ("" if g.zone.kind is ZoneKind.KEEP_OUT else
                       f", role {self.role!r} not in {list(g.zone.roles)}") + ")",
                    g.zone.id),)))
        for g in self.slow:
            if g.bbox_distance(x, y) > r:
                continue
            if g.clearance(px, py)[0] < r:
                vz = float(g.zone.max_speed_mps)
                verdicts.append(Verdict(SafetyLevel.NORMAL, vz, math.inf, (Cause(
                    "slow_zone", SafetyLevel.NORMAL,
                    f"in slow zone '{g.zone.id}': max {vz:g} m/s", g.zone.id),)))
        return combine(verdicts) if verdicts else ZERO_VERDICT

    def verdict(self, state: RobotState | None, v_mps: float, w_radps: float,
                extra_margin_m: float = 0.0) -> Verdict:
        """:meth:`verdict_at` plus the limits of the arc the command (v, w) leads along;
        ``extra_margin_m`` [m] widens the clearance kept (the pose's age times the speed)."""
        here = self.verdict_at(state)
        if not self._zones or state is None or here.stops or abs(v_mps) < _V_EPS:
            return here
        cfg = self.config
        ds = cfg.zone_sample_step_m
        speed = abs(v_mps)
        length = max(speed * cfg.zone_lookahead_s, stopping_distance(speed, cfg)) + ds
        extra = max(float(extra_margin_m), 0.0) if extra_margin_m == extra_margin_m else 1.0
        reach = length + cfg.footprint_radius_m + cfg.zone_margin_m + extra + ds
        near_f = [g for g in self.forbidden if g.bbox_distance(state.x_m, state.y_m) <= reach]
        near_s = [g for g in self.slow if g.bbox_distance(state.x_m, state.y_m) <= reach]
        if not near_f and not near_s:
            return here
        xs, ys, s = arc_samples(state.x_m, state.y_m, state.yaw_rad, v_mps, w_radps, length,
                                ds)
        verdicts = [here]
        t_rc = cfg.reaction_time_s + cfg.stop_latency_s
        A = 1.0 / (2.0 * cfg.braking_decel_mps2)
        # the start is outside every forbidden zone (else ``here`` stops) and samples lie
        # ds apart, so an arc that would cross a boundary has a sample within ds / 2 of it:
        # the unsigned boundary distance finds the first hit without an inside test
        for g in near_f:
            need = cfg.footprint_radius_m + cfg.zone_margin_m + extra + 0.5 * ds
            c = g.boundary_distance(xs, ys)
            thr = need if c[0] >= need else c[0] - 1e-9
            hit = np.flatnonzero(c < thr)
            if hit.size == 0:
                continue
            k = int(hit[0])
            free = float(s[k - 1]) if k > 0 else 0.0
            vmax = _solve(A, t_rc, free)
            if vmax < speed:
                kind = "keep-out" if g.zone.kind is ZoneKind.KEEP_OUT else "restricted"
                verdicts.append(Verdict(SafetyLevel.REDUCED_SPEED, vmax, math.inf, (Cause(
                    "keep_out_ahead", SafetyLevel.REDUCED_SPEED,
                    f"{kind} zone '{g.zone.id}' {free:.2f} m ahead on the commanded arc: "
                    f"speed cut to {vmax:.2f} m/s", g.zone.id),)))
        for g in near_s:
            vz = float(g.zone.max_speed_mps)
            if speed <= vz:
                continue
            c = g.boundary_distance(xs, ys)
            hit = np.flatnonzero(c < cfg.footprint_radius_m + extra + 0.5 * ds)
            if hit.size == 0:
                continue
            k = int(hit[0])
            free = float(s[k - 1]) if k > 0 else 0.0
            vmax = max(vz, _solve(A, t_rc, free + A * vz * vz))
            if vmax < speed:
                verdicts.append(Verdict(SafetyLevel.NORMAL, vmax, math.inf, (Cause(
                    "slow_zone_ahead", SafetyLevel.NORMAL,
                    f"slow zone '{g.zone.id}' {free:.2f} m ahead: braking to {vz:g} m/s",
                    g.zone.id),)))
        return combine(verdicts)

    # ---------------------------------------------------------------------------------
    def path_allowed(self, path_xy: Sequence[Sequence[float]]) -> PathCheck:
        """Whether the footprint (plus ``zone_margin_m``) stays out of every keep-out and
        forbidden restricted zone along the polyline ``path_xy`` (map frame [m])."""
        try:
            pts = np.asarray(path_xy, dtype=float).reshape(-1, 2)
        except (TypeError, ValueError):
            return PathCheck(False, "path is not a list of (x, y) points")
        if pts.shape[0] == 0:
            return PathCheck(False, "empty path")
        if not np.isfinite(pts).all():
            return PathCheck(False, "path has non-finite points")
        if not self.forbidden:
            return PathCheck(True)
        cfg = self.config
        ds = cfg.zone_sample_step_m
        xs, ys = [pts[:1, 0]], [pts[:1, 1]]
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            n = max(1, int(math.ceil(math.hypot(x1 - x0, y1 - y0) / ds)))
            f = np.arange(1, n + 1) / n
            xs.append(x0 + f * (x1 - x0))
            ys.append(y0 + f * (y1 - y0))
        px, py = np.concatenate(xs), np.concatenate(ys)
        need = cfg.footprint_radius_m + cfg.zone_margin_m
        for g in self.forbidden:
            c = g.clearance(px, py)
            bad = np.flatnonzero(c < need)
            if bad.size:
                k = int(bad[0])
                kind = "keep-out" if g.zone.kind is ZoneKind.KEEP_OUT else \
                    f"restricted (role {self.role!r} not in {list(g.zone.roles)})"
                return PathCheck(False, f"path comes within {float(c[k]):.2f} m of {kind} "
                                 f"zone '{g.zone.id}' at ({px[k]:.2f}, {py[k]:.2f}); needs "
                                 f"{need:.2f} m", g.zone.id)
        return PathCheck(True)


def _solve(A: float, T: float, s: float) -> float:
    """Largest v >= 0 with A v^2 + T v <= s."""
    if s <= 0.0:
        return 0.0
    return (math.sqrt(T * T + 4.0 * A * s) - T) / (2.0 * A)
