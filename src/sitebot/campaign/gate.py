"""The release gate (no ROS): a candidate campaign against a base campaign run on the same
seeds (``sitebot campaign compare BASE CANDIDATE``).

The gate fails when

* any run of the candidate violated safety: a contact with a person, a separation below
  the limit, a keep-out excursion, a collision, speeding near people or in a slow zone
  (:data:`SAFETY_CHECKS`; zero tolerance, whatever the success rates), or
* a template's success dropped significantly: the exact McNemar test on the seeds both
  campaigns ran (one-sided, at ``alpha``), which uses only the seeds whose outcome flipped.

Runs without a mission verdict (errors, skips) in either campaign are left out of the
pairing and listed.  The comparison lists every flipped seed with both outcomes and the
candidate's reason, so a regression comes with the runs to replay.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from sitebot.campaign.stats import mcnemar_exact

__all__ = ["SAFETY_CHECKS", "safety_violations", "unjudged_safety", "compare"]

#: the regression checks that are safety figures (sitebot.regress.metrics)
SAFETY_CHECKS = ("no_contact_with_people", "min_separation", "no_keep_out", "no_collision",
                 "max_speed_near_people", "slow_zones")
_JUDGED = ("passed", "failed")


def safety_violations(checks: Iterable[Mapping[str, Any]]) -> list[str]:
    """The safety checks (:data:`SAFETY_CHECKS`) a run failed."""
    return [c["name"] for c in checks if c.get("name") in SAFETY_CHECKS and not c.get("ok")]


def unjudged_safety(criteria: Any) -> list[str]:
    """What a run's criteria (``sitebot.regress.scenario.Criteria``) leave unjudged of the
    safety a campaign holds every run to: contact with people (``min_separation``),
    speed in slow zones (``slow_zones``), keep-out zones and collisions.  A campaign refuses
    a template that does not judge all four: zero tolerance needs every run measured."""
    missing = []
    if criteria.min_separation is None:
        missing.append("min_separation (e.g. 0.0: no contact with people)")
    if not criteria.slow_zones:
        missing.append("slow_zones: true")
    if not criteria.no_keep_out:
        missing.append("no_keep_out: true")
    if not criteria.no_collision:
        missing.append("no_collision: true")
    return missing


def _by_key(runs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], Mapping[str, Any]]:
    return {(str(r["template"]), int(r["seed"])): r for r in runs}


def compare(base: Iterable[Mapping[str, Any]], candidate: Iterable[Mapping[str, Any]],
            alpha: float = 0.05) -> dict[str, Any]:
    """The gate's verdict on two campaigns' runs (``campaign.json`` ``runs``: template,
    seed, status, reason, safety_violations)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    b, c = _by_key(base), _by_key(candidate)
    templates = sorted({t for t, _ in b} | {t for t, _ in c})
    per: dict[str, Any] = {}
    reasons: list[str] = []
    for t in templates:
        seeds = sorted({s for tt, s in b if tt == t} & {s for tt, s in c if tt == t})
        paired = [s for s in seeds if b[(t, s)]["status"] in _JUDGED
                  and c[(t, s)]["status"] in _JUDGED]
        outcome = mcnemar_exact([b[(t, s)]["status"] == "passed" for s in paired],
                                [c[(t, s)]["status"] == "passed" for s in paired])

        def flips(frm: str, to: str) -> list[dict]:
            return [{"seed": s, "base": frm, "candidate": to,
                     "reason": c[(t, s)].get("reason", ""),
                     "run_dir": c[(t, s)].get("run_dir")} for s in paired
                    if b[(t, s)]["status"] == frm and c[(t, s)]["status"] == to]
        drop = outcome.worse > outcome.better and outcome.p_worse < alpha
        per[t] = {"paired": len(paired),
                  "base_passed": outcome.both_passed + outcome.worse,
                  "candidate_passed": outcome.both_passed + outcome.better,
                  "worse": flips("passed", "failed"), "better": flips("failed", "passed"),
                  "p_worse": round(outcome.p_worse, 6),
                  "unpaired": [s for s in seeds if s not in paired]
                  + sorted({s for tt, s in b if tt == t} ^ {s for tt, s in c if tt == t}),
                  "significant_drop": drop}
        if drop:
            reasons.append(f"{t}: {outcome.worse} seed(s) went from passed to failed and "
                           f"{outcome.better} the other way (one-sided exact McNemar "
                           f"p = {outcome.p_worse:.4f} < {alpha:g})")
    unsafe = [{"template": t, "seed": s, "violations": list(r.get("safety_violations") or [])}
              for (t, s), r in sorted(c.items()) if r.get("safety_violations")]
    if unsafe:
        reasons.append(f"{len(unsafe)} candidate run(s) violated safety: " + ", ".join(
            f"{u['template']}[seed={u['seed']}] ({', '.join(u['violations'])})"
            for u in unsafe[:10]))
    return {"passed": not reasons, "reasons": reasons, "alpha": alpha, "per_template": per,
            "safety_violations": unsafe}
