"""The SROS2 policy of the stack (sitebot.security.sros2_policy, docs/sros2.md).

* The generated policy validates against sros2's own schema (``tests/data/sros2/policy.xsd``,
  vendored verbatim: its upstream sha256 is checked) with lxml, as sros2's ``load_policy``
  does; broken documents are refused by the same schema, so the check has teeth.
* The node table is the code: every ``create_publisher``/``create_subscription``/
  ``create_service``/``create_client``/``ActionServer``/``ActionClient`` call that builds a
  sitebot node (its module and the ``sitebot.nodes`` helpers it imports), read with ``ast``,
  is in its row and every name in a row is created by the code; the node name too.
* What the control loop obeys (``cmd_vel``, ``arm/joint_trajectory``, ``safety/state``) only
  the supervisor may publish; the controllers' command topics only the control loop;
  ``safety/request`` only the console and the operator tool may call; ``safety/reset`` no one.
* The every-node block is what a bare rclpy node creates (measured on one, in-process).
* The default policy's remaps are robot.launch.yaml's (default arguments), node by node.
* A namespaced policy puts every name where ROS resolves it; the committed
  ``config/sros2/sitebot_policy.xml`` is the generator's output.
"""
from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import pytest
import yaml
from lxml import etree

from sitebot.apps.security import main as security_main
from sitebot.cli import main as cli_main
from sitebot.security.sros2_policy import (EVERY_NODE, KINDS, NODES, ROBOT, ROBOT_REMAPS,
                                           Interfaces, PolicyError, policy_stats, policy_xml,
                                           resolve_name)

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "sitebot"
DATA = ROOT / "tests" / "data" / "sros2"
COMMITTED = ROOT / "config" / "sros2" / "sitebot_policy.xml"
UPSTREAM_SHA256 = "a8553fbb63f2b604a414a76d512728b37210918b9d14b4307b1ef236a30d4c7c"
XML_XSD_URL = "http://www.w3.org/2001/03/xml.xsd"

#: the counts of the default policy (robot stack: 13 nodes + the operator tool)
ENCLAVES = 15
OWN_RULES = 151
RULES = OWN_RULES + ENCLAVES * 11          # 11 every-node rules per profile

#: policy attribute per table kind
ATTR = {"publish": "publish", "subscribe": "subscribe", "serve": "reply", "call": "request",
        "execute": "execute", "send": "call"}


# ---------------------------------------------------------------------- schema
class _OfflineXmlNamespace(etree.Resolver):
    """policy.xsd imports the XML namespace's schema from w3.org: resolved here, offline."""

    def resolve(self, url, pubid, context):
        if url == XML_XSD_URL:
            return self.resolve_filename(str(DATA / "xml_namespace.xsd"), context)
        return None


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_OfflineXmlNamespace())
    return etree.XMLSchema(etree.parse(str(DATA / "policy.xsd"), parser))


def parse(text: str) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(text.encode("utf-8")))


def test_vendored_schema_is_upstream_verbatim() -> None:
    text = (DATA / "policy.xsd").read_bytes()
    header = re.compile(rb"\n<!-- sitebot-vendor-header.*?-->\n", re.S)
    assert len(header.findall(text)) == 1, "policy.xsd: one vendor header comment expected"
    assert hashlib.sha256(header.sub(b"\n", text)).hexdigest() == UPSTREAM_SHA256


@pytest.mark.parametrize("namespace,simulator,enclaves", [
    ("", False, ENCLAVES), ("robot1", False, ENCLAVES), ("", True, ENCLAVES + 1),
    ("fleet/robot_2", True, ENCLAVES + 1)])
def test_policy_validates_against_sros2_schema(schema, namespace, simulator, enclaves) -> None:
    doc = parse(policy_xml(namespace, simulator))
    assert schema.validate(doc), str(schema.error_log)
    assert len(doc.findall("enclaves/enclave")) == enclaves
    assert len(doc.findall("enclaves/enclave/profiles/profile")) == enclaves
    # one permission per group, so a rule is one name element
    assert all(len(g.attrib) == 1 for g in doc.iter("topics", "services", "actions"))
    stats = policy_stats(namespace, simulator)
    assert stats["profiles"] == enclaves
    assert stats["rules"] == sum(1 for _ in doc.iter("topic", "service", "action"))


def test_default_policy_counts() -> None:
    assert policy_stats() == {"enclaves": ENCLAVES, "profiles": ENCLAVES, "rules": RULES,
                              "own_rules": OWN_RULES}


@pytest.mark.parametrize("broken", [
    ('publish="ALLOW"', 'publish="MAYBE"'),              # not a rule qualifier
    ('<policy version="0.2.0">', '<policy version="0.1.0">'),   # fixed version
    ('<topics publish="ALLOW">\n            <topic>/diagnostics</topic>',
     '<topics publish="ALLOW">\n            <topix>/diagnostics</topix>'),
    (' node="safety_supervisor"', ""),                   # required attribute
])
def test_schema_refuses_broken_policies(schema, broken) -> None:
    text = policy_xml()
    assert broken[0] in text
    assert not schema.validate(parse(text.replace(broken[0], broken[1], 1)))


# ---------------------------------------------------------------------- the code
CREATE = {"create_publisher": "publish", "create_subscription": "subscribe",
          "create_service": "serve", "create_client": "call"}
ACTIONS = {"ActionServer": "execute", "ActionClient": "send"}
#: receivers that are the node being built (a bench's own ``pub_node`` is not)
RECEIVERS = {"self", "node", "self.node"}


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _loop_values(expr: ast.Name, parents) -> list[str] | None:
    """*expr* bound by an enclosing ``for (..., name, ...) in ((...), ...)`` over literals."""
    node = expr
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple) \
                and isinstance(node.iter, ast.Tuple):
            names = [t.id if isinstance(t, ast.Name) else None for t in node.target.elts]
            if expr.id in names:
                i = names.index(expr.id)
                values = [row.elts[i].value for row in node.iter.elts
                          if isinstance(row, ast.Tuple) and isinstance(row.elts[i], ast.Constant)]
                return values if len(values) == len(node.iter.elts) else None
    return None


def _names(expr: ast.AST, parents) -> list[tuple[str, bool]]:
    """(name, prefixed) pairs of a name argument; prefixed: ``f("x")`` (a robot prefix
    helper: the simulator's ``t``, ControlIO's ``topic``); ``("?" + source, False)`` when
    it cannot be read off the code."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [(expr.value, False)]
    if isinstance(expr, ast.Call) and len(expr.args) == 1 and not expr.keywords \
            and isinstance(expr.args[0], ast.Constant) and isinstance(expr.args[0].value, str):
        return [(expr.args[0].value, True)]
    if isinstance(expr, ast.Name):
        values = _loop_values(expr, parents)
        if values is not None:
            return [(v, False) for v in values]
    return [("?" + ast.unparse(expr), False)]


def _in_type_checking(node: ast.AST, parents) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            return True
    return False


def modules_of(source: str) -> list[Path]:
    """The file that builds a process and the ``sitebot.nodes`` helpers it imports
    (transitively; ``TYPE_CHECKING`` imports are not code that runs)."""
    todo, seen = [SRC / source], []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        tree = ast.parse(path.read_text(), str(path))
        parents = _parents(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("sitebot.nodes.") and \
                    not _in_type_checking(node, parents):
                todo.append(SRC / "nodes" / (node.module.split(".")[2] + ".py"))
    return seen


def scan(source: str) -> tuple[dict[str, set[tuple[str, bool]]], set[str]]:
    """({kind: {(name, prefixed)}}, node names) of the process built by *source*."""
    found: dict[str, set[tuple[str, bool]]] = {k: set() for k in KINDS}
    node_names = set()
    for path in modules_of(source):
        tree = ast.parse(path.read_text(), str(path))
        parents = _parents(tree)
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            f = call.func
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if isinstance(f, ast.Attribute) and f.attr in CREATE \
                    and ast.unparse(f.value) in RECEIVERS:
                kind, arg = CREATE[f.attr], call.args[1]
            elif isinstance(f, ast.Name) and f.id in ACTIONS \
                    and ast.unparse(call.args[0]) in RECEIVERS:
                kind, arg = ACTIONS[f.id], call.args[2]
            elif (path == SRC / source and call.args and isinstance(call.args[0], ast.Constant)
                  and (ast.unparse(f) == "super().__init__" or (
                      ast.unparse(f) == "rclpy.create_node"
                      and isinstance(parents[call], ast.Assign)
                      and ast.unparse(parents[call].targets[0]) in RECEIVERS))):
                node_names.add(call.args[0].value)      # (a bench's own node is not built)
                continue
            else:
                continue
            for name, prefixed in _names(arg, parents):
                found[kind].add((name if not name.startswith("?") else f"{name} ({where})",
                                 prefixed))
    return found, node_names


def setup_py_nodes() -> dict[str, str]:
    """setup.py's ``NODES``: executable -> ``module:main``."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "NODES":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py: no NODES")


def control_loop_topics() -> dict[str, set[str]]:
    """What control_loop's parameter-named topics are, as the launches start it:
    config/control.yaml's controllers (the parameter defaults) and hardware.launch.yaml's
    joint_trajectory_controller choice (arm_trajectory_controller)."""
    from sitebot.control.hardware_loop import controller_topics
    from sitebot.nodes.control_loop import SCHEMA

    params = {s.name: s.default for s in SCHEMA}
    params.update(yaml.safe_load((ROOT / "config" / "control.yaml").read_text())
                  ["control_loop"]["ros__parameters"])
    launch = (ROOT / "launch" / "hardware.launch.yaml").read_text()
    jtc = {"arm_controller_type": "joint_trajectory_controller",
           "arm_controller": "arm_trajectory_controller"}
    assert all(v in launch for v in jtc.values()), "hardware.launch.yaml changed its choice"
    arm, base = controller_topics(params)
    arm_jtc, _ = controller_topics({**params, **jtc})
    return {"arm_topic": {arm, arm_jtc}, "base_topic": {base},
            "p['joint_states_topic']": {params["joint_states_topic"]}}   # as ast.unparse writes it


def expected(row: Interfaces) -> dict[str, set[tuple[str, bool]]]:
    """The row as the scan reports it (a ``{robot}/`` name is a prefixed one)."""
    return {k: {(n[len(ROBOT):], True) if n.startswith(ROBOT) else (n, False)
                for n in row.names(k)} for k in KINDS}


def test_every_executable_has_a_row() -> None:
    rows = {r.node: r for r in NODES}
    for exe, target in setup_py_nodes().items():
        assert exe in rows, f"setup.py node {exe} has no row in sros2_policy.NODES"
        assert rows[exe].source == "nodes/" + target.split(":")[0].split(".")[-1] + ".py"
    assert len({r.enclave_name for r in NODES}) == len(NODES), "two rows share an enclave"


@pytest.mark.parametrize("row", NODES, ids=[r.node for r in NODES])
def test_row_is_what_the_code_creates(row: Interfaces) -> None:
    if not (SRC / row.source).exists():
        pytest.skip(f"{row.node}: src/sitebot/{row.source} not written yet")
    found, node_names = scan(row.source)
    assert node_names == {row.node}, f"{row.source}: node name"
    want = expected(row)
    if row.node == "control_loop":       # topics named by parameters
        for ref, names in control_loop_topics().items():
            kind = next(k for k in KINDS if any(n.startswith(f"?{ref} (") for n, _ in found[k]))
            found[kind] = {(n, p) for n, p in found[kind] if not n.startswith(f"?{ref} (")}
            found[kind] |= {(n, False) for n in names}
        # ControlIO is built without a prefix here: its prefixed names are plain
        found = {k: {(n, False) for n, _ in v} for k, v in found.items()}
    for kind in KINDS:
        missing = sorted(n for n, _ in found[kind] - want[kind])
        extra = sorted(n for n, _ in want[kind] - found[kind])
        assert not missing, f"{row.source} {kind}s {missing}: not in its policy row"
        assert not extra, f"{row.node}'s row allows {kind} {extra}: the code does not"


def launch_remaps(path: Path) -> dict[str, dict[str, str]]:
    """{node name: {from: to}} of the sitebot nodes of a launch file, its arguments at their
    defaults."""
    doc = yaml.safe_load(path.read_text())["launch"]
    args = {e["arg"]["name"]: str(e["arg"].get("default", "")) for e in doc if "arg" in e}

    def sub(v) -> str:
        return re.sub(r"\$\(var (\w+)\)", lambda m: args[m.group(1)], str(v))
    return {e["node"]["name"]: {sub(r["from"]): sub(r["to"]) for r in e["node"].get("remap", [])}
            for e in doc if "node" in e and e["node"].get("pkg") == "sitebot"}


def test_default_remaps_are_the_robot_launch_ones() -> None:
    launched = launch_remaps(ROOT / "launch" / "robot.launch.yaml")
    rows = {r.node: r for r in NODES}
    assert len(launched) == 12 and set(launched) <= set(rows), sorted(launched)
    for node, remaps in launched.items():
        for kind in KINDS:
            for name in rows[node].names(kind):
                assert ROBOT_REMAPS.get(name, name) == remaps.get(name, name), (
                    f"robot.launch.yaml: {node} {kind}s {name} as {remaps.get(name, name)}")
    assert all(any(src in remaps for remaps in launched.values()) for src in ROBOT_REMAPS)
    # the simulated launches (the --simulator policy) remap nothing
    assert [p.name for p in sorted((ROOT / "launch").glob("*.yaml"))
            if "remap:" in p.read_text()] == ["robot.launch.yaml"]


# ---------------------------------------------------------------------- the rules
def grants(text: str, kind: str) -> dict[str, set[str]]:
    """{enclave: fully qualified names it may *kind*} read back from a policy document."""
    out: dict[str, set[str]] = {}
    for enclave in parse(text).iter("enclave"):
        names = out.setdefault(enclave.get("path"), set())
        for profile in enclave.iter("profile"):
            for group in profile:
                if group.get(ATTR[kind]) == "ALLOW":
                    names.update(resolve_name(profile.get("ns"), profile.get("node"), e.text)
                                 for e in group)
    return out


def who(text: str, kind: str, name: str) -> set[str]:
    return {e for e, names in grants(text, kind).items() if name in names}


@pytest.mark.parametrize("simulator", [False, True])
def test_only_the_supervisor_publishes_what_the_control_loop_obeys(simulator) -> None:
    text = policy_xml("", simulator)
    for topic in ("/cmd_vel", "/arm/joint_trajectory", "/safety/state"):
        assert who(text, "publish", topic) == {"/sitebot/safety_supervisor"}, topic
    for topic in ("/diff_drive_controller/cmd_vel", "/arm_controller/commands",
                  "/arm_trajectory_controller/joint_trajectory"):
        assert who(text, "publish", topic) == {"/sitebot/control_loop"}, topic
    # the control loop (and the simulator standing in for it) reads them
    assert who(text, "subscribe", "/cmd_vel") == (
        {"/sitebot/control_loop", "/sitebot/simulator"} if simulator else {"/sitebot/control_loop"})
    # 5 processes ask for motion; none of them may command it
    assert who(text, "publish", "/cmd_vel_in") == {
        f"/sitebot/{n}" for n in ("navigation", "task_executor", "web_console", "teleop_relay")}
    assert who(text, "publish", "/arm/joint_trajectory_in") == {
        "/sitebot/arm_planner", "/sitebot/task_executor"}
    # wheel odometry: the diff_drive_controller's on the robot, the simulator's in simulation
    odom = "/odom" if simulator else "/diff_drive_controller/odom"
    readers = {f"/sitebot/{n}" for n in (
        "safety_supervisor", "localization", "spatial_perception", "navigation", "arm_planner",
        "task_executor", "web_console", "survey_recorder")}
    assert who(text, "subscribe", odom) == readers
    assert who(text, "subscribe", "/odom" if not simulator else "/diff_drive_controller/odom"
               ) == set()
    assert who(text, "publish", "/odom") == ({"/sitebot/simulator"} if simulator else set())


def test_only_the_console_and_the_operator_tool_call_the_safety_requests() -> None:
    text = policy_xml("", simulator=True)
    assert who(text, "call", "/safety/request") == {"/sitebot/web_console", "/sitebot/operator"}
    assert who(text, "call", "/safety/reset") == set()       # unauthenticated: nobody
    assert who(text, "serve", "/safety/request") == {"/sitebot/safety_supervisor"}
    assert who(text, "serve", "/safety/reset") == {"/sitebot/safety_supervisor"}
    # stopping stays open to the console (docs/security.md); the operator tool only requests
    assert who(text, "call", "/safety/trigger_estop") == {"/sitebot/web_console"}
    assert grants(text, "call")["/sitebot/operator"] == {"/safety/request"}


def test_sros2_name_resolution() -> None:
    # permissions.xsl: absolute as is, ~ under ns/node, relative under ns
    assert resolve_name("/", "a", "/diagnostics") == "/diagnostics"
    assert resolve_name("/", "a", "cmd_vel") == "/cmd_vel"
    assert resolve_name("/robot1", "a", "cmd_vel") == "/robot1/cmd_vel"
    assert resolve_name("/robot1/", "a", "cmd_vel") == "/robot1/cmd_vel"
    assert resolve_name("/robot1", "a", "~/get_parameters") == "/robot1/a/get_parameters"
    assert resolve_name("/", "a", "~/get_parameters") == "/a/get_parameters"


def test_namespaced_policy_prefixes_names() -> None:
    text = policy_xml("robot1", simulator=True)
    doc = parse(text)
    profiles = {p.get("node"): p.get("ns") for p in doc.iter("profile")}
    assert profiles.pop("simulator") == "/"          # the simulator runs in the root namespace
    assert set(profiles.values()) == {"/robot1"} and len(profiles) == ENCLAVES
    assert {e.get("path") for e in doc.iter("enclave")} == {
        f"/sitebot/robot1/{r.enclave_name}" for r in NODES}
    sup, sim = "/sitebot/robot1/safety_supervisor", "/sitebot/robot1/simulator"
    assert who(text, "publish", "/robot1/cmd_vel") == {sup}
    assert who(text, "publish", "/cmd_vel") == set()
    assert who(text, "call", "/robot1/safety/request") == {
        "/sitebot/robot1/web_console", "/sitebot/robot1/operator"}
    assert who(text, "subscribe", "/robot1/cmd_vel") == {"/sitebot/robot1/control_loop", sim}
    published = grants(text, "publish")
    assert {"/robot1/scan", "/robot1/tf", "/clock", "/diagnostics", "/sim/fault_events"
            } <= published[sim]
    assert "/robot1/tf" in published["/sitebot/robot1/localization"]
    assert "/diagnostics" in published[sup] and "/robot1/diagnostics" not in published[sup]
    assert "/robot1/safety_supervisor/get_parameters" in grants(text, "serve")[sup]
    # the robot's processes: every relative name of the default policy moved under /robot1,
    # the absolute ones stayed
    for k in KINDS:
        default = {n for names in grants(policy_xml(), k).values() for n in names}
        robot1 = {n for names in grants(policy_xml("robot1"), k).values() for n in names}
        absolute = default & _absolute_names()
        assert robot1 == absolute | {"/robot1" + n for n in default - absolute}, k


def _absolute_names() -> set[str]:
    return {n for r in NODES for k in KINDS for n in r.names(k) if n.startswith("/")} | {
        n for names in EVERY_NODE.values() for n in names if n.startswith("/")} | {
        n for n in ROBOT_REMAPS.values() if n.startswith("/")}


@pytest.mark.parametrize("bad", ["1robot", "robot-1", "a//b", "~x", "robot 1"])
def test_bad_namespace_is_refused(bad, capsys) -> None:
    with pytest.raises(PolicyError, match="not a ROS namespace"):
        policy_xml(bad)
    assert cli_main(["security", "policy", "--namespace", bad]) == 2
    assert "not a ROS namespace" in capsys.readouterr().err


def test_every_node_block_is_what_rclpy_creates() -> None:
    import rclpy
    from rclpy.parameter import Parameter

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("policy_probe", namespace="/robot1", context=ctx,
                                 parameter_overrides=[Parameter("use_sim_time", value=True),
                                                      Parameter("sim_lockstep", value=True)])
        try:
            from sitebot.nodes import barrier_ack     # what run_node adds in lockstep runs
            assert barrier_ack.install(node) is not None
            fq = {"publish": node.get_publisher_names_and_types_by_node,
                  "subscribe": node.get_subscriber_names_and_types_by_node,
                  "serve": node.get_service_names_and_types_by_node,
                  "call": node.get_client_names_and_types_by_node}
            for kind, query in fq.items():
                created = {name for name, _ in query("policy_probe", "/robot1")}
                allowed = {resolve_name("/robot1", "policy_probe", n)
                           for n in EVERY_NODE.get(kind, ())}
                assert created == allowed, kind
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


# ---------------------------------------------------------------------- files
def test_committed_policy_is_fresh() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == policy_xml(), (
        "config/sros2/sitebot_policy.xml is stale: sitebot security policy --out "
        "config/sros2/sitebot_policy.xml")


def test_cli_writes_the_policy(tmp_path, capsys) -> None:
    out = tmp_path / "p" / "policy.xml"
    assert security_main(["policy", "--namespace", "/robot1/", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == policy_xml("robot1")
    assert f"{ENCLAVES} enclaves, {RULES} rules ({OWN_RULES} from the node table)" \
        in capsys.readouterr().err
    assert cli_main(["security", "policy", "--simulator"]) == 0
    assert capsys.readouterr().out == policy_xml("", simulator=True)
    # a driver's topic: the lidar on /front/scan for every process that reads scan
    assert cli_main(["security", "policy", "--remap", "scan:=/front/scan"]) == 0
    text = capsys.readouterr().out
    assert text == policy_xml(remaps={"scan": "/front/scan"})
    assert who(text, "subscribe", "/front/scan") == {f"/sitebot/{n}" for n in (
        "safety_supervisor", "spatial_perception", "navigation", "task_executor",
        "survey_recorder")}
    assert who(text, "subscribe", "/scan") == set()
    assert who(text, "subscribe", "/diff_drive_controller/odom")       # defaults kept
    assert cli_main(["security", "policy", "--remap", "scan:=front-scan"]) == 2
    assert "'front-scan' is not a ROS name" in capsys.readouterr().err
