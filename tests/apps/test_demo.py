"""Launch-level failure reporting of the demo stack. The main job (the mission) is tested in
test_mission_sim.py; the route the earlier scripted tour drove by the regression scenario
tests/scenarios/substation_goals_transformer_patrol.yaml (navigation goals)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SITEBOT = Path(sys.executable).with_name("sitebot")


def test_launch_reports_bad_parameter_and_exits_nonzero():
    """`sitebot launch` checks node parameters against their schemas before starting
    anything (the same check as `sitebot check`), naming the file, line, node and range."""
    proc = subprocess.run([str(SITEBOT), "launch", "sim.launch.yaml", "seed:=-4"],
                          capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert "sim.launch.yaml:" in text and "'simulator'" in text and "'seed'" in text
    assert "[0, 2147483647]" in text, text[-2000:]
    assert "process started" not in text and "Traceback" not in text


def test_a_node_refuses_a_bad_parameter_itself():
    """Started without the launcher (ros2 run), the node does the same check: exit code 2,
    one line naming the parameter and its range, no traceback."""
    proc = subprocess.run([str(Path(sys.executable).with_name("simulator")), "--ros-args",
                           "-p", "seed:=-4", "-p", "camera_enabled:=false"],
                          capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert "seed" in text and "[0, 2147483647]" in text, text[-2000:]
    assert "Traceback" not in text
