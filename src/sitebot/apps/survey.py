"""``sitebot survey start|stop|status``: record a site survey for commissioning
(docs/commissioning.md) by asking the robot's ``survey_recorder`` node, on this shell's ROS
domain (``--namespace`` for a namespaced robot).

  sitebot survey start     open a new bag folder under the recorder's survey_dir
  sitebot survey stop      close it; prints the folder and what it holds
  sitebot survey status    recording or idle, and the figures of the current/last survey

Then drive the robot by teleop (through the safety supervisor, as always) around the site,
past every fiducial marker, back to the start, and run ``sitebot map build <folder>``.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot survey", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("start", "stop", "status"))
    ap.add_argument("--namespace", default="", help="the robot's namespace")
    ap.add_argument("--timeout", type=float, default=10.0, help="waiting for the recorder [s]")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))

    import rclpy
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_srvs.srv import Trigger

    from sitebot.nodes.common import QOS_LATCHED

    rclpy.init()
    try:
        node = rclpy.create_node("sitebot_survey", namespace=a.namespace or None)
        if a.action == "status":
            got: list = []
            node.create_subscription(DiagnosticStatus, "survey/status", got.append,
                                     QOS_LATCHED)
            end = time.monotonic() + a.timeout
            while not got and time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.1)
            if not got:
                print(f"sitebot survey: error: no survey/status within {a.timeout:g} s "
                      "(is survey_recorder running?)", file=sys.stderr)
                return 2
            st = got[-1]
            print(f"survey: {st.message}" + "".join(f"\n  {kv.key}: {kv.value}"
                                                   for kv in st.values if kv.value))
            return 0
        cli = node.create_client(Trigger, f"survey/{a.action}")
        if not cli.wait_for_service(timeout_sec=a.timeout):
            print(f"sitebot survey: error: {cli.srv_name} not available (is survey_recorder "
                  "running?)", file=sys.stderr)
            return 2
        fut = cli.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(node, fut, timeout_sec=a.timeout)
        res = fut.result()
        if res is None:
            print(f"sitebot survey: error: no answer within {a.timeout:g} s", file=sys.stderr)
            return 2
        if a.action == "start" and res.success:
            print(f"recording the survey to {res.message}")
        else:
            print(f"survey {a.action}: {'done' if res.success else 'refused'}: {res.message}")
        return 0 if res.success else 1
    finally:
        rclpy.try_shutdown()
