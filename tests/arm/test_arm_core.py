"""Arm planning core: FK against the URDF transformer, IK within tolerance, the collision
model, plans collision-free when re-checked densely, ruckig limits on the samples, bad
goals refused, the supervisor's validator accepts what we publish."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.arm.collision import BOX, CYLINDER, Primitive, box_primitive, covering_spheres
from sitebot.arm.config import parse_named_poses
from sitebot.arm.kinematics import pose_matrix
from sitebot.arm.motion import CODE_INVALID_GOAL, CODE_NO_IK, ArmMotion, GoalRejected
from sitebot.arm.planner import path_length
from sitebot.arm.timing import TimingError, time_parameterize
from sitebot.description.kinematics import JointTransformer, transform_matrix
from sitebot.errors import ConfigError
from sitebot.safety.arm import joint_limits_from_description, validate_trajectory
from sitebot.safety.types import TrajectoryPoint
from sitebot.site.bundle import load_bundle
from sitebot.tools.arm_bench import bench_scene
from sitebot.types import matrix_quaternion, rpy_matrix


@pytest.fixture(scope="module")
def motion() -> ArmMotion:
    m = ArmMotion({"seed": 3}, scene=load_bundle("substation").scene)
    bench_scene(m)
    return m


def _random_valid(m: ArmMotion, rng, n: int) -> list[np.ndarray]:
    out = []
    while len(out) < n:
        q = rng.uniform(m.kin.lower, m.kin.upper)
        if m.checker.is_valid(q):
            out.append(q)
    return out


def test_fk_matches_the_urdf_transformer(motion) -> None:
    kin = motion.kin
    jt = JointTransformer(kin.desc.joints.values())
    rng = np.random.default_rng(0)
    for q in rng.uniform(kin.lower, kin.upper, size=(10, 6)):
        pos = dict(zip(kin.joint_names, q))
        pos["gripper_left_finger_joint"] = motion.p["gripper_opening_m"]
        tfs = {t.child: t for t in jt.static_transforms() + jt.transforms(pos)}
        F = kin.fk(q)
        for i, link in enumerate(kin.frames):
            m, lk = np.eye(4), link
            while lk in tfs:
                m = transform_matrix(tfs[lk]) @ m
                lk = tfs[lk].parent
            assert np.allclose(F[i], m, atol=1e-9), link


def test_ik_reaches_targets_within_tolerance(motion) -> None:
    kin = motion.kin
    rng = np.random.default_rng(1)
    reached = 0
    for k, q in enumerate(rng.uniform(kin.lower, kin.upper, size=(12, 6))):
        target = kin.tcp_pose(q)
        res = kin.ik(target[:3, 3], target[:3, :3], seed=np.zeros(6), rng_seed=k,
                     position_tol_m=1e-3, angle_tol_rad=1e-2)
        assert res.ok, (q, res)
        got = kin.tcp_pose(res.q)
        assert np.linalg.norm(got[:3, 3] - target[:3, 3]) < 1e-3
        cos = (np.trace(got[:3, :3].T @ target[:3, :3]) - 1) / 2
        assert math.acos(min(1.0, cos)) < 1e-2
        assert kin.within_limits(res.q)
        reached += 1
    assert reached == 12
    # position + approach axis (roll free): tool z along the axis
    res = kin.ik((0.6, 0.1, 0.6), approach_axis=(0, 0, -1), seed=np.zeros(6))
    assert res.ok
    tcp = kin.tcp_pose(res.q)
    assert np.linalg.norm(tcp[:3, 3] - (0.6, 0.1, 0.6)) < 1e-3
    assert tcp[2, 2] < -math.cos(1e-2)


def test_covering_spheres_contain_the_primitive() -> None:
    rng = np.random.default_rng(2)
    for prim in (Primitive(CYLINDER, (0.045, 0.175), pose_matrix((0, 0, 0.175))),
                 Primitive(BOX, (0.025, 0.06, 0.02), pose_matrix((0.1, 0, 0.02),
                                                                 rpy_matrix(0.3, 0, 1.0)))):
        c, r = covering_spheres(prim)
        u = rng.uniform(-1, 1, size=(4000, 3))
        if prim.kind == CYLINDER:
            rad, h = prim.size
            u = u[np.hypot(u[:, 0], u[:, 1]) <= 1.0]
            local = u * np.array([rad, rad, h])
        else:
            local = u * np.asarray(prim.size)
        pts = local @ prim.pose[:3, :3].T + prim.pose[:3, 3]
        d = np.linalg.norm(pts[:, None] - c[None], axis=2) - r[None]
        assert np.all(d.min(axis=1) <= 1e-12)


def test_checker_finds_known_collisions(motion) -> None:
    chk = motion.checker
    assert chk.is_valid(motion.named["stow"])
    # arm laid back onto the mast
    why = chk.explain(np.array([0.0, -1.6, 0.0, 0.0, 0.0, 0.0]))
    assert why is not None and "mast" in why
    # folded so that the gripper reaches into the chassis
    assert not chk.is_valid(np.array([0.0, 0.35, 2.45, 0.0, 0.3, 0.0]))
    # the tool trolley (0.5 m high, 0.65 m ahead) is in the way of a reach down to 0.4 m;
    # a box on the camera_view pose's gripper
    down = motion.kin.ik((0.9, 0.0, 0.40))
    assert down.ok and "tool_bench_top" in chk.explain(down.q)
    assert chk.explain(motion.named["reach"]) is None       # straight ahead above it
    q = motion.named["camera_view"]
    assert chk.is_valid(q)
    tcp = motion.kin.tcp_pose(q)[:3, 3]
    saved = list(chk.scene)
    chk.set_scene(saved + [box_primitive(tcp, (0.05, 0.05, 0.05), name="probe")])
    try:
        assert "probe" in chk.explain(q)
    finally:
        chk.set_scene(saved)
    # batch and single checks agree
    rng = np.random.default_rng(4)
    Q = rng.uniform(motion.kin.lower, motion.kin.upper, size=(200, 6))
    batch = chk.check_batch(Q)
    single = np.array([chk.is_valid(q) for q in Q])
    assert np.array_equal(batch, single)
    assert 0.2 < batch.mean() < 0.95          # the scene is cluttered but not full


def test_plans_are_collision_free_when_rechecked_densely(motion) -> None:
    rng = np.random.default_rng(5)
    qs = _random_valid(motion, rng, 16)
    solved = 0
    for a, b in zip(qs[::2], qs[1::2]):
        res = motion.planner.plan(a, b, timeout_s=2.0)
        assert res.ok, res.reason
        solved += 1
        assert np.allclose(res.path[0], a) and np.allclose(res.path[-1], b)
        # 4x finer than the planner's own re-check, unpadded model
        ok, bad, n = motion.checker.check_path(res.path, max_step_m=0.0025, padding_m=0.0)
        assert ok, f"segment {bad} collides"
        assert n > 10
        assert path_length(res.path) <= res.raw_length + 1e-9
    assert solved == 8


def test_goal_in_collision_and_blocked_start_are_refused(motion) -> None:
    with pytest.raises(GoalRejected) as e:
        motion.joint_goal(joint_positions=[0.0, -1.6, 0.0, 0.0, 0.0, 0.0])
    assert e.value.code == CODE_INVALID_GOAL and "collision" in e.value.reason
    res = motion.planner.plan([0.0, -1.6, 0.0, 0.0, 0.0, 0.0], motion.named["stow"])
    assert not res.ok and "start" in res.reason
    with pytest.raises(GoalRejected) as e:
        motion.joint_goal(joint_positions=[0.0, 0.0, math.inf, 0.0, 0.0, 0.0])
    assert e.value.code == CODE_INVALID_GOAL
    with pytest.raises(GoalRejected) as e:
        motion.joint_goal(ee_position=(0.3, 0.0, 3.0))
    assert e.value.code == CODE_NO_IK and "reach" in e.value.reason
    with pytest.raises(GoalRejected) as e:
        motion.joint_goal(ee_position=(0.6, 0.0, 0.6), ee_orientation=(0.0, 0.0, 0.0, 3.0))
    assert e.value.code == CODE_INVALID_GOAL and "norm" in e.value.reason
    with pytest.raises(GoalRejected):
        motion.plan([0.0] * 6, motion.named["stow"], velocity_scale=1.5)


def test_the_object_to_grasp_is_exempt_only_for_its_own_goal() -> None:
    """A perceived 5 cm tool box on an open floor spot: a grasp goal inside it is allowed
    (the box left out of the scene while that goal is planned); a named goal afterwards
    checks against it again, and a goal 10 cm away from the box does not exempt it."""
    m = ArmMotion({"seed": 3})
    tool = ((0.55, 0.0, 0.30), (0.05, 0.22, 0.05))
    assert m.set_obstacles([tool]) == 1
    down = np.array(rpy_matrix(math.pi, 0.0, math.pi / 2))
    quat = matrix_quaternion(down)
    q = m.joint_goal(ee_position=(0.55, 0.0, 0.31), ee_orientation=quat)
    assert m.exempt == ["obstacle:0"]
    assert m.checker.is_valid(q)                  # planned without the tool in the scene
    m.joint_goal(named_pose="stow")
    assert m.exempt == [] and not m.checker.is_valid(q)   # the tool is back
    with pytest.raises(GoalRejected):
        m.joint_goal(ee_position=(0.62, 0.0, 0.31), ee_orientation=quat)   # 4.5 cm off
    assert m.exempt == []


def test_a_large_cluster_on_mapped_structure_is_left_to_the_map(motion) -> None:
    """At the tool trolley (robot at the bench place), a perceived box bounding the trolley
    and its board (1.2 x 0.7 x 1.2 m) touches mapped bodies: it is dropped (the map has
    them exactly); the same box in open floor, and a small box, are kept."""
    m = ArmMotion({"seed": 3}, scene=load_bundle("substation").scene)
    m.set_base_pose((-6.0, 12.4, math.pi / 2), force=True)
    trolley = ((1.1, 0.0, 0.6), (0.7, 1.2, 1.2))            # base frame: 0.75-1.45 m ahead
    assert m.set_obstacles([trolley]) == 0
    m.set_base_pose((0.0, -2.0, 0.0), force=True)           # open yard: nothing mapped there
    assert m.set_obstacles([trolley]) == 1
    m.set_base_pose((-6.0, 12.4, math.pi / 2), force=True)
    assert m.set_obstacles([((0.9, 0.0, 0.55), (0.1, 0.1, 0.1))]) == 1


def test_a_start_a_hair_in_collision_is_repaired_a_deep_one_refused() -> None:
    """Fingers closed on a tool that lies on a table measure a few mm inside the table's
    box: the plan first moves to a valid state within 0.06 rad, then on; a start deep in
    the box is still refused."""
    m = ArmMotion({"seed": 3})
    q = m.named["ready"]
    tcp = m.kin.tcp_pose(q)[:3, 3]

    def table(top: float):
        m.set_obstacles([((tcp[0], 0.0, top - 0.2), (0.3, 0.3, 0.4))])
        return m.checker.is_valid(q)
    tops = np.arange(tcp[2] - 0.2, tcp[2] + 0.05, 0.001)
    first = next(t for t in tops if not table(t))          # the table first touches
    assert table(first + 0.002) is False                   # 2 mm inside
    res = m.planner.plan(q, m.named["stow"])
    assert res.ok and "start repaired" in res.reason
    assert np.allclose(res.path[0], q) and np.abs(res.path[1] - q).max() <= 0.06 + 1e-9
    assert m.checker.is_valid(res.path[1])
    table(first + 0.10)                                    # 10 cm inside
    res = m.planner.plan(q, m.named["stow"])
    assert not res.ok and "start in collision" in res.reason


def _check_limits(tr, vmax, amax, jmax) -> None:
    t, p, v, a = tr.times, tr.positions, tr.velocities, tr.accelerations
    dt = np.diff(t)[:, None]
    v_fd = np.diff(p, axis=0) / dt
    a_fd = np.diff(v, axis=0) / dt
    j_fd = np.diff(a, axis=0) / dt
    assert np.all(np.abs(v) <= vmax * (1 + 1e-6) + 1e-9)
    assert np.all(np.abs(a) <= amax * (1 + 1e-6) + 1e-9)
    # finite differences of the samples (mean over a step never exceeds the bound)
    assert np.all(np.abs(v_fd) <= vmax * (1 + 1e-3) + 1e-6)
    assert np.all(np.abs(a_fd) <= amax * (1 + 1e-3) + 1e-6)
    assert np.all(np.abs(j_fd) <= jmax * (1 + 1e-3) + 1e-6)
    # and they are consistent: positions integrate the velocities
    assert np.abs(v_fd - 0.5 * (v[1:] + v[:-1])).max() < 0.05 * vmax.max()


def test_ruckig_trajectories_respect_limits_and_follow_the_segments(motion) -> None:
    path = np.array([motion.named["stow"], motion.named["ready"], motion.named["reach"],
                     [1.0, 0.8, 0.5, -1.0, 0.6, 2.0]])
    vmax = motion.vmax * 0.8
    amax, jmax = motion.amax * 0.8, motion.jmax
    tr = time_parameterize(path, vmax, amax, jmax, step_s=0.002, max_points=100000)
    _check_limits(tr, vmax, amax, jmax)
    assert np.allclose(tr.positions[-1], path[-1]) and np.allclose(tr.velocities[-1], 0)
    assert abs(tr.duration - sum(tr.segment_durations)) < 1e-9
    # phase synchronisation: every sample lies on its straight segment (what was checked)
    starts = np.concatenate([[0], np.cumsum(tr.segment_durations)])
    for t, q in zip(tr.times, tr.positions):
        i = min(int(np.searchsorted(starts, t, side="right")) - 1, len(path) - 2)
        d = path[i + 1] - path[i]
        s = np.dot(q - path[i], d) / np.dot(d, d)
        assert -1e-6 <= s <= 1 + 1e-6
        assert np.linalg.norm(path[i] + s * d - q) < 1e-6
    # each segment is time-optimal for its slowest joint: no faster than a rest-to-rest
    # bang-bang profile at the velocity and acceleration limits allows
    for i, dur in enumerate(tr.segment_durations):
        dq = np.abs(path[i + 1] - path[i])
        t_min = np.max(np.where(dq > vmax ** 2 / amax, dq / vmax + vmax / amax,
                                2 * np.sqrt(dq / amax)))
        assert dur >= t_min - 1e-9
    # a coarse sampling keeps within max_points
    tr2 = time_parameterize(path, vmax, amax, jmax, step_s=0.001, max_points=50)
    assert len(tr2.times) <= 50 and np.allclose(tr2.positions[-1], path[-1])
    with pytest.raises(TimingError):
        time_parameterize(path, vmax, -amax, jmax)
    with pytest.raises(TimingError):
        time_parameterize(np.array([[0.0] * 6, [math.nan] * 6]), vmax, amax, jmax)


def test_supervisor_accepts_the_published_trajectory(motion) -> None:
    plan = motion.plan(motion.named["stow"], motion.named["ready"], velocity_scale=1.0)
    tr = plan.trajectory
    assert len(tr.times) <= motion.p["max_points"] and tr.times[0] > 0
    limits = joint_limits_from_description(motion.desc, motion.kin.joint_names)
    pts = [TrajectoryPoint(tuple(q), float(t), tuple(v))
           for t, q, v in zip(tr.times, tr.positions, tr.velocities)]
    ok, why = validate_trajectory(list(motion.kin.joint_names), pts, limits)
    assert ok, why
    # the kernel's acceleration limit is 2 x the velocity limit
    assert np.all(np.abs(tr.accelerations) <= 2 * motion.vmax + 1e-9)


def test_named_poses_parse_and_errors_name_the_entry(motion) -> None:
    lo, hi = motion.kin.lower, motion.kin.upper
    got = parse_named_poses(["a: 0 0 0 0 0 0", "b: 0.1, 0.2, 0.3, 0, 0, 0"], lo, hi)
    assert set(got) == {"a", "b"} and got["b"][2] == pytest.approx(0.3)
    for bad, text in ((["x 0 0 0 0 0 0"], "expected"), (["a: 0 0 0"], "3 values"),
                      (["a: 0 9 0 0 0 0"], "joint 2"), (["a: 0 0 0 0 0 0", "a: 1 0 0 0 0 0"],
                                                         "duplicate"),
                      (["a: 0 nan 0 0 0 0"], "non-finite"), (["a: 0 x 0 0 0 0"], "numbers")):
        with pytest.raises(ConfigError, match=text):
            parse_named_poses(bad, lo, hi)
    for name, q in motion.named.items():
        assert motion.checker.kin.within_limits(q), name


# -- extracted from the arm_planner node: pose sources, frames, goals, execution watch -------

def test_pose_sources_choose_a_fresh_pose() -> None:
    from sitebot.arm.service import PoseSources
    from sitebot.types import Pose2D
    auto = PoseSources("auto", 1.0, spawn=(1.0, 2.0, math.pi / 2))
    assert auto.pose(0.0) == (None, "no fresh odometry (odometry/filtered or odom)")
    auto.update("odom", Pose2D(1.0, 0.0, 0.25), 0.0)
    pose, why = auto.pose(0.5)               # 1 m along the spawn heading (north)
    assert why == "odom+spawn" and pose == pytest.approx((1.0, 3.0, math.pi / 2 + 0.25))
    auto.update("filter", Pose2D(5.0, 5.0, 0.1), 0.2)
    assert auto.pose(1.1) == ((5.0, 5.0, 0.1), "odometry/filtered")
    assert auto.pose(1.3)[1] == "no fresh odometry (odometry/filtered or odom)"   # stale
    only_filter = PoseSources("filter", 1.0, spawn=(0.0, 0.0, 0.0))
    only_filter.update("odom", Pose2D(1.0, 0.0, 0.0), 0.0)
    assert only_filter.pose(0.1) == (None, "no fresh odometry/filtered")
    fixed = PoseSources("parameter", 1.0, (0.0, 0.0, 0.0), fixed=(-2.0, 0.5, 1.5708))
    assert fixed.pose(1e9) == ((-2.0, 0.5, 1.5708), "parameter")


def test_ee_goals_are_moved_into_the_base_frame() -> None:
    from sitebot.arm.service import Frames, ee_goal_in_base, planar_pose
    from sitebot.types import yaw_to_quaternion
    frames = Frames("base_footprint", "map", base_link_z=0.1)
    robot = (-2.0, 0.5, math.pi / 2)                 # facing north
    up = (0.0, 0.0, 0.0, 1.0)
    g = ee_goal_in_base("base_link", (0.5, 0.0, 0.6), up, frames, robot)
    assert g["ee_position"] == pytest.approx((0.5, 0.0, 0.7)) and g["ee_orientation"] == \
        pytest.approx(up)
    # 0.55 m north of the robot in the map = 0.55 m ahead; a map heading of north (yaw
    # 90 deg) is the base's own heading (yaw 0)
    g = ee_goal_in_base("map", (-2.0, 1.05, 0.7), yaw_to_quaternion(math.pi / 2), frames,
                        robot)
    assert g["ee_position"] == pytest.approx((0.55, 0.0, 0.7), abs=1e-12)
    assert g["ee_orientation"] == pytest.approx(up, abs=1e-12)
    g = ee_goal_in_base("map", (-1.0, 0.5, 0.7), (0.0, 0.0, 0.0, 0.0), frames, robot)
    assert g["ee_position"] == pytest.approx((0.0, -1.0, 0.7), abs=1e-12)   # 1 m east: right
    assert list(g["ee_orientation"]) == [0.0] * 4                           # position only
    for frame, pos, text in (("camera", (0.5, 0.0, 0.5), "unknown frame 'camera'; accepted: "
                              "base_footprint, base_link, map"),
                             ("map", (math.nan, 0.0, 0.5), "NaN")):
        with pytest.raises(GoalRejected) as e:
            ee_goal_in_base(frame, pos, up, frames, robot)
        assert e.value.code == CODE_INVALID_GOAL and text in e.value.reason
    assert planar_pose(1.0, 2.0, yaw_to_quaternion(0.3)) == pytest.approx((1.0, 2.0, 0.3))
    assert planar_pose(1.0, 2.0, (0.0, 0.0, math.inf, 1.0)) is None


def test_arm_service_boxes_goals_watch_and_diagnostics() -> None:
    from sitebot.arm.config import param_defaults
    from sitebot.arm.motion import CODE_ABORTED, CODE_SUCCEEDED, MotionPlan
    from sitebot.arm.service import ArmRequest, ArmService, ExecutionWatch, Refusal
    p = param_defaults()
    p.update(seed=3, pose_source="parameter", robot_pose=[-2.0, 0.5, math.pi / 2])
    svc = ArmService(p, motion=ArmMotion(p))
    names = list(svc.joint_names)
    stow = svc.motion.named["stow"]
    # joint states: another group's message is skipped, bad ones are named
    assert svc.joint_states(["gripper_left_finger_joint"], [0.02], 0.0) is None
    assert svc.q is None
    assert svc.joint_states(names + ["g"], list(stow), 0.0) == "6 positions for 7 names"
    assert svc.joint_states(names, [math.nan] * 6, 0.0) == "non-finite arm position"
    assert svc.joint_states(names[::-1], list(stow[::-1]), 1.0) is None
    assert np.array_equal(svc.q, stow) and svc.q_time == 1.0
    # perceived boxes: a box 1 m north of the robot in the map is 1 m ahead of it
    problems = svc.obstacles("map", [(1, (-2.0, 1.5, 0.5), (0.2, 0.2, 0.2)),
                                     (7, (math.nan, 0.0, 0.0), (0.1, 0.1, 0.1))], 1.0)
    assert problems == ["obstacle 7 has non-finite values"] and svc.obstacle_count == 1
    assert svc.motion.obstacle_prims[0].pose[:3, 3] == pytest.approx((1.0, 0.0, 0.5))
    assert svc.obstacles("camera", [], 1.0) == [
        "unknown frame 'camera' (accepted: base_footprint, base_link, map)"]
    assert svc.obstacle_count == 1                             # unchanged
    svc.obstacles("base_link", [(2, (1.0, 0.0, 0.5), (0.2, 0.2, 0.2))], 1.0)
    assert svc.motion.obstacle_prims[0].pose[2, 3] == pytest.approx(0.5 + svc.frames.base_link_z)
    assert svc.frames.base_link_z > 0.0
    svc.obstacles("base_footprint", [], 1.0)
    # goals: refusals counted, with the code, the reason and the line to log
    r = svc.plan(ArmRequest(named_pose="nowhere"), 1.1)
    assert isinstance(r, Refusal) and r.code == CODE_INVALID_GOAL and not r.error
    assert r.log.startswith("move_arm refused: unknown named pose 'nowhere'")
    assert r.log.endswith("(perceived boxes, base frame: none)")
    r = svc.plan(ArmRequest(ee_position=(0.5, 0.0, 0.5)), 1.1)
    assert r.code == CODE_INVALID_GOAL and "no header.frame_id" in r.reason
    r = svc.plan(ArmRequest(named_pose="ready"), 2.0)         # joint states 1 s old
    assert r.code == CODE_ABORTED and r.reason == \
        "no fresh joint_states for the arm joints (last 1.00 s ago)"
    assert (svc.counts["goals"], svc.counts["rejected"]) == (3, 3)
    assert svc.last_reason == r.reason
    plan = svc.plan(ArmRequest(named_pose="ready"), 1.2)
    assert isinstance(plan, MotionPlan) and np.allclose(plan.goal, svc.motion.named["ready"])
    assert svc.last_planning_ms == pytest.approx(plan.planning_time_s * 1000.0)
    watch = svc.watch(plan, 10.0)
    dur = float(plan.trajectory.duration)
    assert watch.limit_s == pytest.approx(3.0 * dur + 2.0) and watch.duration == dur
    # the watch: progress while executing, reached within 0.03 rad with fresh joint states
    assert watch.tick(10.0 + dur / 2, stow, 10.0 + dur / 2) == (("executing", 0.5), None)
    fb, end = watch.tick(10.0 + dur + 0.1, plan.goal + 0.02, 10.0 + dur)
    assert fb == ("settling", 1.0) and end == (CODE_SUCCEEDED,
                                               "reached (largest joint error 0.0200 rad)")
    assert watch.tick(10.0 + dur + 0.1, plan.goal + 0.02, 9.0)[1] is None   # stale states
    end = watch.tick(10.0 + 3.0 * dur + 2.5, stow, 10.0 + 3.0 * dur + 2.5)[1]
    assert end[0] == CODE_ABORTED and end[1].startswith(f"not reached after "
                                                        f"{3.0 * dur + 2.5:.1f} s")
    assert ExecutionWatch(stow, 0.0, 0.0, 2.0, 0.03, 0.5).tick(0.0, None, 0.0) == \
        (("settling", 1.0), None)
    svc.ended(CODE_SUCCEEDED)
    svc.ended(CODE_ABORTED, "preempted")
    assert (svc.counts["succeeded"], svc.counts["aborted"], svc.last_reason) == \
        (1, 1, "preempted")
    # the hold position keeps to the limits; diagnostics name what is stale
    svc.q = svc.motion.kin.upper + 0.1
    assert np.array_equal(svc.hold_position(), svc.motion.kin.upper)
    problems, values = svc.diagnostics(5.0)
    assert problems == ["joint_states stale or missing"]
    values = dict(values)
    assert values["goals"] == "4" and values["obstacles"] == "0"
    assert int(values["collision_checks"]) > 0 and values["last_reason"] == "preempted"
    assert svc.bad_message("odom", "non-finite pose") == "odom: non-finite pose; ignored"
    assert svc.counts["bad_messages"] == 1
