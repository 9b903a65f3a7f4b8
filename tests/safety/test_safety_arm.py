"""Arm trajectory validation against the URDF's limits and a workspace keep-out box."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.description.urdf import load_robot_description
from sitebot.safety.arm import ArmChain, ArmModel, JointLimit, WorkspaceKeepOut, validate_trajectory
from sitebot.safety.config import SafetyConfig
from sitebot.safety.types import TrajectoryPoint as P


@pytest.fixture(scope="module")
def desc():
    return load_robot_description()


@pytest.fixture(scope="module")
def model(desc):
    return ArmModel.from_description(desc, SafetyConfig())


ARM = [f"arm_joint_{i}" for i in range(1, 7)]
ZERO = (0.0,) * 6


def test_limits_from_urdf(model):
    assert model.limits["arm_joint_2"] == JointLimit("arm_joint_2", -2.0, 2.0, 1.5)
    assert "gripper_left_finger_joint" in model.limits
    assert model.keep_out is None


def test_valid_trajectory(model):
    pts = [P(ZERO, 0.0), P((0.5, 0.5, 0.0, 0.0, 0.0, 0.0), 1.0, (0.1,) * 6)]
    assert validate_trajectory(ARM, pts, model.limits) == (True, "ok")


@pytest.mark.parametrize("names,points,fragment", [
    ([], [P(ZERO, 0.0)], "no joint names"),
    (ARM[:5] + ["arm_joint_1"], [P(ZERO, 0.0)], "duplicate"),
    (ARM[:5] + ["elbow"], [P(ZERO, 0.0)], "unknown joint(s) ['elbow']"),
    (ARM, [], "no points"),
    (ARM, [P((0.0,) * 5, 0.0)], "5 positions for 6 joints"),
    (ARM, [P(ZERO, 0.0, (0.0,) * 2)], "2 velocities"),
    (ARM, [P((math.nan,) + ZERO[1:], 0.0)], "non-finite"),
    (ARM, [P(ZERO, -0.1)], "negative"),
    (ARM, [P(ZERO, 1.0), P(ZERO, 1.0)], "not after point 0"),
    (ARM, [P(ZERO, 1.0), P(ZERO, 0.5)], "not after point 0"),
    (ARM, [P((0.0, 2.1, 0, 0, 0, 0), 1.0)], "arm_joint_2 = 2.1 outside its limits [-2, 2]"),
    (ARM, [P(ZERO, 1.0, (0.0, 1.6, 0, 0, 0, 0))], "arm_joint_2 velocity 1.6 over its limit 1.5"),
    (ARM, [P(ZERO, 0.0), P((0.0, 1.0, 0, 0, 0, 0), 0.5)], "move at 2 on average"),
])
def test_invalid(model, names, points, fragment):
    ok, reason = validate_trajectory(names, points, model.limits)
    assert not ok and fragment in reason, reason


def test_fk_chain(desc):
    chain = ArmChain.from_description(desc)
    assert chain.joints[-1].child == "tool0"
    p0 = chain.points({})
    up = p0[-1]
    # straight up: the tool is above the arm base; bending joint 2 by 90 deg brings it down
    p1 = chain.points({"arm_joint_2": math.pi / 2})
    assert p1[-1][2] < up[2] - 0.3
    # joint 1 is about z: it keeps the height
    p2 = chain.points({"arm_joint_1": 1.0, "arm_joint_2": 0.5})
    p3 = chain.points({"arm_joint_2": 0.5})
    assert p2[-1][2] == pytest.approx(p3[-1][2])
    k = 1 + [j.name for j in chain.joints].index("arm_joint_1")    # joint 1's frame origin
    assert np.hypot(*(p2[-1] - p2[k])[:2]) == pytest.approx(np.hypot(*(p3[-1] - p3[k])[:2]))


def test_workspace_keep_out(desc):
    chain = ArmChain.from_description(desc)
    tool_up = chain.points({})[-1]
    # a box hovering 0.3 m above the tool in the upright pose
    box = (tool_up[0] - 0.2, tool_up[1] - 0.2, tool_up[2] + 0.25,
           tool_up[0] + 0.2, tool_up[1] + 0.2, tool_up[2] + 0.5)
    cfg = SafetyConfig(arm_keep_out_boxes=box)
    model = ArmModel.from_description(desc, cfg)
    assert isinstance(model.keep_out, WorkspaceKeepOut)
    assert validate_trajectory(ARM, [P(ZERO, 0.0)], model.limits, model.keep_out)[0]
    # a box that the tool sweeps through when joint 2 goes from +1 to -1 (passing upright)
    box2 = (tool_up[0] - 0.1, tool_up[1] - 0.1, tool_up[2] - 0.05,
            tool_up[0] + 0.1, tool_up[1] + 0.1, tool_up[2] + 0.05)
    model2 = ArmModel.from_description(desc, SafetyConfig(arm_keep_out_boxes=box2))
    pts = [P((0, 1.0, 0, 0, 0, 0), 0.0), P((0, -1.0, 0, 0, 0, 0), 2.0)]
    ok, reason = validate_trajectory(ARM, pts, model2.limits, model2.keep_out)
    assert not ok and "keep-out box 0" in reason and "point 1" in reason
