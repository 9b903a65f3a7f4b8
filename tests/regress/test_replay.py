"""Replay judging (sitebot.regress.replay): trajectory divergence and the reproduced verdict,
on run folders written as the worker writes them."""
from __future__ import annotations

import json

import pytest

from sitebot.errors import SitebotError
from sitebot.regress.replay import compare_runs, load_run, trajectory_divergence


def _run(tmp_path, name, status, truth, sha="abc"):
    d = tmp_path / name
    d.mkdir()
    (d / "result.json").write_text(json.dumps({
        "file": "tests/scenarios/x.yaml", "name": "x", "status": status, "seed": 3,
        "lockstep": True, "scenario_sha256": sha, "run_dir": str(d)}))
    (d / "plot.json").write_text(json.dumps({"truth": truth}))
    return d


def test_divergence_is_measured_at_equal_sim_times():
    a = [(0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (2.0, 2.0, 0.0)]
    b = [(0.0, 0.0, 0.0), (0.5, 0.5, 0.03), (2.0, 2.0, 0.0)]   # 3 cm off at 0.5 s
    d = trajectory_divergence(a, b)
    assert d["max_m"] == pytest.approx(0.03, abs=1e-4)
    assert d["final_m"] == 0.0 and d["duration_diff_s"] == 0.0
    c = [(0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (2.5, 2.0, 0.4)]
    d = trajectory_divergence(a, c)
    assert d["final_m"] == pytest.approx(0.4) and d["duration_diff_s"] == 0.5
    assert trajectory_divergence([], a)["max_m"] != trajectory_divergence([], a)["max_m"]  # NaN


def test_reproduced_needs_the_same_verdict_and_final_positions_within_5_cm(tmp_path):
    truth = [[0.0, 0.0, 0.0], [5.0, 2.0, 1.0]]
    orig = _run(tmp_path, "orig", "passed", truth)
    same = _run(tmp_path, "same", "passed", [[0.0, 0.0, 0.0], [5.0, 2.03, 1.0]])
    far = _run(tmp_path, "far", "passed", [[0.0, 0.0, 0.0], [5.0, 2.2, 1.0]])
    flip = _run(tmp_path, "flip", "failed", truth, sha="def")
    v = compare_runs(orig, same)
    assert v["reproduced"] and v["divergence"]["final_m"] == pytest.approx(0.03)
    assert not v["scenario_changed"]
    assert not compare_runs(orig, far)["reproduced"]
    v = compare_runs(orig, flip)
    assert not v["reproduced"] and not v["same_verdict"] and v["scenario_changed"]


def test_a_folder_without_a_usable_result_is_a_clear_error(tmp_path):
    with pytest.raises(SitebotError, match="result.json"):
        load_run(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(SitebotError, match="'file'"):
        load_run(tmp_path)
