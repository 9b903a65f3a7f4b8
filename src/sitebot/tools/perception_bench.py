"""``sitebot bench perception``: camera pipelines per frame and the camera node's throughput,
then the spatial benchmarks (:mod:`.spatial_bench`) when installed.

Figures are measured side by side in one run and printed with the issue's aims and the
ratio measured / aim (< 1 = within the aim)."""
from __future__ import annotations

import argparse
import importlib
import math
import time

import numpy as np


def _frame(width: int, height: int):
    """A substation frame with the T1 gauges and tags about 1.3 m ahead."""
    from sitebot.perception.fiducials import marker_pose
    from sitebot.perception.gauge import layouts_from_world
    from sitebot.tools.camera_eval import CameraRig
    rig = CameraRig("substation", width, height)
    try:
        lay = layouts_from_world(rig.world)["t1_oil_temp_gauge"]
        T = marker_pose(rig.world.fiducial(lay.tag_id)) @ lay.T_tag_dial
        c = T[:3, 3]
        eye = c + np.array([0.25, 1.3, -0.15])
        rig.look(eye, c + np.array([0.25, 0.0, -0.15]))
        return rig.world, rig.render("bright"), rig.K, lay
    finally:
        rig.close()


def _time(fn, n: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t))
    return float(np.mean(ts)), float(np.percentile(ts, 95))


def _node_throughput(img: np.ndarray, K: np.ndarray, n: int) -> float:
    """Frames/s through the camera_perception node over DDS (the ROS part lives in the node
    module: core modules import no ROS)."""
    node_mod = importlib.import_module("sitebot.nodes.camera_perception")
    return float(node_mod.measure_throughput(img, K, n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench perception")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per figure")
    ap.add_argument("--camera-only", action="store_true", help="skip the spatial benchmarks")
    args, rest = ap.parse_known_args(argv)
    from sitebot.perception.fiducials import detector_for_registry
    from sitebot.perception.gauge import GaugeReader
    world, img640, K640, lay = _frame(640, 480)
    _, img320, K320, _ = _frame(320, 240)
    det = detector_for_registry(world.registry)
    reader = GaugeReader()
    rows = []
    dets = det.detect(img640, K640)
    m, p = _time(lambda: det.detect(img640, K640), args.repeat)
    rows.append((f"fiducials 640x480 ({len(dets)} tags) [ms]", m, p, 10.0))
    m, p = _time(lambda: det.detect(img320, K320), args.repeat)
    rows.append(("fiducials 320x240 [ms]", m, p, 10.0))
    by = {d.tag_id: d for d in dets}
    if lay.tag_id in by:
        T = by[lay.tag_id].T_cam_tag
        r = reader.read(img640, K640, lay, T)
        m, p = _time(lambda: reader.read(img640, K640, lay, T), args.repeat)
        rows.append((f"gauge read 640x480 (valid={r.valid}) [ms]", m, p, 20.0))
    fps = _node_throughput(img640, K640, max(10, args.repeat))
    print("camera perception benchmarks (this machine)")
    print(f"{'figure':46s} {'mean':>8s} {'p95':>8s} {'aim':>8s} {'ratio':>7s}")
    for name, m, p, aim in rows:
        print(f"{name:46s} {m:8.2f} {p:8.2f} {aim:8.1f} {m / aim:7.2f}")
    print(f"{'camera node throughput 640x480, all on [fps]':46s} {fps:8.1f} {'':>8s} "
          f"{5.0:8.1f} {5.0 / fps if fps > 0 else math.inf:7.2f}"
          "   (aim: the simulator's 5 Hz camera; ratio = aim / measured)")
    rc = 0
    if not args.camera_only:
        try:
            spatial = importlib.import_module("sitebot.tools.spatial_bench")
        except ImportError:
            spatial = None
        if spatial is not None:
            print()
            rc = int(spatial.main(list(rest) + ["--repeat", str(args.repeat)]) or 0)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
