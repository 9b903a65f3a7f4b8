"""The site simulation: a world, N robots, their sensors, stepped at a fixed rate.

No ROS here. :meth:`SiteSimulation.step` advances physics by one fixed step and returns the
sensor samples that fell due, each stamped with simulation time; the simulator node turns
them into messages. Every robot's joints are driven through its hardware seam
(:class:`~sitebot.control.hardware.HardwareInterface`: ``read()`` then ``write()`` once per step) by
a controller; the default is the control loop's lockstep driver
(:class:`~sitebot.control.lockstep.LockstepController`: the C kernel, or its Python
reference, ticked once per physics step).

Each instance owns its own PyBullet client (no module-level state): two simulations can run
side by side in one process.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import pybullet as pb

from sitebot.control.hardware import HardwareCommand, HardwareState
from sitebot.control.kernel import kernel_config_from_description, kernel_joint_names
from sitebot.control.lockstep import LockstepController
from sitebot.description.urdf import RobotDescription, load_robot_description, write_urdf_file
from sitebot.errors import SimulationError
from sitebot.sim.grasp import GraspAssist
from sitebot.sim.robot import SimHardware, SimRobot, SimRobotConfig
from sitebot.sim.scene import Scene
from sitebot.sim.sensors import (Camera, CameraConfig, Imu, ImuConfig, Lidar, LidarConfig,
                                 OdomConfig, ScanData, WheelOdometry)
from sitebot.sim.world import WorldSpec
from sitebot.sim.world_loader import load_world
from sitebot.types import Pose2D, quaternion_to_yaw

__all__ = ["SampleKind", "Sample", "SensorRates", "SimConfig", "RobotSpawn", "Controller",
           "SiteSimulation", "GroundTruth", "LIDAR_BACKENDS"]

#: What casts each robot's lidar (SimConfig.lidar_backend): PyBullet's ``rayTestBatch``
#: (:class:`~sitebot.sim.sensors.Lidar`) or Open3D's ``RaycastingScene``
#: (:mod:`sitebot.sim.raycast`; same scans within 2 cm, several times cheaper: the default).
LIDAR_BACKENDS = ("pybullet", "open3d")


class SampleKind(Enum):
    JOINT_STATE = "joint_states"
    ODOM = "odom"
    IMU = "imu"
    SCAN = "scan"
    CAMERA = "camera"
    GROUND_TRUTH = "ground_truth"


@dataclass(frozen=True)
class Sample:
    """One sensor output of one robot at simulation time ``stamp_s``."""

    robot: str
    kind: SampleKind
    stamp_s: float
    data: Any


@dataclass(frozen=True)
class GroundTruth:
    """What the simulator knows: base pose in the map frame, its twist, and the people."""

    x_m: float
    y_m: float
    yaw_rad: float
    z_m: float
    orientation_xyzw: tuple[float, float, float, float]
    linear_velocity_mps: tuple[float, float, float]      # in the base frame
    angular_velocity_radps: tuple[float, float, float]   # in the base frame
    people: tuple                                        # scene.PersonState tuple
    objects: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    # registry object id -> its body's centre in the map frame (what a pick moved where)


@dataclass(frozen=True)
class SensorRates:
    """Publication rates [Hz]; 0 disables a stream."""

    joint_states_hz: float = 50.0
    odom_hz: float = 50.0
    imu_hz: float = 100.0
    scan_hz: float = 10.0
    camera_hz: float = 5.0
    ground_truth_hz: float = 20.0

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not (math.isfinite(value) and 0.0 <= value <= 1000.0):
                raise ValueError(f"SensorRates.{name}={value!r}: accepted [0, 1000] Hz")


@dataclass(frozen=True)
class SimConfig:
    time_step_s: float = 1.0 / 240.0
    rates: SensorRates = field(default_factory=SensorRates)
    camera_enabled: bool = True
    lidar: LidarConfig = field(default_factory=LidarConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    imu: ImuConfig = field(default_factory=ImuConfig)
    odom: OdomConfig = field(default_factory=OdomConfig)
    robot: SimRobotConfig = field(default_factory=SimRobotConfig)
    lighting: str = ""           # a preset of the world; "" = the world's default
    cmd_timeout_s: float = 0.5   # base command older than this brakes the wheels
    heartbeat_timeout_s: float = 0.5  # supervisor heartbeat older than this stops the robot
    supervisor_required: bool = True  # False: the controller makes its own heartbeat
    actor_update_hz: float = 60.0  # people are placed on their paths at this rate [Hz]
    seed: int = 0
    lidar_backend: str = "open3d"  # one of LIDAR_BACKENDS

    def __post_init__(self) -> None:
        if not (1e-4 <= self.time_step_s <= 0.05):
            raise ValueError(f"SimConfig.time_step_s={self.time_step_s!r}: accepted [1e-4, 0.05] s")
        if not (1.0 <= self.actor_update_hz <= 1000.0):
            raise ValueError(f"SimConfig.actor_update_hz={self.actor_update_hz!r}: accepted [1, 1000] Hz")
        if not (0.0 < self.cmd_timeout_s <= 10.0):
            raise ValueError(f"SimConfig.cmd_timeout_s={self.cmd_timeout_s!r}: accepted (0, 10] s")
        if self.lidar_backend not in LIDAR_BACKENDS:
            raise ValueError(f"SimConfig.lidar_backend={self.lidar_backend!r}: accepted: "
                             + ", ".join(LIDAR_BACKENDS))


@dataclass(frozen=True)
class RobotSpawn:
    """A robot to spawn: its name (the ROS namespace; "" for none) and pose (x, y, yaw)."""

    name: str
    pose: Pose2D | None = None   # None: the world's spawn pose by name


class Controller(Protocol):
    """What drives a robot's hardware seam each physics step."""

    def update(self, state: HardwareState, time_s: float) -> HardwareCommand: ...

    def reset(self) -> None: ...


#: How often the grasp assist looks at the fingers [Hz] (a grasp takes ~1 s).
GRASP_UPDATE_HZ = 30.0


class _Stream:
    """Due-time bookkeeping for one periodic output (in simulation time)."""

    __slots__ = ("period_s", "next_s")

    def __init__(self, rate_hz: float) -> None:
        self.period_s = 1.0 / rate_hz if rate_hz > 0 else math.inf
        self.next_s = 0.0

    def due(self, t_s: float, eps: float) -> bool:
        if math.isinf(self.period_s):         # rate 0 (or camera disabled): never due
            return False
        if t_s + eps >= self.next_s:
            self.next_s += self.period_s
            if self.next_s < t_s:             # after a long pause: do not burst
                self.next_s = t_s + self.period_s
            return True
        return False


class _Open3dLidar:
    """A robot's lidar cast on Open3D (:class:`sitebot.sim.raycast.RaycastLidar`): the
    ScanData and noise draws of :meth:`Lidar.scan`; the robot's own bodies (its collision
    group: base, arm) left out as Lidar leaves them out; every other body seen, a held
    object and other robots included (moving bodies, posed at every scan).

    The Open3D copy follows the PyBullet world by itself: before every scan it compares
    the client's body ids, each static body's pose and bounding box and each moving body's
    joint count and mass with those of its last build, and rebuilds on any difference (a
    body spawned or removed by a fault, even under a reused id; a valve lever turned; a
    reset). :meth:`invalidate` forces a rebuild at the next scan."""

    def __init__(self, client_id: int, robot: SimRobot, link_index: int,
                 config: LidarConfig) -> None:
        self.config = config
        self._cid, self._robot, self._link = client_id, robot, link_index
        self._lidar: Any = None
        self._dynamic: frozenset[int] = frozenset()
        self._key: tuple | None = None
        self.rebuilds = 0

    def invalidate(self) -> None:
        self._key = None

    def _world_key(self, ids: tuple[int, ...]) -> tuple:
        cid = self._cid
        return tuple((pb.getNumJoints(b, physicsClientId=cid),
                      pb.getDynamicsInfo(b, -1, physicsClientId=cid)[0]) if b in self._dynamic
                     else (pb.getBasePositionAndOrientation(b, physicsClientId=cid),
                           pb.getAABB(b, physicsClientId=cid)) for b in ids)

    def scan(self, rng: np.random.Generator | None = None) -> ScanData:
        cid = self._cid
        ids = tuple(pb.getBodyUniqueId(i, physicsClientId=cid)
                    for i in range(pb.getNumBodies(physicsClientId=cid)))
        if self._key is None or ids != self._key[0] or self._world_key(ids) != self._key[1]:
            from sitebot.sim.raycast import RaycastLidar, RaycastWorld  # open3d: only if used
            if self._lidar is None:
                world = RaycastWorld(cid, exclude_group=self._robot.collision_group)
                self._lidar = RaycastLidar(world, self._robot.body_id, self._link, self.config)
            else:
                self._lidar.world.rebuild()
            # RaycastWorld's rule: a body with links or mass moves
            self._dynamic = frozenset(b for b in ids if pb.getNumJoints(b, physicsClientId=cid)
                                      or pb.getDynamicsInfo(b, -1, physicsClientId=cid)[0] > 0)
            self._key = (ids, self._world_key(ids))
            self.rebuilds += 1
        return self._lidar.scan(rng)


class _RobotRig:
    """One robot with its hardware seam, controller and sensors."""

    def __init__(self, sim: "SiteSimulation", name: str, pose: Pose2D,
                 index: int) -> None:
        cfg = sim.config
        self.name = name
        self.spawn_pose = pose
        self.rng = np.random.default_rng([cfg.seed, index])
        self.body = SimRobot(sim.client_id, sim.description, pose, cfg.robot, self.rng,
                             name=name, urdf_path=sim.urdf_path)
        self.hardware = SimHardware(self.body)
        d = sim.description
        self.controller: Controller = LockstepController(
            kernel_config_from_description(d, cmd_timeout_s=cfg.cmd_timeout_s,
                                           heartbeat_timeout_s=cfg.heartbeat_timeout_s),
            self.hardware.joint_names, kernel_joint_names(d), d.wheel_joints,
            cfg.time_step_s, supervisor_required=cfg.supervisor_required)
        laser = self.body.link_index("laser_link")
        self.lidar: Lidar | _Open3dLidar = (
            _Open3dLidar(sim.client_id, self.body, laser, cfg.lidar)
            if cfg.lidar_backend == "open3d" else
            Lidar(sim.client_id, self.body.body_id, laser, cfg.lidar))
        self.camera = Camera(sim.client_id, self.body.body_id,
                             self.body.link_index("camera_link"), cfg.camera) \
            if cfg.camera_enabled else None
        self.imu = Imu(cfg.imu)
        self.odometry = WheelOdometry(d.wheel_radius_m, d.wheel_separation_m, cfg.odom)
        self.wheel_idx = [self.hardware.joint_names.index(j) for j in d.wheel_joints]
        self.imu_link = self.body.link_index("imu_link")
        r = cfg.rates
        self.streams = {
            SampleKind.JOINT_STATE: _Stream(r.joint_states_hz),
            SampleKind.ODOM: _Stream(r.odom_hz),
            SampleKind.IMU: _Stream(r.imu_hz),
            SampleKind.SCAN: _Stream(r.scan_hz),
            SampleKind.CAMERA: _Stream(r.camera_hz if self.camera else 0.0),
            SampleKind.GROUND_TRUTH: _Stream(r.ground_truth_hz),
        }
        self.last_state: HardwareState | None = None
        self.last_odom_t = 0.0
        self.last_imu_t = 0.0
        self.last_imu_vel = np.zeros(3)


class SiteSimulation:
    """A world with robots in one PyBullet DIRECT client, stepped at ``config.time_step_s``."""

    def __init__(self, world: WorldSpec | str, robots: Sequence[RobotSpawn] = (RobotSpawn(""),),
                 config: SimConfig | None = None,
                 description: RobotDescription | None = None,
                 controller_factory: Callable[["SiteSimulation", str], Controller] | None = None,
                 ) -> None:
        self.config = config or SimConfig()
        self.world = load_world(world) if isinstance(world, str) else world
        self.description = description or load_robot_description()
        if not robots:
            raise SimulationError("at least one robot is needed")
        names = [r.name for r in robots]
        if len(set(names)) != len(names):
            raise SimulationError(f"robot names must be unique, got {names}")
        # spawn poses first: an unknown one must not leave a PyBullet client behind
        self._spawns: list[tuple[str, Pose2D]] = []
        for i, r in enumerate(robots):
            pose = r.pose
            if pose is None:
                key = r.name or "robot1"
                if key not in self.world.spawn_poses:
                    raise SimulationError(
                        f"world '{self.world.id}' has no spawn pose '{key}'; it has: "
                        + ", ".join(sorted(self.world.spawn_poses)))
                pose = tuple(self.world.spawn_poses[key])
            self._spawns.append((r.name, tuple(float(v) for v in pose)))
        self._tmp = tempfile.TemporaryDirectory(prefix="sitebot-sim-")
        tmp = Path(self._tmp.name)
        self.client_id = pb.connect(pb.DIRECT)
        try:
            self.urdf_path = write_urdf_file(self.description, tmp,
                                             frame_mass_kg=self.config.robot.frame_link_mass_kg)
            pb.setGravity(0, 0, -9.81, physicsClientId=self.client_id)
            pb.setTimeStep(self.config.time_step_s, physicsClientId=self.client_id)
            self.scene = Scene(self.client_id, self.world, tmp / "textures")
            self.lighting = self.scene.lighting(self.config.lighting or None)
            self.robots: dict[str, _RobotRig] = {}
            for i, (name, pose) in enumerate(self._spawns):
                self.robots[name] = _RobotRig(self, name, pose, i)
        except BaseException:
            self.close()        # no PyBullet client or temporary folder left behind
            raise
        self._people_do_not_touch_robots()
        movable = tuple(self.scene.movable_body_ids.values())
        for rig in self.robots.values():
            rig.grasp = GraspAssist(rig.body, movable)
        self._grasp = _Stream(GRASP_UPDATE_HZ)
        if controller_factory is not None:
            for name, rig in self.robots.items():
                rig.controller = controller_factory(self, name)
        self.step_count = 0
        self._actors = _Stream(self.config.actor_update_hz)
        self.scene.update(0.0)

    def world_changed(self) -> None:
        """Say that bodies were added, removed or moved by hand: the Open3D lidars rebuild
        their copy at the next scan (they also notice such changes by themselves)."""
        for rig in self.robots.values():
            if isinstance(rig.lidar, _Open3dLidar):
                rig.lidar.invalidate()

    def _people_do_not_touch_robots(self) -> None:
        """People are kinematic (placed each update): in contact they would shove a robot
        with unbounded force. So they never collide with robots; lidar rays and cameras still
        see them, and contact with people is judged geometrically (separation from ground
        truth), never by the physics."""
        cid = self.client_id
        for actor in self.scene.actor_body_ids.values():
            actor_links = range(-1, pb.getNumJoints(actor, physicsClientId=cid))
            for rig in self.robots.values():
                body = rig.body.body_id
                for rl in range(-1, pb.getNumJoints(body, physicsClientId=cid)):
                    for al in actor_links:
                        pb.setCollisionFilterPair(body, actor, rl, al, enableCollision=0,
                                                  physicsClientId=cid)

    # ------------------------------------------------------------------ time
    @property
    def time_s(self) -> float:
        """Simulation time [s] (exact multiple of the step)."""
        return self.step_count * self.config.time_step_s

    # ------------------------------------------------------------------ stepping
    def step(self) -> list[Sample]:
        """Advance one physics step; return the samples due at the new time."""
        dt = self.config.time_step_s
        t0 = self.time_s
        for rig in self.robots.values():
            state = rig.hardware.read(t0)
            rig.last_state = state
            rig.hardware.write(rig.controller.update(state, t0))
        pb.stepSimulation(physicsClientId=self.client_id)
        self.step_count += 1
        t = self.time_s
        eps = 0.25 * dt
        if self._grasp.due(t, eps):
            for rig in self.robots.values():
                rig.grasp.update()
        if self._actors.due(t, eps):
            self.scene.update(t, [(bp.x_m, bp.y_m) for bp in
                                  (rig.body.base_pose() for rig in self.robots.values())])
        out: list[Sample] = []
        for rig in self.robots.values():
            s = rig.streams
            state = None
            if s[SampleKind.JOINT_STATE].due(t, eps):
                state = rig.hardware.read(t)
                out.append(Sample(rig.name, SampleKind.JOINT_STATE, t, state))
            if s[SampleKind.ODOM].due(t, eps):
                state = state or rig.hardware.read(t)
                odt = t - rig.last_odom_t
                rig.last_odom_t = t
                odom = rig.odometry.update(float(state.positions[rig.wheel_idx[0]]),
                                           float(state.positions[rig.wheel_idx[1]]), odt, rig.rng)
                out.append(Sample(rig.name, SampleKind.ODOM, t, odom))
            if s[SampleKind.IMU].due(t, eps):
                out.append(Sample(rig.name, SampleKind.IMU, t, self._imu_sample(rig, t)))
            if s[SampleKind.SCAN].due(t, eps):
                out.append(Sample(rig.name, SampleKind.SCAN, t, rig.lidar.scan(rig.rng)))
            if s[SampleKind.CAMERA].due(t, eps):
                out.append(Sample(rig.name, SampleKind.CAMERA, t, rig.camera.render(self.lighting)))
            if s[SampleKind.GROUND_TRUTH].due(t, eps):
                out.append(Sample(rig.name, SampleKind.GROUND_TRUTH, t, self.ground_truth(rig.name)))
        return out

    def _imu_sample(self, rig: _RobotRig, t: float):
        lin, ang = pb.getBaseVelocity(rig.body.body_id, physicsClientId=self.client_id)
        _, orn = pb.getBasePositionAndOrientation(rig.body.body_id, physicsClientId=self.client_id)
        dt = t - rig.last_imu_t
        lin = np.asarray(lin)
        acc = (lin - rig.last_imu_vel) / dt if dt > 0 else np.zeros(3)
        rig.last_imu_t, rig.last_imu_vel = t, lin
        return rig.imu.sample(tuple(orn), np.asarray(ang), acc, dt, rig.rng)

    def run_for(self, duration_s: float) -> list[Sample]:
        """Step for ``duration_s`` of simulation time; return every sample produced."""
        n = int(round(duration_s / self.config.time_step_s))
        out: list[Sample] = []
        for _ in range(n):
            out.extend(self.step())
        return out

    # ------------------------------------------------------------------ commands
    def robot(self, name: str = "") -> _RobotRig:
        try:
            return self.robots[name]
        except KeyError:
            raise SimulationError(f"no robot '{name}'; robots: {sorted(self.robots)}") from None

    def ask_to_pass(self, name: str = "") -> None:
        """Robot ``name`` asks the people near it to let it pass (its speaker): people who
        yield and stand in its way step aside (:class:`sitebot.sim.people.Crowd`)."""
        bp = self.robot(name).body.base_pose()
        self.scene.crowd.hear(bp.x_m, bp.y_m, self.time_s)

    # ------------------------------------------------------------------ truth
    def ground_truth(self, name: str = "") -> GroundTruth:
        rig = self.robot(name)
        bp = rig.body.base_pose()
        x, y, z, q = bp.x_m, bp.y_m, bp.z_m, bp.orientation_xyzw
        lin_b, ang_b = rig.body.base_twist()
        return GroundTruth(x, y, quaternion_to_yaw(q), z, tuple(q), tuple(lin_b), tuple(ang_b),
                           tuple(self.scene.people()), self.scene.object_positions())

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None) -> None:
        """Robots back to their spawn poses, actors to their start, time to zero."""
        if seed is not None:
            self.config = replace(self.config, seed=int(seed))
        for rig in self.robots.values():
            rig.grasp.release()
        self.scene.reset()
        self._grasp.next_s = 0.0
        for i, (name, pose) in enumerate(self._spawns):
            rig = self.robots[name]
            rig.body.reset(pose)
            rig.controller.reset()
            rig.rng = np.random.default_rng([self.config.seed, i])
            rig.odometry = WheelOdometry(self.description.wheel_radius_m,
                                         self.description.wheel_separation_m, self.config.odom)
            rig.imu = Imu(self.config.imu)
            for st in rig.streams.values():
                st.next_s = 0.0
            rig.last_odom_t = rig.last_imu_t = 0.0
            rig.last_imu_vel = np.zeros(3)
        self.step_count = 0
        self._actors.next_s = 0.0
        self.scene.update(0.0)
        self.world_changed()

    def close(self) -> None:
        if self.client_id >= 0:
            try:
                pb.disconnect(physicsClientId=self.client_id)
            finally:
                self.client_id = -1
                self._tmp.cleanup()

    def __enter__(self) -> "SiteSimulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
