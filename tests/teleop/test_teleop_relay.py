"""Teleop relay: the core rules with an injected clock, then the real thing through launch
(launch/teleop.launch.yaml: simulator + safety supervisor started in manual mode + relay as
separate processes), judged from ground truth (``ground_truth/odom``, evaluation only).

The launched part stands in for ``teleop_twist_keyboard``: Twist on ``teleop/cmd_vel`` at
10 Hz, like a held key's auto-repeat."""
from __future__ import annotations

import math
import threading
import time
from functools import partial

import pytest
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Bool

from sitebot.launcher import launched
from sitebot.nodes.common import QOS_COMMAND
from sitebot.teleop.core import (DEADMAN_TIMEOUT_S, TeleopArbiter, TeleopConfig, TeleopRelay,
                                 clamp_twist)
from sitebot_interfaces.msg import SafetyState

from rosprobe import Probe, spin_until

CFG = TeleopConfig(max_linear_mps=0.5, max_angular_radps=1.0, hold_timeout_s=0.6,
                   joy_timeout_s=0.5, stop_repeats=3)


def manual_relay(cfg: TeleopConfig = CFG) -> TeleopRelay:
    r = TeleopRelay(cfg)
    r.on_safety_mode(True, 0.0)
    return r


# ------------------------------------------------------------------ core (injected clock)
def test_keyboard_held_while_messages_keep_coming_then_zero_then_silence():
    r = manual_relay()
    assert r.tick(0.0) is None, "an idle relay must publish nothing"
    r.on_twist(0.3, 0.2, 0.0)
    out = [r.tick(t / 20) for t in range(0, 12)]          # 0 .. 0.55 s: within 0.6 s
    assert all(o is not None and o.deadman and o.v_mps == 0.3 and o.w_radps == 0.2
               for o in out)
    r.on_safety_mode(True, 0.6)
    held = r.tick(0.6)
    assert held is not None and held.deadman, "0.6 s after the message it is still held"
    lapsed = [r.tick(0.65 + k * 0.05) for k in range(5)]
    assert [(o.v_mps, o.w_radps, o.deadman) for o in lapsed[:3]] == [(0.0, 0.0, False)] * 3
    assert lapsed[3:] == [None, None], "after stop_repeats zero commands: silence"


def test_key_repeat_keeps_the_hold_alive():
    r = manual_relay()
    outs = []
    for k in range(40):                                   # 10 Hz key repeat for 4 s
        t = k * 0.1
        r.on_safety_mode(True, t)
        r.on_twist(0.4, 0.0, t)
        outs.append(r.tick(t + 0.05))
    assert all(o.deadman and o.v_mps == 0.4 for o in outs)


def test_joystick_deadman_is_the_button():
    cfg = TeleopConfig(joy_enable_button=4, joy_axis_linear=1, joy_axis_angular=3,
                       joy_scale_linear=0.4, joy_scale_angular=0.8, joy_deadzone=0.1)
    r = manual_relay(cfg)
    axes = [0.0, 0.5, 0.0, -0.25]
    assert r.on_joy(axes, [0, 0, 0, 0, 0], 0.0) is None
    assert r.tick(0.0) is None, "button released: nothing relayed"
    r.on_joy(axes, [0, 0, 0, 0, 1], 0.05)
    o = r.tick(0.05)
    assert o.deadman and o.source == "joystick"
    assert math.isclose(o.v_mps, 0.2) and math.isclose(o.w_radps, -0.2)
    r.on_joy([0.0, 0.05, 0.0, 0.0], [0, 0, 0, 0, 1], 0.1)  # inside the dead zone
    o = r.tick(0.1)
    assert (o.v_mps, o.w_radps, o.deadman) == (0.0, 0.0, True)
    r.on_joy(axes, [0, 0, 0, 0, 0], 0.15)                 # released with the stick pushed
    o = r.tick(0.15)
    assert (o.v_mps, o.w_radps, o.deadman) == (0.0, 0.0, False)


def test_joystick_that_goes_silent_is_released():
    r = manual_relay()
    r.on_joy([0.0, 1.0], [1], 0.0)
    assert r.tick(0.4).deadman
    r.on_safety_mode(True, 0.5)
    o = r.tick(0.51)                                       # 0.51 s > joy_timeout_s 0.5
    assert (o.v_mps, o.deadman) == (0.0, False)


@pytest.mark.parametrize("bad", [(math.nan, 0.0), (0.2, math.inf), (-math.inf, 0.1)])
def test_non_finite_keyboard_input_stops(bad):
    r = manual_relay()
    r.on_twist(0.3, 0.0, 0.0)
    assert r.tick(0.05).v_mps == 0.3
    why = r.on_twist(*bad, 0.1)
    assert why and "non-finite" in why
    o = r.tick(0.1)
    assert (o.v_mps, o.w_radps, o.deadman) == (0.0, 0.0, False), \
        "a NaN/inf after motion must stop at once, not keep the last command"


def test_malformed_joy_is_released_with_a_reason():
    r = manual_relay()
    r.on_joy([0.0, 0.5], [1], 0.0)
    assert r.tick(0.0).deadman
    why = r.on_joy([0.0], [1], 0.05)                       # axis 1 missing
    assert "axis 1" in why
    o = r.tick(0.05)
    assert (o.v_mps, o.deadman) == (0.0, False)
    assert "non-finite" in r.on_joy([0.0, math.nan], [1], 0.1)
    assert "button 0" in r.on_joy([0.0, 0.5], [], 0.15)


def test_clamping_keeps_the_curvature():
    assert clamp_twist(1.0, 0.5, 0.5, 1.0) == (0.5, 0.25)
    assert clamp_twist(0.2, -3.0, 0.5, 1.0) == pytest.approx((0.2 / 3.0, -1.0))
    assert clamp_twist(0.3, 0.4, 0.5, 1.0) == (0.3, 0.4)
    r = manual_relay()
    r.on_twist(2.0, 1.0, 0.0)
    o = r.tick(0.0)
    assert (o.v_mps, o.w_radps) == pytest.approx((0.5, 0.25))
    assert abs(o.v_mps) <= CFG.max_linear_mps and abs(o.w_radps) <= CFG.max_angular_radps


def test_the_console_pad_clamps_like_the_relay():
    # one teleop core: the console's arbiter keeps the curvature too (one factor for v and w)
    a = TeleopArbiter()
    assert (a.timeout_s, a.max_linear_mps, a.max_angular_radps) == (DEADMAN_TIMEOUT_S, 0.5, 1.0)
    assert a.command("c1", 2.0, 1.0, 0.0) == (True, "driving")
    o = a.tick(0.1)
    assert (o.v_mps, o.w_radps, o.deadman, o.source) == (0.5, 0.25, True, "console")
    assert o.w_radps / o.v_mps == pytest.approx(1.0 / 2.0)          # curvature kept
    a.command("c1", 0.2, -3.0, 0.2)
    assert (a.v, a.w) == pytest.approx((0.2 / 3.0, -1.0))
    assert (a.v, a.w) == pytest.approx(clamp_twist(0.2, -3.0, 0.5, 1.0))
    stop = a.tick(0.2 + DEADMAN_TIMEOUT_S + 0.01)
    assert (stop.v_mps, stop.w_radps, stop.deadman, stop.source) == (0.0, 0.0, False, "stop")
    assert stop.reason == "no teleop command for 0.31 s"
    b = TeleopArbiter(0.5, max_linear_mps=0.0, max_angular_radps=0.8)
    b.command("c1", 0.3, 0.4, 0.0)
    assert (b.v, b.w) == (0.0, 0.0)          # no forward speed allowed: the arc is not driven
    b.command("c1", 0.0, 2.0, 0.1)
    assert (b.v, b.w) == (0.0, 0.8)          # turning on the spot is
    with pytest.raises(ValueError, match="timeout_s"):
        TeleopArbiter(0.0)
    with pytest.raises(ValueError, match="max_angular_radps"):
        TeleopArbiter(0.3, 0.5, math.inf)


def test_nothing_relayed_outside_manual_mode_or_without_safety_state():
    r = TeleopRelay(CFG)
    r.on_twist(0.3, 0.0, 0.0)
    assert r.tick(0.0) is None and "no fresh safety/state" in r.ignored
    r.on_safety_mode(False, 0.0)
    assert r.tick(0.05) is None and "not in manual mode" in r.ignored
    r.on_safety_mode(True, 0.1)
    assert r.tick(0.1).deadman
    r.on_twist(0.3, 0.0, 1.1)
    # safety/state goes stale (older than 1 s) while the key is held: zero, not motion
    o = r.tick(1.15)
    assert (o.v_mps, o.deadman) == (0.0, False) and "no fresh safety/state" in r.ignored
    r2 = TeleopRelay(TeleopConfig(require_manual=False))
    r2.on_twist(0.3, 0.0, 0.0)
    assert r2.tick(0.0).deadman, "require_manual=false relays without a safety state"


def test_time_going_backwards_is_not_a_hold():
    r = manual_relay()
    r.on_twist(0.3, 0.0, 10.0)
    r.on_safety_mode(True, 10.0)
    assert r.tick(10.0).deadman
    r.on_safety_mode(True, 2.0)                            # sim reset: clock back to 2 s
    o = r.tick(2.0)
    assert (o.v_mps, o.deadman) == (0.0, False)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="hold_timeout_s"):
        TeleopConfig(hold_timeout_s=math.nan)
    with pytest.raises(ValueError, match="joy_deadzone"):
        TeleopConfig(joy_deadzone=1.5)


# ------------------------------------------------------------------ through launch
T_PHASE_S = 2.0      # sim seconds per phase
SPEED_CMD = 0.3


class Keyboard:
    """Stands in for teleop_twist_keyboard: Twist at 10 Hz while ``v`` is set."""

    def __init__(self, probe: Probe) -> None:
        self.pub = probe.publisher(Twist, "teleop/cmd_vel", QOS_COMMAND)
        self.direct = probe.publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.v: float | None = None
        self.direct_v: float | None = None
        self.last_sent = -math.inf
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.v is not None:
                m = Twist()
                m.linear.x = float(self.v)
                self.pub.publish(m)
                self.last_sent = time.monotonic()
            if self.direct_v is not None:
                m = TwistStamped()
                m.twist.linear.x = float(self.direct_v)
                self.direct.publish(m)
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)


@pytest.fixture(scope="module")
def teleop_run(tmp_path_factory):
    """One launch for the module: phases in sim time, results as numbers."""
    tmp = tmp_path_factory.mktemp("teleop")
    probe = Probe("teleop_probe")
    probe.subscribe(Clock, "/clock", "state", keep=False)
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    probe.subscribe(SafetyState, "safety/state", "state")
    probe.subscribe(Bool, "teleop/deadman", QOS_COMMAND)
    probe.subscribe(TwistStamped, "cmd_vel", QOS_COMMAND)
    kb = Keyboard(probe)
    res: dict = {}

    def now() -> float:
        return probe.latest_sim_time()

    def speeds(t0: float, t1: float) -> list[tuple[float, float]]:
        return [(t, math.hypot(m.twist.twist.linear.x, m.twist.twist.linear.y))
                for t, m in probe.get("ground_truth/odom") if t0 <= t <= t1]
    try:
        with launched("teleop.launch.yaml", {"world": "substation", "real_time_factor": "1.0",
                                             "camera_enabled": "false",
                                             "audit_log": str(tmp / "audit.jsonl")}) as h:
            probe.wait_for(lambda: probe.count("safety/state") > 5
                           and probe.count("ground_truth/odom") > 5
                           and kb.pub.get_subscription_count() > 0, 90,
                           "safety/state, ground truth and the relay", launch=h)

            def wait_sim(t: float) -> None:
                probe.wait_for(lambda: now() >= t, 60, f"sim time {t:.1f}", launch=h)
            # phase 0: nothing relayed
            t0 = now() + 0.5
            wait_sim(t0 + T_PHASE_S)
            res["idle"] = speeds(t0, t0 + T_PHASE_S)
            res["idle_states"] = [m for t, m in probe.get("safety/state")
                                  if t0 <= t <= t0 + T_PHASE_S]
            # phase 1: a command straight into cmd_vel_in, no deadman (not through the relay)
            kb.direct_v = SPEED_CMD
            t1 = now()
            wait_sim(t1 + T_PHASE_S)
            kb.direct_v = None
            res["direct"] = speeds(t1, t1 + T_PHASE_S)
            # phase 2: the keyboard held (10 Hz) through the relay
            kb.v = SPEED_CMD
            t2 = now()
            wait_sim(t2 + 2 * T_PHASE_S)
            res["held"] = speeds(t2, t2 + 2 * T_PHASE_S)
            res["deadman_true"] = sum(1 for _, m in probe.get("teleop/deadman") if m.data)
            # phase 3: key released: the stream stops
            kb.v = None
            t3 = now()
            wait_sim(t3 + 2 * T_PHASE_S)
            res["release"] = speeds(t3, t3 + 2 * T_PHASE_S)
            res["release_t"] = t3
            res["deadman_false"] = sum(1 for _, m in probe.get("teleop/deadman") if not m.data)
    finally:
        kb.close()
        probe.close()
    return res


@pytest.mark.integration
def test_nothing_relayed_means_no_motion(teleop_run):
    idle, direct = teleop_run["idle"], teleop_run["direct"]
    assert len(idle) > 10 and len(direct) > 10, "ground truth missing"
    v_idle = max(v for _, v in idle)
    v_direct = max(v for _, v in direct)
    states = teleop_run["idle_states"]
    print(f"\nmanual mode: max speed idle {v_idle:.4f} m/s, with {SPEED_CMD} m/s on cmd_vel_in "
          f"without the deadman {v_direct:.4f} m/s")
    assert states and all(m.mode == SafetyState.MODE_MANUAL for m in states)
    assert all(m.level >= SafetyState.LEVEL_PROTECTIVE_STOP and "deadman_released" in m.reasons
               for m in states), "manual mode without the deadman must be a protective stop"
    assert v_idle < 0.02
    assert v_direct < 0.02, "a command without the hold-to-run flag moved the robot"


@pytest.mark.integration
def test_held_keyboard_moves_the_robot_and_release_stops_it(teleop_run):
    held, release = teleop_run["held"], teleop_run["release"]
    assert len(held) > 20 and len(release) > 20, "ground truth missing"
    v_max = max(v for _, v in held)
    # at rest: the first sample after which the speed stays below 0.02 m/s
    t_rel = teleop_run["release_t"]
    rest_at = None
    for i, (t, v) in enumerate(release):
        if all(w < 0.02 for _, w in release[i:]):
            rest_at = t
            break
    stop_s = (rest_at - t_rel) if rest_at is not None else math.inf
    print(f"\nteleop at {SPEED_CMD} m/s: max ground-truth speed {v_max:.3f} m/s; at rest "
          f"{stop_s:.2f} s (sim) after the key stream stopped; deadman true x"
          f"{teleop_run['deadman_true']}, false x{teleop_run['deadman_false']}")
    assert v_max > 0.2, "the held key did not move the robot"
    assert v_max < 0.5 + 0.05, "faster than the relay's and the supervisor's manual limit"
    assert teleop_run["deadman_true"] > 20
    assert teleop_run["deadman_false"] >= 3, "the release sends zero with the deadman false"
    assert stop_s < 1.5, f"robot still moving {stop_s:.2f} s after the key was released"


# ------------------------------------------------------------------ node, one process
@pytest.mark.parametrize("stamped", [False, True])
def test_node_relays_keyboard_and_joy_and_stops_on_nan(stamped):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Joy

    from sitebot.nodes.teleop_relay import TeleopRelayNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = TeleopRelayNode(context=ctx, parameter_overrides=[
            rclpy.Parameter("keyboard_stamped", value=stamped),
            rclpy.Parameter("joy_enable_button", value=2)])
        test = rclpy.create_node("teleop_test", context=ctx)
        cmds, deadman = [], []
        test.create_subscription(TwistStamped, "cmd_vel_in", cmds.append, QOS_COMMAND)
        test.create_subscription(Bool, "teleop/deadman", deadman.append, QOS_COMMAND)
        kb = test.create_publisher(TwistStamped if stamped else Twist, "teleop/cmd_vel",
                                   QOS_COMMAND)
        joy = test.create_publisher(Joy, "joy", QOS_COMMAND)
        state = test.create_publisher(SafetyState, "safety/state", QOS_COMMAND)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(test)

        spin = partial(spin_until, executor=ex, must=False)

        def key(v):
            m = TwistStamped() if stamped else Twist()
            (m.twist if stamped else m).linear.x = v
            kb.publish(m)
        spin(lambda: kb.get_subscription_count() and state.get_subscription_count()
                   and joy.get_subscription_count())
        state.publish(SafetyState(mode=SafetyState.MODE_AUTOMATIC))
        key(0.3)
        spin(lambda: False, 0.3)
        assert cmds == [], "automatic mode: teleop input must not be relayed"
        # a person nearby: the mode in force is REDUCED_SPEED, hold-to-run as requested
        # goes on (the supervisor still wants the deadman), so teleop is relayed
        state.publish(SafetyState(mode=SafetyState.MODE_REDUCED_SPEED,
                                  requested_mode=SafetyState.MODE_MANUAL))
        key(0.9)                                        # clamped to 0.5
        assert spin(lambda: any(c.twist.linear.x > 0 for c in cmds))
        moving = [c for c in cmds if c.twist.linear.x > 0]
        assert moving[0].twist.linear.x == pytest.approx(0.5)
        assert moving[0].header.frame_id == "base_footprint"
        assert spin(lambda: deadman and deadman[-1].data is True)
        n = len(cmds)
        key(math.nan)
        assert spin(lambda: len(cmds) > n and cmds[-1].twist.linear.x == 0.0
                          and deadman[-1].data is False)
        # joystick: button 2 held, left stick forward
        state.publish(SafetyState(mode=SafetyState.MODE_MANUAL,
                                  requested_mode=SafetyState.MODE_MANUAL))
        joy.publish(Joy(axes=[0.0, 0.8], buttons=[0, 0, 1]))
        assert spin(lambda: cmds[-1].twist.linear.x == pytest.approx(0.4)
                          and deadman[-1].data is True)
        joy.publish(Joy(axes=[0.0, 0.8], buttons=[0, 0, 0]))
        assert spin(lambda: cmds[-1].twist.linear.x == 0.0 and deadman[-1].data is False)
        ex.shutdown()
        node.destroy_node()
        test.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
