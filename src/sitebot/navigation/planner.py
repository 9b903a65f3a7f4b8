"""Global planner: cost-aware 8-connected search on the costmap, then drivable smoothing.

Core only (no ROS). The search is Dijkstra on the grid graph (scipy's compiled
``csgraph.dijkstra``), built vectorised with numpy, never expanding a cell whose cost is
INSCRIBED or LETHAL (the footprint would touch an obstacle) and never cutting the corner of
such a cell diagonally. An edge between neighbour cells costs its length times
``1 + cost_weight * mean(cost)/252``, so paths keep away from obstacles as far as the
gradient asks (Nav2's ``cost_travel_multiplier``).

Coarse to fine: the same search first runs on a grid ``coarse_factor`` times coarser (a
coarse cell is passable when any of its fine cells is; its cost is the mean of its passable
cells' cost, raised by the blocked fraction), then at full resolution inside a corridor of
``corridor_m`` around the coarse path; only if that fails does the full-resolution search
run on the whole map (reported as ``method='full'``).

Smoothing keeps the path drivable by a differential-drive base and never makes it worse:

1. line-of-sight shortcuts, accepted only if no point of the new segment costs more than the
   highest cost of the stretch of grid path it replaces (the clearance the search found is
   kept) and none is INSCRIBED;
2. every remaining corner becomes a circular arc of radius between ``min_turn_radius_m`` and
   ``max_turn_radius_m`` (the largest that fits between the neighbouring corners and keeps
   the same cost bound plus ``fillet_cost_slack``, never INSCRIBED); a corner where no arc of the minimum radius fits stays a corner,
   flagged ``turn_in_place`` (the controller stops and turns there: a differential drive can);
3. the result, resampled every ``resolution_m``, is checked again cell by cell; should a
   point be INSCRIBED the unsmoothed grid path is returned instead.

So curvature is bounded by ``1/min_turn_radius_m`` everywhere except at flagged corners.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sitebot.errors import SitebotError
from sitebot.navigation.costmap import INSCRIBED, MAX_NON_OBSTACLE, Costmap
from sitebot.types import Pose2D

__all__ = ["PlannerConfig", "PlanError", "Plan", "GlobalPlanner", "grid_search"]

_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class PlannerConfig:
    cost_weight: float = 3.0            # edge factor 1 + cost_weight * cost/252
    coarse_factor: int = 4              # coarse pass every N cells (<= 1: none)
    corridor_m: float = 1.0             # fine search within this of the coarse path
    escape_radius_m: float = 0.6        # a start in inflated space may leave through it
    min_turn_radius_m: float = 0.3      # arcs smaller than this: turn in place instead
    max_turn_radius_m: float = 1.5      # largest arc put on a corner
    shortcut_cost_slack: int = 0        # a shortcut may exceed the replaced cost by this
    fillet_cost_slack: int = 60         # an arc may exceed its segments' cost by this

    def __post_init__(self) -> None:
        if not (0 < self.min_turn_radius_m <= self.max_turn_radius_m):
            raise SitebotError("planner: need 0 < min_turn_radius_m <= max_turn_radius_m, got "
                               f"{self.min_turn_radius_m}, {self.max_turn_radius_m}")
        if not (math.isfinite(self.cost_weight) and self.cost_weight >= 0):
            raise SitebotError(f"planner: cost_weight must be >= 0, got {self.cost_weight}")


class PlanError(SitebotError):
    """No plan: ``code`` is one of invalid_pose, goal_forbidden, start_occupied,
    unreachable; the message says what and where."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass
class Plan:
    """A path in the map frame: points ``xy`` (K, 2) [m] about every resolution step,
    tangent headings ``yaw`` (K,) [rad] (the last is the goal heading), ``turn_in_place``
    (K,) bool marking sharp corners, and how it was found."""
    xy: np.ndarray
    yaw: np.ndarray
    turn_in_place: np.ndarray
    method: str = ""
    expanded: int = 0
    time_s: float = 0.0
    search_time_s: float = 0.0
    grid_cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    smoothed: bool = True

    @property
    def length_m(self) -> float:
        return float(np.hypot(*np.diff(self.xy, axis=0).T).sum()) if len(self.xy) > 1 else 0.0


def grid_search(f: np.ndarray, start: tuple[int, int], goal: tuple[int, int],
                region: np.ndarray | None = None) -> tuple[np.ndarray | None, int]:
    """Cheapest 8-connected path of cells from ``start`` to ``goal`` over the cell factors
    ``f`` (inf = blocked), optionally within ``region`` (bool). Edge cost: step length
    [cells] times the mean factor of its two cells; diagonal steps need both side cells
    passable. Returns ((L, 2) rows/cols or None, number of cells in the graph)."""
    H, W = f.shape
    allowed = np.isfinite(f)
    if region is not None:
        allowed &= region
    allowed[start] = allowed[goal] = True
    cells = np.flatnonzero(allowed.ravel())
    m = cells.size
    lookup = np.full(H * W, -1, np.int32)
    lookup[cells] = np.arange(m, dtype=np.int32)
    rr, cc = np.divmod(cells, W)
    ff = f.ravel()
    fc = ff[cells]
    nbr = {}
    for dr, dc in _OFFSETS:
        r2, c2 = rr + dr, cc + dc
        inb = (r2 >= 0) & (r2 < H) & (c2 >= 0) & (c2 < W)
        flat = np.where(inb, r2 * W + c2, 0)
        nbr[(dr, dc)] = (np.where(inb, lookup[flat], -1), flat)
    idx = np.empty((m, 8), np.int32)
    wts = np.empty((m, 8), np.float64)
    self_idx = np.arange(m, dtype=np.int32)
    for k, (dr, dc) in enumerate(_OFFSETS):
        li, flat = nbr[(dr, dc)]
        ok = li >= 0
        step = 1.0
        if dr and dc:
            ok = ok & (nbr[(dr, 0)][0] >= 0) & (nbr[(0, dc)][0] >= 0)
            step = math.sqrt(2.0)
        idx[:, k] = np.where(ok, li, self_idx)
        with np.errstate(invalid="ignore"):
            wts[:, k] = np.where(ok, step * 0.5 * (fc + np.where(ok, ff[flat], 0.0)), 1.0)
    wts[~np.isfinite(wts)] = 1e9          # a start/goal cell forced open: dear, not free
    graph = csr_matrix((wts.ravel(), idx.ravel(), np.arange(0, 8 * m + 1, 8, dtype=np.int64)),
                       shape=(m, m))
    s = int(lookup[start[0] * W + start[1]])
    g = int(lookup[goal[0] * W + goal[1]])
    dist, pred = dijkstra(graph, directed=True, indices=s, return_predecessors=True)
    if not math.isfinite(dist[g]):
        return None, m
    out = [g]
    while out[-1] != s:
        p = pred[out[-1]]
        if p < 0:  # pragma: no cover - dijkstra guarantees a chain for finite distances
            return None, m
        out.append(int(p))
    flat = cells[np.array(out[::-1])]
    return np.stack(np.divmod(flat, W), axis=1), m


class GlobalPlanner:
    """Plans on a :class:`~sitebot.navigation.costmap.Costmap` (see the module doc)."""

    def __init__(self, config: PlannerConfig = PlannerConfig()) -> None:
        self.config = config
        self._cache_key: tuple | None = None
        self._cache: tuple[np.ndarray, np.ndarray | None] | None = None

    def prepare(self, costmap: Costmap) -> tuple[np.ndarray, np.ndarray | None]:
        """The cell factors and the coarse grid of ``costmap``, computed once per costmap
        version (a replan on an unchanged costmap skips this full-map pass)."""
        key = (id(costmap), costmap.version, costmap.cost.shape)
        if self._cache_key != key:
            f = self.factors(costmap)
            k = self.config.coarse_factor
            self._cache = (f, self._coarse(f, k)[0] if k > 1 else None)
            self._cache_key = key
        return self._cache

    # ------------------------------------------------------------------ checks
    @staticmethod
    def check_pose(x: float, y: float, yaw: float, what: str) -> None:
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            raise PlanError("invalid_pose", f"{what} ({x}, {y}, yaw {yaw}) is not finite")

    def check_goal(self, costmap: Costmap, x: float, y: float, yaw: float) -> None:
        """Raise :class:`PlanError` if the goal may not be reached (bad numbers, outside the
        map, in a forbidden zone, on or too close to an obstacle)."""
        self.check_pose(x, y, yaw, "goal")
        why = costmap.forbidden_reason(x, y)
        if why is not None:
            raise PlanError("goal_forbidden", f"goal rejected: {why.message}")

    # ------------------------------------------------------------------ planning
    def factors(self, costmap: Costmap) -> np.ndarray:
        c = costmap.cost.astype(np.float64)
        f = 1.0 + self.config.cost_weight * np.minimum(c, MAX_NON_OBSTACLE) / MAX_NON_OBSTACLE
        f[costmap.cost >= INSCRIBED] = np.inf
        return f

    def plan(self, costmap: Costmap, start: Pose2D,
             goal: Pose2D) -> Plan:
        """A smoothed path from ``start`` to ``goal`` (x, y, yaw in the map frame), or
        :class:`PlanError`."""
        t0 = time.perf_counter()
        cfg = self.config
        self.check_pose(*start, "start")
        self.check_goal(costmap, *goal)
        sr, sc = costmap.cell(start[0], start[1])
        if not costmap.in_bounds(sr, sc):
            raise PlanError("start_occupied", f"start ({start[0]:.2f}, {start[1]:.2f}) lies "
                            "outside the map")
        gr, gc = costmap.cell(goal[0], goal[1])
        f, coarse = self.prepare(costmap)
        escape = None
        if not np.isfinite(f[sr, sc]):
            if costmap.static_lethal[sr, sc]:
                raise PlanError("start_occupied", f"start ({start[0]:.2f}, {start[1]:.2f}) is "
                                "inside an obstacle of the static map")
            if costmap.zone_core[sr, sc]:
                raise PlanError("start_occupied", f"start ({start[0]:.2f}, {start[1]:.2f}) lies "
                                "inside a forbidden zone: drive it out by hand")
            # standing in inflated space (drift, an obstacle that came close): let the path
            # leave through it at the highest cost, never through static obstacles or the
            # forbidden zones themselves (their margins, yes)
            k = int(math.ceil(cfg.escape_radius_m / costmap.res))
            r0, r1 = max(0, sr - k), min(costmap.shape[0], sr + k + 1)
            c0, c1 = max(0, sc - k), min(costmap.shape[1], sc + k + 1)
            yy, xx = np.mgrid[r0:r1, c0:c1]
            near = (yy - sr) ** 2 + (xx - sc) ** 2 <= k * k
            f = f.copy()
            sub = f[r0:r1, c0:c1]
            opened = near & ~np.isfinite(sub) & ~costmap.static_lethal[r0:r1, c0:c1] \
                & ~costmap.zone_core[r0:r1, c0:c1]
            sub[opened] = 1.0 + cfg.cost_weight
            escape = (start[0], start[1], cfg.escape_radius_m)
        if (sr, sc) == (gr, gc) or math.hypot(goal[0] - start[0], goal[1] - start[1]) < costmap.res:
            xy = np.array([start[:2], goal[:2]], float)
            return Plan(xy, np.array([goal[2], goal[2]]), np.zeros(2, bool), "trivial", 0,
                        time.perf_counter() - t0)
        cells, expanded, method = None, 0, "full"
        k = cfg.coarse_factor
        if k > 1:
            if escape is not None:
                coarse = self._coarse(f, k)[0]          # with the opened escape cells
            coarse_path, n_coarse = grid_search(coarse, (sr // k, sc // k), (gr // k, gc // k))
            expanded += n_coarse
            if coarse_path is not None:
                mask = np.zeros(((f.shape[0] + k - 1) // k, (f.shape[1] + k - 1) // k), np.uint8)
                mask[coarse_path[:, 0], coarse_path[:, 1]] = 1
                rad = max(1, int(math.ceil(cfg.corridor_m / (k * costmap.res))))
                mask = cv2.dilate(mask, cv2.getStructuringElement(
                    cv2.MORPH_ELLIPSE, (2 * rad + 1, 2 * rad + 1)))
                region = np.repeat(np.repeat(mask.astype(bool), k, 0), k, 1)[:f.shape[0], :f.shape[1]]
                cells, n = grid_search(f, (sr, sc), (gr, gc), region)
                expanded += n
                method = "corridor"
        if cells is None:
            cells, n = grid_search(f, (sr, sc), (gr, gc))
            expanded += n
            method = "full"
        t_search = time.perf_counter() - t0
        if cells is None:
            raise PlanError("unreachable", f"no collision-free path from ({start[0]:.2f}, "
                            f"{start[1]:.2f}) to ({goal[0]:.2f}, {goal[1]:.2f}): the goal is cut "
                            "off by obstacles or forbidden zones")
        plan = self._smooth(costmap, cells, start, goal, escape)
        plan.method, plan.expanded, plan.grid_cells = method, expanded, cells
        plan.search_time_s = t_search
        plan.time_s = time.perf_counter() - t0
        return plan

    @staticmethod
    def _coarse(f: np.ndarray, k: int) -> tuple[np.ndarray]:
        H, W = f.shape
        hc, wc = (H + k - 1) // k, (W + k - 1) // k
        pad = np.full((hc * k, wc * k), np.inf)
        pad[:H, :W] = f
        blocks = pad.reshape(hc, k, wc, k)
        fin = np.isfinite(blocks)
        n = fin.sum(axis=(1, 3))
        total = np.where(fin, blocks, 0.0).sum(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            fc = total / n * (1.0 + 2.0 * (1.0 - n / (k * k)))
        fc[n == 0] = np.inf
        return (fc,)

    # ------------------------------------------------------------------ smoothing
    def _bad(self, costmap: Costmap, xs: np.ndarray, ys: np.ndarray, limit: int,
             escape) -> bool:
        c = costmap.cost_at(xs, ys)
        over = (c > limit) | (c >= INSCRIBED)
        if escape is not None and over.any():
            ex, ey, er = escape
            over &= np.hypot(xs - ex, ys - ey) > er
        return bool(over.any())

    def _segment_ok(self, costmap, p, q, limit, escape) -> bool:
        n = max(2, int(math.ceil(math.hypot(q[0] - p[0], q[1] - p[1]) / (0.5 * costmap.res))) + 1)
        t = np.linspace(0.0, 1.0, n)
        return not self._bad(costmap, p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t,
                             limit, escape)

    def _smooth(self, costmap: Costmap, cells: np.ndarray, start, goal, escape) -> Plan:
        cfg = self.config
        xs, ys = costmap.center(cells[:, 0], cells[:, 1])
        pts = np.stack([xs, ys], axis=1).astype(float)
        pts[0], pts[-1] = start[:2], goal[:2]
        cp = costmap.cost[cells[:, 0], cells[:, 1]].astype(np.int64)
        cp[cp >= INSCRIBED] = 0        # only escape cells can be there; they bound nothing
        slack = cfg.shortcut_cost_slack
        n = len(pts)

        def ok(i: int, j: int) -> bool:
            return self._segment_ok(costmap, pts[i], pts[j], int(cp[i:j + 1].max()) + slack,
                                    escape)
        verts = [0]
        i = 0
        while i < n - 1:
            lo, step, hi = i + 1, 1, None
            while lo < n - 1:
                j = min(lo + step, n - 1)
                if ok(i, j):
                    lo, step = j, step * 2
                else:
                    hi = j
                    break
            if hi is not None:
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if ok(i, mid):
                        lo = mid
                    else:
                        hi = mid
            verts.append(lo)
            i = lo
        V = pts[verts]
        seg_limit = [int(cp[a:b + 1].max()) + slack for a, b in zip(verts, verts[1:])]
        dense, corners = self._fillet(costmap, V, seg_limit, escape)
        xy = np.asarray(dense)
        smoothed = True
        if self._bad(costmap, xy[:, 0], xy[:, 1], INSCRIBED - 1, escape):
            xy, corners, smoothed = pts, set(), False      # pragma: no cover - safety net
        d = np.diff(xy, axis=0)
        keep = np.concatenate([[True], np.hypot(d[:, 0], d[:, 1]) > 1e-9])
        idx_map = np.cumsum(keep) - 1
        xy = xy[keep]
        yaw = np.empty(len(xy))
        d = np.diff(xy, axis=0)
        yaw[:-1] = np.arctan2(d[:, 1], d[:, 0])
        yaw[-1] = goal[2]
        turn = np.zeros(len(xy), bool)
        for c in corners:
            turn[idx_map[c]] = True
        return Plan(xy, yaw, turn, smoothed=smoothed)

    def _fillet(self, costmap: Costmap, V: np.ndarray, seg_limit: list[int], escape
                ) -> tuple[list, set]:
        """Round the corners of polyline V (see the module doc); returns the points sampled
        every resolution step and the indices of the corners kept sharp."""
        cfg = self.config
        step = costmap.res
        m = len(V)
        seg_len = np.hypot(*np.diff(V, axis=0).T) if m > 1 else np.zeros(0)
        arcs: list[tuple | None] = [None] * m
        for b in range(1, m - 1):
            u1 = (V[b] - V[b - 1]) / seg_len[b - 1]
            u2 = (V[b + 1] - V[b]) / seg_len[b]
            cross = u1[0] * u2[1] - u1[1] * u2[0]
            theta = math.atan2(abs(cross), float(u1 @ u2))
            if theta < 1e-3:
                arcs[b] = "straight"
                continue
            avail1 = seg_len[b - 1] * (1.0 if b - 1 == 0 else 0.5)
            avail2 = seg_len[b] * (1.0 if b + 1 == m - 1 else 0.5)
            tan_half = math.tan(theta / 2)
            r = min(cfg.max_turn_radius_m, min(avail1, avail2) / tan_half)
            limit = max(seg_limit[b - 1], seg_limit[b]) + cfg.fillet_cost_slack
            while r >= cfg.min_turn_radius_m:
                t = r * tan_half
                t1, t2 = V[b] - u1 * t, V[b] + u2 * t
                nrm = np.array([-u1[1], u1[0]]) * (1.0 if cross > 0 else -1.0)
                centre = t1 + nrm * r
                a0 = math.atan2(t1[1] - centre[1], t1[0] - centre[0])
                sweep = theta if cross > 0 else -theta
                k = max(2, int(math.ceil(abs(sweep) * r / (0.5 * step))) + 1)
                ang = a0 + np.linspace(0.0, sweep, k)
                ax, ay = centre[0] + r * np.cos(ang), centre[1] + r * np.sin(ang)
                if not self._bad(costmap, ax, ay, limit, escape):
                    arcs[b] = (t1, t2, centre, r, a0, sweep)
                    break
                r *= 0.5
        out: list = []
        corners: set[int] = set()

        def line(p, q) -> None:
            n = max(1, int(math.ceil(math.hypot(q[0] - p[0], q[1] - p[1]) / step)))
            for i in range(n):
                out.append((p[0] + (q[0] - p[0]) * i / n, p[1] + (q[1] - p[1]) * i / n))
        cur = V[0]
        for b in range(1, m - 1):
            a = arcs[b]
            if a == "straight":
                continue
            if a is None:
                line(cur, V[b])
                corners.add(len(out))
                cur = V[b]
                continue
            t1, t2, centre, r, a0, sweep = a
            line(cur, t1)
            n = max(1, int(math.ceil(abs(sweep) * r / step)))
            for i in range(n):
                ang = a0 + sweep * i / n
                out.append((centre[0] + r * math.cos(ang), centre[1] + r * math.sin(ang)))
            cur = t2
        line(cur, V[-1])
        out.append((float(V[-1][0]), float(V[-1][1])))
        return out, corners
