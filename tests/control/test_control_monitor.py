"""The control loop's ROS-free bookkeeping (sitebot.control.monitor) and the hardware
loop's decisions (sitebot.control.hardware_loop): core, no ROS, numbers."""
from __future__ import annotations

import math

import pytest

from sitebot.control import kernel as kmod
from sitebot.control.hardware_loop import (SCHEMA, Arming, TickClock, arm_contract, arm_interface,
                                           choose_driver, controller_topics, joint_state_health,
                                           kernel_config_from_params, rt_period_stats,
                                           trajectory_check_from_params)
from sitebot.control.monitor import ControlMonitor, PeriodStats, Rejection
from sitebot.control.pinning import PublisherPin, Verdict
from sitebot.control.ros2_control import ForwardCommandContract, TrajectoryCommandContract
from sitebot.control.trajectory import TrajectoryCheck
from sitebot.control.types import Heartbeat, Interface, Latch, Reject, Status
from sitebot.errors import ParameterError
from sitebot.types import DiagnosticLevel, StopCategory

DEFAULTS = {s.name: s.default for s in SCHEMA}


@pytest.fixture(scope="module")
def desc():
    from sitebot.description.urdf import load_robot_description
    return load_robot_description()


class Clocks:
    def __init__(self) -> None:
        self.t = 100.0
        self.wall = 0.0
        self.log: list[str] = []


@pytest.fixture
def mon(desc):
    c = Clocks()
    cfg = kmod.kernel_config_from_description(desc)          # heartbeat timeout 0.5 s
    m = ControlMonitor(cfg, lambda: c.t, c.log.append, warn_throttle_s=1.0,
                       wall_clock=lambda: c.wall)
    m.clocks = c
    return m


# ---------------------------------------------------------------------------- monitor
def test_supervisor_heartbeat_scale_and_category(mon):
    c = mon.clocks
    s = mon.supervisor("safety/state", 100.0, 0.0, 0.5, 255)
    assert s == (100.0, 0.5, StopCategory.NONE)
    assert mon.counts["safety_states"] == 1 and mon.last_heartbeat_s == 100.0
    s = mon.supervisor("safety/state", 100.1, 99.0, 2.0, 255)
    assert s == (99.0, 1.0, StopCategory.NONE)                # older stamp; scale clamped
    s = mon.supervisor("safety/state", 100.2, 150.0, -1.0, 1)
    assert s == (100.2, 0.0, StopCategory.CAT1)               # a stamp ahead: arrival
    assert c.log == []
    s = mon.supervisor("safety/state", 101.2, 0.0, math.nan, 7)
    assert s == (101.2, 0.0, StopCategory.CAT1)
    assert c.log == ["safety/state: speed_scale nan is not finite; using 0",
                     "safety/state: unknown stop_category 7; acting as category 1"]
    assert mon.speed_scale == 0.0 and mon.stop_category is StopCategory.CAT1


def test_only_the_supervisor_node_is_obeyed_and_faults_are_counted(mon):
    c = mon.clocks
    graph = {"cmd_vel": [("/safety_supervisor", b"S" * 16), ("/attacker", b"A" * 16)]}
    mon.pin = PublisherPin("/safety_supervisor", lambda t: graph.get(t, []),
                           clock=lambda: c.wall)
    assert mon.obey("cmd_vel", b"S" * 16) is Verdict.SUPERVISOR
    assert mon.obey("cmd_vel", b"A" * 16) is Verdict.FOREIGN
    assert mon.obey("cmd_vel", None) is Verdict.UNKNOWN
    assert mon.counts["foreign_messages"] == 1 and mon.counts["unverified_messages"] == 1
    assert c.log[0].startswith("cmd_vel: ignored a message from a node other than the safety "
                               "supervisor /safety_supervisor (publisher gid 4141")
    mon.heartbeat_result("safety/state", Heartbeat.FOREIGN, 12)
    mon.heartbeat_result("safety/state", Heartbeat.ACCEPTED, 13)
    assert mon.counts["heartbeat_faults"] == 1
    mon.latch = Latch.STOP | Latch.FOREIGN
    values = dict(mon.diagnostics()[2])
    assert values["stop_latch"] == "STOP+FOREIGN"
    assert values["last_heartbeat_fault"] == "a second safety/state source"


def test_warnings_are_throttled_per_key_and_count_the_suppressed(mon):
    c = mon.clocks
    for _ in range(3):
        mon.warn("a", "first")
    mon.warn("b", "other")
    c.wall = 0.5
    mon.warn("a", "first")
    c.wall = 1.2
    mon.warn("a", "again")
    assert c.log == ["first", "other", "again (3 similar suppressed)"]


def test_rejection_text_and_the_status_text(mon):
    c = mon.clocks
    mon.latch = Latch.START
    assert mon.status_text(Status.COMMAND_TIMEOUT).endswith(
        "; stop latched (start) until the supervisor releases it")
    mon.latch = Latch(0)                                     # released
    mon.reject("arm/joint_trajectory", "no points", Reject.EMPTY, False)
    r = mon.last_rejection
    assert r == Rejection("arm/joint_trajectory", "no points", Reject.EMPTY, False, 100.0)
    assert str(r) == "arm/joint_trajectory: rejected [EMPTY]: no points"
    assert c.log == ["arm/joint_trajectory: rejected [EMPTY]: no points; the active "
                     "trajectory is unchanged (none: the robot holds)"]
    mon.reject("cmd_vel", "linear.x nan", Reject.NON_FINITE, True)
    assert c.log[-1].endswith("kernel rejected [NON_FINITE]: linear.x nan; the base brakes")
    assert mon.status_text(None) == "not running yet"
    assert mon.status_text(Status.OK) == ("ok; last rejected: cmd_vel: kernel rejected "
                                          "[NON_FINITE]: linear.x nan")
    c.t = 105.0                                              # shown for 5 s
    assert mon.status_text(Status.OK) == "ok"
    assert mon.status_text(Status.STOPPED) == "stopped (heartbeat lost)"
    mon.supervisor("s", 105.0, 0.0, 1.0, 255)
    mon.latch = Latch.STOP | Latch.HEARTBEAT
    assert mon.status_text(Status.STOPPING) == ("stopping (stop latched (stop+heartbeat) until "
                                                "the supervisor releases it)")
    mon.supervisor("s", 105.0, 0.0, 1.0, 2)
    assert mon.status_text(Status.STOPPED) == "stopped (supervisor requests category 2)"
    assert mon.heartbeat_age() == 0.0


def test_diagnostics_levels_values_and_period_figures(mon):
    level, msg, values = mon.diagnostics()
    assert (level, msg) == (DiagnosticLevel.STALE, "control loop has not run yet")
    assert dict(values)["status"] == "NONE" and dict(values)["heartbeat_age_s"] == "inf"
    mon.supervisor("s", 100.0, 0.0, 0.8, 255)
    mon.mark_stepped(Status.OK)
    level, msg, values = mon.diagnostics(None, (0.012345678, True))
    d = dict(values)
    assert level is DiagnosticLevel.OK and msg == "ok"
    assert d["max_position_error"] == "0.01235" and d["trajectory_active"] == "True"
    assert d["speed_scale"] == "0.800" and d["safety_states"] == "1"
    stats = {"rate_hz": 100.0, "period_mean_s": 0.0125, "ticks": 80.0, "overruns": 0.0}
    level, msg, values = mon.diagnostics(stats)              # 25 % late: a warning
    d = dict(values)
    assert level is DiagnosticLevel.WARN
    assert msg == "ok; period 12.50 ms for 10.00 ms nominal, 0 overrun(s)"
    assert d["period_mean_ms"] == "12.500" and d["periodicity.average_hz"] == "80.00"
    assert d["rate_hz"] == "100" and d["ticks"] == "80"
    mon.late_period_tolerance = 0.3
    assert mon.diagnostics(stats)[0] is DiagnosticLevel.OK
    mon.mark_stepped(Status.HEARTBEAT_TIMEOUT)
    assert mon.diagnostics(stats)[0] is DiagnosticLevel.ERROR
    mon.mark_stepped(Status.STOPPING)
    assert mon.diagnostics()[0] is DiagnosticLevel.WARN


def test_period_stats_window():
    stats = PeriodStats(100.0)
    for k in range(11):                                      # one 30 ms period: an overrun
        stats.tick(k * 0.01 + (0.02 if k == 10 else 0.0), k * 0.01 + 0.0002)
    snap = stats.snapshot()
    assert snap["ticks"] == 11 and snap["overruns"] == 1 and snap["overruns_total"] == 1
    assert snap["period_min_s"] == pytest.approx(0.01)
    assert snap["period_max_s"] == pytest.approx(0.03)
    assert snap["period_mean_s"] == pytest.approx(0.012)
    assert snap["period_std_s"] == pytest.approx(0.006)
    assert snap["exec_mean_s"] == pytest.approx((10 * 0.0002 + 0.0) / 11)
    assert snap["exec_max_s"] == pytest.approx(0.0002)
    empty = stats.snapshot()                                 # a new window
    assert empty["ticks"] == 0 and math.isnan(empty["period_mean_s"])
    assert empty["overruns"] == 0 and empty["overruns_total"] == 1


# ---------------------------------------------------------------------------- hardware loop
def test_schema_defaults_are_the_core_defaults():
    c = trajectory_check_from_params(DEFAULTS)
    assert c == TrajectoryCheck()
    assert (DEFAULTS["rate_hz"], DEFAULTS["state_timeout_s"], DEFAULTS["use_rt_thread"]) == (
        250.0, 0.1, True)
    spec = {s.name: s for s in SCHEMA}
    assert (spec["trajectory_start_tolerance"].min_value,
            spec["trajectory_start_tolerance"].max_value) == (0.0, 0.1)


def test_kernel_config_from_params(desc):
    cfg = kernel_config_from_params(desc, DEFAULTS, Interface.POSITION)
    ref = kmod.kernel_config_from_description(desc, interface=Interface.POSITION)
    assert cfg == ref                                        # the defaults are the kernel's
    v = dict(DEFAULTS, velocity_scale=0.5, kp=[3.0] * 7, cmd_timeout_s=0.2)
    cfg = kernel_config_from_params(desc, v, Interface.VELOCITY)
    assert cfg.vel_max == tuple(0.5 * x for x in ref.vel_max)
    assert cfg.acc_max == tuple(2.0 * x for x in cfg.vel_max)
    assert cfg.kp == (3.0,) * 7 and cfg.cmd_timeout_s == 0.2
    with pytest.raises(ParameterError, match="'acc_max': has 2 values; accepted: none, or 7"):
        kernel_config_from_params(desc, dict(DEFAULTS, acc_max=[1.0, 2.0]), Interface.POSITION)
    assert arm_interface("forward_command_controller", "velocity") is Interface.VELOCITY
    assert arm_interface("forward_command_controller", "position") is Interface.POSITION
    assert arm_interface("joint_trajectory_controller", "position") is Interface.POSITION
    with pytest.raises(ParameterError, match="arm_interface"):
        arm_interface("joint_trajectory_controller", "velocity")


def test_contracts_and_topics_from_params(desc):
    names = list(kmod.kernel_joint_names(desc))
    cfg = kernel_config_from_params(desc, DEFAULTS, Interface.POSITION)
    values = dict(DEFAULTS, arm_controller="arm_controller", base_controller="dd",
                  arm_controller_type="forward_command_controller", arm_interface="position",
                  arm_controller_joints=[], trajectory_horizon_s=0.05)
    assert isinstance(arm_contract(names, values, cfg), ForwardCommandContract)
    assert controller_topics(values) == ("arm_controller/commands", "dd/cmd_vel")
    jtc = dict(values, arm_controller_type="joint_trajectory_controller")
    assert isinstance(arm_contract(names, jtc, cfg), TrajectoryCommandContract)
    assert controller_topics(jtc)[0] == "arm_controller/joint_trajectory"
    with pytest.raises(ParameterError, match="arm_controller_joints.*wheel_x"):
        arm_contract(names, dict(values, arm_controller_joints=["arm_joint_1", "wheel_x"]), cfg)


def test_choose_driver():
    assert choose_driver(False) == (
        False, "use_rt_thread is false: the kernel steps in Python from an rclpy timer")
    use, why = choose_driver(True)
    assert use == (kmod.RtLoop is not None and kmod.IMPLEMENTATION == "c")
    assert ("C RtLoop thread" in why) == use


def test_tick_clock_dt():
    clock = TickClock(100.0)
    assert clock.dt(5.0) == 0.01                             # first tick: nominal
    assert clock.dt(5.013) == pytest.approx(0.013)
    assert clock.dt(5.063) == pytest.approx(0.05)            # 5 periods: still taken
    assert clock.dt(5.0631 + 0.05) == 0.01                   # over 5 periods: a jump
    assert clock.dt(4.0) == 0.01                             # backwards: a jump
    assert TickClock(100.0, max_gap_periods=20.0).dt(1.0) == 0.01
    for bad in (dict(rate_hz=0.0), dict(rate_hz=math.nan), dict(rate_hz=1.0, max_gap_periods=0.5)):
        with pytest.raises(ValueError):
            TickClock(**bad)


def test_arming():
    a = Arming()
    a.stepped(False, Status.HEARTBEAT_TIMEOUT)               # no state yet
    a.stepped(True, Status.INVALID_INPUT)                    # a NaN in the state
    assert not a.armed
    a.stepped(True, Status.HEARTBEAT_TIMEOUT)
    assert a.armed
    rt = Arming()
    rt.rt_read(False, 3, Status.INVALID_INPUT)
    rt.rt_read(True, 5, Status.INVALID_INPUT)                # written after tick 5
    rt.rt_read(True, 5, Status.OK)                           # still tick 5's output
    assert not rt.armed
    rt.rt_read(True, 6, Status.INVALID_INPUT)
    assert not rt.armed
    rt.rt_read(True, 7, Status.OK)
    assert rt.armed


def test_rt_period_stats_and_joint_state_health():
    rs = {"mean_period_s": 0.001, "std_period_s": 2e-6, "max_error_s": 5e-5,
          "p99_error_s": 1e-5, "overruns": 2, "ticks": 1000}
    s = rt_period_stats(rs, 1000.0, {"exec_mean_s": 1e-4, "exec_max_s": 3e-4, "ticks": 9.0})
    assert s == {"rate_hz": 1000.0, "period_mean_s": 0.001, "period_std_s": 2e-6,
                 "period_max_error_s": 5e-5, "period_p99_error_s": 1e-5,
                 "overruns_total": 2.0, "ticks": 1000.0, "exec_mean_s": 1e-4,
                 "exec_max_s": 3e-4}
    assert joint_state_health(0.05, 0.1) == (DiagnosticLevel.OK, "joint_states fresh")
    assert joint_state_health(0.25, 0.1) == (DiagnosticLevel.ERROR,
                                             "joint_states 0.250 s old: holding")
    assert joint_state_health(math.inf, 0.1) == (DiagnosticLevel.ERROR,
                                                 "joint_states never received: holding")
