"""Command checks and limits: input validation, per-mode limits, hold-to-run, acceleration
limits, and applying a verdict to a command.

* :class:`CommandFilter` drops (returns a reason) a non-finite or absurd command, a stamp
  equal to the previous accepted one (duplicate), older (time going backwards), older than
  ``command_max_age_s`` or ahead of ``now`` by more than ``command_max_future_s``.
* :class:`HoldToRun`: in manual mode motion needs the deadman flag to keep arriving (a
  command with ``deadman=True`` or :meth:`HoldToRun.feed`) within ``deadman_timeout_s``.
* :func:`mode_verdict`: the mode's velocity limits (and the hold-to-run stop).
* :func:`apply_verdict`: scales v and w by one factor (keeping the curvature) to the
  verdict's limits; zero at PROTECTIVE_STOP or worse; a linear limit of 0 below
  PROTECTIVE_STOP leaves turning in place (|w| clipped).
* :func:`limit_acceleration`: |v| and |w| may rise by at most ``acc * dt`` from the
  reference speed (one factor for both, so the curvature is kept); slowing down is never
  limited.
"""
from __future__ import annotations

import math

from sitebot.safety.config import ModeLimits, SafetyConfig
from sitebot.safety.types import BaseCommand, Cause, Verdict
from sitebot.types import Mode, SafetyLevel

__all__ = ["CommandFilter", "HoldToRun", "mode_verdict", "apply_verdict",
           "limit_acceleration", "REJECT_REASONS"]

#: reasons :meth:`CommandFilter.check` may give
REJECT_REASONS = ("non_finite", "absurd", "duplicate_stamp", "stamp_backwards", "stale",
                  "future", "not_a_command")


class CommandFilter:
    """Drops bad commands; remembers the last accepted stamp."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.last_stamp_s: float | None = None

    def check(self, cmd: BaseCommand, now: float) -> str | None:
        """None when ``cmd`` may pass on to the rules; else the reason (one of
        :data:`REJECT_REASONS`) with nothing remembered."""
        if not isinstance(cmd, BaseCommand):
            return "not_a_command"
        cfg = self.config
        try:
            v, w, t = float(cmd.v_mps), float(cmd.w_radps), float(cmd.stamp_s)
        except (TypeError, ValueError):
            return "non_finite"
        if not (math.isfinite(v) and math.isfinite(w) and math.isfinite(t)):
            return "non_finite"
        if abs(v) > cfg.absurd_linear_mps or abs(w) > cfg.absurd_angular_radps:
            return "absurd"
        if self.last_stamp_s is not None:
            if t == self.last_stamp_s:
                return "duplicate_stamp"
            if t < self.last_stamp_s:
                return "stamp_backwards"
        if now - t > cfg.command_max_age_s:
            return "stale"
        if t - now > cfg.command_max_future_s:
            return "future"
        self.last_stamp_s = t
        return None

    def reset(self) -> None:
        self.last_stamp_s = None


class HoldToRun:
    """The deadman (enabling switch) of manual mode."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = float(timeout_s)     # [s]
        self.last_held_s: float | None = None

    def feed(self, pressed: bool, now: float) -> None:
        """The switch's state at ``now``; released forgets the hold at once."""
        if pressed and math.isfinite(now):
            self.last_held_s = now
        elif not pressed:
            self.last_held_s = None

    def held(self, now: float) -> bool:
        """True when the switch was seen held within ``timeout_s`` before ``now``."""
        t = self.last_held_s
        return t is not None and 0.0 <= now - t <= self.timeout_s

    def reset(self) -> None:
        self.last_held_s = None


def mode_verdict(mode: Mode, limits: ModeLimits, hold: HoldToRun | None, now: float
                 ) -> Verdict:
    """The mode's limits; in MANUAL without a held deadman: PROTECTIVE_STOP
    (``deadman_released``)."""
    if mode is Mode.MANUAL and (hold is None or not hold.held(now)):
        return Verdict(SafetyLevel.PROTECTIVE_STOP, 0.0, 0.0, (Cause(
            "deadman_released", SafetyLevel.PROTECTIVE_STOP,
            "manual mode: hold-to-run switch not held", "mode"),))
    return Verdict(SafetyLevel.NORMAL, limits.max_linear_mps, limits.max_angular_radps)


def apply_verdict(v_mps: float, w_radps: float, verdict: Verdict) -> tuple[float, float]:
    """The command (v [m/s], w [rad/s]) within the verdict's limits (see module doc)."""
    if verdict.level >= SafetyLevel.PROTECTIVE_STOP:
        return 0.0, 0.0
    lv = max(verdict.speed_limit_mps, 0.0) if verdict.speed_limit_mps == \
        verdict.speed_limit_mps else 0.0
    lw = max(verdict.turn_limit_radps, 0.0) if verdict.turn_limit_radps == \
        verdict.turn_limit_radps else 0.0
    if lv == 0.0:
        # no translation allowed: turning in place stays (the footprint is a circle)
        return 0.0, max(-lw, min(lw, w_radps))
    s = 1.0
    av, aw = abs(v_mps), abs(w_radps)
    if av > lv:
        s = lv / av
    if aw * s > lw:
        s = lw / aw
    v, w = v_mps * s, w_radps * s
    # guard against rounding up past a limit
    if abs(v) > lv:
        v = math.copysign(lv, v)
    if abs(w) > lw:
        w = math.copysign(lw, w)
    return v, w


def limit_acceleration(v_mps: float, w_radps: float, v_ref: float, w_ref: float, dt_s: float,
                       limits: ModeLimits) -> tuple[float, float]:
    """(v, w) with the rise of |v| and |w| from (v_ref, w_ref) bounded by ``acc * dt``.

    A sign change counts from zero (slowing to zero is free).  One factor scales both, so
    the curvature is kept; the result is never faster than the input.
    """
    dt = max(dt_s, 0.0)

    def cap(x: float, ref: float, acc: float) -> float:
        if x == 0.0:
            return math.inf
        base = abs(ref) if (ref * x > 0.0) else 0.0
        allowed = base + acc * dt
        return 1.0 if abs(x) <= allowed else allowed / abs(x)

    s = min(cap(v_mps, v_ref, limits.max_linear_acc_mps2),
            cap(w_radps, w_ref, limits.max_angular_acc_radps2), 1.0)
    return v_mps * s, w_radps * s
