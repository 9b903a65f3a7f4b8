"""Builds a :class:`~sitebot.sim.world.WorldSpec` into a PyBullet client and animates it.

A :class:`Scene` holds no global state: it takes the id of a client someone else connected,
so two scenes can live in two clients of one process.  It creates

* the ground (a static box whose top face is z = 0),
* the world's primitive bodies (mass 0 = static; movable ones get their mass),
* fiducials: AprilTag textures on thin quads facing along their local +x,
* gauge dials: a grey plate with a textured face quad; the needle is drawn in the texture,
  so :meth:`Scene.set_gauge_value` re-textures the face,
* valves: a valve body on the pipe axis, a stem, and a red lever whose direction shows the
  state (along the pipe = open),
* people: kinematic bodies (a cylinder with a head) moved by :meth:`Scene.update` along
  their scripted paths.

Textures are written to ``texture_dir`` (created if missing; equal textures share a file).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pybullet as pb

from sitebot.errors import SimulationError
from sitebot.sim.people import Crowd
from sitebot.sim.textures import write_gauge_png, write_tag_png
from sitebot.sim.world import (BodySpec, GaugeDialSpec, Lighting, PersonState, Pose3D, Shape,
                               ValveState, WorldSpec)
from sitebot.types import quaternion_multiply, rpy_to_quaternion, yaw_to_quaternion

__all__ = ["Scene", "Lighting", "PersonState", "BodyHandle"]

_HALF_PI = math.pi / 2
_PERSON_BODY_RGBA = (1.0, 0.55, 0.08, 1.0)      # hi-vis orange
_PERSON_HEAD_RGBA = (0.86, 0.70, 0.56, 1.0)
_HEAD_RADIUS_M = 0.11
_VALVE_BODY_RGBA = (0.25, 0.35, 0.45, 1.0)
_VALVE_HANDLE_RGBA = (0.85, 0.08, 0.05, 1.0)
_DIAL_PLATE_RGBA = (0.35, 0.35, 0.37, 1.0)
_DIAL_PLATE_DEPTH_M = 0.03
_GROUND_MARGIN_M = 2.0
_GROUND_THICKNESS_M = 0.1


@dataclass(frozen=True)
class BodyHandle:
    """A PyBullet body the scene made, with what it stands for: ``kind`` is one of
    ground, body, fiducial, gauge, valve, valve_handle, actor; ``name`` the world id
    (body id, tag id, asset id or actor id)."""
    body_id: int
    kind: str
    name: str


#: Turns a cylinder's axis (local z) onto local x.
_Z_TO_X = rpy_to_quaternion(0.0, _HALF_PI, 0.0)


class Scene:
    """The static and scripted part of a simulated site, built into PyBullet client
    *client_id* (the caller connects and disconnects it)."""

    def __init__(self, client_id: int, world: WorldSpec, texture_dir: str | Path, *,
                 dial_texture_px: int = 512, tag_module_px: int = 16) -> None:
        if not pb.isConnected(physicsClientId=client_id):
            raise SimulationError(f"PyBullet client {client_id} is not connected")
        self.client_id = client_id
        self.world = world
        self.texture_dir = Path(texture_dir)
        self.texture_dir.mkdir(parents=True, exist_ok=True)
        self._dial_px = dial_texture_px
        self._tag_px = tag_module_px
        self._textures: dict[Path, int] = {}
        self._handles: list[BodyHandle] = []
        self._static: list[int] = []
        self._movable: dict[str, int] = {}
        self._initial: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self._actors: dict[str, int] = {}
        self._actor_yaw: dict[str, float] = {}
        # how people walk among robots and each other (sitebot.sim.people)
        self.crowd = Crowd(lambda x, y: self.world.clearance(x, y)[0])
        self._states: dict[str, PersonState] = {}
        self._fiducials: dict[int, int] = {}
        self._gauge_faces: dict[str, int] = {}
        self._gauge_values: dict[str, float] = {}
        self._valve_handles: dict[str, int] = {}
        self._valve_states: dict[str, ValveState] = {}
        self._t_s = 0.0
        self._build()
        self.update(0.0)

    # ----------------------------------------------------------------- building blocks
    def _shapes(self, shape: Shape, size: Sequence[float], rgba: Sequence[float],
                collision: bool) -> tuple[int, int]:
        c = self.client_id
        if shape is Shape.BOX:
            half = [size[0] / 2, size[1] / 2, size[2] / 2]
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(rgba),
                                       physicsClientId=c)
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half,
                                          physicsClientId=c) if collision else -1
        elif shape is Shape.CYLINDER:
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=size[0], length=size[1],
                                       rgbaColor=list(rgba), physicsClientId=c)
            col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=size[0], height=size[1],
                                          physicsClientId=c) if collision else -1
        else:
            vis = pb.createVisualShape(pb.GEOM_SPHERE, radius=size[0], rgbaColor=list(rgba),
                                       physicsClientId=c)
            col = pb.createCollisionShape(pb.GEOM_SPHERE, radius=size[0],
                                          physicsClientId=c) if collision else -1
        return col, vis

    def _add(self, kind: str, name: str, shape: Shape, size: Sequence[float],
             position: Sequence[float], orientation: Sequence[float], rgba: Sequence[float],
             mass_kg: float = 0.0, collision: bool = True) -> int:
        col, vis = self._shapes(shape, size, rgba, collision)
        bid = pb.createMultiBody(baseMass=mass_kg, baseCollisionShapeIndex=col,
                                 baseVisualShapeIndex=vis, basePosition=list(position),
                                 baseOrientation=list(orientation),
                                 physicsClientId=self.client_id)
        self._handles.append(BodyHandle(bid, kind, name))
        if mass_kg == 0.0:
            self._static.append(bid)
        return bid

    def _quad(self, kind: str, name: str, pose: Pose3D, half_width_m: float,
              half_height_m: float, texture: Path) -> int:
        """A visual-only rectangle in the pose's local y-z plane, textured so that the image
        reads upright and unmirrored from local +x."""
        hw, hh = half_width_m, half_height_m
        # seen from +x: right = +y, up = +z.  Texture v = 0 is the image's bottom row.
        verts = [[0.0, -hw, hh], [0.0, hw, hh], [0.0, hw, -hh], [0.0, -hw, -hh]]
        uvs = [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
        vis = pb.createVisualShape(pb.GEOM_MESH, vertices=verts, indices=[0, 2, 1, 0, 3, 2],
                                   uvs=uvs, normals=[[1.0, 0.0, 0.0]] * 4,
                                   physicsClientId=self.client_id)
        bid = pb.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1,
                                 baseVisualShapeIndex=vis, basePosition=list(pose.position),
                                 baseOrientation=list(pose.quaternion()),
                                 physicsClientId=self.client_id)
        self._set_texture(bid, texture)
        self._handles.append(BodyHandle(bid, kind, name))
        return bid

    def _set_texture(self, body_id: int, path: Path) -> None:
        tex = self._textures.get(path)
        if tex is None:
            tex = pb.loadTexture(str(path), physicsClientId=self.client_id)
            if tex < 0:
                raise SimulationError(f"PyBullet could not load texture {path}")
            self._textures[path] = tex
        pb.changeVisualShape(body_id, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1],
                             physicsClientId=self.client_id)

    # ----------------------------------------------------------------- building
    def _build(self) -> None:
        w = self.world
        b = w.bounds
        sx, sy = b.size
        cx, cy = b.center
        self.ground_id = self._add(
            "ground", "ground", Shape.BOX,
            (sx + 2 * _GROUND_MARGIN_M, sy + 2 * _GROUND_MARGIN_M, _GROUND_THICKNESS_M),
            (cx, cy, -_GROUND_THICKNESS_M / 2), (0, 0, 0, 1), w.ground.rgba)
        pb.changeDynamics(self.ground_id, -1, lateralFriction=w.ground.friction,
                          physicsClientId=self.client_id)
        for body in w.bodies:
            self._build_body(body)
        for f in w.fiducials:
            tex = write_tag_png(f.tag_id, self.texture_dir, self._tag_px)
            half = f.outer_size_m / 2
            self._fiducials[f.tag_id] = self._quad("fiducial", str(f.tag_id), f.pose, half,
                                                   half, tex)
        for g in w.gauges:
            q = g.pose.quaternion()
            back = g.pose.apply((-_DIAL_PLATE_DEPTH_M / 2 - 0.002, 0.0, 0.0))
            self._add("gauge", g.asset, Shape.BOX,
                      (_DIAL_PLATE_DEPTH_M, 2 * g.radius_m, 2 * g.radius_m), back, q,
                      _DIAL_PLATE_RGBA)
            tex = write_gauge_png(g.face, g.value, self.texture_dir, self._dial_px)
            self._gauge_faces[g.asset] = self._quad("gauge", g.asset, g.pose, g.radius_m,
                                                    g.radius_m, tex)
            self._gauge_values[g.asset] = g.value
        for v in w.valves:
            q = v.pose.quaternion()
            self._add("valve", v.asset, Shape.CYLINDER, (0.06, 0.20), v.pose.position,
                      quaternion_multiply(q, _Z_TO_X), _VALVE_BODY_RGBA)
            self._add("valve", v.asset, Shape.CYLINDER, (0.015, 0.10),
                      v.pose.apply((0.0, 0.0, 0.08)), q, _VALVE_BODY_RGBA)
            pos, orn = self._handle_pose(v.asset, v.state)
            self._valve_handles[v.asset] = self._add(
                "valve_handle", v.asset, Shape.BOX, (v.handle_length_m, 0.03, 0.015), pos, orn,
                _VALVE_HANDLE_RGBA)
            self._valve_states[v.asset] = v.state
        for a in w.actors:
            self._actors[a.id] = self._build_person(a.id, a.height_m, a.radius_m)
            self._actor_yaw[a.id] = 0.0

    def _build_body(self, body: BodySpec) -> None:
        p = body.pose
        bid = self._add("body", body.id, body.shape, body.size, p.position, p.quaternion(),
                        body.rgba, body.mass_kg, body.collision)
        if not body.static:
            self._movable[body.id] = bid
            self._initial[bid] = (p.position, p.quaternion())
            pb.changeDynamics(bid, -1, lateralFriction=0.8, physicsClientId=self.client_id)

    def _build_person(self, actor_id: str, height_m: float, radius_m: float) -> int:
        c = self.client_id
        torso_h = height_m - 2 * _HEAD_RADIUS_M - 0.02
        col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=radius_m, height=torso_h,
                                      physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=radius_m, length=torso_h,
                                   rgbaColor=list(_PERSON_BODY_RGBA), physicsClientId=c)
        head_col = pb.createCollisionShape(pb.GEOM_SPHERE, radius=_HEAD_RADIUS_M,
                                           physicsClientId=c)
        head_vis = pb.createVisualShape(pb.GEOM_SPHERE, radius=_HEAD_RADIUS_M,
                                        rgbaColor=list(_PERSON_HEAD_RGBA), physicsClientId=c)
        bid = pb.createMultiBody(
            baseMass=0.0, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis,
            basePosition=[0, 0, torso_h / 2],
            linkMasses=[0.0], linkCollisionShapeIndices=[head_col],
            linkVisualShapeIndices=[head_vis],
            linkPositions=[[0.0, 0.0, torso_h / 2 + 0.02 + _HEAD_RADIUS_M]],
            linkOrientations=[[0, 0, 0, 1]], linkInertialFramePositions=[[0, 0, 0]],
            linkInertialFrameOrientations=[[0, 0, 0, 1]], linkParentIndices=[0],
            linkJointTypes=[pb.JOINT_FIXED], linkJointAxis=[[0, 0, 1]], physicsClientId=c)
        self._handles.append(BodyHandle(bid, "actor", actor_id))
        return bid

    def _handle_pose(self, asset_id: str, state: ValveState
                     ) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
        v = self.world.valve(asset_id)
        q = v.pose.quaternion()
        turn = 0.0 if state is ValveState.OPEN else _HALF_PI
        # the lever's inner end sits on the stem; it points along local x (open) or y
        half = v.handle_length_m / 2
        local = (half * math.cos(turn), half * math.sin(turn), 0.14)
        return v.pose.apply(local), quaternion_multiply(q, yaw_to_quaternion(turn))

    # ----------------------------------------------------------------- queries
    @property
    def body_ids(self) -> tuple[int, ...]:
        """PyBullet ids of the static geometry (ground, static bodies, dial plates, valve
        bodies and handles); not fiducial/dial quads, movable bodies or people."""
        return tuple(self._static)

    @property
    def handles(self) -> tuple[BodyHandle, ...]:
        """Every body the scene made, with what it stands for."""
        return tuple(self._handles)

    @property
    def movable_body_ids(self) -> Mapping[str, int]:
        """World body id -> PyBullet id, for bodies with mass."""
        return MappingProxyType(dict(self._movable))

    @property
    def actor_body_ids(self) -> Mapping[str, int]:
        """Actor id -> PyBullet id."""
        return MappingProxyType(dict(self._actors))

    @property
    def fiducial_body_ids(self) -> Mapping[int, int]:
        """Tag id -> PyBullet id of its quad."""
        return MappingProxyType(dict(self._fiducials))

    @property
    def time_s(self) -> float:
        """The sim time [s] of the last :meth:`update`."""
        return self._t_s

    def body_id(self, world_body_id: str) -> int:
        """PyBullet id of a world body (by its world id)."""
        for h in self._handles:
            if h.kind == "body" and h.name == world_body_id:
                return h.body_id
        raise SimulationError(f"no body {world_body_id!r} in world {self.world.id!r}")

    def object_positions(self) -> dict[str, tuple[float, float, float]]:
        """Registry object id -> the centre [m] of its body in the map frame, now."""
        out = {}
        for b in self.world.bodies:
            if b.object and b.id in self._movable:
                pos, _ = pb.getBasePositionAndOrientation(self._movable[b.id],
                                                          physicsClientId=self.client_id)
                out[b.object] = (float(pos[0]), float(pos[1]), float(pos[2]))
        return out

    def object_body_id(self, object_id: str) -> int:
        """PyBullet id of the body that is registry object *object_id*."""
        for b in self.world.bodies:
            if b.object == object_id:
                return self._movable[b.id]
        raise SimulationError(f"no body for object {object_id!r} in world {self.world.id!r}; "
                              "objects: " + ", ".join(o.id for o in self.world.registry.objects))

    def describe(self, body_id: int) -> BodyHandle | None:
        """What a PyBullet body id (e.g. from a segmentation mask) stands for."""
        for h in self._handles:
            if h.body_id == body_id:
                return h
        return None

    def lighting(self, preset: str | None = None) -> Lighting:
        """The world's default lighting (None) or a named preset."""
        if preset is None:
            return self.world.lighting
        try:
            return self.world.lighting_presets[preset]
        except KeyError:
            raise SimulationError(f"unknown lighting preset {preset!r}; presets: "
                                  + ", ".join(self.world.lighting_presets)) from None

    # ----------------------------------------------------------------- people
    def update(self, t_s: float, robots_xy: Sequence[tuple[float, float]] = ()) -> None:
        """Move every person to sim time *t_s* [s]: along their script, giving way to and
        walking around the robots (``robots_xy``, base positions [m]) and each other as
        :class:`sitebot.sim.people.Crowd` says.  People are kinematic (placed, not
        simulated): walking into a robot would shove it aside with unbounded force.
        Deterministic for the same robot motion."""
        self._t_s = float(t_s)
        for st in self.crowd.step(self._t_s, self.world.actors, robots_xy):
            a = self.world.actor(st.id)
            self._states[a.id] = st
            if st.vx != 0.0 or st.vy != 0.0:
                self._actor_yaw[a.id] = math.atan2(st.vy, st.vx)
            torso_h = a.height_m - 2 * _HEAD_RADIUS_M - 0.02
            pb.resetBasePositionAndOrientation(
                self._actors[a.id], [st.x, st.y, torso_h / 2],
                list(yaw_to_quaternion(self._actor_yaw[a.id])), physicsClientId=self.client_id)

    def people(self) -> tuple[PersonState, ...]:
        """Ground truth of every person at the last :meth:`update` time."""
        return tuple(self._states.get(a.id) or a.state_at(self._t_s) for a in self.world.actors)

    # ----------------------------------------------------------------- gauges
    def _gauge(self, asset_id: str) -> GaugeDialSpec:
        try:
            return self.world.gauge(asset_id)
        except KeyError:
            raise SimulationError(f"no gauge {asset_id!r} in world {self.world.id!r}; gauges: "
                                  + ", ".join(g.asset for g in self.world.gauges)) from None

    def gauge_value(self, asset_id: str) -> float:
        """The value the needle of gauge *asset_id* shows now (in the gauge's unit)."""
        self._gauge(asset_id)
        return self._gauge_values[asset_id]

    def set_gauge_value(self, asset_id: str, value: float) -> None:
        """Move the needle of gauge *asset_id* to *value* (re-textures the dial).

        :raises SimulationError: unknown gauge, non-finite value or one off the scale.
        """
        g = self._gauge(asset_id)
        f = g.face
        if not math.isfinite(value) or not f.min_value <= value <= f.max_value:
            raise SimulationError(f"gauge {asset_id!r} reads {f.min_value:g}..{f.max_value:g} "
                                  f"{f.unit}; got {value!r}")
        tex = write_gauge_png(f, float(value), self.texture_dir, self._dial_px)
        self._set_texture(self._gauge_faces[asset_id], tex)
        self._gauge_values[asset_id] = float(value)

    # ----------------------------------------------------------------- valves
    def valve_state(self, asset_id: str) -> ValveState:
        """Whether valve *asset_id* is open or closed."""
        if asset_id not in self._valve_states:
            raise SimulationError(f"no valve {asset_id!r} in world {self.world.id!r}; valves: "
                                  + ", ".join(self._valve_states))
        return self._valve_states[asset_id]

    def set_valve_state(self, asset_id: str, state: ValveState | str) -> None:
        """Open or close valve *asset_id* (turns its lever)."""
        self.valve_state(asset_id)
        try:
            st = ValveState(state)
        except ValueError:
            raise SimulationError(f"unknown valve state {state!r}; accepted: "
                                  + ", ".join(s.value for s in ValveState)) from None
        pos, orn = self._handle_pose(asset_id, st)
        pb.resetBasePositionAndOrientation(self._valve_handles[asset_id], list(pos), list(orn),
                                           physicsClientId=self.client_id)
        self._valve_states[asset_id] = st

    # ----------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Back to the world file's state: movable bodies at their poses and at rest,
        gauges and valves as written, people at t = 0."""
        c = self.client_id
        for bid, (pos, orn) in self._initial.items():
            pb.resetBasePositionAndOrientation(bid, list(pos), list(orn), physicsClientId=c)
            pb.resetBaseVelocity(bid, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        for g in self.world.gauges:
            if self._gauge_values[g.asset] != g.value:
                self.set_gauge_value(g.asset, g.value)
        for v in self.world.valves:
            if self._valve_states[v.asset] is not v.state:
                self.set_valve_state(v.asset, v.state)
        for a in self.world.actors:
            self._actor_yaw[a.id] = 0.0
        self._t_s = 0.0
        self._states.clear()
        self.crowd.reset()
        self.update(0.0)

    def remove(self) -> None:
        """Remove every body the scene made from its client."""
        if pb.isConnected(physicsClientId=self.client_id):
            for h in self._handles:
                pb.removeBody(h.body_id, physicsClientId=self.client_id)
        self._handles.clear()
        self._static.clear()
        self._movable.clear()
        self._actors.clear()
