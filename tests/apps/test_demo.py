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
    proc = subprocess.run([str(SITEBOT), "launch", "sim.launch.yaml", "seed:=-4"],
                          capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "seed" in text and "[0, 2147483647]" in text, text[-2000:]
    assert "process has died" in text and "exit code 2" in text
    assert "Traceback" not in text
