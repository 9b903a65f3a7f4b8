"""The navigation costmap: static map + zones + perceived obstacles, inflated with a gradient.

Core only (no ROS). One 2-D grid (row = y, column = x, like :class:`sitebot.site.occupancy.OccupancyGrid`
and nav_msgs/OccupancyGrid) in the map frame, with Nav2's cost convention:

* ``LETHAL`` (254): an obstacle cell (static map, a keep-out zone grown by the zone margin, a
  restricted zone the role may not enter, a perceived obstacle, unknown space unless allowed);
  perceived obstacles that the static map does not explain (farther than ``static_match_m``
  from it: crates, carts, people) also get a soft margin: the highest non-obstacle cost (252)
  out to ``obstacle_clearance_m`` beyond the footprint, then the gradient, because the
  supervisor stops the base short of anything person-sized (its protective separation at
  standstill is about 0.45 m) and a plan grazing them would end in a protective stop; soft,
  so that a goal beside a parked cart stays reachable;
* ``INSCRIBED`` (253): the robot's centre here puts its footprint (a circle of
  ``footprint_radius_m``, the supervisor's footprint) on an obstacle: never planned through;
* 1..252: ``252 * exp(-cost_scaling_factor * (d - footprint_radius_m))`` for a centre
  ``d`` metres from the nearest obstacle, up to ``inflation_radius_m`` (Nav2's inflation
  layer); slow zones lift every cell inside them to at least ``slow_zone_cost``;
* 0: free.

Perceived obstacles (a local occupancy grid from spatial perception, or the raw laser scan)
are marked with the time they were seen and cleared by free observations (free cells of the
local map, the cells a laser beam passed through); a mark not refreshed for
``obstacle_decay_s`` expires. Only the window touched since the last :meth:`Costmap.update`
is re-inflated, so a scan costs about a millisecond, not a full-map pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np

from sitebot.errors import SitebotError
from sitebot.site.registry import Zone, ZoneKind
from sitebot.types import Pose2D

__all__ = ["FREE", "INSCRIBED", "LETHAL", "CostmapConfig", "Costmap", "ForbiddenReason"]

FREE = 0
INSCRIBED = 253
LETHAL = 254
MAX_NON_OBSTACLE = 252


@dataclass(frozen=True)
class CostmapConfig:
    """Costmap parameters (metres, seconds)."""
    resolution_m: float = 0.05
    footprint_radius_m: float = 0.4          # circumscribed = inscribed radius (a circle)
    inflation_radius_m: float = 1.0          # cost gradient reaches this far from obstacles
    cost_scaling_factor: float = 3.0         # exponential decay rate of the gradient [1/m]
    zone_margin_m: float = 0.1               # keep-out / restricted zones grown by this
    slow_zone_cost: int = 40                 # floor cost inside slow zones (0: none)
    obstacle_decay_s: float = 5.0            # a perceived obstacle not seen again expires
    obstacle_max_range_m: float = 4.0        # scan hits further than this are not marked
    raytrace_max_range_m: float = 5.0        # beams clear free space up to this range
    obstacle_clearance_m: float = 0.6        # soft margin round off-map obstacles
    static_match_m: float = 0.25             # marks this close to the static map are it
    allow_unknown: bool = False              # unknown cells of a map are free (else lethal)
    role: str = ""                           # restricted zones listing it are not lethal

    def __post_init__(self) -> None:
        for name in ("resolution_m", "footprint_radius_m", "cost_scaling_factor",
                     "obstacle_decay_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise SitebotError(f"costmap: '{name}' must be a positive number, got {v!r}")
        if self.inflation_radius_m < self.footprint_radius_m:
            raise SitebotError(f"costmap: 'inflation_radius_m' ({self.inflation_radius_m}) must "
                               f"be at least 'footprint_radius_m' ({self.footprint_radius_m})")
        if not 0 <= self.slow_zone_cost <= MAX_NON_OBSTACLE:
            raise SitebotError(f"costmap: 'slow_zone_cost' must be in [0, 252], got "
                               f"{self.slow_zone_cost}")


@dataclass(frozen=True)
class ForbiddenReason:
    """Why a position may not be a goal: ``code`` (outside_map, keep_out, restricted,
    zone_margin, obstacle, unknown) and a sentence."""
    code: str
    message: str


def _polygon_mask(shape: tuple[int, int], poly: Sequence[tuple[float, float]], origin_x: float,
                  origin_y: float, res: float) -> np.ndarray:
    """Cells whose centre lies inside (or on) the polygon."""
    mask = np.zeros(shape, np.uint8)
    shift = 4
    pts = np.array([[((x - origin_x) / res - 0.5) * (1 << shift),
                     ((y - origin_y) / res - 0.5) * (1 << shift)] for x, y in poly])
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def _grow(mask: np.ndarray, radius_cells: float) -> np.ndarray:
    """Cells within ``radius_cells`` (centre to centre) of a True cell."""
    if radius_cells <= 0 or not mask.any():
        return mask.copy()
    d = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return d <= radius_cells


class Costmap:
    """The layered costmap (see the module doc). Build with :meth:`from_site` or
    :meth:`from_occupancy`; feed perceived obstacles with :meth:`integrate_scan` /
    :meth:`integrate_grid`; call :meth:`update` before reading :attr:`cost`."""

    def __init__(self, static_lethal: np.ndarray, origin_x: float, origin_y: float,
                 config: CostmapConfig = CostmapConfig(), zones: Iterable[Zone] = (),
                 unknown: np.ndarray | None = None) -> None:
        if static_lethal.ndim != 2 or min(static_lethal.shape) < 3:
            raise SitebotError(f"costmap: static map must be a 2-D grid of at least 3x3 cells, "
                               f"got shape {static_lethal.shape}")
        if not (math.isfinite(origin_x) and math.isfinite(origin_y)):
            raise SitebotError(f"costmap: non-finite origin ({origin_x}, {origin_y})")
        self.config = cfg = config
        self.res = cfg.resolution_m
        self.origin_x, self.origin_y = float(origin_x), float(origin_y)
        self.shape = static_lethal.shape
        rows, cols = self.shape
        static = np.array(static_lethal, dtype=bool)
        # the map's edge is a wall: nothing plans or drives off the map
        static[0, :] = static[-1, :] = static[:, 0] = static[:, -1] = True
        self.unknown = np.zeros(self.shape, bool) if unknown is None else np.asarray(unknown, bool)
        if not cfg.allow_unknown:
            static |= self.unknown
        self.static_lethal = static
        self.zones = tuple(zones)
        # zone layers: lethal zones (grown by the margin), their index, speed limits
        self.zone_index = np.full(self.shape, -1, np.int16)
        zone_core = np.zeros(self.shape, bool)
        self.speed_limit = np.full(self.shape, np.inf, np.float32)
        slow = np.zeros(self.shape, bool)
        for i, z in enumerate(self.zones):
            m = _polygon_mask(self.shape, z.polygon, self.origin_x, self.origin_y, self.res)
            if self.zone_forbidden(z):
                zone_core |= m
                self.zone_index[m] = i
            elif z.kind is ZoneKind.SLOW and z.max_speed_mps is not None:
                slow |= m
                self.speed_limit[m] = np.minimum(self.speed_limit[m], z.max_speed_mps)
        self.zone_core = zone_core
        self.zone_lethal = _grow(zone_core, cfg.zone_margin_m / self.res)
        self.slow = slow
        self.base_lethal = self.static_lethal | self.zone_lethal
        # marks within static_match_m of the static map are that structure seen again; the
        # others (crates, carts, people) grow by obstacle_clearance_m: the supervisor stops
        # the base short of anything person-sized, so plans keep that far away
        self.near_static = _grow(self.static_lethal, cfg.static_match_m / self.res)
        # obstacle layer: time each cell was last seen occupied (-inf: never / cleared)
        self.obstacle_t = np.full(self.shape, -np.inf)
        self._active = np.zeros(self.shape, bool)
        self.cost = np.zeros(self.shape, np.uint8)
        # distance [m] from each cell centre to the nearest lethal cell centre, capped at the
        # inflation radius (beyond it only "far" matters)
        self.dist_m = np.zeros(self.shape, np.float32)
        self.version = 0
        self._dirty: list[int] | None = None
        self._inflate(0, rows, 0, cols)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_site(cls, site, config: CostmapConfig = CostmapConfig(),
                  crop: tuple[float, float, float, float] | None = None) -> "Costmap":
        """The static map of a site (a :class:`~sitebot.site.bundle.SiteBundle`, or anything
        with its ``occupancy_grid`` and ``registry``) at the configured resolution, with its
        registry's zones; ``crop`` = (x_min, y_min, x_max, y_max) [m] keeps a part."""
        grid = site.occupancy_grid(config.resolution_m, 0.0, keep_out=False)
        occ, ox, oy = grid.occupied, grid.origin_x, grid.origin_y
        if crop is not None:
            c0 = max(0, int(math.floor((crop[0] - ox) / config.resolution_m)))
            r0 = max(0, int(math.floor((crop[1] - oy) / config.resolution_m)))
            c1 = min(occ.shape[1], int(math.ceil((crop[2] - ox) / config.resolution_m)))
            r1 = min(occ.shape[0], int(math.ceil((crop[3] - oy) / config.resolution_m)))
            occ = occ[r0:r1, c0:c1]
            ox, oy = ox + c0 * config.resolution_m, oy + r0 * config.resolution_m
        return cls(occ, ox, oy, config, site.registry.zones)

    @classmethod
    def from_occupancy(cls, values: np.ndarray, origin_x: float, origin_y: float,
                       resolution_m: float, config: CostmapConfig = CostmapConfig(),
                       zones: Iterable[Zone] = (), occupied_threshold: int = 65) -> "Costmap":
        """From nav_msgs/OccupancyGrid values (rows = y; 0..100 occupancy, -1 unknown),
        resampled to the configured resolution when it differs. The map's origin must not
        be rotated (the caller checks)."""
        v = np.asarray(values)
        if v.ndim != 2 or v.size == 0:
            raise SitebotError(f"map: expected a 2-D grid of values, got shape {v.shape}")
        if not (math.isfinite(resolution_m) and resolution_m > 0):
            raise SitebotError(f"map: resolution {resolution_m!r} must be a positive number")
        occ = v >= occupied_threshold
        unknown = v < 0
        if abs(resolution_m - config.resolution_m) > 1e-9:
            f = resolution_m / config.resolution_m
            size = (max(3, int(round(v.shape[1] * f))), max(3, int(round(v.shape[0] * f))))
            occ = cv2.resize(occ.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            unknown = cv2.resize(unknown.astype(np.uint8), size,
                                 interpolation=cv2.INTER_NEAREST) > 0
        return cls(occ, origin_x, origin_y, config, zones, unknown=unknown)

    def zone_forbidden(self, z: Zone) -> bool:
        """Keep-out zones, and restricted zones the configured role may not enter."""
        return z.kind is ZoneKind.KEEP_OUT or (
            z.kind is ZoneKind.RESTRICTED and self.config.role not in z.roles)

    # ------------------------------------------------------------------ geometry
    @property
    def width_m(self) -> float:
        return self.shape[1] * self.res

    @property
    def height_m(self) -> float:
        return self.shape[0] * self.res

    def cells(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) int arrays of the cells holding the points (may be out of bounds)."""
        r = np.floor((np.asarray(ys, float) - self.origin_y) / self.res).astype(np.int64)
        c = np.floor((np.asarray(xs, float) - self.origin_x) / self.res).astype(np.int64)
        return r, c

    def cell(self, x: float, y: float) -> tuple[int, int]:
        return (math.floor((y - self.origin_y) / self.res), math.floor((x - self.origin_x) / self.res))

    def in_bounds(self, r, c):
        return (r >= 0) & (r < self.shape[0]) & (c >= 0) & (c < self.shape[1])

    def center(self, r, c) -> tuple:
        """Centre (x, y) [m] of cell(s) (r, c)."""
        return (self.origin_x + (np.asarray(c) + 0.5) * self.res,
                self.origin_y + (np.asarray(r) + 0.5) * self.res)

    def cost_at(self, xs, ys) -> np.ndarray:
        """Cost of the cells holding the points; LETHAL outside the map."""
        r, c = self.cells(np.atleast_1d(xs), np.atleast_1d(ys))
        ok = self.in_bounds(r, c)
        out = np.full(r.shape, LETHAL, np.uint8)
        out[ok] = self.cost[r[ok], c[ok]]
        return out

    def distance_at(self, xs, ys) -> np.ndarray:
        """Distance [m] to the nearest obstacle (capped at the inflation radius); 0 outside."""
        r, c = self.cells(np.atleast_1d(xs), np.atleast_1d(ys))
        ok = self.in_bounds(r, c)
        out = np.zeros(r.shape, np.float32)
        out[ok] = self.dist_m[r[ok], c[ok]]
        return out

    def speed_limit_at(self, xs, ys) -> np.ndarray:
        """Slow-zone speed limit [m/s] at the points (inf: none)."""
        r, c = self.cells(np.atleast_1d(xs), np.atleast_1d(ys))
        ok = self.in_bounds(r, c)
        out = np.full(r.shape, np.inf, np.float32)
        out[ok] = self.speed_limit[r[ok], c[ok]]
        return out

    def forbidden_reason(self, x: float, y: float) -> ForbiddenReason | None:
        """Why the robot's centre may not stand at (x, y), or None when it may."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return ForbiddenReason("invalid", f"position ({x}, {y}) is not finite")
        r, c = self.cell(x, y)
        if not (0 <= r < self.shape[0] and 0 <= c < self.shape[1]):
            return ForbiddenReason("outside_map", f"({x:.2f}, {y:.2f}) lies outside the map "
                                   f"[{self.origin_x:.2f}..{self.origin_x + self.width_m:.2f}] x "
                                   f"[{self.origin_y:.2f}..{self.origin_y + self.height_m:.2f}]")
        for z in self.zones:
            if self.zone_forbidden(z) and z.contains(x, y):
                if z.kind is ZoneKind.KEEP_OUT:
                    return ForbiddenReason("keep_out", f"({x:.2f}, {y:.2f}) lies inside keep-out "
                                           f"zone '{z.id}'")
                return ForbiddenReason("restricted", f"({x:.2f}, {y:.2f}) lies inside restricted "
                                       f"zone '{z.id}' (roles {list(z.roles)}; this robot works "
                                       f"for role '{self.config.role}')")
        if self.cost[r, c] >= INSCRIBED:
            if self.unknown[r, c] and not self.config.allow_unknown:
                return ForbiddenReason("unknown", f"({x:.2f}, {y:.2f}) is unknown space")
            d = self.config.footprint_radius_m
            k = int(math.ceil((d + self.res) / self.res))
            win = (slice(max(0, r - k), r + k + 1), slice(max(0, c - k), c + k + 1))
            if self.static_lethal[win].any():
                what = "the static map"
            elif self.zone_lethal[win].any():
                return ForbiddenReason("zone_margin", f"({x:.2f}, {y:.2f}) is closer than the "
                                       f"footprint radius {d:.2f} m + zone margin "
                                       f"{self.config.zone_margin_m:.2f} m to a forbidden zone")
            else:
                what = "a perceived obstacle"
            return ForbiddenReason("obstacle", f"({x:.2f}, {y:.2f}) is inside an obstacle or "
                                   f"closer than the footprint radius {d:.2f} m to one ({what})")
        return None

    # ------------------------------------------------------------------ obstacle layer
    def _touch(self, r0: int, r1: int, c0: int, c1: int) -> None:
        r0, c0 = max(0, r0), max(0, c0)
        r1, c1 = min(self.shape[0], r1), min(self.shape[1], c1)
        if r0 >= r1 or c0 >= c1:
            return
        if self._dirty is None:
            self._dirty = [r0, r1, c0, c1]
        else:
            d = self._dirty
            self._dirty = [min(d[0], r0), max(d[1], r1), min(d[2], c0), max(d[3], c1)]

    def mark(self, xs: np.ndarray, ys: np.ndarray, t: float) -> int:
        """Mark obstacle points (map frame) seen at time ``t``; returns the cells marked."""
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        fin = np.isfinite(xs) & np.isfinite(ys)
        r, c = self.cells(xs[fin], ys[fin])
        ok = self.in_bounds(r, c)
        r, c = r[ok], c[ok]
        if r.size:
            self.obstacle_t[r, c] = t
            self._touch(int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1)
        return int(r.size)

    def clear(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Clear the obstacle marks of cells observed free."""
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        fin = np.isfinite(xs) & np.isfinite(ys)
        r, c = self.cells(xs[fin], ys[fin])
        ok = self.in_bounds(r, c)
        r, c = r[ok], c[ok]
        if r.size:
            was = np.isfinite(self.obstacle_t[r, c])
            if was.any():
                self.obstacle_t[r[was], c[was]] = -np.inf
                rr, cc = r[was], c[was]
                self._touch(int(rr.min()), int(rr.max()) + 1, int(cc.min()), int(cc.max()) + 1)

    def integrate_scan(self, laser_pose: Pose2D, ranges: np.ndarray,
                       angle_min: float, angle_increment: float, range_min: float,
                       range_max: float, t: float) -> int:
        """A planar scan taken from ``laser_pose`` (x, y, yaw in the map frame): clear the
        cells each beam passed through (up to ``raytrace_max_range_m``), then mark the hits
        within ``obstacle_max_range_m``. Non-finite or out-of-range readings only clear
        (REP-117: +inf = nothing within range). Returns the cells marked."""
        cfg = self.config
        rng = np.asarray(ranges, float)
        if rng.ndim != 1 or rng.size == 0:
            raise SitebotError(f"scan: expected a 1-D array of ranges, got shape {rng.shape}")
        if not all(math.isfinite(v) for v in (*laser_pose, angle_min, angle_increment)):
            raise SitebotError("scan: non-finite laser pose or angles")
        lx, ly, lyaw = laser_pose
        ang = lyaw + angle_min + np.arange(rng.size) * angle_increment
        ca, sa = np.cos(ang), np.sin(ang)
        hit = np.isfinite(rng) & (rng >= range_min) & (rng <= min(range_max, cfg.obstacle_max_range_m))
        # clearing: free up to the hit (minus one cell) or the raytrace range
        free_len = np.where(np.isfinite(rng) & (rng >= range_min), rng - 1.5 * self.res,
                            np.where(rng == np.inf, range_max, 0.0))
        free_len = np.clip(np.nan_to_num(free_len, nan=0.0), 0.0, cfg.raytrace_max_range_m)
        n = int(math.ceil(cfg.raytrace_max_range_m / self.res))
        steps = (np.arange(n) + 0.5) * self.res
        along = steps[None, :] <= free_len[:, None]
        if along.any():
            bi, si = np.nonzero(along)
            self.clear(lx + ca[bi] * steps[si], ly + sa[bi] * steps[si])
        return self.mark(lx + ca[hit] * rng[hit], ly + sa[hit] * rng[hit], t)

    def integrate_grid(self, values: np.ndarray, grid_pose: Pose2D,
                       resolution_m: float, t: float, occupied_threshold: int = 50) -> int:
        """A local occupancy grid (rows = y; 0 free, 100 occupied, -1 unknown) whose cell
        (0, 0) corner lies at ``grid_pose`` (x, y, yaw in the map frame): occupied cells are
        marked, free cells cleared, unknown ones left alone. Returns the cells marked."""
        v = np.asarray(values)
        if v.ndim != 2:
            raise SitebotError(f"local map: expected a 2-D grid, got shape {v.shape}")
        if not (math.isfinite(resolution_m) and resolution_m > 0):
            raise SitebotError(f"local map: resolution {resolution_m!r} is not positive")
        gx, gy, gyaw = grid_pose
        if not all(math.isfinite(a) for a in grid_pose):
            raise SitebotError("local map: non-finite origin")
        occ_r, occ_c = np.nonzero(v >= occupied_threshold)
        free_r, free_c = np.nonzero(v == 0)
        cy, sy = math.cos(gyaw), math.sin(gyaw)

        def to_map(r, c):
            lx, ly = (c + 0.5) * resolution_m, (r + 0.5) * resolution_m
            return gx + cy * lx - sy * ly, gy + sy * lx + cy * ly
        self.clear(*to_map(free_r, free_c))
        return self.mark(*to_map(occ_r, occ_c), t)

    # ------------------------------------------------------------------ inflation
    def update(self, t: float) -> bool:
        """Expire stale obstacle marks and re-inflate what changed; True if the cost changed."""
        cfg = self.config
        marked = np.isfinite(self.obstacle_t)
        if marked.any():
            expired = marked & (t - self.obstacle_t > cfg.obstacle_decay_s)
            if expired.any():
                rr, cc = np.nonzero(expired)
                self.obstacle_t[rr, cc] = -np.inf
                self._touch(int(rr.min()), int(rr.max()) + 1, int(cc.min()), int(cc.max()) + 1)
        if self._dirty is None:
            return False
        r0, r1, c0, c1 = self._dirty
        self._dirty = None
        self._active[r0:r1, c0:c1] = np.isfinite(self.obstacle_t[r0:r1, c0:c1])
        reach = int(math.ceil((cfg.inflation_radius_m + cfg.obstacle_clearance_m) / self.res)) + 2
        self._inflate(r0 - reach, r1 + reach, c0 - reach, c1 + reach)
        self.version += 1
        return True

    def lethal_mask(self) -> np.ndarray:
        """Every obstacle cell: static map, forbidden zones, perceived obstacles."""
        return self.base_lethal | self._active

    def _inflate(self, r0: int, r1: int, c0: int, c1: int) -> None:
        """Recompute cost and distance in rows r0:r1, columns c0:c1 (clipped)."""
        cfg = self.config
        rows, cols = self.shape
        r0, c0, r1, c1 = max(0, r0), max(0, c0), min(rows, r1), min(cols, c1)
        reach = int(math.ceil((cfg.inflation_radius_m + cfg.obstacle_clearance_m) / self.res)) + 2
        s0, t0 = max(0, r0 - reach), max(0, c0 - reach)
        s1, t1 = min(rows, r1 + reach), min(cols, c1 + reach)
        active = self._active[s0:s1, t0:t1]
        lethal = self.base_lethal[s0:s1, t0:t1] | active
        foreign = None
        if cfg.obstacle_clearance_m > 0 and active.any():
            foreign = active & ~self.near_static[s0:s1, t0:t1]
            if not foreign.any():
                foreign = None
        if lethal.any():
            d = cv2.distanceTransform((~lethal).astype(np.uint8), cv2.DIST_L2,
                                      cv2.DIST_MASK_PRECISE)[r0 - s0:r1 - s0, c0 - t0:c1 - t0]
            d = d * self.res
        else:
            d = np.full((r1 - r0, c1 - c0), np.inf, np.float32)
        d = np.minimum(d, cfg.inflation_radius_m).astype(np.float32)
        lethal = lethal[r0 - s0:r1 - s0, c0 - t0:c1 - t0]
        # half a cell of rasterisation error is taken on the safe side
        ins = cfg.footprint_radius_m + 0.5 * self.res
        grad = MAX_NON_OBSTACLE * np.exp(-cfg.cost_scaling_factor * np.maximum(d - ins, 0.0))
        cost = np.where(d < cfg.inflation_radius_m, np.clip(np.ceil(grad), 1, MAX_NON_OBSTACLE), 0)
        if cfg.slow_zone_cost:
            cost = np.where(self.slow[r0:r1, c0:c1], np.maximum(cost, cfg.slow_zone_cost), cost)
        if foreign is not None:
            # off-map obstacles: the highest non-obstacle cost out to obstacle_clearance_m
            # beyond the footprint, then the gradient (a soft margin: plans keep it where
            # there is room, a goal next to a cart stays reachable)
            df = cv2.distanceTransform((~foreign).astype(np.uint8), cv2.DIST_L2,
                                       cv2.DIST_MASK_PRECISE)[r0 - s0:r1 - s0, c0 - t0:c1 - t0]
            de = df * self.res - cfg.obstacle_clearance_m
            soft = np.where(de <= ins, MAX_NON_OBSTACLE, np.clip(np.ceil(
                MAX_NON_OBSTACLE * np.exp(-cfg.cost_scaling_factor * (de - ins))), 1,
                MAX_NON_OBSTACLE))
            soft = np.where(de < cfg.inflation_radius_m, soft, 0)
            cost = np.maximum(cost, soft)
        cost = np.where(d <= ins, INSCRIBED, cost)
        cost = np.where(lethal, LETHAL, cost).astype(np.uint8)
        self.cost[r0:r1, c0:c1] = cost
        self.dist_m[r0:r1, c0:c1] = d

    # ------------------------------------------------------------------ output
    def occupancy_values(self) -> np.ndarray:
        """The cost as nav_msgs/OccupancyGrid values (int8, rows = y): 0 free .. 98 the
        gradient, 99 inscribed, 100 lethal, -1 unknown (when unknown space is allowed)."""
        c = self.cost.astype(np.int16)
        out = np.where(c >= LETHAL, 100, np.where(c == INSCRIBED, 99, (c * 98) // 252))
        if self.config.allow_unknown:
            out = np.where(self.unknown & (c < INSCRIBED), -1, out)
        return out.astype(np.int8)
