"""The localization filter's parameters: one schema (:data:`SCHEMA`, declared by the node,
checked offline by ``sitebot check``) and one frozen value (:class:`EkfConfig`, what the
core takes).

Per input (``odom``, ``imu``, ``fiducial``, ``pose``), in the spirit of robot_localization's
``*_config`` vectors and ``*_rejection_threshold``:

* ``<input>_fields``: which of the input's fields are fused (closed set per input);
* ``<input>_rejection_threshold``: Mahalanobis distance (not squared) above which one
  measurement is gated out (``0`` = no gating);
* ``<input>_covariance``: ``message`` (the sender's covariance, diagonals raised to
  ``<input>_min_variance``) or ``fixed`` (``<input>_fixed_std`` replaces it);
  ``fiducial_covariance`` also accepts ``model`` (range-dependent noise of a tag detector).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from sitebot.config.params import ParamSpec, ParamType, dataclass_from_params, validate_params
from sitebot.errors import ParameterError

__all__ = ["SCHEMA", "EkfConfig", "InputConfig", "INPUT_FIELDS", "ekf_config_from_params"]

F, B, S, I = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.INT
FA, SA = ParamType.FLOAT_ARRAY, ParamType.STRING_ARRAY

#: the fields each input can fuse, in the order of its measurement vector
INPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "odom": ("vx", "vyaw"),            # body twist of wheel odometry
    "imu": ("yaw", "vyaw"),            # orientation yaw (AHRS) and gyro z (bias estimated)
    "fiducial": ("x", "y", "yaw"),     # tag pose in the base frame (landmark measurement)
    "pose": ("x", "y", "yaw"),         # absolute map pose (PoseWithCovarianceStamped)
}
_DEFAULT_FIELDS = {"odom": ("vx", "vyaw"), "imu": ("vyaw",), "fiducial": ("x", "y", "yaw"),
                   "pose": ("x", "y", "yaw")}
_DEFAULT_GATE = {"odom": 0.0, "imu": 0.0, "fiducial": 4.0, "pose": 5.0}
_DEFAULT_FIXED = {"odom": (0.02, 0.02), "imu": (0.02, 0.005), "fiducial": (0.05, 0.05, 0.1),
                  "pose": (0.1, 0.1, 0.1)}
_DEFAULT_MINVAR = {"odom": 1e-4, "imu": 1e-7, "fiducial": 1e-5, "pose": 1e-5}
_COV_CHOICES = {"odom": ("message", "fixed"), "imu": ("message", "fixed"),
                "fiducial": ("message", "fixed", "model"), "pose": ("message", "fixed")}
_DEFAULT_COV = {"odom": "message", "imu": "message", "fiducial": "model", "pose": "message"}


def _input_schema(name: str) -> tuple[ParamSpec, ...]:
    n = len(INPUT_FIELDS[name])
    return (
        ParamSpec(f"{name}_fields", SA, list(_DEFAULT_FIELDS[name]),
                  f"{name}: fields fused (subset of {', '.join(INPUT_FIELDS[name])}); "
                  "empty = input ignored", choices=INPUT_FIELDS[name]),
        ParamSpec(f"{name}_rejection_threshold", F, _DEFAULT_GATE[name],
                  f"{name}: Mahalanobis distance above which a measurement is rejected "
                  "(0 = no gating)", 0.0, 1e6),
        ParamSpec(f"{name}_covariance", S, _DEFAULT_COV[name],
                  f"{name}: 'message' = the sender's covariance (diagonal floored at "
                  f"{name}_min_variance), 'fixed' = {name}_fixed_std"
                  + (", 'model' = range-dependent detector noise" if name == "fiducial" else ""),
                  choices=_COV_CHOICES[name]),
        ParamSpec(f"{name}_min_variance", F, _DEFAULT_MINVAR[name],
                  f"{name}: smallest variance accepted per fused field; smaller (zero) "
                  "diagonals are raised to it", 1e-12, 1e3),
        ParamSpec(f"{name}_fixed_std", FA, list(_DEFAULT_FIXED[name]),
                  f"{name}: standard deviation per field ({', '.join(INPUT_FIELDS[name])}) "
                  f"when {name}_covariance is 'fixed'", 1e-6, 1e3, length=n),
    )


SCHEMA: tuple[ParamSpec, ...] = (
    # ---- process model -----------------------------------------------------------------
    ParamSpec("process_noise_position", F, 1e-5, "white noise added to x and y (model "
              "error, slip) [m^2 per s]", 0.0, 10.0, unit="m^2/s"),
    ParamSpec("process_noise_yaw", F, 1e-6, "white noise added to yaw [rad^2 per s]",
              0.0, 10.0, unit="rad^2/s"),
    ParamSpec("process_noise_accel", F, 1.0, "std of the unmodelled linear acceleration "
              "(v is a random walk)", 1e-4, 100.0, unit="m/s^2"),
    ParamSpec("process_noise_angular_accel", F, 2.0, "std of the unmodelled angular "
              "acceleration (yaw rate is a random walk)", 1e-4, 100.0, unit="rad/s^2"),
    ParamSpec("process_noise_gyro_bias", F, 2e-4, "gyro bias random walk",
              0.0, 1.0, unit="rad/s/sqrt(s)"),
    ParamSpec("initial_std", FA, [0.1, 0.1, 0.05, 0.1, 0.1, 0.01], "initial standard "
              "deviation of x, y, yaw, v, yaw rate, gyro bias", 1e-6, 1e3, length=6),
    # ---- time ------------------------------------------------------------------------------
    ParamSpec("history_length_s", F, 1.0, "measurements up to this much older than the "
              "newest are re-filtered in order (smooth_lagged_data); older ones are "
              "rejected (too_old)", 0.0, 30.0, unit="s"),
    ParamSpec("future_tolerance_s", F, 0.2, "a measurement stamped further than this "
              "ahead of the clock is rejected (from_future)", 0.0, 10.0, unit="s"),
    ParamSpec("max_predict_s", F, 1.0, "longest single prediction step; longer gaps are "
              "integrated in steps of this", 0.001, 10.0, unit="s"),
    # ---- fiducials --------------------------------------------------------------------------
    ParamSpec("fiducial_max_range_m", F, 8.0, "fiducial fixes of tags further than this are "
              "rejected (too_far)", 0.1, 100.0, unit="m"),
    ParamSpec("fiducial_height_tolerance_m", F, 0.3, "a fix whose tag height differs from "
              "the surveyed marker's by more is rejected (height_mismatch: wrong id or "
              "bad pose); 0 = not checked", 0.0, 10.0, unit="m"),
    ParamSpec("fiducial_model_std", FA, [0.005, 0.002, 0.002, 0.01, 0.005], "fiducial "
              "'model' covariance [a, b, c, e, d] (r range [m], s tag size [m]): across the "
              "line of sight std = a + b r, along it a + c r^2 / s, yaw std e + d r / s "
              "(the shape of a corner-pixel noise model)", 0.0, 10.0, length=5),
    # ---- health -------------------------------------------------------------------------------
    ParamSpec("nis_window", I, 20, "NIS statistics over this many recent updates per input",
              3, 10000),
    ParamSpec("nis_probability", F, 0.999, "chi-square probability of the NIS-mean bound "
              "(divergence when the window mean exceeds it)", 0.5, 0.999999),
    ParamSpec("nis_min_samples", I, 8, "the NIS-mean test needs this many samples in the "
              "window", 1, 10000),
    ParamSpec("max_position_std_m", F, 0.5, "position std (largest axis) above which the "
              "filter reports itself diverged (lost)", 0.01, 1000.0, unit="m"),
    ParamSpec("jump_rejections", I, 3, "this many consecutive rejected fiducial fixes raise "
              "the divergence flag (jump / kidnap suspected)", 1, 1000),
    ParamSpec("relocalize", B, True, "re-localize from rejected fixes that agree "
              "(kidnapped robot)"),
    ParamSpec("relocalize_min_fixes", I, 3, "rejected fixes that must agree to re-localize",
              2, 1000),
    ParamSpec("relocalize_min_tags", I, 1, "distinct tags among them", 1, 100),
    ParamSpec("relocalize_window_s", F, 3.0, "rejected fixes older than this are not used "
              "to re-localize", 0.1, 60.0, unit="s"),
    ParamSpec("relocalize_position_tol_m", F, 0.3, "fixes agree when their implied robot "
              "positions are within this", 0.01, 10.0, unit="m"),
    ParamSpec("relocalize_yaw_tol_rad", F, 0.2, "... and their implied headings within this",
              0.001, 3.2, unit="rad"),
    ParamSpec("dead_reckoning_after_s", F, 10.0, "no accepted fix for this long: status "
              "DEAD_RECKONING", 0.1, 1e6, unit="s"),
) + _input_schema("odom") + _input_schema("imu") + _input_schema("fiducial") + \
    _input_schema("pose")


@dataclass(frozen=True)
class InputConfig:
    """One input: fused field indices (into ``INPUT_FIELDS[name]``), gate, covariance."""
    name: str
    fields: tuple[int, ...]
    rejection_threshold: float = 0.0
    covariance: str = "message"
    min_variance: float = 1e-9
    fixed_std: tuple[float, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.fields)


def _default_inputs() -> dict[str, InputConfig]:
    return {n: InputConfig(n, tuple(INPUT_FIELDS[n].index(f) for f in _DEFAULT_FIELDS[n]),
                           _DEFAULT_GATE[n], _DEFAULT_COV[n], _DEFAULT_MINVAR[n],
                           _DEFAULT_FIXED[n]) for n in INPUT_FIELDS}


@dataclass(frozen=True)
class EkfConfig:
    process_noise_position: float = 1e-5
    process_noise_yaw: float = 1e-6
    process_noise_accel: float = 1.0
    process_noise_angular_accel: float = 2.0
    process_noise_gyro_bias: float = 2e-4
    initial_std: tuple[float, ...] = (0.1, 0.1, 0.05, 0.1, 0.1, 0.01)
    history_length_s: float = 1.0
    future_tolerance_s: float = 0.2
    max_predict_s: float = 1.0
    fiducial_max_range_m: float = 8.0
    fiducial_height_tolerance_m: float = 0.3
    fiducial_model_std: tuple[float, ...] = (0.005, 0.002, 0.002, 0.01, 0.005)
    nis_window: int = 20
    nis_probability: float = 0.999
    nis_min_samples: int = 8
    max_position_std_m: float = 0.5
    jump_rejections: int = 3
    relocalize: bool = True
    relocalize_min_fixes: int = 3
    relocalize_min_tags: int = 1
    relocalize_window_s: float = 3.0
    relocalize_position_tol_m: float = 0.3
    relocalize_yaw_tol_rad: float = 0.2
    dead_reckoning_after_s: float = 10.0
    inputs: Mapping[str, InputConfig] = field(default_factory=_default_inputs)

    def input(self, name: str) -> InputConfig:
        return self.inputs[name]

    def with_input(self, name: str, **changes: Any) -> "EkfConfig":
        """A copy with input ``name`` changed (``fields`` may be given as names)."""
        from dataclasses import replace
        if "fields" in changes:
            changes["fields"] = tuple(f if isinstance(f, int) else INPUT_FIELDS[name].index(f)
                                      for f in changes["fields"])
        inputs = dict(self.inputs)
        inputs[name] = replace(inputs[name], **changes)
        return replace(self, inputs=inputs)


def ekf_config_from_params(params: Mapping[str, Any]) -> EkfConfig:
    """Validate ``params`` against :data:`SCHEMA` (unknown names rejected, defaults filled;
    names of other schemas are ignored) and build the config.

    :raises sitebot.errors.ConfigError: a wrong type or a value out of range.
    :raises sitebot.errors.ParameterError: related values that contradict each other.
    """
    known = {s.name for s in SCHEMA}
    values = validate_params(SCHEMA, {k: v for k, v in params.items() if k in known})
    inputs = {}
    for name, all_fields in INPUT_FIELDS.items():
        chosen = values[f"{name}_fields"]
        if len(set(chosen)) != len(chosen):
            raise ParameterError(f"parameter '{name}_fields': {chosen} names a field twice")
        inputs[name] = InputConfig(
            name, tuple(sorted(all_fields.index(f) for f in chosen)),
            values[f"{name}_rejection_threshold"], values[f"{name}_covariance"],
            values[f"{name}_min_variance"], tuple(values[f"{name}_fixed_std"]))
    if values["nis_min_samples"] > values["nis_window"]:
        raise ParameterError(f"parameter 'nis_min_samples' ({values['nis_min_samples']}) "
                             f"exceeds 'nis_window' ({values['nis_window']})")
    return dataclass_from_params(EkfConfig, values, inputs=inputs)


def chi2_upper(dof: float, probability: float) -> float:
    """Chi-square quantile by the Wilson-Hilferty approximation (no SciPy in the core;
    within 2 % of the exact quantile for dof >= 3 at p <= 0.999, conservative: above it)."""
    z = _normal_quantile(probability)
    k = max(float(dof), 1e-9)
    a = 2.0 / (9.0 * k)
    return k * max(1.0 - a + z * math.sqrt(a), 0.0) ** 3


def _normal_quantile(p: float) -> float:
    """Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
         3.754408661907416e+00)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if p > 1 - lo:
        q = math.sqrt(-2 * math.log(1 - p))
        return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
