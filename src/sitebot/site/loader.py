"""Loading and checking a site registry file (the format and the rules are in
:mod:`sitebot.site.registry`); every failure is a :class:`~sitebot.errors.RegistryError`
naming the file and the key path.  The file is read through the one bounded YAML path
(:func:`sitebot.config.yamlio.load_yaml`); coordinates lie within the site extent
(|x|, |y| <= 10 km, |z| <= 1 km) and angles within +-4*pi rad
(:meth:`~sitebot.config.yamlio.Schema.bounded`)."""
from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.errors import RegistryError
from sitebot.site.geometry import polygon_area, polygon_self_intersection
from sitebot.site.registry import (APRILTAG_36H11_IDS, ID_PATTERN, Asset, AssetKind, Dock, Entity,
                                   GaugeSpec, Marker, ObjectKind, Place, Route, SiteObject,
                                   SiteRegistry, Zone, ZoneKind, normalize_name)
from sitebot.types import Pose2D

__all__ = ["load_registry", "parse_registry"]

_TOP_KEYS = ("site", "frame", "name", "description", "places", "assets", "objects",
             "zones", "routes", "docks", "markers")
_MARKER_KEYS = ("tag", "size", "pose", "draft", "std", "sightings")
_MARKER_REQUIRED = ("tag", "size", "pose")
_PLACE_KEYS = ("id", "name", "aliases", "pose")
_ASSET_KEYS = ("id", "name", "kind", "aliases", "place", "gauge", "fiducial", "description")
_GAUGE_KEYS = ("unit", "min_value", "max_value")
_OBJECT_KEYS = ("id", "name", "kind", "aliases", "place", "description", "pose", "grasp_yaw",
                "size")
_ZONE_KEYS = ("id", "name", "kind", "polygon", "max_speed", "roles", "aliases",
              "description")
_ROUTE_KEYS = ("id", "name", "aliases", "waypoints", "loop")
_DOCK_KEYS = ("id", "place", "name", "aliases")
#: Largest fiducial marker [m] and zone speed limit [m/s] a registry may give.
_MAX_MARKER_M = 10.0
_MAX_SPEED_MPS = 10.0


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
        frame = s.name(s.optional(root, "frame", str, "", default="map"), "frame")
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
        s.keys(m, where, allowed=_MARKER_KEYS, required=_MARKER_REQUIRED)
        tag = s.integer(m["tag"], key_path(where, "tag"), min_value=0,
                        max_value=APRILTAG_36H11_IDS - 1)
        size = s.number(m["size"], key_path(where, "size"))
        if not (math.isfinite(size) and 0.0 < size <= _MAX_MARKER_M):
            s.fail(f"marker size must be a positive number of metres up to {_MAX_MARKER_M:g}, "
                   f"got {size!r}", key_path(where, "size"))
        x, y, z, yaw = s.vector(m["pose"], key_path(where, "pose"), 4, names="[x, y, z, yaw]")
        s.bounded((x, y, z, yaw), key_path(where, "pose"), ("x", "y", "z", "yaw"))
        draft = s.optional(m, "draft", bool, where, default=False)
        std = None
        if m.get("std") is not None:
            sw = key_path(where, "std")
            vals = s.vector(m["std"], sw, 4, names="[sx, sy, sz, syaw]")
            for i, v in enumerate(vals):
                s.number(v, key_path(sw, i), min_value=0.0)
            std = tuple(float(v) for v in vals)
        sightings = None
        if m.get("sightings") is not None:
            sightings = s.integer(m["sightings"], key_path(where, "sightings"), min_value=0)
        return Marker(tag, float(size), float(x), float(y), float(z), float(yaw), draft, std,
                      sightings)

    def _place(self, m: Mapping[str, Any], where: str) -> Place:
        s = self.s
        s.keys(m, where, allowed=_PLACE_KEYS, required=("id", "name", "pose"))
        ident = self._id(m, where)
        x, y, yaw = s.vector(m["pose"], key_path(where, "pose"), 3, names="[x, y, yaw]")
        s.bounded((x, y, yaw), key_path(where, "pose"), ("x", "y", "yaw"))
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
            s.bounded((x, y, z), key_path(where, "pose"), ("x", "y", "z"))
            pose = (float(x), float(y), float(z))
        grasp_yaw = None
        if m.get("grasp_yaw") is not None:
            grasp_yaw = float(s.number(m["grasp_yaw"], key_path(where, "grasp_yaw"),
                                       min_value=-math.tau, max_value=math.tau))
        size = None
        if m.get("size") is not None:
            dims = s.vector(m["size"], key_path(where, "size"), 3,
                            names="[length, width, height]")
            if not all(math.isfinite(v) and 0.0 < v <= 20.0 for v in dims):
                s.fail(f"size {list(dims)}: each of [length, width, height] must be a "
                       "finite length in (0, 20] m", key_path(where, "size"))
            size = (float(dims[0]), float(dims[1]), float(dims[2]))
        return SiteObject(ident, self._name(m, where), kind, self._aliases(m, where), place,
                          self._description(m, where), pose, grasp_yaw, size)

    def _zone(self, m: Mapping[str, Any], where: str) -> Zone:
        s = self.s
        s.keys(m, where, allowed=_ZONE_KEYS, required=("id", "name", "kind", "polygon"))
        ident = self._id(m, where)
        kind = _enum_choice(s, m["kind"], ZoneKind, key_path(where, "kind"), "zone kind")
        pw = key_path(where, "polygon")
        raw = s.seq(m["polygon"], pw, min_len=3)
        poly = tuple(s.vector(v, key_path(pw, i), 2, names="[x, y]")
                     for i, v in enumerate(raw))
        for i, v in enumerate(poly):
            s.bounded(v, key_path(pw, i), ("x", "y"))
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
                                 min_exclusive=True, max_value=_MAX_SPEED_MPS)
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
