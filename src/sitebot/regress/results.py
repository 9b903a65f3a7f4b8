"""Across runs (no ROS): flaky detection over repeats, baselines and regression flags, the
incident index and the dataset export."""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["flaky", "make_baseline", "compare_baseline", "THRESHOLDS", "incidents",
           "write_incidents", "export_dataset", "REPRO_TOLERANCES", "spread"]

#: metric -> relative change that counts as a regression (sign: the bad direction)
THRESHOLDS: Mapping[str, float] = {"mission_time_s": +0.20, "path_length_m": +0.10,
                                   "min_separation_m": -0.10}
#: absolute slack added to each threshold so that tiny baselines do not flag noise
ABS_SLACK: Mapping[str, float] = {"mission_time_s": 0.5, "path_length_m": 0.05,
                                  "min_separation_m": 0.02}
#: same scenario + seed: metrics agree within these (absolute) tolerances (docs/regress.md)
REPRO_TOLERANCES: Mapping[str, float] = {"min_separation_m": 0.10, "path_length_m": 0.15,
                                         "travel_m": 0.15, "mission_time_s": 1.0,
                                         "max_speed_mps": 0.05}


def _key(r: Mapping[str, Any]) -> str:
    return r["name"]


def flaky(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names whose verdict differs between repeats."""
    seen: dict[str, set[str]] = {}
    for r in results:
        if r["status"] != "skipped":
            seen.setdefault(_key(r), set()).add(r["status"])
    return sorted(k for k, v in seen.items() if len(v) > 1)


def spread(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per scenario with repeats: max - min of each reproducibility metric."""
    by: dict[str, list] = {}
    for r in results:
        if r.get("metrics"):
            by.setdefault(_key(r), []).append(r["metrics"])
    out = {}
    for k, ms in by.items():
        if len(ms) < 2:
            continue
        d = {}
        for metric in REPRO_TOLERANCES:
            vals = [m.get(metric) for m in ms if isinstance(m.get(metric), (int, float))]
            if len(vals) == len(ms):
                d[metric] = round(max(vals) - min(vals), 4)
        out[k] = d
    return out


def make_baseline(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean of the compared metrics per scenario name over passing runs."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in results:
        if r["status"] != "passed":
            continue
        for metric in THRESHOLDS:
            v = r.get("metrics", {}).get(metric)
            if isinstance(v, (int, float)) and math.isfinite(v):
                acc.setdefault(_key(r), {}).setdefault(metric, []).append(float(v))
    return {"version": 1, "thresholds": dict(THRESHOLDS),
            "scenarios": {k: {m: round(sum(v) / len(v), 4) for m, v in d.items()}
                          for k, d in sorted(acc.items())}}


def compare_baseline(results: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any],
                     thresholds: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Regressions: metrics worse than the baseline by more than their threshold."""
    th = dict(THRESHOLDS)
    th.update(baseline.get("thresholds", {}))
    th.update(thresholds or {})
    out = []
    for r in results:
        base = baseline.get("scenarios", {}).get(_key(r))
        if not base or r["status"] == "skipped":
            continue
        for metric, b in base.items():
            if metric not in th:
                continue
            v = r.get("metrics", {}).get(metric)
            if not isinstance(v, (int, float)):
                out.append({"name": r["name"], "repeat": r.get("repeat", 0), "metric": metric,
                            "baseline": b, "value": v, "change": math.nan,
                            "threshold": th[metric]})
                continue
            t = th[metric]
            change = (v - b) / abs(b) if b else (math.inf if v != b else 0.0)
            slack = ABS_SLACK.get(metric, 0.0)
            worse = (v > b * (1 + t) + slack) if t > 0 else (v < b * (1 + t) - slack)
            if worse:
                out.append({"name": r["name"], "repeat": r.get("repeat", 0), "metric": metric,
                            "baseline": b, "value": v, "change": change, "threshold": t})
    return out


# ---------------------------------------------------------------------------- incidents
def incidents(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Safety events, injected faults, reset answers and failed criteria of every run."""
    rows: list[dict[str, Any]] = []
    for r in results:
        run = r["name"] + (f"#{r['repeat']}" if r.get("repeat") else "")
        base = {"run": run, "scenario": r.get("scenario", r["name"]), "run_dir": r.get("run_dir"),
                "bag": r.get("bag", ""), "verdict": r["status"], "label": ""}
        m = r.get("metrics", {})
        prev = "NORMAL"
        for seg in m.get("safety_timeline", []):
            lvl = seg["level"]
            if lvl != "NORMAL" and lvl != prev and seg["t0"] >= 1.0:
                rows.append({**base, "t": seg["t0"], "kind": f"safety_{lvl.lower()}",
                             "detail": ", ".join(seg["reasons"])})
            prev = lvl
        for e in r.get("events", []):
            if e.get("kind") in ("fault", "sim_fault") and e.get("phase", "start") == "start":
                rows.append({**base, "t": e.get("t"), "kind": "fault",
                             "detail": json.dumps({k: v for k, v in e.items()
                                                   if k not in ("t", "kind")})})
        for c in r.get("checks", []):
            if not c["ok"]:
                rows.append({**base, "t": None, "kind": "failure",
                             "detail": f"{c['name']}: {c['value']} (limit {c['limit']})"})
        if r["status"] == "error":
            rows.append({**base, "t": None, "kind": "error", "detail": r.get("reason", "")})
    return rows


def write_incidents(rows: Sequence[Mapping[str, Any]], out_dir: Path,
                    previous: Path | None = None) -> tuple[Path, Path]:
    """``incidents.json`` and ``incidents.csv`` (label column for people to fill); labels
    already given in ``previous`` (a CSV of the same form) are kept for matching rows."""
    labels: dict[tuple, str] = {}
    if previous is not None and previous.is_file():
        with open(previous, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("label"):
                    labels[(row["run"], row["kind"], row["t"], row["detail"])] = row["label"]
    fields = ["run", "scenario", "t", "kind", "detail", "verdict", "label", "bag", "run_dir"]
    out = []
    for r in rows:
        r = dict(r)
        t = "" if r.get("t") is None else f"{float(r['t']):.3f}"
        r["label"] = labels.get((r["run"], r["kind"], t, r["detail"]), r.get("label", ""))
        r["t"] = t
        out.append(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    pj, pc = out_dir / "incidents.json", out_dir / "incidents.csv"
    pj.write_text(json.dumps(out, indent=1))
    with open(pc, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(out)
    return pj, pc


def export_dataset(results: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                   dest: Path) -> Path:
    """Copy every run's bag, metrics and audit log to ``dest/runs/<run>/`` and write
    ``dest/labels.jsonl`` (one line per run: scenario, seed, variant, verdict, metrics, its
    incidents with labels, paths relative to ``dest``)."""
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in results:
        if r["status"] == "skipped" or not r.get("bag"):
            continue
        run = r["name"] + (f"#{r['repeat']}" if r.get("repeat") else "")
        safe = "".join(ch if ch.isalnum() or ch in "_-=." else "_" for ch in run)
        d = dest / "runs" / safe
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        shutil.copytree(r["bag"], d / "bag")
        for name in ("metrics.json", "safety_audit.jsonl", "result.json"):
            src = Path(r["run_dir"]) / name
            if src.is_file():
                shutil.copy2(src, d / name)
        inc = [dict(x) for x in rows if x["run"] == run]
        lines.append({"run": run, "scenario": r.get("scenario"), "seed": r.get("seed"),
                      "variant": r.get("variant", {}), "verdict": r["status"],
                      "bag": str((d / "bag").relative_to(dest)),
                      "metrics": {k: v for k, v in r.get("metrics", {}).items()
                                  if k != "safety_timeline"},
                      "safety_timeline": r.get("metrics", {}).get("safety_timeline", []),
                      "incidents": inc})
    p = dest / "labels.jsonl"
    p.write_text("".join(json.dumps(x, default=str) + "\n" for x in lines))
    return p
