"""``sitebot bench planner``: the planner's load time and per-instruction latency, printed.

  sitebot bench planner [--repeats 3] [--json OUT]

Load: import of the planner, the three site registries, the sentence-embedding model and
the embedding of every name (what a node does at start), measured in this fresh process.
Latency: every instruction of the evaluation set (tests/data/planner) planned once with
cold caches (first pass: queries not embedded before) and then --repeats more times; p50,
p95 and max per instruction.  Aims: load < 10 s, p95 < 50 ms once loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench planner", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    from sitebot.language.service import TaskPlanner, load_site
    from sitebot.tools.planner_eval import default_files, load_cases
    t_import = time.perf_counter() - t0
    planners = {}
    t1 = time.perf_counter()
    for w in ("substation", "construction", "datacentre"):
        planners[w] = TaskPlanner(load_site(w))
    t_sites = time.perf_counter() - t1
    t2 = time.perf_counter()
    ok = all(p.warm() for p in planners.values())
    t_warm = time.perf_counter() - t2
    load = time.perf_counter() - t0
    cases = load_cases(default_files())
    cases = [c for c in cases if c["site"] in planners]

    def run_pass() -> list[float]:
        out = []
        for c in cases:
            s = time.perf_counter()
            planners[c["site"]].plan(c["text"], c.get("role") or "operator")
            out.append(1e3 * (time.perf_counter() - s))
        return sorted(out)

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    cold = run_pass()
    warm: list[float] = []
    for _ in range(max(1, a.repeats)):
        warm += run_pass()
    warm.sort()
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"planner benchmark, {os.cpu_count()} CPUs, load average {load_avg:.1f}; "
          f"embeddings {'on' if ok else 'OFF (model did not load)'}")
    print(f"load: {load:.2f} s total (aim < 10 s) = import {t_import:.2f} s + 3 site "
          f"registries {t_sites:.2f} s + model and name embeddings {t_warm:.2f} s;  "
          f"load/aim {load / 10.0:.2f}")
    for label, xs in (("first pass (cold query cache)", cold),
                      (f"{a.repeats} repeat passes", warm)):
        print(f"latency, {label}: n={len(xs)}  p50 {pct(xs, .5):.2f} ms  p95 {pct(xs, .95):.2f} ms"
              f"  max {xs[-1]:.2f} ms  (aim p95 < 50 ms; p95/aim {pct(xs, .95) / 50:.2f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load_s": load, "import_s": t_import, "sites_s": t_sites,
                       "warm_s": t_warm, "cold_p50_ms": pct(cold, .5),
                       "cold_p95_ms": pct(cold, .95), "cold_max_ms": cold[-1],
                       "p50_ms": pct(warm, .5), "p95_ms": pct(warm, .95), "max_ms": warm[-1],
                       "load_average": load_avg}, f, indent=1)
    return 0
