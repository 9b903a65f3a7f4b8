"""The executor's look at an object (TrackedPorts.perceive_object): the newest depth image
taken since it asked, segmented near where the registry keeps the object, in the map frame.

The depth images are PyBullet renders of a bench with a tool on it (tests/grasp_scene.py),
seen by a camera 15 deg down as the URDF's mast camera; the transport is a test double
(a clock advanced by sleep, a depth frame handed in)."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from grasp_scene import render
from sitebot.executor.ports import TrackedPorts
from sitebot.perception.object_segment import ObjectSegment, moved_segment
from sitebot.sim.world_loader import load_world
from sitebot.types import Pose2D

REG = load_world("substation").registry


class DepthPorts(TrackedPorts):
    """TrackedPorts with a clock and a depth camera whose next frame arrives ``delay_s``
    after it is asked for (None: never)."""

    def __init__(self, shot, delay_s: float | None = 0.5) -> None:
        super().__init__(REG, threading.Event())
        self.t, self.shot, self.delay_s = 100.0, shot, delay_s
        self.asked_at: float | None = None
        self.logs: list[str] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def log(self, message: str) -> None:
        self.logs.append(message)

    def _depth_frame(self):
        if self.asked_at is None:
            self.asked_at = self.t
        if self.delay_s is None:
            return self.shot.depth_m, self.shot.K, 0.0          # an old frame only
        stamp = self.asked_at + self.delay_s if self.t >= self.asked_at + self.delay_s \
            else self.asked_at - 5.0                             # the one before: too old
        return self.shot.depth_m, self.shot.K, stamp


def _at_bench(dx: float = 0.0, dy: float = 0.0, turn_deg: float = 0.0):
    bench = REG.place("tool_bench").pose
    obj = REG.object("voltage_detector")
    base = Pose2D.of(bench).inverse().compose((obj.pose[0], obj.pose[1], 0.0))
    shot = render(0.5, (base.x + dx, base.y + dy), (0.20, 0.04, 0.03),
                  math.radians(turn_deg), pitch_deg=15.0)
    ports = DepthPorts(shot)
    ports.camera_mount = shot.T_base_optical
    ports.update_pose(bench)
    return ports, Pose2D.of(bench).compose((base.x + dx, base.y + dy, 0.0)), bench


def test_the_object_is_found_where_it_lies_in_the_map_frame() -> None:
    ports, truth, bench = _at_bench(0.04, -0.03, 30.0)
    seg = ports.perceive_object("voltage_detector")
    assert seg.found, seg.reason
    assert math.hypot(seg.centroid[0] - truth.x, seg.centroid[1] - truth.y) < 0.01
    axis = bench.yaw + math.radians(30.0)
    assert abs(math.degrees(math.remainder(seg.yaw - axis, math.pi))) < 2.0
    assert seg.width_m == pytest.approx(0.04, abs=0.008)
    assert seg.support_z == pytest.approx(0.5, abs=0.01)
    assert ports.t == pytest.approx(100.5, abs=0.11)       # waited for a fresh frame


def test_no_fresh_frame_no_mount_no_pose_each_say_why() -> None:
    ports, _, _ = _at_bench()
    ports.delay_s = None
    seg = ports.perceive_object("voltage_detector")
    assert not seg.found and "no depth image within 5 s" in seg.reason
    assert ports.t == pytest.approx(105.0, abs=0.11)
    ports, _, _ = _at_bench()
    ports.camera_mount = None
    assert "mount is unknown" in ports.perceive_object("voltage_detector").reason
    ports, _, _ = _at_bench()
    ports.pose = None
    assert "pose unknown" in ports.perceive_object("voltage_detector").reason


def test_a_malformed_depth_image_is_a_reason_not_a_crash() -> None:
    ports, _, _ = _at_bench()
    bad = np.array(ports.shot.depth_m)
    bad[10, 10] = np.nan
    ports.shot = type(ports.shot)(bad, ports.shot.K, ports.shot.T_base_optical,
                                  ports.shot.width, ports.shot.height)
    seg = ports.perceive_object("voltage_detector")
    assert not seg.found and seg.reason.startswith("depth image unusable")


def test_moved_segment_round_trip() -> None:
    """Base frame -> map (the pose) -> another base frame (that pose's inverse)."""
    seg = ObjectSegment(True, centroid=np.array([0.9, 0.1, 0.52]), yaw=1.2,
                        footprint=np.array([[0.8, 0.0], [1.0, 0.0], [1.0, 0.2], [0.8, 0.2]]),
                        points=np.array([[0.9, 0.1, 0.52]]),
                        support_box=(np.array([0.9, 0.1, 0.25]), np.array([0.6, 1.2, 0.5]),
                                     0.0))
    pose = Pose2D(3.0, -2.0, 2.5)
    m = moved_segment(seg, *pose)
    assert m.centroid[:2] == pytest.approx(pose.compose((0.9, 0.1, 0.0))[:2])
    assert -math.pi / 2 < m.yaw <= math.pi / 2
    assert math.remainder(m.yaw - (1.2 + 2.5), math.pi) == pytest.approx(0.0, abs=1e-12)
    back = moved_segment(m, *pose.inverse())
    assert back.centroid == pytest.approx(seg.centroid)
    assert back.points == pytest.approx(seg.points)
    assert back.footprint == pytest.approx(seg.footprint)
    assert back.support_box[0] == pytest.approx(seg.support_box[0])
    assert back.yaw == pytest.approx(seg.yaw)
