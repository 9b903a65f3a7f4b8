"""``sitebot key`` and ``sitebot safety``: the site's authority key, and the supervisor's
authenticated requests from a shell (docs/security.md).

  sitebot key init [PATH]            create the key (32 random bytes, mode 0600) unless it
                                     exists; PATH default: $SITEBOT_AUTHORITY_KEY, else
                                     ~/.config/sitebot/authority.key
  sitebot key check [PATH]           check that the key is usable (size, owner, mode)
  sitebot safety reset [--user U]    reset the latched emergency stop (role supervisor)
  sitebot safety mode MODE [--user U] [--role operator|supervisor]
                                     automatic, manual or reduced_speed

``sitebot safety`` signs its request with the key file (whoever can read it acts with the
role it names: keep it to the robot's operators) and calls ``safety/request`` (under
``--namespace``, on this shell's ROS domain).
"""
from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Sequence

from sitebot.security import Authority, AuthorityError, ensure_key, load_key, resolve_key_path
from sitebot.security.requests import RESET_SUBJECT

__all__ = ["key_main", "safety_main"]


def key_main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot key", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("init", "check"))
    ap.add_argument("path", nargs="?", default="", help="key file (default: "
                    "$SITEBOT_AUTHORITY_KEY, else ~/.config/sitebot/authority.key)")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    path = resolve_key_path(a.path)
    if a.action == "check":
        load_key(path)
        print(f"authority key {path}: ok")
        return 0
    existed = path.exists()
    ensure_key(path)
    print(f"authority key {path}: {'exists (checked)' if existed else 'created (mode 0600)'}")
    return 0


def safety_main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot safety", description="an authenticated "
                                 "request to the safety supervisor (safety/request)")
    ap.add_argument("request", choices=("reset", "mode"))
    ap.add_argument("mode", nargs="?", default="", help="for 'mode': automatic, manual, "
                    "reduced_speed")
    ap.add_argument("--user", default=getpass.getuser(), help="who asks (audited)")
    ap.add_argument("--role", default="supervisor", choices=("operator", "supervisor"))
    ap.add_argument("--key", default="", help="key file (default as for `sitebot key`)")
    ap.add_argument("--namespace", default="", help="the robot's namespace")
    ap.add_argument("--timeout", type=float, default=5.0, help="waiting for the service [s]")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    if a.request == "mode" and not a.mode:
        ap.error("'mode' needs the mode: automatic, manual or reduced_speed")
    auth = Authority.open(a.key)
    try:
        token = auth.sign(a.request, RESET_SUBJECT if a.request == "reset" else a.mode,
                          a.user, a.role, time.time())
    except AuthorityError as e:
        print(f"sitebot safety: error: {e}", file=sys.stderr)
        return 2

    import rclpy

    from sitebot_interfaces.srv import SafetyRequest

    rclpy.init()
    try:
        node = rclpy.create_node("sitebot_safety_request", namespace=a.namespace or None)
        cli = node.create_client(SafetyRequest, "safety/request")
        if not cli.wait_for_service(timeout_sec=a.timeout):
            print(f"sitebot safety: error: {cli.srv_name} not available", file=sys.stderr)
            return 2
        fut = cli.call_async(SafetyRequest.Request(request=a.request, mode=a.mode,
                                                   authority=token))
        rclpy.spin_until_future_complete(node, fut, timeout_sec=a.timeout)
        res = fut.result()
        if res is None:
            print(f"sitebot safety: error: no answer within {a.timeout:g} s", file=sys.stderr)
            return 2
        print(f"{a.request}{' ' + a.mode if a.mode else ''}: "
              f"{'done' if res.success else 'refused'}: {res.message}")
        return 0 if res.success else 1
    finally:
        rclpy.try_shutdown()
