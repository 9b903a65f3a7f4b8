"""World (scene) files: what the simulator builds for one site, checked on load.

A world file ``worlds/<id>.world.yaml`` names its site registry (``<id>.site.yaml``) and
adds what only a simulator needs: ground, lighting, robot spawn poses, primitive bodies,
AprilTag fiducials, gauge dials, valves and walking people.  The format is documented in
``docs/worlds.md``.  This module is pure data and geometry (no PyBullet, no OpenCV);
:mod:`sitebot.sim.scene` builds a :class:`WorldSpec` into a PyBullet client.

Conventions: metres, radians, seconds; x east, y north, z up (REP-103).  A 3-D pose is
``[x, y, z]``, ``[x, y, z, yaw]`` or ``[x, y, z, roll, pitch, yaw]`` with the rotation
``R = Rz(yaw) Ry(pitch) Rx(roll)`` (as PyBullet's ``getQuaternionFromEuler``).  Flat things
that face somewhere (fiducials, gauge dials) show their face along their local +x axis with
local +z as "up", so ``yaw`` alone says where a vertical tag or dial looks.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from sitebot.errors import WorldError
from sitebot.paths import data_path
from sitebot.site.registry import (APRILTAG_36H11_IDS, ID_PATTERN, AssetKind, Pose2D, SiteRegistry,
                       ZoneKind, load_registry, point_in_polygon)
from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.types import rpy_to_quaternion

__all__ = [
    "Shape", "ValveState", "Pose3D", "Lighting", "LIGHTING_PRESETS", "Bounds", "GroundSpec",
    "BodySpec", "Footprint", "FiducialSpec", "DialSpec", "GaugeDialSpec", "ValveSpec",
    "PersonState", "ActorSpec", "OccupancyGrid", "WorldSpec",
    "load_world", "parse_world", "world_path", "available_worlds",
    "ROBOT_RADIUS_M", "OBSTACLE_MAX_Z_M", "SPAWN_SEPARATION_M", "MAX_ACTOR_SPEED_MPS",
    "TAG_QUIET_ZONE_MODULES",
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

WORLD_SUFFIX = ".world.yaml"


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
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr]])

    def apply(self, local: Sequence[float]) -> tuple[float, float, float]:
        """A point given in this pose's frame [m], in the parent frame [m]."""
        p = self.rotation() @ np.asarray(local, dtype=float) + np.array(self.position)
        return (float(p[0]), float(p[1]), float(p[2]))

    def offset(self, dx: float, dy: float, dz: float) -> Pose3D:
        """This pose moved by (dx, dy, dz) [m] in the parent frame."""
        return Pose3D(self.x + dx, self.y + dy, self.z + dz, self.roll, self.pitch, self.yaw)


@dataclass(frozen=True)
class Lighting:
    """How a camera image is lit (the parameters of PyBullet's ``getCameraImage``).

    :ivar direction: unit vector from the scene towards the light [-] (``lightDirection``).
    :ivar color: light colour, RGB in [0, 1] (``lightColor``).
    :ivar ambient: ambient coefficient [0, 1] (``lightAmbientCoeff``).
    :ivar diffuse: diffuse coefficient [0, 1] (``lightDiffuseCoeff``).
    :ivar specular: specular coefficient [0, 1] (``lightSpecularCoeff``); high = glare.
    :ivar shadow: whether shadows are cast (``shadow``).
    """
    direction: tuple[float, float, float]
    color: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    shadow: bool

    def camera_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pybullet.getCameraImage``."""
        return {"lightDirection": list(self.direction), "lightColor": list(self.color),
                "lightAmbientCoeff": self.ambient, "lightDiffuseCoeff": self.diffuse,
                "lightSpecularCoeff": self.specular, "shadow": int(self.shadow)}


def _unit(v: Sequence[float]) -> tuple[float, float, float]:
    n = math.sqrt(sum(c * c for c in v))
    return (v[0] / n, v[1] / n, v[2] / n)


#: Built-in lighting presets.  ``low_sun`` is a low, warm sun with strong specular glare;
#: ``coloured`` a sodium-orange floodlight.
LIGHTING_PRESETS: Mapping[str, Lighting] = MappingProxyType({
    "bright": Lighting(_unit((0.4, 0.3, 1.0)), (1.0, 1.0, 1.0), 0.6, 0.45, 0.05, False),
    "dim": Lighting(_unit((0.2, 0.2, 1.0)), (0.55, 0.55, 0.6), 0.25, 0.3, 0.02, False),
    "low_sun": Lighting(_unit((1.0, 0.25, 0.15)), (1.0, 0.85, 0.65), 0.35, 0.8, 0.9, True),
    "coloured": Lighting(_unit((-0.3, 0.5, 1.0)), (1.0, 0.62, 0.3), 0.45, 0.45, 0.1, False),
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
class OccupancyGrid:
    """A boolean grid over the world, row = y, column = x: cell (r, c) covers
    ``x in origin_x + [c, c+1) * resolution_m``, likewise y.  True = occupied."""
    origin_x: float
    origin_y: float
    resolution_m: float
    occupied: np.ndarray = field(repr=False, compare=False)

    def cell(self, x: float, y: float) -> tuple[int, int]:
        """(row, column) of the cell holding (x, y) [m]."""
        return (math.floor((y - self.origin_y) / self.resolution_m),
                math.floor((x - self.origin_x) / self.resolution_m))

    def is_occupied(self, x: float, y: float) -> bool:
        """Occupied, or outside the grid."""
        r, c = self.cell(x, y)
        rows, cols = self.occupied.shape
        return not (0 <= r < rows and 0 <= c < cols) or bool(self.occupied[r, c])

    def reachable_from(self, x: float, y: float) -> np.ndarray:
        """Cells connected (4-neighbour) to the free cell holding (x, y)."""
        rows, cols = self.occupied.shape
        seen = np.zeros_like(self.occupied, dtype=bool)
        r0, c0 = self.cell(x, y)
        if self.is_occupied(x, y):
            return seen
        stack = [(r0, c0)]
        seen[r0, c0] = True
        free = ~self.occupied
        while stack:
            r, c = stack.pop()
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < rows and 0 <= cc < cols and free[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    stack.append((rr, cc))
        return seen


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
        not people.)"""
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
            for z in self.registry.zones:
                if z.kind is not ZoneKind.KEEP_OUT:
                    continue
                zx = [p[0] for p in z.polygon]
                zy = [p[1] for p in z.polygon]
                c0 = max(0, int((min(zx) - b.x_min) / resolution_m))
                c1 = min(cols, int((max(zx) - b.x_min) / resolution_m) + 1)
                r0 = max(0, int((min(zy) - b.y_min) / resolution_m))
                r1 = min(rows, int((max(zy) - b.y_min) / resolution_m) + 1)
                for r in range(r0, r1):
                    for c in range(c0, c1):
                        if point_in_polygon(float(xs[c]), float(ys[r]), z.polygon):
                            occ[r, c] = True
        occ.setflags(write=False)
        return OccupancyGrid(b.x_min, b.y_min, resolution_m, occ)


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


class _WorldParser:
    def __init__(self, schema: Schema, registry: SiteRegistry | None) -> None:
        self.s = schema
        self.registry = registry

    # -- helpers -----------------------------------------------------------------------
    def pose3(self, value: Any, where: str) -> Pose3D:
        v = self.s.vector(value, where, (3, 4, 6),
                          names="[x, y, z], [x, y, z, yaw] or [x, y, z, roll, pitch, yaw]")
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
        if sx <= 0 or sy <= 0:
            s.fail("ground size must be > 0 in both directions", "ground.size")
        cx, cy = (0.0, 0.0)
        if g.get("center") is not None:
            cx, cy = s.vector(g["center"], "ground.center", 2, names="[x, y] [m]")
        rgba = self.rgba(g, "rgba", "ground", (0.5, 0.5, 0.48, 1.0))
        friction = s.number(s.optional(g, "friction", float, "ground", 0.8), "ground.friction",
                            min_value=0.0)
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
            direction = _unit(d)
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
                if v <= 0:
                    s.fail(f"sizes must be > 0, got {v:g}", key_path(key_path(where, "size"), i))
            pose = self.pose3(m["pose"], key_path(where, "pose"))
            rgba = self.rgba(m, "rgba", where, _DEFAULT_RGBA)
            mass = s.number(s.optional(m, "mass", float, where, 0.0), key_path(where, "mass"),
                            min_value=0.0)
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
                             key_path(where, "start_delay"), min_value=0.0)
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

