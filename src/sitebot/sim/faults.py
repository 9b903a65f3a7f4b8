"""Fault injection into a :class:`~sitebot.sim.simulation.SiteSimulation` (no ROS).

Used by the simulator node (parameter ``fault_schedule``, topic ``sim/fault``) and by the
regression runner (``sitebot regress``). A fault is a plain mapping (from YAML or JSON)
with a ``kind``; :func:`parse_fault` checks it and names the bad key. Kinds:

================== ======================================================================
kind               fields
================== ======================================================================
sensor_dropout     ``sensor`` (scan, odom, imu, camera, joint_states, ground_truth is not
                   allowed), ``duration`` [s]: the sensor publishes nothing
sensor_delay       ``sensor``, ``delay`` [s], ``duration`` [s]: samples come out ``delay``
                   late (stamps unchanged: the data is old on arrival)
noise_burst        ``sensor`` (scan, odom, imu), ``std`` (scan: m, odom: m on the pose,
                   imu: rad/s on the gyro), ``duration`` [s]
localization_jump  ``dx``, ``dy`` [m], ``dyaw`` [rad] (robot frame): the robot is
                   teleported; wheel odometry does not see it (a kidnap)
lighting           ``preset`` (a world lighting preset): the camera's lighting changes
spawn_body         ``id``, ``pose`` [x, y, yaw], ``size`` [sx, sy, sz]: a static box
                   appears (e.g. a pallet blocking a corridor)
remove_body        ``id``: a body spawned before is removed
move_actor         ``actor``, ``path`` [[x, y], ..], ``speed`` [m/s], optional ``loop``,
                   ``yields``: the person is put at the path's start and walks it from now
================== ======================================================================

Every fault has ``at`` (sim time [s] it starts; 0 when injected at run time means "now")
an optional ``robot`` (namespace; "" = the first robot) and an optional ``label`` (echoed in
the events). Applied faults are reported
as events (dicts with ``t``, ``kind``, ``phase`` start/end and the fault's fields).
Everything is deterministic in simulation time.

Where faults come from: :func:`load_fault_schedule` (a YAML/JSON file: a list, or a mapping
with ``faults``), :func:`parse_fault_message` (the JSON text of one ``sim/fault`` message);
:func:`invalid_fault_event` is the event reported for a message that is refused and
:func:`describe_event` the log line of an event.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pybullet as pb

from sitebot.config.yamlio import load_yaml
from sitebot.errors import SimulationError
from sitebot.types import quaternion_to_yaw, se2_compose, yaw_to_quaternion

__all__ = ["Fault", "FaultInjector", "parse_fault", "parse_faults", "FAULT_KINDS",
           "SENSORS", "NOISY_SENSORS", "load_fault_schedule", "parse_fault_message",
           "invalid_fault_event", "describe_event"]

SENSORS = ("scan", "odom", "imu", "camera", "joint_states")
NOISY_SENSORS = ("scan", "odom", "imu")

#: kind -> (required fields, optional fields)
FAULT_KINDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sensor_dropout": (("sensor", "duration"), ()),
    "sensor_delay": (("sensor", "delay", "duration"), ()),
    "noise_burst": (("sensor", "std", "duration"), ()),
    "localization_jump": ((), ("dx", "dy", "dyaw")),
    "lighting": (("preset",), ()),
    "spawn_body": (("id", "pose", "size"), ()),
    "remove_body": (("id",), ()),
    "move_actor": (("actor", "path", "speed"), ("loop", "yields")),
}
_COMMON = ("kind", "at", "robot", "label")


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float = 0.0
    robot: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""            # free text echoed in the events (e.g. the runner's fault index)

    @property
    def duration(self) -> float:
        return float(self.params.get("duration", 0.0))

    def as_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "at": self.at, "robot": self.robot, **dict(self.params)}
        if self.label:
            d["label"] = self.label
        return d


def _fail(where: str, msg: str) -> None:
    raise SimulationError(f"fault {where}: {msg}")


def _num(v: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(where, f"must be a finite number, got {v!r}")
    if not lo <= v <= hi:
        _fail(where, f"must lie in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _vec(v: Any, where: str, n: int) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        _fail(where, f"must be a list of {n} numbers, got {v!r}")
    return tuple(_num(x, f"{where}[{i}]") for i, x in enumerate(v))


def parse_fault(data: Any, where: str = "fault") -> Fault:
    """Check one fault mapping; errors name ``where`` and the key."""
    if not isinstance(data, Mapping):
        _fail(where, f"must be a mapping with 'kind', got {data!r}")
    kind = data.get("kind")
    if kind not in FAULT_KINDS:
        _fail(f"{where}.kind", f"unknown kind {kind!r}; accepted: {', '.join(FAULT_KINDS)}")
    req, opt = FAULT_KINDS[kind]
    for k in data:
        if k not in _COMMON + req + opt:
            _fail(f"{where}.{k}", f"unknown key for kind {kind!r}; accepted: "
                  + ", ".join(_COMMON + req + opt))
    for k in req:
        if k not in data:
            _fail(f"{where}.{k}", f"missing required key {k!r} for kind {kind!r}")
    at = _num(data.get("at", 0.0), f"{where}.at", 0.0)
    robot = data.get("robot", "") or ""
    if not isinstance(robot, str):
        _fail(f"{where}.robot", "must be a string")
    label = data.get("label", "") or ""
    if not isinstance(label, str):
        _fail(f"{where}.label", "must be a string")
    p: dict[str, Any] = {}
    if "sensor" in req:
        allowed = NOISY_SENSORS if kind == "noise_burst" else SENSORS
        if data["sensor"] not in allowed:
            _fail(f"{where}.sensor", f"unknown sensor {data['sensor']!r}; accepted: "
                  + ", ".join(allowed))
        p["sensor"] = data["sensor"]
    if "duration" in req:
        p["duration"] = _num(data["duration"], f"{where}.duration", 0.0, 3600.0)
    if kind == "sensor_delay":
        p["delay"] = _num(data["delay"], f"{where}.delay", 0.0, 60.0)
    if kind == "noise_burst":
        p["std"] = _num(data["std"], f"{where}.std", 0.0, 100.0)
    if kind == "localization_jump":
        for k in ("dx", "dy", "dyaw"):
            p[k] = _num(data.get(k, 0.0), f"{where}.{k}", -100.0, 100.0)
    if kind == "lighting":
        if not isinstance(data["preset"], str):
            _fail(f"{where}.preset", "must be a string")
        p["preset"] = data["preset"]
    if kind in ("spawn_body", "remove_body"):
        if not isinstance(data["id"], str) or not data["id"]:
            _fail(f"{where}.id", "must be a non-empty string")
        p["id"] = data["id"]
    if kind == "spawn_body":
        p["pose"] = list(_vec(data["pose"], f"{where}.pose", 3))
        size = _vec(data["size"], f"{where}.size", 3)
        if min(size) <= 0:
            _fail(f"{where}.size", "sizes must be > 0")
        p["size"] = list(size)
    if kind == "move_actor":
        if not isinstance(data["actor"], str):
            _fail(f"{where}.actor", "must be a string")
        p["actor"] = data["actor"]
        path = data["path"]
        if not isinstance(path, list) or len(path) < 2:
            _fail(f"{where}.path", "must be a list of at least 2 [x, y] points")
        p["path"] = [list(_vec(q, f"{where}.path[{i}]", 2)) for i, q in enumerate(path)]
        p["speed"] = _num(data["speed"], f"{where}.speed", 0.01, 5.0)
        for k in ("loop", "yields"):
            if k in data:
                if not isinstance(data[k], bool):
                    _fail(f"{where}.{k}", "must be true or false")
                p[k] = data[k]
    return Fault(kind, at, robot, p, label)


def parse_faults(data: Any, where: str = "faults") -> list[Fault]:
    if data is None:
        return []
    if not isinstance(data, list):
        _fail(where, f"must be a list, got {data!r}")
    return [parse_fault(d, f"{where}[{i}]") for i, d in enumerate(data)]


def load_fault_schedule(path: str | Path) -> list[Fault]:
    """The faults of a schedule file: a YAML/JSON list, or a mapping whose ``faults`` is
    one.  Errors name the file (``<path>: faults[i].key``)."""
    data = load_yaml(path)
    return parse_faults(data.get("faults") if isinstance(data, dict) else data,
                        f"{path}: faults")


def parse_fault_message(text: str, where: str = "sim/fault") -> list[Fault]:
    """The faults in the JSON text of one message: one fault mapping or a list of them.

    :raises ValueError: the text is not JSON.
    :raises SimulationError: a fault is invalid (naming ``<where>[i].key``).
    """
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    return [parse_fault(d, f"{where}[{i}]") for i, d in enumerate(items)]


def invalid_fault_event(t: float, error: str) -> dict[str, Any]:
    """The event reported for refused fault input at sim time ``t`` [s]."""
    return {"t": t, "phase": "error", "kind": "invalid", "error": error}


def describe_event(ev: Mapping[str, Any]) -> tuple[bool, str]:
    """(is an error, the log line) of a fault event."""
    text = f"fault {ev.get('kind')} {ev.get('phase')} at t={ev.get('t'):.3f} s" \
        + (f": {ev['error']}" if "error" in ev else "")
    return ev.get("phase") == "error", text


@dataclass
class _Active:
    fault: Fault
    until: float


class FaultInjector:
    """Applies :class:`Fault` s to a simulation as its time passes.

    Call :meth:`advance` once per physics step (after ``sim.step()``) with the samples the
    step produced; it returns the samples to publish (dropped, delayed, noisy as the
    active faults say) in order. :meth:`inject` queues a fault at run time.
    ``on_event(dict)`` is called for every start and end of a fault.
    """

    _KIND_OF = {"scan": "SCAN", "odom": "ODOM", "imu": "IMU", "camera": "CAMERA",
                "joint_states": "JOINT_STATE"}

    def __init__(self, sim: Any, faults: Sequence[Fault] = (), *, seed: int = 0,
                 on_event: Callable[[dict], None] | None = None) -> None:
        self.sim = sim
        self.pending: list[Fault] = sorted(faults, key=lambda f: f.at)
        self.active: list[_Active] = []
        self.delayed: deque = deque()
        self.rng = np.random.default_rng([int(seed), 7919])
        self.on_event = on_event
        self.events: list[dict] = []
        self.spawned: dict[str, int] = {}

    # ------------------------------------------------------------------ scheduling
    def inject(self, fault: Fault, now: float) -> None:
        """Queue ``fault``; ``at`` <= now starts it at the next step."""
        if fault.at < now:
            fault = dataclasses.replace(fault, at=now)
        self.pending.append(fault)
        self.pending.sort(key=lambda f: f.at)

    def _emit(self, t: float, fault: Fault, phase: str, **extra: Any) -> None:
        ev = {"t": round(t, 6), "phase": phase, **fault.as_dict(), **extra}
        self.events.append(ev)
        if self.on_event is not None:
            self.on_event(ev)

    def _rig(self, fault: Fault):
        robots = self.sim.robots
        name = fault.robot if fault.robot in robots else next(iter(robots))
        return robots[name]

    def _sensor_faults(self, robot: str, sensor: str, kind: str) -> list[Fault]:
        return [a.fault for a in self.active if a.fault.kind == kind
                and a.fault.params.get("sensor") == sensor
                and (a.fault.robot or next(iter(self.sim.robots))) == robot]

    # ------------------------------------------------------------------ stepping
    def advance(self, t: float, samples: Sequence[Any]) -> list[Any]:
        eps = 1e-9
        while self.pending and self.pending[0].at <= t + eps:
            f = self.pending.pop(0)
            try:
                extra = self._start(f, t) or {}
            except SimulationError as e:
                self._emit(t, f, "error", error=str(e))
                continue
            if f.duration > 0 or f.kind in ("sensor_dropout", "sensor_delay", "noise_burst"):
                self.active.append(_Active(f, t + f.duration))
            self._emit(t, f, "start", **extra)
        for a in [a for a in self.active if a.until <= t + eps]:
            self.active.remove(a)
            self._emit(t, a.fault, "end")
        out: list[Any] = []
        for s in samples:
            s2 = self._filter(s, t)
            if s2 is not None:
                out.append(s2)
        while self.delayed and self.delayed[0][0] <= t + eps:
            out.append(self.delayed.popleft()[1])
        return out

    def _filter(self, s: Any, t: float):
        sensor = {v: k for k, v in self._KIND_OF.items()}.get(s.kind.name)
        if sensor is None:          # ground truth is never faulted
            return s
        if self._sensor_faults(s.robot, sensor, "sensor_dropout"):
            return None
        noise = self._sensor_faults(s.robot, sensor, "noise_burst")
        if noise:
            std = math.sqrt(sum(f.params["std"] ** 2 for f in noise))
            s = dataclasses.replace(s, data=self._noisy(sensor, s.data, std))
        delays = self._sensor_faults(s.robot, sensor, "sensor_delay")
        if delays:
            d = max(f.params["delay"] for f in delays)
            self.delayed.append((t + d, s))
            # keep release order by time
            if len(self.delayed) > 1 and self.delayed[-2][0] > self.delayed[-1][0]:
                self.delayed = deque(sorted(self.delayed, key=lambda x: x[0]))
            return None
        return s

    def _noisy(self, sensor: str, data: Any, std: float) -> Any:
        if sensor == "scan":
            r = np.asarray(data.ranges, dtype=np.float64)
            finite = np.isfinite(r)
            noisy = r.copy()
            noisy[finite] = np.clip(r[finite] + self.rng.normal(0.0, std, int(finite.sum())),
                                    data.range_min, data.range_max)
            return dataclasses.replace(data, ranges=noisy.astype(np.asarray(data.ranges).dtype))
        if sensor == "odom":
            return dataclasses.replace(data, x_m=data.x_m + float(self.rng.normal(0, std)),
                                       y_m=data.y_m + float(self.rng.normal(0, std)))
        if sensor == "imu":
            w = np.asarray(data.angular_velocity_radps, dtype=np.float64)
            return dataclasses.replace(data, angular_velocity_radps=w + self.rng.normal(0, std, 3))
        return data

    # ------------------------------------------------------------------ effects
    def _start(self, f: Fault, t: float) -> dict | None:
        sim = self.sim
        cid = sim.client_id
        if f.kind == "localization_jump":
            rig = self._rig(f)
            body = rig.body.body_id
            pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
            yaw = quaternion_to_yaw(orn)
            dx, dy, dyaw = f.params["dx"], f.params["dy"], f.params["dyaw"]
            x, y, _ = se2_compose((pos[0], pos[1], yaw), (dx, dy, 0.0))
            nyaw = yaw + dyaw              # reported unwrapped, as given
            lin, ang = pb.getBaseVelocity(body, physicsClientId=cid)
            pb.resetBasePositionAndOrientation(body, (x, y, pos[2]), yaw_to_quaternion(nyaw),
                                               physicsClientId=cid)
            pb.resetBaseVelocity(body, lin, ang, physicsClientId=cid)
            return {"from": [round(pos[0], 4), round(pos[1], 4), round(yaw, 4)],
                    "to": [round(x, 4), round(y, 4), round(nyaw, 4)]}
        if f.kind == "lighting":
            sim.lighting = sim.scene.lighting(f.params["preset"])
            return None
        if f.kind == "spawn_body":
            bid_key = f.params["id"]
            if bid_key in self.spawned:
                raise SimulationError(f"body {bid_key!r} was already spawned")
            sx, sy, sz = f.params["size"]
            x, y, yaw = f.params["pose"]
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[sx / 2, sy / 2, sz / 2],
                                          physicsClientId=cid)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[sx / 2, sy / 2, sz / 2],
                                       rgbaColor=[0.55, 0.4, 0.2, 1.0], physicsClientId=cid)
            self.spawned[bid_key] = pb.createMultiBody(
                baseMass=0.0, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis,
                basePosition=[x, y, sz / 2],
                baseOrientation=list(yaw_to_quaternion(yaw)),
                physicsClientId=cid)
            return None
        if f.kind == "remove_body":
            bid = self.spawned.pop(f.params["id"], None)
            if bid is None:
                raise SimulationError(f"no spawned body {f.params['id']!r}")
            pb.removeBody(bid, physicsClientId=cid)
            return None
        if f.kind == "move_actor":
            scene = sim.scene
            world = scene.world
            ids = [a.id for a in world.actors]
            if f.params["actor"] not in ids:
                raise SimulationError(f"no actor {f.params['actor']!r}; actors: {ids}")
            old = world.actor(f.params["actor"])
            waited = scene.crowd.waited(old.id)
            new = dataclasses.replace(
                old, path=tuple(tuple(p) for p in f.params["path"]),
                speed_mps=f.params["speed"], loop=f.params.get("loop", False),
                yields=f.params.get("yields", old.yields), start_delay_s=t + waited)
            actors = tuple(new if a.id == old.id else a for a in world.actors)
            scene.world = dataclasses.replace(world, actors=actors)
            return None
        return None                  # sensor faults act through _filter

    def clear(self) -> None:
        """Forget every fault and remove the bodies spawned (before a world reset)."""
        for bid in self.spawned.values():
            pb.removeBody(bid, physicsClientId=self.sim.client_id)
        self.spawned.clear()
        self.pending.clear()
        self.active.clear()
        self.delayed.clear()
