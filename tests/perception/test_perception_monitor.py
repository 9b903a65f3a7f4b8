"""sitebot.perception.monitor: rate limits, latency windows, skip counting and warning
throttles of the perception nodes, without ROS."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.perception.monitor import InputMonitor, LatencyLog, due


def test_due_limits_to_a_rate():
    assert due(-math.inf, 0.0, 2.0)
    assert not due(10.0, 10.49, 2.0)
    assert due(10.0, 10.5, 2.0)
    assert due(10.0, 10.0, 0.0)                   # 0 = no limit
    assert not due(10.0, 10.005, 100.0) and due(10.0, 10.02, 100.0)


def test_latency_log_window_and_statistics():
    log = LatencyLog(4)
    assert len(log) == 0 and math.isnan(log.mean()) and math.isnan(log.p95())
    assert math.isnan(log.max())
    for ms in (1.0, 2.0, 3.0, 4.0):
        log.add(ms)
    assert (log.mean(), log.max()) == (2.5, 4.0)
    assert log.p95() == pytest.approx(3.85)
    log.add(10.0)                                 # the window drops the oldest
    assert len(log) == 4 and log.mean() == pytest.approx(4.75)
    assert log.p95() == pytest.approx(float(np.percentile([2, 3, 4, 10], 95)))


def test_skip_counts_every_input_and_throttles_warnings_per_kind():
    m = InputMonitor(10)
    assert m.skipped["scan"] == 0                 # never skipped: 0
    assert m.skip("bad_image", 100.0, 5.0)        # first: warn
    assert not m.skip("bad_image", 104.9, 5.0)    # within the period: counted only
    assert m.skip("no_camera_info", 104.9, 5.0)   # another kind: its own throttle
    assert m.skip("bad_image", 105.0, 5.0)
    assert m.skipped["bad_image"] == 3 and m.skipped["no_camera_info"] == 1
    assert m.count("throttled") == 1 and m.count("throttled") == 2
    assert m.skip("bad_image", 105.0, 0.0)        # period 0: every time


def test_skip_with_a_message_throttles_per_problem_not_per_number():
    m = InputMonitor(10)
    assert m.skip("scan", 0.0, 2.0, "scan: scan has 10 ranges, 64 expected")
    assert not m.skip("scan", 1.0, 2.0, "scan: scan has 12 ranges, 64 expected")
    assert m.skip("scan", 1.0, 2.0, "scan: scan angles not finite")
    assert m.skip("scan", 2.0, 2.0, "scan: scan has 11 ranges, 64 expected")
    assert m.skipped["scan"] == 4


def test_seen_stale_and_latency_by_name():
    m = InputMonitor(3, ("frame",))
    m.seen("scan", 10.0)
    m.seen("odom", 9.5)
    assert m.stale(("scan", "odom", "depth"), 10.6, 1.0) == ["odom", "depth"]
    assert m.stale(("scan", "odom"), 10.4, 1.0) == []
    for v in (1.0, 2.0, 3.0, 4.0):
        m.add_latency("cloud_total_ms", v)
    assert list(m.latency) == ["frame", "cloud_total_ms"]
    assert len(m.latency["frame"]) == 0 and m.latency["cloud_total_ms"].mean() == 3.0
