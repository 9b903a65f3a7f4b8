"""The localization EKF core (sitebot.localization): models, gating, history buffer,
bad input, health.  No ROS, seeded randomness, time passed in."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.errors import ConfigError, ParameterError
from sitebot.localization import smallmat
from sitebot.localization.config import EkfConfig, chi2_upper, ekf_config_from_params
from sitebot.localization.ekf import Ekf, Measurement
from sitebot.localization.models import measure, motion, motion_jacobian, robot_pose_from_fix
from sitebot.types import wrap_angle

MARKERS = {1: (5.0, 0.0, 1.3, math.pi, 0.16), 2: (0.0, 5.0, 1.3, -math.pi / 2, 0.16),
           3: (5.0, 5.0, 1.5, math.pi, 0.2)}
ODOM_COV = [[1e-4, 0.0], [0.0, 1e-4]]
IMU_COV = [[1e-4, 0.0], [0.0, 4e-6]]


def true_fix(tag: int, pose, noise=(0.0, 0.0, 0.0)):
    mx, my, mz, myaw, _ = MARKERS[tag]
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    bx, by = c * (mx - x) + s * (my - y), -s * (mx - x) + c * (my - y)
    return Measurement("fiducial", 0.0, [bx + noise[0], by + noise[1],
                                         wrap_angle(myaw - yaw + noise[2])], None, tag=tag, height=mz)


def fix_at(t, tag, pose, noise=(0.0, 0.0, 0.0)):
    m = true_fix(tag, pose, noise)
    m.stamp = t
    return m


# ---------------------------------------------------------------------------- models
def numeric_jacobian(f, x, eps=1e-6):
    x = np.asarray(x, dtype=float)
    f0 = np.asarray(f(x))
    J = np.zeros((len(f0), len(x)))
    for i in range(len(x)):
        d = np.zeros_like(x)
        d[i] = eps
        diff = np.asarray(f(x + d)) - np.asarray(f(x - d))
        J[:, i] = diff / (2 * eps)
    return J


@pytest.mark.parametrize("seed", range(5))
def test_motion_jacobian_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 6)
    x[2] = rng.uniform(-3, 3)
    dt = rng.uniform(0.005, 0.5)
    J = numeric_jacobian(lambda v: motion(v, dt)[0], x)
    np.testing.assert_allclose(motion_jacobian(x, dt), J, atol=1e-6)


@pytest.mark.parametrize("source", ["odom", "imu", "pose", "fiducial"])
@pytest.mark.parametrize("seed", range(3))
def test_measurement_jacobians_match_finite_differences(source, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 6)
    x[2] = rng.uniform(-2.5, 2.5)
    marker = (4.0, -2.0, 0.7)
    h = lambda v: np.asarray(measure(source, v, marker)[0])          # noqa: E731
    J = numeric_jacobian(h, x)
    np.testing.assert_allclose(np.array(measure(source, x, marker)[1]), J, atol=1e-6)


def test_fix_model_inverts():
    pose = (1.2, -0.4, 0.7)
    m = true_fix(3, pose)
    mk = MARKERS[3]
    back = robot_pose_from_fix((mk[0], mk[1], mk[3]), *m.z)
    np.testing.assert_allclose(back, pose, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_sequential_update_equals_batch_ekf(seed):
    """The numpy-free update (whitening + scalar rows) is the batch EKF update."""
    rng = np.random.default_rng(seed)
    A = rng.normal(0, 1, (6, 6))
    P = A @ A.T + 0.1 * np.eye(6)
    x = rng.normal(0, 1, 6)
    m = int(rng.integers(1, 4))
    H = rng.normal(0, 1, (m, 6))
    B = rng.normal(0, 0.3, (m, m))
    R = B @ B.T + 0.05 * np.eye(m)
    if seed % 2:
        R = np.diag(np.diag(R))
    y = rng.normal(0, 1, m)
    x1, P1, nis = smallmat.update(x.tolist(), P.tolist(), y.tolist(), H.tolist(),
                                  R.tolist(), 0.0)
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    np.testing.assert_allclose(x1, x + K @ y, atol=1e-9)
    np.testing.assert_allclose(P1, (np.eye(6) - K @ H) @ P, atol=1e-9)
    assert nis == pytest.approx(float(y @ np.linalg.solve(S, y)), rel=1e-9)


def test_small_matrix_predict_equals_dense():
    rng = np.random.default_rng(3)
    A = rng.normal(0, 1, (6, 6))
    P = A @ A.T
    x = rng.normal(0, 1, 6)
    q = [1e-3, 2e-3, 3e-4, 1.0, 2.0, 1e-6]
    _, f = motion(x, 0.02)
    F = motion_jacobian(x, 0.02)
    out = np.array(smallmat.predict(P.tolist(), f, q, 0.02))
    np.testing.assert_allclose(out, F @ P @ F.T + np.diag(q) * 0.02, atol=1e-12)


def test_chi2_approximation():
    # exact chi-square quantiles (SciPy) for the bounds the filter uses
    for dof, p, exact in ((3, 0.95, 7.8147), (3, 0.999, 16.266), (60, 0.999, 99.607),
                          (20, 0.99, 37.566)):
        assert chi2_upper(dof, p) == pytest.approx(exact, rel=0.02)


# ---------------------------------------------------------------------------- behaviour
def drive(ekf, t0, t1, v, w, rng, gyro_bias=0.0, pose0=(0.0, 0.0, 0.0), fixes=False):
    """Simulate a unicycle from pose0; feed odom (50 Hz), imu (100 Hz), optional fixes."""
    x, y, yaw = pose0
    t = t0
    k = 0
    while t < t1 - 1e-9:
        t = round(t + 0.01, 6)
        x += v * math.cos(yaw + 0.5 * w * 0.01) * 0.01
        y += v * math.sin(yaw + 0.5 * w * 0.01) * 0.01
        yaw = wrap_angle(yaw + w * 0.01)
        k += 1
        ekf.add(Measurement("imu", t, [math.nan, w + gyro_bias + rng.normal(0, 0.002)],
                            IMU_COV), now=t)
        if k % 2 == 0:
            ekf.add(Measurement("odom", t, [v + rng.normal(0, 0.005), w + rng.normal(0, 0.005)],
                                ODOM_COV), now=t)
        if fixes and k % 20 == 0:
            for tag in (1, 2, 3):
                ekf.add(fix_at(t, tag, (x, y, yaw), rng.normal(0, [0.01, 0.01, 0.01])), now=t)
    return (x, y, yaw)


def test_static_robot_stays_put():
    rng = np.random.default_rng(0)
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (1.0, 2.0, 0.3))
    drive(ekf, 0.0, 60.0, 0.0, 0.0, rng, gyro_bias=0.003)
    x, y, yaw = ekf.pose
    assert math.hypot(x - 1.0, y - 2.0) < 0.01
    assert abs(wrap_angle(yaw - 0.3)) < 0.01
    assert ekf.covariance_valid()


def test_straight_run_with_biased_gyro_converges():
    rng = np.random.default_rng(1)
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    bias = 0.02
    true = drive(ekf, 0.0, 60.0, 0.5, 0.0, rng, gyro_bias=bias)
    assert ekf.x[5] == pytest.approx(bias, abs=0.002), "gyro bias estimated"
    assert abs(wrap_angle(ekf.pose[2] - true[2])) < 0.02
    assert math.hypot(ekf.pose[0] - true[0], ekf.pose[1] - true[1]) < 0.3  # 30 m driven
    assert ekf.covariance_valid()


def test_fixes_correct_drift_and_estimate_is_consistent():
    rng = np.random.default_rng(2)
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (0.3, 0.2, 0.1), (0.5, 0.5, 0.2))      # 0.36 m, 0.1 rad off
    true = drive(ekf, 0.0, 20.0, 0.1, 0.05, rng, fixes=True)
    assert math.hypot(ekf.pose[0] - true[0], ekf.pose[1] - true[1]) < 0.03
    assert abs(wrap_angle(ekf.pose[2] - true[2])) < 0.02
    assert ekf.stats["fiducial"].accepted >= 290
    assert not ekf.health(20.0).diverged


def test_outlier_fixes_are_gated_out():
    rng = np.random.default_rng(3)
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    drive(ekf, 0.0, 5.0, 0.0, 0.0, rng, fixes=True)
    before = ekf.pose
    # tag 1 is 5 m ahead: the model std along the line of sight is 0.32 m
    for t, noise in ((5.01, (2.5, 0.0, 0.0)), (5.02, (0.0, 1.2, 0.0)), (5.03, (0.0, 0.0, 0.9))):
        r = ekf.add(fix_at(t, 1, (0.0, 0.0, 0.0), noise), now=t)
        assert not r.accepted and r.reason == "gated" and r.nis > 16.0
    np.testing.assert_allclose(ekf.pose[:2], before[:2], atol=2e-3)
    assert ekf.stats["fiducial"].rejected["gated"] == 3
    h = ekf.health(5.03)
    assert h.diverged and "fixes_rejected" in h.reasons       # 3 in a row: jump suspected
    ekf.add(fix_at(5.04, 2, (0.0, 0.0, 0.0)), now=5.04)       # a good fix clears it
    assert not ekf.health(5.04).diverged


def _stream(seed: int):
    rng = np.random.default_rng(seed)
    out = []
    x = y = yaw = 0.0
    v, w = 0.4, 0.2
    for k in range(1, 301):
        t = k * 0.01
        x += v * math.cos(yaw) * 0.01
        y += v * math.sin(yaw) * 0.01
        yaw += w * 0.01
        out.append(Measurement("imu", t, [math.nan, w + 0.01 + rng.normal(0, 0.002)], IMU_COV))
        if k % 2 == 0:
            out.append(Measurement("odom", t, [v + rng.normal(0, 0.01), w], ODOM_COV))
        if k % 20 == 0:
            out.append(fix_at(t, 1 + (k // 20) % 3, (x, y, yaw), rng.normal(0, 0.01, 3)))
    return out


def test_out_of_order_measurements_equal_in_order():
    stream = _stream(4)
    a = Ekf(EkfConfig(), MARKERS)
    a.initialize(0.0, (0.0, 0.0, 0.0))
    for m in stream:
        assert a.add(m, now=m.stamp).accepted
    # the same measurements, fixes arriving 0.15 s late and imu/odom shuffled in 50 ms bins
    rnd = random.Random(5)
    arrivals = []
    for m in stream:
        delay = 0.15 if m.source == "fiducial" else rnd.uniform(0.0, 0.05)
        arrivals.append((m.stamp + delay, rnd.random(), m))
    arrivals.sort(key=lambda a_: (a_[0], a_[1]))
    b = Ekf(EkfConfig(), MARKERS)
    b.initialize(0.0, (0.0, 0.0, 0.0))
    replayed = 0
    for arrive, _, m in arrivals:
        r = b.add(m, now=arrive)
        assert r.accepted, r
        replayed += r.replayed
    assert replayed > 100, "late measurements were re-filtered"
    np.testing.assert_allclose(b.x, a.x, atol=1e-9)
    np.testing.assert_allclose(b.P, a.P, atol=1e-12)


def test_history_limits():
    ekf = Ekf(EkfConfig(history_length_s=0.5), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    for k in range(1, 101):
        ekf.add(Measurement("odom", k * 0.01, [0.0, 0.0], ODOM_COV), now=k * 0.01)
    r = ekf.add(Measurement("odom", 0.3, [0.0, 0.0], ODOM_COV), now=1.0)
    assert (r.accepted, r.reason) == (False, "too_old")
    r = ekf.add(Measurement("odom", 1.5, [0.0, 0.0], ODOM_COV), now=1.0)
    assert (r.accepted, r.reason) == (False, "from_future")
    assert ekf.add(Measurement("odom", 0.7, [0.0, 0.0], ODOM_COV), now=1.0).accepted


# ---------------------------------------------------------------------------- bad input
BAD = [
    (Measurement("odom", 1.0, [math.nan, 0.0], ODOM_COV), "non_finite"),
    (Measurement("odom", 1.0, [math.inf, 0.0], ODOM_COV), "non_finite"),
    (Measurement("odom", 1.0, [0.1], ODOM_COV), "bad_shape"),
    (Measurement("odom", 1.0, "ab", ODOM_COV), "bad_shape"),
    (Measurement("odom", 1.0, [0.1, 0.0], None), "covariance_missing"),
    (Measurement("odom", 1.0, [0.1, 0.0], [[1e-4]]), "covariance_bad_shape"),
    (Measurement("odom", 1.0, [0.1, 0.0], [[math.nan, 0], [0, 1e-4]]), "covariance_non_finite"),
    (Measurement("odom", 1.0, [0.1, 0.0], [[1e-4, 1.0], [0, 1e-4]]), "covariance_not_symmetric"),
    (Measurement("odom", 1.0, [0.1, 0.0], [[1e-4, 1.0], [1.0, 1e-4]]), "covariance_not_psd"),
    (Measurement("odom", 1.0, [0.1, 0.0], [[-1.0, 0], [0, 1e-4]]), "covariance_not_psd"),
    (Measurement("odom", math.nan, [0.1, 0.0], ODOM_COV), "bad_stamp"),
    (Measurement("odom", 99.0, [0.1, 0.0], ODOM_COV), "from_future"),
    (Measurement("odom", 0.5, [0.1, 0.0], ODOM_COV), "too_old"),
    (Measurement("fiducial", 1.0, [1.0, 0.0, 0.0], None, tag=77, height=1.3), "unknown_marker"),
    (Measurement("fiducial", 1.0, [1.0, 0.0, 0.0], None, tag=None), "unknown_marker"),
    (Measurement("fiducial", 1.0, [40.0, 0.0, 0.0], None, tag=1, height=1.3), "too_far"),
    (Measurement("fiducial", 1.0, [1.0, 0.0, 0.0], None, tag=1, height=0.2), "height_mismatch"),
    (Measurement("pose", 1.0, [1.0, 0.0, 0.0], None), "covariance_missing"),
    (Measurement("wheels", 1.0, [1.0], None), "unknown_input"),
]


@pytest.mark.parametrize("m,reason", BAD, ids=[r for _, r in BAD])
def test_bad_input_rejected_with_reason_and_state_stays_valid(m, reason):
    ekf = Ekf(EkfConfig(history_length_s=0.2), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    ekf.add(Measurement("odom", 0.9, [0.0, 0.0], ODOM_COV), now=0.9)
    x0 = ekf.x
    r = ekf.add(m, now=1.0)
    assert (r.accepted, r.reason) == (False, reason)
    np.testing.assert_array_equal(ekf.x, x0)
    assert ekf.covariance_valid()
    counted = ekf.rejected_other if reason == "unknown_input" else ekf.stats[m.source].rejected
    assert counted[reason] == 1


def test_zero_covariance_is_floored_not_trusted_blindly():
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    r = ekf.add(Measurement("odom", 0.1, [0.3, 0.0], [[0.0, 0.0], [0.0, 0.0]]), now=0.1)
    assert r.accepted
    assert ekf.P[3, 3] >= 0.5 * EkfConfig().inputs["odom"].min_variance
    assert ekf.covariance_valid()


def test_fixed_covariance_policy_ignores_message():
    cfg = EkfConfig().with_input("odom", covariance="fixed")
    ekf = Ekf(cfg, MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    assert ekf.add(Measurement("odom", 0.1, [0.3, 0.0], None), now=0.1).accepted


def test_input_fields_select_what_is_fused():
    cfg = EkfConfig().with_input("fiducial", fields=("x", "y"))     # yaw of tags not fused
    ekf = Ekf(cfg, MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0), (0.1, 0.1, 0.05))
    r = ekf.add(fix_at(0.1, 1, (0.0, 0.0, 0.0), (0.0, 0.0, 2.5)), now=0.1)   # yaw garbage
    assert r.accepted and r.dof == 2
    assert abs(ekf.pose[2]) < 1e-9
    r = ekf.add(Measurement("fiducial", 0.2, [5.0, 0.0, math.nan], None, tag=1), now=0.2)
    assert r.accepted                                    # NaN in an unfused field is fine
    ekf2 = Ekf(EkfConfig().with_input("imu", fields=()), MARKERS)
    ekf2.initialize(0.0, (0.0, 0.0, 0.0))
    assert ekf2.add(Measurement("imu", 0.1, [0, 0], IMU_COV), now=0.1).reason == "input_disabled"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["odom", "imu", "fiducial", "pose"]),
    st.one_of(st.floats(-1.0, 3.0), st.sampled_from([math.nan, math.inf])),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=4),
    st.one_of(st.floats(-1e3, 1e3), st.sampled_from([math.nan, math.inf, 0.0])),
    st.sampled_from([1, 2, 3, 99, None])), max_size=40))
def test_garbage_never_breaks_the_filter(items):
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    for src, t, z, c, tag in items:
        n = len(z)
        cov = [[c if i == j else 0.0 for j in range(n)] for i in range(n)]
        ekf.add(Measurement(src, t, z, cov, tag=tag, height=1.3), now=2.0)
        assert np.isfinite(ekf.x).all()
        assert ekf.covariance_valid()


# ---------------------------------------------------------------------------- health
def test_kidnapped_robot_is_detected_and_relocalized():
    rng = np.random.default_rng(6)
    ekf = Ekf(EkfConfig(), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    drive(ekf, 0.0, 3.0, 0.0, 0.0, rng, fixes=True)
    kidnapped = (2.0, 1.5, 1.0)                        # the robot was carried away
    t, detected = 3.0, None
    while ekf.relocalizations == 0 and t < 6.0:
        t = round(t + 0.2, 6)
        for tag in (1, 3):
            ekf.add(fix_at(t, tag, kidnapped, rng.normal(0, 0.01, 3)), now=t)
        if detected is None and ekf.health(t).diverged:
            detected = t - 3.0
    assert detected is not None and detected <= 0.6
    assert ekf.relocalizations == 1 and t - 3.0 <= 0.6
    np.testing.assert_allclose(ekf.pose, kidnapped, atol=0.05)
    assert ekf.health(t).reasons == ("jumped",)         # held up a moment after the jump
    ekf.add(fix_at(t + 1.1, 1, kidnapped), now=t + 1.1)
    assert not ekf.health(t + 1.1).diverged


def test_overconfident_fixes_flag_inconsistency():
    """Fixes 6x noisier than they claim: innovations too large for their covariance."""
    cfg = EkfConfig().with_input("fiducial", covariance="fixed", fixed_std=(0.005, 0.005, 0.005),
                                 rejection_threshold=0.0)
    rng = np.random.default_rng(7)
    ekf = Ekf(cfg, MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0), (0.01, 0.01, 0.01))
    for k in range(1, 41):
        t = k * 0.1
        ekf.add(Measurement("odom", t, [0.0, 0.0], ODOM_COV), now=t)
        ekf.add(fix_at(t, 1 + k % 3, (0.0, 0.0, 0.0), rng.normal(0, 0.03, 3)), now=t)
    h = ekf.health(4.0)
    assert h.diverged and "fix_nis_high" in h.reasons and h.nis_mean > h.nis_upper_bound


def test_growing_uncertainty_is_reported():
    ekf = Ekf(EkfConfig(max_position_std_m=0.2), MARKERS)
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    assert not ekf.health(0.0).diverged
    h = ekf.health(300.0)            # five minutes without any input
    assert h.diverged and "position_uncertain" in h.reasons


# ---------------------------------------------------------------------------- config
def test_config_from_params_and_errors():
    cfg = ekf_config_from_params({"odom_fields": ["vx"], "fiducial_rejection_threshold": 3.0,
                                  "unrelated_parameter": 1})
    assert cfg.inputs["odom"].fields == (0,)
    assert cfg.inputs["fiducial"].rejection_threshold == 3.0
    with pytest.raises(ConfigError, match="odom_fields"):
        ekf_config_from_params({"odom_fields": ["x"]})
    with pytest.raises(ConfigError, match="nis_window"):
        ekf_config_from_params({"nis_window": 1})
    with pytest.raises(ParameterError, match="nis_min_samples"):
        ekf_config_from_params({"nis_window": 5, "nis_min_samples": 8})
    with pytest.raises(ValueError, match="initial pose"):
        Ekf().initialize(0.0, (math.nan, 0.0, 0.0))
