"""Campaign statistics (sitebot.campaign.stats): Wilson intervals and exact tests, checked
against values worked out by hand."""
from __future__ import annotations

import math

import pytest

from sitebot.campaign.stats import fisher_exact, mcnemar_exact, wilson


@pytest.mark.parametrize("k, n, low, high", [
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (95, 100, 0.8882, 0.9785),
    (48, 50, 0.8654, 0.9889),
])
def test_wilson_intervals_match_the_closed_form(k, n, low, high):
    r = wilson(k, n)
    assert r.low == pytest.approx(low, abs=1e-4) and r.high == pytest.approx(high, abs=1e-4)
    assert r.low <= r.rate <= r.high


def test_wilson_edges_and_bad_counts():
    assert str(wilson(3, 4)).startswith("3/4 = 75.0 % (95 % CI")
    none = wilson(0, 0)
    assert (none.low, none.high) == (0.0, 1.0) and math.isnan(none.rate)
    assert wilson(5, 10, 0.99).high > wilson(5, 10, 0.95).high
    for k, n in ((5, 4), (-1, 3), (1, -1)):
        with pytest.raises(ValueError, match="successes"):
            wilson(k, n)
    with pytest.raises(ValueError, match="confidence"):
        wilson(1, 2, 1.0)


def test_mcnemar_counts_the_seeds_that_flipped():
    base = [True] * 12 + [False] * 3
    cand = [True] * 7 + [False] * 5 + [False] * 2 + [True]
    p = mcnemar_exact(base, cand)
    assert (p.both_passed, p.worse, p.better, p.both_failed) == (7, 5, 1, 2) and p.n == 15
    # P(X >= 5 | X ~ Bin(6, 1/2)) = 7/64; two-sided doubles it
    assert p.p_worse == pytest.approx(7 / 64) and p.p_two_sided == pytest.approx(14 / 64)
    five = mcnemar_exact([True] * 5, [False] * 5)
    assert five.p_worse == pytest.approx(1 / 32) and five.p_two_sided == pytest.approx(1 / 16)
    same = mcnemar_exact([True, False], [True, False])
    assert (same.p_worse, same.p_two_sided) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same runs"):
        mcnemar_exact([True], [True, False])


def test_fisher_one_sided_against_the_hypergeometric_tail():
    # 10/10 against 5/10: P(base successes = 10 | margins) = C(15,10) / C(20,10)
    assert fisher_exact(10, 10, 5, 10) == pytest.approx(3003 / 184756)
    assert fisher_exact(5, 10, 10, 10) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fisher_exact(11, 10, 5, 10)
