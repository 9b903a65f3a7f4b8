"""``sitebot campaign`` on the local pool: every run of a small campaign ends with a verdict,
the runs are the template's draws for their seeds, and a campaign folder resumes."""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from sitebot.apps.campaign import main as campaign_main
from sitebot.apps.campaign import _Progress, summarize
from sitebot.regress.template import load_template

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "tests" / "campaigns" / "substation_crossing_random.yaml"


def _short_template(tmp_path: Path) -> Path:
    """The shipped crossing template, cut to 3 simulated seconds (the machinery, not the
    behaviour, is under test here)."""
    text = SHIPPED.read_text().replace("duration: 16", "duration: 3")
    text = text.replace("  min_travel: 2.0\n", "")
    p = tmp_path / "templates" / "crossing_short.yaml"
    p.parent.mkdir()
    p.write_text(text.replace("scenario: substation_crossing_random",
                              "scenario: crossing_short"))
    return p


def test_a_small_campaign_runs_resumes_and_reports_rates(tmp_path, capsys):
    tpl = _short_template(tmp_path)
    out = tmp_path / "camp"
    assert campaign_main([str(tpl.parent), "--runs", "2", "--first-seed", "5", "--jobs", "2",
                          "--out", str(out), "--quiet"]) == 0
    camp = json.loads((out / "campaign.json").read_text())
    names = [r["name"] for r in camp["runs"]]
    assert names == ["crossing_short[seed=5]", "crossing_short[seed=6]"]
    assert all(r["status"] in ("passed", "failed") for r in camp["runs"]), camp["runs"]
    # a run that did not pass carries its failure's label, one that passed none
    assert all((r["label"] is None) == (r["status"] == "passed") for r in camp["runs"])
    t = load_template(tpl)
    for r in camp["runs"]:
        res = json.loads((Path(r["run_dir"]) / "result.json").read_text())
        assert res["seed"] == r["seed"] and res["file"] == str(tpl)
        crosser = json.loads((Path(r["run_dir"]) / "spec.json").read_text())
        assert crosser["seed"] == r["seed"]
        drawn = t.explain(r["seed"])
        actors = t.sample(r["seed"]).actors_add[0]
        assert actors["speed"] == drawn["actors.add[0].speed"]
    per = camp["per_template"]["crossing_short"]
    assert per["judged"] == 2 and per["errors"] == 0
    assert camp["per_world"]["substation"]["judged"] == 2
    first = {r["name"]: (Path(r["run_dir"]) / "result.json").stat().st_mtime_ns
             for r in camp["runs"]}
    capsys.readouterr()

    # resumed with one more seed: only the new run runs
    assert campaign_main([str(tpl), "--runs", "3", "--first-seed", "5", "--jobs", "2",
                          "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "2 already done" in said and "1 to run" in said
    camp = json.loads((out / "campaign.json").read_text())
    assert [r["name"] for r in camp["runs"]][2] == "crossing_short[seed=7]"
    assert all(r["status"] in ("passed", "failed") for r in camp["runs"])
    for name, mtime in first.items():
        run_dir = next(Path(r["run_dir"]) for r in camp["runs"] if r["name"] == name)
        assert (run_dir / "result.json").stat().st_mtime_ns == mtime
    shutil.rmtree(out / "runs")


def test_explain_prints_the_draws_and_bad_input_is_refused(tmp_path, capsys):
    tpl = _short_template(tmp_path)
    assert campaign_main([str(tpl), "--explain", "3"]) == 0
    said = capsys.readouterr().out
    drawn = load_template(tpl).explain(3)
    assert "crossing_short[seed=3]:" in said
    assert f"actors.add[0].speed: {drawn['actors.add[0].speed']}" in said
    assert campaign_main([str(tpl), "--runs", "0"]) == 2
    assert "--runs" in capsys.readouterr().err
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.yaml").write_text(textwrap.dedent("""\
        scenario: x
        world: substation
        """))
    assert campaign_main([str(plain), "--runs", "1"]) == 2
    assert "no scenario template" in capsys.readouterr().err
    # a draw that walks the worker through a transformer plinth: the template's error, found
    # before anything runs, with the seed
    through = tmp_path / "through.yaml"
    through.write_text(tpl.read_text().replace(
        "[[-9.5, -14.0], [-9.5, -9.5]]", "[[-7.0, -14.0], [-7.5, -9.5]]"))
    bad = [s for s in range(4) if load_template(through).explain(s)["actors.add[0].path"]
           == [[-7.0, -14.0], [-7.5, -9.5]]]
    assert bad
    assert campaign_main([str(through), "--runs", "4", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid world" in err and f"crossing_short[seed={bad[0]}]" in err
    assert "t1_plinth" in err and not (tmp_path / "o" / "runs").exists()


def test_rates_count_errors_and_skips_apart():
    runs = [{"template": "a", "world": "w", "status": s, "name": f"a[seed={i}]",
             "label": label}
            for i, (s, label) in enumerate((("passed", None), ("passed", None),
                                            ("failed", ("grasp_missed", "grasp of x missed")),
                                            ("error", ("infrastructure_error", "exit -9")),
                                            ("skipped", None)))]
    summary = summarize(runs)
    assert summary["failure_causes"] == [
        {"label": "grasp_missed", "count": 1, "runs": ["a[seed=2]"]},
        {"label": "infrastructure_error", "count": 1, "runs": ["a[seed=3]"]}]
    s = summary["per_template"]["a"]
    assert (s["passed"], s["judged"], s["errors"], s["skipped"]) == (2, 3, 1, 1)
    assert s["ci95"] == [0.2077, 0.9385] and s["text"].startswith("2/3 = 66.7 %")


def test_progress_counts_what_ended_and_estimates_the_rest(capsys):
    import time
    p = _Progress(total=10, done=4, jobs=2, t0=time.monotonic() - 60.0)
    line = p.ended({"status": "passed"})
    assert line.startswith("campaign: 5/10 ended (1 passed in this sitting), 2 running, about ")
    # one run ended in 60 s of this sitting: five more take about five minutes
    minutes = float(line.split("about ")[1].split(" min")[0])
    assert 4.9 <= minutes <= 6.0
    p.ended({"status": "failed"})
    last = p.ended({"status": "error"})
    assert "(1 error, 1 failed, 1 passed in this sitting)" in last and "7/10" in last
    assert capsys.readouterr().out.count("campaign: ") == 3
