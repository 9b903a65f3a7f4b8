"""The SROS2 access-control policy of sitebot's stack (docs/sros2.md).  No rclpy.

:data:`NODES` is the one table of what each sitebot process creates on ROS: the topics it
publishes and subscribes, the services it serves and calls, the actions it executes and
sends goals to.  It is read off the node sources (``tests/security/test_sros2_policy.py``
parses every ``create_publisher``/``create_subscription``/``create_service``/
``create_client``/``ActionServer``/``ActionClient`` call with ``ast`` and fails when the
table and the code differ).  :func:`policy_xml` turns it into an SROS2 policy document
(format 0.2.0, ``sros2/policy/schemas/policy.xsd``): one enclave per process, holding one
profile that allows exactly that process's interfaces, plus what every rclpy node creates
(:data:`EVERY_NODE`).  Everything else is denied (sros2 ends every grant with
``<default>DENY</default>``), so, with ``ROS_SECURITY_STRATEGY=Enforce``:

* only ``safety_supervisor`` may publish ``cmd_vel``, ``arm/joint_trajectory`` and
  ``safety/state`` (what the control loop obeys); the rest of the stack asks through
  ``cmd_vel_in`` and ``arm/joint_trajectory_in``;
* only ``control_loop`` may publish the ros2_control controllers' command topics;
* only ``web_console`` and the operator tool (``sitebot safety``, enclave ``operator``) may
  call ``safety/request`` (the signed reset and mode change); nobody is granted the
  unauthenticated ``safety/reset`` (the supervisor refuses it anyway: docs/security.md).

Names are ROS names, as the nodes create them (sros2 adds the DDS ``rt/``, ``rq/``, ``rr/``
prefixes itself): relative names resolve under the profile's ``ns``, ``~/x`` under the
node's own name, ``/x`` is absolute.

Namespace.  ``policy_xml(namespace="robot1")`` is the policy of a robot whose stack runs
under ``/robot1`` (launch ``namespace:``, ``sitebot safety --namespace``): every profile
gets ``ns="/robot1"``, so relative names become ``/robot1/cmd_vel`` and so on, absolute ones
(``/diagnostics``, ``/clock``, ``/rosout``, ``/parameter_events``) stay global, and the
enclaves are ``/sitebot/robot1/<process>`` so that the policies of several robots can share
one keystore.  The simulator is the exception: it runs in the root namespace and publishes
each robot's topics under the robot's name; its profile keeps ``ns="/"`` and prefixes those
(``{robot}/`` in the table) with the namespace.

Remaps.  A policy names the topics on the wire, so a launch's remaps count: by default the
policy is that of ``launch/robot.launch.yaml`` with its default arguments
(:data:`ROBOT_REMAPS`: wheel odometry from ``/diff_drive_controller/odom``; the sensor
arguments default to the nodes' own names), applied to the robot's processes.  Other driver
topics: ``remaps={"scan": "/front/scan"}`` (``--remap scan:=/front/scan``), merged over
those.  With ``simulator=True`` the policy is that of the simulated launches, which remap
nothing.

Parameter-dependent interfaces are listed as the launch files use them: ``control_loop``'s
arm command topic for both controller types ``hardware.launch.yaml`` offers, navigation's
``map`` subscription (parameter ``map_source: topic``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping
from xml.sax.saxutils import escape, quoteattr

from sitebot.errors import SitebotError

__all__ = ["POLICY_VERSION", "ENCLAVE_ROOT", "ROBOT", "KINDS", "Interfaces", "NODES",
           "EVERY_NODE", "ROBOT_REMAPS", "PolicyError", "Profile", "normalize_namespace",
           "enclave_path", "resolve_name", "remaps_for", "profiles", "policy_xml",
           "policy_stats"]

#: the sros2 policy format written (the only one policy.xsd accepts: ``fixed="0.2.0"``)
POLICY_VERSION = "0.2.0"
#: every sitebot enclave lies under this path
ENCLAVE_ROOT = "/sitebot"
#: marks a simulator name that is per robot (replaced by ``<namespace>/``, or nothing)
ROBOT = "{robot}/"

#: verbs of the policy format: (element, child, attribute) per permission kind
_KINDS = (("publish", "topics", "topic", "publish"),
          ("subscribe", "topics", "topic", "subscribe"),
          ("serve", "services", "service", "reply"),
          ("call", "services", "service", "request"),
          ("execute", "actions", "action", "execute"),
          ("send", "actions", "action", "call"))
KINDS = tuple(k[0] for k in _KINDS)

_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^(~/|/)?{_TOKEN}(/{_TOKEN})*$")
_NAMESPACE = re.compile(rf"^{_TOKEN}(/{_TOKEN})*$")


class PolicyError(SitebotError):
    """A namespace or an interface name that cannot make an SROS2 policy."""


@dataclass(frozen=True)
class Interfaces:
    """What one sitebot process creates on ROS (names as in its source).

    ``enclave``: the enclave's last path element (default: the node name); ``source``: the
    file under ``src/sitebot/`` that creates the node; ``robot``: part of a robot's policy
    (False: only with ``simulator=True``); ``namespaced``: runs in the robot's namespace
    (False: the root namespace, per-robot names marked :data:`ROBOT`)."""
    node: str
    source: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    serve: tuple[str, ...] = ()
    call: tuple[str, ...] = ()
    execute: tuple[str, ...] = ()
    send: tuple[str, ...] = ()
    enclave: str = ""
    robot: bool = True
    namespaced: bool = True
    note: str = ""

    @property
    def enclave_name(self) -> str:
        return self.enclave or self.node

    def names(self, kind: str) -> tuple[str, ...]:
        """The names of one permission kind (:data:`KINDS`)."""
        return getattr(self, kind)


_DIAG = "/diagnostics"

#: every sitebot process and its interfaces, in start order of the robot launch
NODES: tuple[Interfaces, ...] = (
    Interfaces(
        "control_loop", "nodes/control_loop.py",
        publish=("arm_controller/commands",              # forward_command_controller
                 "arm_trajectory_controller/joint_trajectory",  # joint_trajectory_controller
                 "diff_drive_controller/cmd_vel", "control/state", _DIAG),
        subscribe=("joint_states", "cmd_vel", "arm/joint_trajectory", "safety/state"),
        note="arm command topic per arm_controller_type (hardware.launch.yaml offers both); "
             "ControlIO (nodes/control_io.py) adds cmd_vel, arm/joint_trajectory, "
             "safety/state and control/state"),
    Interfaces(
        "map_server", "nodes/map_server.py",
        publish=("map", "keepout_filter_mask"),
        serve=("map_server/map",),
        note="the site bundle's map and keep-out mask; keepout_filter_mask with "
             "publish_keepout_mask (default true)"),
    Interfaces(
        "safety_supervisor", "nodes/safety_supervisor.py",
        publish=("cmd_vel", "arm/joint_trajectory", "safety/state", "safety/markers",
                 "safety/zones", _DIAG),
        subscribe=("cmd_vel_in", "arm/joint_trajectory_in", "scan", "people", "odom",
                   "odometry/filtered", "localization/status", "battery_state",
                   "safety/estop", "teleop/deadman", "safety/heartbeat", "control/state"),
        serve=("safety/trigger_estop", "safety/reset", "safety/request"),
        note="safety/request is served by nodes/safety_authority.py"),
    Interfaces(
        "localization", "nodes/localization.py",
        publish=("odometry/filtered", "tf", "localization/status", _DIAG),
        subscribe=("odom", "imu/data", "fiducials", "pose", "initialpose", "set_pose"),
        serve=("localization/reset",)),
    Interfaces(
        "camera_perception", "nodes/camera_perception.py",
        publish=("fiducials", "gauges", "perception/markers", _DIAG),
        subscribe=("camera/camera_info", "camera/color/image_raw")),
    Interfaces(
        "spatial_perception", "nodes/spatial_perception.py",
        publish=("points", "obstacles", "local_map", "people", "perception/people_markers",
                 _DIAG),
        subscribe=("camera/depth/image_raw", "camera/depth/camera_info", "scan", "odom",
                   "odometry/filtered")),
    Interfaces(
        "navigation", "nodes/navigation.py",
        publish=("cmd_vel_in", "hri/say", "plan", "navigation/costmap", _DIAG),
        subscribe=("odom", "odometry/filtered", "scan", "local_map", "people",
                   "safety/state", "goal_pose", "map"),
        execute=("navigate_to_place",),
        note="map: with map_source 'topic'"),
    Interfaces(
        "arm_planner", "nodes/arm_planner.py",
        publish=("arm/joint_trajectory_in", _DIAG),
        subscribe=("joint_states", "obstacles", "odometry/filtered", "odom"),
        execute=("move_arm",)),
    Interfaces(
        "task_planner", "nodes/task_planner.py",
        publish=("task/plan", _DIAG),
        subscribe=("task/command",)),
    Interfaces(
        "task_executor", "nodes/task_executor.py",
        publish=("cmd_vel_in", "arm/joint_trajectory_in", "task/confirmation_request",
                 "task/status"),
        subscribe=("safety/state", "odometry/filtered", "odom", "scan",
                   "camera/color/image_raw", "camera/depth/image_raw",
                   "camera/depth/camera_info", "gauges", "fiducials", "obstacles",
                   "joint_states", "task/confirm", "task/plan"),
        execute=("execute_plan",),
        send=("navigate_to_place", "move_arm")),
    Interfaces(
        "web_console", "nodes/web_console.py",
        publish=("cmd_vel_in", "teleop/deadman", "safety/estop", "task/command",
                 "task/confirm", _DIAG),
        subscribe=("odometry/filtered", "odom", "plan", "people", "safety/state",
                   "camera/color/image_raw", "gauges", "task/status", "task/plan",
                   "task/confirmation_request", "survey/status"),
        call=("safety/trigger_estop", "safety/request", "survey/start", "survey/stop"),
        send=("execute_plan",)),
    Interfaces(
        "teleop_relay", "nodes/teleop_relay.py",
        publish=("cmd_vel_in", "teleop/deadman", _DIAG),
        subscribe=("teleop/cmd_vel", "joy", "safety/state")),
    Interfaces(
        "survey_recorder", "nodes/survey_recorder.py",
        publish=("survey/status",),
        subscribe=("scan", "odom", "imu/data", "tf", "tf_static", "camera/camera_info",
                   "camera/color/image_raw"),
        serve=("survey/start", "survey/stop"),
        note="records a site survey to a bag on request (docs/commissioning.md)"),
    Interfaces(
        "site_viz", "nodes/site_viz.py",
        publish=("map", "site/markers", "viz/markers", _DIAG),
        subscribe=("safety/state", "gauges", "task/status")),
    Interfaces(
        "sitebot_safety_request", "apps/safety.py", enclave="operator",
        call=("safety/request",),
        note="`sitebot safety reset|mode` (run with ROS_SECURITY_ENCLAVE_OVERRIDE)"),
    Interfaces(
        "simulator", "nodes/simulator.py", robot=False, namespaced=False,
        publish=tuple(ROBOT + n for n in (
            "joint_states", "odom", "imu/data", "scan", "camera/color/image_raw",
            "camera/depth/image_raw", "camera/camera_info", "camera/depth/camera_info", "tf",
            "tf_static", "robot_description", "ground_truth/odom", "ground_truth/people",
            "ground_truth/objects", "control/state")) + ("/clock", _DIAG, "sim/fault_events",
                                                         "/sim/barrier_ack"),
        subscribe=tuple(ROBOT + n for n in ("cmd_vel", "arm/joint_trajectory",
                                            "safety/state", "hri/say")) + ("sim/fault",
                                                                "/sim/barrier_ack"),
        serve=("sim/reset", "sim/pause", "sim/step"),
        note="the robot's drivers and ros2_control in simulation; ControlIO with the robot's "
             "name as prefix"),
)

#: what rclpy creates for every node (measured on a bare node: rcl's log publisher, the
#: parameter events publisher, the parameter and type-description services; /clock with
#: use_sim_time, as every simulated launch sets it; the simulator's stack barrier acks, made
#: by run_node for a node started with sim_lockstep: sitebot.nodes.barrier_ack)
EVERY_NODE: Mapping[str, tuple[str, ...]] = {
    "publish": ("/rosout", "/parameter_events", "/sim/barrier_ack"),
    "subscribe": ("/clock",),
    "serve": ("~/describe_parameters", "~/get_parameter_types", "~/get_parameters",
              "~/get_type_description", "~/list_parameters", "~/set_parameters",
              "~/set_parameters_atomically"),
}


#: the remaps of launch/robot.launch.yaml with its default arguments (identity ones left out;
#: tests/security/test_sros2_policy.py reads the launch file and checks this)
ROBOT_REMAPS: Mapping[str, str] = {"odom": "/diff_drive_controller/odom"}


def normalize_namespace(namespace: str) -> str:
    """``namespace`` without leading or trailing slashes ('' = the root namespace).

    :raises PolicyError: a namespace ROS would refuse (tokens of letters, digits and ``_``,
    not starting with a digit, separated by ``/``)."""
    ns = namespace.strip().strip("/")
    if ns and not _NAMESPACE.match(ns):
        raise PolicyError(f"namespace {namespace!r}: not a ROS namespace (tokens of letters, "
                          "digits and '_', not starting with a digit, separated by '/')")
    return ns


def enclave_path(node: Interfaces, namespace: str = "") -> str:
    """The enclave of *node* in the policy of the robot under *namespace*."""
    ns = normalize_namespace(namespace)
    return "/".join(p for p in (ENCLAVE_ROOT, ns, node.enclave_name) if p)


def remaps_for(simulator: bool = False,
               remaps: Mapping[str, str] | None = None) -> dict[str, str]:
    """The remaps a policy applies to the robot's processes: :data:`ROBOT_REMAPS` (none for
    the simulated launches, *simulator*) with *remaps* over them.

    :raises PolicyError: a remap whose side is not a ROS name."""
    out = dict({} if simulator else ROBOT_REMAPS)
    for src, dst in (remaps or {}).items():
        for n in (src, dst):
            if not _NAME.match(n):
                raise PolicyError(f"remap {src}:={dst}: {n!r} is not a ROS name")
        out[src] = dst
    return out


def _name(node: Interfaces, name: str, ns: str, remaps: Mapping[str, str]) -> str:
    if node.robot:
        name = remaps.get(name, name)
    if name.startswith(ROBOT):
        if node.namespaced:
            raise PolicyError(f"{node.node} ({node.source}): {name!r}: the {ROBOT} prefix is "
                              "for a process in the root namespace (namespaced=False)")
        name = f"{ns}/{name[len(ROBOT):]}" if ns else name[len(ROBOT):]
    if not _NAME.match(name):
        raise PolicyError(f"{node.node} ({node.source}): {name!r} is not a ROS name")
    return name


def resolve_name(ns: str, node: str, name: str) -> str:
    """The fully qualified name sros2 makes of *name* in a profile ``ns``/``node`` (what
    its ``permissions.xsl`` does before adding ``rt/``, ``rq/``, ``rr/``)."""
    if name.startswith("/"):
        return name
    base = "/" + ns.strip("/") if ns.strip("/") else ""
    if name.startswith("~"):
        return f"{base}/{node}{name[1:]}"
    return f"{base}/{name}"


@dataclass(frozen=True)
class Profile:
    """One enclave with its one profile, names ready for the document."""
    enclave: str
    ns: str
    node: str
    source: str
    rules: Mapping[str, tuple[str, ...]]       # own interfaces per kind (sorted)
    common: Mapping[str, tuple[str, ...]]      # EVERY_NODE per kind

    def allowed(self, kind: str) -> set[str]:
        """Fully qualified names this profile allows for *kind*."""
        return {resolve_name(self.ns, self.node, n)
                for n in (*self.rules.get(kind, ()), *self.common.get(kind, ()))}


def profiles(namespace: str = "", simulator: bool = False,
             remaps: Mapping[str, str] | None = None,
             nodes: Iterable[Interfaces] = NODES) -> list[Profile]:
    """The profiles of the policy for the robot under *namespace* (the simulator's only with
    *simulator*; remaps: :func:`remaps_for`)."""
    ns = normalize_namespace(namespace)
    remaps = remaps_for(simulator, remaps)
    out = []
    for node in nodes:
        if not (node.robot or simulator):
            continue
        rules = {k: tuple(sorted({_name(node, n, ns, remaps) for n in node.names(k)}))
                 for k in KINDS}
        out.append(Profile(enclave_path(node, ns), "/" + ns if node.namespaced else "/",
                           node.node, node.source, {k: v for k, v in rules.items() if v},
                           EVERY_NODE))
    return out


def _groups(rules: Mapping[str, tuple[str, ...]], indent: str) -> Iterator[str]:
    for kind, element, child, attr in _KINDS:
        names = rules.get(kind, ())
        if not names:
            continue
        yield f'{indent}<{element} {attr}="ALLOW">'
        for n in names:
            yield f"{indent}  <{child}>{escape(n)}</{child}>"
        yield f"{indent}</{element}>"


def policy_xml(namespace: str = "", simulator: bool = False,
               remaps: Mapping[str, str] | None = None) -> str:
    """The SROS2 policy document (format :data:`POLICY_VERSION`) of sitebot's stack for the
    robot under *namespace*; with *simulator*, the simulator's enclave too (and the
    simulated launches' names); *remaps* over :data:`ROBOT_REMAPS`.

    :raises PolicyError: a bad namespace, remap or table name (naming it)."""
    ns = normalize_namespace(namespace)
    applied = remaps_for(simulator, remaps)
    what = ", ".join(w for w in (
        f"namespace {ns}" if ns else "", "with the simulator" if simulator else "",
        "remaps " + " ".join(f"{a}:={b}" for a, b in sorted(applied.items())) if applied
        else "") if w)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- sitebot's SROS2 access-control policy" + (f" ({what})" if what else "")
             + ", generated by `sitebot security policy` from "
             "src/sitebot/security/sros2_policy.py: do not edit (docs/sros2.md) -->",
             f'<policy version="{POLICY_VERSION}">', "  <enclaves>"]
    for p in profiles(ns, simulator, remaps):
        lines += [f"    <enclave path={quoteattr(p.enclave)}>", "      <profiles>",
                  f"        <profile ns={quoteattr(p.ns)} node={quoteattr(p.node)}>",
                  f"          <!-- {escape(p.source)} -->"]
        lines += _groups(p.rules, " " * 10)
        lines.append("          <!-- every rclpy node -->")
        lines += _groups(p.common, " " * 10)
        lines += ["        </profile>", "      </profiles>", "    </enclave>"]
    lines += ["  </enclaves>", "</policy>", ""]
    return "\n".join(lines)


def policy_stats(namespace: str = "", simulator: bool = False,
                 remaps: Mapping[str, str] | None = None) -> dict[str, int]:
    """Counts of the policy: ``enclaves`` (= ``profiles``), ``rules`` (one name allowed for
    one permission kind in one profile, the every-node ones included) and ``own_rules``
    (those from :data:`NODES` alone)."""
    ps = profiles(namespace, simulator, remaps)
    own = sum(len(v) for p in ps for v in p.rules.values())
    common = sum(len(v) for p in ps for v in p.common.values())
    return {"enclaves": len(ps), "profiles": len(ps), "rules": own + common, "own_rules": own}
