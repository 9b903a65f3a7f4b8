"""``sitebot check`` and bad input to the CLI: every broken file is one FAIL line naming the
file and the line or key, exit code 2, never a traceback.  Fixtures: tests/bad_inputs/
(each says in a comment what is wrong with it)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sitebot.apps import check
from sitebot.errors import SitebotError
from sitebot.nodes import schemas

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parents[1] / "bad_inputs"
SITEBOT = Path(sys.executable).parent / "sitebot"
SHIPPED_DIRS = ("urdf", "worlds", "config", "launch")


def run_check(capsys: pytest.CaptureFixture[str], *paths: str | Path) -> tuple[int, list[str]]:
    """``main`` in-process: exit code and the per-file lines (summary line dropped)."""
    code = check.main([str(p) for p in paths])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert lines and lines[-1].startswith("checked ")
    return code, lines[:-1]


def fail_line(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    code, lines = run_check(capsys, path)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"FAIL {path}"), lines[0]
    return lines[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def sitebot(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SITEBOT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})


# ------------------------------------------------------------------------ shipped files
def test_shipped_files_all_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_check(capsys, *(ROOT / d for d in SHIPPED_DIRS))
    assert code == 0, "\n".join(lines)
    on_disk = sorted(p for d in SHIPPED_DIRS for p in (ROOT / d).rglob("*")
                     if p.is_file() and not any(part.startswith(".") or part == "__pycache__"
                                                for part in p.relative_to(ROOT).parts))
    checked = [p for p in on_disk if p.suffix != ".xml"]
    skipped = [p for p in on_disk if p.suffix == ".xml"]
    ok = [ln for ln in lines if ln.startswith("OK   ")]
    assert len(ok) == len(checked) and len(lines) == len(on_disk), "\n".join(lines)
    for p in checked:
        assert any(ln.startswith(f"OK   {p} (") for ln in ok), p
    for p in skipped:
        assert f"SKIP {p} (" in "\n".join(lines)
    # the kinds are told apart
    text = "\n".join(lines)
    for kind in ("robot description", "xacro macro library", "world '", "site registry",
                 "parameters: simulator", "launch: ", "rviz2 config: ", "console users: "):
        assert kind in text


# ------------------------------------------------------------------------ end to end (CLI)
def test_cli_malformed_urdf_reports_line_without_traceback() -> None:
    r = sitebot("check", "tests/bad_inputs/malformed.urdf", "urdf")
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    assert "FAIL tests/bad_inputs/malformed.urdf:7: malformed XML" in r.stdout
    assert "OK   urdf/sitebot.urdf.xacro" in r.stdout        # the other files still checked


def test_cli_world_unknown_asset_reports_key_path() -> None:
    r = sitebot("check", str(BAD / "unknown_asset.world.yaml"))
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    line, = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL")]
    assert "unknown_asset.world.yaml: fiducials[0].asset: unknown asset 'gauge9'" in line


def test_cli_launch_of_broken_file_is_one_line() -> None:
    r = sitebot("launch", str(BAD / "unknown_tag.launch.yaml"))
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("sitebot launch: error: ")
    assert "unknown_tag.launch.yaml:4: unsupported tag 'nodes'" in lines[0]


# ------------------------------------------------------------------------ robot descriptions
def test_malformed_urdf_names_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "malformed.urdf")
    assert line == f"FAIL {BAD / 'malformed.urdf'}:7: malformed XML: mismatched tag (column 2)"


def test_urdf_joint_with_missing_link_names_joint(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "missing_link.urdf")
    assert ":10: joint 'wheel_joint'" in line and "'wheel' does not exist" in line


def test_malformed_xacro_names_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = write(tmp_path, "bot.urdf.xacro", """
        <?xml version="1.0"?>
        <robot name="bot" xmlns:xacro="http://www.ros.org/wiki/xacro">
          <link name="a">
        </robot>
        """)
    line = fail_line(capsys, p)
    assert line.startswith(f"FAIL {p}:4: malformed XML")


def test_xacro_macro_library(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lib = write(tmp_path, "parts.xacro", """
        <?xml version="1.0"?>
        <robot xmlns:xacro="http://www.ros.org/wiki/xacro">
          <xacro:macro name="box_link" params="name"><link name="${name}"/></xacro:macro>
        </robot>
        """)
    code, lines = run_check(capsys, lib)
    assert code == 0 and lines == [f"OK   {lib} (xacro macro library: box_link)"]
    bad = write(tmp_path, "broken.xacro", """
        <?xml version="1.0"?>
        <robot xmlns:xacro="http://www.ros.org/wiki/xacro">
          <xacro:include filename="no_such_file.xacro"/>
        </robot>
        """)
    line = fail_line(capsys, bad)
    assert "xacro expansion failed" in line and "no_such_file.xacro" in line


# ------------------------------------------------------------------------ worlds, registries
def test_world_yaml_syntax_error_names_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "syntax_error.world.yaml")
    assert line.startswith(f"FAIL {BAD / 'syntax_error.world.yaml'}:8: invalid YAML")


def test_world_unknown_asset_names_key(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "unknown_asset.world.yaml")
    assert ": fiducials[0].asset: unknown asset 'gauge9'" in line
    assert "assets: gauge1" in line                                # what is accepted


def test_registry_duplicate_id(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "duplicate_id.site.yaml")
    assert ": places[1].id: duplicate id 'p_gauge'" in line


def test_registry_asset_on_unknown_place(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "unknown_place.site.yaml")
    assert ": assets[1].place: unknown place 'p_nowhere'" in line
    assert "p_dock, p_gauge" in line


# ------------------------------------------------------------------------ parameter files
def test_param_wrong_type(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "wrong_type.params.yaml")
    assert "simulator.ros__parameters.camera_width" in line
    assert "'big' (str) has the wrong type; accepted: int in [16, 1920] px" in line


def test_param_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "out_of_range.params.yaml")
    assert "out_of_range.params.yaml: simulator.ros__parameters.time_step_s" in line
    assert "value 5.0 is out of range; accepted: float in [0.0001, 0.05] s" in line


def test_param_unknown_lists_declared(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "unknown_param.params.yaml")
    assert "unknown parameter 'camera_widht'; this node declares: " in line
    assert "camera_width" in line and "time_step_s" in line


def test_param_unknown_node_lists_known(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "unknown_node.params.yaml")
    assert ": planner: unknown node 'planner'" in line and "known nodes: " in line and "simulator" in line


def test_param_files_by_place_and_content(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    wild = write(tmp_path, "any_name.yaml", """
        /**:
          ros__parameters: {use_sim_time: true, camera_width: 640}
        /robot1/simulator:
          ros__parameters: {seed: 4}
        """)
    code, lines = run_check(capsys, wild)
    assert code == 0 and lines == [f"OK   {wild} (parameters: /**, simulator)"]
    bad_wild = write(tmp_path, "wild.yaml", """
        /**:
          ros__parameters: {camera_widht: 640}
        """)
    line = fail_line(capsys, bad_wild)
    assert "/**.ros__parameters.camera_widht: unknown parameter" in line
    assert "declared: " in line
    # under config/ a YAML file is a parameter file whatever it holds
    conf = write(tmp_path, "config/other.yaml", "simulator: {seed: 1}\n")
    assert ": simulator: expected 'ros__parameters:'" in fail_line(capsys, conf)
    # elsewhere, a YAML file of no known kind is refused, naming the kinds
    plain = write(tmp_path, "notes.yaml", "a: 1\n")
    assert "unknown kind of YAML file" in fail_line(capsys, plain)


# ------------------------------------------------------------------------ launch files
def test_launch_unknown_tag(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "unknown_tag.launch.yaml")
    assert ":4: unsupported tag 'nodes'" in line


def test_launch_unknown_attribute(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "unknown_attr.launch.yaml")
    assert ":6: unsupported attribute 'executable' in 'node'" in line


def test_launch_bad_node_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail_line(capsys, BAD / "bad_param.launch.yaml")
    assert "bad_param.launch.yaml:8: node 'simulator': parameter 'camera_width'" in line
    assert "accepted: int in [16, 1920] px" in line


def test_launch_node_parameters_from_files_and_lists(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", """
        /**:
          ros__parameters: {use_sim_time: true, other_nodes_param: 1}
        simulator:
          ros__parameters: {seed: -1}
        """)
    p = write(tmp_path, "a.launch.yaml", """
        launch:
        - set_parameter: {name: meant_for_all, value: "1"}
        - node:
            pkg: sitebot
            exec: simulator
            param:
            - {from: "$(dirname)/p.yaml"}
        """)
    line = fail_line(capsys, p)           # the bad value is reported where it is written
    assert line.startswith(f"FAIL {p}: ")
    assert f"{tmp_path / 'p.yaml'}: simulator.ros__parameters.seed" in line
    assert "value -1 is out of range" in line
    (tmp_path / "p.yaml").write_text("simulator:\n  ros__parameters: {seed: 2}\n")
    code, lines = run_check(capsys, p)    # set_parameter for every node: not an error
    assert code == 0, lines
    q = write(tmp_path, "b.launch.yaml", """
        launch:
        - node:
            pkg: sitebot
            exec: simulator
            param:
            - {name: camera_widht, value: 640}
        """)
    line = fail_line(capsys, q)
    assert f"{q}:6: node 'simulator': unknown parameter 'camera_widht'" in line


def test_launch_with_required_argument_is_ok_with_note(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = write(tmp_path, "robot.launch.yaml", """
        launch:
        - arg: {name: robot}
        - node: {pkg: sitebot, exec: simulator, name: "$(var robot)"}
        """)
    code, lines = run_check(capsys, p)
    assert code == 0
    assert lines == [f"OK   {p} (launch; structure checked, not resolved: argument robot "
                     "without default)"]


# ------------------------------------------------------------------------ the command
def test_unknown_kinds_missing_paths_and_skips(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    txt = write(tmp_path, "d/README.txt", "hello\n")
    write(tmp_path, "d/fastdds.xml", "<profiles/>\n")
    line = fail_line(capsys, txt)                      # named: an error
    assert "unknown kind of file; accepted: *.urdf" in line and "*.launch.yaml" in line
    code, lines = run_check(capsys, tmp_path / "d")    # found in a directory: skipped
    assert code == 0
    assert lines == [f"SKIP {txt} (not a kind of file sitebot checks)",
                     f"SKIP {tmp_path / 'd' / 'fastdds.xml'} (XML file, not checked)"]
    # an rviz config without its fixed frame: named, with the key
    bad = write(tmp_path, "e/view.rviz", "Visualization Manager:\n  Displays: []\n")
    assert "Global Options.Fixed Frame missing" in fail_line(capsys, bad)
    assert fail_line(capsys, tmp_path / "nope.urdf") == \
        f"FAIL {tmp_path / 'nope.urdf'}: no such file or directory"


def test_mixed_results_exit_2_and_every_file_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_check(capsys, BAD)
    assert code == 2
    files = sorted(p for p in BAD.iterdir() if p.is_file())
    assert len(lines) == len(files)
    assert [ln.split()[1].rstrip(":").split(":")[0] for ln in lines] == [str(p) for p in files]
    assert [ln for ln in lines if ln.startswith("OK")] == [
        f"OK   {BAD / 'mini.site.yaml'} (site registry: 4 entities)"]


def test_unexpected_exception_is_a_fail_line(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: Path) -> str:
        raise TypeError("unexpected")

    monkeypatch.setitem(check._CHECKERS, "urdf", boom)
    line = fail_line(capsys, BAD / "missing_link.urdf")
    assert line.endswith(": internal error: TypeError: unexpected")


def test_schema_lookup_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SitebotError, match="no parameter schema for node 'ghost'; known "
                                           "nodes: .*simulator"):
        schemas.schema_for("ghost")
    monkeypatch.setitem(schemas.NODE_SCHEMAS, "ghost", "sitebot.no_such_module:SCHEMA")
    with pytest.raises(SitebotError, match="cannot load the parameter schema of node "
                                           "'ghost' from sitebot.no_such_module:SCHEMA: "
                                           "ModuleNotFoundError"):
        schemas.schema_for("ghost")
    p = write(tmp_path, "ghost.yaml", "ghost:\n  ros__parameters: {a: 1}\n")
    assert "cannot load the parameter schema of node 'ghost'" in fail_line(capsys, p)


def test_check_module_does_not_import_rclpy() -> None:
    code = ("import sys; from sitebot.apps.check import main; "
            "rc = main(['urdf', 'worlds']); "
            "assert 'rclpy' not in sys.modules, 'rclpy imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
