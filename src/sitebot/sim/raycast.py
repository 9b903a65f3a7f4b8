"""Lidar scans and depth images cast on Open3D's ``RaycastingScene`` (Embree).

An alternative backend to :class:`~sitebot.sim.sensors.Lidar` (PyBullet ``rayTestBatch``)
and to the depth half of :class:`~sitebot.sim.sensors.Camera` (PyBullet's tiny renderer),
with the same beam layout, intrinsics, poses and result conventions (REP-117 ranges; depth
along the optical axis in metres, ``+inf`` beyond the far plane).

:class:`RaycastWorld` copies the geometry of a PyBullet client's bodies *as they are now*
into triangle meshes: collision shapes (what ``rayTestBatch`` hits) or visual shapes (what
the camera renders). Boxes, cylinders, capsules, spheres, planes and meshes are supported;
cylinders and spheres are tessellated so that their facets lie within about
``chord_tolerance_m`` of the true surface, straddling it (no bias in range). Not supported
(listed in :attr:`RaycastWorld.skipped`): heightfields, and visual meshes made from
vertices rather than a file (PyBullet does not return their vertices; the scene's fiducial
and dial quads lie 2-5 mm in front of the plates or walls behind them, so depth differs by
that much there).

Embree's scene is built once and never moves (Open3D exposes no instancing), so moving
bodies need care. *Static* bodies (mass 0, no links) make one scene in world coordinates;
every link of a *dynamic* body (people, other robots, movable objects: by default every
body with mass or links) makes a small scene of its own in the link's frame, built once,
and rays are moved into that frame when cast (:class:`Instance`), after culling against
its bounds. So a walking person costs no rebuild. A static body moved by a script (a
valve lever turned), or bodies added or removed, need :meth:`RaycastWorld.rebuild`.
Bodies of a robot's collision group (recorded by SimRobot, as
:class:`~sitebot.sim.sensors.Lidar` reads it) are left out entirely, so the robot sees
neither itself nor its arm (PyBullet's camera would draw the arm if it entered the view).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterable, Literal

import numpy as np
import open3d as o3d
import pybullet as pb

from sitebot.errors import SimulationError
from sitebot.sim.sensors import (CameraConfig, LidarConfig, ScanData, camera_intrinsics,
                                 robot_collision_group)
from sitebot.types import quaternion_matrix

__all__ = ["PlacedShape", "Instance", "RaycastWorld", "RaycastLidar", "RaycastDepthCamera",
           "body_shapes", "link_frames", "local_shapes", "shape_triangles", "scan_from_ranges",
           "TINY_RENDERER_PIXEL_OFFSET"]

Source = Literal["collision", "visual"]

#: Where PyBullet's tiny renderer samples pixel (u, v), relative to the pixel centre that
#: ``camera_intrinsics`` (K) assigns it [px]: it samples raster corners, half a pixel left
#: and half a pixel down (measured: depth agreement within 2 cm at the substation spawn
#: 67 % with (0, 0), 99.98 % with this). Depth cast with it is registered to PyBullet's RGB.
TINY_RENDERER_PIXEL_OFFSET = (-0.5, 0.5)

#: Half size of the square standing in for an infinite GEOM_PLANE [m].
PLANE_HALF_SIZE_M = 1000.0


@dataclass(frozen=True)
class PlacedShape:
    """One PyBullet shape: ``geom`` a ``pb.GEOM_*`` code, ``dims`` as PyBullet reports them
    (box: full extents; cylinder/capsule: length, radius; sphere: radius; mesh: scale), and
    the pose of the shape frame [m, xyzw] in the world (:func:`body_shapes`) or in its
    link's frame (:func:`local_shapes`)."""

    body: int
    link: int
    geom: int
    dims: tuple[float, ...]
    position: tuple[float, float, float]
    orientation_xyzw: tuple[float, float, float, float]
    mesh_file: str = ""


# ------------------------------------------------------------------------- geometry
def link_frames(client_id: int, body: int, source: Source = "collision") -> dict[int, tuple]:
    """World pose (position, xyzw) of each link's shape frame, by link index (-1 = base):
    the base's centre of mass, and each link's centre of mass (collision shapes) or URDF
    link frame (visual shapes)."""
    cid = client_id
    out = {-1: pb.getBasePositionAndOrientation(body, physicsClientId=cid)}
    n = pb.getNumJoints(body, physicsClientId=cid)
    if n:
        k = 0 if source == "collision" else 4
        states = pb.getLinkStates(body, list(range(n)), computeForwardKinematics=True,
                                  physicsClientId=cid)
        for link, s in enumerate(states):
            out[link] = (s[k], s[k + 1])
    return out


def local_shapes(client_id: int, body: int, source: Source = "collision"
                 ) -> list[PlacedShape]:
    """Every shape of ``body`` (all links), posed in its link's frame of :func:`link_frames`."""
    cid = client_id
    if source == "collision":
        entries = []
        for link in range(-1, pb.getNumJoints(body, physicsClientId=cid)):
            entries.extend(pb.getCollisionShapeData(body, link, physicsClientId=cid))
    elif source == "visual":
        entries = [e[:7] for e in pb.getVisualShapeData(body, physicsClientId=cid)]
    else:
        raise ValueError(f"source={source!r}: accepted: 'collision' or 'visual'")
    base_fix = None
    out: list[PlacedShape] = []
    for e in entries:
        link, pos, orn = int(e[1]), tuple(e[5]), tuple(e[6])
        if source == "visual" and link < 0:
            # visual frames are given in the base's link frame, not its centre of mass
            if base_fix is None:
                info = pb.getDynamicsInfo(body, -1, physicsClientId=cid)
                base_fix = pb.invertTransform(info[3], info[4])
            pos, orn = pb.multiplyTransforms(*base_fix, pos, orn)
        name = e[4].decode() if isinstance(e[4], bytes) else str(e[4])
        out.append(PlacedShape(body, link, int(e[2]), tuple(float(v) for v in e[3]),
                               pos, orn, name))
    return out


def body_shapes(client_id: int, body: int, source: Source = "collision") -> list[PlacedShape]:
    """Every shape of ``body`` (all links) at its current world pose."""
    frames = link_frames(client_id, body, source)
    out = []
    for s in local_shapes(client_id, body, source):
        pos, orn = pb.multiplyTransforms(*frames[s.link], s.position, s.orientation_xyzw)
        out.append(replace(s, position=tuple(pos), orientation_xyzw=tuple(orn)))
    return out


def _segments(radius: float, tol: float, per_half_turn: bool) -> int:
    """Facets around a circle so that a chord's sag is at most ``tol``."""
    if radius <= tol:
        return 8
    half_angle = math.acos(1.0 - tol / radius)
    n = math.ceil(math.pi / half_angle)
    if per_half_turn:
        n = math.ceil(n / 2)
    return int(min(256, max(8, 4 * math.ceil(n / 4))))


@lru_cache(maxsize=64)
def _unit_mesh(kind: str, n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit templates from Open3D: box [-0.5, 0.5]^3, cylinder radius 1 height 1 along z,
    sphere radius 1; all centred at the origin."""
    if kind == "box":
        m = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
        m.translate((-0.5, -0.5, -0.5))
    elif kind == "cylinder":
        m = o3d.geometry.TriangleMesh.create_cylinder(radius=1.0, height=1.0, resolution=n,
                                                      split=1)
    elif kind == "sphere":
        m = o3d.geometry.TriangleMesh.create_sphere(radius=1.0, resolution=n)
    else:
        raise ValueError(kind)
    v = np.asarray(m.vertices, dtype=np.float64).copy()
    t = np.asarray(m.triangles, dtype=np.uint32)
    # facets lie inside the round surface; push the vertices out so that they straddle it
    # (half the error, none of the bias: rays would otherwise all stop a little late)
    if kind == "cylinder":
        v[:, :2] *= 2.0 / (1.0 + math.cos(math.pi / n))
    elif kind == "sphere":
        v *= 2.0 / (1.0 + float(np.linalg.norm(v[t].mean(axis=1), axis=1).mean()))
    v.flags.writeable = False
    t.flags.writeable = False
    return v, t


@lru_cache(maxsize=32)
def _mesh_file(path: str) -> tuple[np.ndarray, np.ndarray]:
    m = o3d.io.read_triangle_mesh(path)
    if len(m.triangles) == 0:
        raise SimulationError(f"mesh file {path!r}: Open3D read no triangles")
    return np.asarray(m.vertices, dtype=np.float64), np.asarray(m.triangles, dtype=np.uint32)


def _hull(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    hull, _ = pc.compute_convex_hull()
    return np.asarray(hull.vertices, dtype=np.float64), np.asarray(hull.triangles, dtype=np.uint32)


def shape_triangles(cid: int, shape: PlacedShape, tol_m: float = 5e-4,
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """World-frame vertices (N, 3) and triangles (M, 3) of ``shape``; ``None`` for a shape
    this module cannot copy (see the module notes)."""
    g, d = shape.geom, shape.dims
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if g == pb.GEOM_BOX:
        v, t = _unit_mesh("box")
        parts.append((v * np.asarray(d[:3]), t))
    elif g in (pb.GEOM_CYLINDER, pb.GEOM_CAPSULE):
        length, r = d[0], d[1]
        v, t = _unit_mesh("cylinder", _segments(r, tol_m, False))
        parts.append((v * np.array([r, r, length]), t))
        if g == pb.GEOM_CAPSULE:
            sv, st = _unit_mesh("sphere", _segments(r, tol_m, True))
            for z in (-length / 2, length / 2):
                parts.append((sv * r + np.array([0.0, 0.0, z]), st))
    elif g == pb.GEOM_SPHERE:
        v, t = _unit_mesh("sphere", _segments(d[0], tol_m, True))
        parts.append((v * d[0], t))
    elif g == pb.GEOM_PLANE:
        h = PLANE_HALF_SIZE_M
        parts.append((np.array([[-h, -h, 0.0], [h, -h, 0.0], [h, h, 0.0], [-h, h, 0.0]]),
                      np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint32)))
    elif g == pb.GEOM_MESH:
        scale = np.asarray(d[:3])
        if shape.mesh_file and not shape.mesh_file.startswith("unknown"):
            v, t = _mesh_file(shape.mesh_file)
            parts.append((v * scale, t))
        else:
            # a collision mesh made from vertices: PyBullet gives them, Bullet uses their hull
            _, verts = pb.getMeshData(shape.body, shape.link, physicsClientId=cid)
            if len(verts) < 4:
                return None
            parts.append(_hull(np.asarray(verts, dtype=np.float64)))
    else:
        return None
    rot = quaternion_matrix(shape.orientation_xyzw)
    pos = np.asarray(shape.position)
    verts, tris, base = [], [], 0
    for v, t in parts:
        verts.append(v @ rot.T + pos)
        tris.append(t + base)
        base += len(v)
    return np.concatenate(verts), np.concatenate(tris)


def _o3d(a: np.ndarray, dtype) -> o3d.core.Tensor:
    return o3d.core.Tensor.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def _new_scene(verts: np.ndarray, tris: np.ndarray, nthreads: int
               ) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene(nthreads=nthreads)
    scene.add_triangles(_o3d(verts, np.float32), _o3d(tris, np.uint32))
    # Embree builds its BVH on the first query: do it now, so that builds are timed here
    scene.cast_rays(_o3d(np.array([[0, 0, 0, 0, 0, 1]]), np.float32), nthreads=nthreads)
    return scene


# ------------------------------------------------------------------------- the world
@dataclass
class Instance:
    """One link of a dynamic body: its triangles in the link's shape frame, built once;
    ``rot``/``pos`` its world pose as of the last :meth:`RaycastWorld.refresh`;
    ``center``/``radius`` a bounding sphere and ``corners`` the bounding box, local."""

    body: int
    link: int
    scene: o3d.t.geometry.RaycastingScene
    center: np.ndarray
    radius: float
    corners: np.ndarray
    rot: np.ndarray
    pos: np.ndarray

    def cast(self, rays: np.ndarray, nthreads: int = 1) -> np.ndarray:
        """Hit distances of world rays (..., 6), in units of each direction's length."""
        local = np.empty(rays.shape, np.float32)
        local[..., :3] = (rays[..., :3] - self.pos) @ self.rot      # R^T (o - p)
        local[..., 3:] = rays[..., 3:] @ self.rot                   # R^T d
        return self.scene.cast_rays(_o3d(local, np.float32), nthreads=nthreads)["t_hit"].numpy()


class RaycastWorld:
    """The bodies of one PyBullet client as Open3D raycasting scenes.

    Static bodies make one scene in world coordinates; every link of a dynamic body makes
    a small scene of its own in the link's frame (an :class:`Instance`), into which rays
    are moved at cast time, so moving bodies cost no rebuild.

    :param client_id: PyBullet client id.
    :param source: ``"collision"`` (lidar: what ``rayTestBatch`` hits) or ``"visual"``
        (depth camera: what the renderer draws).
    :param exclude_group: leave out every body whose recorded collision group
        (``SimRobot.collision_group``) shares a bit with this; ``None`` leaves none out.
    :param exclude_bodies: body ids to leave out as well.
    :param dynamic_bodies: body ids to treat as moving; ``None``: every body with mass or
        with links (people, robots, movable objects).
    :param chord_tolerance_m: tessellation tolerance of round shapes [m].
    :param nthreads: threads Embree may use to build and cast (0 = all cores).
    """

    def __init__(self, client_id: int, *, source: Source = "collision",
                 exclude_group: int | None = None, exclude_bodies: Iterable[int] = (),
                 dynamic_bodies: Iterable[int] | None = None, chord_tolerance_m: float = 5e-4,
                 nthreads: int = 1) -> None:
        if not pb.isConnected(physicsClientId=client_id):
            raise SimulationError(f"PyBullet client {client_id} is not connected")
        if source not in ("collision", "visual"):
            raise ValueError(f"source={source!r}: accepted: 'collision' or 'visual'")
        self.client_id = int(client_id)
        self.source: Source = source
        self.nthreads = int(nthreads)
        self._tol = float(chord_tolerance_m)
        self._exclude_group = exclude_group
        self._exclude = set(int(b) for b in exclude_bodies)
        self._dynamic_ids = None if dynamic_bodies is None else set(int(b) for b in dynamic_bodies)
        self._static: o3d.t.geometry.RaycastingScene | None = None
        self.instances: list[Instance] = []
        self._skipped: list[tuple[int, int, int]] = []
        self.build_s = self.rebuild()

    def _bodies(self) -> tuple[list[int], list[int]]:
        cid = self.client_id
        static, dynamic = [], []
        for i in range(pb.getNumBodies(physicsClientId=cid)):
            b = pb.getBodyUniqueId(i, physicsClientId=cid)
            if b in self._exclude:
                continue
            if self._exclude_group is not None:
                g = robot_collision_group(cid, b)
                if g is not None and g & self._exclude_group:
                    continue
            if self._dynamic_ids is not None:
                is_dynamic = b in self._dynamic_ids
            else:
                is_dynamic = (pb.getNumJoints(b, physicsClientId=cid) > 0
                              or pb.getDynamicsInfo(b, -1, physicsClientId=cid)[0] > 0.0)
            (dynamic if is_dynamic else static).append(b)
        return static, dynamic

    def _links(self, body: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Link -> (vertices in the link's shape frame, triangles) of ``body``."""
        parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for s in local_shapes(self.client_id, body, self.source):
            vt = shape_triangles(self.client_id, s, self._tol)
            if vt is None:
                self._skipped.append((s.body, s.link, s.geom))
            else:
                parts.setdefault(s.link, []).append(vt)
        out = {}
        for link, vts in parts.items():
            base = np.cumsum([0] + [len(v) for v, _ in vts[:-1]])
            out[link] = (np.concatenate([v for v, _ in vts]),
                         np.concatenate([t + b for (_, t), b in zip(vts, base)]))
        return out

    def rebuild(self) -> float:
        """Build every scene from the bodies as they are now (after bodies were added or
        removed, or a static one moved); return the seconds taken."""
        t0 = time.perf_counter()
        self._skipped = []
        static, dynamic = self._bodies()
        verts, tris, base = [], [], 0
        for b in static:
            frames = link_frames(self.client_id, b, self.source)
            for link, (v, t) in self._links(b).items():
                pos, orn = frames[link]
                verts.append(v @ quaternion_matrix(orn).T + np.asarray(pos))
                tris.append(t + base)
                base += len(v)
        self._static = (_new_scene(np.concatenate(verts), np.concatenate(tris), self.nthreads)
                        if verts else None)
        self.instances = []
        for b in dynamic:
            for link, (v, t) in self._links(b).items():
                lo, hi = v.min(axis=0), v.max(axis=0)
                corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                                    for z in (lo[2], hi[2])])
                self.instances.append(Instance(
                    b, link, _new_scene(v, t, self.nthreads), (lo + hi) / 2,
                    float(np.linalg.norm(hi - lo)) / 2, corners, np.eye(3), np.zeros(3)))
        self.refresh()
        return time.perf_counter() - t0

    def refresh(self) -> float:
        """Read the dynamic links' poses; return the seconds taken."""
        t0 = time.perf_counter()
        frames: dict[int, dict[int, tuple]] = {}
        for inst in self.instances:
            if inst.body not in frames:
                frames[inst.body] = link_frames(self.client_id, inst.body, self.source)
            pos, orn = frames[inst.body][inst.link]
            inst.rot, inst.pos = quaternion_matrix(orn), np.asarray(pos)
        return time.perf_counter() - t0

    @property
    def dynamic_body_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(i.body for i in self.instances))

    @property
    def skipped(self) -> list[tuple[int, int, int]]:
        """(body, link, geom) of every shape not copied (see the module notes)."""
        return list(self._skipped)

    def cast_static(self, rays) -> np.ndarray:
        """Like :meth:`cast`, on the static bodies only."""
        if self._static is None:
            return np.full(tuple(rays.shape)[:-1], np.inf, np.float32)
        t = rays if isinstance(rays, o3d.core.Tensor) else _o3d(rays, np.float32)
        return self._static.cast_rays(t, nthreads=self.nthreads)["t_hit"].numpy()

    def cast(self, rays: np.ndarray) -> np.ndarray:
        """Distance to the first hit along each world ray (..., 6) [origin, direction], in
        units of the direction's length; ``inf`` where nothing is hit. Every ray goes to
        every instance (the sensors cull); call :meth:`refresh` first if bodies moved."""
        hit = self.cast_static(rays)
        for inst in self.instances:
            np.minimum(hit, inst.cast(rays, self.nthreads), out=hit)
        return hit


# ------------------------------------------------------------------------- sensors
def scan_from_ranges(config: LidarConfig, ranges: np.ndarray, hit: np.ndarray,
                     rng: np.random.Generator | None = None) -> ScanData:
    """A :class:`ScanData` from raw ranges [m] (``hit`` False = no return), with the noise
    and REP-117 conventions of :meth:`sitebot.sim.sensors.Lidar.scan`."""
    cfg = config
    ranges = np.where(hit, ranges, cfg.range_max_m).astype(np.float64)
    if rng is not None and cfg.range_noise_sigma_m > 0.0:
        ranges = ranges + rng.normal(0.0, cfg.range_noise_sigma_m, size=ranges.shape)
    out = ranges.copy()
    out[ranges > cfg.range_max_m] = np.inf
    out[ranges < cfg.range_min_m] = -np.inf
    out[~hit] = np.inf
    n = len(out)
    scan_time = 1.0 / cfg.scan_rate_hz
    return ScanData(angle_min=cfg.angle_min_rad,
                    angle_max=cfg.angle_min_rad + (n - 1) * cfg.angle_increment_rad,
                    angle_increment=cfg.angle_increment_rad, range_min=cfg.range_min_m,
                    range_max=cfg.range_max_m, ranges=out.astype(np.float32),
                    time_increment=scan_time / n, scan_time=scan_time)


def _link_pose(cid: int, body: int, link: int) -> tuple[np.ndarray, np.ndarray]:
    if link < 0:
        pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
    else:
        st = pb.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=cid)
        pos, orn = st[4], st[5]
    return np.asarray(pos), quaternion_matrix(orn)


class RaycastLidar:
    """:class:`~sitebot.sim.sensors.Lidar` cast on a :class:`RaycastWorld` (``collision``
    source, the robot's group excluded). A dynamic link gets only the beams that can reach
    its bounding sphere (none if the sphere misses the scan plane)."""

    def __init__(self, world: RaycastWorld, robot_body: int, link_index: int,
                 config: LidarConfig | None = None) -> None:
        self.world = world
        self._body, self._link = int(robot_body), int(link_index)
        self.config = config if config is not None else LidarConfig()
        self._angles = self.config.angles_rad()
        a = self._angles
        self._dirs = np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], 1)

    def _beams(self, inst: Instance, origin: np.ndarray, rot: np.ndarray) -> np.ndarray | None:
        """Indices of the beams that can hit ``inst``; None for every beam."""
        q = rot.T @ (inst.rot @ inst.center + inst.pos - origin)     # in the laser frame
        r, d = inst.radius, math.hypot(q[0], q[1])
        if abs(q[2]) > r or d - r > self.config.range_max_m:
            return np.empty(0, dtype=np.intp)
        if d <= r:
            return None
        off = (self._angles - math.atan2(q[1], q[0]) + math.pi) % (2.0 * math.pi) - math.pi
        return np.flatnonzero(np.abs(off) <= math.asin(r / d) + self.config.angle_increment_rad)

    def scan(self, rng: np.random.Generator | None = None) -> ScanData:
        """Cast every beam from the laser frame's current pose; ``rng=None`` = no noise."""
        world = self.world
        world.refresh()
        origin, rot = _link_pose(world.client_id, self._body, self._link)
        dirs = self._dirs @ rot.T
        rays = np.concatenate([np.broadcast_to(origin, dirs.shape), dirs], axis=1)
        t = world.cast_static(rays)
        for inst in world.instances:
            idx = self._beams(inst, origin, rot)
            if idx is None:
                np.minimum(t, inst.cast(rays, world.nthreads), out=t)
            elif idx.size:
                t[idx] = np.minimum(t[idx], inst.cast(rays[idx], world.nthreads))
        t = t.astype(np.float64)
        hit = t <= self.config.range_max_m
        return scan_from_ranges(self.config, np.where(hit, t, 0.0), hit, rng)


class RaycastDepthCamera:
    """The depth image of :class:`~sitebot.sim.sensors.Camera` cast on a
    :class:`RaycastWorld` (``visual`` source): same intrinsics (``camera_intrinsics``),
    same optical/body-frame rule for the link, the near plane clips (what lies closer is
    not seen), ``+inf`` beyond the far plane. ``pixel_offset`` [px] moves where each pixel
    is sampled: the default matches PyBullet's RGB (:data:`TINY_RENDERER_PIXEL_OFFSET`);
    ``(0, 0)`` samples pixel centres exactly as K says.

    Rays come from Open3D (``create_rays_pinhole``); the static scene takes every ray, a
    dynamic link only those in the image window its bounding box projects to."""

    def __init__(self, world: RaycastWorld, robot_body: int, link_index: int,
                 config: CameraConfig | None = None, *,
                 pixel_offset: tuple[float, float] = TINY_RENDERER_PIXEL_OFFSET) -> None:
        cid = world.client_id
        self.world = world
        self._body, self._link = int(robot_body), int(link_index)
        self.config = cfg = config if config is not None else CameraConfig()
        self.K = camera_intrinsics(cfg)
        self._optical = self._link >= 0 and b"optical" in pb.getJointInfo(
            self._body, self._link, physicsClientId=cid)[12]
        # Open3D samples pixel index u at u + 0.5 of its matrix: shift the centre so that
        # it samples u + offset of K
        k = self.K.copy()
        k[0, 2] += 0.5 - float(pixel_offset[0])
        k[1, 2] += 0.5 - float(pixel_offset[1])
        self._k_rays = k
        self._k_o3d = o3d.core.Tensor(k)

    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Camera position and the world directions of the optical x (right), y (down),
        z (forward) axes as columns."""
        eye, rot = _link_pose(self.world.client_id, self._body, self._link)
        if self._optical:
            return eye, rot
        return eye, np.stack([-rot[:, 1], -rot[:, 2], rot[:, 0]], axis=1)

    def _window(self, inst: Instance, eye: np.ndarray, basis: np.ndarray
                ) -> tuple[int, int, int, int] | None:
        """Rows v0:v1 and columns u0:u1 that can see ``inst``; None if none can."""
        cfg = self.config
        q = (inst.corners @ inst.rot.T + inst.pos - eye) @ basis    # optical frame
        if (q[:, 2] <= 0.0).all():
            return None
        if (q[:, 2] <= 1e-6).any():                       # straddles the camera plane
            return 0, cfg.height, 0, cfg.width
        k = self._k_rays
        u = k[0, 0] * q[:, 0] / q[:, 2] + k[0, 2] - 0.5
        v = k[1, 1] * q[:, 1] / q[:, 2] + k[1, 2] - 0.5
        u0, u1 = max(0, math.floor(u.min())), min(cfg.width, math.ceil(u.max()) + 1)
        v0, v1 = max(0, math.floor(v.min())), min(cfg.height, math.ceil(v.max()) + 1)
        if u0 >= u1 or v0 >= v1:
            return None
        return v0, v1, u0, u1

    def depth(self) -> np.ndarray:
        """float32 (H, W) depth along the optical axis [m] of the current view."""
        cfg, world = self.config, self.world
        world.refresh()
        eye, basis = self._basis()
        extrinsic = np.eye(4)
        extrinsic[:3, :3] = basis.T
        extrinsic[:3, 3] = -basis.T @ eye
        rays = o3d.t.geometry.RaycastingScene.create_rays_pinhole(
            self._k_o3d, o3d.core.Tensor(extrinsic), cfg.width, cfg.height)
        depth = world.cast_static(rays)         # directions have z = 1: distance = depth
        r = rays.numpy()
        for inst in world.instances:
            win = self._window(inst, eye, basis)
            if win is not None:
                v0, v1, u0, u1 = win
                view = depth[v0:v1, u0:u1]
                np.minimum(view, inst.cast(r[v0:v1, u0:u1], world.nthreads), out=view)
        near = depth < cfg.near_m
        if near.any():                          # clipped: look again from the near plane
            sub = r[near]
            sub[:, :3] += cfg.near_m * sub[:, 3:]
            depth[near] = world.cast(sub) + np.float32(cfg.near_m)
        depth[depth > cfg.far_m] = np.inf
        return depth
