"""Survey recording on the simulated robot: teleop.launch.yaml (simulator, supervisor in
hold-to-run manual mode, teleop relay, map server, survey recorder); ``sitebot survey
start|stop|status`` from a shell; a scripted operator drives through the teleop relay
(``teleop/cmd_vel``, as teleop_twist_keyboard does), so every motion passes the supervisor.
The bag is judged by what ``sitebot map build`` and the marker survey need: topics, rates in
sim time, images that decode, a camera_info before each image."""
from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from sitebot.commissioning.survey import COMPRESSED_TOPIC, PNG_FORMAT
from sitebot.launcher import launched
from sitebot.bag import read_bag

from rosprobe import Probe

pytestmark = pytest.mark.integration

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def survey(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sitebot.cli", "survey", *args],
                          capture_output=True, text=True, timeout=60)


class Operator:
    """Holds a teleop key: Twist on teleop/cmd_vel at 10 Hz while ``cmd`` is set."""

    def __init__(self, probe: Probe) -> None:
        self.pub = probe.publisher(Twist, "teleop/cmd_vel")
        self.cmd: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.cmd is not None:
                m = Twist()
                m.linear.x, m.angular.z = self.cmd
                self.pub.publish(m)
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)


def test_a_teleop_survey_is_recorded(tmp_path):
    probe = Probe()
    probe.subscribe(Clock, "/clock", "state", keep=False)
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    probe.subscribe(DiagnosticStatus, "survey/status", LATCHED)
    op = None
    try:
        with launched("teleop.launch.yaml", {"world": "substation", "survey_dir":
                                             str(tmp_path / "surveys")}) as h:
            probe.wait_for(lambda: probe.count("survey/status") > 0
                           and probe.count("ground_truth/odom") > 5, 90,
                           "survey/status and ground truth", launch=h)
            assert probe.get("survey/status")[-1][1].message == "idle"
            r = survey("stop")
            assert r.returncode == 1 and "not recording" in r.stdout, r.stdout + r.stderr
            r = survey("start")
            assert r.returncode == 0, r.stdout + r.stderr
            assert r.stdout.startswith("recording the survey to "), r.stdout
            bag = Path(r.stdout.strip().removeprefix("recording the survey to "))
            assert bag.parent == tmp_path / "surveys", bag
            r = survey("start")
            assert r.returncode == 1 and "already recording" in r.stdout
            op = Operator(probe)
            t0 = probe.latest_sim_time()
            x0 = probe.get("ground_truth/odom")[-1][1].pose.pose.position
            for cmd, dur in (((0.3, 0.0), 5.0), ((0.0, 0.6), 3.0), ((0.3, 0.0), 4.0)):
                op.cmd = cmd
                t_end = probe.latest_sim_time() + dur
                probe.wait_for(lambda: probe.latest_sim_time() >= t_end, 60,
                               f"sim time {t_end:.1f} s", launch=h)
            op.cmd = None
            x1 = probe.get("ground_truth/odom")[-1][1].pose.pose.position
            moved = math.hypot(x1.x - x0.x, x1.y - x0.y)
            probe.wait_for(lambda: probe.get("survey/status")[-1][1].message == "recording"
                           and int(dict((kv.key, kv.value) for kv in probe.get(
                               "survey/status")[-1][1].values)["scans"]) > 50, 30,
                           "a recording status")
            r = survey("status")
            assert r.returncode == 0 and r.stdout.startswith("survey: recording"), r.stdout
            r = survey("stop")
            assert r.returncode == 0, r.stdout + r.stderr
            assert f"survey stop: done: {bag}" in r.stdout, r.stdout
            t1 = probe.latest_sim_time()
            probe.wait_for(lambda: probe.get("survey/status")[-1][1].message == "idle", 10,
                           "an idle status")
    finally:
        if op is not None:
            op.close()
        probe.close()
    print(f"\nteleop drive: {moved:.2f} m in {t1 - t0:.1f} s sim; stop: {r.stdout.strip()}")
    assert moved > 1.0, f"the teleop drive moved the robot {moved:.2f} m"
    msgs = read_bag(bag)
    for topic in ("/scan", "/odom", "/imu/data", "/tf", "/tf_static", "/camera/camera_info",
                  COMPRESSED_TOPIC):
        assert msgs.get(topic), f"{topic} missing: {sorted(msgs)}"
    span = (msgs["/scan"][-1][0] - msgs["/scan"][0][0]) * 1e-9
    scan_hz = (len(msgs["/scan"]) - 1) / span
    img_t = [t for t, _ in msgs[COMPRESSED_TOPIC]]
    img_hz = (len(img_t) - 1) / ((img_t[-1] - img_t[0]) * 1e-9)
    print(f"bag: {span:.1f} s sim, scans {len(msgs['/scan'])} ({scan_hz:.1f} Hz), images "
          f"{len(img_t)} ({img_hz:.2f} Hz), odometry {len(msgs['/odom'])}")
    assert span >= 12.0
    assert 8.0 <= scan_hz <= 11.0                      # the simulated lidar: 10 Hz
    assert 1.0 <= img_hz <= 2.05      # image_rate_hz 2 (the camera renders at 5 Hz)
    info_t = sorted(t for t, _ in msgs["/camera/camera_info"])
    for t, m in msgs[COMPRESSED_TOPIC]:
        assert m.format == PNG_FORMAT
        assert info_t[0] <= t, "an image without a camera_info before it"
    img = cv2.imdecode(np.frombuffer(bytes(msgs[COMPRESSED_TOPIC][-1][1].data), np.uint8),
                       cv2.IMREAD_UNCHANGED)
    info = msgs["/camera/camera_info"][-1][1]
    assert img.shape == (info.height, info.width, 3) and img.std() > 5.0
    odom = [m.pose.pose.position for _, m in msgs["/odom"]]
    assert math.hypot(odom[-1].x - odom[0].x, odom[-1].y - odom[0].y) > 1.0
