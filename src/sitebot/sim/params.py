"""The simulator's parameters: one schema (:data:`SCHEMA`, declared by the simulator node)
and what they make: the :class:`~sitebot.sim.simulation.SimConfig`
(:func:`sim_config_from_params`) and the robots to spawn (:func:`robot_spawns`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from sitebot.config.params import ParamSpec, ParamType
from sitebot.errors import SitebotError
from sitebot.sim.sensors import CameraConfig, ImuConfig, LidarConfig, OdomConfig
from sitebot.sim.simulation import LIDAR_BACKENDS, RobotSpawn, SensorRates, SimConfig

__all__ = ["SCHEMA", "sim_config_from_params", "robot_spawns"]

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
    ParamSpec("lockstep", B, False,
              "step on only when every node started with sim_lockstep has processed the "
              "newest /clock and sensor messages (sitebot.barrier; regression runs)"),
    ParamSpec("lockstep_expect", ParamType.STRING_ARRAY, [],
              "nodes that must have joined the barrier before the simulation steps on"),
    ParamSpec("lockstep_timeout_s", F, 10.0,
              "wall time the barrier waits for a live node before it gives up on it",
              0.1, 600.0, unit="s"),
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
    ParamSpec("lidar_backend", S, "open3d",
              "what casts the lidar's rays: 'open3d' (Open3D RaycastingScene, Embree) or "
              "'pybullet' (rayTestBatch: the same scans within 2 cm, several times dearer)",
              choices=LIDAR_BACKENDS),
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
    ParamSpec("supervisor_node", S, "safety_supervisor",
              "the only node whose safety/state, cmd_vel and arm/joint_trajectory the control "
              "loop obeys (relative: under each robot's namespace)"),
    ParamSpec("control_state_rate_hz", F, 20.0, "control/state publication rate (sim time)",
              1.0, 500.0, unit="Hz"),
    ParamSpec("fault_schedule", S, "", "file (YAML/JSON list of faults, sitebot.sim.faults) "
              "applied at their sim times; '' = none"),
    ParamSpec("map_frame", S, "map", "world frame of ground truth"),
    ParamSpec("odom_frame", S, "odom", "odometry frame"),
    ParamSpec("base_frame", S, "base_footprint", "robot base frame (child of odom)"),
)


def sim_config_from_params(p: Mapping[str, Any]) -> SimConfig:
    """A :class:`SimConfig` from the simulator node's validated parameter values."""
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
        supervisor_required=p["supervisor_required"], seed=p["seed"],
        lidar_backend=p["lidar_backend"])


def robot_spawns(names: Sequence[str], poses: Sequence[float]) -> list[RobotSpawn]:
    """The robots of the node's ``robots`` (empty: one robot without a namespace) and
    ``robot_poses`` (x, y, yaw per robot; empty: the world's spawn poses by name)."""
    names = list(names) or [""]
    poses = list(poses)
    if poses and len(poses) != 3 * len(names):
        raise SitebotError(f"parameter 'robot_poses': {len(poses)} values for {len(names)} "
                           "robots; accepted: 3 values (x, y, yaw) per robot, or none")
    return [RobotSpawn(n, tuple(poses[3 * i:3 * i + 3]) if poses else None)
            for i, n in enumerate(names)]
