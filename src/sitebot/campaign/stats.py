"""Statistics of campaign outcomes (no ROS): success rates with confidence, and paired
comparisons of two campaigns run on the same seeds.

* :func:`wilson` — the Wilson score interval of a binomial proportion: unlike the normal
  approximation it stays inside [0, 1] and is usable at 0 or n successes and small n
  (Wilson 1927; Brown, Cai and DasGupta 2001 recommend it for n < 40 and beyond).
* :func:`mcnemar_exact` — the exact McNemar test of paired outcomes: under "no change",
  each discordant pair (a seed that passed in one campaign and failed in the other) is a
  fair coin, so the number of seeds that went from pass to fail is Binomial(b + c, 1/2).
  One-sided ("did the candidate get worse?") and two-sided p-values.
* :func:`fisher_exact` — Fisher's exact test of two unpaired success counts, for campaigns
  that were not run on the same seeds.

scipy's exact binomial and hypergeometric tests do the arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _st

__all__ = ["Rate", "wilson", "Paired", "mcnemar_exact", "fisher_exact"]


@dataclass(frozen=True)
class Rate:
    """``k`` successes in ``n`` runs, with the Wilson interval at ``confidence``."""
    k: int
    n: int
    low: float
    high: float
    confidence: float

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan

    def __str__(self) -> str:
        if not self.n:
            return "no runs"
        return (f"{self.k}/{self.n} = {100 * self.rate:.1f} % "
                f"({100 * self.confidence:g} % CI {100 * self.low:.1f}-{100 * self.high:.1f} %)")


def wilson(k: int, n: int, confidence: float = 0.95) -> Rate:
    """The Wilson score interval of ``k`` successes in ``n`` trials."""
    if not (isinstance(k, int) and isinstance(n, int)) or n < 0 or not 0 <= k <= n:
        raise ValueError(f"expected 0 <= successes <= runs, got {k} of {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return Rate(0, 0, 0.0, 1.0, confidence)
    z = float(_st.norm.ppf(0.5 + confidence / 2.0))
    p = k / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    # at k = 0 and k = n the bound is exact; clamp only rounding
    return Rate(k, n, max(0.0, mid - half) if k else 0.0,
                min(1.0, mid + half) if k < n else 1.0, confidence)


@dataclass(frozen=True)
class Paired:
    """Paired outcomes of a base and a candidate campaign over the same seeds."""
    both_passed: int
    worse: int            # passed in the base, failed in the candidate
    better: int           # failed in the base, passed in the candidate
    both_failed: int
    p_worse: float        # one-sided: the candidate is worse
    p_two_sided: float

    @property
    def n(self) -> int:
        return self.both_passed + self.worse + self.better + self.both_failed


def mcnemar_exact(base: list[bool], candidate: list[bool]) -> Paired:
    """The exact McNemar test of paired pass/fail outcomes (same seeds, same order)."""
    if len(base) != len(candidate):
        raise ValueError(f"paired outcomes need the same runs: {len(base)} base, "
                         f"{len(candidate)} candidate")
    a = sum(1 for x, y in zip(base, candidate) if x and y)
    b = sum(1 for x, y in zip(base, candidate) if x and not y)
    c = sum(1 for x, y in zip(base, candidate) if not x and y)
    d = len(base) - a - b - c
    if b + c == 0:
        return Paired(a, b, c, d, 1.0, 1.0)
    worse = _st.binomtest(b, b + c, 0.5, alternative="greater").pvalue
    two = _st.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    return Paired(a, b, c, d, float(worse), float(two))


def fisher_exact(k_base: int, n_base: int, k_cand: int, n_cand: int) -> float:
    """One-sided p-value that the candidate's success rate is below the base's (Fisher's
    exact test on the 2x2 table of successes and failures)."""
    for k, n in ((k_base, n_base), (k_cand, n_cand)):
        if n < 0 or not 0 <= k <= n:
            raise ValueError(f"expected 0 <= successes <= runs, got {k} of {n}")
    table = [[k_base, n_base - k_base], [k_cand, n_cand - k_cand]]
    return float(_st.fisher_exact(table, alternative="greater").pvalue)
