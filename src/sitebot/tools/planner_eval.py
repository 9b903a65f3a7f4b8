"""``sitebot eval planner``: the planner against the labelled instruction set.

  sitebot eval planner [FILES.jsonl ...] [--json OUT] [--min-accuracy 0.97] [--verbose]

Each line: ``{"site": <world name or site file>, "text", "role", "category",
"expect": {"status", "steps"}}``.  An answer is *exact* when its status equals the
expected one and, for ``ok``, its steps equal the expected steps (skill, argument names and
values, order).  Prints exact-plan accuracy, precision and recall of clarify and refuse,
and accuracy per category; the exit code is 1 when accuracy is below --min-accuracy.
Default files: tests/data/planner/*.jsonl of the source tree.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from sitebot.language.service import TaskPlanner, load_site

__all__ = ["main", "evaluate", "load_cases", "default_files"]


def default_files() -> list[Path]:
    root = Path(__file__).resolve().parents[3] / "tests" / "data" / "planner"
    return sorted(root.glob("*.jsonl"))


def load_cases(files: Iterable[Path]) -> list[dict[str, Any]]:
    """Every case of *files*; raises ValueError naming file and line of a bad one."""
    cases = []
    for f in files:
        for n, line in enumerate(Path(f).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                c = json.loads(line)
                assert isinstance(c["text"], str) and c["expect"]["status"] in (
                    "ok", "clarify", "refuse")
            except Exception as e:  # noqa: BLE001
                raise ValueError(f"{f}:{n}: bad case ({type(e).__name__}: {e})") from None
            c["_where"] = f"{Path(f).name}:{n}"
            c["_base"] = str(Path(f).resolve().parent)
            cases.append(c)
    return cases


def evaluate(cases: list[dict[str, Any]], base: Path | None = None,
             planners: dict[str, TaskPlanner] | None = None) -> dict[str, Any]:
    """Run every case; figures and the failures."""
    planners = {} if planners is None else planners
    rows = []
    lat = []
    for c in cases:
        site = c.get("site", "substation")
        if site not in planners:
            p = Path(site)
            b = Path(c["_base"]) if c.get("_base") else base
            if b is not None and not p.is_absolute() and (b / site).is_file():
                p = b / site
            planners[site] = TaskPlanner(load_site(p if p.is_file() else site))
        t0 = time.perf_counter()
        ans = planners[site].plan(c["text"], c.get("role") or "operator")
        lat.append(time.perf_counter() - t0)
        exp = c["expect"]
        got = ans.to_dict()
        exact = got["status"] == exp["status"] and (
            exp["status"] != "ok" or got["steps"] == exp.get("steps", []))
        rows.append({"where": c["_where"], "site": site, "category": c.get("category", ""),
                     "text": c["text"], "role": c.get("role") or "operator",
                     "expected": exp, "got": got, "exact": exact})
    n = len(rows)
    res: dict[str, Any] = {"cases": n, "exact": sum(r["exact"] for r in rows)}
    res["accuracy"] = res["exact"] / n if n else 0.0
    for st in ("clarify", "refuse", "ok"):
        tp = sum(r["got"]["status"] == st and r["expected"]["status"] == st for r in rows)
        pred = sum(r["got"]["status"] == st for r in rows)
        true = sum(r["expected"]["status"] == st for r in rows)
        res[st] = {"precision": tp / pred if pred else 1.0, "recall": tp / true if true else 1.0,
                   "predicted": pred, "expected": true}
    cats: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        cats[r["category"]].append(r["exact"])
    res["categories"] = {k: {"n": len(v), "exact": sum(v)} for k, v in sorted(cats.items())}
    res["failures"] = [r for r in rows if not r["exact"]]
    lat.sort()
    res["latency_ms"] = {"p50": 1e3 * lat[len(lat) // 2] if lat else 0.0,
                         "p95": 1e3 * lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot eval planner", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="evaluation files (default: the shipped set)")
    ap.add_argument("--json", help="write all figures and failures to this file")
    ap.add_argument("--min-accuracy", type=float, default=0.0,
                    help="exit 1 if exact-plan accuracy is below this (e.g. 0.97)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every failure")
    a = ap.parse_args(argv)
    files = [Path(f) for f in a.files] or default_files()
    if not files:
        print("sitebot eval planner: no evaluation files", file=sys.stderr)
        return 2
    cases = load_cases(files)
    t0 = time.perf_counter()
    res = evaluate(cases, base=files[0].parent)
    wall = time.perf_counter() - t0
    print(f"planner evaluation: {res['cases']} instructions from {len(files)} file(s), "
          f"{wall:.1f} s (model load included)")
    print(f"exact-plan accuracy: {res['exact']}/{res['cases']} = {100 * res['accuracy']:.1f} %"
          f"   (aim 97 %)")
    for st in ("clarify", "refuse", "ok"):
        m = res[st]
        print(f"{st:<8} precision {100 * m['precision']:5.1f} %  recall {100 * m['recall']:5.1f} %"
              f"  (predicted {m['predicted']}, expected {m['expected']})")
    print("per category:")
    for k, v in res["categories"].items():
        print(f"  {k:<18} {v['exact']:>3}/{v['n']:<3} {100 * v['exact'] / v['n']:5.1f} %")
    print(f"latency per instruction: p50 {res['latency_ms']['p50']:.1f} ms, "
          f"p95 {res['latency_ms']['p95']:.1f} ms")
    fails = res["failures"]
    if fails:
        print(f"failures ({len(fails)}):")
        for r in fails if a.verbose else fails[:10]:
            g = r["got"]
            detail = (" ".join(f"{s['skill']}({','.join(s['args'].values())})" for s in g["steps"])
                      or g["question"] or g["reason"])
            print(f"  {r['where']} [{r['role']}] {r['text']!r}: expected "
                  f"{r['expected']['status']}, got {g['status']}: {detail[:160]}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 1 if res["accuracy"] < a.min_accuracy else 0
