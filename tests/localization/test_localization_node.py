"""The localization node with real rclpy over DDS: odom, imu and fiducials in (from a
separate test node), odometry/filtered, map -> odom on tf, localization/status and
/diagnostics out, checked numerically; bad input is counted and does not stop it."""
from __future__ import annotations

import math

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu
from tf2_msgs.msg import TFMessage

from sitebot.nodes import convert
from sitebot.nodes.common import QOS_SENSOR, QOS_STATE
from sitebot.nodes.localization import LocalizationNode
from sitebot.sim.world_loader import load_world
from sitebot.types import quaternion_to_yaw, se2_compose, yaw_to_quaternion
from sitebot_interfaces.msg import FiducialDetection, FiducialDetectionArray, LocalizationStatus

from rosprobe import spin_until

START = (-12.0, -12.0, 0.0)          # substation robot1 spawn


class Rig:
    def __init__(self) -> None:
        self.ctx = Context()
        rclpy.init(context=self.ctx)
        self.node = LocalizationNode(context=self.ctx, parameter_overrides=[
            Parameter("world", value="substation"),
            Parameter("initial_pose", value=" ".join(str(v) for v in START)),
            Parameter("publish_rate_hz", value=50.0),
            Parameter("diagnostics_period_s", value=0.2)])
        self.io = rclpy.create_node("localization_test_io", context=self.ctx)
        self.odom_pub = self.io.create_publisher(Odometry, "odom", QOS_STATE)
        self.imu_pub = self.io.create_publisher(Imu, "imu/data", QOS_SENSOR)
        self.fid_pub = self.io.create_publisher(FiducialDetectionArray, "fiducials", QOS_SENSOR)
        self.got: dict[str, list] = {"filtered": [], "tf": [], "status": [], "diag": []}
        self.io.create_subscription(Odometry, "odometry/filtered",
                                    lambda m: self.got["filtered"].append(m), QOS_STATE)
        self.io.create_subscription(TFMessage, "tf", lambda m: self.got["tf"].append(m),
                                    QOS_STATE)
        self.io.create_subscription(LocalizationStatus, "localization/status",
                                    lambda m: self.got["status"].append(m), QOS_STATE)
        self.io.create_subscription(DiagnosticArray, "/diagnostics",
                                    lambda m: self.got["diag"].append(m), QOS_STATE)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)

    def spin_until(self, cond, timeout: float, what: str) -> None:
        spin_until(cond, timeout, what, executor=self.ex, step=0.01)

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def close(self) -> None:
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def odom_msg(t: float, pose, v: float, w: float = 0.0, child="base_footprint") -> Odometry:
    m = Odometry()
    m.header.stamp = convert.to_time(t)
    m.header.frame_id = "odom"
    m.child_frame_id = child
    m.pose.pose.position.x, m.pose.pose.position.y = pose[0], pose[1]
    q = yaw_to_quaternion(pose[2])
    o = m.pose.pose.orientation
    o.x, o.y, o.z, o.w = q
    m.twist.twist.linear.x, m.twist.twist.angular.z = v, w
    cov = np.diag([1e-4, 1e-6, 1e6, 1e6, 1e6, 1e-4])
    m.twist.covariance = cov.reshape(36).tolist()
    m.pose.covariance = cov.reshape(36).tolist()
    return m


def imu_msg(t: float, gz: float) -> Imu:
    m = Imu()
    m.header.stamp = convert.to_time(t)
    m.header.frame_id = "imu_link"
    m.orientation.w = 1.0
    m.orientation_covariance = [1e-4, 0, 0, 0, 1e-4, 0, 0, 0, 1e-4]
    m.angular_velocity.z = gz
    m.angular_velocity_covariance = [4e-6, 0, 0, 0, 4e-6, 0, 0, 0, 4e-6]
    return m


def fiducial_msg(t: float, tag: int, robot_pose) -> FiducialDetectionArray:
    """A detection of ``tag`` as seen from ``robot_pose`` (pose_base, OpenCV tag axes)."""
    mk = load_world("substation").registry.marker(tag)
    x, y, yaw = robot_pose
    c, s = math.cos(yaw), math.sin(yaw)
    bx, by = c * (mk.x - x) + s * (mk.y - y), -s * (mk.x - x) + c * (mk.y - y)
    a = mk.yaw - yaw                      # face direction in the base frame
    # tag axes in the base frame: z into the face = -(cos a, sin a, 0); y down; x = y cross z
    zb = np.array([-math.cos(a), -math.sin(a), 0.0])
    yb = np.array([0.0, 0.0, -1.0])
    xb = np.cross(yb, zb)
    R = np.column_stack([xb, yb, zb])
    qw = math.sqrt(max(1.0 + R[0, 0] + R[1, 1] + R[2, 2], 1e-12)) / 2
    q = ((R[2, 1] - R[1, 2]) / (4 * qw), (R[0, 2] - R[2, 0]) / (4 * qw),
         (R[1, 0] - R[0, 1]) / (4 * qw), qw)
    d = FiducialDetection()
    d.tag_id = tag
    d.family = "tag36h11"
    d.pose_base.position.x, d.pose_base.position.y, d.pose_base.position.z = bx, by, mk.z
    o = d.pose_base.orientation
    o.x, o.y, o.z, o.w = q
    d.size_m = mk.size_m
    m = FiducialDetectionArray()
    m.header.stamp = convert.to_time(t)
    m.header.frame_id = "camera_color_optical_frame"
    m.base_frame = "base_footprint"
    m.detections = [d]
    return m


def latest_tf(rig):
    for m in reversed(rig.got["tf"]):
        for tf in m.transforms:
            if tf.header.frame_id == "map" and tf.child_frame_id == "odom":
                return tf
    return None


def test_fuses_odom_imu_fiducials_and_publishes_pose_and_map_to_odom(rig):
    t0 = rig.now()                # messages published in real time, when the clock is there
    v = 0.5
    # 1 s straight at 0.5 m/s along odom x (which is map x from the start pose)
    for k in range(1, 51):
        t = t0 + 0.02 * k
        rig.spin_until(lambda: rig.now() >= t, 5.0, "the clock")
        rig.odom_pub.publish(odom_msg(t, (v * 0.02 * k, 0.0, 0.0), v))
        rig.imu_pub.publish(imu_msg(t, 0.0))
        for _ in range(4):
            rig.ex.spin_once(timeout_sec=0.0)
    t_end = t0 + 1.0

    def done():
        f = rig.got["filtered"]
        return f and abs(convert.from_time(f[-1].header.stamp) - t_end) < 1e-6
    rig.spin_until(done, 10.0, "odometry/filtered at the last odom stamp")
    f = rig.got["filtered"][-1]
    assert f.header.frame_id == "map" and f.child_frame_id == "base_footprint"
    assert f.pose.pose.position.x == pytest.approx(START[0] + 0.5, abs=0.02)
    assert f.pose.pose.position.y == pytest.approx(START[1], abs=0.01)
    assert f.twist.twist.linear.x == pytest.approx(0.5, abs=0.02)
    cov = np.array(f.pose.covariance).reshape(6, 6)
    assert cov[0, 0] > 0 and cov[1, 1] > 0 and cov[5, 5] > 0
    np.testing.assert_allclose(cov, cov.T)
    tf = latest_tf(rig)
    assert tf is not None
    # odom started at the start pose: map -> odom is the start pose
    assert tf.transform.translation.x == pytest.approx(START[0], abs=0.02)
    assert tf.transform.translation.y == pytest.approx(START[1], abs=0.01)

    # a fix says the robot is 0.2 m further left than the filter thinks
    truth = (START[0] + 0.5, START[1] + 0.2, 0.0)
    near = sorted(load_world("substation").registry.markers,
                  key=lambda m: math.hypot(m.x - truth[0], m.y - truth[1]))[:2]
    for k in range(1, 51):                          # 1 s, robot at rest, fixes at 10 Hz
        t = t_end + 0.02 * k
        rig.spin_until(lambda: rig.now() >= t, 5.0, "the clock")
        rig.odom_pub.publish(odom_msg(t, (0.5, 0.0, 0.0), 0.0))
        rig.imu_pub.publish(imu_msg(t, 0.0))
        if k % 5 == 0:
            for mk in near:
                rig.fid_pub.publish(fiducial_msg(t, mk.tag, truth))
        for _ in range(6):                          # take what arrived (keep-last queues)
            rig.ex.spin_once(timeout_sec=0.0)
    t_fix_end = t_end + 1.0
    rig.spin_until(lambda: rig.node.ekf.stats["fiducial"].accepted >= 20
                   and done2(rig, t_fix_end), 10.0,
                   f"twenty fixes fused ({rig.node.ekf.stats['fiducial']})")
    f = rig.got["filtered"][-1]
    pose = (f.pose.pose.position.x, f.pose.pose.position.y,
            quaternion_to_yaw((f.pose.pose.orientation.x, f.pose.pose.orientation.y,
                               f.pose.pose.orientation.z, f.pose.pose.orientation.w)))
    assert math.hypot(pose[0] - truth[0], pose[1] - truth[1]) < 0.04
    tf = latest_tf(rig)
    mo = (tf.transform.translation.x, tf.transform.translation.y,
          quaternion_to_yaw((tf.transform.rotation.x, tf.transform.rotation.y,
                             tf.transform.rotation.z, tf.transform.rotation.w)))
    # map -> odom composed with the odom pose is the filtered pose of the same stamp
    same = [g for g in rig.got["filtered"] if g.header.stamp == tf.header.stamp]
    assert same, "odometry/filtered and tf carry the same stamps"
    g = same[-1].pose.pose
    pose_then = (g.position.x, g.position.y, quaternion_to_yaw(
        (g.orientation.x, g.orientation.y, g.orientation.z, g.orientation.w)))
    np.testing.assert_allclose(se2_compose(mo, (0.5, 0.0, 0.0)), pose_then, atol=1e-6)
    assert mo[1] == pytest.approx(START[1] + 0.2, abs=0.05)
    rig.spin_until(lambda: rig.got["status"] and rig.got["status"][-1].fixes_accepted >= 20,
                   5.0, "status with the fixes")
    s = rig.got["status"][-1]
    assert s.state == LocalizationStatus.STATE_OK and not s.diverged
    assert 0 < s.position_std_m < 0.1 and s.nis_upper_bound > 0
    rig.spin_until(lambda: any(st.name.endswith("input fiducial") for d in rig.got["diag"]
                               for st in d.status), 5.0, "diagnostics per input")


def done2(rig, t):
    f = rig.got["filtered"]
    return bool(f) and convert.from_time(f[-1].header.stamp) >= t - 1e-6


def test_bad_input_is_counted_and_the_node_keeps_going(rig):
    t0 = rig.now()
    rig.odom_pub.publish(odom_msg(t0, (0.0, 0.0, 0.0), math.nan))           # NaN speed
    rig.odom_pub.publish(odom_msg(t0, (0.0, 0.0, 0.0), 0.1, child="wheel"))  # unknown frame
    bad_cov = odom_msg(t0, (0.0, 0.0, 0.0), 0.1)
    bad_cov.twist.covariance = (-np.eye(6)).reshape(36).tolist()            # not PSD
    rig.odom_pub.publish(bad_cov)
    rig.odom_pub.publish(odom_msg(t0 + 30.0, (0.0, 0.0, 0.0), 0.1))         # from the future
    imu = imu_msg(t0, 0.0)
    imu.header.frame_id = "somewhere"
    rig.imu_pub.publish(imu)
    unknown = fiducial_msg(t0, 1, START)
    unknown.detections[0].tag_id = 4242                                    # not surveyed
    rig.fid_pub.publish(unknown)
    st = rig.node.ekf.stats

    def counted():
        return (st["odom"].rejected["non_finite"] == 1
                and rig.node.node_rejects["odom"]["unknown_frame"] == 1
                and st["odom"].rejected["covariance_not_psd"] == 1
                and st["odom"].rejected["from_future"] == 1
                and rig.node.node_rejects["imu"]["unknown_frame"] == 1
                and st["fiducial"].rejected["unknown_marker"] == 1)
    rig.spin_until(counted, 10.0, "every bad message counted with its reason")
    assert rig.node.ekf.covariance_valid()
    t1 = rig.now()
    rig.odom_pub.publish(odom_msg(t1, (0.0, 0.0, 0.0), 0.0))
    rig.spin_until(lambda: st["odom"].accepted >= 1 and done2(rig, t1), 10.0,
                   "a good message after the bad ones")
    f = rig.got["filtered"][-1]
    assert f.pose.pose.position.x == pytest.approx(START[0], abs=0.01)


def test_diagnostic_status_from_a_core_diagnostic():
    from diagnostic_msgs.msg import DiagnosticStatus

    from sitebot.types import Diagnostic, DiagnosticLevel
    d = Diagnostic("input fiducial", DiagnosticLevel.WARN, "NIS mean 9.00 (bound 4.10)",
                   (("accepted", "12"), ("rejected_too_far", "3")))
    st = convert.diagnostic_status(d, "localization", "localization")
    assert st.level == DiagnosticStatus.WARN and st.name == "localization: input fiducial"
    assert st.message == "NIS mean 9.00 (bound 4.10)" and st.hardware_id == "localization"
    assert [(kv.key, kv.value) for kv in st.values] == [("accepted", "12"),
                                                        ("rejected_too_far", "3")]
    for level, want in ((DiagnosticLevel.OK, DiagnosticStatus.OK),
                        (DiagnosticLevel.ERROR, DiagnosticStatus.ERROR)):
        assert convert.diagnostic_status(d._replace(level=level), "n", "h").level == want
