"""The localization evaluation, short: 30 simulated seconds of the substation patrol (real
PyBullet, the simulated tag detector), both filters, then the kidnapped-robot test, with the
figures asserted (the full 10-minute run is `sitebot eval localization`)."""
from __future__ import annotations

import pytest

from sitebot.tools.localization_eval import evaluate_world, main


@pytest.fixture(scope="module")
def result():
    return evaluate_world("substation", 30.0, seed=1)


def test_fixes_keep_the_error_small_and_consistent(result):
    f = result.filters["fixes"]
    assert result.distance_m > 8.0, "the robot drove its route"
    assert f["pos_rms_m"] < 0.10 and f["pos_max_m"] < 0.30
    assert f["yaw_rms_deg"] < 2.0
    assert f["fixes_accepted"] > 20
    assert f["nees_within_95"] > 0.7                 # ideal 0.95
    assert f["nis_fiducial_within_95"] > 0.8


def test_without_fixes_the_filter_beats_raw_odometry_drift_bound(result):
    nf = result.filters["no fixes"]
    assert nf["pos_max_m"] < 0.5
    assert nf["drift_per_100m_m"] < 2.0              # m per 100 m driven
    assert nf["fixes_accepted"] == 0


def test_kidnapped_robot_detected_within_two_seconds(result):
    k = result.kidnap
    assert k is not None and k["jump_m"] > 3.0
    assert k["detected_s"] is not None and k["detected_s"] < 2.0
    assert k["relocalized_s"] is not None and k["relocalized_s"] < 3.0
    assert k["final_error_m"] < 0.15


def test_cli_refuses_real_detector_without_perception(capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "sitebot.perception.fiducials", None)
    assert main(["--detector", "real", "--worlds", "substation"]) == 2
    assert "sitebot.perception.fiducials" in capsys.readouterr().err
