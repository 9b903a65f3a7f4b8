"""Template variables that draw from the world: places, free floor, people, clutter,
displaced objects (no ROS).

A template's plain distributions (``sitebot.regress.template``) know nothing of the site.
These know its free floor: the world's static obstacle footprints and keep-out zones,
rasterised once per world and clearance (``WorldSpec.occupancy_grid``), then every drawn
point checked exactly against the footprints.  A draw that cannot be satisfied (a region
with no free floor, a path longer than the region allows) is the template's error and
names the variable.

============ ========================================================== =====================
kind         parameters (defaults)                                      value
============ ========================================================== =====================
place        ``[id, ...]`` or ``"*"``; option ``jitter`` [m] (a disc)   ``[x, y, yaw]``
free_pose    ``region`` ``[[x0, y0], [x1, y1]]`` (the ground),          ``[x, y, yaw]``
             ``clearance`` (0.6 m), ``away_from_places`` (0 m)
free_path    ``region``, ``crosses`` ``[[x0, y0], [x1, y1]]`` (a path   ``[[x, y], [x, y]]``
             that crosses this segment near its middle, within 30 deg
             of square), ``length`` ``[lo, hi]`` (3-8 m),
             ``clearance`` (0.35 m)
people       ``count`` ``[lo, hi]``, ``speed`` ``[lo, hi]`` (0.8-1.4),  actors for
             ``yields`` (probability, 1.0), ``start_delay`` ``[lo,     ``actors.add``
             hi]`` (0-5 s), ``radius`` (0.25 m), ``loop`` (false),
             ``id`` (``person``), the path's ``region``/``crosses``/
             ``length``/``clearance``, and where a walk may begin or
             end: ``away_from_start`` (1.5 m from the robot's start:
             nobody stands on the robot at t = 0) and
             ``away_from_places`` (1 m: nobody ends standing on a goal)
clutter      ``count`` ``[lo, hi]``, ``size`` ``[[sx, sy, sz], [sx, sy, boxes for ``bodies``
             sz]]`` (low and high), ``region``, ``clearance`` (0.9 m
             to static obstacles and other boxes: the robot still
             passes), ``away_from_places`` (1.5 m), ``away_from_start``
             (1.5 m), ``id`` (``clutter``)
displace     ``object`` (a registry object), ``offset`` [m],            ``{offset: [dx, dy],
             ``turn`` [deg]                                             turn: deg}``
============ ========================================================== =====================

Clutter keeps clear of the robot's start and of every person's path in the document as
drawn so far, so the order of the ``random`` section matters: draw people before clutter.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from sitebot.config.yamlio import Schema, key_path
from sitebot.sim.world import ROBOT_RADIUS_M, WorldSpec
from sitebot.site.occupancy import OccupancyGrid

__all__ = ["WORLD_KINDS", "parse_world_variable", "draw_world_variable"]

#: resolution [m] of the free-floor grids the draws sample from
GRID_M = 0.1
#: tries of a rejection sampler before the variable is reported unsatisfiable
TRIES = 400
#: how far from square a crossing path may run [rad]
CROSS_SPREAD_RAD = math.radians(30.0)

_Rect = tuple[float, float, float, float]          # x0, y0, x1, y1

_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "place": {},
    "free_pose": {"region": None, "clearance": 0.6, "away_from_places": 0.0},
    "free_path": {"region": None, "crosses": None, "length": [3.0, 8.0], "clearance": 0.35},
    "people": {"count": [1, 1], "speed": [0.8, 1.4], "yields": 1.0, "start_delay": [0.0, 5.0],
               "radius": 0.25, "loop": False, "id": "person", "region": None, "crosses": None,
               "length": [3.0, 8.0], "clearance": 0.35, "away_from_start": 1.5,
               "away_from_places": 1.0},
    "clutter": {"count": [1, 3], "size": [[0.3, 0.3, 0.3], [0.8, 0.8, 0.8]], "region": None,
                "clearance": 0.9, "away_from_places": 1.5, "away_from_start": 1.5,
                "id": "clutter"},
    "displace": {"object": None, "offset": 0.05, "turn": 30.0},
}
#: the kinds of world variables
WORLD_KINDS = tuple(_OPTIONS)


# ------------------------------------------------------------------------------ parsing
def parse_world_variable(s: Schema, where: str, kind: str, spec: Any,
                         extra: Mapping[str, Any]) -> dict[str, Any]:
    """Check a world variable's parameters (``spec``: the value under its kind; ``extra``:
    its other keys, e.g. ``jitter``) and return them with the defaults filled in."""
    at = key_path(where, kind)
    if kind == "place":
        if spec == "*":
            ids: Any = "*"
        else:
            ids = tuple(s.string(x, key_path(at, i))
                        for i, x in enumerate(s.seq(spec, at, min_len=1)))
        jitter = s.number(extra.get("jitter", 0.0), key_path(where, "jitter"), min_value=0.0,
                          max_value=5.0)
        unknown = [k for k in extra if k != "jitter"]
        if unknown:
            s.fail(f"unknown option {unknown[0]!r} (place takes jitter)", where)
        return {"ids": ids, "jitter": jitter}
    if extra:
        s.fail(f"{kind} takes its parameters under '{kind}', not {', '.join(extra)}", where)
    m = dict(s.mapping(spec, at))
    allowed = _OPTIONS[kind]
    for k in m:
        if k not in allowed:
            s.fail(f"unknown parameter {k!r} of {kind} (accepted: {', '.join(allowed)})",
                   key_path(at, k))
    p = {**allowed, **m}

    def rng2(k: str, lo: float, hi: float, integer: bool = False) -> tuple[float, float]:
        v = s.seq(p[k], key_path(at, k), min_len=2, max_len=2)
        a, b = (s.number(x, key_path(at, k), min_value=lo, max_value=hi) for x in v)
        if a > b:
            s.fail(f"low {a:g} is above high {b:g}", key_path(at, k))
        if integer and (a != int(a) or b != int(b)):
            s.fail("counts are whole numbers", key_path(at, k))
        return (a, b)

    def num(k: str, lo: float, hi: float) -> float:
        return s.number(p[k], key_path(at, k), min_value=lo, max_value=hi)

    if p.get("region") is not None:
        r = s.seq(p["region"], key_path(at, "region"), min_len=2, max_len=2)
        (x0, y0), (x1, y1) = (s.vector(c, key_path(at, "region"), 2, names="[x, y]")
                              for c in r)
        if x0 >= x1 or y0 >= y1:
            s.fail("region is [[x_min, y_min], [x_max, y_max]] with min < max",
                   key_path(at, "region"))
        p["region"] = (x0, y0, x1, y1)
    if p.get("crosses") is not None:
        c = s.seq(p["crosses"], key_path(at, "crosses"), min_len=2, max_len=2)
        p["crosses"] = tuple(tuple(s.vector(q, key_path(at, "crosses"), 2, names="[x, y]"))
                             for q in c)
    for k in ("clearance", "away_from_places", "away_from_start"):
        if k in p:
            p[k] = num(k, 0.0, 10.0)
    if "length" in p:
        p["length"] = rng2("length", 0.2, 100.0)
    if kind == "people":
        p["count"] = tuple(int(x) for x in rng2("count", 0, 20, integer=True))
        p["speed"] = rng2("speed", 0.05, 3.0)
        p["start_delay"] = rng2("start_delay", 0.0, 3600.0)
        p["yields"] = num("yields", 0.0, 1.0)
        p["radius"] = num("radius", 0.1, 0.6)
        p["loop"] = s.check(p["loop"], bool, key_path(at, "loop"))
        p["id"] = s.string(p["id"], key_path(at, "id"))
    if kind == "clutter":
        p["count"] = tuple(int(x) for x in rng2("count", 0, 30, integer=True))
        sz = s.seq(p["size"], key_path(at, "size"), min_len=2, max_len=2)
        lo, hi = (s.vector(v, key_path(at, "size"), 3, names="[sx, sy, sz]") for v in sz)
        if any(a <= 0 or a > b or b > 5.0 for a, b in zip(lo, hi)):
            s.fail("sizes are [[low sx, sy, sz], [high sx, sy, sz]] with 0 < low <= high "
                   "<= 5 m", key_path(at, "size"))
        p["size"] = (tuple(lo), tuple(hi))
        p["id"] = s.string(p["id"], key_path(at, "id"))
    if kind == "displace":
        if p["object"] is None:
            s.fail("displace needs the 'object' it moves", at)
        p["object"] = s.string(p["object"], key_path(at, "object"))
        p["offset"] = num("offset", 0.0, 1.0)
        p["turn"] = num("turn", 0.0, 180.0)
    return p


# ------------------------------------------------------------------------------ drawing
class _Unsatisfiable(ValueError):
    pass


#: (id of the world, clearance) -> (the world, kept so that its id is not reused; its grid)
_GRIDS: dict[tuple[int, float], tuple[WorldSpec, OccupancyGrid]] = {}


_CELLS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _free_grid(world: WorldSpec, clearance: float) -> OccupancyGrid:
    """The world's free floor for a disc of radius ``clearance``: obstacles grown by it,
    keep-out zones and the ground's edge occupied.  Cached per world and clearance."""
    key = (id(world), round(clearance, 3))
    if key not in _GRIDS:
        if len(_GRIDS) > 32:
            _GRIDS.clear()
            _CELLS.clear()
        _GRIDS[key] = (world, world.occupancy_grid(GRID_M, inflate_m=clearance,
                                                    keep_out=True))
    return _GRIDS[key][1]


def _free_cells(world: WorldSpec, clearance: float) -> tuple[np.ndarray, np.ndarray]:
    """The centres [m] of the free grid's free cells (cached with the grid: a draw's
    rejection sampler asks for them up to TRIES times)."""
    key = ("cells", id(world), round(clearance, 3))
    if key not in _CELLS:
        g = _free_grid(world, clearance)
        rows, cols = np.nonzero(~g.occupied)
        _CELLS[key] = (g.origin_x + (cols + 0.5) * g.resolution_m,
                       g.origin_y + (rows + 0.5) * g.resolution_m)
    return _CELLS[key]


def _is_free(world: WorldSpec, x: float, y: float, clearance: float) -> bool:
    g = _free_grid(world, clearance)
    if not g.contains(x, y):
        return False
    r, c = g.cell(x, y)
    if g.occupied[r, c]:
        return False
    return world.clearance(x, y)[0] >= clearance and \
        world.bounds.contains(x, y, clearance)


def _free_point(rng: np.random.Generator, world: WorldSpec, region: _Rect | None,
                clearance: float, accept: Callable[[float, float], bool] | None = None
                ) -> tuple[float, float]:
    """A point drawn uniformly over the free floor of ``region``."""
    g = _free_grid(world, clearance)
    xs, ys = _free_cells(world, clearance)
    if region is not None:
        x0, y0, x1, y1 = region
        keep = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        xs, ys = xs[keep], ys[keep]
    if xs.size == 0:
        raise _Unsatisfiable(f"no free floor {clearance:g} m clear of obstacles"
                             + (f" in region {list(region)}" if region else ""))
    for _ in range(TRIES):
        i = int(rng.integers(xs.size))
        x = float(xs[i] + rng.uniform(-0.5, 0.5) * g.resolution_m)
        y = float(ys[i] + rng.uniform(-0.5, 0.5) * g.resolution_m)
        if _is_free(world, x, y, clearance) and (accept is None or accept(x, y)):
            return x, y
    raise _Unsatisfiable(f"no free point satisfied the constraints in {TRIES} tries")


def _segment_free(world: WorldSpec, a: tuple[float, float], b: tuple[float, float],
                  clearance: float) -> bool:
    n = max(1, math.ceil(math.dist(a, b) / (GRID_M / 2)))
    return all(_is_free(world, a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n,
                        clearance) for k in range(n + 1))


def _path(rng: np.random.Generator, world: WorldSpec, p: Mapping[str, Any],
          ends_ok: Callable[[tuple[float, float]], bool] | None = None) -> list:
    lo, hi = p["length"]
    region, cross, clear = p["region"], p["crosses"], p["clearance"]
    for _ in range(TRIES):
        length = float(rng.uniform(lo, hi))
        if cross is not None:
            (cx0, cy0), (cx1, cy1) = cross
            f = float(rng.uniform(0.0, 1.0))
            mx, my = cx0 + f * (cx1 - cx0), cy0 + f * (cy1 - cy0)
            heading = math.atan2(cy1 - cy0, cx1 - cx0) + math.pi / 2 \
                + float(rng.uniform(-CROSS_SPREAD_RAD, CROSS_SPREAD_RAD)) \
                + (math.pi if rng.uniform() < 0.5 else 0.0)
            k = float(rng.uniform(0.25, 0.75))          # where along the path it crosses
            ux, uy = math.cos(heading), math.sin(heading)
            a = (mx - k * length * ux, my - k * length * uy)
        else:
            a = _free_point(rng, world, region, clear)
            heading = float(rng.uniform(-math.pi, math.pi))
            ux, uy = math.cos(heading), math.sin(heading)
        b = (a[0] + length * ux, a[1] + length * uy)
        inside = region is None or all(region[0] <= q[0] <= region[2] and
                                       region[1] <= q[1] <= region[3] for q in (a, b))
        if inside and (ends_ok is None or (ends_ok(a) and ends_ok(b))) and \
                _segment_free(world, a, b, clear):
            return [[round(a[0], 3), round(a[1], 3)], [round(b[0], 3), round(b[1], 3)]]
    raise _Unsatisfiable(f"no straight path of {lo:g}-{hi:g} m on free floor "
                         f"({clear:g} m clear) in {TRIES} tries; widen the region or shorten "
                         "the length")


def _seg_dist(px: float, py: float, a: Any, b: Any) -> float:
    ax, ay, bx, by = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    dx, dy = bx - ax, by - ay
    L2 = dx * dx + dy * dy
    t = 0.0 if L2 == 0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / L2))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def _start_xy(world: WorldSpec, doc: Mapping[str, Any]) -> tuple[float, float] | None:
    start = (doc.get("robot") or {}).get("start")
    if isinstance(start, (list, tuple)) and len(start) >= 2:
        return float(start[0]), float(start[1])
    spawn = world.spawn_poses.get("robot1")
    return (spawn.x, spawn.y) if spawn is not None else None


def _actor_paths(world: WorldSpec, doc: Mapping[str, Any]) -> list[tuple[list, float]]:
    actors = doc.get("actors") or {}
    out = [] if actors.get("replace") else [(list(a.path), a.radius_m) for a in world.actors]
    for a in actors.get("add") or []:
        if isinstance(a, dict) and isinstance(a.get("path"), list):
            out.append((a["path"], float(a.get("radius", 0.25))))
    return out


def _clutter(rng: np.random.Generator, world: WorldSpec, p: Mapping[str, Any],
             doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    n = int(rng.integers(p["count"][0], p["count"][1], endpoint=True))
    lo, hi = (np.asarray(v, dtype=float) for v in p["size"])
    start = _start_xy(world, doc)
    paths = _actor_paths(world, doc)
    boxes: list[tuple[float, float, float]] = []          # x, y, half diagonal
    out = []
    for i in range(n):
        size = [round(float(v), 3) for v in rng.uniform(lo, hi)]
        half = math.hypot(size[0], size[1]) / 2

        def ok(x: float, y: float) -> bool:
            if any(math.hypot(x - pl.x, y - pl.y) < p["away_from_places"] + half
                   for pl in world.registry.places):
                return False
            if start is not None and \
                    math.hypot(x - start[0], y - start[1]) < p["away_from_start"] + half:
                return False
            if any(math.hypot(x - bx, y - by) < p["clearance"] + half + bh
                   for bx, by, bh in boxes):
                return False
            return all(_seg_dist(x, y, q0, q1) >= half + r + 0.1
                       for pts, r in paths for q0, q1 in zip(pts, pts[1:]))

        x, y = _free_point(rng, world, p["region"], p["clearance"] + half, ok)
        yaw = round(float(rng.uniform(-math.pi, math.pi)), 3)
        boxes.append((x, y, half))
        out.append({"id": f"{p['id']}{i + 1}", "pose": [round(x, 3), round(y, 3), yaw],
                    "size": size})
    return out


def draw_world_variable(kind: str, p: Mapping[str, Any], rng: np.random.Generator,
                        world: WorldSpec, doc: Mapping[str, Any]) -> Any:
    """The value of a world variable (``p`` from :func:`parse_world_variable`) for one
    run's stream ``rng``, given the scenario document as drawn so far.

    :raises ValueError: the variable cannot be satisfied in this world (names why).
    """
    if kind == "place":
        places = {pl.id: pl for pl in world.registry.places}
        ids = sorted(places) if p["ids"] == "*" else list(p["ids"])
        unknown = [i for i in ids if i not in places]
        if unknown:
            raise ValueError(f"no place {unknown[0]!r} in world {world.id!r}; places: "
                             + ", ".join(sorted(places)))
        pl = places[ids[int(rng.integers(len(ids)))]]
        x, y = pl.x, pl.y
        if p["jitter"] > 0:
            def near(px: float, py: float) -> bool:
                return math.hypot(px - pl.x, py - pl.y) <= p["jitter"]
            r = p["jitter"]
            x, y = _free_point(rng, world, (pl.x - r, pl.y - r, pl.x + r, pl.y + r),
                               ROBOT_RADIUS_M, near)
        return [round(x, 3), round(y, 3), round(pl.pose.yaw, 4)]
    if kind == "free_pose":
        def away(x: float, y: float) -> bool:
            return all(math.hypot(x - pl.x, y - pl.y) >= p["away_from_places"]
                       for pl in world.registry.places)
        x, y = _free_point(rng, world, p["region"], max(p["clearance"], ROBOT_RADIUS_M), away)
        return [round(x, 3), round(y, 3), round(float(rng.uniform(-math.pi, math.pi)), 4)]
    if kind == "free_path":
        return _path(rng, world, p)
    if kind == "people":
        n = int(rng.integers(p["count"][0], p["count"][1], endpoint=True))
        start = _start_xy(world, doc)

        def ends_ok(q: tuple[float, float]) -> bool:
            if start is not None and math.dist(q, start) < p["away_from_start"]:
                return False
            return all(math.hypot(q[0] - pl.x, q[1] - pl.y) >= p["away_from_places"]
                       for pl in world.registry.places)
        people = []
        for i in range(n):
            path = _path(rng, world, {**p, "clearance": max(p["clearance"], p["radius"])},
                         ends_ok)
            people.append({"id": f"{p['id']}{i + 1}", "path": path,
                           "speed": round(float(rng.uniform(*p["speed"])), 2),
                           "yields": bool(rng.uniform() < p["yields"]),
                           "start_delay": round(float(rng.uniform(*p["start_delay"])), 2),
                           "radius": p["radius"], "loop": p["loop"]})
        return people
    if kind == "clutter":
        return _clutter(rng, world, p, doc)
    if kind == "displace":
        if p["object"] not in {o.id for o in world.registry.objects}:
            raise ValueError(f"no object {p['object']!r} in world {world.id!r}; objects: "
                             + ", ".join(o.id for o in world.registry.objects))
        r = p["offset"] * math.sqrt(float(rng.uniform()))
        a = float(rng.uniform(-math.pi, math.pi))
        return {"offset": [round(r * math.cos(a), 4), round(r * math.sin(a), 4)],
                "turn": round(float(rng.uniform(-p["turn"], p["turn"])), 2)}
    raise ValueError(f"unknown world variable kind {kind!r}")
