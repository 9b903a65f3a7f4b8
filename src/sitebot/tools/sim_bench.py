"""``sitebot bench sim``: the simulation's real-time factor, printed side by side.

Measured in one run on this machine, for each world:
  * core     SiteSimulation alone (physics, sensors, noise; no ROS),
  * node     the simulator node in-process publishing every topic over DDS, with an
             independent subscriber to the heaviest topics in a second process,
each with all sensors at their default rates, and without the camera. The real-time factor
is simulated seconds per wall-clock second (higher is better).

``--lidar-backend open3d`` runs both with the Open3D lidar; ``--lidar-backend compare``
measures the core only, PyBullet vs Open3D lidar side by side (runs interleaved, so that
machine load hits both alike), as wall-clock and as CPU real-time factor (simulated
seconds per CPU second of this process: load on other cores does not change it).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from sitebot.launcher.domains import TOOL_DOMAINS, hold_domain

__all__ = ["main", "bench_core", "bench_node", "compare_lidar"]

AIM = {"camera": 2.0, "no camera": 5.0}


def _core_run(world: str, camera: bool, sim_seconds: float, lidar_backend: str
              ) -> tuple[float, float]:
    """(wall-clock, CPU) real-time factor of SiteSimulation.step() over ``sim_seconds``."""
    from sitebot.sim.simulation import SimConfig, SiteSimulation
    with SiteSimulation(world, config=SimConfig(camera_enabled=camera,
                                                lidar_backend=lidar_backend)) as sim:
        sim.run_for(0.5)                            # warm-up: textures, first renders
        n = int(round(sim_seconds / sim.config.time_step_s))
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            sim.step()
        sim_s = n * sim.config.time_step_s
        return sim_s / (time.perf_counter() - t0), sim_s / (time.process_time() - c0)


def bench_core(world: str, camera: bool, sim_seconds: float, repeats: int = 1,
               lidar_backend: str = "open3d") -> float:
    """Median real-time factor of SiteSimulation.step() over ``sim_seconds``."""
    return statistics.median(_core_run(world, camera, sim_seconds, lidar_backend)[0]
                             for _ in range(repeats))


def compare_lidar(worlds: list[str], sim_seconds: float, repeats: int) -> list[dict]:
    """Core real-time factor (wall and CPU), PyBullet vs Open3D lidar, camera on and off."""
    print(f"SiteSimulation.step() real-time factor, core only, {os.cpu_count()} CPUs, "
          f"{sim_seconds:g} sim s x {repeats} interleaved runs (median); lidar 720 beams 10 Hz")
    print(f"{'world':<13} {'sensors':<10} {'wall pyb':>9} {'wall o3d':>9} {'o3d/pyb':>8} "
          f"{'cpu pyb':>8} {'cpu o3d':>8} {'o3d/pyb':>8}")
    rows = []
    for world in worlds:
        for label, camera in (("camera", True), ("no camera", False)):
            r: dict[str, list[tuple[float, float]]] = {"pybullet": [], "open3d": []}
            for _ in range(repeats):
                for backend, runs in r.items():
                    runs.append(_core_run(world, camera, sim_seconds, backend))
            (wp, cp), (wo, co) = ((statistics.median(w for w, _ in runs),
                                   statistics.median(c for _, c in runs)) for runs in r.values())
            rows.append({"world": world, "sensors": label, "wall_rtf_pybullet": round(wp, 2),
                         "wall_rtf_open3d": round(wo, 2), "cpu_rtf_pybullet": round(cp, 2),
                         "cpu_rtf_open3d": round(co, 2)})
            print(f"{world:<13} {label:<10} {wp:>9.2f} {wo:>9.2f} {wo / wp:>8.2f} "
                  f"{cp:>8.2f} {co:>8.2f} {co / cp:>8.2f}", flush=True)
    return rows


_SUBSCRIBER = r"""
import sys, time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, LaserScan, Imu, JointState
rclpy.init(); n = rclpy.create_node('bench_subscriber'); count = [0]
def cb(m): count[0] += 1
n.create_subscription(Image, 'camera/color/image_raw', cb, qos_profile_sensor_data)
n.create_subscription(Image, 'camera/depth/image_raw', cb, qos_profile_sensor_data)
n.create_subscription(LaserScan, 'scan', cb, qos_profile_sensor_data)
n.create_subscription(Imu, 'imu/data', cb, qos_profile_sensor_data)
n.create_subscription(JointState, 'joint_states', cb, 10)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end: rclpy.spin_once(n, timeout_sec=0.05)
print(count[0])
"""


def bench_node(world: str, camera: bool, wall_seconds: float,
               lidar_backend: str = "open3d") -> tuple[float, int]:
    """Real-time factor of the simulator node (publishing over DDS) and messages received
    by a subscriber in another process over the same wall time."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from sitebot.nodes.simulator import SimulatorNode

    env = dict(os.environ)
    ctx = Context()
    rclpy.init(context=ctx)
    node = SimulatorNode(context=ctx, parameter_overrides=[
        Parameter("world", value=world), Parameter("camera_enabled", value=camera),
        Parameter("real_time_factor", value=0.0),
        Parameter("lidar_backend", value=lidar_backend)])
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    sub = subprocess.Popen([sys.executable, "-c", _SUBSCRIBER, str(wall_seconds + 1.0)],
                           stdout=subprocess.PIPE, text=True, env=env)
    try:
        t_start = time.monotonic()
        while time.monotonic() - t_start < 1.0:          # warm-up, discovery
            ex.spin_once(timeout_sec=0.05)
        sim0, t0 = node.sim.time_s, time.monotonic()
        while time.monotonic() - t0 < wall_seconds:
            ex.spin_once(timeout_sec=0.05)
        rtf = (node.sim.time_s - sim0) / (time.monotonic() - t0)
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        received = sub.communicate(timeout=30)[0].strip()
    return rtf, int(received or 0)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="+", default=["substation", "construction", "datacentre"])
    ap.add_argument("--sim-seconds", type=float, default=10.0, help="per core measurement")
    ap.add_argument("--wall-seconds", type=float, default=8.0, help="per node measurement")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--lidar-backend", choices=("pybullet", "open3d", "compare"),
                    default="open3d", help="the simulator's lidar_backend; 'compare': "
                    "core only, both side by side")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure with 'compare'")
    a = ap.parse_args(argv)
    if a.lidar_backend == "compare":
        rows = compare_lidar(a.worlds, a.sim_seconds, a.repeats)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(rows, f, indent=2)
        return 0
    hold_domain(TOOL_DOMAINS)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                          str(__import__("sitebot.paths", fromlist=["x"]).data_path("config", "fastdds.xml")))
    print(f"simulation real-time factor (sim s per wall s), {os.cpu_count()} CPUs; "
          "camera 320x240 at 5 Hz, scan 10 Hz, IMU 100 Hz, joints/odom 50 Hz")
    print(f"{'world':<13} {'sensors':<10} {'core RTF':>9} {'node RTF':>9} {'aim':>5} "
          f"{'node/aim':>9} {'msgs rcvd':>10}")
    rows = []
    for world in a.worlds:
        for label, camera in (("camera", True), ("no camera", False)):
            core = bench_core(world, camera, a.sim_seconds, lidar_backend=a.lidar_backend)
            node, received = bench_node(world, camera, a.wall_seconds, a.lidar_backend)
            rows.append({"world": world, "sensors": label, "core_rtf": round(core, 2),
                         "node_rtf": round(node, 2), "aim": AIM[label],
                         "node_over_aim": round(node / AIM[label], 2),
                         "messages_received": received})
            print(f"{world:<13} {label:<10} {core:>9.2f} {node:>9.2f} {AIM[label]:>5.1f} "
                  f"{node / AIM[label]:>9.2f} {received:>10d}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0
