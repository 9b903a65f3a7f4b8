"""Tests of sitebot.launcher: YAML launch parsing, substitutions, errors, the runner, CLI."""
from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sitebot.errors import LaunchError
from sitebot.launcher import (LaunchHandle, format_param_value, launched, load_launch, main,
                              parse_launch_file, resolve_executable, run)
from sitebot.launcher.substitutions import evaluate, parse_template, safe_eval

FIX = Path(__file__).parents[1] / "launch_fixtures"
PY = sys.executable
TICKER = str(FIX / "nodes" / "ticker.py")


def resolver(pkg: str, exe: str):
    """Resolve the fixture package 'fixture_nodes' to the dummy scripts."""
    if pkg == "fixture_nodes":
        return [PY, str(FIX / "nodes" / f"{exe}.py")]
    return None


def inline(cmd: list[str]) -> list:
    """``cmd`` with each launcher-written parameter file (``--params-file`` of inline
    parameters, as launch_ros writes them) replaced by its content, read back with PyYAML."""
    import yaml
    out: list = []
    for i, a in enumerate(cmd):
        if i and cmd[i - 1] == "--params-file" and "sitebot_launch_params_" in a:
            out.append(yaml.safe_load(Path(a).read_text()))
        else:
            out.append(a)
    return out


def write(tmp_path: Path, text: str, name: str = "t.launch.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def gone(pid: int) -> bool:
    """True when pid no longer exists (or is a zombie that is not ours to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat.rsplit(")", 1)[1].split()[0]
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    return state == "Z" and ppid != os.getpid()


# ================================================================ resolution (pure)


def test_main_fixture_command_lines():
    d = load_launch(FIX / "main.launch.yaml", {}, resolver=resolver)
    f = str(FIX)
    assert [p.name for p in d] == ["sim", "controller", "driver", "sensor", "monitor"]
    # inline parameters: a parameter file per run of inline items, as launch_ros writes
    # it (key '/**': the node's namespace is not given)
    assert inline(d.process("sim").cmd) == [
        PY, TICKER, "--world", f"{f}/worlds/r1.world", "--rate", "10",
        "--ros-args", "-r", "__node:=sim",
        "--params-file", f"{f}/params.yaml",
        "--params-file", {"/**": {"ros__parameters": {
            "use_sim_time": True, "robot_name": "r1", "gains": [1.5, 2.0],
            "limits.speed": 0.5, "limits.label": "true"}}},
        "-r", "cmd_vel:=/r1/cmd_vel"]
    # group: pushed namespace + relative node namespace, let scoped to the group,
    # set_remap applied to every node of the group.
    assert d.process("controller").cmd == [
        PY, TICKER, "--rate", "20", "--ros-args", "-r", "__node:=controller",
        "-r", "__ns:=/r1/arm", "-r", "tf:=/tf"]
    assert d.process("controller").namespace == "/r1/arm"
    # absolute node namespace ignores the pushed one
    assert d.process("driver").cmd == [
        PY, TICKER, "--ros-args", "-r", "__node:=driver", "-r", "__ns:=/hw", "-r", "tf:=/tf"]
    # include inside the group: namespace and remaps carry over, arg passed
    assert inline(d.process("sensor").cmd) == [
        PY, TICKER, "--ros-args", "-r", "__node:=sensor", "-r", "__ns:=/r1/sensors",
        "--params-file", {"/r1/sensors/sensor": {"ros__parameters": {
            "frame_id": "r1_sensor_link"}}}, "-r", "tf:=/tf"]
    # after the scoped group: rate is 10 again, no namespace
    assert d.process("monitor").cmd == [
        PY, TICKER, "--rate", "10", "--ros-args", "-r", "__node:=monitor"]
    assert d.process("monitor").namespace == "/"
    assert d.process("monitor").node_name == "monitor"
    assert d.arguments == {"robot": "r1", "use_sim_time": "true", "rate": "10",
                           "with_extra": "false", "robot_id": "r1_sensor"}
    assert [a.name for a in d.declared] == ["robot", "use_sim_time", "rate", "with_extra",
                                            "robot_id"]
    assert all(p.env == {} and p.unset_env == () for p in d)


def test_main_fixture_with_arguments():
    d = load_launch(FIX / "main.launch.yaml", {"robot": "r7", "with_extra": True},
                    resolver=resolver)
    assert [p.name for p in d] == ["sim", "controller", "driver", "sensor", "extra"]
    assert d.process("sensor").namespace == "/r7/sensors"
    assert inline(d.process("sensor").cmd)[-3] == {"/r7/sensors/sensor": {"ros__parameters": {
        "frame_id": "r7_sensor_link"}}}
    assert d.process("sim").cmd[3] == f"{FIX}/worlds/r7.world"


def test_push_ros_namespace_nesting_and_scoping(tmp_path):
    p = write(tmp_path, """
        launch:
        - group:
            children:
            - push_ros_namespace: {namespace: a}
            - group:
                children:
                - push-ros-namespace: {namespace: b/}
                - node: {exec: prog, name: n1}
                - node: {exec: prog, name: n2, namespace: c}
            - node: {exec: prog, name: n3}
        - group:
            scoped: false
            children:
            - push-ros-namespace: {namespace: /leak}
        - node: {exec: prog, name: n4}
        - node: {exec: prog, name: n5, namespace: "/"}
        """)
    d = load_launch(p)
    ns = {x.name: x.namespace for x in d}
    assert ns == {"n1": "/a/b", "n2": "/a/b/c", "n3": "/a", "n4": "/leak", "n5": "/"}
    # node without pkg: the executable is run as given
    assert d.process("n1").cmd == ["prog", "--ros-args", "-r", "__node:=n1", "-r", "__ns:=/a/b"]


def test_group_forwarding_false_and_keep(tmp_path):
    p = write(tmp_path, """
        launch:
        - let: {name: a, value: "1"}
        - set_env: {name: SB_TEST_VAR, value: "x"}
        - group:
            forwarding: false
            keep: [{name: b, value: "$(var a)2"}]
            children:
            - executable: {cmd: "echo $(var b) $(var a 'no-a') $(optenv SB_TEST_VAR unset)",
                           name: inner}
        - executable: {cmd: "echo $(var a) $(env SB_TEST_VAR)", name: outer}
        """)
    d = load_launch(p, environ={"PATH": "/bin"})
    assert d.process("inner").cmd == ["echo", "12", "no-a", "unset"]
    assert d.process("inner").env == {}
    assert d.process("outer").cmd == ["echo", "1", "x"]
    assert d.process("outer").env == {"SB_TEST_VAR": "x"}
    assert d.process("outer").namespace == ""


def test_include_is_not_scoped_like_ros(tmp_path):
    write(tmp_path, """
        launch:
        - arg: {name: x, default: "inner"}
        - let: {name: leaked, value: "yes"}
        """, "inc.launch.yaml")
    p = write(tmp_path, """
        launch:
        - include: {file: "$(dirname)/inc.launch.yaml"}
        - executable: {cmd: "echo $(var x) $(var leaked)", name: e}
        """)
    assert load_launch(p).process("e").cmd == ["echo", "inner", "yes"]


def test_env_and_set_env_changes_recorded(tmp_path):
    p = write(tmp_path, """
        launch:
        - set_env: {name: A, value: "$(env HOME)/a"}
        - unset_env: {name: DROP}
        - node:
            exec: prog
            env: [{name: B, value: "b"}]
            cwd: /tmp
            respawn: "true"
            respawn_delay: 1.5
            launch-prefix: "nice -n 5"
            ros_args: "--log-level debug"
        """)
    d = load_launch(p, environ={"HOME": "/home/u", "DROP": "1"})
    (proc,) = d.processes
    assert proc.env == {"A": "/home/u/a", "B": "b"}
    assert proc.unset_env == ("DROP",)
    assert proc.cwd == "/tmp"
    assert proc.respawn is True and proc.respawn_delay == 1.5
    assert proc.cmd == ["nice", "-n", "5", "prog", "--ros-args", "--log-level", "debug",
                        "--ros-args"]
    assert proc.name == "prog" and proc.node_name is None and proc.output == "log"


def test_parameters_types_and_globals(tmp_path):
    p = write(tmp_path, """
        launch:
        - set_parameter: {name: use_sim_time, value: "true"}
        - node:
            exec: prog
            param:
            - {name: i, value: 3}
            - {name: f, value: "2"}
            - {name: f2, value: "2", type: float}
            - {name: s, value: "hello world"}
            - {name: s2, value: "0x10", type: str}
            - {name: b, value: false}
            - {name: names, value: ["a", "b c"]}
            - {name: ints, value: "[1, 2]"}
            - {name: empty, value: ""}
        """)
    (proc,) = load_launch(p).processes
    assert inline(proc.cmd) == [
        "prog", "--ros-args", "--params-file", {"/**": {"ros__parameters": {
            "use_sim_time": True, "i": 3, "f": 2, "f2": 2.0, "s": "hello world",
            "s2": "0x10", "b": False, "names": ["a", "b c"], "ints": [1, 2], "empty": ""}}}]


def test_format_param_value():
    assert format_param_value(True) == "true"
    assert format_param_value(7) == "7"
    assert format_param_value(0.1) == "0.1"
    assert format_param_value(float("inf")) == ".inf"
    assert format_param_value("plain") == "plain"
    assert format_param_value("yes") == '"yes"'
    assert format_param_value("a: b") == '"a: b"'
    assert format_param_value([True, False]) == "[true, false]"


def test_duplicate_labels_get_qualified(tmp_path):
    p = write(tmp_path, """
        launch:
        - node: {exec: prog, name: ctl, namespace: r1}
        - node: {exec: prog, name: ctl, namespace: r2}
        - node: {exec: prog}
        - node: {exec: prog}
        - node: {exec: prog, name: n, exec_name: custom}
        """)
    assert [x.name for x in load_launch(p)] == ["r1/ctl", "r2/ctl", "prog-1", "prog-2",
                                                "custom"]


def test_find_pkg_share_and_ament_executable(tmp_path):
    prefix = tmp_path / "install"
    exe = prefix / "lib" / "demo_pkg" / "talker"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!{PY}\nprint('hi')\n")
    exe.chmod(0o755)
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / "demo_pkg"
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    (prefix / "share" / "demo_pkg" / "config").mkdir(parents=True)
    (prefix / "share" / "demo_pkg" / "config" / "p.yaml").write_text("{}\n")
    p = write(tmp_path, """
        launch:
        - node:
            pkg: demo_pkg
            exec: talker
            param: [{from: "$(find-pkg-share demo_pkg)/config/p.yaml"}]
            args: "$(find-pkg-share sitebot)"
        """)
    from sitebot import paths
    (proc,) = load_launch(p, environ={"AMENT_PREFIX_PATH": str(prefix)}).processes
    assert proc.cmd == [str(exe), str(paths.share_dir()), "--ros-args", "--params-file",
                        str(prefix / "share" / "demo_pkg" / "config" / "p.yaml")]


def test_console_script_entry_point_resolution(monkeypatch, tmp_path):
    # a fake installed distribution 'launch_fixture_pkg' with two console_scripts
    site = FIX / "site"
    monkeypatch.syspath_prepend(str(site))
    cmd = resolve_executable("launch_fixture_pkg", "fixture_hello", environ={})
    assert cmd == [PY, "-c", "import sys; sys.argv[0] = \"fixture_hello\"; "
                             "from launch_fixture_entry import main as _entry; "
                             "sys.exit(_entry())"]
    assert resolve_executable("launch_fixture_pkg", "fixture_method", environ={})[2] == (
        "import sys; sys.argv[0] = \"fixture_method\"; "
        "from launch_fixture_entry import App as _entry; sys.exit(_entry.run())")
    with pytest.raises(LookupError) as e:
        resolve_executable("launch_fixture_pkg", "nope", environ={})
    assert str(e.value) == ("executable 'nope' not found in package 'launch_fixture_pkg' "
                            "(console_scripts of 'launch_fixture_pkg': fixture_hello, "
                            "fixture_method)")
    # the injected resolver wins over the entry point
    assert resolve_executable("launch_fixture_pkg", "fixture_hello", {},
                              lambda p, e: ["x"]) == ["x"]
    # and the bootstrap really runs the entry point, with the node's arguments
    p = write(tmp_path, """
        launch:
        - node: {pkg: launch_fixture_pkg, exec: fixture_hello, name: hi, output: screen,
                 args: "a b"}
        """)
    with launched(p, env={"PYTHONPATH": str(site)}) as h:
        assert h.wait(10)
    assert "[hi] hello from fixture_hello args=['a', 'b', '--ros-args', '-r', '__node:=hi']" \
        in h.lines
    assert h.exit_codes == {"hi": 4} and h.returncode == 1


# ===================================================================== substitutions


class Ctx:
    def __init__(self, configs=None, environ=None, file="/launch/dir/f.launch.yaml"):
        self.configs = configs or {}
        self.environ = environ or {}
        self.current_file = Path(file)

    def launch_configuration(self, name):
        return self.configs.get(name)

    def find_package_share(self, package):
        if package == "known":
            return Path("/opt/share/known")
        raise LookupError(f"package '{package}' not found")

    def find_package_prefix(self, package):
        return Path("/opt")


def ev(text, **kw):
    return evaluate(parse_template(text, "f.yaml", 7), Ctx(**kw))


def test_substitution_values():
    assert ev("plain") == "plain"
    assert ev("$(var a)-$(var b)", configs={"a": "1", "b": "2"}) == "1-2"
    assert ev("$(var missing fallback)") == "fallback"
    assert ev("$(var $(var which))", configs={"which": "x", "x": "nested"}) == "nested"
    assert ev("$(env HOME)", environ={"HOME": "/h"}) == "/h"
    assert ev("$(env NOPE 'def val')") == "def val"
    assert ev("[$(optenv NOPE)]") == "[]"
    assert ev("$(find-pkg-share known)/x") == "/opt/share/known/x"
    assert ev("$(dirname)|$(filename)") == "/launch/dir|/launch/dir/f.launch.yaml"
    assert ev("$(eval '$(var n) * 2 + 1')", configs={"n": "4"}) == "9"
    assert ev("$(eval \"'$(var s)' == 'a b'\")", configs={"s": "a b"}) == "True"
    assert ev("$(eval 'max(1, 3) + pi > 6')") == "True"
    assert ev("$(not $(var f))", configs={"f": "False"}) == "true"
    assert ev("$(and true 0) $(or 0 1)") == "false true"
    assert ev("$(equals 1 1.0) $(equals a b) $(equals True 1)") == "true false true"
    assert ev(r"cost \$(var x)") == "cost $(var x)"
    assert ev("$(var 'a b')", configs={"a b": "spaced"}) == "spaced"


@pytest.mark.parametrize("text,message", [
    ("$(nope x)", "unknown substitution '$(nope)'"),
    ("$(var a", "unterminated substitution"),
    ("$(var)", "takes 1 to 2 argument(s), got 0"),
    ("$(dirname x)", "takes 0 argument(s), got 1"),
    ("$(var 'a)", "unterminated ' quote"),
])
def test_substitution_syntax_errors(text, message):
    with pytest.raises(LaunchError) as e:
        parse_template(text, "f.yaml", 7)
    assert message in str(e.value)
    assert str(e.value).startswith("f.yaml:7: ")


@pytest.mark.parametrize("text,message", [
    ("$(var a)", "launch configuration 'a' is not set"),
    ("$(env SB_SURELY_UNSET)", "environment variable 'SB_SURELY_UNSET' is not set"),
    ("$(find-pkg-share unknown_pkg)", "package 'unknown_pkg' not found"),
    ("$(eval '__import__(\"os\")')", "cannot evaluate"),
    ("$(not maybe)", "expects true, false, 1 or 0"),
])
def test_substitution_evaluation_errors(text, message):
    with pytest.raises(LaunchError) as e:
        ev(text)
    assert message in str(e.value)
    assert str(e.value).startswith("f.yaml:7: ")


def test_safe_eval_rejects_code():
    assert safe_eval("math.floor(2.7) + abs(-1)") == 3
    for bad in ("open('x')", "(1).__class__", "[x for x in (1,)]", "lambda: 1", "9 ** 9999"):
        with pytest.raises(ValueError):
            safe_eval(bad)


# ============================================================================ errors


def err(path: Path, args=None, **kw) -> LaunchError:
    with pytest.raises(LaunchError) as e:
        load_launch(path, args or {}, **kw)
    return e.value


def test_unknown_tag_names_file_and_line(tmp_path):
    p = write(tmp_path, """
        launch:
        - arg: {name: a, default: "1"}
        # a comment

        - timer: {period: "1.0"}
        """)
    e = err(p)
    assert e.file == str(p) and e.where == 5
    assert str(e).startswith(f"{p}:5: unsupported tag 'timer' (supported: arg, let, node")


def test_unknown_attribute_names_its_line(tmp_path):
    p = write(tmp_path, """
        launch:
        - node:
            pkg: fixture_nodes
            exec: ticker
            respawnn: "true"
        """)
    e = err(p, resolver=resolver)
    assert e.where == 5
    assert "unsupported attribute 'respawnn' in 'node'" in str(e)
    assert "t.launch.yaml:5:" in str(e)


def test_unknown_attribute_in_list_item(tmp_path):
    p = write(tmp_path, """
        launch:
        - node:
            exec: prog
            remap:
            - {from: a, to: b}
            - {from: c, too: d}
        """)
    e = err(p)
    assert e.where == 6 and "unsupported attribute 'too' in 'node.remap' item" in str(e)


def test_unquoted_number_where_ros_needs_a_string(tmp_path):
    p = write(tmp_path, """
        launch:
        - arg:
            name: rate
            default: 10
        """)
    e = err(p)
    assert e.where == 4
    assert "attribute 'default' of 'arg' must be a string" in str(e)
    assert 'quote it: default: "10"' in str(e)


def test_bad_yaml_names_line(tmp_path):
    p = write(tmp_path, """
        launch:
        - arg: {name: a, default: "1"}
        - node: {exec: prog, name: [oops}
        """)
    e = err(p)
    assert e.file == str(p) and e.where == 3
    assert "malformed YAML" in str(e)


def test_bad_structure(tmp_path):
    e = err(write(tmp_path, "nodes:\n- node: {exec: x}\n"))
    assert "single top-level key 'launch'" in str(e) and e.where == 1
    e = err(write(tmp_path, "launch:\n- node: {exec: x}\n  arg: {name: y}\n"))
    assert "exactly one key" in str(e) and e.where == 2
    e = err(write(tmp_path, "launch:\n- group: {scoped: 'false', children: []}\n"))
    assert "'scoped' of 'group' must be true or false" in str(e)
    e = err(write(tmp_path, "launch:\n- node: {exec: x, if: 'true', unless: 'false'}\n"))
    assert "cannot have both 'if' and 'unless'" in str(e)
    e = err(write(tmp_path, "launch:\n- arg: {name: a}\n- arg: {name: a}\n- x: 1\n"))
    assert e.where == 4  # the whole file is checked before anything is resolved


def test_condition_must_be_boolean_text(tmp_path):
    p = write(tmp_path, """
        launch:
        - arg: {name: flag, default: "yes"}
        - node: {exec: prog, if: "$(var flag)"}
        """)
    e = err(p)
    assert e.where == 3 and "'if' must evaluate to true, false, 1 or 0, got 'yes'" in str(e)


def test_unknown_command_line_argument_lists_declared():
    e = err(FIX / "main.launch.yaml", {"robto": "x"}, resolver=resolver)
    assert str(e) == (f"{FIX / 'main.launch.yaml'}: unknown launch argument 'robto' "
                      "(declared arguments: robot, use_sim_time, rate, with_extra, robot_id)")


def test_missing_required_argument():
    e = err(FIX / "cli.launch.yaml")
    assert e.where == 3
    assert ("required launch argument 'python' (the Python interpreter to run the dummy "
            "node with) was not given and has no default (pass python:=<value>)") in str(e)
    e = err(FIX / "cli.launch.yaml", {"python": PY, "node": "other"})
    assert "argument 'node' is 'other', which is not one of its choices" in str(e)


def test_include_missing_required_argument(tmp_path):
    p = write(tmp_path, f"""
        launch:
        - arg: {{name: robot_id, default: "x"}}
        - include: {{file: "{FIX / 'robot.launch.yaml'}"}}
        """)
    e = err(p, resolver=resolver)
    assert e.where == 3
    assert "included file robot.launch.yaml requires argument 'robot_id'" in str(e)


def test_error_inside_included_file_names_that_file(tmp_path):
    write(tmp_path, "launch:\n- node: {exec: x, output: loud}\n", "inner.launch.yaml")
    p = write(tmp_path, "launch:\n- include: {file: '$(dirname)/inner.launch.yaml'}\n")
    e = err(p)
    assert e.file == str(tmp_path / "inner.launch.yaml") and e.where == 2
    assert "(included from t.launch.yaml:2)" in str(e)


def test_unknown_package_and_executable(tmp_path):
    p = write(tmp_path, """
        launch:
        - node: {pkg: no_such_pkg_xyz, exec: talker}
        """)
    e = err(p, environ={"AMENT_PREFIX_PATH": ""})
    assert e.where == 2
    assert "package 'no_such_pkg_xyz' not found" in str(e) and "talker" in str(e)
    p = write(tmp_path, """
        launch:
        - node: {pkg: pyyaml, exec: no_such_exec}
        """)
    e = err(p, environ={})
    assert str(e) == (f"{p}:2: executable 'no_such_exec' not found in package 'pyyaml' "
                      "(console_scripts of 'pyyaml': none)")


def test_missing_params_file_and_bad_names(tmp_path):
    e = err(write(tmp_path, "launch:\n- node:\n    exec: x\n    param:\n"
                            "    - {from: '$(dirname)/none.yaml'}\n"))
    assert e.where == 5 and "parameters file not found" in str(e)
    e = err(write(tmp_path, "launch:\n- node: {exec: x, name: 'bad-name'}\n"))
    assert e.where == 2 and "invalid node name 'bad-name'" in str(e)
    e = err(write(tmp_path, "launch:\n- node: {exec: x, namespace: '1robot'}\n"))
    assert "namespace '/1robot'" in str(e)


def test_parse_only_reports_everything_with_lines():
    lf = parse_launch_file(FIX / "main.launch.yaml")
    assert [a.line for a in lf.actions] == [3, 4, 5, 6, 7, 8, 25, 37, 38]


# ============================================================================ runner


@pytest.fixture
def fast():
    """Short shutdown timeouts for the runner tests."""
    return dict(sigterm_timeout=2.0, sigkill_timeout=2.0)


def test_runner_prefixes_output_reports_crash_and_keeps_others(fast):
    lines: list[str] = []
    with launched(FIX / "two_nodes.launch.yaml", resolver=resolver, on_line=lines.append,
                  env={"ROS_DOMAIN_ID": "77"}, **fast) as h:
        died = h.wait_for_line(r"\[crasher\]: process has died", 10)
        mark = h.line_count
        pids = dict(h.pids)
        assert list(pids) == ["ticker"]  # the crasher is gone, the ticker still runs
        h.wait_for_line(r"^\[ticker\] tick \d+$", 5, after=mark)  # and keeps ticking
        assert h.exit_codes == {"crasher": 3}
    crasher_pid = h.all_pids[1]
    assert died == (f"[ERROR] [crasher]: process has died [pid {crasher_pid}, exit code 3, "
                    f"cmd '{PY} {FIX}/nodes/crasher.py --ros-args -r __node:=crasher']")
    assert "[crasher] crashing now" in lines
    assert f"[INFO] [ticker]: process started with pid [{pids['ticker']}]" in lines
    assert "[ticker] env ROS_DOMAIN_ID=77 SITEBOT_FIXTURE=from-launch-file" in lines
    assert "[ticker] to stderr" in lines
    assert lines[-2:] == ["[ticker] bye",
                          f"[INFO] [ticker]: process has finished cleanly [pid {pids['ticker']}]"]
    assert h.returncode == 1 and h.failed == ["crasher"]
    assert all(gone(pid) for pid in h.all_pids)


def test_runner_stop_escalates_to_sigkill(tmp_path):
    p = write(tmp_path, f"""
        launch:
        - executable: {{cmd: "{PY} {FIX}/nodes/stubborn.py", name: stubborn, output: screen}}
        - executable: {{cmd: "{PY} {TICKER}", name: ticker, output: screen}}
        """)
    with launched(p, sigterm_timeout=0.3, sigkill_timeout=0.3) as h:
        h.wait_for_line(r"\[stubborn\] stubborn pid=", 10)
        h.wait_for_line(r"\[ticker\] tick", 10)
        started = time.monotonic()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    lines = h.lines
    assert ("[ERROR] [stubborn]: process[stubborn] failed to terminate '0.3' seconds after "
            "receiving 'SIGINT', escalating to 'SIGTERM'") in lines
    assert "[INFO] [stubborn]: sending signal 'SIGKILL' to process[stubborn]" in lines
    assert h.exit_codes == {"stubborn": -signal.SIGKILL, "ticker": 0}
    assert h.returncode == 0  # stopped by us: not a failure
    assert all(gone(pid) for pid in h.all_pids)


def test_runner_leaves_no_orphans(fast):
    with launched(FIX / "two_nodes.launch.yaml", {"ticker_args": "--spawn-grandchild"},
                  resolver=resolver, **fast) as h:
        line = h.wait_for_line(r"\[ticker\] grandchild pid=(\d+)", 10)
    grandchild = int(line.rsplit("=", 1)[1])
    assert gone(grandchild)
    assert all(gone(pid) for pid in h.all_pids)


def test_run_foreground_stop_event_and_output_modes(tmp_path):
    p = write(tmp_path, f"""
        launch:
        - executable: {{cmd: "{PY} {TICKER} quiet", name: quiet}}
        - executable: {{cmd: "{PY} {TICKER} loud", name: loud, output: screen}}
        """)
    d = load_launch(p)
    stop = threading.Event()
    screen = io.StringIO()
    seen: list[str] = []
    ready = threading.Event()

    def on_line(line):
        seen.append(line)
        if line.startswith("[quiet] tick") and any(s.startswith("[loud] tick") for s in seen):
            ready.set()

    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(run(
        d, stop_event=stop, on_line=on_line, stream=screen, handle_signals=False,
        sigterm_timeout=2.0, sigkill_timeout=2.0)))
    t.start()
    assert ready.wait(10)
    stop.set()
    t.join(10)
    assert not t.is_alive() and result == [0]
    shown = screen.getvalue().splitlines()
    # output 'log' (the default): only stderr reaches the screen; 'screen': everything
    assert "[quiet] to stderr" in shown and not any(s.startswith("[quiet] tick") for s in shown)
    assert any(s.startswith("[loud] tick") for s in shown) and "[loud] to stderr" in shown
    assert any(s.startswith("[quiet] tick") for s in seen)  # on_line gets every line


def test_respawn(tmp_path):
    p = write(tmp_path, f"""
        launch:
        - executable: {{cmd: "{PY} {FIX}/nodes/crasher.py", name: c, respawn: "true",
                        respawn_delay: 0.1}}
        """)
    with launched(p, sigterm_timeout=1.0, sigkill_timeout=1.0) as h:
        h.wait_for_line(r"\[INFO\] \[c\]: respawning", 10)
        mark = h.line_count
        h.wait_for_line(r"\[c\]: process has died", 10, after=mark)
    assert len(h.all_pids) >= 2 and h.failed[:2] == ["c", "c"]
    assert all(gone(pid) for pid in h.all_pids)


def test_handle_all_exit_by_themselves(tmp_path):
    p = write(tmp_path, f"""
        launch:
        - executable: {{cmd: "{PY} -c 'print(42)'", name: answer, output: screen}}
        """)
    h = LaunchHandle(load_launch(p)).start()
    assert h.wait(10)
    assert h.returncode == 0 and "[answer] 42" in h.lines
    assert h.stop() == 0


# =============================================================================== CLI


def test_cli_print(capsys):
    code = main(["--print", str(FIX / "cli.launch.yaml"), f"python:={PY}", "node:=ticker"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [f"# {FIX / 'cli.launch.yaml'}",
                   f"# arguments: python={PY} node=ticker",
                   f"[ticker] {PY} {TICKER}"]


def test_cli_runs_and_returns_failure(capsys):
    code = main([str(FIX / "cli.launch.yaml"), f"python:={PY}"])
    out = capsys.readouterr().out
    assert code == 1
    assert "[crasher] crashing now" in out
    assert "[ERROR] [crasher]: process has died" in out and "exit code 3" in out


def test_cli_errors_are_one_line(capsys):
    code = main([str(FIX / "cli.launch.yaml"), f"python:={PY}", "bogus:=1"])
    err_out = capsys.readouterr().err
    assert code == 2
    assert err_out == (f"sitebot launch: error: {FIX / 'cli.launch.yaml'}: unknown launch "
                       "argument 'bogus' (declared arguments: python, node)\n")
    assert main(["no_such_launch_file_xyz"]) == 2
    assert "launch file 'no_such_launch_file_xyz' not found" in capsys.readouterr().err


def test_cli_show_args(capsys):
    assert main(["--show-args", str(FIX / "cli.launch.yaml")]) == 0
    out = capsys.readouterr().out
    assert "'python':\n        the Python interpreter to run the dummy node with" in out
    assert "(default: 'crasher')" in out


def test_find_launch_file_by_name_and_package(monkeypatch, tmp_path):
    from sitebot import paths
    from sitebot.launcher import find_launch_file
    (tmp_path / "launch").mkdir()
    target = tmp_path / "launch" / "sim.launch.yaml"
    target.write_text("launch: []\n")
    monkeypatch.setattr(paths, "data_path", lambda *parts: tmp_path.joinpath(*parts))
    assert find_launch_file("sim.launch.yaml") == target
    assert find_launch_file("sim") == target
    with pytest.raises(LaunchError, match=r"launch file 'simm' not found .*available: "
                                          r"sim\.launch\.yaml\)"):
        find_launch_file("simm")
    prefix = tmp_path / "prefix"
    nested = prefix / "share" / "demo_pkg" / "launch" / "bringup.launch.yaml"
    nested.parent.mkdir(parents=True)
    nested.write_text("launch: []\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    assert find_launch_file("bringup.launch.yaml", package="demo_pkg") == nested
