"""The earlier main job, the scripted tour, as a user runs it (`sitebot demo --tour`), on a
short route: exit code, outputs, and that the robot really got to each stop (checked against
ground truth). The mission main job is tested in test_mission_sim.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.integration

SITEBOT = Path(sys.executable).with_name("sitebot")


def test_demo_short_tour(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([str(SITEBOT), "demo", "--tour", "--world", "substation",
                           "--route", "transformer_patrol", "--no-dock", "--out", str(out),
                           "--timeout", "240", "--real-time-factor", "0"],
                          capture_output=True, text=True, timeout=300,
                          # as a user runs it: no ROS_DOMAIN_ID set (regression: the demo's
                          # observer then listened on another domain than its processes)
                          env={k: v for k, v in os.environ.items() if k != "ROS_DOMAIN_ID"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3/3 stops reached" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] is True and summary["evaluated"] is True
    assert summary["real_time_factor"] > 0.5
    assert [s["place"] for s in summary["stops"]] == ["t1_bay", "t2_bay", "t3_bay"]
    dist = summary["distance_travelled_m"]
    assert 12.0 < dist < 25.0                         # ~16 m of legs, plus turning
    for s in summary["stops"]:
        assert s["outcome"] == "reached"
        # odometry-only driving: drift stays within 3 % of the distance driven ...
        assert s["odom_drift_m"] < 0.03 * dist + 0.05, s
        # ... and the robot stopped where odometry put the goal (tolerance 0.12 m)
        assert s["true_goal_error_m"] < 0.12 + s["odom_drift_m"] + 0.05, s
    assert summary["sim_time_s"] > 20.0
    for name in ("launch.log", "tour.json", "trajectory.csv", "map.png"):
        assert (out / name).stat().st_size > 0, name
    snaps = sorted((out / "snapshots").glob("*.png"))
    assert len(snaps) == 3
    img = cv2.imread(str(snaps[0]))
    assert img.shape == (240, 320, 3) and img.std() > 10      # a real picture, not blank


def test_launch_reports_bad_parameter_and_exits_nonzero():
    proc = subprocess.run([str(SITEBOT), "launch", "sim.launch.yaml", "seed:=-4"],
                          capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "seed" in text and "[0, 2147483647]" in text, text[-2000:]
    assert "process has died" in text and "exit code 2" in text
    assert "Traceback" not in text
