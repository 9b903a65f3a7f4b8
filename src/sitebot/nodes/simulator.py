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
and answers services.
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, LaserScan
from nav_msgs.msg import Odometry
from geometry_msgs.msg import PoseArray
from visualization_msgs.msg import Marker, MarkerArray
from std_msgs.msg import String
from std_srvs.srv import SetBool
from tf2_msgs.msg import TFMessage

from sitebot_interfaces.srv import ResetWorld, StepSimulation

from sitebot.control.kernel import kernel_joint_names
from sitebot.errors import SitebotError
from sitebot.description.kinematics import JointTransformer, Transform
from sitebot.types import yaw_to_quaternion
from sitebot.config.params import ParamSpec, ParamType
from sitebot.sim.faults import FaultInjector, parse_fault, parse_faults
from sitebot.sim.simulation import RobotSpawn, Sample, SampleKind, SensorRates, SimConfig, SiteSimulation
from sitebot.sim.sensors import CameraConfig, ImuConfig, LidarConfig, OdomConfig
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.control_io import ControlIO

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

SCHEMA = (
    ParamSpec("world", S, "substation", "world to load: a name in worlds/ or a .world.yaml path"),
    ParamSpec("robots", ParamType.STRING_ARRAY, [],
              "robot namespaces; empty: one robot without namespace at spawn pose 'robot1'"),
    ParamSpec("robot_poses", ParamType.FLOAT_ARRAY, [],
              "x, y, yaw per robot (3 values each); empty: the world's spawn poses by name",
              min_value=-1000.0, max_value=1000.0),
    ParamSpec("time_step_s", F, 1.0 / 240.0, "physics step", 1e-4, 0.05, unit="s"),
    ParamSpec("real_time_factor", F, 1.0,
              "pace simulation at this multiple of wall time; 0 runs as fast as possible",
              0.0, 1000.0),
    ParamSpec("start_paused", B, False, "start paused (advance with sim/step)"),
    ParamSpec("seed", I, 0, "seed of every noise source", 0, 2**31 - 1),
    ParamSpec("lighting", S, "", "lighting preset of the world ('' = the world's default)"),
    ParamSpec("clock_rate_hz", F, 100.0, "/clock publication rate (sim time)", 1.0, 1000.0, unit="Hz"),
    ParamSpec("joint_states_rate_hz", F, 50.0, "joint_states and moving-joint tf rate", 0.0, 1000.0, unit="Hz"),
    ParamSpec("odom_rate_hz", F, 50.0, "wheel odometry and odom->base tf rate", 0.0, 1000.0, unit="Hz"),
    ParamSpec("imu_rate_hz", F, 100.0, "IMU rate", 0.0, 1000.0, unit="Hz"),
    ParamSpec("scan_rate_hz", F, 10.0, "lidar scan rate", 0.0, 100.0, unit="Hz"),
    ParamSpec("camera_enabled", B, True, "render the RGB-D camera"),
    ParamSpec("camera_rate_hz", F, 5.0, "camera rate", 0.0, 60.0, unit="Hz"),
    ParamSpec("camera_width", I, 320, "image width", 16, 1920, unit="px"),
    ParamSpec("camera_height", I, 240, "image height", 16, 1080, unit="px"),
    ParamSpec("ground_truth_rate_hz", F, 20.0, "ground truth rate (evaluation only); 0 disables",
              0.0, 1000.0, unit="Hz"),
    ParamSpec("scan_noise_std_m", F, 0.01, "lidar range noise (1 sigma)", 0.0, 1.0, unit="m"),
    ParamSpec("odom_slip_std", F, 0.01, "wheel odometry relative slip noise (1 sigma)", 0.0, 0.5),
    ParamSpec("imu_gyro_noise_std_radps", F, 0.002, "gyro white noise (1 sigma)", 0.0, 1.0, unit="rad/s"),
    ParamSpec("imu_accel_noise_std_mps2", F, 0.02, "accelerometer white noise (1 sigma)", 0.0, 10.0, unit="m/s^2"),
    ParamSpec("cmd_timeout_s", F, 0.5, "a base command older than this brakes the wheels", 0.01, 10.0, unit="s"),
    ParamSpec("heartbeat_timeout_s", F, 0.5,
              "safety/state (the supervisor's heartbeat) older than this stops the robot",
              0.01, 10.0, unit="s"),
    ParamSpec("supervisor_required", B, True,
              "false: the control loop makes its own heartbeat (only for simulations "
              "without the safety supervisor)"),
    ParamSpec("control_state_rate_hz", F, 20.0, "control/state publication rate (sim time)",
              1.0, 500.0, unit="Hz"),
    ParamSpec("fault_schedule", S, "", "file (YAML/JSON list of faults, sitebot.sim.faults) "
              "applied at their sim times; '' = none"),
    ParamSpec("map_frame", S, "map", "world frame of ground truth"),
    ParamSpec("odom_frame", S, "odom", "odometry frame"),
    ParamSpec("base_frame", S, "base_footprint", "robot base frame (child of odom)"),
)


def sim_config_from_params(p: dict[str, Any]) -> SimConfig:
    """Build a :class:`SimConfig` from validated parameter values."""
    rates = SensorRates(joint_states_hz=p["joint_states_rate_hz"], odom_hz=p["odom_rate_hz"],
                        imu_hz=p["imu_rate_hz"], scan_hz=p["scan_rate_hz"],
                        camera_hz=p["camera_rate_hz"], ground_truth_hz=p["ground_truth_rate_hz"])
    return SimConfig(
        time_step_s=p["time_step_s"], rates=rates, camera_enabled=p["camera_enabled"],
        lidar=replace(LidarConfig(), range_noise_sigma_m=p["scan_noise_std_m"],
                      scan_rate_hz=max(p["scan_rate_hz"], 1e-3)),
        camera=replace(CameraConfig(), width=p["camera_width"], height=p["camera_height"]),
        imu=replace(ImuConfig(), gyro_noise_sigma_radps=p["imu_gyro_noise_std_radps"],
                    accel_noise_sigma_mps2=p["imu_accel_noise_std_mps2"]),
        odom=replace(OdomConfig(), slip_sigma=p["odom_slip_std"]),
        lighting=p["lighting"], cmd_timeout_s=p["cmd_timeout_s"],
        heartbeat_timeout_s=p["heartbeat_timeout_s"],
        supervisor_required=p["supervisor_required"], seed=p["seed"])


def robot_spawns(p: dict[str, Any]) -> list[RobotSpawn]:
    names = list(p["robots"]) or [""]
    poses = list(p["robot_poses"])
    if poses and len(poses) != 3 * len(names):
        raise SitebotError(f"parameter 'robot_poses': {len(poses)} values for {len(names)} "
                           "robots; accepted: 3 values (x, y, yaw) per robot, or none")
    out = []
    for i, n in enumerate(names):
        pose = tuple(poses[3 * i:3 * i + 3]) if poses else None
        out.append(RobotSpawn(n, pose))
    return out


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
        self.gt_objects_t = -math.inf
        # the control loop's ROS side: cmd_vel, arm/joint_trajectory, safety/state in,
        # control/state out; the kernel ticks in lockstep with the physics
        ctl = node.sim.robot(name).controller
        desc = node.sim.description
        self.control = ControlIO(
            node, ctl.kernel, kernel_joint_names(desc), desc.wheel_joints, prefix=name,
            clock=lambda: node.sim.time_s, config=ctl.config, output=ctl.out,
            ignored_joint_names=[j for j in desc.gripper_joints if desc.joints[j].mimic],
            diagnostic_name=f"{node.get_name()}: control loop{' ' + name if name else ''}",
            hardware_id="pybullet")
        ctl.lock = self.control.lock
        ctl.on_step = self.control.mark_stepped


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
        self.p = declare_schema(self, SCHEMA)
        self.sim = SiteSimulation(self.p["world"], robot_spawns(self.p),
                                  sim_config_from_params(self.p))
        self._lock = threading.Lock()
        self._paused = self.p["start_paused"]
        self._pending_steps = 0
        self._pending_reset: int | None = None
        self._done = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._kin = JointTransformer(self.sim.description.joints.values())
        self.io = {name: _RobotIO(self, name) for name in self.sim.robots}
        self.clock_pub = self.create_publisher(Clock, "/clock", QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_service(ResetWorld, "sim/reset", self.on_reset)
        self.create_service(SetBool, "sim/pause", self.on_pause)
        self.create_service(StepSimulation, "sim/step", self.on_step)
        self._publish_latched()
        self._rtf_measured = 0.0
        self.fault_pub = self.create_publisher(String, "sim/fault_events", QOS_COMMAND)
        self.faults = FaultInjector(self.sim, self._load_fault_schedule(), seed=self.p["seed"],
                                    on_event=self._on_fault_event)
        self.create_subscription(String, "sim/fault", self.on_fault, QOS_COMMAND)
        if not self.p["supervisor_required"]:
            self.get_logger().warning(
                "supervisor_required is false: the control loop makes its own heartbeat; "
                "use only in simulations without the safety supervisor")
        self._thread = threading.Thread(target=self._loop, name="physics", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"world '{self.sim.world.id}', robots {[n or '(default)' for n in self.sim.robots]}, "
            f"step {self.sim.config.time_step_s * 1e3:.3f} ms, "
            f"real-time factor {self.p['real_time_factor'] or 'max'}")

    # ------------------------------------------------------------------ faults
    def _load_fault_schedule(self) -> list:
        path = self.p["fault_schedule"]
        if not path:
            return []
        from sitebot.config.yamlio import load_yaml
        data = load_yaml(path)
        faults = parse_faults(data.get("faults") if isinstance(data, dict) else data,
                              f"{path}: faults")
        self.get_logger().info(f"fault schedule {path}: {len(faults)} fault(s)")
        return faults

    def _on_fault_event(self, ev: dict) -> None:
        # called from the physics thread; publishing is thread-safe in rclpy
        (self.get_logger().error if ev.get("phase") == "error" else self.get_logger().info)(
            f"fault {ev.get('kind')} {ev.get('phase')} at t={ev.get('t'):.3f} s"
            + (f": {ev['error']}" if "error" in ev else ""))
        try:
            self.fault_pub.publish(String(data=json.dumps(ev)))
        except Exception:                       # noqa: BLE001 - shutting down
            pass

    def on_fault(self, msg: String) -> None:
        try:
            data = json.loads(msg.data)
            items = data if isinstance(data, list) else [data]
            faults = [parse_fault(d, f"sim/fault[{i}]") for i, d in enumerate(items)]
        except (ValueError, SitebotError) as e:
            self.get_logger().error(f"sim/fault refused: {e}", throttle_duration_sec=1.0)
            self.fault_pub.publish(String(data=json.dumps(
                {"t": self.sim.time_s, "phase": "error", "kind": "invalid", "error": str(e)})))
            return
        with self._lock:
            for f in faults:
                self.faults.inject(f, self.sim.time_s)

    # ------------------------------------------------------------------ callbacks
    def on_reset(self, req: ResetWorld.Request, res: ResetWorld.Response) -> ResetWorld.Response:
        if req.world and req.world != self.sim.world.id:
            res.success, res.message = False, (
                f"switching worlds is not supported at run time (running '{self.sim.world.id}')")
            return res
        with self._lock:
            self._pending_reset = int(req.seed)
            ok = self._done.wait_for(lambda: self._pending_reset is None, timeout=10.0)
        res.success, res.message = ok, "reset" if ok else "timed out waiting for the physics thread"
        return res

    def on_pause(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        with self._lock:
            self._paused = bool(req.data)
        res.success, res.message = True, "paused" if req.data else "running"
        return res

    def on_step(self, req: StepSimulation.Request, res: StepSimulation.Response):
        with self._lock:
            if not self._paused:
                res.success, res.message = False, "simulation is running; pause it first"
                return res
            self._pending_steps += int(req.steps)
            ok = self._done.wait_for(lambda: self._pending_steps == 0, timeout=60.0)
        res.success = ok
        res.message = f"stepped {req.steps}" if ok else "timed out"
        res.sim_time = convert.to_time(self.sim.time_s)
        return res

    # ------------------------------------------------------------------ physics thread
    def _loop(self) -> None:
        dt = self.sim.config.time_step_s
        clock_period = 1.0 / self.p["clock_rate_hz"]
        control_period = 1.0 / self.p["control_state_rate_hz"]
        next_clock = next_control_state = 0.0
        wall0, sim0 = time.monotonic(), self.sim.time_s
        last_diag_wall, last_diag_sim = wall0, sim0
        try:
            while not self._stop.is_set():
                with self._lock:
                    if self._pending_reset is not None:
                        self.faults.clear()
                        self.sim.reset(self._pending_reset)
                        self.faults = FaultInjector(self.sim, self._load_fault_schedule(),
                                                    seed=self._pending_reset,
                                                    on_event=self._on_fault_event)
                        self._pending_reset = None
                        next_clock = next_control_state = 0.0
                        wall0, sim0 = time.monotonic(), 0.0
                        self._publish_latched()
                        self._done.notify_all()
                    run = not self._paused or self._pending_steps > 0
                if not run:
                    time.sleep(0.002)
                    wall0, sim0 = time.monotonic(), self.sim.time_s
                    continue
                samples = self.sim.step()
                t = self.sim.time_s
                with self._lock:
                    samples = self.faults.advance(t, samples)
                    if self._pending_steps > 0:
                        self._pending_steps -= 1
                        if self._pending_steps == 0:
                            self._done.notify_all()
                if t + 0.25 * dt >= next_clock:
                    self.clock_pub.publish(Clock(clock=convert.to_time(t)))
                    next_clock += clock_period
                for s in samples:
                    self._publish(s)
                if t + 0.25 * dt >= next_control_state:
                    next_control_state += control_period
                    for io in self.io.values():
                        io.control.publish_state(self.sim.robot(io.name).controller.out)
                rtf = self.p["real_time_factor"]
                if rtf > 0:
                    ahead = (t - sim0) / rtf - (time.monotonic() - wall0)
                    if ahead > 0.002:
                        time.sleep(ahead)
                now = time.monotonic()
                if now - last_diag_wall >= 1.0:
                    self._rtf_measured = (t - last_diag_sim) / (now - last_diag_wall)
                    last_diag_wall, last_diag_sim = now, t
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
            io.rgb.publish(convert.image_rgb_msg(f.rgb, stamp, "camera_color_optical_frame"))
            io.depth.publish(convert.image_depth_msg(f.depth_m, stamp, "camera_depth_optical_frame"))
            io.info.publish(convert.camera_info_msg(f.K, f.width, f.height, stamp,
                                                    "camera_color_optical_frame"))
            io.depth_info.publish(convert.camera_info_msg(f.K, f.width, f.height, stamp,
                                                          "camera_depth_optical_frame"))
        elif s.kind is SampleKind.GROUND_TRUTH:
            io.gt_odom.publish(convert.ground_truth_msg(s.data, stamp, p["map_frame"], p["base_frame"]))
            io.gt_people.publish(convert.people_pose_array(s.data.people, stamp, p["map_frame"]))
            if s.data.objects and s.stamp_s - io.gt_objects_t >= 0.5:
                io.gt_objects_t = s.stamp_s
                io.gt_objects.publish(_objects_markers(s.data.objects, stamp, p["map_frame"]))

    def _publish_diagnostics(self) -> None:
        st = DiagnosticStatus(name=f"{self.get_name()}: physics", hardware_id="pybullet")
        rtf = self._rtf_measured
        target = self.p["real_time_factor"]
        st.level = DiagnosticStatus.OK
        st.message = f"real-time factor {rtf:.2f}"
        if target > 0 and rtf < 0.8 * target:
            st.level = DiagnosticStatus.WARN
            st.message += f" below target {target:g}"
        st.values = [KeyValue(key="sim_time_s", value=f"{self.sim.time_s:.3f}"),
                     KeyValue(key="real_time_factor", value=f"{rtf:.3f}"),
                     KeyValue(key="paused", value=str(self._paused)),
                     KeyValue(key="world", value=self.sim.world.id)]
        arr = DiagnosticArray(status=[st] + [io.control.diagnostic_status()
                                             for io in self.io.values()])
        arr.header.stamp = convert.to_time(self.sim.time_s)
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        # also reached for a node whose constructor failed (context shutdown destroys it)
        if hasattr(self, "_stop"):
            self._stop.set()
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
