"""``sitebot bench sim``: the simulation's real-time factor, printed side by side.

Measured in one run on this machine, for each world:
  * core     SiteSimulation alone (physics, sensors, noise; no ROS),
  * node     the simulator node in-process publishing every topic over DDS, with an
             independent subscriber to the heaviest topics in a second process,
each with all sensors at their default rates, and without the camera. The real-time factor
is simulated seconds per wall-clock second (higher is better).
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

__all__ = ["main", "bench_core", "bench_node"]

AIM = {"camera": 2.0, "no camera": 5.0}


def bench_core(world: str, camera: bool, sim_seconds: float, repeats: int = 1) -> float:
    """Median real-time factor of SiteSimulation.step() over ``sim_seconds``."""
    from sitebot.sim.simulation import SimConfig, SiteSimulation
    rtfs = []
    for _ in range(repeats):
        with SiteSimulation(world, config=SimConfig(camera_enabled=camera)) as sim:
            sim.run_for(0.5)                        # warm-up: textures, first renders
            n = int(round(sim_seconds / sim.config.time_step_s))
            t0 = time.perf_counter()
            for _ in range(n):
                sim.step()
            rtfs.append(n * sim.config.time_step_s / (time.perf_counter() - t0))
    return statistics.median(rtfs)


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


def bench_node(world: str, camera: bool, wall_seconds: float) -> tuple[float, int]:
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
        Parameter("real_time_factor", value=0.0)])
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
    a = ap.parse_args(argv)
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
            core = bench_core(world, camera, a.sim_seconds)
            node, received = bench_node(world, camera, a.wall_seconds)
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
