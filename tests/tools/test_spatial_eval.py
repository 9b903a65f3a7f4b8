"""The spatial evaluation against simulator ground truth on a small fixed set, thresholds
asserted (the full run: python -m sitebot.tools.spatial_eval --views 40)."""
from __future__ import annotations

from sitebot.tools.spatial_eval import EvalConfig, main, run_eval, summarize


def test_small_fixed_set_meets_the_aims(tmp_path):
    res = run_eval(EvalConfig(views=3, seed=0, scans_per_view=5, geometric_baseline=False))
    table, t = summarize(res)
    assert t.views >= 8, table
    assert t.people_visible >= 8 and t.obstacles >= 8, table      # not vacuous
    assert t.people_found >= 0.99 * t.people_visible, (table, t.missed)
    assert t.fp_frames <= 0.01 * t.frames, (table, t.fps)
    assert t.obstacles_found == t.obstacles, (table, t.missed_obstacles)
    assert "TOTAL" in table and "recall" in table


def test_main_rejects_bad_arguments(capsys):
    assert main(["--views", "0"]) == 2
    assert "--views" in capsys.readouterr().err
