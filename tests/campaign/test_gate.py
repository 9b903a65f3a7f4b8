"""The release gate (sitebot.campaign.gate and ``sitebot campaign compare``): a significant
drop on the same seeds or any safety violation fails it; flips are listed."""
from __future__ import annotations

import json

import pytest

from sitebot.apps.campaign import main as campaign_main
from sitebot.campaign.gate import SAFETY_CHECKS, compare, safety_violations


def _runs(template: str, statuses: list[str], unsafe: dict[int, list[str]] | None = None):
    return [{"template": template, "seed": s, "status": st, "reason": f"r{s}" if st != "passed"
             else "", "run_dir": f"/runs/{template}[seed={s}]",
             "safety_violations": (unsafe or {}).get(s, [])} for s, st in enumerate(statuses)]


def test_a_significant_drop_fails_and_names_the_flipped_seeds():
    base = _runs("fetch", ["passed"] * 20)
    cand = _runs("fetch", ["passed"] * 14 + ["failed"] * 6)
    v = compare(base, cand)
    d = v["per_template"]["fetch"]
    assert not v["passed"] and d["significant_drop"]
    assert (d["base_passed"], d["candidate_passed"], d["paired"]) == (20, 14, 20)
    assert [f["seed"] for f in d["worse"]] == list(range(14, 20)) and d["better"] == []
    assert d["p_worse"] == pytest.approx(1 / 64, abs=1e-6)        # 6 of 6 flips
    assert d["worse"][0]["reason"] == "r14" and "fetch" in v["reasons"][0]


def test_noise_that_is_not_significant_passes():
    base = _runs("patrol", ["passed"] * 18 + ["failed"] * 2)
    cand = _runs("patrol", ["passed"] * 16 + ["failed", "failed", "passed", "passed"])
    v = compare(base, cand)
    d = v["per_template"]["patrol"]
    assert v["passed"] and (len(d["worse"]), len(d["better"])) == (2, 2)
    assert d["p_worse"] == pytest.approx(11 / 16)   # P(X >= 2 | Bin(4, 1/2))


def test_any_safety_violation_of_the_candidate_fails_even_when_rates_improve():
    base = _runs("crossing", ["failed"] * 5 + ["passed"] * 5)
    cand = _runs("crossing", ["passed"] * 10, unsafe={3: ["no_contact_with_people"]})
    v = compare(base, cand)
    assert not v["passed"] and v["safety_violations"] == [
        {"template": "crossing", "seed": 3, "violations": ["no_contact_with_people"]}]
    assert "violated safety" in v["reasons"][0]


def test_runs_without_a_verdict_or_a_partner_are_left_out_and_listed():
    base = _runs("valve", ["passed", "error", "passed", "passed"])
    cand = _runs("valve", ["passed", "passed", "skipped"])
    d = compare(base, cand)["per_template"]["valve"]
    assert d["paired"] == 1 and sorted(d["unpaired"]) == [1, 2, 3]


def test_safety_violations_reads_the_failed_safety_checks():
    checks = [{"name": "no_contact_with_people", "ok": False}, {"name": "mission", "ok": False},
              {"name": "slow_zones", "ok": True}, {"name": "no_keep_out", "ok": False}]
    assert safety_violations(checks) == ["no_contact_with_people", "no_keep_out"]
    assert set(SAFETY_CHECKS) >= {"no_contact_with_people", "no_keep_out", "slow_zones"}


def test_the_command_exits_by_the_gate_and_refuses_what_is_not_a_campaign(tmp_path, capsys):
    for name, runs in (("base", _runs("fetch", ["passed"] * 20)),
                       ("good", _runs("fetch", ["passed"] * 20)),
                       ("bad", _runs("fetch", ["passed"] * 12 + ["failed"] * 8))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "campaign.json").write_text(json.dumps({"runs": runs}))
    assert campaign_main(["compare", str(tmp_path / "base"), str(tmp_path / "good")]) == 0
    assert "release gate: PASSED" in capsys.readouterr().out
    out_json = tmp_path / "gate.json"
    assert campaign_main(["compare", str(tmp_path / "base"), str(tmp_path / "bad"),
                          "--json", str(out_json)]) == 1
    said = capsys.readouterr().out
    assert "SIGNIFICANT DROP" in said and "seed 12: passed -> failed: r12" in said
    assert "sitebot regress --replay /runs/fetch[seed=12]" in said
    assert json.loads(out_json.read_text())["passed"] is False
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert campaign_main(["compare", str(tmp_path / "junk.json"), str(tmp_path / "bad")]) == 2
    assert "not a campaign result" in capsys.readouterr().err


def test_a_campaign_refuses_a_template_that_leaves_safety_unjudged(tmp_path, capsys):
    from sitebot.apps.campaign import main as campaign_main
    from sitebot.campaign.gate import unjudged_safety
    from sitebot.regress.scenario import Criteria
    assert unjudged_safety(Criteria(min_separation=0.0, slow_zones=True)) == []
    assert unjudged_safety(Criteria()) == ["min_separation (e.g. 0.0: no contact with people)",
                                           "slow_zones: true"]
    assert len(unjudged_safety(Criteria(no_keep_out=False, no_collision=False))) == 4
    t = tmp_path / "t.yaml"
    t.write_text("scenario: lax\nworld: substation\nrobot: {start: [-12.5, -12.0, 0.0]}\n"
                 "duration: 3\nmission: {kind: none, drive: [[0.5, 0.3, 0.0]]}\n"
                 "criteria: {min_travel: 0.1}\nrandom:\n  duration: {uniform: [2, 3]}\n")
    assert campaign_main([str(t), "--runs", "2", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "lax[seed=0]" in err and "add to criteria: min_separation" in err
    assert not (tmp_path / "c" / "runs").exists()          # nothing ran
