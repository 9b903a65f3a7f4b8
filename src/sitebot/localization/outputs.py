"""What the localization node publishes, computed from the filter (no ROS here).

* :func:`pose_covariance`, :func:`twist_covariance`: the 6x6 covariances of
  ``odometry/filtered`` from the planar filter's 6x6 state covariance;
* :func:`map_to_odom`: the map -> odom transform from the filtered pose and the odometry
  pose of the same stamp;
* :func:`status_fields`: the ``localization/status`` numbers of a :class:`Health`;
* :func:`filter_diagnostics`: the /diagnostics statuses: the filter, and one per input
  (accepted, NIS mean against its bound, rejections by reason).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.localization.ekf import STATE_DEAD_RECKONING, Ekf, Health
from sitebot.localization.inputs import POSE_X_Y_YAW, TWIST_VX_WZ
from sitebot.localization.models import IB, IV, IW, IX, IY, IYAW
from sitebot.types import Diagnostic, DiagnosticLevel, Pose2D, se2_compose, se2_inverse

__all__ = ["KNOWN_VARIANCE", "pose_covariance", "twist_covariance", "map_to_odom",
           "status_fields", "filter_diagnostics"]

#: variance published for what a planar filter takes as known: z, roll and pitch of the
#: pose, lateral, vertical and roll/pitch rates of the twist
KNOWN_VARIANCE = 1e-9


def pose_covariance(P: np.ndarray) -> list[float]:
    """Row-major 6x6 covariance of (x, y, z, roll, pitch, yaw) from the state covariance."""
    k = KNOWN_VARIANCE
    pc = np.diag([0.0, 0.0, k, k, k, 0.0])
    state = (IX, IY, IYAW)
    pc[np.ix_(POSE_X_Y_YAW, POSE_X_Y_YAW)] = np.asarray(P)[np.ix_(state, state)]
    return pc.reshape(36).tolist()


def twist_covariance(P: np.ndarray) -> list[float]:
    """Row-major 6x6 covariance of the body twist (vx, vy, vz, wx, wy, wz): vx and wz from
    the state's speed and yaw rate."""
    k = KNOWN_VARIANCE
    tc = np.diag([0.0, k, k, k, k, 0.0])
    state = (IV, IW)
    tc[np.ix_(TWIST_VX_WZ, TWIST_VX_WZ)] = np.asarray(P)[np.ix_(state, state)]
    return tc.reshape(36).tolist()


def map_to_odom(map_pose: Sequence[float], odom_pose: Sequence[float]) -> Pose2D:
    """map -> odom: the filtered map pose (+) the inverse of the odometry pose (same stamp)."""
    return se2_compose(map_pose, se2_inverse(odom_pose))


def status_fields(h: Health) -> dict[str, Any]:
    """The fields of sitebot_interfaces/LocalizationStatus but its state and header, from a
    :class:`Health` (an unknown NIS mean or bound, NaN, is published as 0)."""
    return dict(
        diverged=bool(h.diverged), position_std_m=float(h.position_std_m),
        yaw_std_rad=float(h.yaw_std_rad), seconds_since_fix=float(h.seconds_since_fix),
        nis_mean=float(h.nis_mean) if math.isfinite(h.nis_mean) else 0.0,
        nis_upper_bound=float(h.nis_upper_bound) if math.isfinite(h.nis_upper_bound) else 0.0,
        fixes_accepted=int(h.fixes_accepted), fixes_rejected=int(h.fixes_rejected),
        message=h.message)


def filter_diagnostics(ekf: Ekf, health: Health,
                       node_rejects: Mapping[str, Counter] | None = None) -> list[Diagnostic]:
    """The filter's status (ERROR when diverged, WARN when dead reckoning) and one status per
    input (WARN when its NIS window mean exceeds the bound); ``node_rejects``: rejections
    the node counted itself (unknown frames, malformed messages) per input."""
    cfg = ekf.config
    h = health
    level = DiagnosticLevel.ERROR if h.diverged else (
        DiagnosticLevel.WARN if h.state == STATE_DEAD_RECKONING else DiagnosticLevel.OK)
    out = [Diagnostic("filter", level, h.message, (
        ("position_std_m", f"{h.position_std_m:.4f}"), ("yaw_std_rad", f"{h.yaw_std_rad:.4f}"),
        ("gyro_bias_radps", f"{ekf.x[IB]:.5f}"),
        ("relocalizations", str(ekf.relocalizations))))]
    for name, st in ekf.stats.items():
        mean, bound = st.nis_mean(), st.nis_bound(cfg.nis_probability)
        inconsistent = len(st.nis) >= cfg.nis_min_samples and mean > bound
        values = [("accepted", str(st.accepted)), ("nis_mean", f"{mean:.3f}"),
                  ("nis_upper_bound", f"{bound:.3f}"), ("nis_samples", str(len(st.nis)))]
        values += [(f"rejected_{k}", str(v)) for k, v in sorted(st.rejected.items())]
        rejects = (node_rejects or {}).get(name, Counter())
        values += [(f"rejected_{k}", str(v)) for k, v in sorted(rejects.items())]
        out.append(Diagnostic(
            f"input {name}", DiagnosticLevel.WARN if inconsistent else DiagnosticLevel.OK,
            f"NIS mean {mean:.2f} (bound {bound:.2f})" if st.nis else "no updates",
            tuple(values)))
    return out
