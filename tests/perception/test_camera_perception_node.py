"""camera_perception with real rclpy (one process, DDS between the test and the node):
synthetic frames with a tag and its dial go in, fiducials and gauge readings come out;
bad frames are skipped with a warning and the node keeps working."""
import math
from functools import partial

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image

from sitebot.nodes.camera_perception import CameraPerceptionNode, image_to_array
from sitebot.nodes.common import QOS_SENSOR, QOS_STATE
from sitebot.nodes.convert import to_time
from sitebot.nodes.convert_images import camera_info_msg, image_rgb_msg
from sitebot.perception.gauge import layouts_from_world
from sitebot.sim.world import DialSpec
from sitebot.sim.world_loader import load_world
from sitebot.tools.synthetic_camera import (dial_texture, look_pose, paste_plane, pinhole_K,
                                            tag_texture)
from sitebot_interfaces.msg import FiducialDetectionArray, GaugeReading

from rosprobe import spin_until

FRAME = "camera_color_optical_frame"


def _frame(value: float):
    """The substation's t1_oil_temp_gauge (tag 2) 1.2 m ahead, slightly turned."""
    w = load_world("substation")
    lay = layouts_from_world(w)["t1_oil_temp_gauge"]
    K = pinhole_K(640, 480)
    img = np.full((480, 640, 3), 90, np.uint8)
    T = look_pose(1.2, 10.0, 0.0, 0.0, offset=(0.0, 0.15))
    tex, half = tag_texture(2, 0.08)
    paste_plane(img, K, T, tex, half)
    spec = DialSpec(lay.unit, lay.min_value, lay.max_value)
    paste_plane(img, K, T @ lay.T_tag_dial, dial_texture(spec, value), lay.radius_m)
    img = (img.astype(np.float32) * 0.85).astype(np.uint8)
    return img, K, T, lay


@pytest.fixture(scope="module")
def rig():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = CameraPerceptionNode(context=ctx, parameter_overrides=[
        rclpy.Parameter("gauge_rate_hz", value=0.0),
        rclpy.Parameter("warn_period_s", value=0.0)])
    test = rclpy.create_node("camera_perception_test", context=ctx)
    got = {"fid": [], "gauge": [], "diag": []}
    test.create_subscription(FiducialDetectionArray, "fiducials",
                             lambda m: got["fid"].append(m), QOS_STATE)
    test.create_subscription(GaugeReading, "gauges", lambda m: got["gauge"].append(m), QOS_STATE)
    test.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: got["diag"].append(m), QOS_STATE)
    img_pub = test.create_publisher(Image, "camera/color/image_raw", QOS_SENSOR)
    info_pub = test.create_publisher(CameraInfo, "camera/camera_info", QOS_SENSOR)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.add_node(test)

    spin = partial(spin_until, executor=ex)

    yield node, img_pub, info_pub, got, spin
    ex.shutdown()
    node.destroy_node()
    test.destroy_node()
    rclpy.shutdown(context=ctx)


def _publish_info(rig, K, w=640, h=480):
    node, _, info_pub, _, spin_until = rig
    node.info = None

    def send():
        info_pub.publish(camera_info_msg(K, w, h, to_time(1.0), FRAME))
        return node.info is not None and node.info.width == w
    spin_until(send, what="camera_info at the node")


def test_fiducials_and_gauge_from_a_frame(rig):
    node, img_pub, _, got, spin_until = rig
    img, K, T, lay = _frame(71.0)
    _publish_info(rig, K)
    n_fid, n_g = len(got["fid"]), len(got["gauge"])
    img_pub.publish(image_rgb_msg(img, to_time(2.5), FRAME))
    spin_until(lambda: len(got["fid"]) > n_fid and len(got["gauge"]) > n_g, what="outputs")
    fid = got["fid"][-1]
    assert fid.header.frame_id == FRAME and fid.base_frame == "base_footprint"
    assert abs(fid.header.stamp.sec + fid.header.stamp.nanosec * 1e-9 - 2.5) < 1e-6
    assert [d.tag_id for d in fid.detections] == [2]
    d = fid.detections[0]
    assert d.asset_id == "t1_oil_temp_gauge" and d.size_m == pytest.approx(0.08)
    p = d.pose.pose.position
    assert np.linalg.norm(np.array([p.x, p.y, p.z]) - T[:3, 3]) < 0.03
    cov = np.array(d.pose.covariance).reshape(6, 6)
    assert np.allclose(cov, cov.T) and np.all(np.diag(cov) > 0)
    # pose_base: the tag in front of and above the base, from the URDF mount
    pb = d.pose_base.position
    assert 0.8 < pb.x < 1.5 and abs(pb.y) < 0.5
    g = got["gauge"][-1]
    assert g.asset_id == "t1_oil_temp_gauge" and g.unit == "degC"
    assert g.valid, g.failure_reason
    assert abs(g.value - 71.0) <= 0.02 * (lay.max_value - lay.min_value)
    assert g.crop.width == 96 and g.crop.encoding == "rgb8" and len(g.crop.data) == 96 * 96 * 3


def test_bgr_and_mono_frames(rig):
    node, img_pub, _, got, spin_until = rig
    img, K, T, lay = _frame(40.0)
    _publish_info(rig, K)
    m = image_rgb_msg(img[:, :, ::-1].copy(), to_time(3.0), FRAME)
    m.encoding = "bgr8"
    n = len(got["gauge"])
    img_pub.publish(m)
    spin_until(lambda: len(got["gauge"]) > n, what="gauge from bgr8")
    assert got["gauge"][-1].valid and abs(got["gauge"][-1].value - 40.0) <= 2.4
    gray = img.mean(axis=2).astype(np.uint8)
    m = Image(height=480, width=640, encoding="mono8", step=640, data=gray.tobytes())
    m.header.frame_id = FRAME
    n, nf = len(got["gauge"]), len(got["fid"])
    img_pub.publish(m)
    spin_until(lambda: len(got["gauge"]) > n and len(got["fid"]) > nf, what="mono8 outputs")
    assert [d.tag_id for d in got["fid"][-1].detections] == [2]
    assert not got["gauge"][-1].valid          # a red needle needs colour: refused
    assert "colour" in got["gauge"][-1].failure_reason


def test_bad_frames_are_skipped_and_the_node_keeps_working(rig):
    node, img_pub, info_pub, got, spin_until = rig
    img, K, T, lay = _frame(55.0)
    _publish_info(rig, K)
    good = image_rgb_msg(img, to_time(4.0), FRAME)
    bad = []
    m = image_rgb_msg(img, to_time(4.1), FRAME)
    m.encoding = "rgba16"
    bad.append(("bad_image", m))
    m = image_rgb_msg(img, to_time(4.2), FRAME)
    m.data = bytes(m.data)[:1000]
    bad.append(("bad_image", m))
    bad.append(("bad_image", Image(height=0, width=0, encoding="rgb8", step=0)))
    m = image_rgb_msg(img[:240, :320].copy(), to_time(4.3), FRAME)
    bad.append(("camera_info_mismatch", m))
    for kind, msg in bad:
        before = node.skipped.get(kind, 0)
        img_pub.publish(msg)
        spin_until(lambda: node.skipped.get(kind, 0) > before, what=f"skip {kind}")
    # NaN intrinsics
    info = camera_info_msg(K, 640, 480, to_time(1.0), FRAME)
    info.k = [math.nan] * 9
    node.info = None
    spin_until(lambda: (info_pub.publish(info), node.info is not None)[1], what="NaN info")
    before = node.skipped.get("bad_camera_info", 0)
    img_pub.publish(good)
    spin_until(lambda: node.skipped.get("bad_camera_info", 0) > before, what="skip NaN K")
    # good frames work again
    _publish_info(rig, K)
    n = len(got["gauge"])
    img_pub.publish(good)
    spin_until(lambda: len(got["gauge"]) > n, what="gauge after bad frames")
    assert got["gauge"][-1].valid
    # diagnostics report the skips and latencies
    n_diag = len(got["diag"])
    spin_until(lambda: any(s.values for a in got["diag"][n_diag:] for s in a.status
                           if s.name.startswith("camera_perception")), timeout=5.0,
               what="diagnostics")
    st = [s for a in got["diag"] for s in a.status if s.name.startswith("camera_perception")][-1]
    kv = {v.key: v.value for v in st.values}
    assert int(kv["frames_skipped"]) >= 5 and int(kv["frames_processed"]) >= 1
    assert float(kv["fiducials_latency_mean_ms"]) > 0


def test_image_conversion_strides():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    padded = np.zeros((4, 18), np.uint8)
    padded[:, :15] = img.reshape(4, 15)
    m = Image(height=4, width=5, encoding="rgb8", step=18, data=padded.tobytes())
    arr, enc = image_to_array(m)
    assert enc == "rgb8" and np.array_equal(arr, img)


def test_pose_from_matrix_keeps_the_rotation():
    from sitebot.nodes.convert import pose_from_matrix
    from sitebot.types import quaternion_matrix, rpy_matrix
    for rpy in ((0.3, -1.2, 2.5), (math.pi, 0.0, 0.0), (0.0, 0.0, -3.0)):
        T = np.eye(4)
        T[:3, :3] = rpy_matrix(*rpy)
        T[:3, 3] = (1.0, -2.0, 3.5)
        p = pose_from_matrix(T)
        o = p.orientation
        assert (p.position.x, p.position.y, p.position.z) == (1.0, -2.0, 3.5)
        assert o.w >= 0.0 and math.isclose(o.x ** 2 + o.y ** 2 + o.z ** 2 + o.w ** 2, 1.0)
        np.testing.assert_allclose(quaternion_matrix((o.x, o.y, o.z, o.w)), T[:3, :3],
                                   atol=1e-12)
