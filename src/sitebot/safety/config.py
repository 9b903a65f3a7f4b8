"""The safety supervisor's parameters: one schema (:data:`SCHEMA`, declared by the node)
and one frozen value (:class:`SafetyConfig`, what the core takes).

Every parameter carries a description, a type, a unit and an accepted range;
:func:`safety_config_from_params` validates a ``{name: value}`` mapping (a parameter file's
``safety_supervisor: ros__parameters:`` block, or the node's declared values), fills the
defaults and checks the relations between parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from sitebot.config.params import (ParamSpec, ParamType, dataclass_from_params, validate_params,
                                   validate_value)
from sitebot.errors import ParameterError
from sitebot.site.params import SITE_PARAMS
from sitebot.teleop.core import DEADMAN_TIMEOUT_S
from sitebot.types import Mode

__all__ = ["SCHEMA", "NODE_SCHEMA", "SafetyConfig", "ModeLimits", "safety_config_from_params",
           "BATTERY_POLICIES", "MODE_NAMES"]

F, B, S, I = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.INT
FA, SA = ParamType.FLOAT_ARRAY, ParamType.STRING_ARRAY

#: battery_policy values: ``finish`` = carry on at reduced speed; ``return`` = raise the
#: ``return_requested`` flag for the executor (speed unchanged)
BATTERY_POLICIES = ("finish", "return")
#: accepted mode names (``initial_mode``)
MODE_NAMES = tuple(m.name.lower() for m in Mode)

SCHEMA: tuple[ParamSpec, ...] = (
    # ---- robot geometry --------------------------------------------------------------
    ParamSpec("footprint_radius_m", F, 0.4, "radius of the circle about the base origin "
              "that covers the robot's footprint (separation and zones use its edge, not "
              "the centre)", 0.05, 3.0, unit="m"),
    # ---- modes and limits ------------------------------------------------------------
    ParamSpec("initial_mode", S, "automatic", "operating mode at start",
              choices=MODE_NAMES),
    ParamSpec("auto_max_linear_mps", F, 1.0, "automatic mode: largest |v| of the base; "
              "also the nominal speed (speed_scale = allowed / this)", 0.01, 5.0, unit="m/s"),
    ParamSpec("auto_max_angular_radps", F, 1.5, "automatic mode: largest |w| of the base",
              0.01, 10.0, unit="rad/s"),
    ParamSpec("auto_max_linear_acc_mps2", F, 1.0, "automatic mode: largest rise of |v| per "
              "second (slowing down is never limited)", 0.01, 20.0, unit="m/s^2"),
    ParamSpec("auto_max_angular_acc_radps2", F, 2.0, "automatic mode: largest rise of |w| "
              "per second", 0.01, 50.0, unit="rad/s^2"),
    ParamSpec("manual_max_linear_mps", F, 0.5, "manual (hold-to-run) mode: largest |v|",
              0.01, 5.0, unit="m/s"),
    ParamSpec("manual_max_angular_radps", F, 1.0, "manual mode: largest |w|", 0.01, 10.0,
              unit="rad/s"),
    ParamSpec("manual_max_linear_acc_mps2", F, 0.5, "manual mode: largest rise of |v| per "
              "second", 0.01, 20.0, unit="m/s^2"),
    ParamSpec("manual_max_angular_acc_radps2", F, 1.0, "manual mode: largest rise of |w| "
              "per second", 0.01, 50.0, unit="rad/s^2"),
    ParamSpec("reduced_max_linear_mps", F, 0.25, "reduced-speed mode (forced near people): "
              "largest |v|", 0.01, 1.0, unit="m/s"),
    ParamSpec("reduced_max_angular_radps", F, 0.5, "reduced-speed mode: largest |w|", 0.01,
              10.0, unit="rad/s"),
    ParamSpec("reduced_max_linear_acc_mps2", F, 0.5, "reduced-speed mode: largest rise of "
              "|v| per second", 0.01, 20.0, unit="m/s^2"),
    ParamSpec("reduced_max_angular_acc_radps2", F, 1.0, "reduced-speed mode: largest rise "
              "of |w| per second", 0.01, 50.0, unit="rad/s^2"),
    ParamSpec("deadman_timeout_s", F, DEADMAN_TIMEOUT_S, "manual mode: no command with the "
              "deadman flag for this long -> zero output and a protective stop", 0.02, 5.0,
              unit="s"),
    ParamSpec("absurd_linear_mps", F, 5.0, "a command with |v| above this is dropped as "
              "absurd (not scaled)", 0.1, 100.0, unit="m/s"),
    ParamSpec("absurd_angular_radps", F, 10.0, "a command with |w| above this is dropped as "
              "absurd", 0.1, 100.0, unit="rad/s"),
    ParamSpec("command_max_age_s", F, 0.5, "a command whose stamp is older than this on "
              "arrival is dropped", 0.01, 10.0, unit="s"),
    ParamSpec("command_max_future_s", F, 0.1, "a command stamped further than this in the "
              "future is dropped (clock trouble)", 0.0, 10.0, unit="s"),
    ParamSpec("command_hold_s", F, 0.5, "the last output command counts as the current "
              "speed (for acceleration limits) for this long; after that the odometry does",
              0.01, 10.0, unit="s"),
    # ---- speed and separation monitoring (ISO/TS 15066) --------------------------------
    ParamSpec("person_speed_mps", F, 1.6, "v_h: speed of a person toward the robot when "
              "not measured (ISO 13855 walking speed)", 0.0, 5.0, unit="m/s"),
    ParamSpec("use_measured_person_speed", B, True, "use a tracked person's measured speed "
              "toward the robot (never below 0) instead of person_speed_mps"),
    ParamSpec("person_radius_m", F, 0.25, "radius of a tracked person of the people topic "
              "(it gives positions only): separation is measured to this circle's edge",
              0.05, 1.0, unit="m"),
    ParamSpec("reaction_time_s", F, 0.1, "T_r: sensing + processing time until the "
              "supervisor's decision reaches the control loop", 0.0, 2.0, unit="s"),
    ParamSpec("stop_latency_s", F, 0.05, "T_cl: control-loop time from a stop/slow command "
              "to braking (added to the stopping time T_s)", 0.0, 2.0, unit="s"),
    ParamSpec("braking_decel_mps2", F, 1.0, "a_brake: guaranteed braking deceleration of "
              "the base", 0.05, 20.0, unit="m/s^2"),
    ParamSpec("intrusion_distance_m", F, 0.1, "C: intrusion distance (a body part reaching "
              "in before it is sensed); people only", 0.0, 2.0, unit="m"),
    ParamSpec("sensing_uncertainty_m", F, 0.05, "Z_d: position uncertainty of the sensed "
              "person/obstacle", 0.0, 2.0, unit="m"),
    ParamSpec("position_uncertainty_m", F, 0.05, "Z_r: position uncertainty of the robot",
              0.0, 2.0, unit="m"),
    ParamSpec("reduced_speed_distance_m", F, 1.5, "a person closer than this (clearance "
              "from the footprint) forces reduced-speed mode", 0.0, 20.0, unit="m"),
    ParamSpec("person_restart_margin_m", F, 0.1, "after a person entered the protective "
              "field, motion resumes only once every person is this much beyond it "
              "(hysteresis: no stop-and-go creep toward a person at its edge)", 0.0, 2.0,
              unit="m"),
    ParamSpec("person_restart_delay_s", F, 0.5, "after a person entered the protective "
              "field, motion resumes only once they have stayed beyond it (plus the restart "
              "margin) this long: automatic restart of a safety scanner", 0.0, 10.0,
              unit="s"),
    # ---- laser scan -> obstacles -----------------------------------------------------
    ParamSpec("laser_x_m", F, 0.0, "laser position in the base frame, x (used when the "
              "node passes no transform)", -5.0, 5.0, unit="m"),
    ParamSpec("laser_y_m", F, 0.0, "laser position in the base frame, y", -5.0, 5.0,
              unit="m"),
    ParamSpec("laser_yaw_rad", F, 0.0, "laser yaw in the base frame", -math.pi, math.pi,
              unit="rad"),
    ParamSpec("scan_ignore_radius_m", F, 0.0, "scan points closer than this to the base "
              "origin are the robot itself and ignored (0: none ignored)", 0.0, 3.0,
              unit="m"),
    ParamSpec("cluster_gap_m", F, 0.3, "consecutive scan points further apart than this "
              "start a new cluster", 0.01, 5.0, unit="m"),
    ParamSpec("person_min_width_m", F, 0.2, "smallest cluster width taken as a person "
              "candidate", 0.0, 5.0, unit="m"),
    ParamSpec("person_max_width_m", F, 0.8, "largest cluster width taken as a person "
              "candidate", 0.01, 5.0, unit="m"),
    ParamSpec("scan_person_candidates", B, True, "person-size scan clusters not covered by a "
              "tracked person count as people (speed person_speed_mps)"),
    ParamSpec("people_match_radius_m", F, 0.5, "a scan cluster within this of a tracked "
              "person is covered by that person", 0.0, 5.0, unit="m"),
    # ---- zones -----------------------------------------------------------------------
    ParamSpec("zone_lookahead_s", F, 2.0, "keep-out/slow zones are checked along the "
              "commanded arc for this long (at least the stopping distance)", 0.1, 20.0,
              unit="s"),
    ParamSpec("zone_margin_m", F, 0.1, "extra clearance kept from keep-out and restricted "
              "zones (localization error)", 0.0, 2.0, unit="m"),
    ParamSpec("zone_sample_step_m", F, 0.05, "arc sampling step of the zone check", 0.005,
              0.5, unit="m"),
    ParamSpec("role", S, "", "role of the operator the robot works for (restricted zones "
              "list the roles allowed in)"),
    # ---- sources and watchdogs -------------------------------------------------------
    ParamSpec("scan_timeout_s", F, 0.5, "scan older than this: protective stop", 0.01, 10.0,
              unit="s"),
    ParamSpec("scan_required", B, True, "the scan is needed to move (false only for tests "
              "and simulations without a laser)"),
    ParamSpec("odometry_timeout_s", F, 0.5, "odometry older than this: protective stop",
              0.01, 10.0, unit="s"),
    ParamSpec("odometry_required", B, True, "odometry is needed to move"),
    ParamSpec("localization_timeout_s", F, 1.0, "localization older than this: protective "
              "stop", 0.01, 30.0, unit="s"),
    ParamSpec("localization_required", B, True, "localization (the map pose) is needed to "
              "move"),
    ParamSpec("localization_max_cov_trace_m2", F, 0.25, "position covariance trace "
              "(xx + yy) above this: localization diverging", 1e-6, 100.0, unit="m^2"),
    ParamSpec("localization_max_nis", F, 11.34, "normalised innovation squared above this: "
              "diverging (default: chi-square 99 % for 3 dof)", 0.1, 1e6),
    ParamSpec("divergence_stop_s", F, 2.0, "diverging localization: reduced speed at once, "
              "protective stop after this long", 0.0, 60.0, unit="s"),
    ParamSpec("relocalize_turn_radps", F, 0.3, "diverged localization: turning in place "
              "up to this |w| stays allowed (to find markers); 0 = a protective stop", 0.0,
              1.0, unit="rad/s"),
    ParamSpec("people_timeout_s", F, 0.5, "people topic older than this: stale", 0.01, 10.0,
              unit="s"),
    ParamSpec("people_required", B, False, "the people topic is needed to move (only if a "
              "tracker is configured)"),
    ParamSpec("battery_timeout_s", F, 10.0, "battery state older than this: stale", 0.1,
              600.0, unit="s"),
    ParamSpec("battery_required", B, False, "the battery state is needed to move"),
    ParamSpec("battery_low_fraction", F, 0.2, "charge fraction below which the battery is "
              "low", 0.0, 1.0),
    ParamSpec("battery_policy", S, "finish", "battery low: 'finish' (reduced speed) or "
              "'return' (flag for the executor)", choices=BATTERY_POLICIES),
    ParamSpec("heartbeat_nodes", SA, [], "nodes whose heartbeat must keep arriving "
              "(names as passed to on_heartbeat)"),
    ParamSpec("heartbeat_timeout_s", F, 1.0, "a listed node's heartbeat older than this: "
              "protective stop", 0.01, 60.0, unit="s"),
    # ---- stops -----------------------------------------------------------------------
    ParamSpec("estop_category", I, 1, "IEC 60204-1 stop category of the emergency stop "
              "(0: remove power; 1: controlled stop, then remove power)", 0, 1),
    ParamSpec("protective_stop_category", I, 2, "stop category of a protective stop "
              "(1 or 2; 2: controlled stop, power kept)", 1, 2),
    ParamSpec("estop_min_latch_s", F, 5.0, "an emergency stop cannot be reset earlier than "
              "this after it was triggered", 0.0, 600.0, unit="s"),
    # ---- arm -------------------------------------------------------------------------
    ParamSpec("arm_keep_out_boxes", FA, [], "axis-aligned boxes in the base frame the arm "
              "must not enter: 6 numbers each (xmin, ymin, zmin, xmax, ymax, zmax)",
              -100.0, 100.0, unit="m"),
    ParamSpec("arm_velocity_scale", F, 1.0, "fraction of the URDF joint velocity limits a "
              "trajectory may use", 0.01, 1.0),
    # ---- audit -----------------------------------------------------------------------
    ParamSpec("audit_modified_period_s", F, 1.0, "a run of commands modified for the same "
              "reasons is logged at most once per this period (with a count); a change of "
              "reasons is logged at once", 0.0, 60.0, unit="s"),
)

#: the supervisor node's own parameters (where zones and the map pose come from, frames,
#: rates, the audit log), declared after :data:`SCHEMA`; not part of :class:`SafetyConfig`
NODE_SCHEMA: tuple[ParamSpec, ...] = (
    *SITE_PARAMS,
    ParamSpec("localization_source", S, "dead_reckoning",
              "'filter': odometry/filtered (the localization filter); 'dead_reckoning': odom "
              "composed with the initial pose (runs without the filter)",
              choices=("filter", "dead_reckoning")),
    ParamSpec("publish_rate_hz", F, 50.0, "safety/state (heartbeat) rate", 5.0, 500.0, unit="Hz"),
    ParamSpec("audit_log", S, "", "audit log file (JSON lines, appended); '' = "
              "$ROS_HOME/sitebot/audit/safety_<start time>.jsonl"),
    ParamSpec("audit_max_file_bytes", I, 8 * 1024 * 1024, "the audit log is rotated (renamed "
              "to <file>.1, .2, ...) before it would pass this size", 65536, 2**40,
              unit="B", read_only=True),
    ParamSpec("audit_max_files", I, 8, "audit log files kept: the current one and the "
              "rotated ones (the oldest is replaced; its stop, reset, mode and role entries "
              "are carried to <file>.kept first)", 2, 1000, read_only=True),
    ParamSpec("audit_kept_max_bytes", I, 4 * 1024 * 1024, "<file>.kept (stop, reset, mode, "
              "role entries of rotated-out files) moves to <file>.kept.1 before it would pass "
              "this size", 65536, 2**40, unit="B", read_only=True),
    ParamSpec("base_frame", S, "base_footprint", "the robot's base frame"),
    ParamSpec("static_match_m", F, 0.25, "a person-sized scan cluster within this of the "
              "site map's static structure is taken as structure, not a person", 0.0, 1.0,
              unit="m"),
    ParamSpec("static_map_resolution_m", F, 0.1, "cell size of the static map (built from the "
              "world) that person-sized scan clusters are matched against", 0.02, 1.0,
              unit="m"),
    ParamSpec("map_frame", S, "map", "the map frame (zones, localization)"),
    ParamSpec("mode", S, "", "operating mode requested at start ('' = initial_mode); at run "
              "time set_parameters is refused: the mode changes through the signed "
              "safety/request (the console, `sitebot safety mode manual`)",
              choices=("", "automatic", "manual")),
)


@dataclass(frozen=True)
class ModeLimits:
    """Velocity [m/s, rad/s] and acceleration [m/s^2, rad/s^2] limits of one mode."""

    max_linear_mps: float
    max_angular_radps: float
    max_linear_acc_mps2: float
    max_angular_acc_radps2: float


@dataclass(frozen=True)
class SafetyConfig:
    """Every supervisor parameter (names, units and meaning as in :data:`SCHEMA`)."""

    footprint_radius_m: float = 0.4
    initial_mode: str = "automatic"
    auto_max_linear_mps: float = 1.0
    auto_max_angular_radps: float = 1.5
    auto_max_linear_acc_mps2: float = 1.0
    auto_max_angular_acc_radps2: float = 2.0
    manual_max_linear_mps: float = 0.5
    manual_max_angular_radps: float = 1.0
    manual_max_linear_acc_mps2: float = 0.5
    manual_max_angular_acc_radps2: float = 1.0
    reduced_max_linear_mps: float = 0.25
    reduced_max_angular_radps: float = 0.5
    reduced_max_linear_acc_mps2: float = 0.5
    reduced_max_angular_acc_radps2: float = 1.0
    deadman_timeout_s: float = DEADMAN_TIMEOUT_S
    absurd_linear_mps: float = 5.0
    absurd_angular_radps: float = 10.0
    command_max_age_s: float = 0.5
    command_max_future_s: float = 0.1
    command_hold_s: float = 0.5
    person_speed_mps: float = 1.6
    use_measured_person_speed: bool = True
    person_radius_m: float = 0.25
    reaction_time_s: float = 0.1
    stop_latency_s: float = 0.05
    braking_decel_mps2: float = 1.0
    intrusion_distance_m: float = 0.1
    sensing_uncertainty_m: float = 0.05
    position_uncertainty_m: float = 0.05
    reduced_speed_distance_m: float = 1.5
    person_restart_margin_m: float = 0.1
    person_restart_delay_s: float = 0.5
    laser_x_m: float = 0.0
    laser_y_m: float = 0.0
    laser_yaw_rad: float = 0.0
    scan_ignore_radius_m: float = 0.0
    cluster_gap_m: float = 0.3
    person_min_width_m: float = 0.2
    person_max_width_m: float = 0.8
    scan_person_candidates: bool = True
    people_match_radius_m: float = 0.5
    zone_lookahead_s: float = 2.0
    zone_margin_m: float = 0.1
    zone_sample_step_m: float = 0.05
    role: str = ""
    scan_timeout_s: float = 0.5
    scan_required: bool = True
    odometry_timeout_s: float = 0.5
    odometry_required: bool = True
    localization_timeout_s: float = 1.0
    localization_required: bool = True
    localization_max_cov_trace_m2: float = 0.25
    localization_max_nis: float = 11.34
    divergence_stop_s: float = 2.0
    relocalize_turn_radps: float = 0.3
    people_timeout_s: float = 0.5
    people_required: bool = False
    battery_timeout_s: float = 10.0
    battery_required: bool = False
    battery_low_fraction: float = 0.2
    battery_policy: str = "finish"
    heartbeat_nodes: tuple[str, ...] = ()
    heartbeat_timeout_s: float = 1.0
    estop_category: int = 1
    protective_stop_category: int = 2
    estop_min_latch_s: float = 5.0
    arm_keep_out_boxes: tuple[float, ...] = ()
    arm_velocity_scale: float = 1.0
    audit_modified_period_s: float = 1.0

    def __post_init__(self) -> None:
        # the schema checks each value; here the relations between them
        specs = {s.name: s for s in SCHEMA}
        for f in fields(self):
            spec = specs.get(f.name)
            value = getattr(self, f.name)
            if spec is None:
                continue
            if isinstance(value, tuple):
                value = list(value)
            validate_value(spec, value)
        object.__setattr__(self, "heartbeat_nodes", tuple(self.heartbeat_nodes))
        object.__setattr__(self, "arm_keep_out_boxes", tuple(float(x) for x in
                                                             self.arm_keep_out_boxes))
        if self.person_min_width_m > self.person_max_width_m:
            raise ParameterError(
                f"parameter 'person_min_width_m' ({self.person_min_width_m}) must not exceed "
                f"'person_max_width_m' ({self.person_max_width_m})")
        if len(self.arm_keep_out_boxes) % 6:
            raise ParameterError(
                "parameter 'arm_keep_out_boxes': has "
                f"{len(self.arm_keep_out_boxes)} numbers; accepted: a multiple of 6 "
                "(xmin, ymin, zmin, xmax, ymax, zmax per box)")
        for k, box in enumerate(self.keep_out_boxes()):
            if not (box[0] < box[3] and box[1] < box[4] and box[2] < box[5]):
                raise ParameterError(
                    f"parameter 'arm_keep_out_boxes': box {k} {box} needs min < max on "
                    "every axis")
        for mode in ("manual", "reduced"):
            if getattr(self, f"{mode}_max_linear_mps") > self.auto_max_linear_mps:
                raise ParameterError(
                    f"parameter '{mode}_max_linear_mps' "
                    f"({getattr(self, f'{mode}_max_linear_mps')}) must not exceed "
                    f"'auto_max_linear_mps' ({self.auto_max_linear_mps})")
        if len(set(self.heartbeat_nodes)) != len(self.heartbeat_nodes) or \
                any(not n for n in self.heartbeat_nodes):
            raise ParameterError("parameter 'heartbeat_nodes': names must be non-empty and "
                                 f"unique; got {list(self.heartbeat_nodes)}")

    # -- derived -------------------------------------------------------------------------
    def mode_limits(self, mode: Mode) -> ModeLimits:
        """The limits of *mode*."""
        prefix = {Mode.AUTOMATIC: "auto", Mode.MANUAL: "manual",
                  Mode.REDUCED_SPEED: "reduced"}[Mode(mode)]
        return ModeLimits(getattr(self, f"{prefix}_max_linear_mps"),
                          getattr(self, f"{prefix}_max_angular_radps"),
                          getattr(self, f"{prefix}_max_linear_acc_mps2"),
                          getattr(self, f"{prefix}_max_angular_acc_radps2"))

    @property
    def nominal_speed_mps(self) -> float:
        """The speed that ``speed_scale`` 1.0 stands for (automatic mode's limit) [m/s]."""
        return self.auto_max_linear_mps

    @property
    def start_mode(self) -> Mode:
        """``initial_mode`` as a :class:`Mode`."""
        return Mode.parse(self.initial_mode)

    def keep_out_boxes(self) -> tuple[tuple[float, ...], ...]:
        """``arm_keep_out_boxes`` grouped by six."""
        b = self.arm_keep_out_boxes
        return tuple(tuple(b[i:i + 6]) for i in range(0, len(b) - len(b) % 6, 6))

    def as_params(self) -> dict[str, Any]:
        """``{name: value}`` as the node declares them (arrays as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def safety_config_from_params(params: Mapping[str, Any]) -> SafetyConfig:
    """Validate ``params`` against :data:`SCHEMA` (unknown names rejected, defaults filled)
    and build the config.

    :raises sitebot.errors.ConfigError: an unknown parameter (listing the declared ones),
        a wrong type or a value out of range (naming the parameter and what is accepted).
    :raises sitebot.errors.ParameterError: related values that contradict each other.
    """
    values = validate_params(SCHEMA, params)
    return dataclass_from_params(SafetyConfig, values)
