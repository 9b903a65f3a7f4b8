"""The simulator node in-process with real rclpy: parameters, pause/step/reset services,
and the command path (non-finite commands refused, stale commands brake)."""
from __future__ import annotations

import math
import threading
import time

import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from sitebot.control.types import Reject
from sitebot.errors import ParameterError
from sitebot.nodes.simulator import SimulatorNode
from sitebot_interfaces.srv import ResetWorld, StepSimulation

from rosprobe import Probe

DT = 1.0 / 240.0


class RunningSim:
    """A SimulatorNode spinning in its own context and thread."""

    def __init__(self, **overrides) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        params = {"camera_enabled": False, "real_time_factor": 0.0, **overrides}
        self.node = SimulatorNode(context=self.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)


def call(probe: Probe, srv_type, name: str, request, timeout: float = 30.0):
    client = probe.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
    future = client.call_async(request)
    probe.wait_for(future.done, timeout, f"reply of {name}")
    return future.result()


def test_bad_parameter_is_refused_with_name_and_range():
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        with pytest.raises(ParameterError) as e:
            SimulatorNode(context=ctx, parameter_overrides=[Parameter("camera_width", value=-5)])
        assert "camera_width" in str(e.value) and "[16, 1920]" in str(e.value)
        with pytest.raises(ParameterError) as e:
            SimulatorNode(context=ctx, parameter_overrides=[Parameter("time_step_s", value=5.0)])
        assert "time_step_s" in str(e.value)
    finally:
        rclpy.shutdown(context=ctx)


def test_unknown_world_is_one_clear_error():
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        with pytest.raises(Exception) as e:
            SimulatorNode(context=ctx, parameter_overrides=[Parameter("world", value="moonbase")])
        assert "moonbase" in str(e.value)
    finally:
        rclpy.shutdown(context=ctx)


def test_pause_step_and_reset():
    sim = RunningSim(start_paused=True)
    probe = Probe()
    try:
        t_before = sim.node.sim.time_s
        res = call(probe, StepSimulation, "sim/step", StepSimulation.Request(steps=240))
        assert res.success, res.message
        assert abs(sim.node.sim.time_s - t_before - 1.0) < 1e-9       # 240 steps = 1 s
        t = res.sim_time.sec + res.sim_time.nanosec * 1e-9
        assert abs(t - sim.node.sim.time_s) < 1e-6
        # paused: time stands still
        t_paused = sim.node.sim.time_s
        time.sleep(0.3)
        assert sim.node.sim.time_s == t_paused
        # running: stepping is refused, time advances
        assert call(probe, SetBool, "sim/pause", SetBool.Request(data=False)).success
        probe.wait_for(lambda: sim.node.sim.time_s > t_paused + 0.5, 20, "time to advance")
        refused = call(probe, StepSimulation, "sim/step", StepSimulation.Request(steps=1))
        assert not refused.success and "pause" in refused.message
        # reset: time back to ~0, robot at its spawn pose
        assert call(probe, ResetWorld, "sim/reset", ResetWorld.Request(seed=3)).success
        gt = sim.node.sim.ground_truth()
        sx, sy, _ = sim.node.sim.world.spawn_poses["robot1"]
        assert math.hypot(gt.x_m - sx, gt.y_m - sy) < 0.01
        assert sim.node.sim.time_s < 2.0
        other = call(probe, ResetWorld, "sim/reset", ResetWorld.Request(world="datacentre"))
        assert not other.success and "substation" in other.message
    finally:
        probe.close()
        sim.close()


def test_non_finite_command_is_refused_and_brakes():
    sim = RunningSim(supervisor_required=False)
    probe = Probe()
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    pub = probe.publisher(TwistStamped, "cmd_vel")
    try:
        probe.wait_for(lambda: probe.count("ground_truth/odom") > 0, 30, "ground truth")
        deadline = time.monotonic() + 20
        # drive until moving at ~0.5 m/s
        while time.monotonic() < deadline:
            m = TwistStamped()
            m.twist.linear.x = 0.5
            pub.publish(m)
            time.sleep(0.02)
            last = probe.get("ground_truth/odom")[-1][1]
            if last.twist.twist.linear.x > 0.4:
                break
        assert probe.get("ground_truth/odom")[-1][1].twist.twist.linear.x > 0.4
        bad = TwistStamped()
        bad.twist.linear.x = float("nan")
        control = sim.node.io[""].control
        before = control.last_rejection
        pub.publish(bad)
        probe.wait_for(lambda: control.last_rejection is not before, 20,
                       "the NaN command refused by the control loop")
        rejection = control.last_rejection
        assert rejection.topic == "cmd_vel" and rejection.code is Reject.NON_FINITE, rejection
        # The sim time at which the loop received the NaN: the simulation runs as fast as it
        # can, so the time it takes the message to arrive must not count against the brake
        t_nan = rejection.time_s
        # The NaN itself must brake the base: 0.5 s after it, when braking for the 0.5 s
        # command timeout alone would only be starting (still ~0.5 m/s), the base is nearly
        # stopped. Judged on the ground-truth sample stamped then (the latest sample
        # received may be older on a loaded machine)
        probe.wait_for(lambda: probe.get("ground_truth/odom")[-1][0] >= t_nan + 0.5, 20,
                       "ground truth 0.5 s after the NaN")
        stamp, msg = next((t, m) for t, m in probe.get("ground_truth/odom") if t >= t_nan + 0.5)
        speed = abs(msg.twist.twist.linear.x)
        assert speed < 0.1, f"still moving at {speed:.2f} m/s {stamp - t_nan:.2f} s after a NaN"
    finally:
        probe.close()
        sim.close()


def test_stale_command_brakes_after_timeout():
    sim = RunningSim(cmd_timeout_s=0.5, supervisor_required=False)
    probe = Probe()
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    pub = probe.publisher(TwistStamped, "cmd_vel")
    try:
        probe.wait_for(lambda: probe.count("ground_truth/odom") > 0, 30, "ground truth")
        m = TwistStamped()
        m.twist.linear.x = 0.5
        pub.publish(m)                          # one command, then silence
        t0 = sim.node.sim.time_s
        probe.wait_for(lambda: sim.node.sim.time_s > t0 + 2.0, 30, "2 s of sim time")
        x0 = sim.node.sim.ground_truth().x_m
        probe.wait_for(lambda: sim.node.sim.time_s > t0 + 3.0, 30, "1 s more")
        x1 = sim.node.sim.ground_truth().x_m
        assert abs(x1 - x0) < 0.01, f"moved {abs(x1 - x0):.3f} m after the command went stale"
        # and it did move while the command was fresh (0.5 s ramping up at 1 m/s^2, then
        # ramping down after the timeout)
        sx, _, _ = sim.node.sim.world.spawn_poses["robot1"]
        assert 0.02 < x0 - sx < 0.4
    finally:
        probe.close()
        sim.close()
