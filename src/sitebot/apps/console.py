"""``sitebot console``: serve the web console (the ``web_console`` node, in this process).

  sitebot console [--host 127.0.0.1] [--port 8080] [--users FILE] [--site substation]
                  [--audit-log FILE] [--console-log FILE] [--use-sim-time]
                  [--ros-args ...]
  sitebot console --hash-password        (reads a password, prints the hash for a users file)

The flags become the node's parameters; anything after ``--ros-args`` is passed on (remaps,
more parameters).  With no ROS graph the page is served all the same (nothing to show).
"""
from __future__ import annotations

import argparse
import getpass
import sys

from sitebot.console.auth import hash_password

__all__ = ["main", "build_ros_args"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sitebot console", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", help="listen address (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, help="port (default 8080; 0 = any free port)")
    ap.add_argument("--users", help="users YAML file (default config/console_users.yaml, "
                                    "demo users only)")
    ap.add_argument("--site", help="site bundle whose map is shown: a folder or an installed "
                    "site (default substation)")
    ap.add_argument("--audit-log", help="the safety supervisor's audit log to show")
    ap.add_argument("--console-log", help="append the console's own audit log here")
    ap.add_argument("--use-sim-time", action="store_true", help="use /clock (simulation)")
    ap.add_argument("--hash-password", action="store_true",
                    help="read a password (twice) and print its PBKDF2 hash")
    return ap


def build_ros_args(ns: argparse.Namespace, rest: list[str]) -> list[str]:
    """The node's argv: ``--ros-args -p name:=value ...`` plus what the caller added."""
    params = {"host": ns.host, "port": ns.port, "users_file": ns.users, "site": ns.site,
              "audit_log": ns.audit_log, "console_log": ns.console_log}
    out = ["sitebot-console", "--ros-args"]
    for k, v in params.items():
        if v is not None:
            out += ["-p", f"{k}:={v}" if k == "port" else f"{k}:='{v}'"]
    if ns.use_sim_time:
        out += ["-p", "use_sim_time:=true"]
    if rest:
        out += [a for a in rest if a != "--ros-args"]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, rest = argv[:i], argv[i:]
    ns = _parser().parse_args(argv)
    if ns.hash_password:
        if sys.stdin.isatty():
            pw = getpass.getpass("password: ")
            if getpass.getpass("again: ") != pw:
                print("passwords differ", file=sys.stderr)
                return 2
        else:
            pw = sys.stdin.readline().rstrip("\n")
        if len(pw) < 8:
            print("refused: use at least 8 characters", file=sys.stderr)
            return 2
        print(hash_password(pw))
        return 0
    if ns.port is not None and not 0 <= ns.port <= 65535:
        print(f"--port {ns.port}: must be 0..65535", file=sys.stderr)
        return 2
    from sitebot.nodes.web_console import main as node_main  # rclpy only on the node side
    return node_main(build_ros_args(ns, rest))
