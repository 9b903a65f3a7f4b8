"""The robot's simulated body in PyBullet, and the hardware interface over it.

Every object here is bound to one PyBullet client id (``physicsClientId``); nothing is
kept at module level, so several simulations (and several robots per simulation) can
share one process.  The simulation is stepped by its owner (the world), never here.

Ground truth: :meth:`SimRobot.base_pose` and :meth:`SimRobot.base_twist` give the pose
of the root frame ``base_footprint`` (on the ground, between the wheels) and its twist in
that frame.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pybullet as pb

from sitebot.control.hardware import CommandMode, HardwareCommand, HardwareInterface, HardwareState
from sitebot.description.urdf import RobotDescription, write_urdf_file
from sitebot.errors import SimulationError
from sitebot.sim.sensors import (COLLISION_GROUP_USER_DATA_KEY, DEFAULT_ROBOT_COLLISION_GROUP,
                                 robot_collision_group)
from sitebot.types import Pose2D, quaternion_to_yaw, yaw_to_quaternion

__all__ = [
    "STOW_ARM_POSITIONS_RAD",
    "SimRobotConfig",
    "BasePose",
    "BaseTwist",
    "LinkPose",
    "LinkVelocity",
    "SimRobot",
    "SimHardware",
]

#: Arm folded over the chassis, below the mast camera's field of view and clear of the
#: lidar, gripper pointing down [rad] (arm_joint_1 .. arm_joint_6).
STOW_ARM_POSITIONS_RAD: tuple[float, ...] = (0.0, -0.5, 2.5, 0.0, 1.14, 0.0)

#: Collision-filter bits PyBullet itself uses (default, static, kinematic, debris,
#: sensor trigger, character); a robot's own group bit must lie above them.
_MIN_GROUP_BIT = DEFAULT_ROBOT_COLLISION_GROUP.bit_length() - 1  # 6
_MAX_GROUP_BIT = 30


@dataclass(frozen=True)
class SimRobotConfig:
    """How the robot is put into the simulation.

    :param wheel_lateral_friction: Coulomb friction coefficient of the drive wheels [-],
        in [0, 5].  Default 1.0 (rubber on concrete).
    :param wheel_rolling_friction: rolling friction of the drive wheels [-], in [0, 1].
    :param wheel_spinning_friction: spinning (torsional) friction of the wheels [-], in [0, 1].
    :param caster_friction: lateral, rolling and spinning friction of the caster spheres [-],
        in [0, 1].  Default 0: casters are modelled as frictionless ball transfers.
    :param finger_lateral_friction: friction of the gripper fingers [-], in [0, 5]; default
        1.0 (rubber pads, so grasped objects do not slip out).
    :param friction_jitter: relative 1-sigma random variation of the wheel friction, drawn
        once per robot from the constructor's ``rng`` [-], in [0, 0.5].  Default 0.
    :param frame_link_mass_kg: mass given to links without ``<inertial>`` (pure frames) [kg],
        in (0, 0.1].  PyBullet would give them 1 kg each.
    :param collision_group_bit: bit (6..30) of the robot's PyBullet collision-filter group,
        or ``None`` (default) for the lowest bit no other SimRobot in the same simulation
        uses.  The lidar leaves its robot's group out of its rays, so it does not see its
        own robot; robots sharing one simulation need different bits to see each other.
    :param initial_arm_positions_rad: arm joint positions at load and on reset [rad], six
        values within the joint limits (checked against the description at load).
    :param initial_gripper_opening_m: finger joint position at load and reset [m].
    :param position_gain: PyBullet position-control gain (0, 1] used for POSITION commands.
    :param brake_hold_speed: joint speed [rad/s | m/s] in [0, 1] below which BRAKE and zero
        VELOCITY commands latch and hold the joint's position (see :class:`SimHardware`).
    """

    wheel_lateral_friction: float = 1.0
    wheel_rolling_friction: float = 0.0
    wheel_spinning_friction: float = 0.0
    caster_friction: float = 0.0
    finger_lateral_friction: float = 1.0
    friction_jitter: float = 0.0
    frame_link_mass_kg: float = 1e-3
    collision_group_bit: int | None = None
    initial_arm_positions_rad: tuple[float, ...] = STOW_ARM_POSITIONS_RAD
    initial_gripper_opening_m: float = 0.0
    position_gain: float = 0.3
    brake_hold_speed: float = 0.05

    def __post_init__(self) -> None:
        ranges = {
            "wheel_lateral_friction": (0.0, 5.0),
            "wheel_rolling_friction": (0.0, 1.0),
            "wheel_spinning_friction": (0.0, 1.0),
            "caster_friction": (0.0, 1.0),
            "finger_lateral_friction": (0.0, 5.0),
            "friction_jitter": (0.0, 0.5),
            "brake_hold_speed": (0.0, 1.0),
        }
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"SimRobotConfig.{name}={v!r}: accepted range [{lo}, {hi}]")
        if not (math.isfinite(self.frame_link_mass_kg) and 0.0 < self.frame_link_mass_kg <= 0.1):
            raise ValueError(f"SimRobotConfig.frame_link_mass_kg={self.frame_link_mass_kg!r}: "
                             "accepted range (0, 0.1] kg")
        bit = self.collision_group_bit
        if bit is not None and not (isinstance(bit, int) and not isinstance(bit, bool)
                                    and _MIN_GROUP_BIT <= bit <= _MAX_GROUP_BIT):
            raise ValueError(f"SimRobotConfig.collision_group_bit={bit!r}: accepted: None "
                             f"(automatic) or an integer in [{_MIN_GROUP_BIT}, {_MAX_GROUP_BIT}]")
        arm = tuple(float(q) for q in self.initial_arm_positions_rad)
        if len(arm) != 6 or not all(math.isfinite(q) for q in arm):
            raise ValueError(f"SimRobotConfig.initial_arm_positions_rad={arm!r}: accepted: "
                             "six finite joint positions [rad]")
        object.__setattr__(self, "initial_arm_positions_rad", arm)
        if not math.isfinite(self.initial_gripper_opening_m):
            raise ValueError("SimRobotConfig.initial_gripper_opening_m must be finite [m]")
        if not (math.isfinite(self.position_gain) and 0.0 < self.position_gain <= 1.0):
            raise ValueError(f"SimRobotConfig.position_gain={self.position_gain!r}: "
                             "accepted range (0, 1]")



class BasePose(NamedTuple):
    """Pose of ``base_footprint`` in the world: position [m], orientation quaternion (x, y, z, w)."""

    x_m: float
    y_m: float
    z_m: float
    orientation_xyzw: tuple[float, float, float, float]

    @property
    def yaw_rad(self) -> float:
        """Heading about world z [rad], in (-pi, pi]."""
        return quaternion_to_yaw(self.orientation_xyzw)


class BaseTwist(NamedTuple):
    """Twist of ``base_footprint`` expressed in its own frame: [m/s] and [rad/s]."""

    linear_mps: tuple[float, float, float]
    angular_radps: tuple[float, float, float]


class LinkPose(NamedTuple):
    """World pose of a link frame: position [m], orientation quaternion (x, y, z, w)."""

    position_m: tuple[float, float, float]
    orientation_xyzw: tuple[float, float, float, float]


class LinkVelocity(NamedTuple):
    """World-frame velocity of a link's centre of mass: [m/s] and [rad/s]."""

    linear_mps: tuple[float, float, float]
    angular_radps: tuple[float, float, float]


class SimRobot:
    """The robot loaded into one PyBullet simulation.

    :param client_id: PyBullet physics client id.
    :param description: the validated robot description.
    :param pose_xyyaw: initial (x [m], y [m], yaw [rad]) of ``base_footprint``.
    :param config: physical set-up; see :class:`SimRobotConfig`.
    :param rng: random generator for the configured randomisation (friction jitter).
    :param name: a name for messages (e.g. the robot's namespace).
    :param urdf_path: an already written URDF file of ``description`` (see
        :func:`~sitebot.description.urdf.write_urdf_file`) to load instead of writing a temporary one.
    :raises SimulationError: PyBullet cannot load the description, or every collision
        group bit is taken.
    """

    def __init__(self, client_id: int, description: RobotDescription,
                 pose_xyyaw: Pose2D = Pose2D(0.0, 0.0, 0.0),
                 config: SimRobotConfig | None = None,
                 rng: np.random.Generator | None = None, name: str = "", *,
                 urdf_path: Path | str | None = None) -> None:
        self._cid = int(client_id)
        self._desc = description
        self._config = config if config is not None else SimRobotConfig()
        self._name = name or description.name
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._check_pose(pose_xyyaw)
        self._check_initial_positions()

        x, y, yaw = (float(v) for v in pose_xyyaw)
        # inertias from the URDF, not from the collision shapes; true cylinders for the
        # wheels (the default polygonal hull rolls onto a facet and bumps while driving)
        flags = pb.URDF_USE_INERTIA_FROM_FILE | pb.URDF_USE_IMPLICIT_CYLINDER
        group = self._choose_collision_group()
        try:
            if urdf_path is not None:
                self._body = self._load(Path(urdf_path), x, y, yaw, flags)
            else:
                with tempfile.TemporaryDirectory(prefix="sitebot_urdf_") as tmp:
                    path = write_urdf_file(description, tmp,
                                           frame_mass_kg=self._config.frame_link_mass_kg)
                    self._body = self._load(path, x, y, yaw, flags)
        except pb.error as exc:
            raise SimulationError(f"robot '{self._name}': PyBullet could not load "
                                  f"{description.source}: {exc}") from exc

        # name -> index maps (the root link is PyBullet's base, index -1)
        self._joint_index: dict[str, int] = {}
        self._link_index: dict[str, int] = {description.root_link: -1}
        for j in range(pb.getNumJoints(self._body, physicsClientId=self._cid)):
            info = pb.getJointInfo(self._body, j, physicsClientId=self._cid)
            self._joint_index[info[1].decode()] = j
            self._link_index[info[12].decode()] = j

        self._wheels = tuple(self._joint_index[n] for n in description.wheel_joints)
        self._collision_group = group
        pb.addUserData(self._body, COLLISION_GROUP_USER_DATA_KEY, str(group),
                       physicsClientId=self._cid)
        self._setup_dynamics()
        self._generation = 0
        self.reset(pose_xyyaw)

    # ---- properties ---------------------------------------------------------------
    @property
    def client_id(self) -> int:
        return self._cid

    @property
    def body_id(self) -> int:
        """PyBullet body unique id."""
        return self._body

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> RobotDescription:
        return self._desc

    @property
    def config(self) -> SimRobotConfig:
        return self._config

    @property
    def generation(self) -> int:
        """How many times the robot has been reset (1 after construction)."""
        return self._generation

    @property
    def collision_group(self) -> int:
        """The robot's collision-filter group, ``1 << bit`` (the lidar leaves it out)."""
        return self._collision_group

    # ---- names --------------------------------------------------------------------
    def link_index(self, name: str) -> int:
        """PyBullet link index of link ``name`` (full or unprefixed); -1 for the root."""
        for candidate in (name, self._desc.prefixed(name)):
            if candidate in self._link_index:
                return self._link_index[candidate]
        raise SimulationError(f"robot '{self._name}' has no link '{name}'; links are: "
                              f"{', '.join(self._link_index)}")

    def joint_index(self, name: str) -> int:
        """PyBullet joint index of joint ``name`` (full or unprefixed)."""
        for candidate in (name, self._desc.prefixed(name)):
            if candidate in self._joint_index:
                return self._joint_index[candidate]
        raise SimulationError(f"robot '{self._name}' has no joint '{name}'; joints are: "
                              f"{', '.join(self._joint_index)}")

    # ---- set-up -------------------------------------------------------------------
    @staticmethod
    def _check_pose(pose_xyyaw: Sequence[float]) -> None:
        if len(pose_xyyaw) != 3 or not all(math.isfinite(float(v)) for v in pose_xyyaw):
            raise ValueError(f"pose_xyyaw={tuple(pose_xyyaw)!r}: accepted: three finite "
                             "numbers (x [m], y [m], yaw [rad])")

    def _check_initial_positions(self) -> None:
        checks = list(zip(self._desc.arm_joints, self._config.initial_arm_positions_rad))
        checks += [(self._desc.gripper_joints[0], self._config.initial_gripper_opening_m)]
        for jname, q in checks:
            j = self._desc.joints[jname]
            if j.lower is not None and j.upper is not None and not j.lower <= q <= j.upper:
                raise ValueError(f"SimRobotConfig: initial position {q} of joint '{jname}' is "
                                 f"outside its limits [{j.lower}, {j.upper}]")

    def _load(self, path: Path, x: float, y: float, yaw: float, flags: int) -> int:
        return pb.loadURDF(str(path), basePosition=(x, y, 0.0),
                           baseOrientation=yaw_to_quaternion(yaw), useFixedBase=False,
                           flags=flags, physicsClientId=self._cid)

    def _choose_collision_group(self) -> int:
        """The configured group, or the lowest one no other SimRobot here has taken."""
        if self._config.collision_group_bit is not None:
            return 1 << self._config.collision_group_bit
        taken = set()
        for i in range(pb.getNumBodies(physicsClientId=self._cid)):
            other = pb.getBodyUniqueId(i, physicsClientId=self._cid)
            group = robot_collision_group(self._cid, other)
            if group is not None:
                taken.add(group)
        for bit in range(_MIN_GROUP_BIT, _MAX_GROUP_BIT + 1):
            if 1 << bit not in taken:
                return 1 << bit
        raise SimulationError(f"robot '{self._name}': all {_MAX_GROUP_BIT - _MIN_GROUP_BIT + 1} "
                              "collision group bits are taken by other robots in this simulation")

    def _setup_dynamics(self) -> None:
        cfg, cid, body = self._config, self._cid, self._body
        # pure frames get a tiny mass (PyBullet gives inertia-less links 1 kg; this also
        # covers a urdf_path written without frame_mass_kg)
        tiny = 0.4 * cfg.frame_link_mass_kg * 0.01 ** 2
        for link, info in self._desc.link_infos.items():
            if info.mass_kg is None and link in self._link_index:
                pb.changeDynamics(body, self._link_index[link], mass=cfg.frame_link_mass_kg,
                                  localInertiaDiagonal=(tiny, tiny, tiny), physicsClientId=cid)
        friction = cfg.wheel_lateral_friction
        if cfg.friction_jitter > 0.0:
            friction = max(0.0, friction * (1.0 + cfg.friction_jitter * self._rng.standard_normal()))
        for j in self._wheels:
            pb.changeDynamics(body, j, lateralFriction=friction,
                              rollingFriction=cfg.wheel_rolling_friction,
                              spinningFriction=cfg.wheel_spinning_friction,
                              physicsClientId=cid)
        for link in self._desc.caster_links:
            pb.changeDynamics(body, self._link_index[link], lateralFriction=cfg.caster_friction,
                              rollingFriction=cfg.caster_friction,
                              spinningFriction=cfg.caster_friction, physicsClientId=cid)
        for jname in self._desc.gripper_joints:
            pb.changeDynamics(body, self._joint_index[jname],
                              lateralFriction=cfg.finger_lateral_friction, physicsClientId=cid)
        # own collision group, colliding with everything; self-collision stays off
        # (loadURDF without URDF_USE_SELF_COLLISION).
        for link in self._link_index.values():
            pb.setCollisionFilterGroupMask(body, link, self._collision_group, -1,
                                           physicsClientId=cid)

    # ---- state --------------------------------------------------------------------
    def reset(self, pose_xyyaw: Pose2D) -> None:
        """Put the robot at rest at ``pose_xyyaw`` (x [m], y [m], yaw [rad]) with the arm
        and gripper at their initial positions and the wheels braked."""
        self._check_pose(pose_xyyaw)
        self._generation += 1
        x, y, yaw = (float(v) for v in pose_xyyaw)
        cid, body = self._cid, self._body
        pb.resetBasePositionAndOrientation(body, (x, y, 0.0), yaw_to_quaternion(yaw),
                                           physicsClientId=cid)
        pb.resetBaseVelocity(body, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=cid)
        targets = self.initial_positions()
        for jname, j in self._joint_index.items():
            if self._desc.joints[jname].type.movable:
                pb.resetJointState(body, j, targets.get(jname, 0.0), 0.0, physicsClientId=cid)
        self.hold()

    def initial_positions(self) -> dict[str, float]:
        """Joint positions [rad | m] the robot is reset to, by joint name."""
        out = dict(zip(self._desc.arm_joints, self._config.initial_arm_positions_rad))
        opening = self._config.initial_gripper_opening_m
        for jname in self._desc.gripper_joints:
            mimic = self._desc.joints[jname].mimic
            out[jname] = opening if mimic is None else mimic.multiplier * opening + mimic.offset
        return out

    def hold(self) -> None:
        """Hold every joint (arm, gripper, wheels) at its current position, full effort."""
        cid, body = self._cid, self._body
        for jname in self._desc.arm_joints + self._desc.gripper_joints:
            j = self._joint_index[jname]
            q = pb.getJointState(body, j, physicsClientId=cid)[0]
            info = self._desc.joints[jname]
            pb.setJointMotorControl2(body, j, pb.POSITION_CONTROL, targetPosition=q,
                                     force=info.effort_limit, maxVelocity=info.velocity_limit,
                                     positionGain=self._config.position_gain,
                                     physicsClientId=cid)
        for jname in self._desc.wheel_joints:
            j = self._joint_index[jname]
            q = pb.getJointState(body, j, physicsClientId=cid)[0]
            pb.setJointMotorControl2(body, j, pb.POSITION_CONTROL, targetPosition=q,
                                     targetVelocity=0.0,
                                     force=self._desc.joints[jname].effort_limit,
                                     positionGain=self._config.position_gain,
                                     physicsClientId=cid)

    def base_pose(self) -> BasePose:
        """World pose of ``base_footprint`` (ground truth)."""
        pos, orn = pb.getBasePositionAndOrientation(self._body, physicsClientId=self._cid)
        return BasePose(float(pos[0]), float(pos[1]), float(pos[2]),
                        tuple(float(v) for v in orn))  # type: ignore[arg-type]

    def base_twist(self) -> BaseTwist:
        """Twist of ``base_footprint`` in its own frame (x forward, y left, z up)."""
        lin, ang = pb.getBaseVelocity(self._body, physicsClientId=self._cid)
        _, orn = pb.getBasePositionAndOrientation(self._body, physicsClientId=self._cid)
        rot = np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)
        v = rot.T @ np.asarray(lin)
        w = rot.T @ np.asarray(ang)
        return BaseTwist(tuple(float(a) for a in v), tuple(float(a) for a in w))  # type: ignore[arg-type]

    def link_pose(self, link: str | int) -> LinkPose:
        """World pose of a link's URDF frame (by name or PyBullet index)."""
        idx = self.link_index(link) if isinstance(link, str) else int(link)
        if idx == -1:
            pos, orn = pb.getBasePositionAndOrientation(self._body, physicsClientId=self._cid)
        else:
            state = pb.getLinkState(self._body, idx, computeForwardKinematics=True,
                                    physicsClientId=self._cid)
            pos, orn = state[4], state[5]
        return LinkPose(tuple(float(v) for v in pos), tuple(float(v) for v in orn))  # type: ignore[arg-type]

    def link_velocity(self, link: str | int) -> LinkVelocity:
        """World-frame linear [m/s] and angular [rad/s] velocity of a link's centre of mass."""
        idx = self.link_index(link) if isinstance(link, str) else int(link)
        if idx == -1:
            lin, ang = pb.getBaseVelocity(self._body, physicsClientId=self._cid)
        else:
            state = pb.getLinkState(self._body, idx, computeLinkVelocity=True,
                                    computeForwardKinematics=True, physicsClientId=self._cid)
            lin, ang = state[6], state[7]
        return LinkVelocity(tuple(float(v) for v in lin), tuple(float(v) for v in ang))  # type: ignore[arg-type]

    def remove(self) -> None:
        """Remove the robot's body from the simulation."""
        pb.removeBody(self._body, physicsClientId=self._cid)


class SimHardware(HardwareInterface):
    """:class:`~sitebot.control.hardware.HardwareInterface` over a :class:`SimRobot`.

    Command handling, per joint (limits from the URDF):

    * POSITION: PyBullet POSITION_CONTROL to the target clipped to [lower, upper], with
      the effort limit as maximum force and the velocity limit as maximum speed;
    * VELOCITY: VELOCITY_CONTROL to the target clipped to +-velocity limit, effort limit
      as maximum force;
    * EFFORT: the motor is released and the torque/force (clipped to +-effort limit) is
      applied for the next physics step only: write it every control tick;
    * BRAKE: VELOCITY_CONTROL to 0 with the full effort limit.

    Standstill: a BRAKE, or a VELOCITY command of exactly 0, given while the joint moves
    slower than ``SimRobotConfig.brake_hold_speed`` latches the joint's position and holds
    it (POSITION_CONTROL, full effort) for as long as such commands keep coming.  This is
    what a real drive's velocity loop does with its integral term; PyBullet's velocity
    motor alone lets a standing robot creep by about 0.4 mm/s.

    Joints that ``<mimic>`` a commanded joint (the right finger) follow it: they get the
    same mode with ``multiplier * value (+ offset for positions)``.  Mimic joints cannot be
    listed in ``joint_names`` themselves.

    :param robot: the simulated robot.
    :param joint_names: the joints to expose, default ``description.actuated_joints``
        (wheels, arm, left finger).
    """

    def __init__(self, robot: SimRobot, joint_names: Sequence[str] | None = None) -> None:
        desc = robot.description
        names = tuple(joint_names) if joint_names is not None else desc.actuated_joints
        for n in names:
            if n not in desc.joints or not desc.joints[n].type.movable:
                movable = ", ".join(desc.movable_joints)
                raise ValueError(f"joint '{n}' is not a movable joint of the robot; "
                                 f"accepted: {movable}")
            if desc.joints[n].mimic is not None:
                raise ValueError(f"joint '{n}' mimics '{desc.joints[n].mimic.joint}'; "
                                 "command that joint instead")
        super().__init__(names)
        self._robot = robot
        self._cid = robot.client_id
        self._body = robot.body_id
        self._index = [robot.joint_index(n) for n in names]
        infos = [desc.joints[n] for n in names]
        inf = math.inf
        # plain float lists: read per joint per physics step
        self._lower = [float(j.lower) if j.lower is not None else -inf for j in infos]
        self._upper = [float(j.upper) if j.upper is not None else inf for j in infos]
        self._vmax = [float(j.velocity_limit or inf) for j in infos]
        self._fmax = [float(j.effort_limit or 0.0) for j in infos]
        # followers[i]: (pybullet index, multiplier, offset, effort limit, velocity limit)
        self._followers: list[list[tuple[int, float, float, float, float]]] = [[] for _ in names]
        for jname, j in desc.joints.items():
            if j.mimic is not None and j.mimic.joint in names:
                i = names.index(j.mimic.joint)
                self._followers[i].append((robot.joint_index(jname), j.mimic.multiplier,
                                           j.mimic.offset, j.effort_limit or 0.0,
                                           j.velocity_limit or inf))
        self._all_index = list(self._index) + [f[0] for fs in self._followers for f in fs]
        self._modes: list[CommandMode | None] = [None] * len(names)
        self._applied_effort = np.zeros(len(names))
        # latched hold positions of stopped joints, by PyBullet joint index
        self._hold: dict[int, float] = {}
        # last (mode, target) sent to each PyBullet joint; cleared when the robot is reset
        self._sent: dict[int, tuple[CommandMode, float]] = {}
        self._generation = robot.generation

    @property
    def robot(self) -> SimRobot:
        return self._robot

    def read(self, time_s: float) -> HardwareState:
        states = pb.getJointStates(self._body, self._index, physicsClientId=self._cid)
        pos = np.fromiter((s[0] for s in states), dtype=np.float64, count=len(states))
        vel = np.fromiter((s[1] for s in states), dtype=np.float64, count=len(states))
        eff = np.fromiter((s[3] for s in states), dtype=np.float64, count=len(states))
        for i, mode in enumerate(self._modes):
            if mode is CommandMode.EFFORT:
                eff[i] = self._applied_effort[i]
        return HardwareState(float(time_s), pos, vel, eff)

    def _apply(self, command: HardwareCommand) -> None:
        values = command.values
        hold_speed = self._robot.config.brake_hold_speed
        if self._generation != self._robot.generation:  # the robot was reset
            self._hold.clear()
            self._generation = self._robot.generation
            self._sent.clear()
        measured = None
        if any(m is CommandMode.BRAKE or (m is CommandMode.VELOCITY and values[i] == 0.0)
               for i, m in enumerate(command.mode)):
            states = pb.getJointStates(self._body, self._all_index, physicsClientId=self._cid)
            measured = {j: (st[0], st[1]) for j, st in zip(self._all_index, states)}
        for i, mode in enumerate(command.mode):
            v = float(values[i])
            if mode is CommandMode.POSITION:
                value = min(max(v, self._lower[i]), self._upper[i])
            elif mode is CommandMode.VELOCITY:
                value = min(max(v, -self._vmax[i]), self._vmax[i])
            elif mode is CommandMode.EFFORT:
                value = min(max(v, -self._fmax[i]), self._fmax[i])
                self._applied_effort[i] = value
            else:
                value = 0.0
            stopping = mode is CommandMode.BRAKE or (mode is CommandMode.VELOCITY and value == 0.0)
            targets = [(self._index[i], 1.0, 0.0, self._fmax[i], self._vmax[i])]
            targets += self._followers[i]
            for j, mult, offset, fmax, vmax in targets:
                if stopping:
                    q, qdot = measured[j]
                    if j not in self._hold and abs(qdot) <= hold_speed:
                        self._hold[j] = q
                    if j in self._hold:
                        self._command_joint(j, CommandMode.POSITION, self._hold[j], fmax, vmax)
                    else:
                        self._command_joint(j, CommandMode.BRAKE, 0.0, fmax, vmax)
                    continue
                self._hold.pop(j, None)
                if mode is CommandMode.POSITION:
                    target = mult * value + offset
                else:
                    target = mult * value
                self._command_joint(j, mode, target, fmax, vmax)
            self._modes[i] = mode

    def _command_joint(self, j: int, mode: CommandMode, value: float, fmax: float,
                       vmax: float) -> None:
        # PyBullet motors keep their last target: re-sending an unchanged position,
        # velocity or brake command every step only costs time. Effort lasts one step.
        key = (mode, value)
        if mode is not CommandMode.EFFORT and self._sent.get(j) == key:
            return
        self._sent[j] = key
        cid, body = self._cid, self._body
        if mode is CommandMode.POSITION:
            pb.setJointMotorControl2(body, j, pb.POSITION_CONTROL, targetPosition=value,
                                     targetVelocity=0.0, force=fmax, maxVelocity=vmax,
                                     positionGain=self._robot.config.position_gain,
                                     physicsClientId=cid)
        elif mode is CommandMode.VELOCITY:
            pb.setJointMotorControl2(body, j, pb.VELOCITY_CONTROL, targetVelocity=value,
                                     force=fmax, physicsClientId=cid)
        elif mode is CommandMode.EFFORT:
            # release the joint motor, then apply the torque for the next step
            pb.setJointMotorControl2(body, j, pb.VELOCITY_CONTROL, targetVelocity=0.0,
                                     force=0.0, physicsClientId=cid)
            pb.setJointMotorControl2(body, j, pb.TORQUE_CONTROL, force=value,
                                     physicsClientId=cid)
        else:  # BRAKE
            pb.setJointMotorControl2(body, j, pb.VELOCITY_CONTROL, targetVelocity=0.0,
                                     force=fmax, physicsClientId=cid)
