"""Grasp candidates from a segmented object (tests/grasp_scene.py renders the bench scene):
across the object's width, reachable by IK, collision-checked against the perceived bench
and boxes, refused with reasons.

The arm's top-down workspace (collision-free, tool z down, y = 0; measured with this file's
IK): the TCP reaches z = 0.80 m at x = 0.55 m (0.83 m at x = 0.45, 0.74 m at x = 0.65), so a
tool on a 0.85 m bench (TCP 0.886 m) cannot be gripped from straight above; an approach
tilted 45 deg reaches 1.00 m at x = 0.55, a horizontal one 1.17 m."""
from __future__ import annotations

import math

import numpy as np
import pytest

from grasp_scene import WRENCH, render
from sitebot.arm.grasp_planning import GraspConfig, GraspPlanner, grasp_rotation
from sitebot.perception.object_segment import ObjectSegment, segment_object


@pytest.fixture(scope="module")
def planner() -> GraspPlanner:
    return GraspPlanner()


def _segment(bench: float = 0.5, xy=(0.55, 0.0), size=WRENCH, yaw_deg: float = 0.0,
             boxes=()) -> ObjectSegment:
    shot = render(bench, xy, size, math.radians(yaw_deg), boxes=boxes)
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical,
                         (0.55, 0.0, bench + 0.015), 0.15)
    assert seg.found, seg.reason
    return seg


def _line_diff_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.remainder(a - b, math.pi)))


def _assert_reaches(planner: GraspPlanner, c) -> None:
    """The candidate's IK solutions put the TCP where it says (1 mm, 0.6 deg)."""
    for q, p in ((c.q, c.position), (c.q_pregrasp, c.pregrasp)):
        assert q is not None and planner.kin.within_limits(q)
        T = planner.kin.tcp_pose(q)
        assert np.linalg.norm(T[:3, 3] - p) < 1.5e-3
        cos = (np.trace(T[:3, :3].T @ c.rotation) - 1) / 2
        assert math.degrees(math.acos(min(1.0, cos))) < 1.0
    assert np.allclose(c.pregrasp, c.position - planner.config.pregrasp_m * c.approach)


def test_gripper_geometry_from_the_urdf(planner) -> None:
    g = planner.gripper
    assert g.max_opening_m == pytest.approx(0.08)       # 2 x 0.04 m finger travel
    assert g.closed_gap_m == pytest.approx(0.0)
    assert g.tip_m == pytest.approx(0.015)              # fingertips 15 mm beyond the TCP
    assert g.palm_m == pytest.approx(0.045)
    assert g.finger_width_m == pytest.approx(0.02)


def test_best_grasp_is_top_down_across_the_width(planner) -> None:
    seg = _segment()
    plan = planner.plan(seg)
    best = plan.best
    assert best is not None, plan.reason
    assert best.kind == "top" and best.tilt == 0.0
    assert _line_diff_deg(best.closing_yaw, seg.yaw + math.pi / 2) < 5.0
    assert np.allclose(best.approach, (0, 0, -1))
    _assert_reaches(planner, best)
    # the executor's convention: rpy (pi, 0, long axis) or its twin
    roll, pitch, yaw = best.rpy
    assert abs(abs(roll) - math.pi) < 1e-6 and abs(pitch) < 1e-6
    assert _line_diff_deg(yaw, seg.yaw) < 5.0
    # the fingers: 20 mm above the bench, gripping the top 10 mm of the 30 mm tool,
    # opened to the width + 2 x 20 mm (the travel allows it)
    assert best.clearance_m == pytest.approx(0.02, abs=1e-3)
    assert best.position[2] == pytest.approx(0.5 + 0.02 + 0.015, abs=3e-3)
    assert best.width_m == pytest.approx(0.04, abs=0.005)
    assert best.opening_m == pytest.approx(min(0.08, best.width_m + 0.04))
    assert best.finger_joint_m == pytest.approx(best.opening_m / 2)
    # both twins are feasible, and the yaw offsets rank below the antipodal pair
    top = [c for c in plan.feasible if c.kind == "top"]
    assert [round(math.degrees(c.yaw_offset)) for c in top[:2]] == [0, 0]
    assert top[0].closing_yaw == pytest.approx(top[1].closing_yaw)
    assert not np.allclose(top[0].rotation, top[1].rotation)
    scores = [c.score for c in plan.feasible]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= v <= 1.0 for c in plan.feasible for v in c.terms.values())


def test_turning_the_object_turns_the_grasp(planner) -> None:
    a = planner.plan(_segment(yaw_deg=0.0)).best
    b = planner.plan(_segment(yaw_deg=30.0)).best
    assert a is not None and b is not None
    assert _line_diff_deg(b.closing_yaw - a.closing_yaw, math.radians(30.0)) < 5.0
    _assert_reaches(planner, b)


def test_displaced_object_moves_the_grasp(planner) -> None:
    seg = _segment(xy=(0.60, -0.04), yaw_deg=-30.0)
    best = planner.plan(seg).best
    assert best is not None
    assert np.linalg.norm(best.position[:2] - (0.60, -0.04)) < 0.01
    _assert_reaches(planner, best)


def test_object_wider_than_the_gripper_gets_no_candidate(planner) -> None:
    seg = _segment(size=(0.12, 0.09, 0.05))
    assert seg.width_m == pytest.approx(0.09, abs=0.01)
    plan = planner.plan(seg)
    assert plan.candidates == [] and plan.best is None
    assert "too wide" in plan.reason and "80 mm" in plan.reason


def test_width_with_margin_decides(planner) -> None:
    """65 mm fits the 80 mm opening only without a 10 mm margin per side."""
    seg = _segment(size=(0.15, 0.065, 0.04))
    assert planner.plan(seg).best is None
    loose = GraspPlanner(config=GraspConfig(margin_m=0.005), kin=planner.kin)
    best = loose.plan(seg).best
    assert best is not None and best.opening_m == pytest.approx(0.08)


def test_high_bench_is_reached_by_a_tilted_grasp(planner) -> None:
    seg = _segment(bench=0.85)
    plan = planner.plan(seg)
    top = [c for c in plan.candidates if c.kind == "top"]
    assert top and all(not c.ok for c in top)
    assert all(c.stage in ("ik", "geometry") for c in top)
    assert any(c.reason.startswith("no IK solution") for c in top)
    best = plan.best
    assert best is not None, plan.reason
    assert best.kind in ("tilted", "side")
    assert _line_diff_deg(best.closing_yaw, seg.yaw + math.pi / 2) < 5.0
    assert best.clearance_m >= planner.config.support_clearance_m - 1e-3
    _assert_reaches(planner, best)


def test_top_down_workspace_ends_near_0_8_m(planner) -> None:
    """The numbers in the module docstring, at x = 0.55 m."""
    kin, chk = planner.kin, planner.checker
    chk.set_scene([])
    R = grasp_rotation((0, 0, -1), (0, 1, 0))
    ok = lambda z: kin.ik((0.55, 0.0, z), R, n_seeds=16, accept=chk.is_valid).ok  # noqa: E731
    assert ok(0.78) and not ok(0.83)
    side = grasp_rotation((1, 0, 0), (0, 1, 0))
    assert kin.ik((0.55, 0.0, 1.1), side, n_seeds=16, accept=chk.is_valid).ok


def test_candidates_in_collision_with_the_bench_are_rejected(planner) -> None:
    plan = planner.plan(_segment())
    side = [c for c in plan.candidates if c.kind == "side"]
    assert side and all(not c.ok for c in side)
    hit = [c for c in side if c.stage == "collision"]
    assert hit and all("collides with scene 'support'" in c.reason for c in hit)
    # rejected candidates rank after the feasible ones
    oks = [c.ok for c in plan.candidates]
    assert oks == sorted(oks, reverse=True)


def test_perceived_box_over_the_object_blocks_the_approach(planner) -> None:
    seg = _segment()
    shelf = ((0.55, 0.0, 0.62), (0.30, 0.40, 0.02))          # 9 cm above the grasp
    plan = planner.plan(seg, obstacles=[shelf])
    top = [c for c in plan.candidates if c.kind == "top"]
    assert top and all(not c.ok for c in top)
    assert any("obstacle:0" in c.reason for c in top)
    assert all(c.stage in ("geometry", "collision", "pregrasp", "approach", "ik")
               for c in top)
    # the shelf covers the tilted approaches too, and the side ones hit the bench
    assert plan.best is None
    assert plan.reason.startswith("no feasible grasp among") and "obstacle:0" in plan.reason


def test_not_found_segment_and_bad_input(planner) -> None:
    plan = planner.plan(ObjectSegment(False, "nothing above the support"))
    assert plan.best is None and "nothing above the support" in plan.reason
    seg = _segment()
    with pytest.raises(ValueError, match="current_q"):
        planner.plan(seg, current_q=[0.0] * 5)


def test_current_state_seeds_and_scores(planner) -> None:
    seg = _segment()
    ready = np.array([0.0, 0.3, 1.2, 0.0, 1.6, 0.0])
    plan = planner.plan(seg, current_q=ready)
    best = plan.best
    assert best is not None and "travel" in best.terms
    _assert_reaches(planner, best)


def test_tool_across_the_heading_on_a_high_bench_is_out_of_reach(planner) -> None:
    """The workspace's limit: lying across the robot's heading on a 0.85 m bench, the tool
    needs a vertical approach (beyond reach) or a sideways-tilted one (no IK); a side grasp
    would close across its length. The plan says so; the base must turn or move."""
    plan = planner.plan(_segment(bench=0.85, yaw_deg=90.0))
    assert plan.best is None
    assert plan.reason.startswith("no feasible grasp among")
    assert "no IK solution" in plan.reason and "too wide" in plan.reason
