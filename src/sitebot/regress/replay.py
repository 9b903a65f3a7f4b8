"""Replaying a regression run and judging whether it reproduced (no ROS).

A run is determined by its scenario (file and name, with its seed and variant), the
stack's code and the pacing mode it ran in (lockstep or paced).  ``sitebot regress
--replay RUN_DIR`` runs it again from the ``result.json`` the run left and compares:
the verdict, and how far the robot's ground-truth trajectories diverged over the run
(``plot.json``: the downsampled ground truth every run writes).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

from sitebot.errors import SitebotError

__all__ = ["load_run", "trajectory_divergence", "compare_runs", "file_sha256",
           "REPRODUCED_FINAL_M"]

#: a replay reproduced when its verdict is the same and its final position is this close
REPRODUCED_FINAL_M = 0.05


def file_sha256(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``result.json`` of a run folder (SitebotError naming the folder if unusable)."""
    p = Path(run_dir) / "result.json"
    try:
        res = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise SitebotError(f"{p}: not a regression run's result ({e})") from None
    for key in ("file", "name"):
        if not res.get(key):
            raise SitebotError(f"{p}: no {key!r}: the run cannot be replayed")
    return res


def _truth(run_dir: Path) -> list[tuple[float, float, float]]:
    try:
        plot = json.loads((run_dir / "plot.json").read_text())
    except (OSError, ValueError):
        return []
    return [(float(t), float(x), float(y)) for t, x, y in plot.get("truth", [])]


def _at(series: Sequence[tuple[float, float, float]], t: float) -> tuple[float, float]:
    """Linear interpolation of (x, y) at time ``t`` (clamped to the series' ends)."""
    if t <= series[0][0]:
        return series[0][1], series[0][2]
    if t >= series[-1][0]:
        return series[-1][1], series[-1][2]
    lo, hi = 0, len(series) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if series[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    (t0, x0, y0), (t1, x1, y1) = series[lo], series[hi]
    f = 0.0 if t1 <= t0 else (t - t0) / (t1 - t0)
    return x0 + f * (x1 - x0), y0 + f * (y1 - y0)


def trajectory_divergence(a: Sequence[tuple[float, float, float]],
                          b: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    """How far two (t, x, y) ground-truth series diverged: the largest distance at the same
    simulation time (over the shorter run's span), the distance between their final
    positions, and the difference of their lengths in time."""
    if not a or not b:
        return {"max_m": math.nan, "final_m": math.nan, "duration_diff_s": math.nan}
    end = min(a[-1][0], b[-1][0])
    ts = sorted({t for t, _, _ in a if t <= end} | {t for t, _, _ in b if t <= end})
    worst = 0.0
    for t in ts:
        (xa, ya), (xb, yb) = _at(a, t), _at(b, t)
        worst = max(worst, math.hypot(xa - xb, ya - yb))
    final = math.hypot(a[-1][1] - b[-1][1], a[-1][2] - b[-1][2])
    return {"max_m": round(worst, 4), "final_m": round(final, 4),
            "duration_diff_s": round(abs(a[-1][0] - b[-1][0]), 3)}


def compare_runs(original: str | Path, replay: str | Path) -> dict[str, Any]:
    """Whether the replay reproduced the original: same verdict and final positions within
    :data:`REPRODUCED_FINAL_M`; with the divergence figures."""
    o, r = load_run(original), load_run(replay)
    div = trajectory_divergence(_truth(Path(original)), _truth(Path(replay)))
    same_verdict = o.get("status") == r.get("status")
    close = math.isfinite(div["final_m"]) and div["final_m"] <= REPRODUCED_FINAL_M
    return {"scenario": o["name"], "original": str(original), "replay": str(replay),
            "verdict": o.get("status"), "replay_verdict": r.get("status"),
            "same_verdict": same_verdict, "divergence": div,
            "reproduced": bool(same_verdict and close),
            "lockstep": bool(o.get("lockstep", False)),
            "scenario_changed": bool(o.get("scenario_sha256")) and
            o.get("scenario_sha256") != r.get("scenario_sha256")}
