"""Reading and checking world files: :func:`load_world` / :func:`parse_world` turn a
``worlds/<id>.world.yaml`` (and the site registry it names) into a
:class:`~sitebot.sim.world.WorldSpec`, or raise one :class:`~sitebot.errors.WorldError` that
names the file and the line (YAML syntax) or key path (``gauges[0].value``) of the problem.

The format is documented in ``docs/worlds.md``; the model (the value types, free space) is
:mod:`sitebot.sim.world`.  Only the simulator (and tools that stand in for a site's
commissioning) should read world files.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sitebot.config.checks import MAX_FRICTION, MAX_MASS_KG, SITE_EXTENT_M
from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.errors import WorldError
from sitebot.paths import data_path
from sitebot.sim.world import (LIGHTING_PRESETS, MAX_ACTOR_SPEED_MPS, ROBOT_RADIUS_M,
                               SPAWN_SEPARATION_M, ActorSpec, BodySpec, Bounds, DialSpec,
                               FiducialSpec, GaugeDialSpec, GroundSpec, Lighting, Pose3D, Shape,
                               ValveSpec, ValveState, WorldSpec, unit_vector)
from sitebot.site.loader import load_registry
from sitebot.site.registry import APRILTAG_36H11_IDS, ID_PATTERN, AssetKind, SiteRegistry, ZoneKind
from sitebot.types import Pose2D

__all__ = ["load_world", "parse_world", "world_path", "available_worlds", "WORLD_SUFFIX"]

WORLD_SUFFIX = ".world.yaml"


# ---------------------------------------------------------------------------------------
# finding world files
# ---------------------------------------------------------------------------------------
def world_path(name: str | Path) -> Path:
    """The file of a world given by bare name (``substation`` ->
    ``<share>/worlds/substation.world.yaml``) or by path (returned as is)."""
    text = str(name)
    if isinstance(name, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(name)
    return data_path("worlds", text + WORLD_SUFFIX)


def available_worlds() -> tuple[str, ...]:
    """Names of the worlds shipped in ``<share>/worlds``."""
    d = data_path("worlds")
    if not d.is_dir():
        return ()
    return tuple(sorted(p.name[: -len(WORLD_SUFFIX)] for p in d.glob("*" + WORLD_SUFFIX)))


def load_world(path_or_name: str | Path) -> WorldSpec:
    """Load and check a world by bare name (``"substation"``) or file path, with its site
    registry.

    :raises WorldError: naming the world file and the line or key path of the problem.
    :raises RegistryError: naming the registry file when the registry itself is broken.
    """
    p = world_path(path_or_name)
    if not p.is_file() and not isinstance(path_or_name, Path) and p.parent == data_path("worlds"):
        known = ", ".join(available_worlds()) or "(none)"
        raise WorldError(f"unknown world {str(path_or_name)!r}; available: {known}", file=p)
    data = load_yaml(p, error=WorldError)
    return parse_world(data, file=p)


def parse_world(data: Any, file: str | Path | None = None,
                registry: SiteRegistry | None = None) -> WorldSpec:
    """Check already-parsed world *data*.

    :param file: the world file: named in errors; relative ``site`` paths resolve against
        its directory.
    :param registry: use this registry instead of loading the ``site`` file.
    :raises WorldError: naming *file* and the key path of the first problem.
    """
    return _WorldParser(Schema(file, WorldError), registry).parse(data)


# ---------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------
_TOP_KEYS = ("world", "site", "description", "ground", "lighting", "spawn", "bodies",
             "fiducials", "gauges", "valves", "actors")
_GROUND_KEYS = ("size", "center", "rgba", "friction")
_LIGHT_KEYS = ("preset", "direction", "color", "ambient", "diffuse", "specular", "shadow")
_BODY_KEYS = ("id", "shape", "size", "pose", "rgba", "mass", "collision", "asset", "object",
              "repeat")
_REPEAT_KEYS = ("count", "step")
_FID_KEYS = ("tag", "size", "pose", "asset")
_GAUGE_KEYS = ("asset", "pose", "radius", "value", "sweep_deg", "major_step")
_VALVE_KEYS = ("asset", "pose", "state", "handle_length")
_ACTOR_KEYS = ("id", "path", "speed", "loop", "height", "radius", "start_delay", "yields")
_SIZE_LEN = {Shape.BOX: (3, "[x, y, z]"), Shape.CYLINDER: (2, "[radius, height]"),
             Shape.SPHERE: (1, "[radius]")}
_DEFAULT_RGBA = (0.6, 0.6, 0.6, 1.0)
_POSE_NAMES = {3: ("x", "y", "z"), 4: ("x", "y", "z", "yaw"),
               6: ("x", "y", "z", "roll", "pitch", "yaw")}
#: Largest start delay of an actor [s] (a day).
_MAX_DELAY_S = 86_400.0


class _WorldParser:
    def __init__(self, schema: Schema, registry: SiteRegistry | None) -> None:
        self.s = schema
        self.registry = registry

    # -- helpers -----------------------------------------------------------------------
    def pose3(self, value: Any, where: str) -> Pose3D:
        v = self.s.vector(value, where, (3, 4, 6),
                          names="[x, y, z], [x, y, z, yaw] or [x, y, z, roll, pitch, yaw]")
        self.s.bounded(v, where, _POSE_NAMES[len(v)])
        if len(v) == 3:
            return Pose3D(*v)
        if len(v) == 4:
            return Pose3D(v[0], v[1], v[2], 0.0, 0.0, v[3])
        return Pose3D(*v)

    def rgba(self, m: Mapping[str, Any], key: str, where: str,
             default: tuple[float, ...]) -> tuple[float, float, float, float]:
        if m.get(key) is None:
            return default  # type: ignore[return-value]
        w = key_path(where, key)
        v = self.s.vector(m[key], w, (3, 4), names="[r, g, b] or [r, g, b, a] in [0, 1]")
        for i, c in enumerate(v):
            if not 0.0 <= c <= 1.0:
                self.s.fail(f"colour components lie in [0, 1], got {c:g}", key_path(w, i))
        return (v[0], v[1], v[2], v[3] if len(v) == 4 else 1.0)

    def items(self, root: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
        if root.get(key) is None:
            return []
        seq = self.s.seq(root[key], key)
        return [(key_path(key, i), self.s.mapping(v, key_path(key, i)))
                for i, v in enumerate(seq)]

    def asset_ref(self, m: Mapping[str, Any], where: str, kind: AssetKind | None,
                  required: bool = True) -> str | None:
        s = self.s
        if m.get("asset") is None:
            if required:
                s.fail("missing required key 'asset'", key_path(where, "asset"))
            return None
        w = key_path(where, "asset")
        ident = s.string(m["asset"], w)
        reg = self.registry
        assert reg is not None
        if ident not in {a.id for a in reg.assets}:
            s.fail(f"unknown asset {ident!r} (not in site {reg.site!r}); assets: "
                   + ", ".join(a.id for a in reg.assets), w)
        if kind is not None and reg.asset(ident).kind is not kind:
            s.fail(f"asset {ident!r} is a {reg.asset(ident).kind.value}, expected a "
                   f"{kind.value}", w)
        return ident

    # -- top level ---------------------------------------------------------------------
    def parse(self, data: Any) -> WorldSpec:
        s = self.s
        if data is None:
            s.fail("the file is empty; expected a mapping with 'world' and 'site'", None)
        root = s.mapping(data, "")
        s.keys(root, "", allowed=_TOP_KEYS, required=("world", "site", "ground", "spawn"))
        wid = s.string(root["world"], "world")
        if not ID_PATTERN.match(wid):
            s.fail(f"world id {wid!r} must be snake_case", "world")
        if self.registry is None:
            site_rel = s.string(root["site"], "site")
            base = s.file.parent if s.file is not None else Path(".")
            site_file = (base / site_rel) if not Path(site_rel).is_absolute() else Path(site_rel)
            if not site_file.is_file():
                s.fail(f"site registry file {str(site_file)!r} not found", "site")
            self.registry = load_registry(site_file)
        reg = self.registry
        if reg.site != wid:
            s.fail(f"world {wid!r} names a registry for site {reg.site!r}; they must match",
                   "site")
        description = s.optional(root, "description", str, "", default="")
        bounds, ground = self.ground(root)
        self.bounds = bounds
        preset, lighting = self.lighting(root.get("lighting"))
        bodies = self.bodies(root)
        fiducials = self.fiducials(root)
        gauges = self.gauges(root)
        valves = self.valves(root)
        actors = self.actors(root, {b.id for b in bodies})
        spec = WorldSpec(id=wid, file=s.file, registry=reg, bounds=bounds, ground=ground,
                         lighting=lighting, lighting_preset=preset,
                         lighting_presets=LIGHTING_PRESETS, spawn_poses=MappingProxyType({}),
                         bodies=bodies, fiducials=fiducials, gauges=gauges, valves=valves,
                         actors=actors, description=description)
        spawn = self.spawn(root, spec)
        spec = dataclasses.replace(spec, spawn_poses=MappingProxyType(spawn))
        self.check_free_space(spec)
        return spec

    def ground(self, root: Mapping[str, Any]) -> tuple[Bounds, GroundSpec]:
        s = self.s
        g = s.mapping(root["ground"], "ground")
        s.keys(g, "ground", allowed=_GROUND_KEYS, required=("size",))
        sx, sy = s.vector(g["size"], "ground.size", 2, names="[x, y] [m]")
        if not (0 < sx <= 2 * SITE_EXTENT_M and 0 < sy <= 2 * SITE_EXTENT_M):
            s.fail(f"ground size must be > 0 and <= {2 * SITE_EXTENT_M:g} m in both "
                   "directions", "ground.size")
        cx, cy = (0.0, 0.0)
        if g.get("center") is not None:
            cx, cy = s.vector(g["center"], "ground.center", 2, names="[x, y] [m]")
            s.bounded((cx, cy), "ground.center", ("x", "y"))
        rgba = self.rgba(g, "rgba", "ground", (0.5, 0.5, 0.48, 1.0))
        friction = s.number(s.optional(g, "friction", float, "ground", 0.8), "ground.friction",
                            min_value=0.0, max_value=MAX_FRICTION)
        return (Bounds(cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2),
                GroundSpec(rgba, friction))

    def lighting(self, raw: Any) -> tuple[str, Lighting]:
        s = self.s
        if raw is None:
            return "bright", LIGHTING_PRESETS["bright"]
        if isinstance(raw, str):
            raw = {"preset": raw}
        m = s.mapping(raw, "lighting")
        s.keys(m, "lighting", allowed=_LIGHT_KEYS)
        name = "bright"
        if m.get("preset") is not None:
            name = s.choice(m["preset"], LIGHTING_PRESETS, "lighting.preset",
                            what="lighting preset")
        base = LIGHTING_PRESETS[name]
        direction = base.direction
        if m.get("direction") is not None:
            d = s.vector(m["direction"], "lighting.direction", 3, names="[x, y, z]")
            if math.sqrt(sum(c * c for c in d)) < 1e-9:
                s.fail("direction must not be the zero vector", "lighting.direction")
            direction = unit_vector(d)
        color = base.color
        if m.get("color") is not None:
            c = s.vector(m["color"], "lighting.color", 3, names="[r, g, b] in [0, 1]")
            for i, ci in enumerate(c):
                if not 0.0 <= ci <= 1.0:
                    s.fail(f"colour components lie in [0, 1], got {ci:g}",
                           key_path("lighting.color", i))
            color = (c[0], c[1], c[2])
        coeffs = {}
        for k in ("ambient", "diffuse", "specular"):
            v = getattr(base, k)
            if m.get(k) is not None:
                v = s.number(m[k], key_path("lighting", k), min_value=0.0, max_value=1.0)
            coeffs[k] = v
        shadow = s.optional(m, "shadow", bool, "lighting", base.shadow)
        return name, Lighting(direction, color, coeffs["ambient"], coeffs["diffuse"],
                              coeffs["specular"], shadow)

    def in_bounds(self, x: float, y: float, where: str, what: str) -> None:
        if not self.bounds.contains(x, y):
            b = self.bounds
            self.s.fail(f"{what} ({x:g}, {y:g}) lies outside the ground "
                        f"x [{b.x_min:g}, {b.x_max:g}], y [{b.y_min:g}, {b.y_max:g}]", where)

    def bodies(self, root: Mapping[str, Any]) -> tuple[BodySpec, ...]:
        s = self.s
        out: list[BodySpec] = []
        seen: dict[str, str] = {}
        object_bodies: dict[str, str] = {}
        reg = self.registry
        assert reg is not None
        for where, m in self.items(root, "bodies"):
            s.keys(m, where, allowed=_BODY_KEYS, required=("id", "shape", "size", "pose"))
            ident = s.string(m["id"], key_path(where, "id"))
            if not ID_PATTERN.match(ident):
                s.fail(f"id {ident!r} must be snake_case", key_path(where, "id"))
            shape = Shape(s.choice(m["shape"], [x.value for x in Shape],
                                   key_path(where, "shape"), what="shape"))
            n, names = _SIZE_LEN[shape]
            size = s.vector(m["size"], key_path(where, "size"), n, names=names + " [m]")
            for i, v in enumerate(size):
                if not 0 < v <= SITE_EXTENT_M:
                    s.fail(f"sizes must be > 0 and <= {SITE_EXTENT_M:g} m, got {v:g}",
                           key_path(key_path(where, "size"), i))
            pose = self.pose3(m["pose"], key_path(where, "pose"))
            rgba = self.rgba(m, "rgba", where, _DEFAULT_RGBA)
            mass = s.number(s.optional(m, "mass", float, where, 0.0), key_path(where, "mass"),
                            min_value=0.0, max_value=MAX_MASS_KG)
            collision = s.optional(m, "collision", bool, where, True)
            asset = self.asset_ref(m, where, None, required=False)
            obj = None
            if m.get("object") is not None:
                ow = key_path(where, "object")
                obj = s.string(m["object"], ow)
                if obj not in {o.id for o in reg.objects}:
                    s.fail(f"unknown object {obj!r}; objects: "
                           + ", ".join(o.id for o in reg.objects), ow)
                if mass <= 0:
                    s.fail(f"object {obj!r} must be movable: give it a mass > 0 [kg]",
                           key_path(where, "mass"))
                if obj in object_bodies:
                    s.fail(f"object {obj!r} already has body {object_bodies[obj]!r}", ow)
                object_bodies[obj] = ident
            count, step = 1, (0.0, 0.0, 0.0)
            if m.get("repeat") is not None:
                rw = key_path(where, "repeat")
                r = s.mapping(m["repeat"], rw)
                s.keys(r, rw, allowed=_REPEAT_KEYS, required=_REPEAT_KEYS)
                count = s.integer(r["count"], key_path(rw, "count"), min_value=1,
                                  max_value=100)
                step = s.vector(r["step"], key_path(rw, "step"), 3, names="[dx, dy, dz] [m]")
                s.bounded(step, key_path(rw, "step"), ("x", "y", "z"))
                if obj is not None and count > 1:
                    s.fail("a body that is a registry object cannot repeat", rw)
            for k in range(count):
                bid = ident if count == 1 else f"{ident}_{k + 1}"
                if bid in seen:
                    s.fail(f"duplicate body id {bid!r} (first at {seen[bid]})",
                           key_path(where, "id"))
                seen[bid] = where
                p = pose.offset(k * step[0], k * step[1], k * step[2])
                self.in_bounds(p.x, p.y, key_path(where, "pose"), f"body {bid!r}")
                out.append(BodySpec(bid, shape, size, p, rgba, mass, collision, asset, obj))
        for o in reg.objects:
            if o.id not in object_bodies:
                s.fail(f"registry object {o.id!r} has no body in the world (add a body with "
                       f"'object: {o.id}' and a mass)", "bodies")
        return tuple(out)

    def fiducials(self, root: Mapping[str, Any]) -> tuple[FiducialSpec, ...]:
        s = self.s
        reg = self.registry
        assert reg is not None
        out: list[FiducialSpec] = []
        seen: dict[int, str] = {}
        asset_tags = {a.fiducial: a.id for a in reg.assets if a.fiducial is not None}
        for where, m in self.items(root, "fiducials"):
            s.keys(m, where, allowed=_FID_KEYS, required=("tag", "size", "pose"))
            tw = key_path(where, "tag")
            tag = s.integer(m["tag"], tw, min_value=0, max_value=APRILTAG_36H11_IDS - 1)
            if tag in seen:
                s.fail(f"duplicate fiducial id {tag} (first at {seen[tag]})", tw)
            seen[tag] = where
            size = s.number(m["size"], key_path(where, "size"), min_value=0.02,
                            max_value=2.0)
            pose = self.pose3(m["pose"], key_path(where, "pose"))
            self.in_bounds(pose.x, pose.y, key_path(where, "pose"), f"fiducial {tag}")
            asset = self.asset_ref(m, where, None, required=False)
            if asset is not None:
                want = reg.asset(asset).fiducial
                if want is None:
                    s.fail(f"asset {asset!r} has no 'fiducial' in the registry; set it to "
                           f"{tag}", key_path(where, "asset"))
                if want != tag:
                    s.fail(f"asset {asset!r} carries fiducial {want} in the registry, "
                           f"not {tag}", tw)
            elif tag in asset_tags:
                s.fail(f"fiducial {tag} belongs to asset {asset_tags[tag]!r} in the "
                       "registry; add 'asset'", tw)
            out.append(FiducialSpec(tag, size, pose, asset))
        for tag, aid in asset_tags.items():
            if tag not in seen:
                s.fail(f"asset {aid!r} carries fiducial {tag} in the registry but the world "
                       "has no such fiducial", "fiducials")
        self.check_markers(out, seen)
        return tuple(out)

    def check_markers(self, fiducials: Sequence[FiducialSpec], seen: Mapping[int, str]) -> None:
        """The registry's surveyed markers must be where the world puts its tags (1 mm,
        0.1 deg): localization trusts the survey, the simulator renders the world."""
        s = self.s
        reg = self.registry
        assert reg is not None
        by_tag = {f.tag_id: f for f in fiducials}
        for mk in reg.markers:
            f = by_tag.get(mk.tag)
            if f is None:
                s.fail(f"the site registry surveys marker {mk.tag} but the world has no "
                       "such fiducial", "fiducials")
                continue
            p = f.pose
            off = max(abs(p.x - mk.x), abs(p.y - mk.y), abs(p.z - mk.z))
            dyaw = abs(math.remainder(p.yaw - mk.yaw, math.tau))
            if (off > 1e-3 or dyaw > math.radians(0.1) or abs(p.roll) > 1e-6
                    or abs(p.pitch) > 1e-6 or abs(f.size_m - mk.size_m) > 1e-4):
                s.fail(f"fiducial {mk.tag} is at {p.position} yaw {p.yaw:.4f}, size "
                       f"{f.size_m:g} m, but the site registry surveys it at "
                       f"({mk.x}, {mk.y}, {mk.z}) yaw {mk.yaw:.4f}, size {mk.size_m:g} m",
                       seen[mk.tag])

    def gauges(self, root: Mapping[str, Any]) -> tuple[GaugeDialSpec, ...]:
        s = self.s
        reg = self.registry
        assert reg is not None
        out: list[GaugeDialSpec] = []
        seen: dict[str, str] = {}
        for where, m in self.items(root, "gauges"):
            s.keys(m, where, allowed=_GAUGE_KEYS, required=("asset", "pose", "radius", "value"))
            asset = self.asset_ref(m, where, AssetKind.GAUGE)
            assert asset is not None
            if asset in seen:
                s.fail(f"asset {asset!r} already has a dial at {seen[asset]}",
                       key_path(where, "asset"))
            seen[asset] = where
            spec = reg.asset(asset).gauge
            assert spec is not None
            pose = self.pose3(m["pose"], key_path(where, "pose"))
            self.in_bounds(pose.x, pose.y, key_path(where, "pose"), f"gauge {asset!r}")
            radius = s.number(m["radius"], key_path(where, "radius"), min_value=0.02,
                              max_value=1.0)
            vw = key_path(where, "value")
            value = s.number(m["value"], vw)
            if not spec.contains(value):
                s.fail(f"value {value:g} {spec.unit} lies outside the gauge's range "
                       f"[{spec.min_value:g}, {spec.max_value:g}] {spec.unit} (registry)", vw)
            start, end = 225.0, -45.0
            if m.get("sweep_deg") is not None:
                sw = key_path(where, "sweep_deg")
                start, end = s.vector(m["sweep_deg"], sw, 2, names="[start, end] [deg]")
                for i, a in enumerate((start, end)):
                    s.number(a, key_path(sw, i), min_value=-720.0, max_value=720.0)
                if not 10.0 <= abs(end - start) <= 350.0:
                    s.fail(f"the sweep |end - start| must lie in [10, 350] deg, got "
                           f"{abs(end - start):g}", sw)
            step = None
            if m.get("major_step") is not None:
                mw = key_path(where, "major_step")
                step = s.number(m["major_step"], mw, min_value=0.0, min_exclusive=True)
                intervals = (spec.max_value - spec.min_value) / step
                if not 1.0 <= intervals <= 20.0:
                    s.fail(f"major_step gives {intervals:g} intervals; accepted 1..20", mw)
            out.append(GaugeDialSpec(asset, pose, radius, value,
                                     DialSpec(spec.unit, spec.min_value, spec.max_value,
                                              start, end, step)))
        for a in reg.gauges:
            if a.id not in seen:
                s.fail(f"gauge asset {a.id!r} has no dial in the world", "gauges")
        return tuple(out)

    def valves(self, root: Mapping[str, Any]) -> tuple[ValveSpec, ...]:
        s = self.s
        reg = self.registry
        assert reg is not None
        out: list[ValveSpec] = []
        seen: dict[str, str] = {}
        for where, m in self.items(root, "valves"):
            s.keys(m, where, allowed=_VALVE_KEYS, required=("asset", "pose", "state"))
            asset = self.asset_ref(m, where, AssetKind.VALVE)
            assert asset is not None
            if asset in seen:
                s.fail(f"asset {asset!r} already has a valve at {seen[asset]}",
                       key_path(where, "asset"))
            seen[asset] = where
            pose = self.pose3(m["pose"], key_path(where, "pose"))
            self.in_bounds(pose.x, pose.y, key_path(where, "pose"), f"valve {asset!r}")
            state = ValveState(s.choice(m["state"], [v.value for v in ValveState],
                                        key_path(where, "state"), what="valve state"))
            length = s.number(s.optional(m, "handle_length", float, where, 0.25),
                              key_path(where, "handle_length"), min_value=0.05, max_value=1.0)
            out.append(ValveSpec(asset, pose, state, length))
        for a in reg.assets:
            if a.kind is AssetKind.VALVE and a.id not in seen:
                s.fail(f"valve asset {a.id!r} has no valve in the world", "valves")
        return tuple(out)

    def actors(self, root: Mapping[str, Any], body_ids: set[str]) -> tuple[ActorSpec, ...]:
        s = self.s
        out: list[ActorSpec] = []
        seen: dict[str, str] = {}
        for where, m in self.items(root, "actors"):
            s.keys(m, where, allowed=_ACTOR_KEYS, required=("id", "path", "speed"))
            iw = key_path(where, "id")
            ident = s.string(m["id"], iw)
            if not ID_PATTERN.match(ident):
                s.fail(f"id {ident!r} must be snake_case", iw)
            if ident in seen or ident in body_ids:
                s.fail(f"duplicate id {ident!r} (actors and bodies share ids)", iw)
            seen[ident] = where
            pw = key_path(where, "path")
            raw = s.seq(m["path"], pw, min_len=2)
            path = []
            for i, v in enumerate(raw):
                x, y = s.vector(v, key_path(pw, i), 2, names="[x, y] [m]")
                self.in_bounds(x, y, key_path(pw, i), f"actor {ident!r} waypoint")
                if path and math.hypot(x - path[-1][0], y - path[-1][1]) < 1e-6:
                    s.fail("repeats the previous waypoint", key_path(pw, i))
                path.append((x, y))
            loop = s.optional(m, "loop", bool, where, True)
            if loop and math.hypot(path[-1][0] - path[0][0], path[-1][1] - path[0][1]) < 1e-6:
                s.fail("with loop: true the path closes by itself; drop the repeated "
                       "first point", key_path(pw, len(path) - 1))
            speed = s.number(m["speed"], key_path(where, "speed"), min_value=0.0,
                             min_exclusive=True, max_value=MAX_ACTOR_SPEED_MPS)
            height = s.number(s.optional(m, "height", float, where, 1.75),
                              key_path(where, "height"), min_value=0.5, max_value=2.5)
            radius = s.number(s.optional(m, "radius", float, where, 0.225),
                              key_path(where, "radius"), min_value=0.1, max_value=0.6)
            delay = s.number(s.optional(m, "start_delay", float, where, 0.0),
                             key_path(where, "start_delay"), min_value=0.0,
                             max_value=_MAX_DELAY_S)
            yields = s.optional(m, "yields", bool, where, True)
            out.append(ActorSpec(ident, tuple(path), speed, loop, height, radius, delay,
                                 yields))
        return tuple(out)

    def spawn(self, root: Mapping[str, Any], spec: WorldSpec) -> dict[str, Pose2D]:
        s = self.s
        m = s.mapping(root["spawn"], "spawn")
        for name in ("robot1", "robot2"):
            if name not in m:
                s.fail(f"missing spawn pose {name!r}; robot1 and robot2 are required",
                       key_path("spawn", name))
        out: dict[str, Pose2D] = {}
        for name, raw in m.items():
            w = key_path("spawn", str(name))
            if not isinstance(name, str) or not ID_PATTERN.match(name):
                s.fail(f"robot name {name!r} must be snake_case", w)
            x, y, yaw = s.vector(raw, w, 3, names="[x, y, yaw]")
            s.bounded((x, y, yaw), w, ("x", "y", "yaw"))
            self.in_bounds(x, y, w, f"spawn pose {name!r}")
            if not spec.bounds.contains(x, y, ROBOT_RADIUS_M):
                s.fail(f"spawn pose {name!r} is closer than {ROBOT_RADIUS_M} m to the "
                       "ground's edge", w)
            for other, p in out.items():
                d = p.distance_to(x, y)
                if d < SPAWN_SEPARATION_M:
                    s.fail(f"spawn pose {name!r} is {d:.2f} m from {other!r}; spawn poses "
                           f"must be >= {SPAWN_SEPARATION_M} m apart", w)
            clearance, near = spec.clearance(x, y)
            if clearance < ROBOT_RADIUS_M:
                s.fail(f"spawn pose {name!r} overlaps {near!r} (clearance {clearance:.2f} m "
                       f"< robot radius {ROBOT_RADIUS_M} m)", w)
            for z in spec.registry.zones_at(x, y):
                if z.kind is ZoneKind.KEEP_OUT:
                    s.fail(f"spawn pose {name!r} lies inside keep-out zone {z.id!r}", w)
            out[name] = Pose2D(x, y, yaw)
        return out

    def check_free_space(self, spec: WorldSpec) -> None:
        """Registry places stand on free floor; actors' paths avoid static bodies."""
        s = self.s
        for p in spec.registry.places:
            if not spec.bounds.contains(p.x, p.y, ROBOT_RADIUS_M):
                s.fail(f"place {p.id!r} ({p.x:g}, {p.y:g}) of the registry lies outside the "
                       "ground or too near its edge", "site")
            clearance, near = spec.clearance(p.x, p.y)
            if clearance < ROBOT_RADIUS_M:
                s.fail(f"place {p.id!r} ({p.x:g}, {p.y:g}) of the registry is not free floor: "
                       f"{clearance:.2f} m from {near!r} (< robot radius {ROBOT_RADIUS_M} m)",
                       "site")
        feet = spec.obstacle_footprints()
        for i, a in enumerate(spec.actors):
            pts = list(a.path) + ([a.path[0]] if a.loop else [])
            for j, (p0, p1) in enumerate(pairwise(pts)):
                length = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
                n = max(1, math.ceil(length / 0.1))
                for k in range(n + 1):
                    x = p0[0] + (p1[0] - p0[0]) * k / n
                    y = p0[1] + (p1[1] - p0[1]) * k / n
                    for f in feet:
                        if f.distance(x, y) < a.radius_m:
                            s.fail(f"actor {a.id!r} walks through {f.source!r} near "
                                   f"({x:.2f}, {y:.2f}) on the leg from waypoint {j}",
                                   key_path(key_path(key_path("actors", i), "path"), j))

