"""ControlIO: the ROS side of the control loop, shared by every loop driver.

A loop driver (the simulator's lockstep PyBullet backend, the ``control_loop`` node for
ros2_control hardware) owns the kernel's tick; :class:`ControlIO` owns everything that
arrives from and goes back to ROS:

* subscriptions (topics relative, under ``prefix`` when given):
  ``cmd_vel`` (geometry_msgs/TwistStamped), ``arm/joint_trajectory``
  (trajectory_msgs/JointTrajectory), ``safety/state`` (sitebot_interfaces/SafetyState: the
  supervisor's heartbeat, speed scale, stop category and releases), obeyed only from the
  supervisor node (:mod:`sitebot.control.pinning`; the kernel pins its heartbeat source and
  opens its stop latch only on that source's release: docs/control.md "Stop latch");
* publication: ``control/state`` (sitebot_interfaces/ControllerStatus) via
  :meth:`ControlIO.publish_state`, at a rate the driver chooses (decimated);
* a ``diagnostic_msgs/DiagnosticStatus`` for the driver's ``/diagnostics``
  (:meth:`ControlIO.diagnostic_status`).

The messages are converted here; what is decided about them is core: a JointTrajectory is
validated by :func:`sitebot.control.trajectory.validate_trajectory` (refused with a
warning naming the problem, throttled per kind of problem; a refusal by the kernel itself
names its :class:`~sitebot.control.types.Reject` code; a rejected trajectory leaves the
active one unchanged), the supervisor's messages, counts, status texts and diagnostics are
:class:`sitebot.control.monitor.ControlMonitor`'s (the decisions are in those modules).
``header.stamp`` zero: start now; a stamp in the future starts the trajectory then (the
kernel holds until then); a stamp in the past starts it now, complete (a late message is
executed late, never by skipping ahead, which would make the setpoint jump).

Thread safety: every kernel call made here holds :attr:`ControlIO.lock`; a driver that steps
the kernel from another thread holds the same lock around ``step`` (or calls
:meth:`ControlIO.step`, which does).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory

from sitebot.control.monitor import ControlMonitor, PeriodStats, Rejection
from sitebot.control.pinning import PublisherPin, Verdict, qualified_name, source_id
from sitebot.control.trajectory import TrajectoryCheck, TrajectoryRejected, explain_rejection
from sitebot.control.types import Heartbeat, KernelOutput, Reject, Status
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_STATE
from sitebot_interfaces.msg import ControllerStatus, SafetyState

__all__ = ["ControlIO", "Rejection", "TrajectoryRejected",
           "PeriodStats", "QOS_SAFETY"]

#: safety/state: reliable, volatile (matches a latched transient-local publisher and a
#: plain one; a re-delivered old latched sample is recognised by its stamp).
QOS_SAFETY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

class ControlIO(ControlMonitor):
    """Subscriptions, conversion and status publication around one :class:`ControlKernel`.

    :param node: the rclpy node that owns the subscriptions and publishers.
    :param kernel: the kernel (``set_trajectory``, ``set_base_command``, ``pin_supervisor``,
        ``set_supervisor``, ``step``).
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
    :param trajectory_check: the tolerances of the trajectory validation.
    :param late_warning_s: [s] a trajectory stamped this much in the past gets a warning.
    :param supervisor_node: the node obeyed (relative: under the node's namespace and
        ``prefix``); '' obeys any (a kernel that is its own supervisor, simulation only).
    :param publishers: ``topic -> [(node name, gid), ...]`` (default: the ROS graph).
    """

    def __init__(self, node: Node, kernel: Any, joint_names: Sequence[str],
                 wheel_joint_names: Sequence[str], prefix: str = "",
                 clock: Callable[[], float] | None = None, *,
                 stamp_clock: Callable[[], float] | None = None, config: Any = None,
                 output: KernelOutput | None = None,
                 ignored_joint_names: Sequence[str] = (),
                 warn_throttle_s: float = 1.0, diagnostic_name: str | None = None,
                 hardware_id: str = "", trajectory_check: TrajectoryCheck | None = None,
                 late_warning_s: float = 0.05, supervisor_node: str = "safety_supervisor",
                 publishers: Callable[[str], list[tuple[str, bytes]]] | None = None) -> None:
        config = config if config is not None else getattr(kernel, "config", None)
        if config is None:
            raise ValueError("ControlIO needs the kernel's KernelConfig (pass config=)")
        super().__init__(config, clock or (lambda: node.get_clock().now().nanoseconds * 1e-9),
                         lambda text: node.get_logger().warning(text), warn_throttle_s)
        self.node = node
        self.kernel = kernel
        self.joint_names = list(joint_names)
        if len(self.joint_names) != int(self.config.n_joints):
            raise ValueError(f"{len(self.joint_names)} joint names for a kernel of "
                             f"{self.config.n_joints} joints")
        self.wheel_joint_names = list(wheel_joint_names)
        self.ignored_joint_names = tuple(ignored_joint_names)
        self.pos_min = np.asarray(self.config.pos_min, dtype=np.float64)
        self.pos_max = np.asarray(self.config.pos_max, dtype=np.float64)
        self.trajectory_check = trajectory_check or TrajectoryCheck()
        self.late_warning_s = float(late_warning_s)
        self.prefix = prefix.strip("/")
        self.stamp_clock = stamp_clock
        self.out = output if output is not None else KernelOutput(self.config)
        #: guards every kernel call (RLock: a driver may call :meth:`step` while holding it)
        self.lock = threading.RLock()
        self.diagnostic_name = diagnostic_name or f"{node.get_name()}: control loop"
        self.hardware_id = hardware_id
        self._ignored_twist_warned = False
        ns = node.get_namespace()
        self.supervisor_node = supervisor_node and qualified_name(
            qualified_name(ns, self.prefix) if self.prefix else ns, supervisor_node)
        self.pin = supervisor_node and PublisherPin(self.supervisor_node,
                                                    publishers or self._graph_publishers)

        self.cmd_vel_sub = node.create_subscription(
            TwistStamped, self.topic("cmd_vel"), self._cmd_vel_in, QOS_COMMAND)
        self.trajectory_sub = node.create_subscription(
            JointTrajectory, self.topic("arm/joint_trajectory"), self._trajectory_in,
            QOS_COMMAND)
        self.safety_sub = node.create_subscription(
            SafetyState, self.topic("safety/state"), self.on_safety_state, QOS_SAFETY)
        self.state_pub = node.create_publisher(ControllerStatus, self.topic("control/state"),
                                               QOS_STATE)

    # ------------------------------------------------------------------ helpers
    def topic(self, name: str) -> str:
        """``name`` under the prefix (relative, so the node's namespace applies too)."""
        return f"{self.prefix}/{name}" if self.prefix else name

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
            self.mark_stepped(status)
        return status

    def reset(self, positions: Sequence[float]) -> None:
        """``kernel.reset(positions)`` under the lock (hold these positions)."""
        with self.lock:
            self.kernel.reset(np.ascontiguousarray(positions, dtype=np.float64))

    # ------------------------------------------------------------------ origin
    def _graph_publishers(self, topic: str) -> list[tuple[str, bytes]]:
        name = self.node.resolve_topic_name(topic)
        return [(qualified_name(i.node_namespace, i.node_name), bytes(i.endpoint_gid))
                for i in self.node.get_publishers_info_by_topic(name)]

    def origin(self, topic: str, info: Any) -> Verdict:
        """Who published a message (``info``: rclpy's MessageInfo; ControlMonitor.obey)."""
        if not self.pin:
            return Verdict.SUPERVISOR
        return self.obey(self.topic(topic), convert.publisher_gid(info))

    def _cmd_vel_in(self, msg: TwistStamped, info: Any) -> None:
        if self.origin("cmd_vel", info) is Verdict.SUPERVISOR:
            self.on_cmd_vel(msg)

    def _trajectory_in(self, msg: JointTrajectory, info: Any) -> None:
        if self.origin("arm/joint_trajectory", info) is Verdict.SUPERVISOR:
            self.on_trajectory(msg)

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
            self.reject(self.topic("cmd_vel"), f"linear.x {v!r}, angular.z {w!r}", r, True)

    def on_trajectory(self, msg: JointTrajectory) -> Reject | None:
        """Validate, reorder and hand to the kernel.  Returns ``Reject.ACCEPTED`` or the
        code of the rejection (None for a problem the kernel has no code for)."""
        topic = self.topic("arm/joint_trajectory")
        now = self.clock()
        try:
            traj = convert.convert_trajectory(msg, self.joint_names, self.pos_min, self.pos_max,
                                      self.setpoint(), self.ignored_joint_names,
                                      self.config.vel_max, self.trajectory_check)
        except TrajectoryRejected as e:
            self.counts["trajectories_rejected"] += 1
            self.reject(topic, e.reason, e.code, False)
            return e.code
        stamp = self.stamp_s(msg.header.stamp)
        start = stamp if stamp > now else None       # None: at the kernel's next tick
        with self.lock:
            r = Reject(self.kernel.set_trajectory(*traj, start_time_s=start))
        if r is not Reject.ACCEPTED:
            self.counts["trajectories_rejected"] += 1
            self.reject(topic, explain_rejection(r, traj, self.config, self.joint_names), r,
                        True)
            return r
        self.counts["trajectories_accepted"] += 1
        if 0.0 < stamp < now - self.late_warning_s:
            self.warn("late", f"{topic}: header.stamp is {now - stamp:.3f} s in the past; "
                               "the trajectory starts now, complete")
        return r

    def on_safety_state(self, msg: SafetyState, info: Any) -> Heartbeat | None:
        """A heartbeat from the supervisor, or a fault (another source, a sequence going
        back) that latches a stop.  None: dropped (a publisher the graph does not list)."""
        verdict = self.origin("safety/state", info)
        if verdict is Verdict.UNKNOWN:
            return None
        sup = self.supervisor(self.topic("safety/state"), self.clock(),
                              self.stamp_s(msg.header.stamp), msg.speed_scale, msg.stop_category)
        source = source_id(convert.publisher_gid(info) or b"", int(msg.session))
        with self.lock:
            if verdict is Verdict.SUPERVISOR:
                self.kernel.pin_supervisor(source)
            hb = Heartbeat(self.kernel.set_supervisor(
                source, int(msg.sequence), int(msg.releases), sup.heartbeat_s,
                sup.speed_scale, sup.stop_category))
        self.heartbeat_result(self.topic("safety/state"), hb, int(msg.sequence))
        return hb

    # ------------------------------------------------------------------ publication
    def publish_state(self, out: KernelOutput | None = None,
                      stats: Mapping[str, float] | None = None) -> ControllerStatus:
        """Publish ``control/state`` from ``out`` (default :attr:`out`); keep ``stats``
        (see :class:`PeriodStats`) for :meth:`diagnostic_status`.  Returns the message."""
        out = self.out if out is None else out
        with self.lock:
            status = Status(int(out.status)) if self.stepped or out is not self.out else None
            err = np.array(out.position_error, dtype=np.float64)
            if status is not None:
                self.latch = out.latch
        if stats is not None:
            self._last_stats = dict(stats)
        msg = ControllerStatus()
        msg.header.stamp = convert.to_time((self.stamp_clock or self.clock)())
        msg.status = int(status if status is not None else Status.INVALID_INPUT)
        msg.latch = int(self.latch)
        msg.speed_scale = float(self.speed_scale)
        msg.joint_names = list(self.joint_names)
        msg.position_error = [float(x) for x in err]
        msg.message = self.status_text(status)
        self.state_pub.publish(msg)
        if status is not None:
            self.last_status = status
        return msg

    def diagnostic_status(self, stats: Mapping[str, float] | None = None) -> DiagnosticStatus:
        """The loop's DiagnosticStatus (:meth:`ControlMonitor.diagnostics`)."""
        with self.lock:
            output = ((float(np.max(np.abs(np.asarray(self.out.position_error,
                                                      dtype=np.float64)))),
                       bool(self.out.trajectory_active)) if self.stepped else None)
        level, message, values = self.diagnostics(stats, output)
        return DiagnosticStatus(name=self.diagnostic_name, hardware_id=self.hardware_id,
                                level=bytes([int(level)]), message=message,
                                values=[KeyValue(key=k, value=v) for k, v in values])
