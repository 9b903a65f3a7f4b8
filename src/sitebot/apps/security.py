"""``sitebot security``: the SROS2 access-control policy of the stack (docs/sros2.md).

  sitebot security policy [--namespace NS] [--remap FROM:=TO ...] [--simulator] [--out FILE]

writes the policy (sros2 format 0.2.0) generated from the node table
:data:`sitebot.security.sros2_policy.NODES` to FILE (default: standard output) and its
counts to standard error: the policy of ``robot.launch.yaml`` with its default arguments.
``--namespace``: the robot's namespace (profiles under ``/NS``, enclaves
``/sitebot/NS/<process>``); ``--remap``: a driver topic the launch maps onto a node's name
(as the launch's ``*_topic`` arguments do), e.g. ``scan:=/front/scan``; ``--simulator``: the
simulated launches instead (their names, plus the simulator's enclave; a robot's keystore
should not hold it).  Then ``ros2 security generate_artifacts -k KEYSTORE -p FILE`` on a ROS
install.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from sitebot.security.sros2_policy import policy_stats, policy_xml

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot security", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="action", required=True, metavar="ACTION")
    pol = sub.add_parser("policy", help="write the SROS2 policy of the stack")
    pol.add_argument("--namespace", default="", help="the robot's namespace ('' = none)")
    pol.add_argument("--remap", action="append", default=[], metavar="FROM:=TO",
                     help="a topic remapped for the robot's processes (repeatable)")
    pol.add_argument("--simulator", action="store_true",
                     help="add the simulator's enclave (simulated runs only)")
    pol.add_argument("--out", default="", help="policy file (default: standard output)")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    remaps = {}
    for r in a.remap:
        src, sep, dst = r.partition(":=")
        if not sep:
            ap.error(f"--remap {r}: expected FROM:=TO")
        remaps[src] = dst
    text = policy_xml(a.namespace, a.simulator, remaps)
    n = policy_stats(a.namespace, a.simulator, remaps)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(f"sitebot security policy: {n['enclaves']} enclaves, {n['rules']} rules "
          f"({n['own_rules']} from the node table){' -> ' + a.out if a.out else ''}",
          file=sys.stderr)
    return 0
