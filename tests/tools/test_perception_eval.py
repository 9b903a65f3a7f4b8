"""The camera evaluation (sitebot eval perception) on a small fixed set, thresholds asserted.

16 views of the substation at 640x480 (4 clean, occluded, blurred, glare each under the four
lighting presets), seed 0: PyBullet renders, the real detector and reader."""
import math

import pytest

from sitebot.tools.camera_eval import run_camera_eval, summarize


@pytest.fixture(scope="module")
def summary():
    res = run_camera_eval(views=16, seed=0, width=640, height=480, worlds=("substation",))
    assert len(res) == 16
    return summarize(res)


def test_no_report_on_unreadable_dials(summary):
    g = summary["gauge"]
    assert sum(v["views"] for v in g["unreadable"].values()) == 12
    assert g["unreadable_reports"] == 0


def test_reported_gauge_values_are_within_2pct_of_full_scale(summary):
    g = summary["gauge"]
    assert g["reported"] >= 2, g["refusal_reasons"]     # of 4 clean views
    assert g["p95_err_pct_fs"] <= 2.0


def test_fiducial_poses_at_1_to_3_m(summary):
    f = summary["fiducials"]
    assert f["detections_1_3m"] >= 8
    assert f["pos_p50_cm"] < 2.0
    assert f["rot_p50_deg"] < 6.0
    assert not math.isnan(f["normalized_pos_err_rms"])
