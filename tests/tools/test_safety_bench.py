"""The supervisor benchmark runs and prints its figures (timing is not asserted here:
``python -m sitebot.tools.safety_bench`` is the measurement)."""
from __future__ import annotations

from sitebot.tools import safety_bench as bench


def test_bench_prints_figures(capsys):
    assert bench.main(["--cycles", "30"]) == 0
    out = capsys.readouterr().out
    assert "360 beams, 10 people" in out and "median" in out and "p99" in out


def test_run_bench_returns_numbers():
    r = bench.run_bench(cycles=20, zones=False)
    assert r["median_ms"] > 0 and r["p99_ms"] >= r["median_ms"] and r["people"] == 10
