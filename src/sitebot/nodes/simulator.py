"""simulator: a PyBullet site world with robots, publishing what a real robot publishes.

Per robot (topics relative to the robot's namespace; none for a single unnamed robot):
``joint_states``, ``odom``, ``imu/data``, ``scan``, ``camera/color/image_raw``,
``camera/depth/image_raw``, ``camera/camera_info``, ``tf``, ``tf_static``,
``robot_description`` (transient local), ``ground_truth/odom`` and ``ground_truth/people``
(evaluation only). Globally: ``/clock`` and ``/diagnostics``.
Subscribes per robot (the control loop, ticked in lockstep with the physics): ``cmd_vel``
(TwistStamped), ``arm/joint_trajectory``, ``safety/state`` (the supervisor's heartbeat);
publishes ``control/state``.
Services: ``sim/reset`` (sitebot_interfaces/ResetWorld), ``sim/pause`` (std_srvs/SetBool),
``sim/step`` (sitebot_interfaces/StepSimulation).

Fault injection (tests and ``sitebot regress``; see ``sitebot.sim.faults``): parameter
``fault_schedule`` (a YAML/JSON file with a list of faults at sim times), topic ``sim/fault``
(std_msgs/String: one fault or a list, as JSON; applied at the next step, or at its ``at``),
and ``sim/fault_events`` (std_msgs/String, JSON: every fault's start and end, sim-time
stamped; a bad fault is reported there with ``phase: error`` and logged, never raised).

Physics runs in its own thread at a fixed step; the executor thread only stores commands
and answers services. Run control (pause, step, reset, faults, pacing) is
:class:`sitebot.sim.runner.SimRunner`; the parameters are :data:`sitebot.sim.params.SCHEMA`.
"""
from __future__ import annotations

import json
import threading

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, LaserScan
from std_msgs.msg import String
from std_srvs.srv import SetBool
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from sitebot.control.kernel import kernel_joint_names
from sitebot.description.kinematics import JointTransformer, Transform
from sitebot.nodes import convert, convert_images
from sitebot.nodes.barrier_host import BarrierHost
from sitebot.nodes.common import (QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema,
                                  run_node)
from sitebot.nodes.control_io import ControlIO
from sitebot.sim.faults import describe_event, load_fault_schedule
from sitebot.sim.params import SCHEMA, robot_spawns, sim_config_from_params
from sitebot.sim.runner import SimRunner
from sitebot.sim.simulation import Sample, SampleKind, SiteSimulation
from sitebot.types import yaw_to_quaternion
from sitebot_interfaces.srv import ResetWorld, StepSimulation


class _RobotIO:
    """Publishers and subscriptions of one robot."""

    def __init__(self, node: "SimulatorNode", name: str) -> None:
        def t(topic: str) -> str:
            return f"{name}/{topic}" if name else topic
        self.name = name
        self.joint_states = node.create_publisher(JointState, t("joint_states"), QOS_STATE)
        self.odom = node.create_publisher(Odometry, t("odom"), QOS_STATE)
        self.imu = node.create_publisher(Imu, t("imu/data"), QOS_SENSOR)
        self.scan = node.create_publisher(LaserScan, t("scan"), QOS_SENSOR)
        self.rgb = node.create_publisher(Image, t("camera/color/image_raw"), QOS_SENSOR)
        self.depth = node.create_publisher(Image, t("camera/depth/image_raw"), QOS_SENSOR)
        self.info = node.create_publisher(CameraInfo, t("camera/camera_info"), QOS_SENSOR)
        self.depth_info = node.create_publisher(CameraInfo, t("camera/depth/camera_info"), QOS_SENSOR)
        self.tf = node.create_publisher(TFMessage, t("tf"), QOS_STATE)
        self.tf_static = node.create_publisher(TFMessage, t("tf_static"), QOS_LATCHED)
        self.description = node.create_publisher(String, t("robot_description"), QOS_LATCHED)
        self.gt_odom = node.create_publisher(Odometry, t("ground_truth/odom"), QOS_STATE)
        self.gt_people = node.create_publisher(PoseArray, t("ground_truth/people"), QOS_STATE)
        # where the movable objects (tools, parts) are: one CUBE marker each, ns "objects",
        # text = the registry object id; 2 Hz (what a fetch moved where, for reports)
        self.gt_objects = node.create_publisher(MarkerArray, t("ground_truth/objects"),
                                                QOS_STATE)
        # the control loop's ROS side: cmd_vel, arm/joint_trajectory, safety/state in,
        # control/state out; the kernel ticks in lockstep with the physics
        ctl = node.sim.robot(name).controller
        desc = node.sim.description
        self.control = ControlIO(
            node, ctl.kernel, kernel_joint_names(desc), desc.wheel_joints, prefix=name,
            clock=lambda: node.sim.time_s, config=ctl.config, output=ctl.out,
            ignored_joint_names=[j for j in desc.gripper_joints if desc.joints[j].mimic],
            diagnostic_name=f"{node.get_name()}: control loop{' ' + name if name else ''}",
            hardware_id="pybullet",
            supervisor_node=node.p["supervisor_node"] if node.p["supervisor_required"] else "")
        ctl.lock = self.control.lock
        ctl.on_step = self.control.mark_stepped
        # the robot's speaker: what it says is heard by the people near it
        node.create_subscription(String, t("hri/say"), lambda m: node.run.ask_to_pass(name)
                                 if m.data.strip() else None, QOS_COMMAND)


def _objects_markers(objects, stamp, frame: str) -> MarkerArray:
    out = MarkerArray()
    for i, (oid, (x, y, z)) in enumerate(sorted(objects.items())):
        m = Marker(ns="objects", id=i, type=Marker.CUBE, action=Marker.ADD, text=oid)
        m.header.stamp, m.header.frame_id = stamp, frame
        m.pose.position.x, m.pose.position.y, m.pose.position.z = x, y, z
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = 0.05
        m.color.r, m.color.g, m.color.a = 1.0, 0.6, 1.0
        out.markers.append(m)
    return out


class SimulatorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("simulator", **kwargs)
        p = self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.sim = SiteSimulation(p["world"], robot_spawns(p["robots"], p["robot_poses"]),
                                  sim_config_from_params(p))
        self._stop = threading.Event()
        self._kin = JointTransformer(self.sim.description.joints.values())
        self.io = {name: _RobotIO(self, name) for name in self.sim.robots}
        self.clock_pub = self.create_publisher(Clock, "/clock", QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_service(ResetWorld, "sim/reset", self.on_reset)
        self.create_service(SetBool, "sim/pause", self.on_pause)
        self.create_service(StepSimulation, "sim/step", self.on_step)
        self._publish_latched()
        self.fault_pub = self.create_publisher(String, "sim/fault_events", QOS_COMMAND)
        self.run = SimRunner(self.sim, self._load_fault_schedule, seed=p["seed"],
                             on_fault_event=self._on_fault_event, paused=p["start_paused"],
                             real_time_factor=p["real_time_factor"],
                             clock_rate_hz=p["clock_rate_hz"],
                             control_state_rate_hz=p["control_state_rate_hz"])
        self.create_subscription(String, "sim/fault", self.on_fault, QOS_COMMAND)
        self.barrier = BarrierHost(self, p["lockstep_timeout_s"], p["lockstep_expect"]) \
            if p["lockstep"] else None
        if not p["supervisor_required"]:
            self.get_logger().warning(
                "supervisor_required is false: the control loop makes its own heartbeat; "
                "use only in simulations without the safety supervisor")
        self._thread = threading.Thread(target=self._loop, name="physics", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"world '{self.sim.world.id}', robots {[n or '(default)' for n in self.sim.robots]}, "
            f"step {self.sim.config.time_step_s * 1e3:.3f} ms, "
            f"real-time factor {p['real_time_factor'] or 'max'}"
            + (", lockstep with the stack (sim_lockstep nodes)" if self.barrier else ""))

    def _on_params(self, changed: dict) -> None:
        if "real_time_factor" in changed and hasattr(self, "run"):   # paced live, as before
            self.run.real_time_factor = float(changed["real_time_factor"])

    # ------------------------------------------------------------------ faults
    def _load_fault_schedule(self) -> list:
        path = self.p["fault_schedule"]
        if not path:
            return []
        faults = load_fault_schedule(path)
        self.get_logger().info(f"fault schedule {path}: {len(faults)} fault(s)")
        return faults

    def _on_fault_event(self, ev: dict) -> None:
        # called from the physics thread; publishing is thread-safe in rclpy
        error, text = describe_event(ev)
        (self.get_logger().error if error else self.get_logger().info)(text)
        try:
            self.fault_pub.publish(String(data=json.dumps(ev)))
        except Exception:                       # noqa: BLE001 - shutting down
            pass

    def on_fault(self, msg: String) -> None:
        ev = self.run.inject(msg.data)
        if ev is not None:
            self.get_logger().error(f"sim/fault refused: {ev['error']}", throttle_duration_sec=1.0)
            self.fault_pub.publish(String(data=json.dumps(ev)))

    # ------------------------------------------------------------------ services
    def on_reset(self, req: ResetWorld.Request, res: ResetWorld.Response) -> ResetWorld.Response:
        res.success, res.message = self.run.reset(req.world, req.seed)
        return res

    def on_pause(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        res.success, res.message = self.run.set_paused(req.data)
        return res

    def on_step(self, req: StepSimulation.Request, res: StepSimulation.Response):
        res.success, res.message, t = self.run.step(req.steps)
        if t is not None:
            res.sim_time = convert.to_time(t)
        return res

    # ------------------------------------------------------------------ physics thread
    def _loop(self) -> None:
        self.run.start()
        try:
            while not self._stop.is_set():
                tick = self.run.tick(on_reset=self._publish_latched)
                if tick is None:
                    continue
                if tick.clock_due:
                    self.clock_pub.publish(Clock(clock=convert.to_time(tick.t_s)))
                    if self.barrier is not None:
                        self.barrier.after_clock(tick.t_s)
                for s in tick.samples:
                    self._publish(s)
                if tick.control_state_due:
                    for io in self.io.values():
                        io.control.publish_state(self.sim.robot(io.name).controller.out)
                if self.barrier is not None:
                    self.barrier.after_tick()
                if self.run.pace():
                    self._publish_diagnostics()
        except Exception as e:
            if self._stop.is_set() or not self.context.ok():
                return      # shutting down (Ctrl-C): publishers are already gone
            # a physics failure must be visible, not a silent dead thread
            self.get_logger().fatal(f"physics thread stopped: {type(e).__name__}: {e}")
            raise

    # ------------------------------------------------------------------ publishing
    def _publish_latched(self) -> None:
        stamp = convert.to_time(self.sim.time_s)
        static = [convert.transform_msg(t, stamp) for t in self._kin.static_transforms()]
        for io in self.io.values():
            io.description.publish(String(data=self.sim.description.xml))
            io.tf_static.publish(TFMessage(transforms=static))

    def _publish(self, s: Sample) -> None:
        io = self.io[s.robot]
        stamp = convert.to_time(s.stamp_s)
        p = self.p
        if s.kind is SampleKind.JOINT_STATE:
            st = s.data
            names = self.sim.robot(s.robot).hardware.joint_names
            io.joint_states.publish(convert.joint_state_msg(
                names, st.positions, st.velocities, st.efforts, stamp))
            tfs = self._kin.transforms(dict(zip(names, st.positions.tolist())))
            io.tf.publish(TFMessage(transforms=[convert.transform_msg(t, stamp) for t in tfs]))
        elif s.kind is SampleKind.ODOM:
            od = s.data
            io.odom.publish(convert.odometry_msg(od, stamp, p["odom_frame"], p["base_frame"]))
            t = Transform(p["odom_frame"], p["base_frame"], (float(od.x_m), float(od.y_m), 0.0),
                          yaw_to_quaternion(float(od.yaw_rad)))
            io.tf.publish(TFMessage(transforms=[convert.transform_msg(t, stamp)]))
        elif s.kind is SampleKind.IMU:
            io.imu.publish(convert.imu_msg(s.data, stamp, "imu_link"))
        elif s.kind is SampleKind.SCAN:
            io.scan.publish(convert.scan_msg(s.data, stamp, "laser_link",
                                             1.0 / max(p["scan_rate_hz"], 1e-9)))
        elif s.kind is SampleKind.CAMERA:
            f = s.data
            io.rgb.publish(convert_images.image_rgb_msg(f.rgb, stamp, "camera_color_optical_frame"))
            io.depth.publish(convert_images.image_depth_msg(f.depth_m, stamp, "camera_depth_optical_frame"))
            io.info.publish(convert_images.camera_info_msg(f.K, f.width, f.height, stamp,
                                                    "camera_color_optical_frame"))
            io.depth_info.publish(convert_images.camera_info_msg(f.K, f.width, f.height, stamp,
                                                          "camera_depth_optical_frame"))
        elif s.kind is SampleKind.GROUND_TRUTH:
            io.gt_odom.publish(convert.ground_truth_msg(s.data, stamp, p["map_frame"], p["base_frame"]))
            io.gt_people.publish(convert.people_pose_array(s.data.people, stamp, p["map_frame"]))
            if self.run.objects_due(s.robot, s.stamp_s, s.data.objects):
                io.gt_objects.publish(_objects_markers(s.data.objects, stamp, p["map_frame"]))

    def _publish_diagnostics(self) -> None:
        st = convert.diagnostic_status(self.run.diagnostic(), self.get_name(), "pybullet")
        arr = DiagnosticArray(status=[st] + [io.control.diagnostic_status()
                                             for io in self.io.values()])
        if self.barrier is not None:
            arr.status.append(convert.diagnostic_status(self.barrier.barrier.diagnostic(),
                                                        self.get_name(), "pybullet"))
        arr.header.stamp = convert.to_time(self.sim.time_s)
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        # also reached for a node whose constructor failed (context shutdown destroys it)
        if hasattr(self, "_stop"):
            self._stop.set()
        if getattr(self, "barrier", None) is not None:
            self.barrier.barrier.close()
            self.get_logger().info(f"stack barrier: {self.barrier.barrier.summary()}")
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            thread.join(timeout=5.0)
        if hasattr(self, "sim"):
            self.sim.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SimulatorNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
