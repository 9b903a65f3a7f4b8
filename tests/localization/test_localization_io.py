"""The localization node's core halves (no ROS): message contents -> measurements
(sitebot.localization.inputs, fixes.detection_measurement) and filter -> published numbers
(sitebot.localization.outputs), checked with numbers."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sitebot.localization.config import EkfConfig
from sitebot.localization.ekf import Ekf
from sitebot.localization.fixes import detection_measurement
from sitebot.localization.inputs import (covariance_block, imu_measurement, odom_measurement,
                                         pose_measurement, reset_pose_std)
from sitebot.localization.outputs import (KNOWN_VARIANCE, filter_diagnostics, map_to_odom,
                                          pose_covariance, status_fields, twist_covariance)
from sitebot.types import DiagnosticLevel, Pose2D, matrix_quaternion, se2_compose, yaw_to_quaternion

FLAT = [float(v) for v in range(36)]          # a 6x6 "covariance" whose entries name their place


def test_covariance_block_takes_rows_and_columns():
    assert covariance_block(FLAT, (0, 5)) == [[0.0, 5.0], [30.0, 35.0]]
    assert covariance_block(FLAT, (0, 1, 5)) == [[0.0, 1.0, 5.0], [6.0, 7.0, 11.0],
                                                 [30.0, 31.0, 35.0]]
    assert covariance_block(list(range(9)), (2,)) == [[8.0]]
    with pytest.raises(ValueError, match="35 elements is not square"):
        covariance_block(FLAT[:35], (0,))


def test_odom_and_pose_measurements():
    m = odom_measurement(1.5, 0.4, -0.2, FLAT)
    assert (m.source, m.stamp, m.z) == ("odom", 1.5, [0.4, -0.2])
    assert m.cov == [[0.0, 5.0], [30.0, 35.0]]
    m = pose_measurement(2.0, Pose2D(1.0, 2.0, 0.5), FLAT)
    assert (m.source, m.stamp, m.z) == ("pose", 2.0, [1.0, 2.0, 0.5])
    assert m.cov == [[0.0, 1.0, 5.0], [6.0, 7.0, 11.0], [30.0, 31.0, 35.0]]


def test_imu_measurement_with_and_without_orientation():
    ocov = [1e-4, 0, 0, 0, 1e-4, 0, 0, 0, 2e-4]
    gcov = [4e-6, 0, 0, 0, 4e-6, 0, 0, 0, 9e-6]
    m = imu_measurement(3.0, yaw_to_quaternion(0.3), ocov, 0.05, gcov)
    assert m.source == "imu" and m.stamp == 3.0
    assert m.z[0] == pytest.approx(0.3, abs=1e-12) and m.z[1] == 0.05
    assert m.cov == [[2e-4, 0.0], [0.0, 9e-6]]
    none = [-1.0] + [0.0] * 8                  # sensor_msgs/Imu: no orientation estimate
    m = imu_measurement(3.0, (0.0, 0.0, 0.0, 1.0), none, -0.1, gcov)
    assert math.isnan(m.z[0]) and m.z[1] == -0.1
    assert math.isnan(m.cov[0][0]) and m.cov[1][1] == 9e-6


def test_reset_pose_std_uses_the_covariance_where_it_is_usable():
    cov = [0.0] * 36
    cov[0], cov[7], cov[35] = 0.04, 0.0, math.nan
    assert reset_pose_std(cov, (0.1, 0.2, 0.05, 9.0)) == pytest.approx([0.2, 0.2, 0.05])
    cov[7], cov[35] = 0.09, 0.0025
    assert reset_pose_std(cov, (0.1, 0.2, 0.05)) == pytest.approx([0.2, 0.3, 0.05])


def _tag_rotation(a: float) -> np.ndarray:
    """A vertical tag facing direction ``a`` in the base frame (OpenCV tag axes: z into the
    face, y down)."""
    z = np.array([-math.cos(a), -math.sin(a), 0.0])
    y = np.array([0.0, 0.0, -1.0])
    return np.column_stack([np.cross(y, z), y, z])


def test_detection_measurement_is_the_planar_fix_of_pose_base():
    q = matrix_quaternion(_tag_rotation(0.4))
    m = detection_measurement(7, 12.5, (2.0, 0.5, 1.2), q)
    assert (m.source, m.stamp, m.tag) == ("fiducial", 12.5, 7)
    np.testing.assert_allclose(m.z, [2.0, 0.5, 0.4], atol=1e-12)
    assert m.height == pytest.approx(1.2) and m.cov is None
    # without the camera orientation the message covariance is not used
    assert detection_measurement(7, 12.5, (2.0, 0.5, 1.2), q, [0.01] * 36).cov is None
    with pytest.raises(ValueError, match="not a rotation"):
        detection_measurement(7, 12.5, (2.0, 0.5, 1.2), (0.0, 0.0, 0.0, 0.0))


def test_detection_covariance_is_rotated_from_the_camera_into_the_base():
    # the tag faces the robot (a = 0) and is aligned with the camera (R_cam_tag = I), so
    # R_base_cam = R_base_tag: camera x -> base y, camera y -> base -z, camera z -> base -x
    q = matrix_quaternion(_tag_rotation(0.0))
    cov6 = np.diag([0.01, 0.04, 0.09, 0.001, 0.002, 0.003]).reshape(36).tolist()
    m = detection_measurement(3, 1.0, (1.5, 0.0, 1.0), q, cov6, (0.0, 0.0, 0.0, 1.0))
    np.testing.assert_allclose(m.cov, np.diag([0.09, 0.01, 0.002]), atol=1e-12)
    np.testing.assert_allclose(m.z, [1.5, 0.0, 0.0], atol=1e-12)


def test_published_covariances_place_the_planar_state():
    P = np.arange(36, dtype=float).reshape(6, 6)
    pc = np.array(pose_covariance(P)).reshape(6, 6)
    expect = np.diag([0.0, 0.0, KNOWN_VARIANCE, KNOWN_VARIANCE, KNOWN_VARIANCE, 0.0])
    for i, a in zip((0, 1, 5), (0, 1, 2)):          # x, y, yaw <- state x, y, yaw
        for j, b in zip((0, 1, 5), (0, 1, 2)):
            expect[i, j] = P[a, b]
    np.testing.assert_array_equal(pc, expect)
    assert pc[0, 5] == 2.0 and pc[5, 1] == 13.0 and pc[5, 5] == 14.0
    tc = np.array(twist_covariance(P)).reshape(6, 6)
    assert (tc[0, 0], tc[0, 5], tc[5, 0], tc[5, 5]) == (21.0, 22.0, 27.0, 28.0)
    np.testing.assert_array_equal(np.diag(tc)[1:5], [KNOWN_VARIANCE] * 4)
    assert np.count_nonzero(tc) == 8


def test_map_to_odom_composes_back_to_the_map_pose():
    mo = map_to_odom((1.0, 2.0, math.pi / 2), (1.0, 0.0, 0.0))
    assert isinstance(mo, Pose2D)
    np.testing.assert_allclose(mo, (1.0, 1.0, math.pi / 2), atol=1e-12)
    np.testing.assert_allclose(se2_compose(mo, (1.0, 0.0, 0.0)), (1.0, 2.0, math.pi / 2),
                               atol=1e-12)


def test_filter_diagnostics_levels_and_values():
    ekf = Ekf(EkfConfig(), {})
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    ds = filter_diagnostics(ekf, ekf.health(0.0), {"imu": Counter(unknown_frame=2)})
    assert [d.name for d in ds] == ["filter", "input odom", "input imu", "input fiducial",
                                    "input pose"]
    f = ds[0]
    assert f.level == DiagnosticLevel.WARN                      # dead reckoning: no fix yet
    assert f.message == "dead reckoning: no fiducial fix yet"
    assert dict(f.values) == {"position_std_m": "0.1000", "yaw_std_rad": "0.0500",
                              "gyro_bias_radps": "0.00000", "relocalizations": "0"}
    imu = dict(ds[2].values)
    assert ds[2].level == DiagnosticLevel.OK and ds[2].message == "no updates"
    assert imu["accepted"] == "0" and imu["nis_samples"] == "0"
    assert imu["rejected_unknown_frame"] == "2"
    # eight updates with NIS 100 (2 dof) each: far above the bound of the window mean
    st = ekf.stats["odom"]
    st.nis.extend([(100.0, 2)] * 8)
    odom = filter_diagnostics(ekf, ekf.health(0.0))[1]
    bound = st.nis_bound(ekf.config.nis_probability)
    assert odom.level == DiagnosticLevel.WARN
    assert odom.message == f"NIS mean 100.00 (bound {bound:.2f})"
    assert dict(odom.values)["nis_mean"] == "100.000"
    # a filter whose position std exceeds the limit is diverged: ERROR
    lost = Ekf(EkfConfig(max_position_std_m=0.05), {})
    lost.initialize(0.0, (0.0, 0.0, 0.0))
    d = filter_diagnostics(lost, lost.health(0.0))[0]
    assert d.level == DiagnosticLevel.ERROR and "position_uncertain" in d.message


def test_status_fields_of_a_health():
    ekf = Ekf(EkfConfig(), {})
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    h = ekf.health(0.0)
    f = status_fields(h)
    assert f == {"diverged": False, "position_std_m": pytest.approx(0.1),
                 "yaw_std_rad": pytest.approx(0.05), "seconds_since_fix": -1.0,
                 "nis_mean": 0.0, "nis_upper_bound": 0.0,          # NaN: no fix yet
                 "fixes_accepted": 0, "fixes_rejected": 0,
                 "message": "dead reckoning: no fiducial fix yet"}
    ekf.stats["fiducial"].nis.extend([(3.0, 3)] * 4)
    f = status_fields(ekf.health(0.0))
    assert f["nis_mean"] == 3.0
    assert f["nis_upper_bound"] == pytest.approx(
        ekf.stats["fiducial"].nis_bound(ekf.config.nis_probability))
    assert f["nis_upper_bound"] > 3.0
