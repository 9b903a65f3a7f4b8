"""Site bundles (no ROS, no simulator): the one folder a robot carries for its site.

A bundle is what the autonomy stack knows about a site; it never sees a simulation world::

    <site>/
      bundle.yaml          format, site id, named start poses, the default start
      site.yaml            the site registry (places, assets, objects, zones, routes, docks,
                           surveyed markers; schema: sitebot.site.registry)
      map.yaml, map.pgm    the occupancy map, nav2 map_server format (sitebot.site.mapfile)
      keepout_mask.yaml/.pgm   the keep-out zones as a nav2 costmap-filter mask (optional;
                           for Nav2 users: sitebot rasterises the zones of site.yaml itself)
      scene.yaml           static collision objects near assets, for the arm (optional)
      gauges.yaml          dial layouts of the gauges relative to their tags (optional)

``bundle.yaml``::

    format: 1
    site: substation                   # must equal site.yaml's site
    description: ...                   # optional
    source: {world: substation.world.yaml}   # optional, informational strings
    initial_pose: robot1               # optional default start: a start, place or dock id
    starts: {robot1: [x, y, yaw], ..}  # optional named start poses (map frame)

``scene.yaml``::

    objects:
      - {id: t1_tank, shape: box, size: [sx, sy, sz], xyz: [x, y, z], rpy: [r, p, y]}
      - {id: post, shape: cylinder, size: [radius, length], xyz: [..], rpy: [..]}
      - {id: knob, shape: sphere, size: [radius], xyz: [..]}

:func:`load_bundle` checks everything it loads and raises a
:class:`~sitebot.errors.BundleError` (or :class:`~sitebot.errors.RegistryError` for
site.yaml) naming the file and the key: a missing file or image, a malformed map, a start
or place in an occupied or unknown cell of the map, a marker or zone off the map.  A node
never starts on a bad bundle.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.errors import BundleError
from sitebot.paths import data_path
from sitebot.site.loader import load_registry
from sitebot.site.mapfile import SiteMap, load_map
from sitebot.site.occupancy import OccupancyGrid, inflate, mark_keep_out, resample
from sitebot.site.registry import Dock, Place, SiteRegistry
from sitebot.types import Pose2D

__all__ = ["SiteBundle", "SceneObject", "load_bundle", "check_registry", "resolve_site",
           "installed_sites", "BUNDLE_FORMAT", "BUNDLE_FILE", "REGISTRY_FILE", "MAP_FILE",
           "MASK_FILE", "SCENE_FILE", "GAUGES_FILE", "SITE_PATH_ENV", "parse_pose_text"]

BUNDLE_FORMAT = 1
BUNDLE_FILE, REGISTRY_FILE, MAP_FILE = "bundle.yaml", "site.yaml", "map.yaml"
MASK_FILE, SCENE_FILE, GAUGES_FILE = "keepout_mask.yaml", "scene.yaml", "gauges.yaml"
#: folders (os.pathsep-separated) searched for installed sites before share/sitebot/sites
SITE_PATH_ENV = "SITEBOT_SITE_PATH"
_BUNDLE_KEYS = ("format", "site", "description", "source", "initial_pose", "starts")
_SCENE_KEYS = ("id", "shape", "size", "xyz", "rpy")
_SHAPE_SIZES = {"box": (3, "[x, y, z] [m]"), "cylinder": (2, "[radius, length] [m]"),
                "sphere": (1, "[radius] [m]")}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SceneObject:
    """A static collision object of the site (map frame): ``shape`` box (``size`` = full
    edges), cylinder (radius, length along its z) or sphere (radius); ``xyz`` its centre
    and ``rpy`` its orientation (fixed-axis roll, pitch, yaw) [m, rad]."""
    id: str
    shape: str
    size: tuple[float, ...]
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class SiteBundle:
    """A loaded, checked site bundle (see the module docstring)."""
    folder: Path
    site: str
    registry: SiteRegistry
    map: SiteMap
    starts: Mapping[str, Pose2D]
    default_start: str = ""
    description: str = ""
    source: Mapping[str, str] = field(default_factory=dict)
    scene: tuple[SceneObject, ...] = ()
    gauges_file: Path | None = None
    mask_file: Path | None = None

    @property
    def id(self) -> str:
        return self.site

    def file(self, name: str) -> Path:
        return self.folder / name

    # ------------------------------------------------------------------ maps
    def occupancy_grid(self, resolution_m: float | None = None, inflate_m: float = 0.0,
                       keep_out: bool = False, unknown_occupied: bool = True) -> OccupancyGrid:
        """The mapped structure (unknown cells count as occupied unless
        ``unknown_occupied`` is off) grown by ``inflate_m`` [m] at the map's resolution, then
        on cells of ``resolution_m`` (default the map's; a coarser cell is occupied when any
        finer cell in it is); with ``keep_out`` the registry's keep-out zones too."""
        g = self.map.occupancy(unknown_occupied)
        if inflate_m > 0.0:
            g = OccupancyGrid(g.origin_x, g.origin_y, g.resolution_m,
                              inflate(g.occupied, g.resolution_m, inflate_m))
        if resolution_m is not None:
            g = resample(g, resolution_m)
        if keep_out:
            occ = g.occupied.copy()
            mark_keep_out(occ, g.origin_x, g.origin_y, g.resolution_m, self.registry.zones)
            occ.setflags(write=False)
            g = OccupancyGrid(g.origin_x, g.origin_y, g.resolution_m, occ)
        return g

    def static_map(self, resolution_m: float = 0.1, inflate_m: float = 0.0) -> OccupancyGrid:
        """:meth:`occupancy_grid` without keep-out zones, and with unknown cells *not*
        counted as structure (the supervisor's static map: a person-sized cluster on mapped
        structure is structure, one in an unmapped area stays a possible person)."""
        return self.occupancy_grid(resolution_m, inflate_m, keep_out=False,
                                   unknown_occupied=False)

    def keep_out_mask(self) -> np.ndarray:
        """nav_msgs values on the map's grid: 100 in keep-out zones, 0 elsewhere (what a
        nav2 keepout filter reads)."""
        occ = np.zeros(self.map.values.shape, dtype=bool)
        mark_keep_out(occ, self.map.origin_x, self.map.origin_y, self.map.resolution_m,
                      self.registry.zones)
        return np.where(occ, 100, 0).astype(np.int8)

    # ------------------------------------------------------------------ poses
    def initial_pose(self, spec: str = "", parameter: str = "initial_pose") -> Pose2D:
        """The robot's initial map pose from ``spec``: '' = the bundle's default start
        (``initial_pose`` of bundle.yaml, else its first dock); a start, place or dock id;
        or three numbers ``"x y yaw"`` (commas allowed) [m, rad].

        :raises BundleError: naming ``parameter`` and what the bundle offers."""
        spec = (spec or "").strip()
        if not spec:
            if self.default_start:
                spec = self.default_start
            elif self.registry.docks:
                return Pose2D.of(self.registry.dock_place(self.registry.docks[0].id).pose)
            else:
                raise BundleError(f"parameter '{parameter}' is empty and the bundle names "
                                  "no default start and no dock; give a start, place or "
                                  "dock id or 'x y yaw'", file=self.file(BUNDLE_FILE))
        pose = parse_pose_text(spec)
        if pose is not None:
            return pose
        if spec in self.starts:
            return self.starts[spec]
        ent = self.registry.get(spec)
        if isinstance(ent, Place):
            return Pose2D.of(ent.pose)
        if isinstance(ent, Dock):
            return Pose2D.of(self.registry.dock_place(spec).pose)
        offered = sorted(self.starts) + [p.id for p in self.registry.places]
        raise BundleError(f"parameter '{parameter}': {spec!r} is neither 'x y yaw' nor a "
                          f"start, place or dock of site '{self.site}'; starts and places: "
                          + ", ".join(offered[:40]), file=self.file(BUNDLE_FILE))


def parse_pose_text(text: str) -> Pose2D | None:
    """``"x y yaw"`` or ``"x, y, yaw"`` as a finite Pose2D; None when ``text`` is not three
    numbers."""
    parts = [p for p in re.split(r"[\s,]+", text.strip().strip("[]()")) if p]
    if len(parts) != 3:
        return None
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in vals):
        raise BundleError(f"initial pose {text!r} is not finite")
    return Pose2D(*vals)


# ------------------------------------------------------------------------- finding sites
def _site_dirs() -> list[Path]:
    env = os.environ.get(SITE_PATH_ENV, "")
    return [Path(p) for p in env.split(os.pathsep) if p] + [data_path("sites")]


def installed_sites() -> dict[str, Path]:
    """Installed bundles by name (the folders of ``$SITEBOT_SITE_PATH`` first, then
    ``share/sitebot/sites``)."""
    out: dict[str, Path] = {}
    for d in _site_dirs():
        if d.is_dir():
            for sub in sorted(d.iterdir()):
                if (sub / BUNDLE_FILE).is_file():
                    out.setdefault(sub.name, sub)
    return out


def resolve_site(spec: str | os.PathLike, parameter: str = "site") -> Path:
    """The folder of a bundle given as a folder path or an installed site's name."""
    text = os.fspath(spec).strip() if spec is not None else ""
    if not text:
        raise BundleError(f"parameter '{parameter}' is empty; give a site bundle folder or "
                          f"an installed site: {', '.join(installed_sites()) or 'none'}")
    p = Path(text).expanduser()
    if p.is_dir() or os.sep in text or text.startswith("."):
        if not (p / BUNDLE_FILE).is_file():
            what = "is not a folder" if not p.is_dir() else f"has no {BUNDLE_FILE}"
            raise BundleError(f"parameter '{parameter}': {text!r} {what}; a site bundle is "
                              f"a folder with {BUNDLE_FILE}, {REGISTRY_FILE} and {MAP_FILE}")
        return p
    if not _NAME.match(text):
        raise BundleError(f"parameter '{parameter}': {text!r} is not a folder nor a site name")
    sites = installed_sites()
    if text not in sites:
        raise BundleError(f"parameter '{parameter}': no installed site {text!r}; installed: "
                          f"{', '.join(sites) or 'none'} (run 'sitebot site export' or "
                          "'make setup' to install the shipped sites)")
    return sites[text]


# ------------------------------------------------------------------------- loading
def load_bundle(spec: str | os.PathLike) -> SiteBundle:
    """Load and check the bundle ``spec`` (a folder or an installed site name)."""
    folder = resolve_site(spec)
    bfile = folder / BUNDLE_FILE
    s = Schema(bfile, BundleError)
    root = load_yaml(bfile, error=BundleError)
    if root is None:
        s.fail("the file is empty; expected format and site", None)
    m = s.mapping(root, "")
    s.keys(m, "", allowed=_BUNDLE_KEYS, required=("format", "site"))
    fmt = s.integer(m["format"], "format")
    if fmt != BUNDLE_FORMAT:
        s.fail(f"format {fmt} is not supported; this sitebot reads format {BUNDLE_FORMAT}",
               "format")
    site = s.string(m["site"], "site")
    for name in (REGISTRY_FILE, MAP_FILE):
        if not (folder / name).is_file():
            s.fail(f"the bundle has no {name} (expected {folder / name})", None)
    registry = load_registry(folder / REGISTRY_FILE)
    smap = load_map(folder / MAP_FILE)
    starts: dict[str, Pose2D] = {}
    for name, raw in (s.mapping(m["starts"], "starts") if m.get("starts") else {}).items():
        where = key_path("starts", str(name))
        if not isinstance(name, str) or not _NAME.match(name):
            s.fail("a start's name must be a word (letters, digits, _ . -)", where)
        starts[name] = Pose2D(*s.vector(raw, where, 3, names="[x, y, yaw]"))
    desc = s.string(m["description"], "description") if m.get("description") else ""
    source = {}
    if m.get("source") is not None:
        src = s.mapping(m["source"], "source")
        source = {str(k): s.string(v, key_path("source", str(k))) for k, v in src.items()}
    default = s.string(m["initial_pose"], "initial_pose") if m.get("initial_pose") else ""
    scene: tuple[SceneObject, ...] = ()
    if (folder / SCENE_FILE).is_file():
        scene = _load_scene(folder / SCENE_FILE)
    b = SiteBundle(folder, site, registry, smap, MappingProxyType(starts), default, desc,
                   MappingProxyType(source), scene,
                   folder / GAUGES_FILE if (folder / GAUGES_FILE).is_file() else None,
                   folder / MASK_FILE if (folder / MASK_FILE).is_file() else None)
    return check_registry(b, registry)


def check_registry(bundle: SiteBundle, registry: SiteRegistry) -> SiteBundle:
    """``bundle`` with ``registry`` as its site.yaml, checked as :func:`load_bundle` checks
    site.yaml against the rest of the bundle: the site id, places and starts in free cells,
    markers and zone vertices on the map, the default start (the site editor checks each
    candidate registry with it).

    :raises BundleError: (``RegistryError`` for site.yaml) naming the file and the key."""
    s = Schema(bundle.folder / BUNDLE_FILE, BundleError)
    if registry.site != bundle.site:
        s.fail(f"site {bundle.site!r} differs from {REGISTRY_FILE}'s site {registry.site!r}",
               "site")
    b = replace(bundle, registry=registry)
    _check_against_map(b, s)
    if b.default_start:
        b.initial_pose(b.default_start, parameter=f"{BUNDLE_FILE}: initial_pose")
    return b


def _load_scene(path: Path) -> tuple[SceneObject, ...]:
    s = Schema(path, BundleError)
    root = load_yaml(path, error=BundleError)
    if root is None:
        return ()
    m = s.mapping(root, "")
    s.keys(m, "", allowed=("objects",))
    out, seen = [], set()
    for i, raw in enumerate(s.seq(m.get("objects") or [], "objects")):
        where = key_path("objects", i)
        o = s.mapping(raw, where)
        s.keys(o, where, allowed=_SCENE_KEYS, required=("id", "shape", "size", "xyz"))
        oid = s.string(o["id"], key_path(where, "id"))
        if oid in seen:
            s.fail(f"id {oid!r} is used twice", key_path(where, "id"))
        seen.add(oid)
        shape = s.choice(o["shape"], _SHAPE_SIZES, key_path(where, "shape"), what="shape")
        n, names = _SHAPE_SIZES[shape]
        size = s.vector(o["size"], key_path(where, "size"), n, names=names)
        if min(size) <= 0.0:
            s.fail(f"sizes must be positive, got {list(size)}", key_path(where, "size"))
        xyz = s.vector(o["xyz"], key_path(where, "xyz"), 3, names="[x, y, z] [m]")
        s.bounded(xyz, key_path(where, "xyz"), ("x", "y", "z"))
        rpy = (0.0, 0.0, 0.0)
        if o.get("rpy") is not None:
            rpy = s.vector(o["rpy"], key_path(where, "rpy"), 3, names="[roll, pitch, yaw]")
            s.bounded(rpy, key_path(where, "rpy"), ("roll", "pitch", "yaw"))
        out.append(SceneObject(oid, shape, size, xyz, rpy))
    return tuple(out)


def _check_against_map(b: SiteBundle, s: Schema) -> None:
    """Places and starts in free cells, markers and zones on the map."""
    reg = Schema(b.registry.file or b.folder / REGISTRY_FILE, BundleError)
    smap = b.map

    def cell_value(x: float, y: float) -> int:
        r = math.floor((y - smap.origin_y) / smap.resolution_m)
        c = math.floor((x - smap.origin_x) / smap.resolution_m)
        return int(smap.values[r, c])

    def check_free(x: float, y: float, sch: Schema, where: str, what: str) -> None:
        if not smap.contains(x, y):
            sch.fail(f"{what} ({x:g}, {y:g}) lies off the map ({_extent(smap)})", where)
        v = cell_value(x, y)
        if v < 0 or v >= 65:
            state = "unknown" if v < 0 else "occupied"
            sch.fail(f"{what} ({x:g}, {y:g}) lies in an {state} cell of {MAP_FILE}", where)

    for i, p in enumerate(b.registry.places):
        check_free(p.pose[0], p.pose[1], reg, key_path(key_path("places", i), "pose"),
                   f"place {p.id!r}")
    for name, pose in b.starts.items():
        check_free(pose[0], pose[1], s, key_path("starts", name), f"start {name!r}")
    for i, mk in enumerate(b.registry.markers):
        if not smap.contains(mk.x, mk.y):
            reg.fail(f"marker {mk.tag} at ({mk.x:g}, {mk.y:g}) lies off the map "
                     f"({_extent(smap)})", key_path(key_path("markers", i), "pose"))
    for i, z in enumerate(b.registry.zones):
        for j, (x, y) in enumerate(z.polygon):
            if not smap.contains(x, y):
                reg.fail(f"zone {z.id!r}: vertex ({x:g}, {y:g}) lies off the map "
                         f"({_extent(smap)})",
                         key_path(key_path(key_path("zones", i), "polygon"), j))


def _extent(smap: SiteMap) -> str:
    return (f"x {smap.origin_x:g}..{smap.origin_x + smap.width * smap.resolution_m:g}, "
            f"y {smap.origin_y:g}..{smap.origin_y + smap.height * smap.resolution_m:g} m")
