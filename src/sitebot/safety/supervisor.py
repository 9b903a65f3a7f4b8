"""The supervisor: the orchestrator over the safety parts (``docs/safety.md``).

Every cycle it asks each part for a :class:`~sitebot.safety.types.Verdict` and combines
them (the most restrictive wins): the emergency stop, the data sources' watchdogs, the mode
(and hold-to-run), speed and separation monitoring, the zones, localization health and the
battery.  No ROS; every method takes the time ``now`` [s] (the node's clock, sim time in
simulation).

Inputs (the node converts messages and calls these)::

    on_scan(ranges, angle_min_rad, angle_increment_rad, now, *, stamp_s=None,
            range_min_m=0.0, range_max_m=inf, laser=None)   # laser: SensorPose base<-laser
    on_people(people, now, *, stamp_s=None, frame="base")   # list[Obstacle]; "map" uses the pose
    on_odometry(v_mps, w_radps, now, *, stamp_s=None)       # body twist
    on_localization(state, now, *, cov_trace_m2=0.0, nis=None)   # RobotState in map
    on_battery(fraction, now, *, stamp_s=None)
    on_heartbeat(node, now, *, stamp_s=None)
    trigger_estop(source, now); set_estop_input(asserted, now, source=...);
    request_reset(now) -> (ok, reason)
    set_mode(mode, now) -> (ok, reason); set_role(role, now); on_deadman(pressed, now)

Outputs::

    on_command(cmd, now) -> (BaseCommand | None, Verdict)   # gated command; None = dropped
    on_trajectory(names, points, now) -> (ok, reason)
    update(now) -> SafetyStatus                              # publish as safety/state
    path_allowed(path_xy) -> PathCheck

Every state change (level, mode, causes, e-stop, role) and every rejected or modified
command goes to the audit log.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.safety.arm import ArmModel, validate_trajectory
from sitebot.safety.audit import AuditLog
from sitebot.safety.config import ModeLimits, SafetyConfig
from sitebot.safety.estop import EmergencyStop
from sitebot.safety.limits import (CommandFilter, HoldToRun, apply_verdict, limit_acceleration,
                                   mode_verdict)
from sitebot.safety.sources import (BatterySource, DataSource, HeartbeatSource, LocalizationSource,
                                    ObstacleSet, OdometrySource, PeopleSource, ScanSource)
from sitebot.safety.ssm import RestartInterlock, SeparationMonitor, SsmResult
from sitebot.safety.types import (BaseCommand, Cause, Obstacle, RobotState, SafetyStatus,
                                  SensorPose, TrajectoryPoint, Verdict, combine)
from sitebot.safety.zones import PathCheck, ZoneRule
from sitebot.site.registry import SiteRegistry
from sitebot.types import Mode, SafetyLevel, StopCategory

__all__ = ["Supervisor"]

#: the clock may step back this much [s] without counting as a jump: callbacks that read
#: the clock a little out of order; such a ``now`` is taken as the previous one
_TIME_BACK_TOLERANCE_S = 0.01
#: stop causes that do not block an e-stop reset (an operator's hold-to-run switch is not a
#: hazard that persists)
_NOT_BLOCKING_RESET = frozenset({"deadman_released"})


class Supervisor:
    """``Supervisor(config, registry=None, role=None, *, audit=None, arm=None)``.

    :param config: the parameters (:class:`SafetyConfig`).
    :param registry: the site registry (zones); None: no zones.
    :param role: the active operator role (restricted zones); None: ``config.role``.
    :param audit: where to log; None: an in-memory :class:`AuditLog`.
    :param arm: joint limits and optional workspace keep-out (:class:`ArmModel`, e.g.
        ``ArmModel.from_description(desc, config)``); None: every trajectory is refused.
    """

    def __init__(self, config: SafetyConfig | None = None,
                 registry: SiteRegistry | None = None, role: str | None = None, *,
                 audit: AuditLog | None = None, arm: ArmModel | None = None) -> None:
        cfg = config or SafetyConfig()
        self.config = cfg
        self.registry = registry
        self.audit = audit if audit is not None else AuditLog(None)
        self.arm = arm
        self.role = cfg.role if role is None else str(role)
        # parts
        self.scan = ScanSource(cfg)
        self.people = PeopleSource(cfg)
        self.odometry = OdometrySource(cfg)
        self.localization = LocalizationSource(cfg)
        self.battery = BatterySource(cfg)
        self.heartbeats = {n: HeartbeatSource(n, cfg.heartbeat_timeout_s)
                           for n in cfg.heartbeat_nodes}
        self.sources: tuple[DataSource, ...] = (
            self.scan, self.people, self.odometry, self.localization, self.battery,
            *self.heartbeats.values())
        self.ssm = SeparationMonitor(cfg)
        self.zones = ZoneRule(cfg, registry, self.role)
        self.filter = CommandFilter(cfg)
        self.hold = HoldToRun(cfg.deadman_timeout_s)
        self.estop = EmergencyStop(StopCategory(cfg.estop_category), cfg.estop_min_latch_s)
        self.requested_mode = cfg.start_mode
        self.static_map = None
        # state
        self.last_now: float | None = None
        self.status: SafetyStatus | None = None
        self._last_out: tuple[float, float, float] | None = None   # (v, w, now)
        self._obstacles_key: tuple[int, int, bool] | None = None
        self._obstacles = ObstacleSet.empty()
        self._mod_reasons: tuple[str, ...] = ()
        self._mod_last_log = -math.inf
        self._mod_count = 0
        self._limits: dict[tuple[Mode, bool], ModeLimits] = {}
        self._rejections: dict[tuple[str, str], tuple[float, int]] = {}
        self.restart = RestartInterlock(cfg)
        self.counts = {"commands": 0, "dropped": 0, "modified": 0, "zeroed": 0,
                       "trajectories_rejected": 0}
        self.audit.write("supervisor_started", math.nan, config=cfg.as_params(),
                         role=self.role, site=registry.site if registry else None)

    # ================================================================================
    # time
    # ================================================================================
    def _clock(self, now: float) -> float | None:
        """Advance the clock and return the ``now`` to use; None for a non-finite ``now``
        (the call is ignored).  A step back within ``_TIME_BACK_TOLERANCE_S`` counts as the
        previous time; a larger one forgets every source's data (stale -> stop until fresh
        data)."""
        if not isinstance(now, (int, float)) or not math.isfinite(now):
            self.audit.write("time_invalid", math.nan, now=now)
            return None
        last = self.last_now
        if last is not None and now < last:
            if now >= last - _TIME_BACK_TOLERANCE_S:
                return last
            self.audit.write("time_jump_backwards", now, previous_s=last, jump_s=now - last)
            for s in self.sources:
                s.reset()
            self.filter.reset()
            self.hold.reset()
            self.estop.on_time_jump(now)
            self._last_out = None
            self._obstacles_key = None
        self.last_now = float(now)
        return self.last_now

    # ================================================================================
    # inputs
    # ================================================================================
    def _source_result(self, source: DataSource, why: str | None, now: float) -> bool:
        """Audit a refused update: the first of a kind at once, repeats at most once per
        ``audit_modified_period_s`` with their count."""
        if why is None:
            return True
        key = (source.name, why)
        last, count = self._rejections.get(key, (-math.inf, 0))
        if now - last >= self.config.audit_modified_period_s or now < last:
            self.audit.write("input_rejected", now, source=source.name, reason=why,
                             repeated_since_last_line=count)
            self._rejections[key] = (now, 0)
        else:
            self._rejections[key] = (last, count + 1)
        return False

    def on_scan(self, ranges: Sequence[float] | np.ndarray, angle_min_rad: float,
                angle_increment_rad: float, now: float, *, stamp_s: float | None = None,
                range_min_m: float = 0.0, range_max_m: float = math.inf,
                laser: SensorPose | None = None) -> bool:
        """A LaserScan: ranges [m] in beam order, the first beam's angle and the step
        [rad], the valid range interval [m], and ``laser`` = the transform base <- laser
        (None: the config's ``laser_*``).  True when accepted."""
        now = self._clock(now)
        if now is None:
            return False
        return self._source_result(self.scan, self.scan.update(
            ranges, angle_min_rad, angle_increment_rad, now, stamp_s, range_min_m,
            range_max_m, laser), now)

    def on_people(self, people: Sequence[Obstacle], now: float, *,
                  stamp_s: float | None = None, frame: str = "base") -> bool:
        """Tracked people (every entry is a person; velocity ``measured_speed``).  ``frame``
        ``"base"`` or ``"map"`` (converted with the latest localization pose, refused
        without one)."""
        now = self._clock(now)
        if now is None:
            return False
        if frame == "map":
            st = self.localization.state
            if st is None:
                return self._source_result(self.people, "no_pose_for_map_frame", now)
            try:
                people = [_map_to_base(p, st) for p in people]
            except (TypeError, ValueError, AttributeError):
                return self._source_result(self.people, "people_not_convertible", now)
        elif frame != "base":
            return self._source_result(self.people, f"unknown_frame_{frame}", now)
        return self._source_result(self.people, self.people.update(people, now, stamp_s),
                                   now)

    def on_odometry(self, v_mps: float, w_radps: float, now: float, *,
                    stamp_s: float | None = None) -> bool:
        """The base's measured body twist (v [m/s], w [rad/s])."""
        now = self._clock(now)
        if now is None:
            return False
        return self._source_result(self.odometry, self.odometry.update(
            v_mps, w_radps, now, stamp_s), now)

    def on_localization(self, state: RobotState, now: float, *, cov_trace_m2: float = 0.0,
                        nis: float | None = None) -> bool:
        """The map pose (``state.stamp_s`` its stamp), the trace of its position covariance
        (xx + yy) [m^2] and the filter's NIS if known."""
        now = self._clock(now)
        if now is None:
            return False
        return self._source_result(self.localization, self.localization.update(
            state, now, cov_trace_m2, nis), now)

    def on_battery(self, fraction: float, now: float, *, stamp_s: float | None = None) -> bool:
        """Charge fraction in [0, 1]."""
        now = self._clock(now)
        if now is None:
            return False
        return self._source_result(self.battery, self.battery.update(fraction, now, stamp_s),
                                   now)

    def on_heartbeat(self, node: str, now: float, *, stamp_s: float | None = None) -> bool:
        """A heartbeat of ``node`` (one of ``heartbeat_nodes``; others are ignored)."""
        now = self._clock(now)
        if now is None:
            return False
        src = self.heartbeats.get(node)
        if src is None:
            return False
        return self._source_result(src, src.update(now, stamp_s), now)

    def on_deadman(self, pressed: bool, now: float) -> None:
        """The hold-to-run switch on its own topic (commands can also carry the flag)."""
        now = self._clock(now)
        if now is not None:
            self.hold.feed(bool(pressed), now)

    # -- e-stop ------------------------------------------------------------------------
    def trigger_estop(self, source: str, now: float) -> None:
        """Latch the emergency stop (service call or topic event)."""
        if not isinstance(now, (int, float)) or not math.isfinite(now):
            now = self.last_now if self.last_now is not None else 0.0
        else:
            now = self._clock(now)
        if self.estop.trigger(source, now):
            self.audit.write("estop_triggered", now, source=source,
                             category=self.estop.category)
        self._last_out = None

    def set_estop_input(self, asserted: bool, now: float, source: str = "estop_input") -> None:
        """A held e-stop input (bool topic): asserted latches; released allows a reset."""
        if not isinstance(now, (int, float)) or not math.isfinite(now):
            now = self.last_now if self.last_now is not None else 0.0
            asserted = True          # an input with no valid time is treated as a press
        else:
            now = self._clock(now)
        was = self.estop.inputs.get(source)
        if self.estop.set_input(bool(asserted), now, source):
            self.audit.write("estop_triggered", now, source=source,
                             category=self.estop.category)
            self._last_out = None
        elif was is not None and was != bool(asserted):
            self.audit.write("estop_input", now, source=source, asserted=bool(asserted))

    def request_reset(self, now: float) -> tuple[bool, str]:
        """Reset the emergency stop (the reset service).  Refused, with the reason, while an
        input is asserted, before ``estop_min_latch_s``, or while any stop cause
        persists."""
        now = self._clock(now)
        if now is None:
            return False, "invalid time"
        causes = [c for c in self._verdicts(now, None)[0].causes
                  if c.code not in _NOT_BLOCKING_RESET]
        ok, reason = self.estop.request_reset(now, causes)
        self.audit.write("estop_reset" if ok else "estop_reset_refused", now, reason=reason)
        if ok:
            self._last_out = None
        return ok, reason

    @property
    def estop_latched(self) -> bool:
        return self.estop.latched

    # -- mode and role -----------------------------------------------------------------
    def set_mode(self, mode: Mode | str | int, now: float) -> tuple[bool, str]:
        """Request an operating mode; (ok, reason)."""
        try:
            m = Mode.parse(mode)
        except ValueError as e:
            self.audit.write("mode_refused", now, requested=mode, reason=str(e))
            return False, str(e)
        now = self._clock(now)
        if now is None:
            return False, "invalid time"
        if m is not self.requested_mode:
            self.audit.write("mode_requested", now, previous=self.requested_mode, mode=m)
            self.requested_mode = m
            self.hold.reset()
        return True, f"mode {m.name.lower()}"

    def set_role(self, role: str, now: float) -> None:
        """Change the active role (restricted zones)."""
        role = str(role or "")
        if role != self.role:
            self.audit.write("role_changed", now, previous=self.role, role=role)
            self.role = role
            self.zones.set_role(role)

    # ================================================================================
    # the rules
    # ================================================================================
    def obstacles(self, now: float) -> ObstacleSet:
        """Everything the separation monitor considers: scan points (static), scan person
        candidates not covered by tracked people, tracked people (only fresh sources)."""
        scan_ok = self.scan.fresh(now)
        people_ok = self.people.fresh(now)
        key = (self.scan.version if scan_ok else -1, self.people.version if people_ok else -1,
               True)
        if key == self._obstacles_key:
            return self._obstacles
        parts = []
        tracked = self.people.people if people_ok else None
        if scan_ok:
            parts.append(self.scan.points)
            parts.append(self.scan.candidates(tracked, self._mapped_structure))
        if tracked is not None:
            parts.append(tracked)
        self._obstacles = ObstacleSet.concat(parts)
        self._obstacles_key = key
        return self._obstacles

    def set_static_map(self, grid: Any | None) -> None:
        """Known static structure (an occupancy grid in the map frame with ``occupied``,
        ``origin_x``, ``origin_y``, ``resolution_m``, inflated by the caller by the match
        distance): a person-sized scan cluster on it is a post or a gauge stand, not a
        person candidate (it still counts as an obstacle). Without localization, or with no
        map, every person-sized cluster stays a candidate. Caveat (documented): a person
        standing against mapped structure is treated as an obstacle until the people topic
        (perception) reports them."""
        self.static_map = grid
        self._obstacles_key = None

    def _mapped_structure(self, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        grid = getattr(self, "static_map", None)
        st = self.localization.state
        if grid is None or st is None:
            return np.zeros(cx.shape, bool)
        c, s = math.cos(st.yaw_rad), math.sin(st.yaw_rad)
        mx = st.x_m + c * cx - s * cy
        my = st.y_m + s * cx + c * cy
        col = np.floor((mx - grid.origin_x) / grid.resolution_m).astype(np.int64)
        row = np.floor((my - grid.origin_y) / grid.resolution_m).astype(np.int64)
        rows, cols = grid.occupied.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        out = np.zeros(cx.shape, bool)
        out[inside] = grid.occupied[row[inside], col[inside]]
        return out

    def _obstacle_age(self, now: float) -> float:
        """Age [s] of the oldest obstacle data in use (scan, people), 0 when none."""
        ages = [s.age_s(now) for s in (self.scan, self.people) if s.fresh(now)]
        return max(ages) if ages else 0.0

    def effective_mode(self, person_near: bool) -> Mode:
        """The requested mode, or REDUCED_SPEED when forced (a person near)."""
        if person_near:
            return Mode.REDUCED_SPEED
        return self.requested_mode

    def limits(self, mode: Mode) -> ModeLimits:
        """The limits in force in ``mode`` (with MANUAL requested, never above manual's)."""
        key = (mode, self.requested_mode is Mode.MANUAL)
        lim = self._limits.get(key)
        if lim is None:
            lim = self.config.mode_limits(mode)
            if key[1]:
                m = self.config.mode_limits(Mode.MANUAL)
                lim = ModeLimits(*(min(a, b) for a, b in zip(
                    (lim.max_linear_mps, lim.max_angular_radps, lim.max_linear_acc_mps2,
                     lim.max_angular_acc_radps2),
                    (m.max_linear_mps, m.max_angular_radps, m.max_linear_acc_mps2,
                     m.max_angular_acc_radps2))))
            self._limits[key] = lim
        return lim

    def _verdicts(self, now: float, cmd: tuple[float, float] | None
                  ) -> tuple[Verdict, SsmResult, Mode]:
        """Combined verdict for a command (v, w) or, with None, for the status."""
        verdicts = [self.estop.verdict(now)]
        for s in self.sources:
            verdicts.append(s.verdict(now))
        obstacles = self.obstacles(now)
        age = self._obstacle_age(now)
        v_meas = abs(self.odometry.v_mps)
        pose = self.localization.state if self.localization.fresh(now) else None
        margin = self.restart.margin_m()
        if cmd is None:
            v, w = self.odometry.v_mps, self.odometry.w_radps
            ssm = self.ssm.verdict(v, w, obstacles, False, age, v_meas, margin)
            zone = self.zones.verdict_at(pose)
        else:
            v, w = cmd
            ssm = self.ssm.verdict(v, w, obstacles, True, age, v_meas, margin)
            lag = self.localization.age_s(now) * v_meas if pose is not None else 0.0
            zone = self.zones.verdict(pose, v, w, lag)
        # the person check does not depend on the motion: status and commands agree on it
        restart = self.restart.update(ssm, now)
        if restart is not None:
            verdicts.append(restart)
        verdicts.append(ssm.verdict)
        verdicts.append(zone)
        mode = self.effective_mode(ssm.person_near)
        if self.requested_mode is Mode.MANUAL:      # hold-to-run, also when reduced
            verdicts.append(mode_verdict(Mode.MANUAL, self.limits(mode), self.hold, now))
        else:
            verdicts.append(mode_verdict(mode, self.limits(mode), None, now))
        return combine(verdicts), ssm, mode

    # ================================================================================
    # commands
    # ================================================================================
    def on_command(self, cmd: BaseCommand, now: float) -> tuple[BaseCommand | None, Verdict]:
        """Gate one base command: (the command to forward, the combined verdict).

        None = dropped (invalid; see :class:`~sitebot.safety.limits.CommandFilter`);
        a zero command while stopped, in manual mode without the deadman, or until a
        command stamped after an e-stop reset arrives; else the command scaled into the
        limits (curvature kept; turning in place allowed when only translation is
        forbidden) and acceleration-limited.
        """
        self.counts["commands"] += 1
        now = self._clock(now)
        if now is None:
            return self._drop(cmd, math.nan, "non_finite_time")
        why = self.filter.check(cmd, now)
        if why is not None:
            return self._drop(cmd, now, why)
        # judged no earlier than it was made: a command stamped up to command_max_future_s
        # ahead (its sender saw a clock tick this node has not yet) is judged at its stamp,
        # with every input that much older; the verdict then does not depend on which of
        # the two arrived first
        now = max(now, float(cmd.stamp_s))
        if cmd.deadman:
            self.hold.feed(True, now)
        v_in, w_in = float(cmd.v_mps), float(cmd.w_radps)
        verdict, _, mode = self._verdicts(now, (v_in, w_in))
        reset_at = self.estop.reset_at_s
        if reset_at is not None and cmd.stamp_s <= reset_at and not verdict.stops:
            verdict = combine([verdict, Verdict(SafetyLevel.PROTECTIVE_STOP, 0.0, 0.0, (Cause(
                "awaiting_fresh_command", SafetyLevel.PROTECTIVE_STOP,
                "emergency stop was reset: waiting for a command stamped after the reset",
                "estop"),))])
        v, w = apply_verdict(v_in, w_in, verdict)
        if v != 0.0 or w != 0.0:
            limits = self.limits(mode)
            v_ref, w_ref, dt = self._reference(now)
            v2, w2 = limit_acceleration(v, w, v_ref, w_ref, dt, limits)
            if (v2, w2) != (v, w):
                verdict = Verdict(verdict.level, verdict.speed_limit_mps,
                                  verdict.turn_limit_radps, verdict.causes + (Cause(
                                      "acceleration_limit", SafetyLevel.NORMAL,
                                      f"{mode.name.lower()} mode acceleration limit",
                                      "limits"),))
                v, w = v2, w2
        self._last_out = (v, w, now)
        if v != v_in or w != w_in:
            self._log_modified(cmd, v, w, verdict, now)
        elif self._mod_reasons:
            self._flush_modified(now)
            self._mod_reasons = ()
        return BaseCommand(v, w, cmd.stamp_s, cmd.deadman), verdict

    def _reference(self, now: float) -> tuple[float, float, float]:
        """(v, w, dt): the speed the acceleration limit starts from and the time since."""
        lo = self._last_out
        if lo is not None and 0.0 <= now - lo[2] <= self.config.command_hold_s:
            return lo[0], lo[1], now - lo[2]
        if self.odometry.fresh(now):
            return self.odometry.v_mps, self.odometry.w_radps, 0.0
        return 0.0, 0.0, 0.0

    def _drop(self, cmd: object, now: float, reason: str) -> tuple[None, Verdict]:
        self.counts["dropped"] += 1
        self.audit.write("command_dropped", now, reason=reason, command=cmd)
        return None, Verdict(SafetyLevel.NORMAL, 0.0, 0.0, (Cause(
            f"command_{reason}", SafetyLevel.NORMAL, f"command dropped: {reason}",
            "limits"),))

    def _log_modified(self, cmd: BaseCommand, v: float, w: float, verdict: Verdict,
                      now: float) -> None:
        zero = v == 0.0 and w == 0.0
        self.counts["zeroed" if zero else "modified"] += 1
        reasons = tuple(sorted(set(verdict.codes))) or ("limit",)
        period = self.config.audit_modified_period_s
        if reasons != self._mod_reasons or now - self._mod_last_log >= period:
            self.audit.write("command_zeroed" if zero else "command_modified", now,
                             reasons=list(reasons), v_in=cmd.v_mps, w_in=cmd.w_radps,
                             v_out=v, w_out=w, stamp_s=cmd.stamp_s,
                             repeated_since_last_line=self._mod_count,
                             level=verdict.level,
                             speed_limit_mps=verdict.speed_limit_mps)
            self._mod_reasons = reasons
            self._mod_last_log = now
            self._mod_count = 0
        else:
            self._mod_count += 1

    def _flush_modified(self, now: float) -> None:
        if self._mod_count:
            self.audit.write("commands_modified_summary", now, reasons=list(self._mod_reasons),
                             count=self._mod_count)
            self._mod_count = 0

    # ================================================================================
    # arm
    # ================================================================================
    def on_trajectory(self, names: Sequence[str], points: Sequence[TrajectoryPoint],
                      now: float) -> tuple[bool, str]:
        """Validate an arm trajectory (joint names, limits, time, NaN, workspace keep-out)
        and refuse it while motion is not allowed.  (ok, reason)."""
        now = self._clock(now)
        if now is None:
            ok, reason = False, "invalid time"
        elif self.arm is None:
            ok, reason = False, "no arm model (joint limits) configured: refusing"
        else:
            verdict = self._verdicts(now, None)[0]
            if verdict.stops:
                ok, reason = False, "motion not allowed: " + ", ".join(verdict.codes)
            else:
                ok, reason = validate_trajectory(names, points, self.arm.limits,
                                                 self.arm.keep_out)
        if not ok:
            self.counts["trajectories_rejected"] += 1
            self.audit.write("trajectory_rejected", math.nan if now is None else now,
                             reason=reason, joints=names, points=len(points)
                             if hasattr(points, "__len__") else None)
        return ok, reason

    # ================================================================================
    # status
    # ================================================================================
    def update(self, now: float) -> SafetyStatus:
        """The status at ``now`` (publish it as ``safety/state``)."""
        now = self._clock(now)
        if now is None:
            prev = self.status
            return SafetyStatus(
                stamp_s=prev.stamp_s if prev else 0.0, level=SafetyLevel.PROTECTIVE_STOP,
                mode=self.requested_mode,
                stop_category=StopCategory(self.config.protective_stop_category),
                speed_scale=0.0, max_linear_speed_mps=0.0, causes=(Cause(
                    "clock_invalid", SafetyLevel.PROTECTIVE_STOP, "non-finite time",
                    "supervisor"),), estop_latched=self.estop.latched,
                requested_mode=self.requested_mode, message="clock invalid")
        cfg = self.config
        verdict, ssm, mode = self._verdicts(now, None)
        level = verdict.level
        if level >= SafetyLevel.EMERGENCY_STOP:
            cat = self.estop.category
        elif level >= SafetyLevel.PROTECTIVE_STOP:
            cat = StopCategory(cfg.protective_stop_category)
        else:
            cat = StopCategory.NONE
        lim = self.limits(mode)
        vmax = 0.0 if verdict.stops else min(verdict.speed_limit_mps, lim.max_linear_mps)
        wmax = 0.0 if verdict.stops else min(verdict.turn_limit_radps, lim.max_angular_radps)
        if level == SafetyLevel.NORMAL and (mode is Mode.REDUCED_SPEED):
            level = SafetyLevel.REDUCED_SPEED
        scale = min(max(vmax / cfg.nominal_speed_mps, 0.0), 1.0)
        if scale == 0.0 and wmax > 0.0 and math.isfinite(verdict.turn_limit_radps):
            # a rule that allows turning in place only, with its own turn limit (a lost
            # localization): the control loop caps both axes by this one factor, so it
            # carries the turn's share; translation stays 0 because every command is
            # limited to vmax here before it is passed on
            scale = min(wmax / max(cfg.auto_max_angular_radps, 1e-6), 1.0)
        ret = any(c.code == "battery_low" for c in verdict.causes) and \
            cfg.battery_policy == "return"
        message = "; ".join(c.message for c in verdict.causes) or "ok"
        status = SafetyStatus(
            stamp_s=now, level=SafetyLevel(level), mode=mode, stop_category=cat,
            speed_scale=scale, max_linear_speed_mps=vmax, max_angular_speed_radps=wmax,
            causes=verdict.causes, closest_separation_m=ssm.closest_separation_m,
            required_separation_m=ssm.required_separation_m,
            estop_latched=self.estop.latched, return_requested=ret,
            requested_mode=self.requested_mode, message=message)
        self._audit_status(status, now)
        self.audit.tick(now)                  # aggregated repeats: one summary per second
        self.status = status
        return status

    def _audit_status(self, new: SafetyStatus, now: float) -> None:
        old = self.status
        if old is not None and old.level == new.level and old.mode == new.mode and \
                old.reasons == new.reasons and old.estop_latched == new.estop_latched:
            return
        self.audit.write("state_changed", now, level=new.level, mode=new.mode,
                         previous_level=old.level if old else None,
                         previous_mode=old.mode if old else None,
                         reasons=list(new.reasons), stop_category=new.stop_category,
                         max_linear_speed_mps=new.max_linear_speed_mps,
                         estop_latched=new.estop_latched, message=new.message)

    # ================================================================================
    # queries
    # ================================================================================
    def path_allowed(self, path_xy: Sequence[Sequence[float]]) -> PathCheck:
        """Whether a map-frame polyline keeps the footprint out of every forbidden zone."""
        return self.zones.path_allowed(path_xy)

    def source_ages(self, now: float) -> Mapping[str, float]:
        """Age [s] of each source's newest data (inf: none) - for diagnostics."""
        return {s.name: s.age_s(now) for s in self.sources}


def _map_to_base(p: Obstacle, pose: RobotState) -> Obstacle:
    """An obstacle given in the map frame, in the base frame of ``pose``."""
    c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
    dx, dy = float(p.x_m) - pose.x_m, float(p.y_m) - pose.y_m
    return Obstacle(c * dx + s * dy, -s * dx + c * dy, p.radius_m,
                    c * p.vx_mps + s * p.vy_mps, -s * p.vx_mps + c * p.vy_mps,
                    True, p.measured_speed, p.source, p.position_std_m)
