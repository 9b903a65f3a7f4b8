"""Two robots side by side in one world, launched as separate processes: each has its own
namespaced topics and TF, and commanding one moves only that one."""
from __future__ import annotations

import math
import time

import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from tf2_msgs.msg import TFMessage

from sitebot.launcher import launched
from sitebot.sim.world_loader import load_world

from rosprobe import Probe, SupervisorDouble, rate_hz

pytestmark = pytest.mark.integration

ROBOTS = ("robot1", "robot2")


def test_two_robots_run_side_by_side():
    world = load_world("substation")
    probe = Probe()
    probe.subscribe(Clock, "/clock", "state", keep=False)
    for r in ROBOTS:
        probe.subscribe(Odometry, f"/{r}/ground_truth/odom", "state")
        probe.subscribe(LaserScan, f"/{r}/scan", "sensor", keep=False)
        probe.subscribe(TFMessage, f"/{r}/tf_static", "latched")
    # the test stands in for the safety supervisor of each robot (the node each robot's
    # control loop obeys): its heartbeat allows motion, its cmd_vel drives robot1
    sups = [SupervisorDouble(probe, namespace=r) for r in ROBOTS]
    cmd = sups[0].cmd_pub

    def beat() -> None:
        for sup in sups:
            sup.beat()
    try:
        with launched("multi_robot.launch.yaml",
                      {"real_time_factor": "2.0", "camera_enabled": "false"}) as h:
            probe.wait_for(lambda: all(probe.count(f"/{r}/ground_truth/odom") > 5 for r in ROBOTS),
                           60, "ground truth of both robots", launch=h)
            start = {r: probe.get(f"/{r}/ground_truth/odom")[-1][1].pose.pose.position
                     for r in ROBOTS}
            # spawned where the world says, 2 m apart
            for r in ROBOTS:
                sx, sy, _ = world.spawn_poses[r]
                assert math.hypot(start[r].x - sx, start[r].y - sy) < 0.02, r
            def drive() -> None:
                msg = TwistStamped()
                msg.twist.linear.x = 0.4
                cmd.publish(msg)
                beat()
                time.sleep(0.05)

            def pos1():
                return probe.get("/robot1/ground_truth/odom")[-1][1].pose.pose.position
            # drive robot1 forward at 0.4 m/s for 3 s of sim time (commands at ~20 Hz wall),
            # counted from when the commands reach it: on a loaded machine the command
            # publisher matched the control loop a while after the first were sent (a CI
            # run saw 0.29 m)
            deadline = time.monotonic() + 60.0
            while math.hypot(pos1().x - start["robot1"].x, pos1().y - start["robot1"].y) \
                    < 0.005 and time.monotonic() < deadline:
                drive()
            t0 = probe.latest_sim_time()
            while probe.latest_sim_time() < t0 + 3.0:
                drive()
            t1 = probe.latest_sim_time()
            probe.wait_for(lambda: probe.latest_sim_time() > t1 + 1.5, 30, "1.5 s more sim time")
            end = {r: probe.get(f"/{r}/ground_truth/odom")[-1][1].pose.pose.position
                   for r in ROBOTS}
            assert not h.failed
    finally:
        for sup in sups:
            sup.close()
        probe.close()
    moved1 = math.hypot(end["robot1"].x - start["robot1"].x, end["robot1"].y - start["robot1"].y)
    moved2 = math.hypot(end["robot2"].x - start["robot2"].x, end["robot2"].y - start["robot2"].y)
    # 0.4 m/s for ~3 s, ramping up and down at 1 m/s^2
    assert 0.8 < moved1 < 1.6, f"robot1 moved {moved1:.2f} m (0.4 m/s for ~3 s)"
    assert moved2 < 0.01, f"robot2 moved {moved2:.3f} m without a command"
    for r in ROBOTS:
        stamps = [s for s, _ in probe.get(f"/{r}/scan")]
        assert abs(rate_hz(stamps) - 10.0) < 2.0, f"/{r}/scan at {rate_hz(stamps):.1f} Hz"
        frames = {t.child_frame_id for _, m in probe.get(f"/{r}/tf_static") for t in m.transforms}
        assert {"laser_link", "imu_link", "camera_link"} <= frames, r
