"""The site registry: places, assets, objects, zones, routes and docks of one site.

The registry is the contract between the worlds, the language planner, the task executor
and the safety supervisor (see the design brief, "Site registry").  Ids are what plans
carry; names and aliases are what people say.  This module is the model and answers
look-ups; :mod:`sitebot.site.loader` loads a registry file and checks it completely.  No ROS
and no simulator dependency.

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
               grasp_yaw: <rad>,      # optional: heading of its long axis (grip across it)
               size: [l, w, h]}]      # optional: its extent [m] along the long axis,
                                      # across it, and up (what a gripper must span)
    zones:   [{id, name, kind, polygon: [[x, y], ..], max_speed: <m/s>, roles: [..],
               aliases, description}]
    routes:  [{id, name, aliases, waypoints: [<place id>, ..], loop: <bool>}]
    docks:   [{id, place, name, aliases}]
    markers: [{tag: <AprilTag 36h11 id>, size: <black-square edge, m>,
               pose: [x, y, z, yaw],     # surveyed map poses of fiducial landmarks
               draft: <bool>,            # optional, default false: from a marker survey,
                                         # not yet confirmed by a person
               std: [sx, sy, sz, syaw],  # optional: 1-sigma of the pose [m, m, m, rad]
               sightings: <int >= 0>}]   # optional: images the survey fused

Rules checked on load (each failure is a :class:`~sitebot.errors.RegistryError` naming the
file and the key path, e.g. ``assets[2].place``): required keys and types; unknown keys and
unknown kinds (listing the accepted ones); ids are snake_case and unique across the whole
file; references (asset/object place, route waypoint, dock place) exist; a gauge asset has a
``gauge`` block with ``min_value < max_value`` and only gauges have one; slow zones have
``max_speed > 0``; restricted zones list ``roles``; polygons have >= 3 finite vertices, a
non-zero area and do not self-intersect; poses are finite; no place pose lies inside a
keep-out zone; fiducial ids are unique; no two entities share a name or alias (compared
after :func:`normalize_name`); marker tags are unique, sizes positive, poses finite, stds
non-negative and finite, sightings non-negative integers.

``markers`` are the surveyed map poses of the AprilTags on the site (the landmarks that
localization fuses and that perception maps to assets): a marker's face looks along its
yaw, horizontally, centred at (x, y, z).  A *draft* marker (written by the marker survey,
:mod:`sitebot.commissioning.markers`) is used like any other; ``sitebot site check`` warns
until a person confirms it (drops ``draft``).
"""
from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sitebot.site.geometry import point_in_polygon, polygon_area
from sitebot.types import Pose2D

__all__ = [
    "AssetKind", "ObjectKind", "ZoneKind",
    "Pose2D", "GaugeSpec", "Place", "Asset", "SiteObject", "Zone", "Route", "Dock",
    "Marker", "SiteRegistry", "Entity",
    "normalize_name",
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
    size: tuple[float, float, float] | None = None   # length, width, height [m]

    @property
    def narrowest_m(self) -> float | None:
        """The least horizontal extent (what a parallel gripper closes across), or None
        when the site did not measure the object."""
        return None if self.size is None else min(self.size[0], self.size[1])


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
    looking horizontally along ``yaw`` [rad].

    ``draft``: surveyed by the marker survey and not yet confirmed; ``std``: 1-sigma of
    (x, y, z, yaw) [m, m, m, rad] when the survey gave one; ``sightings``: how many images
    the survey fused (None when not surveyed by it)."""
    tag: int
    size_m: float
    x: float
    y: float
    z: float
    yaw: float
    draft: bool = False
    std: tuple[float, float, float, float] | None = None
    sightings: int | None = None


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
