"""World (scene) files: what the simulator builds for one site, checked on load.

A world file ``worlds/<id>.world.yaml`` names its site registry (``<id>.site.yaml``) and
adds what only a simulator needs: ground, lighting, robot spawn poses, primitive bodies,
AprilTag fiducials, gauge dials, valves and walking people.  The format is documented in
``docs/worlds.md``.  This module is the world model: pure data and geometry (no PyBullet,
no OpenCV); :mod:`sitebot.sim.world_loader` reads and checks a file into a
:class:`WorldSpec`, and :mod:`sitebot.sim.scene` builds one into a PyBullet client.

Conventions: metres, radians, seconds; x east, y north, z up (REP-103).  A 3-D pose is
``[x, y, z]``, ``[x, y, z, yaw]`` or ``[x, y, z, roll, pitch, yaw]`` with the rotation
``R = Rz(yaw) Ry(pitch) Rx(roll)`` (as PyBullet's ``getQuaternionFromEuler``).  Flat things
that face somewhere (fiducials, gauge dials) show their face along their local +x axis with
local +z as "up", so ``yaw`` alone says where a vertical tag or dial looks.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from sitebot.config.checks import check_range, finite_vector
from sitebot.site.occupancy import OccupancyGrid, mark_keep_out
from sitebot.site.registry import SiteRegistry
from sitebot.types import Pose2D, rpy_matrix, rpy_to_quaternion

__all__ = [
    "Shape", "ValveState", "Pose3D", "Lighting", "LIGHTING_PRESETS", "Bounds", "GroundSpec",
    "BodySpec", "Footprint", "FiducialSpec", "DialSpec", "GaugeDialSpec", "ValveSpec",
    "PersonState", "ActorSpec", "OccupancyGrid", "WorldSpec", "unit_vector",
    "ROBOT_RADIUS_M", "OBSTACLE_MAX_Z_M", "SPAWN_SEPARATION_M", "MAX_ACTOR_SPEED_MPS",
    "TAG_QUIET_ZONE_MODULES", "TAG_MODULES",
]

#: Radius [m] of the disc that holds a 0.6 m wide robot, with 5 cm to spare.
ROBOT_RADIUS_M = 0.35
#: Bodies whose lowest point lies below this height [m] obstruct the robot.
OBSTACLE_MAX_Z_M = 1.8
#: Minimum distance [m] between two spawn poses.
SPAWN_SEPARATION_M = 1.0
#: Fastest a scripted person may walk [m/s].
MAX_ACTOR_SPEED_MPS = 3.0
#: White modules around a tag's black border in its texture (the quiet zone).
TAG_QUIET_ZONE_MODULES = 1
#: Modules across the black square of a 36h11 tag (6 data + 2 border).
TAG_MODULES = 8


# ---------------------------------------------------------------------------------------
# value types
# ---------------------------------------------------------------------------------------
class Shape(str, enum.Enum):
    """Primitive shapes: BOX ``size [x, y, z]`` (full edges), CYLINDER ``size [radius,
    height]`` (axis local z), SPHERE ``size [radius]`` (all [m])."""
    BOX = "box"
    CYLINDER = "cylinder"
    SPHERE = "sphere"


class ValveState(str, enum.Enum):
    """A quarter-turn valve: OPEN has the handle along the pipe, CLOSED across it."""
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Pose3D:
    """Position [m] and roll/pitch/yaw [rad], ``R = Rz(yaw) Ry(pitch) Rx(roll)``."""
    x: float
    y: float
    z: float
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    @property
    def position(self) -> tuple[float, float, float]:
        """(x, y, z) [m]."""
        return (self.x, self.y, self.z)

    def quaternion(self) -> tuple[float, float, float, float]:
        """Orientation as (x, y, z, w), PyBullet's order."""
        return rpy_to_quaternion(self.roll, self.pitch, self.yaw)

    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix (local -> world)."""
        return rpy_matrix(self.roll, self.pitch, self.yaw)

    def apply(self, local: Sequence[float]) -> tuple[float, float, float]:
        """A point given in this pose's frame [m], in the parent frame [m]."""
        p = self.rotation() @ np.asarray(local, dtype=float) + np.array(self.position)
        return (float(p[0]), float(p[1]), float(p[2]))

    def offset(self, dx: float, dy: float, dz: float) -> Pose3D:
        """This pose moved by (dx, dy, dz) [m] in the parent frame."""
        return Pose3D(self.x + dx, self.y + dy, self.z + dz, self.roll, self.pitch, self.yaw)


@dataclass(frozen=True)
class Lighting:
    """How a camera image is lit (the parameters of PyBullet's ``getCameraImage``); the
    defaults are bright, even daylight (what a camera renders with when given none).

    :ivar direction: vector from the scene towards the light [-] (``lightDirection``; the
        world's presets and files give a unit vector); not the zero vector.
    :ivar color: light colour, RGB in [0, 1] (``lightColor``).
    :ivar ambient: ambient coefficient [0, 1] (``lightAmbientCoeff``).
    :ivar diffuse: diffuse coefficient [0, 1] (``lightDiffuseCoeff``).
    :ivar specular: specular coefficient [0, 1] (``lightSpecularCoeff``); high = glare.
    :ivar shadow: whether shadows are cast (``shadow``; slower).
    :raises ValueError: a non-finite or zero direction, or a value outside [0, 1].
    """
    direction: tuple[float, float, float] = (0.4, 0.3, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.5
    specular: float = 0.05
    shadow: bool = False

    def __post_init__(self) -> None:
        d = finite_vector("Lighting.direction", self.direction, 3)
        if np.linalg.norm(d) == 0.0:
            raise ValueError("Lighting.direction must not be the zero vector")
        c = finite_vector("Lighting.color", self.color, 3)
        if c.min() < 0.0 or c.max() > 1.0:
            raise ValueError(f"Lighting.color={self.color!r}: accepted: each in [0, 1]")
        object.__setattr__(self, "direction", tuple(float(v) for v in d))
        object.__setattr__(self, "color", tuple(float(v) for v in c))
        for name in ("ambient", "diffuse", "specular"):
            check_range("Lighting", name, getattr(self, name), 0.0, 1.0)

    def camera_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pybullet.getCameraImage``."""
        return {"lightDirection": list(self.direction), "lightColor": list(self.color),
                "lightAmbientCoeff": self.ambient, "lightDiffuseCoeff": self.diffuse,
                "lightSpecularCoeff": self.specular, "shadow": int(self.shadow)}


def unit_vector(v: Sequence[float]) -> tuple[float, float, float]:
    """*v* (3 numbers, not all zero) scaled to length 1."""
    n = math.sqrt(sum(c * c for c in v))
    return (v[0] / n, v[1] / n, v[2] / n)


#: Built-in lighting presets.  ``low_sun`` is a low, warm sun with strong specular glare;
#: ``coloured`` a sodium-orange floodlight.
LIGHTING_PRESETS: Mapping[str, Lighting] = MappingProxyType({
    "bright": Lighting(unit_vector((0.4, 0.3, 1.0)), (1.0, 1.0, 1.0), 0.6, 0.45, 0.05, False),
    "dim": Lighting(unit_vector((0.2, 0.2, 1.0)), (0.55, 0.55, 0.6), 0.25, 0.3, 0.02, False),
    "low_sun": Lighting(unit_vector((1.0, 0.25, 0.15)), (1.0, 0.85, 0.65), 0.35, 0.8, 0.9, True),
    "coloured": Lighting(unit_vector((-0.3, 0.5, 1.0)), (1.0, 0.62, 0.3), 0.45, 0.45, 0.1, False),
})


@dataclass(frozen=True)
class Bounds:
    """The ground's extent [m]: x in [x_min, x_max], y in [y_min, y_max]."""
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """True when (x, y) lies inside, at least *margin* [m] from the edge."""
        return (self.x_min + margin <= x <= self.x_max - margin
                and self.y_min + margin <= y <= self.y_max - margin)

    @property
    def size(self) -> tuple[float, float]:
        """(width along x, depth along y) [m]."""
        return (self.x_max - self.x_min, self.y_max - self.y_min)

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) [m]."""
        return ((self.x_min + self.x_max) / 2, (self.y_min + self.y_max) / 2)


@dataclass(frozen=True)
class GroundSpec:
    """Ground colour (RGBA in [0, 1]) and friction coefficient [-]."""
    rgba: tuple[float, float, float, float]
    friction: float


@dataclass(frozen=True)
class Footprint:
    """A body's shadow on the floor: a rectangle (centre, half extents [m], yaw [rad]) or,
    when ``radius_m`` is set, a disc; plus its height range [m]."""
    cx: float
    cy: float
    half_x: float
    half_y: float
    yaw: float
    z_min: float
    z_max: float
    radius_m: float | None = None
    source: str = ""

    def distance(self, x: float, y: float) -> float:
        """Signed distance [m] from (x, y) to the footprint (negative inside)."""
        dx, dy = x - self.cx, y - self.cy
        if self.radius_m is not None:
            return math.hypot(dx, dy) - self.radius_m
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        lx, ly = abs(c * dx + s * dy) - self.half_x, abs(-s * dx + c * dy) - self.half_y
        if lx <= 0 and ly <= 0:
            return max(lx, ly)
        return math.hypot(max(lx, 0.0), max(ly, 0.0))

    def distance_grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """:meth:`distance` over arrays of coordinates (broadcast)."""
        dx, dy = xs - self.cx, ys - self.cy
        if self.radius_m is not None:
            return np.hypot(dx, dy) - self.radius_m
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        lx = np.abs(c * dx + s * dy) - self.half_x
        ly = np.abs(-s * dx + c * dy) - self.half_y
        outside = np.hypot(np.maximum(lx, 0.0), np.maximum(ly, 0.0))
        return np.where((lx <= 0) & (ly <= 0), np.maximum(lx, ly), outside)


def _box_footprint(half: Sequence[float], pose: Pose3D, source: str) -> Footprint:
    """Footprint of a box of half extents *half* at *pose*: the tightest rectangle aligned
    with the pose's yaw holding its 8 corners."""
    corners = np.array([[sx * half[0], sy * half[1], sz * half[2]]
                        for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    world = corners @ pose.rotation().T + np.array(pose.position)
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    rel = world[:, :2] - np.array([pose.x, pose.y])
    u = rel @ np.array([c, s])
    v = rel @ np.array([-s, c])
    uc, vc = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
    return Footprint(pose.x + c * uc - s * vc, pose.y + s * uc + c * vc,
                     float((u.max() - u.min()) / 2), float((v.max() - v.min()) / 2),
                     pose.yaw, float(world[:, 2].min()), float(world[:, 2].max()),
                     source=source)


@dataclass(frozen=True)
class BodySpec:
    """A primitive body.  ``mass_kg == 0`` means static.  ``collision False`` makes it
    visual only (floor markings).  ``asset``/``object`` link it to a registry entity."""
    id: str
    shape: Shape
    size: tuple[float, ...]
    pose: Pose3D
    rgba: tuple[float, float, float, float]
    mass_kg: float = 0.0
    collision: bool = True
    asset: str | None = None
    object: str | None = None

    @property
    def static(self) -> bool:
        """True for mass 0 (never moves)."""
        return self.mass_kg == 0.0

    @property
    def half_extents(self) -> tuple[float, float, float]:
        """Half extents [m] of the body's local bounding box."""
        if self.shape is Shape.BOX:
            return (self.size[0] / 2, self.size[1] / 2, self.size[2] / 2)
        if self.shape is Shape.CYLINDER:
            return (self.size[0], self.size[0], self.size[1] / 2)
        return (self.size[0], self.size[0], self.size[0])

    def footprint(self) -> Footprint:
        """The body's footprint on the floor."""
        p = self.pose
        upright = abs(math.sin(p.roll)) < 1e-9 and abs(math.sin(p.pitch)) < 1e-9
        if self.shape is Shape.SPHERE or (self.shape is Shape.CYLINDER and upright):
            r = self.size[0]
            h = r if self.shape is Shape.SPHERE else self.size[1] / 2
            return Footprint(p.x, p.y, r, r, 0.0, p.z - h, p.z + h, radius_m=r,
                             source=self.id)
        return _box_footprint(self.half_extents, p, self.id)


@dataclass(frozen=True)
class FiducialSpec:
    """An AprilTag 36h11 marker.  ``size_m`` is the edge of the black square; the white
    quiet zone of :data:`TAG_QUIET_ZONE_MODULES` modules lies outside it.  ``pose`` is the
    centre of the tag face; the face looks along local +x, local +z is the tag's "up"."""
    tag_id: int
    size_m: float
    pose: Pose3D
    asset: str | None = None
    family: str = "tag36h11"

    @property
    def outer_size_m(self) -> float:
        """Edge [m] of the printed square including the quiet zone."""
        return self.size_m * (TAG_MODULES + 2 * TAG_QUIET_ZONE_MODULES) / TAG_MODULES

    def corners(self) -> tuple[tuple[float, float, float], ...]:
        """World coordinates [m] of the black square's corners in detector order
        (top-left, top-right, bottom-right, bottom-left as seen facing the tag)."""
        h = self.size_m / 2
        return tuple(self.pose.apply(c) for c in
                     ((0, -h, h), (0, h, h), (0, h, -h), (0, -h, -h)))

    @property
    def normal(self) -> tuple[float, float, float]:
        """Unit vector the tag face looks along (world frame)."""
        r = self.pose.rotation()
        return (float(r[0, 0]), float(r[1, 0]), float(r[2, 0]))


@dataclass(frozen=True)
class DialSpec:
    """How a gauge's dial face is printed.

    Angles are in degrees on the face seen from the front, counter-clockwise from
    "3 o'clock" (so 90 = 12 o'clock).  The needle points at ``start_deg`` for
    ``min_value`` and at ``end_deg`` for ``max_value``, linearly in between; the default
    270 deg sweep runs clockwise from 7:30 to 4:30.  ``major_step`` is the value between
    numbered ticks (None: chosen for 4-10 intervals)."""
    unit: str
    min_value: float
    max_value: float
    start_deg: float = 225.0
    end_deg: float = -45.0
    major_step: float | None = None

    @property
    def sweep_deg(self) -> float:
        """Signed sweep (end - start) [deg]; negative = clockwise."""
        return self.end_deg - self.start_deg


@dataclass(frozen=True)
class GaugeDialSpec:
    """A gauge dial in the world: ``pose`` is the centre of the face (looking along local
    +x, 12 o'clock towards local +z), ``radius_m`` the dial's outer radius, ``value`` what
    the needle shows (in ``face.unit``)."""
    asset: str
    pose: Pose3D
    radius_m: float
    value: float
    face: DialSpec


@dataclass(frozen=True)
class ValveSpec:
    """A quarter-turn valve: ``pose`` is the valve body's centre, the pipe runs along local
    x, the stem points up local +z; the lever (``handle_length_m``) lies along local x when
    OPEN and along local y when CLOSED."""
    asset: str
    pose: Pose3D
    state: ValveState
    handle_length_m: float = 0.25


@dataclass(frozen=True)
class PersonState:
    """Ground truth of a person: position [m] and velocity [m/s] in the map frame."""
    id: str
    x: float
    y: float
    vx: float
    vy: float

    @property
    def speed_mps(self) -> float:
        """Speed [m/s]."""
        return math.hypot(self.vx, self.vy)


@dataclass(frozen=True)
class ActorSpec:
    """A scripted person walking along ``path`` (x, y) [m] at ``speed_mps``.

    After ``start_delay_s`` standing at the first point, the person walks the path; with
    ``loop`` they walk back to the first point and repeat forever, otherwise they stop at
    the last point.  ``height_m`` is the top of the head, ``radius_m`` half the body width.
    """
    id: str
    path: tuple[tuple[float, float], ...]
    speed_mps: float
    loop: bool = True
    height_m: float = 1.75
    radius_m: float = 0.225
    start_delay_s: float = 0.0
    yields: bool = True

    def _segments(self) -> list[tuple[tuple[float, float], tuple[float, float], float]]:
        pts = list(self.path)
        if self.loop:
            pts.append(pts[0])
        return [(a, b, math.hypot(b[0] - a[0], b[1] - a[1])) for a, b in pairwise(pts)]

    @property
    def length_m(self) -> float:
        """Length [m] of one pass (one lap for a loop)."""
        return sum(seg[2] for seg in self._segments())

    @property
    def period_s(self) -> float:
        """Time [s] for one pass (one lap for a loop)."""
        return self.length_m / self.speed_mps

    def state_at(self, t_s: float) -> PersonState:
        """Where the person is at sim time *t_s* [s] (deterministic)."""
        segs = self._segments()
        total = sum(seg[2] for seg in segs)
        walked = self.speed_mps * max(0.0, t_s - self.start_delay_s)
        if self.loop:
            walked = math.fmod(walked, total)
        elif walked >= total:
            x, y = self.path[-1]
            return PersonState(self.id, x, y, 0.0, 0.0)
        moving = t_s >= self.start_delay_s
        for (ax, ay), (bx, by), length in segs:
            if walked <= length:
                f = walked / length
                ux, uy = (bx - ax) / length, (by - ay) / length
                v = self.speed_mps if moving else 0.0
                return PersonState(self.id, ax + f * (bx - ax), ay + f * (by - ay),
                                   v * ux, v * uy)
            walked -= length
        x, y = segs[-1][1]   # rounding at the very end of the last segment
        return PersonState(self.id, x, y, 0.0, 0.0)


@dataclass(frozen=True)
class WorldSpec:
    """A checked world: the site registry plus everything the simulator builds.

    ``lighting`` is the world's default (its preset with the file's overrides);
    ``lighting_presets`` holds the built-in presets by name; ``spawn_poses`` maps robot
    names (at least ``robot1``, ``robot2``) to start poses; ``bounds`` is the ground's
    extent."""
    id: str
    file: Path | None
    registry: SiteRegistry
    bounds: Bounds
    ground: GroundSpec
    lighting: Lighting
    lighting_preset: str
    lighting_presets: Mapping[str, Lighting]
    spawn_poses: Mapping[str, Pose2D]
    bodies: tuple[BodySpec, ...]
    fiducials: tuple[FiducialSpec, ...]
    gauges: tuple[GaugeDialSpec, ...]
    valves: tuple[ValveSpec, ...]
    actors: tuple[ActorSpec, ...]
    description: str = ""

    # -- look-ups ----------------------------------------------------------------------
    def body(self, body_id: str) -> BodySpec:
        """The body with this world id (``KeyError`` if none)."""
        for b in self.bodies:
            if b.id == body_id:
                return b
        raise KeyError(f"no body {body_id!r} in world {self.id!r}")

    def gauge(self, asset_id: str) -> GaugeDialSpec:
        """The dial of gauge asset *asset_id*."""
        for g in self.gauges:
            if g.asset == asset_id:
                return g
        raise KeyError(f"no gauge dial for asset {asset_id!r} in world {self.id!r}; gauges: "
                       + ", ".join(g.asset for g in self.gauges))

    def valve(self, asset_id: str) -> ValveSpec:
        """The valve of asset *asset_id*."""
        for v in self.valves:
            if v.asset == asset_id:
                return v
        raise KeyError(f"no valve for asset {asset_id!r} in world {self.id!r}; valves: "
                       + ", ".join(v.asset for v in self.valves))

    def fiducial(self, tag_id: int) -> FiducialSpec:
        """The fiducial with AprilTag id *tag_id*."""
        for f in self.fiducials:
            if f.tag_id == tag_id:
                return f
        raise KeyError(f"no fiducial {tag_id} in world {self.id!r}")

    def fiducials_of(self, asset_id: str) -> tuple[FiducialSpec, ...]:
        """The fiducials mounted on asset *asset_id*."""
        return tuple(f for f in self.fiducials if f.asset == asset_id)

    def actor(self, actor_id: str) -> ActorSpec:
        """The actor with this id."""
        for a in self.actors:
            if a.id == actor_id:
                return a
        raise KeyError(f"no actor {actor_id!r} in world {self.id!r}")

    # -- free space --------------------------------------------------------------------
    def obstacle_footprints(self, max_z_m: float = OBSTACLE_MAX_Z_M) -> tuple[Footprint, ...]:
        """Footprints of everything static a robot could hit: colliding static bodies whose
        lowest point is below *max_z_m*, gauge dials and valves.  (Not movable bodies and
        not people.)  Computed once per world and height (the world is immutable)."""
        cache = self.__dict__.setdefault("_footprints", {})
        if max_z_m not in cache:
            cache[max_z_m] = self._obstacle_footprints(max_z_m)
        return cache[max_z_m]

    def _obstacle_footprints(self, max_z_m: float) -> tuple[Footprint, ...]:
        out = [b.footprint() for b in self.bodies if b.static and b.collision]
        for g in self.gauges:
            out.append(_box_footprint((0.03, g.radius_m, g.radius_m), g.pose, g.asset))
        for v in self.valves:
            r = max(v.handle_length_m, 0.12)
            out.append(Footprint(v.pose.x, v.pose.y, r, r, 0.0, v.pose.z - 0.08,
                                 v.pose.z + 0.15, radius_m=r, source=v.asset))
        return tuple(f for f in out if f.z_min < max_z_m)

    def clearance(self, x: float, y: float) -> tuple[float, str]:
        """Distance [m] from (x, y) to the nearest obstacle footprint (negative inside one)
        and that obstacle's id."""
        best, name = math.inf, ""
        for f in self.obstacle_footprints():
            d = f.distance(x, y)
            if d < best:
                best, name = d, f.source
        return best, name

    def occupancy_grid(self, resolution_m: float = 0.1, inflate_m: float = 0.0,
                       keep_out: bool = True) -> OccupancyGrid:
        """Rasterise the obstacle footprints (grown by *inflate_m* [m]), the ground's edge
        and, with *keep_out*, the registry's keep-out zones, onto a grid."""
        b = self.bounds
        cols = math.ceil((b.x_max - b.x_min) / resolution_m)
        rows = math.ceil((b.y_max - b.y_min) / resolution_m)
        xs = b.x_min + (np.arange(cols) + 0.5) * resolution_m
        ys = b.y_min + (np.arange(rows) + 0.5) * resolution_m
        gx, gy = np.meshgrid(xs, ys)
        occ = ((gx < b.x_min + inflate_m) | (gx > b.x_max - inflate_m)
               | (gy < b.y_min + inflate_m) | (gy > b.y_max - inflate_m))
        for f in self.obstacle_footprints():
            reach = max(f.half_x, f.half_y, f.radius_m or 0.0) * 1.5 + inflate_m + resolution_m
            c0 = max(0, int((f.cx - reach - b.x_min) / resolution_m))
            c1 = min(cols, int((f.cx + reach - b.x_min) / resolution_m) + 1)
            r0 = max(0, int((f.cy - reach - b.y_min) / resolution_m))
            r1 = min(rows, int((f.cy + reach - b.y_min) / resolution_m) + 1)
            if c0 >= c1 or r0 >= r1:
                continue
            d = f.distance_grid(gx[r0:r1, c0:c1], gy[r0:r1, c0:c1])
            occ[r0:r1, c0:c1] |= d <= inflate_m
        if keep_out:
            mark_keep_out(occ, b.x_min, b.y_min, resolution_m, self.registry.zones)
        occ.setflags(write=False)
        return OccupancyGrid(b.x_min, b.y_min, resolution_m, occ)
