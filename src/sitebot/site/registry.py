"""The site registry: places, assets, objects, zones, routes and docks of one site.

The registry is the contract between the worlds, the language planner, the task executor
and the safety supervisor (see the design brief, "Site registry").  Ids are what plans
carry; names and aliases are what people say.  This module loads a registry file, checks
it completely, and answers look-ups.  It has no ROS and no simulator dependency.

File format (YAML, all coordinates in the registry's ``frame``, metres and radians)::

    site: substation               # id of the site, snake_case
    frame: map                     # optional, default map
    name: Northfield substation    # optional
    description: ...               # optional
    places:  [{id, name, aliases: [..], pose: [x, y, yaw]}]
    assets:  [{id, name, kind, aliases, place, gauge: {unit, min_value, max_value},
               fiducial: <AprilTag 36h11 id>, description}]
    objects: [{id, name, kind, aliases, place, description,
               pose: [x, y, z],       # optional: where it is kept (a tool-board slot)
               grasp_yaw: <rad>}]     # optional: heading of its long axis (grip across it)
    zones:   [{id, name, kind, polygon: [[x, y], ..], max_speed: <m/s>, roles: [..],
               aliases, description}]
    routes:  [{id, name, aliases, waypoints: [<place id>, ..], loop: <bool>}]
    docks:   [{id, place, name, aliases}]
    markers: [{tag: <AprilTag 36h11 id>, size: <black-square edge, m>,
               pose: [x, y, z, yaw]}]   # surveyed map poses of fiducial landmarks

Rules checked on load (each failure is a :class:`~sitebot.errors.RegistryError` naming the
file and the key path, e.g. ``assets[2].place``): required keys and types; unknown keys and
unknown kinds (listing the accepted ones); ids are snake_case and unique across the whole
file; references (asset/object place, route waypoint, dock place) exist; a gauge asset has a
``gauge`` block with ``min_value < max_value`` and only gauges have one; slow zones have
``max_speed > 0``; restricted zones list ``roles``; polygons have >= 3 finite vertices, a
non-zero area and do not self-intersect; poses are finite; no place pose lies inside a
keep-out zone; fiducial ids are unique; no two entities share a name or alias (compared
after :func:`normalize_name`); marker tags are unique, sizes positive, poses finite.

``markers`` are the surveyed map poses of the AprilTags on the site (the landmarks that
localization fuses and that perception maps to assets): a marker's face looks along its
yaw, horizontally, centred at (x, y, z).
"""
from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sitebot.errors import RegistryError
from sitebot.config.yamlio import Schema, key_path, load_yaml

__all__ = [
    "AssetKind", "ObjectKind", "ZoneKind",
    "Pose2D", "GaugeSpec", "Place", "Asset", "SiteObject", "Zone", "Route", "Dock",
    "Marker", "SiteRegistry", "Entity",
    "load_registry", "parse_registry", "normalize_name",
    "point_in_polygon", "polygon_area", "polygon_self_intersection", "segments_intersect",
    "ID_PATTERN", "APRILTAG_36H11_IDS",
]

#: Ids are lower-case snake_case: a letter, then letters, digits or underscores.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: The AprilTag 36h11 family has 587 codes (ids 0..586).
APRILTAG_36H11_IDS = 587


class AssetKind(str, enum.Enum):
    """What an asset is; decides which skills apply (``read_gauge`` needs GAUGE)."""
    GAUGE = "gauge"
    VALVE = "valve"
    PANEL = "panel"
    PUMP = "pump"
    TRANSFORMER = "transformer"
    BREAKER = "breaker"
    RACK = "rack"
    DOOR = "door"
    OTHER = "other"


class ObjectKind(str, enum.Enum):
    """What a movable object is."""
    TOOL = "tool"
    PART = "part"
    CONTAINER = "container"
    OTHER = "other"


class ZoneKind(str, enum.Enum):
    """KEEP_OUT: never entered; SLOW: speed capped at ``max_speed_mps``; RESTRICTED: only
    for callers holding one of ``roles``."""
    KEEP_OUT = "keep_out"
    SLOW = "slow"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class Pose2D:
    """A planar pose in the registry frame: position [m] and heading ``yaw`` [rad]
    (counter-clockwise from +x)."""
    x: float
    y: float
    yaw: float

    def distance_to(self, x: float, y: float) -> float:
        """Euclidean distance [m] from this pose's position to (x, y)."""
        return math.hypot(self.x - x, self.y - y)

    def __iter__(self) -> Iterator[float]:
        """Unpacks as ``x, y, yaw = pose``."""
        return iter((self.x, self.y, self.yaw))


@dataclass(frozen=True)
class GaugeSpec:
    """What a gauge measures: ``unit`` (e.g. ``bar``, ``degC``) and its scale range
    [min_value, max_value] in that unit."""
    unit: str
    min_value: float
    max_value: float

    def contains(self, value: float) -> bool:
        """True when *value* lies on the scale (inclusive)."""
        return self.min_value <= value <= self.max_value


@dataclass(frozen=True)
class Place:
    """A pose the robot can stand at (free floor; for an asset, facing it)."""
    id: str
    name: str
    aliases: tuple[str, ...]
    pose: Pose2D

    @property
    def x(self) -> float:
        """x [m]."""
        return self.pose.x

    @property
    def y(self) -> float:
        """y [m]."""
        return self.pose.y

    @property
    def yaw(self) -> float:
        """Heading [rad]."""
        return self.pose.yaw


@dataclass(frozen=True)
class Asset:
    """Site equipment the robot inspects or operates, seen from ``place``.

    ``gauge`` is set exactly for gauges; ``fiducial`` is the AprilTag 36h11 id mounted on
    the asset, if any."""
    id: str
    name: str
    kind: AssetKind
    aliases: tuple[str, ...]
    place: str
    gauge: GaugeSpec | None = None
    fiducial: int | None = None
    description: str = ""


@dataclass(frozen=True)
class SiteObject:
    """A movable thing (tool, part, container) normally kept at ``place``; ``pose`` is
    where it is kept (x, y, z of its centre [m]) when the site surveyed it, else None."""
    id: str
    name: str
    kind: ObjectKind
    aliases: tuple[str, ...]
    place: str
    description: str = ""
    pose: tuple[float, float, float] | None = None
    grasp_yaw: float | None = None      # heading [rad] of its long axis: grip across it


@dataclass(frozen=True)
class Zone:
    """A polygonal area of the floor with a rule.

    ``polygon`` is a tuple of (x, y) vertices [m] (not repeated at the end);
    ``max_speed_mps`` is set for SLOW zones; ``roles`` lists who may enter a RESTRICTED one.
    """
    id: str
    name: str
    kind: ZoneKind
    polygon: tuple[tuple[float, float], ...]
    max_speed_mps: float | None = None
    roles: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""

    def contains(self, x: float, y: float) -> bool:
        """True when (x, y) [m] lies inside the polygon (points on the boundary count)."""
        return point_in_polygon(x, y, self.polygon)

    @property
    def area_m2(self) -> float:
        """Polygon area [m^2]."""
        return abs(polygon_area(self.polygon))


@dataclass(frozen=True)
class Route:
    """A named sequence of places to visit (patrols); ``loop`` returns to the first."""
    id: str
    name: str
    aliases: tuple[str, ...]
    waypoints: tuple[str, ...]
    loop: bool = False


@dataclass(frozen=True)
class Dock:
    """A charging dock; ``place`` is the docked pose."""
    id: str
    place: str
    name: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Marker:
    """A surveyed fiducial landmark: AprilTag 36h11 ``tag`` with black-square edge
    ``size_m``, its face centred at (``x``, ``y``, ``z``) [m] in the registry frame and
    looking horizontally along ``yaw`` [rad]."""
    tag: int
    size_m: float
    x: float
    y: float
    z: float
    yaw: float


Entity = Place | Asset | SiteObject | Zone | Route | Dock


def _ro(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(d)


@dataclass(frozen=True)
class SiteRegistry:
    """A checked site registry.  Build it with :func:`load_registry` or
    :func:`parse_registry`; look-ups by id raise ``KeyError`` naming the accepted ids."""
    site: str
    frame: str
    places: tuple[Place, ...]
    assets: tuple[Asset, ...]
    objects: tuple[SiteObject, ...]
    zones: tuple[Zone, ...]
    routes: tuple[Route, ...]
    docks: tuple[Dock, ...]
    name: str = ""
    description: str = ""
    file: Path | None = None
    markers: tuple[Marker, ...] = ()
    _index: Mapping[str, Entity] = field(init=False, repr=False, compare=False)
    _names: Mapping[str, Entity] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Entity] = {}
        names: dict[str, Entity] = {}
        for e in self.entities():
            index[e.id] = e
            for n in _spoken_names(e):
                names.setdefault(normalize_name(n), e)
        object.__setattr__(self, "_index", _ro(index))
        object.__setattr__(self, "_names", _ro(names))

    # -- iteration ---------------------------------------------------------------------
    def entities(self) -> Iterator[Entity]:
        """Every entity, in file order: places, assets, objects, zones, routes, docks."""
        yield from self.places
        yield from self.assets
        yield from self.objects
        yield from self.zones
        yield from self.routes
        yield from self.docks

    @property
    def all_ids(self) -> frozenset[str]:
        """Every id in the file."""
        return frozenset(self._index)

    @property
    def gauges(self) -> tuple[Asset, ...]:
        """The assets of kind GAUGE."""
        return tuple(a for a in self.assets if a.kind is AssetKind.GAUGE)

    # -- look-ups by id ----------------------------------------------------------------
    def _get(self, entity_id: str, cls: type, what: str, pool: Sequence[Entity]) -> Any:
        e = self._index.get(entity_id)
        if not isinstance(e, cls):
            ids = ", ".join(x.id for x in pool) or "(none)"
            raise KeyError(f"no {what} {entity_id!r} in site {self.site!r}; {what}s: {ids}")
        return e

    def place(self, place_id: str) -> Place:
        """The place with this id."""
        return self._get(place_id, Place, "place", self.places)

    def asset(self, asset_id: str) -> Asset:
        """The asset with this id."""
        return self._get(asset_id, Asset, "asset", self.assets)

    def object(self, object_id: str) -> SiteObject:
        """The object with this id."""
        return self._get(object_id, SiteObject, "object", self.objects)

    def zone(self, zone_id: str) -> Zone:
        """The zone with this id."""
        return self._get(zone_id, Zone, "zone", self.zones)

    def route(self, route_id: str) -> Route:
        """The route with this id."""
        return self._get(route_id, Route, "route", self.routes)

    def dock(self, dock_id: str) -> Dock:
        """The dock with this id."""
        return self._get(dock_id, Dock, "dock", self.docks)

    def get(self, entity_id: str) -> Entity | None:
        """The entity of any kind with this id, or None."""
        return self._index.get(entity_id)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._index

    # -- other look-ups ----------------------------------------------------------------
    def by_name(self, text: str) -> Entity | None:
        """The entity whose name or an alias equals *text* after :func:`normalize_name`,
        or None.  (Names are unique, so at most one matches.)"""
        return self._names.get(normalize_name(text))

    def names(self) -> Mapping[str, Entity]:
        """Every normalized name and alias -> its entity."""
        return self._names

    def asset_by_fiducial(self, tag_id: int) -> Asset | None:
        """The asset carrying AprilTag *tag_id*, or None."""
        for a in self.assets:
            if a.fiducial == tag_id:
                return a
        return None

    def marker(self, tag_id: int) -> Marker | None:
        """The surveyed marker with AprilTag id *tag_id*, or None."""
        for m in self.markers:
            if m.tag == tag_id:
                return m
        return None

    def assets_at(self, place_id: str) -> tuple[Asset, ...]:
        """Assets whose place is *place_id*."""
        return tuple(a for a in self.assets if a.place == place_id)

    def objects_at(self, place_id: str) -> tuple[SiteObject, ...]:
        """Objects whose place is *place_id*."""
        return tuple(o for o in self.objects if o.place == place_id)

    def zones_at(self, x: float, y: float) -> tuple[Zone, ...]:
        """The zones containing the point (x, y) [m], in file order."""
        return tuple(z for z in self.zones if z.contains(x, y))

    def dock_place(self, dock_id: str) -> Place:
        """The docked pose of a dock."""
        return self.place(self.dock(dock_id).place)


# ---------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------
_ARTICLE = re.compile(r"^(the|a|an)\s+")


def normalize_name(text: str) -> str:
    """The form in which names and aliases are compared: case-folded, whitespace collapsed,
    a leading article ("the", "a", "an") dropped.  ``"The  T1 Pressure gauge"`` ->
    ``"t1 pressure gauge"``."""
    s = " ".join(text.casefold().split())
    return _ARTICLE.sub("", s)


def _spoken_names(e: Entity) -> tuple[str, ...]:
    name = getattr(e, "name", "")
    return ((name,) if name else ()) + tuple(getattr(e, "aliases", ()))


# ---------------------------------------------------------------------------------------
# planar geometry (shared with the world loader)
# ---------------------------------------------------------------------------------------
Point = tuple[float, float]


def polygon_area(poly: Sequence[Point]) -> float:
    """Signed area [m^2] (positive for counter-clockwise vertex order)."""
    a = 0.0
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        a += x0 * y1 - x1 * y0
    return 0.5 * a


def point_in_polygon(x: float, y: float, poly: Sequence[Point]) -> bool:
    """True when (x, y) is inside *poly* or on its boundary (even-odd rule)."""
    n = len(poly)
    inside = False
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        # on the edge?
        cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        if abs(cross) <= 1e-12 * max(1.0, abs(x1 - x0) + abs(y1 - y0)) and \
                min(x0, x1) - 1e-12 <= x <= max(x0, x1) + 1e-12 and \
                min(y0, y1) - 1e-12 <= y <= max(y0, y1) + 1e-12:
            return True
        if (y0 > y) != (y1 > y):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            if x < x_cross:
                inside = not inside
    return inside


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return (min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= p[1] <= max(a[1], b[1]))


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """True when the closed segments ab and cd share at least one point."""
    o1, o2 = _orient(a, b, c), _orient(a, b, d)
    o3, o4 = _orient(c, d, a), _orient(c, d, b)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    return ((o1 == 0 and _on_segment(a, b, c)) or (o2 == 0 and _on_segment(a, b, d))
            or (o3 == 0 and _on_segment(c, d, a)) or (o4 == 0 and _on_segment(c, d, b)))


def polygon_self_intersection(poly: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of edge indices (i, j) that intersect although not adjacent (edge i
    runs from vertex i to vertex i+1), or None for a simple polygon.  Adjacent edges that
    overlap (a spike back along the previous edge) also count."""
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        for j in range(i + 1, n):
            c, d = poly[j], poly[(j + 1) % n]
            adjacent = j == i + 1 or (i == 0 and j == n - 1)
            if adjacent:
                # shared vertex is fine; collinear overlap beyond it is not
                shared = b if j == i + 1 else a
                other_i = a if j == i + 1 else b
                other_j = d if j == i + 1 else c
                if _orient(other_i, shared, other_j) == 0 and (
                        _on_segment(shared, other_i, other_j)
                        or _on_segment(shared, other_j, other_i)):
                    return (i, j)
                continue
            if segments_intersect(a, b, c, d):
                return (i, j)
    return None


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
_TOP_KEYS = ("site", "frame", "name", "description", "places", "assets", "objects",
             "zones", "routes", "docks", "markers")
_MARKER_KEYS = ("tag", "size", "pose")
_PLACE_KEYS = ("id", "name", "aliases", "pose")
_ASSET_KEYS = ("id", "name", "kind", "aliases", "place", "gauge", "fiducial", "description")
_GAUGE_KEYS = ("unit", "min_value", "max_value")
_OBJECT_KEYS = ("id", "name", "kind", "aliases", "place", "description", "pose", "grasp_yaw")
_ZONE_KEYS = ("id", "name", "kind", "polygon", "max_speed", "roles", "aliases",
              "description")
_ROUTE_KEYS = ("id", "name", "aliases", "waypoints", "loop")
_DOCK_KEYS = ("id", "place", "name", "aliases")


def load_registry(path: str | Path) -> SiteRegistry:
    """Load and check the registry file at *path*.

    :raises RegistryError: naming the file and the line (YAML syntax) or key path.
    """
    p = Path(path)
    data = load_yaml(p, error=RegistryError)
    return parse_registry(data, file=p)


def parse_registry(data: Any, file: str | Path | None = None) -> SiteRegistry:
    """Check already-parsed registry *data* (the YAML document as Python objects).

    :param file: named in errors and kept as ``SiteRegistry.file``.
    :raises RegistryError: naming *file* and the key path of the first problem.
    """
    return _Parser(Schema(file, RegistryError)).parse(data)


def _enum_choice(s: Schema, value: Any, enum_cls: type[enum.Enum], where: str,
                 what: str) -> Any:
    return enum_cls(s.choice(value, [m.value for m in enum_cls], where, what=what))


class _Parser:
    def __init__(self, schema: Schema) -> None:
        self.s = schema
        self.ids: dict[str, str] = {}          # id -> key path of its definition

    # -- common fields -----------------------------------------------------------------
    def _id(self, m: Mapping[str, Any], where: str) -> str:
        s = self.s
        ident = s.string(s.require(m, "id", str, where), key_path(where, "id"))
        if not ID_PATTERN.match(ident):
            s.fail(f"id {ident!r} must be snake_case (a lower-case letter, then lower-case "
                   "letters, digits or '_')", key_path(where, "id"))
        if ident in self.ids:
            s.fail(f"duplicate id {ident!r} (first defined at {self.ids[ident]}); ids are "
                   "unique across the whole file", key_path(where, "id"))
        self.ids[ident] = where
        return ident

    def _name(self, m: Mapping[str, Any], where: str, required: bool = True) -> str:
        if not required and m.get("name") is None:
            return ""
        return self.s.string(self.s.require(m, "name", str, where), key_path(where, "name"))

    def _aliases(self, m: Mapping[str, Any], where: str) -> tuple[str, ...]:
        if m.get("aliases") is None:
            return ()
        return self.s.string_list(m["aliases"], key_path(where, "aliases"))

    def _description(self, m: Mapping[str, Any], where: str) -> str:
        return self.s.optional(m, "description", str, where, default="")

    def _items(self, root: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
        raw = root.get(key)
        if raw is None:
            return []
        items = self.s.seq(raw, key)
        return [(key_path(key, i), self.s.mapping(v, key_path(key, i)))
                for i, v in enumerate(items)]

    # -- sections ----------------------------------------------------------------------
    def parse(self, data: Any) -> SiteRegistry:
        s = self.s
        if data is None:
            s.fail("the file is empty; expected a mapping with at least 'site'", None)
        root = s.mapping(data, "")
        s.keys(root, "", allowed=_TOP_KEYS, required=("site",))
        site = s.string(root["site"], "site")
        if not ID_PATTERN.match(site):
            s.fail(f"site id {site!r} must be snake_case", "site")
        frame = s.string(s.optional(root, "frame", str, "", default="map"), "frame")
        name = s.optional(root, "name", str, "", default="")
        description = s.optional(root, "description", str, "", default="")

        places = tuple(self._place(m, w) for w, m in self._items(root, "places"))
        zones = tuple(self._zone(m, w) for w, m in self._items(root, "zones"))
        assets = tuple(self._asset(m, w) for w, m in self._items(root, "assets"))
        objects = tuple(self._object(m, w) for w, m in self._items(root, "objects"))
        routes = tuple(self._route(m, w) for w, m in self._items(root, "routes"))
        docks = tuple(self._dock(m, w) for w, m in self._items(root, "docks"))

        place_ids = {p.id for p in places}
        self._check_refs(assets, "assets", place_ids)
        self._check_refs(objects, "objects", place_ids)
        for i, r in enumerate(routes):
            for j, wp in enumerate(r.waypoints):
                if wp not in place_ids:
                    s.fail(self._dangling(wp, place_ids), key_path(key_path(
                        key_path("routes", i), "waypoints"), j))
        self._check_refs(docks, "docks", place_ids)
        self._check_keep_out(places, zones)
        self._check_fiducials(assets)
        self._check_names(root, places, assets, objects, zones, routes, docks)
        markers = tuple(self._marker(m, w) for w, m in self._items(root, "markers"))
        seen: dict[int, int] = {}
        for i, mk in enumerate(markers):
            if mk.tag in seen:
                s.fail(f"marker tag {mk.tag} is already surveyed at markers[{seen[mk.tag]}]",
                       key_path(key_path("markers", i), "tag"))
            seen[mk.tag] = i
        return SiteRegistry(site=site, frame=frame, places=places, assets=assets,
                            objects=objects, zones=zones, routes=routes, docks=docks,
                            name=name, description=description, file=s.file,
                            markers=markers)

    def _marker(self, m: Mapping[str, Any], where: str) -> Marker:
        s = self.s
        s.keys(m, where, allowed=_MARKER_KEYS, required=_MARKER_KEYS)
        tag = s.integer(m["tag"], key_path(where, "tag"), min_value=0,
                        max_value=APRILTAG_36H11_IDS - 1)
        size = s.number(m["size"], key_path(where, "size"))
        if not (math.isfinite(size) and size > 0.0):
            s.fail(f"marker size must be a positive number of metres, got {size!r}",
                   key_path(where, "size"))
        x, y, z, yaw = s.vector(m["pose"], key_path(where, "pose"), 4, names="[x, y, z, yaw]")
        return Marker(tag, float(size), float(x), float(y), float(z), float(yaw))

    def _place(self, m: Mapping[str, Any], where: str) -> Place:
        s = self.s
        s.keys(m, where, allowed=_PLACE_KEYS, required=("id", "name", "pose"))
        ident = self._id(m, where)
        x, y, yaw = s.vector(m["pose"], key_path(where, "pose"), 3, names="[x, y, yaw]")
        return Place(ident, self._name(m, where), self._aliases(m, where), Pose2D(x, y, yaw))

    def _asset(self, m: Mapping[str, Any], where: str) -> Asset:
        s = self.s
        s.keys(m, where, allowed=_ASSET_KEYS, required=("id", "name", "kind", "place"))
        ident = self._id(m, where)
        kind = _enum_choice(s, m["kind"], AssetKind, key_path(where, "kind"), "asset kind")
        place = s.string(m["place"], key_path(where, "place"))
        gauge = None
        gw = key_path(where, "gauge")
        if kind is AssetKind.GAUGE:
            if m.get("gauge") is None:
                s.fail("an asset of kind 'gauge' needs a 'gauge' block "
                       "{unit, min_value, max_value}", gw)
            g = s.mapping(m["gauge"], gw)
            s.keys(g, gw, allowed=_GAUGE_KEYS, required=_GAUGE_KEYS)
            unit = s.string(g["unit"], key_path(gw, "unit"))
            lo = s.number(g["min_value"], key_path(gw, "min_value"))
            hi = s.number(g["max_value"], key_path(gw, "max_value"))
            if not lo < hi:
                s.fail(f"min_value ({lo:g}) must be less than max_value ({hi:g})",
                       key_path(gw, "max_value"))
            gauge = GaugeSpec(unit, lo, hi)
        elif m.get("gauge") is not None:
            s.fail(f"only assets of kind 'gauge' take a 'gauge' block (this one is "
                   f"{kind.value!r})", gw)
        fiducial = None
        if m.get("fiducial") is not None:
            fiducial = s.integer(m["fiducial"], key_path(where, "fiducial"), min_value=0,
                                 max_value=APRILTAG_36H11_IDS - 1)
        return Asset(ident, self._name(m, where), kind, self._aliases(m, where), place,
                     gauge, fiducial, self._description(m, where))

    def _object(self, m: Mapping[str, Any], where: str) -> SiteObject:
        s = self.s
        s.keys(m, where, allowed=_OBJECT_KEYS, required=("id", "name", "kind", "place"))
        ident = self._id(m, where)
        kind = _enum_choice(s, m["kind"], ObjectKind, key_path(where, "kind"), "object kind")
        place = s.string(m["place"], key_path(where, "place"))
        pose = None
        if m.get("pose") is not None:
            x, y, z = s.vector(m["pose"], key_path(where, "pose"), 3, names="[x, y, z]")
            pose = (float(x), float(y), float(z))
        grasp_yaw = None
        if m.get("grasp_yaw") is not None:
            grasp_yaw = float(s.number(m["grasp_yaw"], key_path(where, "grasp_yaw"),
                                       min_value=-math.tau, max_value=math.tau))
        return SiteObject(ident, self._name(m, where), kind, self._aliases(m, where), place,
                          self._description(m, where), pose, grasp_yaw)

    def _zone(self, m: Mapping[str, Any], where: str) -> Zone:
        s = self.s
        s.keys(m, where, allowed=_ZONE_KEYS, required=("id", "name", "kind", "polygon"))
        ident = self._id(m, where)
        kind = _enum_choice(s, m["kind"], ZoneKind, key_path(where, "kind"), "zone kind")
        pw = key_path(where, "polygon")
        raw = s.seq(m["polygon"], pw, min_len=3)
        poly = tuple(s.vector(v, key_path(pw, i), 2, names="[x, y]")
                     for i, v in enumerate(raw))
        poly2 = tuple((float(a), float(b)) for a, b in poly)
        hit = polygon_self_intersection(poly2)
        if hit is not None:
            s.fail(f"polygon self-intersects: edge {hit[0]} (vertices {hit[0]}-"
                   f"{(hit[0] + 1) % len(poly2)}) crosses edge {hit[1]} (vertices {hit[1]}-"
                   f"{(hit[1] + 1) % len(poly2)})", pw)
        if abs(polygon_area(poly2)) < 1e-9:
            s.fail("polygon has zero area (collinear or repeated vertices)", pw)
        max_speed = None
        roles: tuple[str, ...] = ()
        if kind is ZoneKind.SLOW:
            if m.get("max_speed") is None:
                s.fail("a slow zone needs 'max_speed' [m/s] > 0", key_path(where, "max_speed"))
            max_speed = s.number(m["max_speed"], key_path(where, "max_speed"), min_value=0.0,
                                 min_exclusive=True)
        elif m.get("max_speed") is not None:
            s.fail("'max_speed' applies to slow zones only", key_path(where, "max_speed"))
        if kind is ZoneKind.RESTRICTED:
            if m.get("roles") is None:
                s.fail("a restricted zone needs 'roles' (who may enter)",
                       key_path(where, "roles"))
            roles = s.string_list(m["roles"], key_path(where, "roles"))
            if not roles:
                s.fail("a restricted zone needs at least one role", key_path(where, "roles"))
        elif m.get("roles") is not None:
            s.fail("'roles' applies to restricted zones only", key_path(where, "roles"))
        return Zone(ident, self._name(m, where), kind, poly2, max_speed, roles,
                    self._aliases(m, where), self._description(m, where))

    def _route(self, m: Mapping[str, Any], where: str) -> Route:
        s = self.s
        s.keys(m, where, allowed=_ROUTE_KEYS, required=("id", "name", "waypoints"))
        ident = self._id(m, where)
        ww = key_path(where, "waypoints")
        wps = s.seq(m["waypoints"], ww, min_len=2)
        waypoints = tuple(s.string(v, key_path(ww, i)) for i, v in enumerate(wps))
        loop = s.optional(m, "loop", bool, where, default=False)
        return Route(ident, self._name(m, where), self._aliases(m, where), waypoints, loop)

    def _dock(self, m: Mapping[str, Any], where: str) -> Dock:
        s = self.s
        s.keys(m, where, allowed=_DOCK_KEYS, required=("id", "place"))
        ident = self._id(m, where)
        place = s.string(m["place"], key_path(where, "place"))
        return Dock(ident, place, self._name(m, where, required=False),
                    self._aliases(m, where))

    # -- cross checks ------------------------------------------------------------------
    @staticmethod
    def _dangling(ref: str, place_ids: set[str]) -> str:
        known = ", ".join(sorted(place_ids)) or "(none)"
        return f"unknown place {ref!r}; places: {known}"

    def _check_refs(self, items: Iterable[Asset | SiteObject | Dock], section: str,
                    place_ids: set[str]) -> None:
        for i, it in enumerate(items):
            if it.place not in place_ids:
                self.s.fail(self._dangling(it.place, place_ids),
                            key_path(key_path(section, i), "place"))

    def _check_keep_out(self, places: Sequence[Place], zones: Sequence[Zone]) -> None:
        for i, p in enumerate(places):
            for z in zones:
                if z.kind is ZoneKind.KEEP_OUT and z.contains(p.x, p.y):
                    self.s.fail(f"place {p.id!r} at ({p.x:g}, {p.y:g}) lies inside keep-out "
                                f"zone {z.id!r}", key_path(key_path("places", i), "pose"))

    def _check_fiducials(self, assets: Sequence[Asset]) -> None:
        seen: dict[int, str] = {}
        for i, a in enumerate(assets):
            if a.fiducial is None:
                continue
            if a.fiducial in seen:
                self.s.fail(f"fiducial {a.fiducial} is already on asset {seen[a.fiducial]!r}",
                            key_path(key_path("assets", i), "fiducial"))
            seen[a.fiducial] = a.id

    def _check_names(self, root: Mapping[str, Any], *sections: Sequence[Entity]) -> None:
        owners: dict[str, tuple[str, str]] = {}   # normalized -> (entity id, key path)
        names = ("places", "assets", "objects", "zones", "routes", "docks")
        for section, items in zip(names, sections, strict=True):
            for i, e in enumerate(items):
                where = key_path(section, i)
                name = getattr(e, "name", "")
                spoken = [(name, key_path(where, "name"))] if name else []
                spoken += [(a, key_path(key_path(where, "aliases"), j))
                           for j, a in enumerate(getattr(e, "aliases", ()))]
                for text, path in spoken:
                    norm = normalize_name(text)
                    if not norm:
                        self.s.fail("a name or alias must not be only an article", path)
                    prev = owners.get(norm)
                    if prev is not None and prev[0] != e.id:
                        self.s.fail(f"{text!r} already names {prev[0]!r} (at {prev[1]}); "
                                    "names and aliases must be unique across entities",
                                    path)
                    owners.setdefault(norm, (e.id, path))
