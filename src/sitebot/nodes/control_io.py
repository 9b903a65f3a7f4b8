"""ControlIO: the ROS side of the control loop, shared by every loop driver.

A loop driver (the simulator's lockstep PyBullet backend, the ``control_loop`` node for
ros2_control hardware) owns the kernel's tick; :class:`ControlIO` owns everything that
arrives from and goes back to ROS:

* subscriptions (topics relative, under ``prefix`` when given):
  ``cmd_vel`` (geometry_msgs/TwistStamped), ``arm/joint_trajectory``
  (trajectory_msgs/JointTrajectory), ``safety/state`` (sitebot_interfaces/SafetyState: the
  supervisor's heartbeat, speed scale and stop category);
* publication: ``control/state`` (sitebot_interfaces/ControllerStatus) via
  :meth:`ControlIO.publish_state`, at a rate the driver chooses (decimated);
* a ``diagnostic_msgs/DiagnosticStatus`` for the driver's ``/diagnostics``
  (:meth:`ControlIO.diagnostic_status`).

Validation of a JointTrajectory before it reaches the kernel (:func:`convert_trajectory`):
unknown joint names, duplicate names, mismatched array lengths, non-increasing or negative
``time_from_start``, NaN/Inf, positions outside the joint limits, and an empty message are
rejected with a warning naming the problem (throttled per kind of problem); when the kernel
itself rejects what passed (too many points, ...), the warning names the kernel's
:class:`~sitebot.control.kernel.Reject` code.  A rejected trajectory leaves the active one
unchanged: the robot keeps doing what it did, or holds.

Decisions:

* **subset of joints**: accepted.  The joints the message does not name *hold their
  current setpoint* (position = the kernel's latest setpoint, velocity and acceleration
  0 at every point), i.e. a trajectory for the gripper alone freezes the arm where it is
  commanded now rather than letting an older arm trajectory continue.  Before the loop has
  ticked once there is no setpoint, and a subset is rejected.
* joint names are reordered to the kernel's order; joints listed in ``ignored_joint_names``
  (e.g. the right finger, a URDF mimic of the left one) are dropped without complaint.
* ``header.stamp`` zero: start now.  A stamp in the future starts the trajectory then
  (the kernel holds until then).  A stamp in the past starts it now, complete (a late
  message is executed late, never by skipping ahead, which would make the setpoint jump).
* the first point may have ``time_from_start`` 0 only if it equals the current setpoint
  (within 1e-3): anything else would be a setpoint jump.
* heartbeat time of a SafetyState: its arrival time on the loop's clock, or its header
  stamp when that is earlier (a delayed or re-delivered latched message counts as old as
  it is).  Unknown stop categories act as category 1; a non-finite speed scale acts as 0.
* ``release_stop`` is called when the supervisor allows motion again (stop category NONE)
  after a stop it requested, after its heartbeat was lost, and on its first heartbeat.

Thread safety: every kernel call made here holds :attr:`ControlIO.lock`; a driver that steps
the kernel from another thread holds the same lock around ``step`` (or calls
:meth:`ControlIO.step`, which does).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory

from sitebot_interfaces.msg import ControllerStatus, SafetyState

from sitebot.control.kernel import KernelOutput, Reject, Status
from sitebot.types import StopCategory
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_STATE

__all__ = ["ControlIO", "Rejection", "TrajectoryRejected", "convert_trajectory",
           "PeriodStats", "QOS_SAFETY"]

#: safety/state: reliable, volatile (matches a latched transient-local publisher and a
#: plain one; a re-delivered old latched sample is recognised by its stamp).
QOS_SAFETY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

#: tolerance of the position-limit check [rad or m] (limits written with rounding)
LIMIT_TOLERANCE = 1e-9
#: a first point at time 0 must be this close to the current setpoint [rad or m]
START_TOLERANCE = 1e-3

_STOP_OF_MSG = {SafetyState.STOP_NONE: StopCategory.NONE,
                SafetyState.STOP_CATEGORY_0: StopCategory.CAT0,
                SafetyState.STOP_CATEGORY_1: StopCategory.CAT1,
                SafetyState.STOP_CATEGORY_2: StopCategory.CAT2}
_STOPPED_STATES = (Status.STOPPING, Status.STOPPED, Status.HEARTBEAT_TIMEOUT)


# ====================================================================== validation


class TrajectoryRejected(ValueError):
    """A JointTrajectory refused before it reached the kernel.

    ``code`` is the :class:`Reject` code that names the same kind of problem, or ``None``
    where the kernel has none (unknown joint names, no setpoint yet).
    """

    def __init__(self, reason: str, code: Reject | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def _seconds(d: Any) -> float:
    return float(d.sec) + float(d.nanosec) * 1e-9


def convert_trajectory(msg: JointTrajectory, joint_names: Sequence[str],
                       pos_min: Sequence[float], pos_max: Sequence[float],
                       setpoint: Sequence[float] | None,
                       ignored_joint_names: Sequence[str] = (),
                       vel_max: Sequence[float] | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate ``msg`` and return ``(times_s, positions, velocities, accelerations)`` in
    the kernel's joint order (``joint_names``): arrays of shape (P,), (P, n), (P, n) or
    None, (P, n) or None.

    :param setpoint: the kernel's current position setpoint (n,), used to fill joints the
        message does not name and to check the way to the first point; None before the
        loop has ticked.
    :param vel_max: the joints' velocity limits (n,): with a setpoint, the first point
        must be reachable from it within its ``time_from_start`` at these speeds (the
        kernel checks the segments between points, not the one from the setpoint, and a
        position interface would otherwise see the setpoint jump).
    :raises TrajectoryRejected: naming the problem (point index, joint, value, limits).
    """
    kernel = list(joint_names)
    n = len(kernel)
    names = list(msg.joint_names)
    points = list(msg.points)
    if not points:
        raise TrajectoryRejected("no points", Reject.EMPTY)
    if not names:
        raise TrajectoryRejected("no joint_names", Reject.WRONG_SIZE)
    dup = sorted({j for j in names if names.count(j) > 1})
    if dup:
        raise TrajectoryRejected(f"duplicate joint name(s) {', '.join(dup)}", Reject.WRONG_SIZE)
    index = {j: i for i, j in enumerate(kernel)}
    ignored = set(ignored_joint_names)
    unknown = [j for j in names if j not in index and j not in ignored]
    if unknown:
        raise TrajectoryRejected(
            f"unknown joint(s) {', '.join(repr(j) for j in unknown)}; this controller drives "
            f"{', '.join(kernel)}", None)
    cols = [(c, index[j]) for c, j in enumerate(names) if j in index]   # msg column -> kernel
    if not cols:
        raise TrajectoryRejected("names only ignored joints "
                                 f"({', '.join(names)}); nothing to do", Reject.WRONG_SIZE)
    m = len(names)
    has_vel = len(points[0].velocities) > 0
    has_acc = len(points[0].accelerations) > 0
    times = np.empty(len(points))
    prev = None
    for i, p in enumerate(points):
        if len(p.positions) != m:
            raise TrajectoryRejected(f"point {i}: {len(p.positions)} positions for {m} joint "
                                     "names", Reject.WRONG_SIZE)
        for field, present in (("velocities", has_vel), ("accelerations", has_acc)):
            k = len(getattr(p, field))
            if present and k != m:
                raise TrajectoryRejected(f"point {i}: {k} {field} for {m} joint names"
                                         + (" (point 0 has them: all points or none)"
                                            if k == 0 else ""), Reject.WRONG_SIZE)
            if not present and k != 0:
                raise TrajectoryRejected(f"point {i}: has {field} but point 0 has none "
                                         "(all points or none)", Reject.WRONG_SIZE)
        t = _seconds(p.time_from_start)
        if not math.isfinite(t):
            raise TrajectoryRejected(f"point {i}: time_from_start is not finite",
                                     Reject.NON_FINITE)
        if t < 0.0:
            raise TrajectoryRejected(f"point {i}: time_from_start {t:g} s is negative",
                                     Reject.NON_MONOTONIC_TIME)
        if prev is not None and t <= prev:
            raise TrajectoryRejected(
                f"point {i}: time_from_start {t:g} s is not after point {i - 1}'s {prev:g} s "
                "(times must increase strictly)", Reject.NON_MONOTONIC_TIME)
        times[i] = prev = t
    if has_acc and not has_vel:
        raise TrajectoryRejected("accelerations without velocities", Reject.WRONG_SIZE)

    def table(field: str) -> np.ndarray:
        raw = np.array([list(getattr(p, field)) for p in points], dtype=np.float64)
        bad = np.argwhere(~np.isfinite(raw))
        if bad.size:
            i, c = (int(x) for x in bad[0])
            what = {"positions": "position", "velocities": "velocity",
                    "accelerations": "acceleration"}[field]
            raise TrajectoryRejected(f"point {i}: {what} of {names[c]} is {float(raw[i, c])}",
                                     Reject.NON_FINITE)
        return raw

    pos_raw = table("positions")
    vel_raw = table("velocities") if has_vel else None
    acc_raw = table("accelerations") if has_acc else None

    lo = np.asarray(pos_min, dtype=np.float64)
    hi = np.asarray(pos_max, dtype=np.float64)
    for c, k in cols:
        col = pos_raw[:, c]
        off = np.nonzero((col < lo[k] - LIMIT_TOLERANCE) | (col > hi[k] + LIMIT_TOLERANCE))[0]
        if off.size:
            i = int(off[0])
            raise TrajectoryRejected(
                f"point {i}: position {col[i]:g} of {names[c]} is outside its limits "
                f"[{lo[k]:g}, {hi[k]:g}]", Reject.OUT_OF_LIMITS)

    P = len(points)
    named = {k for _, k in cols}
    missing = [k for k in range(n) if k not in named]
    if (missing or times[0] == 0.0) and setpoint is None:
        raise TrajectoryRejected(
            "names only " + ", ".join(kernel[k] for k in sorted(named)) + " and the loop has "
            "no setpoint yet to hold the other joints at" if missing else
            "first point at time_from_start 0 and the loop has no setpoint yet", None)
    sp = None if setpoint is None else np.asarray(setpoint, dtype=np.float64)
    positions = np.empty((P, n))
    velocities = np.zeros((P, n)) if has_vel else None
    accelerations = np.zeros((P, n)) if has_acc else None
    if missing:
        positions[:, missing] = sp[missing]
    for c, k in cols:
        positions[:, k] = pos_raw[:, c]
        if velocities is not None:
            velocities[:, k] = vel_raw[:, c]
        if accelerations is not None:
            accelerations[:, k] = acc_raw[:, c]
    if sp is not None and vel_max is not None and times[0] > 0.0:
        speed = np.abs(positions[0] - sp) / times[0]
        vmax = np.asarray(vel_max, dtype=np.float64)
        over = np.nonzero(speed > vmax * (1.0 + 1e-6))[0]
        if over.size:
            k = int(over[0])
            raise TrajectoryRejected(
                f"point 0: {kernel[k]} would have to move from its setpoint {sp[k]:g} to "
                f"{positions[0, k]:g} in {times[0]:g} s, {speed[k]:g} on average, over its "
                f"velocity limit {vmax[k]:g}", Reject.OUT_OF_LIMITS)
    if times[0] == 0.0:
        gap = np.abs(positions[0] - sp)
        k = int(np.argmax(gap))
        if gap[k] > START_TOLERANCE:
            raise TrajectoryRejected(
                f"point 0 at time_from_start 0 puts {kernel[k]} at {positions[0, k]:g}, "
                f"{gap[k]:g} away from its current setpoint {sp[k]:g}: give the first point "
                "time to get there", Reject.NON_MONOTONIC_TIME)
    return times, positions, velocities, accelerations


@dataclass(frozen=True)
class Rejection:
    """The latest refused command: what was wrong, the matching Reject code (None where
    the kernel has none), whether the kernel itself refused it, and when (loop clock)."""

    topic: str
    reason: str
    code: Reject | None
    by_kernel: bool
    time_s: float

    def __str__(self) -> str:
        code = f" [{self.code.name}]" if self.code is not None else ""
        who = "kernel rejected" if self.by_kernel else "rejected"
        return f"{self.topic}: {who}{code}: {self.reason}"


# ====================================================================== period statistics


class PeriodStats:
    """Tick period and execution time statistics of a loop driver, over a window.

    ``tick(start_s, end_s)`` once per tick (monotonic wall seconds: start and end of the
    tick's work); :meth:`snapshot` returns the dict :meth:`ControlIO.diagnostic_status`
    understands, and starts a new window.
    """

    def __init__(self, rate_hz: float, overrun_factor: float = 1.5) -> None:
        self.rate_hz = float(rate_hz)
        self.overrun_factor = float(overrun_factor)
        self.total_ticks = 0
        self.total_overruns = 0
        self._reset()
        self._last_start: float | None = None

    def _reset(self) -> None:
        self._n = 0
        self._sum = self._sum2 = 0.0
        self._min = math.inf
        self._max = 0.0
        self._exec_sum = 0.0
        self._exec_max = 0.0
        self._overruns = 0

    def tick(self, start_s: float, end_s: float) -> None:
        self.total_ticks += 1
        exec_s = max(0.0, end_s - start_s)
        self._exec_sum += exec_s
        self._exec_max = max(self._exec_max, exec_s)
        if self._last_start is not None:
            p = start_s - self._last_start
            self._n += 1
            self._sum += p
            self._sum2 += p * p
            self._min = min(self._min, p)
            self._max = max(self._max, p)
            if p > self.overrun_factor / self.rate_hz:
                self._overruns += 1
                self.total_overruns += 1
        self._last_start = start_s

    def snapshot(self) -> dict[str, float]:
        n = self._n
        mean = self._sum / n if n else math.nan
        var = max(0.0, self._sum2 / n - mean * mean) if n else math.nan
        ticks = n + 1 if n else 0
        out = {"rate_hz": self.rate_hz, "ticks": float(ticks),
               "period_mean_s": mean, "period_min_s": self._min if n else math.nan,
               "period_max_s": self._max if n else math.nan,
               "period_std_s": math.sqrt(var) if n else math.nan,
               "exec_mean_s": self._exec_sum / max(ticks, 1),
               "exec_max_s": self._exec_max,
               "overruns": float(self._overruns),
               "overruns_total": float(self.total_overruns)}
        self._reset()
        return out


# ====================================================================== ControlIO


class ControlIO:
    """Subscriptions, validation and status publication around one :class:`ControlKernel`.

    :param node: the rclpy node that owns the subscriptions and publishers.
    :param kernel: the kernel (``set_trajectory``, ``set_base_command``, ``set_supervisor``,
        ``release_stop``, ``step``).
    :param joint_names: the kernel's joint order.
    :param wheel_joint_names: (left, right).
    :param prefix: topic prefix (a robot's namespace in a multi-robot simulator), '' none.
    :param clock: ``() -> float`` seconds on the kernel's time base (the ``t_s`` given to
        ``step``; sim time in simulation); default: the node's ROS clock.
    :param stamp_clock: the clock of message header stamps, when it differs from ``clock``
        (a C ``RtLoop`` steps on CLOCK_MONOTONIC while stamps are ROS time): stamps are
        shifted by ``clock() - stamp_clock()``.  Default: the same as ``clock``.
    :param config: the kernel's ``KernelConfig`` (default ``kernel.config``): joint limits,
        heartbeat timeout.
    :param output: the driver's ``KernelOutput`` (default: a new one, :attr:`out`); its
        ``position`` is the setpoint that holds the joints a trajectory does not name.
    :param ignored_joint_names: joints a trajectory may name that the kernel does not
        drive (mimic joints); dropped.
    """

    def __init__(self, node: Node, kernel: Any, joint_names: Sequence[str],
                 wheel_joint_names: Sequence[str], prefix: str = "",
                 clock: Callable[[], float] | None = None, *,
                 stamp_clock: Callable[[], float] | None = None, config: Any = None,
                 output: KernelOutput | None = None,
                 ignored_joint_names: Sequence[str] = (),
                 warn_throttle_s: float = 1.0, diagnostic_name: str | None = None,
                 hardware_id: str = "") -> None:
        self.node = node
        self.kernel = kernel
        self.config = config if config is not None else getattr(kernel, "config", None)
        if self.config is None:
            raise ValueError("ControlIO needs the kernel's KernelConfig (pass config=)")
        self.joint_names = list(joint_names)
        if len(self.joint_names) != int(self.config.n_joints):
            raise ValueError(f"{len(self.joint_names)} joint names for a kernel of "
                             f"{self.config.n_joints} joints")
        self.wheel_joint_names = list(wheel_joint_names)
        self.ignored_joint_names = tuple(ignored_joint_names)
        self.pos_min = np.asarray(self.config.pos_min, dtype=np.float64)
        self.pos_max = np.asarray(self.config.pos_max, dtype=np.float64)
        self.prefix = prefix.strip("/")
        self.clock = clock or (lambda: node.get_clock().now().nanoseconds * 1e-9)
        self.stamp_clock = stamp_clock
        self.out = output if output is not None else KernelOutput(self.config)
        #: guards every kernel call (RLock: a driver may call :meth:`step` while holding it)
        self.lock = threading.RLock()
        self.warn_throttle_s = float(warn_throttle_s)
        self.diagnostic_name = diagnostic_name or f"{node.get_name()}: control loop"
        self.hardware_id = hardware_id

        # state seen by the callbacks (read by publish_state / diagnostic_status)
        self.speed_scale = 0.0
        self.stop_category = StopCategory.NONE
        self.last_heartbeat_s: float | None = None
        self.last_rejection: Rejection | None = None
        self.counts = {"trajectories_accepted": 0, "trajectories_rejected": 0,
                       "cmd_vel_accepted": 0, "cmd_vel_rejected": 0, "safety_states": 0}
        self.stepped = False
        self.last_status: Status | None = None
        self._last_stats: Mapping[str, float] | None = None
        self._warned: dict[str, tuple[float, int]] = {}
        self._ignored_twist_warned = False

        self.cmd_vel_sub = node.create_subscription(
            TwistStamped, self.topic("cmd_vel"), self.on_cmd_vel, QOS_COMMAND)
        self.trajectory_sub = node.create_subscription(
            JointTrajectory, self.topic("arm/joint_trajectory"), self.on_trajectory, QOS_COMMAND)
        self.safety_sub = node.create_subscription(
            SafetyState, self.topic("safety/state"), self.on_safety_state, QOS_SAFETY)
        self.state_pub = node.create_publisher(ControllerStatus, self.topic("control/state"),
                                               QOS_STATE)

    # ------------------------------------------------------------------ helpers
    def topic(self, name: str) -> str:
        """``name`` under the prefix (relative, so the node's namespace applies too)."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def warn(self, key: str, text: str) -> None:
        """A warning, throttled per ``key`` (one kind of problem does not hide another)."""
        now = time.monotonic()
        last, suppressed = self._warned.get(key, (-math.inf, 0))
        if now - last < self.warn_throttle_s:
            self._warned[key] = (last, suppressed + 1)
            return
        if suppressed:
            text += f" ({suppressed} similar suppressed)"
        self._warned[key] = (now, 0)
        self.node.get_logger().warning(text)

    def _reject(self, topic: str, reason: str, code: Reject | None, by_kernel: bool) -> None:
        r = Rejection(topic, reason, code, by_kernel, self.clock())
        self.last_rejection = r
        then = ("the base brakes" if topic.endswith("cmd_vel") else
                "the active trajectory is unchanged (none: the robot holds)")
        self.warn(f"{topic}:{'kernel' if by_kernel else code}", f"{r}; {then}")

    def stamp_s(self, stamp: Any) -> float:
        """A header stamp on :attr:`clock`'s time base; 0.0 for an unset (zero) stamp."""
        t = convert.from_time(stamp)
        if t <= 0.0:
            return 0.0
        if self.stamp_clock is not None:
            t += self.clock() - self.stamp_clock()
        return t

    def setpoint(self) -> np.ndarray | None:
        """The kernel's current position setpoint (copy), None before the first tick."""
        with self.lock:
            return np.array(self.out.position, dtype=np.float64) if self.stepped else None

    # ------------------------------------------------------------------ driver side
    def step(self, t_s: float, dt_s: float, q: np.ndarray, qd: np.ndarray,
             wheel_q: np.ndarray, wheel_qd: np.ndarray) -> Status:
        """One kernel tick into :attr:`out`, under :attr:`lock`."""
        with self.lock:
            status = Status(self.kernel.step(t_s, dt_s, q, qd, wheel_q, wheel_qd, self.out))
            self.stepped = True
            self.last_status = status
        return status

    def reset(self, positions: Sequence[float]) -> None:
        """``kernel.reset(positions)`` under the lock (hold these positions)."""
        with self.lock:
            self.kernel.reset(np.ascontiguousarray(positions, dtype=np.float64))

    def mark_stepped(self, status: Status) -> None:
        """For a driver that calls ``kernel.step`` itself (holding :attr:`lock`) into
        :attr:`out`: record that the setpoint is valid and the status."""
        self.stepped = True
        self.last_status = Status(status)

    # ------------------------------------------------------------------ callbacks
    def on_cmd_vel(self, msg: TwistStamped) -> None:
        arrival = self.clock()
        stamp = self.stamp_s(msg.header.stamp)
        t = min(arrival, stamp) if stamp > 0.0 else arrival
        tw = msg.twist
        v, w = float(tw.linear.x), float(tw.angular.z)
        others = (tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y)
        if not self._ignored_twist_warned and any(x != 0.0 for x in others):
            self._ignored_twist_warned = True
            self.node.get_logger().warning(
                f"{self.topic('cmd_vel')}: a differential drive uses linear.x and angular.z "
                "only; the other components are ignored (said once)")
        with self.lock:
            r = Reject(self.kernel.set_base_command(v, w, t))
        if r is Reject.ACCEPTED:
            self.counts["cmd_vel_accepted"] += 1
            if self.last_status is Status.HEARTBEAT_TIMEOUT and (v != 0.0 or w != 0.0):
                self.warn("no-heartbeat", f"{self.topic('cmd_vel')}: motion commanded but "
                          f"there is no fresh {self.topic('safety/state')} heartbeat from the "
                          "safety supervisor: the robot holds (start the supervisor)")
        else:
            self.counts["cmd_vel_rejected"] += 1
            self._reject(self.topic("cmd_vel"), f"linear.x {v!r}, angular.z {w!r}", r, True)

    def on_trajectory(self, msg: JointTrajectory) -> Reject | None:
        """Validate, reorder and hand to the kernel.  Returns ``Reject.ACCEPTED`` or the
        code of the rejection (None for a problem the kernel has no code for)."""
        topic = self.topic("arm/joint_trajectory")
        now = self.clock()
        try:
            times, pos, vel, acc = convert_trajectory(
                msg, self.joint_names, self.pos_min, self.pos_max, self.setpoint(),
                self.ignored_joint_names, self.config.vel_max)
        except TrajectoryRejected as e:
            self.counts["trajectories_rejected"] += 1
            self._reject(topic, e.reason, e.code, False)
            return e.code
        stamp = self.stamp_s(msg.header.stamp)
        start = stamp if stamp > now else None       # None: at the kernel's next tick
        with self.lock:
            r = Reject(self.kernel.set_trajectory(times, pos, vel, acc, start_time_s=start))
        if r is not Reject.ACCEPTED:
            self.counts["trajectories_rejected"] += 1
            self._reject(topic, self._explain(r, times, pos, vel, acc), r, True)
            return r
        self.counts["trajectories_accepted"] += 1
        if 0.0 < stamp < now - 0.05:
            self.warn("late", f"{topic}: header.stamp is {now - stamp:.3f} s in the past; "
                               "the trajectory starts now, complete")
        return r

    def _explain(self, code: Reject, times: np.ndarray, pos: np.ndarray,
                 vel: np.ndarray | None, acc: np.ndarray | None) -> str:
        """Why the kernel refused a trajectory that passed validation, as far as the
        configuration tells (the kernel answers with a code only)."""
        text = f"{len(times)} points over {times[-1]:g} s"
        cfg = self.config
        if code is Reject.TOO_MANY_POINTS:
            return f"{text}; the kernel takes at most {cfg.max_points} points"
        if code is not Reject.OUT_OF_LIMITS:
            return text
        vmax = np.asarray(cfg.vel_max, dtype=np.float64)
        amax = np.asarray(cfg.acc_max, dtype=np.float64)
        for k in range(len(times)):
            if vel is not None:
                over = np.nonzero(np.abs(vel[k]) > vmax)[0]
                if over.size:
                    i = int(over[0])
                    return (f"point {k}: velocity {vel[k, i]:g} of {self.joint_names[i]} "
                            f"exceeds its limit {vmax[i]:g}")
            if acc is not None:
                over = np.nonzero(np.abs(acc[k]) > amax)[0]
                if over.size:
                    i = int(over[0])
                    return (f"point {k}: acceleration {acc[k, i]:g} of "
                            f"{self.joint_names[i]} exceeds its limit {amax[i]:g}")
            if k > 0:
                dt = times[k] - times[k - 1]
                speed = np.abs(pos[k] - pos[k - 1]) / dt
                over = np.nonzero(speed > vmax * (1.0 + 1e-9))[0]
                if over.size:
                    i = int(over[0])
                    return (f"points {k - 1}->{k}: {self.joint_names[i]} would move at "
                            f"{speed[i]:g} on average, over its velocity limit {vmax[i]:g}")
        return text + "; outside the kernel's limits"

    def on_safety_state(self, msg: SafetyState) -> None:
        arrival = self.clock()
        stamp = self.stamp_s(msg.header.stamp)
        hb = min(arrival, stamp) if stamp > 0.0 else arrival
        scale = float(msg.speed_scale)
        if not math.isfinite(scale):
            self.warn("scale", f"{self.topic('safety/state')}: speed_scale {scale!r} is not "
                                "finite; using 0")
            scale = 0.0
        scale = min(max(scale, 0.0), 1.0)
        cat = _STOP_OF_MSG.get(int(msg.stop_category))
        if cat is None:
            self.warn("category", f"{self.topic('safety/state')}: unknown stop_category "
                                   f"{msg.stop_category}; acting as category 1")
            cat = StopCategory.CAT1
        timeout = float(self.config.heartbeat_timeout_s)
        lost = self.last_heartbeat_s is None or arrival - self.last_heartbeat_s > timeout
        with self.lock:
            self.kernel.set_supervisor(hb, scale, cat)
            if cat is StopCategory.NONE and (
                    lost or self.stop_category is not StopCategory.NONE
                    or self.last_status in _STOPPED_STATES):
                self.kernel.release_stop()
        self.speed_scale = scale
        self.stop_category = cat
        self.last_heartbeat_s = arrival
        self.counts["safety_states"] += 1

    # ------------------------------------------------------------------ publication
    def publish_state(self, out: KernelOutput | None = None,
                      stats: Mapping[str, float] | None = None) -> ControllerStatus:
        """Publish ``control/state`` from ``out`` (default :attr:`out`); keep ``stats``
        (see :class:`PeriodStats`) for :meth:`diagnostic_status`.  Returns the message."""
        out = self.out if out is None else out
        with self.lock:
            status = Status(int(out.status)) if self.stepped or out is not self.out else None
            err = np.array(out.position_error, dtype=np.float64)
        if stats is not None:
            self._last_stats = dict(stats)
        msg = ControllerStatus()
        msg.header.stamp = convert.to_time((self.stamp_clock or self.clock)())
        msg.status = int(status if status is not None else Status.INVALID_INPUT)
        msg.speed_scale = float(self.speed_scale)
        msg.joint_names = list(self.joint_names)
        msg.position_error = [float(x) for x in err]
        msg.message = self.status_text(status)
        self.state_pub.publish(msg)
        if status is not None:
            self.last_status = status
        return msg

    def status_text(self, status: Status | None) -> str:
        if status is None:
            return "not running yet"
        text = {
            Status.OK: "ok",
            Status.STOPPING: f"stopping ({self._stop_text()})",
            Status.STOPPED: f"stopped ({self._stop_text()})",
            Status.COMMAND_TIMEOUT: "base idle: no recent cmd_vel, wheels braked",
            Status.HEARTBEAT_TIMEOUT: "supervisor heartbeat lost: stopping",
            Status.INVALID_INPUT: "invalid or stale measurement/command: holding",
            Status.LIMIT_VIOLATION: "a joint is outside its limits: holding",
        }[status]
        r = self.last_rejection
        if r is not None and self.clock() - r.time_s < 5.0:
            text += f"; last rejected: {r}"
        return text

    def _stop_text(self) -> str:
        if self.stop_category is StopCategory.NONE:
            return "heartbeat lost" if self._heartbeat_age() > float(
                self.config.heartbeat_timeout_s) else "stop held until released"
        return f"supervisor requests category {int(self.stop_category)}"

    def _heartbeat_age(self) -> float:
        return math.inf if self.last_heartbeat_s is None else self.clock() - self.last_heartbeat_s

    def diagnostic_status(self, stats: Mapping[str, float] | None = None) -> DiagnosticStatus:
        """The loop's DiagnosticStatus, in the style of ros2_control's controller manager
        diagnostics (periodicity and execution time when ``stats`` are known)."""
        stats = dict(stats) if stats is not None else (dict(self._last_stats)
                                                       if self._last_stats else None)
        st = DiagnosticStatus(name=self.diagnostic_name, hardware_id=self.hardware_id)
        status = self.last_status if self.stepped else None
        if status is None:
            level, msg = DiagnosticStatus.STALE, "control loop has not run yet"
        else:
            level = {Status.OK: DiagnosticStatus.OK, Status.COMMAND_TIMEOUT: DiagnosticStatus.OK,
                     Status.STOPPING: DiagnosticStatus.WARN, Status.STOPPED: DiagnosticStatus.WARN,
                     }.get(status, DiagnosticStatus.ERROR)
            msg = self.status_text(status)
        values = [("status", status.name if status is not None else "NONE"),
                  ("speed_scale", f"{self.speed_scale:.3f}"),
                  ("stop_category", self.stop_category.name),
                  ("heartbeat_age_s", f"{self._heartbeat_age():.3f}")]
        with self.lock:
            if self.stepped:
                err = np.abs(np.asarray(self.out.position_error, dtype=np.float64))
                values.append(("max_position_error", f"{float(np.max(err)):.5f}"))
                values.append(("trajectory_active", str(bool(self.out.trajectory_active))))
        values += [(k, str(v)) for k, v in self.counts.items()]
        if self.last_rejection is not None:
            values.append(("last_rejection", str(self.last_rejection)))
        if stats:
            rate = stats.get("rate_hz", math.nan)
            mean = stats.get("period_mean_s", math.nan)
            for key, scale, unit in (("period_mean_s", 1e3, "ms"), ("period_min_s", 1e3, "ms"),
                                     ("period_max_s", 1e3, "ms"), ("period_std_s", 1e3, "ms"),
                                     ("exec_mean_s", 1e6, "us"), ("exec_max_s", 1e6, "us")):
                if key in stats:
                    values.append((key.replace("_s", f"_{unit}"), f"{stats[key] * scale:.3f}"))
            if math.isfinite(mean) and mean > 0:
                values.append(("periodicity.average_hz", f"{1.0 / mean:.2f}"))
            for key in ("rate_hz", "ticks", "overruns", "overruns_total"):
                if key in stats:
                    values.append((key, f"{stats[key]:g}"))
            late = (math.isfinite(mean) and math.isfinite(rate) and rate > 0
                    and abs(mean * rate - 1.0) > 0.1)
            if stats.get("overruns", 0) > 0 or late:
                if level < DiagnosticStatus.WARN:
                    level = DiagnosticStatus.WARN
                msg += (f"; period {mean * 1e3:.2f} ms for {1e3 / rate:.2f} ms nominal, "
                        f"{int(stats.get('overruns', 0))} overrun(s)")
        st.level = level
        st.message = msg
        st.values = [KeyValue(key=k, value=v) for k, v in values]
        return st
