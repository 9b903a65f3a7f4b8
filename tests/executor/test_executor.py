"""Task executor core: step protocol (re-check, pause on stops, retries, safe state, confirm).

``ScriptedPorts`` is a test double of the robot for these unit tests of the runner's logic
(it keeps the RobotPorts contract: a simulated clock, navigation/arm results from a script,
gauge readings on a schedule); the node and mission tests use the real stack.
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field

import pytest

from sitebot.executor import (ExecutorConfig, MotionResult, Outcome, Plan, PlanRunner, Reading,
                              ResultCode, SafetyLevel, SafetySnapshot, Step, check_plan, check_step)
from sitebot.executor.approach import FrontScan
from sitebot.executor.ports import PortsConfig, TrackedPorts
from sitebot.perception.object_segment import ObjectSegment, moved_segment, segment_object
from sitebot.sim.world_loader import load_world
from sitebot.types import Pose2D

REG = load_world("substation").registry


@dataclass
class ScriptedPorts:
    """Test double of the robot: time advances only through sleep() and motions."""
    t: float = 0.0
    nav_script: list[str] = field(default_factory=list)     # codes returned in order
    nav_time_s: float = 10.0
    arm_code: str = "succeeded"
    stops: list[tuple[float, float]] = field(default_factory=list)   # (from, to) stopped
    gauge_value: float | None = 1.2
    gauge_valid: bool = True
    confirm_answer: bool | None = True
    gripper_reached: float = 0.02
    calls: list[str] = field(default_factory=list)
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    approach_limit_m: float = 10.0
    gripper_opens: bool = True
    pose_script: list[str] = field(default_factory=list)    # move_arm_pose codes in order
    arm_goals: list = field(default_factory=list)
    seen: object = None          # what the depth camera shows (an ObjectSegment, map frame)
    gripper_after_lift: float | None = None   # the fingers' opening once lifted (a slip)
    gauge_from_m: float = 0.0    # gauge readings are valid only this much closer in
    approached: float = 0.0      # driven in by approaches, not yet backed out
    map_jump: tuple = (0.0, 0.0)  # the map pose's error once an approach has begun [m]
    arm_q: tuple | None = None   # the arm's joint positions it reports (None: unknown)
    joint_script: list[str] = field(default_factory=list)   # move_arm_joints codes in order

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def safety(self) -> SafetySnapshot:
        stopped = any(a <= self.t < b for a, b in self.stops)
        return SafetySnapshot(SafetyLevel.PROTECTIVE_STOP if stopped else SafetyLevel.NORMAL,
                              False, ("person within 0.5 m",) if stopped else (), 0.05)

    def robot_pose(self):
        if self.map_jump != (0.0, 0.0) and self.approached > 0.0:     # a fix on the way in
            return (self.pose[0] + self.map_jump[0], self.pose[1] + self.map_jump[1],
                    self.pose[2])
        return self.pose

    def odometry_pose(self):
        return Pose2D.of(self.pose)       # the double's true pose; the map pose may jump

    def navigate(self, place_id: str, timeout_s: float) -> MotionResult:
        self.calls.append(f"nav:{place_id}")
        self.t += self.nav_time_s
        code = self.nav_script.pop(0) if self.nav_script else "succeeded"
        if code == "succeeded":
            p = REG.place(place_id).pose
            self.pose = (p.x, p.y, p.yaw)
        return MotionResult(code, "corridor blocked" if code == "blocked" else "")

    def approach(self, distance_m: float, timeout_s: float):
        """Drives straight at 0.08 m/s, stopping short at ``approach_limit_m`` forward."""
        d = min(distance_m, self.approach_limit_m) if distance_m > 0 else distance_m
        self.calls.append(f"approach:{d:+.2f}")
        self.t += abs(d) / 0.08
        x, y, yaw = self.pose
        self.pose = (x + d * math.cos(yaw), y + d * math.sin(yaw), yaw)
        self.approached += d
        return MotionResult("succeeded", f"after {d:+.2f} m"), d

    def move_arm_named(self, name: str, timeout_s: float) -> MotionResult:
        self.calls.append(f"arm:{name}")
        self.t += 2.0
        return MotionResult(self.arm_code)

    def move_arm_pose(self, xyz, rpy, timeout_s) -> MotionResult:
        self.calls.append("arm:pose")
        self.arm_goals.append((tuple(xyz), tuple(rpy), self.pose))
        self.t += 2.0
        return MotionResult(self.pose_script.pop(0) if self.pose_script else self.arm_code)

    def move_arm_joints(self, positions, timeout_s) -> MotionResult:
        self.calls.append("arm:joints")
        self.arm_goals.append((tuple(positions), None, self.pose))
        self.t += 2.0
        return MotionResult(self.joint_script.pop(0) if self.joint_script else self.arm_code)

    def arm_positions(self):
        return self.arm_q

    def set_gripper(self, opening_m: float, timeout_s: float):
        self.calls.append(f"gripper:{opening_m:g}")
        if not self.gripper_opens:
            return 0.0
        return max(opening_m, self.gripper_reached) if opening_m < 0.01 else opening_m

    def gripper_opening(self):
        return self.gripper_after_lift if self.gripper_after_lift is not None \
            else self.gripper_reached

    def gauge_readings(self, asset_id: str, since_s: float):
        if self.gauge_value is None:
            return []
        n = int((self.t - since_s) / 0.5)          # one reading per 0.5 s
        ok = self.gauge_valid and self.approached >= self.gauge_from_m - 1e-9
        return [Reading(asset_id, self.gauge_value + 0.001 * (k % 2), "bar", 0.9,
                        ok, "" if ok else "glare", since_s + k)
                for k in range(n)]

    def fiducial_seen(self, tag_id: int, since_s: float) -> bool:
        return True

    def object_position(self, object_id: str):
        return REG.object(object_id).pose

    def perceive_object(self, object_id: str):
        self.calls.append(f"look:{object_id}")
        if self.seen is None:
            return ObjectSegment(False, "no depth camera in this test double")
        return self.seen

    def save_image(self, name: str):
        self.calls.append(f"image:{name}")
        return f"/tmp/{name}.png"

    def confirm(self, question: str, plan_id: str, timeout_s: float):
        self.calls.append(f"confirm:{question}")
        return self.confirm_answer

    def stop_motion(self) -> None:
        self.calls.append("stop")

    def log(self, message: str) -> None:
        pass


def plan(*steps: tuple, role: str = "operator") -> Plan:
    return Plan(tuple(Step(s, dict(a)) for s, a in steps), plan_id="p1", role=role)


GAUGE_PLAN = plan(("navigate_to", {"place": "t1_bay"}),
                  ("read_gauge", {"asset": "t1_oil_pressure_gauge"}),
                  ("dock", {}))


def test_gauge_mission_succeeds_with_median_reading() -> None:
    ports = ScriptedPorts()
    res = PlanRunner(REG, ports).run(GAUGE_PLAN)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    assert [s.outcome for s in res.steps] == [Outcome.SUCCEEDED] * 3
    (r,) = res.readings
    assert r.asset_id == "t1_oil_pressure_gauge" and r.unit == "bar"
    assert r.value == pytest.approx(1.2, abs=0.002) and r.confidence == pytest.approx(0.9)
    assert ports.calls[0] == "nav:t1_bay" and ports.calls[-1].startswith("nav:")
    assert "arm:stow" in ports.calls      # the view pose keeps the mast camera clear


def test_blocked_navigation_is_retried_and_recovers() -> None:
    ports = ScriptedPorts(nav_script=["blocked", "succeeded"])
    res = PlanRunner(REG, ports).run(GAUGE_PLAN)
    assert res.code is ResultCode.SUCCEEDED
    assert res.steps[0].attempts == 2 and res.steps[0].outcome is Outcome.SUCCEEDED
    assert ports.calls.count("nav:t1_bay") == 2


def test_persistent_block_fails_plan_and_leaves_safe_state() -> None:
    ports = ScriptedPorts(nav_script=["succeeded", "blocked", "blocked"])
    p = plan(("navigate_to", {"place": "t1_bay"}),
             ("read_gauge", {"asset": "t1_oil_pressure_gauge"}),
             ("navigate_to", {"place": "t2_bay"}), ("dock", {}))
    res = PlanRunner(REG, ports, ExecutorConfig(max_attempts=2)).run(p)
    assert res.code is ResultCode.FAILED
    assert [s.outcome for s in res.steps] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED,
                                              Outcome.FAILED, Outcome.SKIPPED]
    assert "blocked" in res.reason and "after 2 attempts" in res.reason
    assert ports.calls[-1] == "stop"       # stopped; the arm was already stowed (view pose)
    # failing while holding a tool (arm out): stopped and the arm stowed
    ports = ScriptedPorts(nav_script=["succeeded", "blocked", "blocked"])
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}),
             ("navigate_to", {"place": "t2_bay"}))
    ports.arm_code = "succeeded"
    res = PlanRunner(REG, ports, ExecutorConfig(max_attempts=2)).run(p)
    assert res.code is ResultCode.FAILED
    assert ports.calls[-1] == "arm:stow" and ports.calls[-2] == "stop"


def test_protective_stop_pauses_then_resumes() -> None:
    ports = ScriptedPorts(stops=[(0.0, 7.5)])
    events: list[str] = []
    res = PlanRunner(REG, ports).run(GAUGE_PLAN, feedback=lambda i, n, s, r: events.append(s))
    assert res.code is ResultCode.SUCCEEDED
    assert events[0] == "paused: protective stop"
    assert ports.calls[0] == "nav:t1_bay"
    # the first motion starts only after the stop is released
    assert res.steps[0].duration_s == pytest.approx(7.5 + 10.0, abs=0.11)


def test_long_stop_aborts_within_limit() -> None:
    ports = ScriptedPorts(stops=[(0.0, 1e9)])
    res = PlanRunner(REG, ports, ExecutorConfig(pause_limit_s=30.0)).run(GAUGE_PLAN)
    assert res.code is ResultCode.ABORTED
    assert "stopped for more than 30 s" in res.reason
    assert 30.0 <= ports.t <= 30.3
    assert "nav:t1_bay" not in ports.calls


def test_unreadable_gauge_fails_without_a_value() -> None:
    ports = ScriptedPorts(gauge_valid=False)
    res = PlanRunner(REG, ports, ExecutorConfig(gauge_timeout_s=5.0)).run(GAUGE_PLAN)
    assert res.code is ResultCode.FAILED
    assert res.readings == []
    assert "glare" in res.steps[1].message and res.steps[1].attempts == 2


def test_valve_needs_supervisor_and_confirmation() -> None:
    steps = (("navigate_to", {"place": "t1_valve_stand"}),
             ("operate_valve", {"asset": "t1_cooling_valve", "action": "close"}))
    res = PlanRunner(REG, ScriptedPorts()).run(plan(*steps, role="operator"))
    assert res.code is ResultCode.REJECTED and "supervisor" in res.reason
    declined = ScriptedPorts(confirm_answer=False)
    res = PlanRunner(REG, declined).run(plan(*steps, role="supervisor"))
    assert res.code is ResultCode.ABORTED
    assert res.steps[1].outcome is Outcome.DECLINED and "declined" in res.reason
    assert not any(c.startswith("arm:valve") for c in declined.calls)
    silent = ScriptedPorts(confirm_answer=None)
    res = PlanRunner(REG, silent).run(plan(*steps, role="supervisor"))
    assert res.steps[1].outcome is Outcome.DECLINED and "no confirmation" in res.reason
    ok = ScriptedPorts()
    res = PlanRunner(REG, ok).run(plan(*steps, role="supervisor"))
    assert res.code is ResultCode.SUCCEEDED and "arm:valve_close" in ok.calls
    pre = ScriptedPorts(confirm_answer=False)
    res = PlanRunner(REG, pre).run(plan(*steps, role="supervisor"), confirmed=True)
    assert res.code is ResultCode.SUCCEEDED
    assert not any(c.startswith("confirm:") for c in pre.calls)


def test_a_gauge_not_read_from_the_place_is_read_from_closer() -> None:
    """No valid reading within 20 s from the place (glare): the robot drives 0.4 m closer,
    reads there, and backs out by what it drove; a gauge unreadable from closer too fails
    the step after both views, backed out; gauge_second_view_m 0 keeps the old single
    view."""
    closer = ScriptedPorts(gauge_from_m=0.4)
    res = PlanRunner(REG, closer).run(GAUGE_PLAN)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    assert [c for c in closer.calls if c.startswith("approach:")] == ["approach:+0.40",
                                                                       "approach:-0.40"]
    assert closer.approached == pytest.approx(0.0)
    assert res.readings[0].value == pytest.approx(1.2, abs=0.002)
    never = ScriptedPorts(gauge_valid=False)
    res = PlanRunner(REG, never, ExecutorConfig(max_attempts=1)).run(GAUGE_PLAN)
    assert res.code is ResultCode.FAILED and "glare" in res.reason
    assert never.approached == pytest.approx(0.0) and "approach:+0.40" in never.calls
    assert never.t >= 2 * 20.0                         # both views waited their 20 s
    single = ScriptedPorts(gauge_from_m=0.4)
    res = PlanRunner(REG, single, ExecutorConfig(max_attempts=1,
                                                 gauge_second_view_m=0.0)).run(GAUGE_PLAN)
    assert res.code is ResultCode.FAILED
    assert not [c for c in single.calls if c.startswith("approach:")]


def test_pick_and_place_track_the_held_object() -> None:
    ports = ScriptedPorts()
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}),
             ("navigate_to", {"place": "t2_bay"}), ("place", {"place": "t2_bay"}))
    res = PlanRunner(REG, ports).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    assert "holding voltage_detector" in res.steps[1].message
    assert "gripper:0.04" in ports.calls and ports.calls[-1] == "arm:stow"
    missed = ScriptedPorts(gripper_reached=0.0)
    res = PlanRunner(REG, missed).run(p)
    assert res.code is ResultCode.FAILED and "missed" in res.steps[1].message
    place_only = plan(("navigate_to", {"place": "t2_bay"}), ("place", {"place": "t2_bay"}))
    res = PlanRunner(REG, ScriptedPorts()).run(place_only)
    assert res.code is ResultCode.FAILED and "nothing in the gripper" in res.reason


def test_pick_closes_in_grips_across_the_tool_and_backs_out() -> None:
    """The tool lies 0.87 m ahead of the bench place: the pick drives 0.32 m closer (to
    0.55 m), grasps with the fingers across the tool's long axis (grasp_yaw 0 -> tool x
    along map x), and backs out by exactly what it drove."""
    ports = ScriptedPorts()
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}))
    res = PlanRunner(REG, ports).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    moves = [c for c in ports.calls if c.startswith("approach:")]
    assert moves == ["approach:+0.32", "approach:-0.32"]
    bench = REG.place("tool_bench").pose
    assert ports.pose[:2] == pytest.approx((bench.x, bench.y), abs=1e-6)
    (gx, gy, gz), (r, pitch, yaw), at = ports.arm_goals[0]
    assert (gx, gy, gz) == pytest.approx((-6.1, 13.27, 0.53 + 0.02 + 0.15))
    assert at[1] == pytest.approx(bench.y + 0.32, abs=1e-5)        # grasped from closer
    assert abs(math.remainder(yaw, math.pi)) < 1e-9                  # tool x along map x
    assert "arm:carry_across" in ports.calls      # held across the robot (facing north)
    # stopped short by the laser gap: grasps from where it got to, still backs out that much
    short = ScriptedPorts(approach_limit_m=0.2)
    res = PlanRunner(REG, short).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    assert [c for c in short.calls if c.startswith("approach:")] == ["approach:+0.20",
                                                                     "approach:-0.20"]
    # a missed grasp still backs out (the robot never stays wedged against the bench)
    missed = ScriptedPorts(gripper_reached=0.0)
    res = PlanRunner(REG, missed, ExecutorConfig(max_attempts=1)).run(p)
    assert res.code is ResultCode.FAILED
    assert [c for c in missed.calls if c.startswith("approach:")] == ["approach:+0.32",
                                                                      "approach:-0.32"]
    # no way down at the first yaw: the other yaw (half a turn) is tried, from above again
    turned = ScriptedPorts(pose_script=["succeeded", "rejected"])
    res = PlanRunner(REG, turned, ExecutorConfig(max_attempts=1)).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    yaws = [g[1][2] for g in turned.arm_goals]
    assert len(yaws) >= 4 and abs(abs(math.remainder(yaws[2] - yaws[0], math.tau)) - math.pi) \
        < 1e-9 and yaws[2] == yaws[3]
    # a descent stopped by the arm (not a refusal) ends the attempt: no second yaw
    stopped = ScriptedPorts(pose_script=["succeeded", "aborted"])
    res = PlanRunner(REG, stopped, ExecutorConfig(max_attempts=1)).run(p)
    assert res.code is ResultCode.FAILED and len(stopped.arm_goals) == 2
    # fingers that do not open (a refused gripper command): no descent onto the tool
    stuck = ScriptedPorts(gripper_opens=False)
    res = PlanRunner(REG, stuck, ExecutorConfig(max_attempts=1)).run(p)
    assert res.code is ResultCode.FAILED and "gripper did not open" in res.reason
    assert stuck.arm_goals == []


def _seen_at_bench(dx: float, dy: float, turn_deg: float, size=(0.20, 0.04, 0.03)):
    """The voltage detector as the mast camera (15 deg down, as the URDF) sees it from the
    tool bench place, lying (dx, dy) [m, base frame] from where it was surveyed, turned
    ``turn_deg``: a PyBullet depth render, segmented, in the map frame."""
    from grasp_scene import render
    bench = REG.place("tool_bench").pose
    obj = REG.object("voltage_detector")
    base = Pose2D.of(bench).inverse().compose((obj.pose[0], obj.pose[1], 0.0))
    xy = (base.x + dx, base.y + dy)
    shot = render(0.5, xy, size, math.radians(turn_deg), pitch_deg=15.0)
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical,
                         (base.x, base.y, 0.515), 0.15)
    assert seg.found, seg.reason
    return moved_segment(seg, *bench), Pose2D.of(bench).compose((*xy, 0.0))


def test_pick_grasps_what_the_camera_sees() -> None:
    """The tool lies 4 cm further and 3 cm left of its surveyed spot, turned 30 deg: the
    pick closes in on where the camera saw it, grips across its seen long axis (not the
    registry's), and backs out.  A grasp that closes on nothing opens, backs off and tries
    the next candidate: three misses fail the step."""
    seen, truth = _seen_at_bench(0.04, 0.03, 30.0)
    ports = ScriptedPorts(seen=seen)
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}))
    res = PlanRunner(REG, ports).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    assert "look:voltage_detector" in ports.calls
    moves = [c for c in ports.calls if c.startswith("approach:")]
    ahead = 0.87 + 0.04
    assert moves[0] == f"approach:+{ahead - 0.55:.2f}" and moves[-1] == moves[0].replace("+", "-")
    (px, py, pz), (r, pitch, yaw), at = ports.arm_goals[1]          # the grasp itself
    assert math.hypot(px - truth.x, py - truth.y) < 0.01
    assert 0.515 <= pz <= 0.56                                       # fingers above the bench
    long_axis = REG.place("tool_bench").pose.yaw + math.radians(30.0)
    assert abs(math.degrees(math.remainder(yaw - long_axis, math.pi))) < 3.0
    assert abs(abs(r) - math.pi) < 0.05 and abs(pitch) < 0.05        # straight down
    slipped = ScriptedPorts(seen=seen, gripper_after_lift=0.001)
    res = PlanRunner(REG, slipped, ExecutorConfig(max_attempts=1)).run(p)
    assert res.code is ResultCode.FAILED and "slipped out while lifting" in res.reason
    assert [c for c in slipped.calls if c.startswith("approach:")][-1] == \
        moves[0].replace("+", "-")                                   # backed out
    assert slipped.calls.index("gripper:0.04", slipped.calls.index("gripper:0")) > 0
    missed = ScriptedPorts(seen=seen, gripper_reached=0.0)
    res = PlanRunner(REG, missed, ExecutorConfig(max_attempts=1)).run(p)
    assert res.code is ResultCode.FAILED and "after 3 of" in res.reason, res.reason
    assert missed.calls.count("gripper:0") == 3
    assert [c for c in missed.calls if c.startswith("approach:")][-1].startswith("approach:-")


def test_the_lift_goes_back_to_the_joints_the_pre_grasp_was_reached_with() -> None:
    """Backing out of a grasp: to the arm's joint positions at the pre-grasp on the way in
    (the arm planner's IK for that pose, seeded from the grasp, had refused it at the
    construction tool crib); refused, to the pre-grasp's pose; not known, to the pose."""
    seen, _ = _seen_at_bench(0.04, 0.03, 30.0)
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}))
    q = (0.1, -0.4, 1.2, 0.0, 0.8, 0.3)
    ports = ScriptedPorts(seen=seen, arm_q=q)
    res = PlanRunner(REG, ports).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    after_close = ports.calls[ports.calls.index("gripper:0"):]
    assert after_close[1] == "arm:joints" and "arm:pose" not in after_close
    assert ports.arm_goals[2][0] == q
    refused = ScriptedPorts(seen=seen, arm_q=q, joint_script=["rejected"])
    res = PlanRunner(REG, refused).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    after_close = refused.calls[refused.calls.index("gripper:0"):]
    assert after_close[1:3] == ["arm:joints", "arm:pose"]
    assert refused.arm_goals[3][0] == refused.arm_goals[0][0]      # the pre-grasp's pose
    unknown = ScriptedPorts(seen=seen)
    res = PlanRunner(REG, unknown).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    assert "arm:joints" not in unknown.calls


def test_a_localization_fix_during_the_approach_does_not_move_the_grasp_off_the_object():
    """The map pose jumps 5 cm (a station tag's fix) while the pick drives in: the grasp
    is planned from odometry, so its map-frame goal moves with the pose estimate (the arm
    node's map-to-base transform puts it back on the object) instead of staying where the
    old estimate saw the object (5 cm beside a 3 cm handle)."""
    seen, truth = _seen_at_bench(0.0, 0.0, 0.0)
    ports = ScriptedPorts(seen=seen, map_jump=(0.05, 0.0))
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}))
    res = PlanRunner(REG, ports).run(p)
    assert res.code is ResultCode.SUCCEEDED, res.reason
    (gx, gy, _), _, _ = ports.arm_goals[1]                       # the grasp, map frame
    assert math.hypot(gx - (truth.x + 0.05), gy - truth.y) < 0.01


def test_an_object_too_wide_for_the_gripper_is_not_retried() -> None:
    """An 80 mm tape measure (the fingers open 80 mm and want 10 mm free a side): the step
    fails at once with the measured width, not again after retry_wait_s."""
    seen, _ = _seen_at_bench(0.0, 0.0, 0.0, size=(0.08, 0.08, 0.04))
    ports = ScriptedPorts(seen=seen)
    p = plan(("navigate_to", {"place": "tool_bench"}), ("pick", {"object": "voltage_detector"}))
    res = PlanRunner(REG, ports, ExecutorConfig(max_attempts=2)).run(p)
    assert res.code is ResultCode.FAILED
    assert "too wide for the gripper" in res.reason and "(after 1 attempts)" in res.reason
    assert ports.calls.count("look:voltage_detector") == 1
    assert not any(c.startswith("arm:pose") for c in ports.calls)


def test_front_gap_and_approach_speed() -> None:
    from sitebot.executor.approach import (ApproachConfig, approach_distance, approach_speed,
                                           front_gap)
    cfg = ApproachConfig()
    n = 361
    inc = math.radians(1.0)
    amin = -math.pi
    ranges = [math.inf] * n
    ranges[180] = 0.7            # straight ahead, 0.7 m from a laser 0.24 m ahead of base
    ranges[90] = 0.2             # 90 deg to the right: outside the corridor ahead
    assert front_gap(ranges, amin, inc, 30.0, (0.24, 0.0, 0.0), cfg) == \
        pytest.approx(0.24 + 0.7 - 0.3)
    assert front_gap([math.nan] * n, amin, inc, 30.0, (0.24, 0.0, 0.0), cfg) == math.inf
    ranges[0] = 0.8              # straight behind: 0.8 - 0.24 behind the base origin
    assert front_gap(ranges, amin, inc, 30.0, (0.24, 0.0, 0.0), cfg, backwards=True) == \
        pytest.approx(0.8 - 0.24 - 0.3)
    assert approach_speed(0.3, math.inf, cfg) == pytest.approx(0.08)
    assert approach_speed(-0.3, math.inf, cfg) == pytest.approx(-0.08)
    assert approach_speed(0.3, 0.2, cfg) == 0.0            # gap used up
    assert approach_speed(0.005, math.inf, cfg) == 0.0     # within tolerance
    assert approach_speed(math.nan, math.inf, cfg) == 0.0  # fail safe
    assert 0.0 < approach_speed(0.02, math.inf, ApproachConfig(decel_mps2=0.1)) < 0.07  # slows
    assert approach_distance((0.87, 0.1), 0.55, 0.6) == pytest.approx(0.32)
    assert approach_distance((0.5, 0.0), 0.55, 0.6) == 0.0
    assert approach_distance((2.0, 0.0), 0.55, 0.6) == 0.6


def test_recheck_refuses_forbidden_and_malformed_steps() -> None:
    assert check_step(Step("navigate_to", {"place": "t1_bay"}), REG, "operator") is None
    assert "unknown skill" in check_step(Step("fly", {}), REG, "operator")
    assert "takes arguments" in check_step(Step("navigate_to", {}), REG, "operator")
    assert "no place 'nowhere'" in check_step(Step("navigate_to", {"place": "nowhere"}),
                                              REG, "operator")
    assert "not a gauge" in check_step(Step("read_gauge", {"asset": "t1"}), REG, "operator")
    cb = [p.id for p in REG.places if any(z.kind.value == "restricted" and z.contains(p.pose.x, p.pose.y)
                                          for z in REG.zones)]
    assert cb, "the substation has a place in its restricted breaker bay"
    msg = check_step(Step("navigate_to", {"place": cb[0]}), REG, "operator")
    assert "restricted zone 'breaker_bay_zone'" in msg
    assert check_step(Step("navigate_to", {"place": cb[0]}), REG, "supervisor") is None
    assert "no steps" in check_plan(Plan(()), REG)
    assert "unknown role" in check_plan(plan(("dock", {}), role="admin"), REG)


def test_cancel_marks_remaining_steps() -> None:
    ports = ScriptedPorts()
    cancel = threading.Event()

    def fb(i, n, state, r):
        if i == 1:
            cancel.set()
    res = PlanRunner(REG, ports).run(GAUGE_PLAN, feedback=fb, cancel=cancel)
    assert res.code is ResultCode.CANCELED
    assert res.steps[0].outcome is Outcome.SUCCEEDED
    # the gauge wait notices the cancel; the dock never starts
    assert [s.outcome for s in res.steps[1:]] == [Outcome.CANCELED] * 2
    assert not any(c.startswith("nav:") and c != "nav:t1_bay" for c in ports.calls)
    assert "stop" in ports.calls


def test_patrol_visits_route_and_saves_images() -> None:
    route = REG.routes[0]
    ports = ScriptedPorts()
    res = PlanRunner(REG, ports).run(plan(("patrol", {"route": route.id})))
    assert res.code is ResultCode.SUCCEEDED
    navs = [c[4:] for c in ports.calls if c.startswith("nav:")]
    assert navs == list(route.waypoints) + ([route.waypoints[0]] if route.loop else [])
    assert len(res.steps[0].images) == len(navs)
    assert all(math.isfinite(s.duration_s) for s in res.steps)


def test_station_tag_offset_corrects_the_pose_error_at_the_tool() -> None:
    """The robot believes it is 4 cm further east and 3 cm further north than it is: the
    station tag (105, at the substation trolley) then appears shifted by that error, and
    the returned offset moves the tool with it; stale, far or implausible sightings give
    no correction."""
    from sitebot.executor.locate import station_offset
    tag = next(m for m in REG.markers if m.tag == 105)
    true = (-6.0, 12.76, math.pi / 2)
    believed = (true[0] + 0.04, true[1] + 0.03, true[2])
    # the tag in the base frame, as the camera sees it from the true pose
    dx, dy = tag.x - true[0], tag.y - true[1]
    c, s = math.cos(true[2]), math.sin(true[2])
    in_base = (c * dx + s * dy, -s * dx + c * dy)
    tool = REG.object("voltage_detector").pose
    off = station_offset(believed, tool[:2], REG.markers, {105: (10.0, in_base)}, now=10.5)
    assert off == pytest.approx((0.04, 0.03), abs=1e-9)
    assert station_offset(believed, tool[:2], REG.markers, {105: (8.0, in_base)},
                          now=10.5) is None                         # 2.5 s old
    assert station_offset(believed, (0.0, -6.9), REG.markers, {105: (10.0, in_base)},
                          now=10.5) is None                         # tag too far away
    lost = (true[0] + 0.5, true[1], true[2])
    assert station_offset(lost, tool[:2], REG.markers, {105: (10.0, in_base)},
                          now=10.5) is None                         # 0.5 m: not trusted
    assert station_offset(None, tool[:2], REG.markers, {105: (10.0, in_base)},
                          now=10.5) is None
    close = (true[0] + 0.01, true[1], true[2])                    # 1 cm: within tag noise
    assert station_offset(close, tool[:2], REG.markers, {105: (10.0, in_base)},
                          now=10.5) is None


# -- extracted from the task_executor node: approach loop, ports, mission log, config -------

def test_approach_drive_closes_in_stops_short_and_gives_up() -> None:
    """The closed loop of one straight motion, on a base that moves exactly as commanded
    (odometry along x, a laser at the base origin seeing a wall at ``wall`` m)."""
    from sitebot.executor.approach import ApproachConfig, ApproachDrive
    cfg = ApproachConfig()

    def run(distance, wall=None, moves=True, timeout=30.0, scan_age=0.0):
        t, x, drive = 0.0, 0.0, None
        drive = ApproachDrive(distance, (0.0, 0.0, 0.0), t, timeout, cfg)
        speeds = []
        while True:
            r = 31.0 if wall is None else wall - x            # > range_max: no return
            scan = FrontScan(t - scan_age, [r], 0.0, 0.01, 30.0, (0.0, 0.0, 0.0))
            v = drive.step(t, (x, 0.0, 0.0), scan)
            if v is None:
                break
            speeds.append(v)
            x += v * cfg.period_s if moves else 0.0
            t += cfg.period_s
        return drive, x, t, speeds

    # clear floor: creeps at 0.08 m/s and ends within 1 cm of the distance
    drive, x, t, speeds = run(0.32)
    assert drive.result is None and max(speeds) == pytest.approx(0.08)
    res, driven = drive.finish((x, 0.0, 0.0))
    assert res.ok and res.reason.startswith("reached after +0.3")
    assert abs(driven - 0.32) <= cfg.tolerance_m and driven == x
    assert t == pytest.approx(4.0, abs=0.3)                 # 0.32 m at 0.08 m/s
    # a wall 0.8 m ahead of the laser: the chassis front (0.3 m) stops 0.2 m from it
    drive, x, _, _ = run(0.6, wall=0.8)
    res, driven = drive.finish((x, 0.0, 0.0))
    assert res.ok and "stopped 0.20 m short of what the laser sees" in res.reason
    assert driven == pytest.approx(0.3, abs=0.003)
    # backwards: negative speeds
    _, x, _, speeds = run(-0.1)
    assert min(speeds) == pytest.approx(-0.08) and x == pytest.approx(-0.1, abs=0.01)
    # held by the supervisor: no progress for 2 s ends it, with success, after 2-2.05 s
    drive, x, t, _ = run(0.3, moves=False)
    assert drive.result is None and t == pytest.approx(2.05, abs=0.051)
    assert drive.finish((x, 0.0, 0.0))[0].reason == "held by the supervisor after +0.00 m"
    # a scan older than 0.5 s: blocked at once
    drive, _, t, speeds = run(0.3, scan_age=0.6)
    assert (drive.result.code, drive.result.reason) == (
        "blocked", "no fresh laser scan for the approach") and speeds == []
    # slower than the timeout (1 s for 0.3 m): timeout after 1-1.05 s, 8 cm driven
    drive, x, t, _ = run(0.3, timeout=1.0)
    assert drive.result.code == "timeout" and "longer than 1 s" in drive.result.reason
    assert t == pytest.approx(1.05, abs=0.051)
    assert drive.travelled == pytest.approx(0.08 * t, abs=1e-9)


class FakeTransport(TrackedPorts):
    """Test double of the node's transport for TrackedPorts: a clock advanced by sleep(),
    a base that moves along x at the commanded speed (unless ``held``), a laser at the base
    origin seeing a wall ``wall`` m ahead in odometry, a gripper whose finger stops moving
    ``finger_s`` after a command, arm actions that succeed."""

    def __init__(self, wall: float | None = None, held: bool = False,
                 finger_s: float = 1.8, **kw) -> None:
        super().__init__(REG, threading.Event(), **kw)
        self.t, self.v, self.wall, self.held, self.finger_s = 0.0, 0.0, wall, held, finger_s
        self.drives: list[float] = []
        self.arm: list[tuple[float, str]] = []
        self.asked: list[str] = []
        self.logs: list[str] = []
        self.finger_stops = math.inf
        self.update_odom(Pose2D(0.0, 0.0, 0.0))
        self._new_scan()

    def _new_scan(self) -> None:
        r = 31.0 if self.wall is None else self.wall - self.odom.x     # 31 m: no return
        self.update_scan(FrontScan(self.t, [r], 0.0, 0.01, 30.0))

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if not self.held:
            self.update_odom(Pose2D(self.odom.x + self.v * seconds, 0.0, 0.0))
        self.t += seconds
        self._new_scan()
        j = self.config.gripper_joint
        if j in self.joints and self.t >= self.finger_stops:
            self.update_joints([j], [self.joints[j][0]], [0.0])

    def log(self, message: str) -> None:
        self.logs.append(message)

    def _arm_named(self, name, timeout_s):
        self.arm.append((self.t, name))
        return MotionResult("succeeded")

    def _arm_pose(self, xyz, rpy, timeout_s):
        self.arm.append((self.t, "pose"))
        return MotionResult("succeeded")

    def _drive(self, speed_mps: float) -> None:
        self.v = speed_mps
        self.drives.append(speed_mps)

    def _gripper(self, opening_m: float, duration_s: float) -> None:
        self.update_joints([self.config.gripper_joint], [max(opening_m, 0.012)], [0.02])
        self.finger_stops = self.t + self.finger_s

    def _ask(self, question: str, plan_id: str) -> None:
        self.asked.append(question)


def test_tracked_ports_approach_gripper_and_arm_waits() -> None:
    robot = FakeTransport()
    res, driven = robot.approach(0.32, 30.0)
    assert res.ok and abs(driven - 0.32) <= 0.01 and robot.drives[-1] == 0.0
    assert robot.t == pytest.approx(0.32 / 0.08 + 0.3, abs=0.3)       # + settling 0.3 s
    wall = FakeTransport(wall=0.8)
    res, driven = wall.approach(0.6, 30.0)
    assert res.ok and "stopped 0.20 m short" in res.reason
    assert driven == pytest.approx(0.3, abs=0.003)
    held = FakeTransport(held=True)
    res, driven = held.approach(0.3, 30.0)
    assert res.reason == "held by the supervisor after +0.00 m" and driven == 0.0
    canceled = FakeTransport()
    canceled.cancel.set()
    assert canceled.approach(0.3, 30.0) == (MotionResult("canceled", "plan canceled"), 0.0)
    assert canceled.drives == [0.0]                    # the stop is always sent
    # the gripper: 1 s motion + 0.3 s, then until the finger stops (1.8 s) -> 12 mm held
    grip = FakeTransport()
    assert grip.set_gripper(0.0, 60.0) == pytest.approx(0.012)
    assert grip.t == pytest.approx(1.8, abs=0.051)
    never = FakeTransport(finger_s=math.inf)      # still moving: at most 3 s more
    assert never.set_gripper(0.0, 60.0) == pytest.approx(0.012)
    assert never.t == pytest.approx(1.3 + 3.0, abs=0.051)
    slow = FakeTransport(finger_s=math.inf, config=PortsConfig(gripper_wait_s=0.5))
    slow.set_gripper(0.0, 60.0)
    assert slow.t == pytest.approx(1.3 + 0.5, abs=0.051)
    # arm motions wait out a protective stop (until it clears at 5 s) ...
    arm = FakeTransport()
    arm.update_safety(SafetyLevel.PROTECTIVE_STOP, False, ["person within 0.5 m"], 0.0)
    cleared = False

    def clear_at_5(seconds, _orig=arm.sleep):
        nonlocal cleared
        _orig(seconds)
        if arm.t >= 5.0 and not cleared:
            cleared = True
            arm.update_safety(SafetyLevel.NORMAL, False, [], arm.t)
    arm.sleep = clear_at_5
    assert arm.move_arm_named("stow", 60.0).ok
    assert arm.arm[0][0] == pytest.approx(5.0, abs=0.11) and arm.arm[0][1] == "stow"
    # ... for 15 s at most, then report the stop as a blocked motion
    stuck = FakeTransport()
    stuck.update_safety(SafetyLevel.PROTECTIVE_STOP, False, ["person within 0.5 m"], 0.0)
    r = stuck.move_arm_pose((1.0, 2.0, 0.5), (math.pi, 0.0, 0.0), 60.0)
    assert (r.code, r.reason) == ("blocked", "protective stop: person within 0.5 m")
    assert stuck.t == pytest.approx(15.0, abs=0.11) and stuck.arm == []
    assert stuck.move_arm_pose((math.nan, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0).code == "rejected"
    short = FakeTransport(pause_limit_s=4.0)      # never longer than pause_limit_s
    short.update_safety(SafetyLevel.EMERGENCY_STOP, True, [], 0.0)
    assert short.move_arm_named("stow", 60.0).reason == "protective stop: no reason given"
    assert short.t == pytest.approx(4.0, abs=0.11)


def test_tracked_ports_state_lookup_and_answers() -> None:
    from sitebot.executor.locate import Cluster, perceived_position
    ports = FakeTransport()
    # no safety state yet: stopped, infinitely old; then the latest one with its age
    s = ports.safety()
    assert s.stopped and s.age_s == math.inf and s.reasons == ("no safety state",)
    ports.update_safety(7, False, ["x"], -0.5)
    s = ports.safety()
    assert s.level is SafetyLevel.EMERGENCY_STOP and s.age_s == pytest.approx(0.5)
    # pose, joints, tags, gauges
    assert ports.update_pose((1.0, 2.0, 0.5)) and ports.robot_pose() == (1.0, 2.0, 0.5)
    assert not ports.update_pose((math.nan, 2.0, 0.5)) and ports.robot_pose() is None
    ports.update_joints(["a", "b"], [0.1, math.nan], [])
    assert ports.joints == {"a": (0.1, 0.0)}
    ports.update_joints(["a"], [0.1, 0.2], [0.0])                  # mismatched: ignored
    assert ports.joints == {"a": (0.1, 0.0)}
    ports.update_tags(3.0, [(105, (1.0, 0.2)), (7, (0.0, 0.0))])
    assert ports.fiducial_seen(7, 3.0) and not ports.fiducial_seen(7, 3.1)
    assert ports.tag_poses == {105: (3.0, (1.0, 0.2))}              # (0, 0): no pose
    for k in range(250):
        ports.add_gauge(float(k), Reading("g1" if k % 2 else "g2", 1.0, "bar", 0.9))
    assert len(ports.gauges) == 200
    assert len(ports.gauge_readings("g1", since_s=240.0)) == 5      # 241, 243, ... 249
    # where the tool is: surveyed (-6.1, 13.27, 0.53), refined by a small cluster
    robot = (-6.0, 12.4, math.pi / 2)                 # at the tool bench, facing north
    tool = REG.object("voltage_detector").pose
    ahead = Cluster(0.9, 0.05, 0.05, 0.22, 0.05)      # base frame: map (-6.05, 13.30)
    big = Cluster(0.87, 0.1, 0.5, 0.2, 0.1)           # nearer, but larger than 0.4 m
    far = Cluster(0.87, -0.1, 0.05, 0.05, 0.05)       # map (-5.9, 13.27): 0.2 m off
    assert perceived_position(tool, [big, far, ahead], robot, in_map=False) == \
        pytest.approx((-6.05, 13.3, 0.53))
    assert perceived_position(tool, [big, far], robot, in_map=False) == tool
    assert perceived_position(tool, [Cluster(-6.12, 13.25, 0.1, 0.1, 0.1)], robot,
                              in_map=True) == (-6.12, 13.25, 0.53)
    assert perceived_position(tool, [far], robot, False, match_m=0.25) == \
        pytest.approx((-5.9, 13.27, 0.53))
    assert ports.object_position("voltage_detector") == tool      # no pose, no obstacles
    ports.update_pose(robot)
    ports.update_obstacles(False, [ahead])
    assert ports.object_position("voltage_detector") == pytest.approx((-6.05, 13.3, 0.53))
    # supervisors' answers (the role is the one the answer's authority proved)
    assert ports.receive_answer("operator", "v1", "yes") == \
        "confirmation 'yes' from role 'operator' ignored: a supervisor must confirm"
    assert ports.receive_answer("", "v1", "yes") == \
        "confirmation 'yes' from role 'unauthenticated' ignored: a supervisor must confirm"
    assert ports.confirm_answer is None
    assert ports.receive_answer("", "v1", "no") == "confirmation for v1: no"   # declining: anyone
    assert ports.confirm_answer == ("v1", False)
    assert ports.receive_answer("supervisor", "v1", "maybe") == \
        "confirmation answer 'maybe' not understood (yes/no)"
    assert ports.receive_answer("supervisor", "v1", " Go ahead! ") == "confirmation for v1: yes"
    assert ports.confirm_answer == ("v1", True)
    # confirm(): asks, waits for the answer to this plan, None after the timeout
    asking = FakeTransport()
    assert asking.confirm("Confirm: close valve?", "p9", 2.0) is None
    assert asking.asked == ["Confirm: close valve?"] and asking.t == pytest.approx(2.0, abs=0.06)
    assert asking.logs == ["waiting for confirmation: Confirm: close valve?"]


def test_mission_log_report_status_and_answers(tmp_path) -> None:
    from sitebot.executor.mission import (MissionLog, confirmation_answer, final_status, safe_name,
                                          step_status)
    from sitebot.executor.types import ExecutionResult, StepResult
    assert [confirmation_answer(t) for t in ("Yes.", "go ahead", "Declined!", "nope")] == \
        [True, True, False, None]
    assert safe_name("a b/c:d.png") == "a_b_c_d.png" and len(safe_name("x" * 300)) == 120
    p = Plan((Step("navigate_to", {"place": "t1_bay"}),), plan_id="m 1/x", role="operator",
             instruction="go")
    log = MissionLog(tmp_path)
    log.event(1.0, "before")
    run_dir = log.begin(p, now=10.0, wall=100.0)
    assert run_dir == tmp_path / "m_1_x" and run_dir.is_dir()
    assert log.events == [{"t": 10.0, "event": "plan m 1/x started: navigate_to(place=t1_bay)"}]
    for t, x in ((10.0, 1.0), (10.5, 1.1), (11.0, 1.2345)):   # kept once a second
        log.record_path(t, x, 2.0)
    assert log.path == [(10.0, 1.0, 2.0), (11.0, 1.234, 2.0)]
    for t, level in ((10.1, 0), (10.2, 0), (10.3, 2)):        # level changes only
        log.safety_level(t, level, ["a", "b", "c", "d", "e"])
    assert [(e["t"], e["level"], len(e["reasons"])) for e in log.safety_log] == \
        [(10.1, 0, 4), (10.3, 2, 4)]
    res = ExecutionResult(ResultCode.SUCCEEDED, "1 steps done",
                          [StepResult(p.steps[0], Outcome.SUCCEEDED, "at t1_bay", 1, 4.567,
                                      [Reading("g", 1.2, "bar", 0.9, crop_path="c.png")])])
    path = log.end(p, res, now=15.5, wall=103.25)
    report = json.loads(path.read_text())
    assert path == run_dir / "report.json"
    assert (report["result"], report["duration_s"], report["wall_s"]) == ("succeeded", 5.5, 3.25)
    assert report["outcomes"] == {"succeeded": 1} and report["steps"][0]["duration_s"] == 4.57
    assert report["steps"][0]["readings"][0]["crop"] == "c.png"
    assert report["readings"] == [{"asset": "g", "value": 1.2, "unit": "bar", "confidence": 0.9}]
    assert report["events"][-1]["event"] == "plan m 1/x ended: SUCCEEDED (1 steps done)"
    assert log.image_path("inspect a").name == "inspect_a.png"
    assert log.crop_path("g1", 12.345).name == "g1_12.35.png"
    assert step_status(p, 0, 1, "running", res.steps[0]) == {
        "plan_id": "m 1/x", "step": 1, "steps": 1, "state": "running",
        "skill": "navigate_to", "message": "at t1_bay"}
    assert final_status(p, res, path)["report"] == str(path)


def test_plan_from_fields_and_core_parameters() -> None:
    import dataclasses

    from sitebot.config.params import dataclass_from_params
    from sitebot.errors import ParameterError
    from sitebot.executor.approach import ApproachConfig
    from sitebot.executor.config import CORE_SCHEMA
    from sitebot.executor.types import plan_from_fields

    p = plan_from_fields([("navigate_to", ["place"], ["t1_bay"]), ("dock", [], [])])
    assert p == Plan((Step("navigate_to", {"place": "t1_bay"}), Step("dock", {})),
                     plan_id="plan", role="operator")
    with pytest.raises(ValueError, match=r"step 2 \(dock\): 1 argument names but 0 values"):
        plan_from_fields([("dock", [], []), ("dock", ["x"], [])], "p", "supervisor")
    # every core parameter sets one field with the same default
    fields = {f"{prefix}{f.name}": f.default for cls, prefix in
              ((ExecutorConfig, ""), (PortsConfig, ""), (ApproachConfig, "approach_"))
              for f in dataclasses.fields(cls)}
    for spec in CORE_SCHEMA:
        value = fields.get(spec.name)
        value = list(value) if isinstance(value, tuple) else value      # string[] as tuple
        assert spec.name in fields and value == spec.default, spec.name
    # ... and the dataclasses hold their fields to the parameters' ranges
    for bad in (lambda: ApproachConfig(speed_mps=0.5), lambda: ApproachConfig(stall_s=0.0),
                lambda: PortsConfig(object_match_m=0.0), lambda: ExecutorConfig(max_attempts=0)):
        with pytest.raises(ParameterError):
            bad()
    with pytest.raises(ValueError):
        ApproachConfig(rear_x_m=0.5)
    cfg = dataclass_from_params(ApproachConfig, {"approach_stall_s": 3.0, "approach_max_m": 1.0,
                                              "stall_s": 9.0}, "approach_")
    assert cfg == ApproachConfig(stall_s=3.0)
