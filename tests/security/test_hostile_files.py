"""Hostile data files (issue 19, "Files"): every file in ``corpus/`` and every nesting case
built here ends in exactly one error of the project's type that names the file (and the
line or key), never another exception, with bounded work: the Python memory the loader
allocates stays under 50 MB (tracemalloc peak) and an alias bomb is refused without
expanding it.  A 20 s limit per case is only a hang detector, not a timing claim.

``corpus/<loader>/`` holds the cases of one loader: ``launch`` (YAML launch files, resolved
and their node parameters validated as ``sitebot check`` and ``sitebot launch`` do),
``config`` (parameter files validated against the node schemas; ``controllers_*`` are
ros2_control controller files), ``site``, ``world``, ``scenario``, ``urdf`` (URDF and xacro)
and ``users`` (web console users).  ``corpus/support/`` holds the valid site registry the
worlds refer to.  A few cases also go through the ``sitebot check`` and ``sitebot launch
--print`` commands in a child process.
"""
from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import pytest

from sitebot.config import yamlio
from sitebot.errors import ConfigError, SitebotError

CORPUS = Path(__file__).resolve().parent / "corpus"
MAX_PEAK_BYTES = 50 * 1024 * 1024
HANG_S = 20.0

BOMB = "more than 100000 values"
DEEP = "nested deeper than 64 levels"
RECURSIVE = "recursive alias"
UTF16 = "looks like UTF-16"

#: case -> (a fragment of the message, where: the line (int), the key path (str) or None)
EXPECTED: dict[str, tuple[str, int | str | None]] = {
    "launch/alias_bomb.launch.yaml": (BOMB, 13),
    "launch/recursive_alias.launch.yaml": (RECURSIVE, 3),
    "launch/deep_list.launch.yaml": (DEEP, 2),
    "launch/float_tag.launch.yaml": ("'abc' cannot be read as !!float", 3),
    "launch/unknown_tag.launch.yaml": ("unsupported YAML tag", 3),
    "launch/utf16.launch.yaml": (UTF16, 1),
    "launch/nul_byte.launch.yaml": ("control character U+0000", 2),
    "launch/inf_param.launch.yaml": ("'real_time_factor': value inf is not finite", 7),
    "launch/negative_param.launch.yaml": ("'clock_rate_hz': value -100.0 is out of range", 7),
    "config/alias_bomb.yaml": (BOMB, 8),
    "config/recursive_alias.yaml": (RECURSIVE, 4),
    "config/deep_map.yaml": (DEEP, 4),
    "config/huge_int.yaml": ("cannot be read as !!int", 4),
    "config/bool_tag.yaml": ("'maybe' cannot be read as !!bool", 4),
    "config/inf_value.yaml": ("value inf is not finite",
                              "simulator.ros__parameters.real_time_factor"),
    "config/nan_value.yaml": ("value nan is not finite",
                              "simulator.ros__parameters.clock_rate_hz"),
    "config/negative_rate.yaml": ("out of range", "simulator.ros__parameters.odom_rate_hz"),
    "config/nul_in_value.yaml": ("contains a NUL character",
                                 "simulator.ros__parameters.world"),
    "config/nul_in_name.yaml": ("must be non-empty and printable",
                                "simulator.ros__parameters.seed\\x00x"),
    "config/invalid_utf8.yaml": ("not UTF-8: byte 0xe9 at byte offset 44", 3),
    "config/controllers_negative_max_velocity.yaml": (
        "max_velocity must be a number > 0, got -1.1",
        "diff_drive_controller.ros__parameters.linear.x.max_velocity"),
    "config/controllers_neg_inf_acceleration.yaml": (
        "max_acceleration must be a finite number, got -inf",
        "diff_drive_controller.ros__parameters.linear.x.max_acceleration"),
    "config/controllers_nul_name.yaml": (
        "must be non-empty and printable",
        "controller_manager.ros__parameters.arm\\x00controller.type"),
    "config/controllers_zero_wheel.yaml": (
        "wheel_radius must be a number > 0", "diff_drive_controller.ros__parameters.wheel_radius"),
    "config/controllers_joint_newline.yaml": (
        "must be a non-empty printable name",
        "diff_drive_controller.ros__parameters.left_wheel_names"),
    "site/place_x_overflow.site.yaml": ("|x| <= 10000 m", "places[0].pose[0]"),
    "site/marker_y_huge.site.yaml": ("|y| <= 10000 m", "markers[0].pose[1]"),
    "site/place_yaw_huge.site.yaml": ("angles are in radians", "places[0].pose[2]"),
    "site/zone_vertex_far.site.yaml": ("|x| <= 10000 m", "zones[0].polygon[1][0]"),
    "site/object_pose_nan.site.yaml": ("must be a finite number, got nan", "objects[0].pose[0]"),
    "site/frame_nul.site.yaml": ("printable characters", "frame"),
    "site/alias_bomb.site.yaml": (BOMB, 7),
    "site/deep_list.site.yaml": (DEEP, 3),
    "site/utf16_no_bom.site.yaml": (UTF16, 1),
    "world/body_mass_huge.world.yaml": ("must be <= 10000, got 1e+308", "bodies[0].mass"),
    "world/ground_friction_neg_inf.world.yaml": ("must be a finite number, got -inf",
                                                 "ground.friction"),
    "world/ground_size_huge.world.yaml": ("<= 20000 m", "ground.size"),
    "world/spawn_yaw_huge.world.yaml": ("angles are in radians", "spawn.robot1[2]"),
    "world/body_roll_huge.world.yaml": ("angles are in radians", "bodies[0].pose[3]"),
    "world/float_tag.world.yaml": ("'twelve' cannot be read as !!float", 4),
    "world/recursive_alias.world.yaml": (RECURSIVE, 6),
    "scenario/variations_bomb.yaml": ("more than 256 runs", "variations.seed2"),
    "scenario/start_yaw_huge.yaml": ("angles are in radians", "robot.start[2]"),
    "scenario/goal_far.yaml": ("|x| <= 10000 m", "mission.goals[0][0]"),
    "scenario/alias_bomb.yaml": (BOMB, 11),
    "urdf/mass_huge.urdf": ("mass 1e+308 kg: must be > 0 and <= 10000", 4),
    "urdf/lateral_friction_neg_inf.urdf": ("expected 1 finite number", 5),
    "urdf/negative_friction.urdf": ("must lie in [0, 10]", 5),
    "urdf/origin_far.urdf": ("within +-1000 m", 9),
    "urdf/newline_in_name.urdf": ("printable characters", 3),
    "urdf/entity_bomb.urdf": ("amplification", 4),
    "urdf/power_tower.urdf.xacro": ("exponent of '**' or pow() must be a number literal",
                                    None),
    "urdf/memory_hog.urdf.xacro": ("needs more than 1024 MiB of memory", None),
    "urdf/utf16.urdf": (UTF16, 1),
    "users/utf16_users.yaml": (UTF16, 1),
    "users/invalid_utf8_users.yaml": ("not UTF-8: byte 0xc3 at byte offset 17", 2),
    "users/alias_bomb_users.yaml": (BOMB, 10),
    "users/recursive_users.yaml": (RECURSIVE, 3),
    "users/float_tag_users.yaml": ("'viewer' cannot be read as !!float", 4),
    "users/unknown_tag_users.yaml": ("could not determine a constructor", 4),
    "users/nul_users.yaml": ("control character U+0000", 2),
}


# ---------------------------------------------------------------------- the loaders
def _launch(p: Path) -> None:
    from sitebot.apps.check import validate_launch_params
    from sitebot.launcher import load_launch, parse_launch_file

    parse_launch_file(p)
    validate_launch_params(load_launch(p))


def _params(p: Path) -> None:
    from sitebot.config.params import load_params_file, validate_params
    from sitebot.control.ros2_control import check_controllers_file
    from sitebot.nodes.schemas import schema_for

    entries = load_params_file(p)
    if p.name.startswith("controllers_"):
        check_controllers_file(entries, p)
        return
    for section, values in entries.items():
        validate_params(schema_for(section.strip("/")), values, file=p, node=section)


def _site(p: Path) -> None:
    from sitebot.site.loader import load_registry
    load_registry(p)


def _world(p: Path) -> None:
    from sitebot.sim.world_loader import load_world
    load_world(p)


def _scenario(p: Path) -> None:
    from sitebot.regress.scenario import load_scenario
    load_scenario(p)


def _urdf(p: Path) -> None:
    from sitebot.description.urdf import load_robot_description
    load_robot_description(p)


def _users(p: Path) -> None:
    from sitebot.console.auth import load_users
    load_users(p)


LOADERS: dict[str, Callable[[Path], None]] = {
    "launch": _launch, "config": _params, "site": _site, "world": _world,
    "scenario": _scenario, "urdf": _urdf, "users": _users,
}


@pytest.fixture(scope="module", autouse=True)
def _imported() -> None:
    """Import what the loaders import once, so that the memory measured per case is the
    loader's work, not module code (the simulator's schema imports rclpy)."""
    from sitebot.nodes.schemas import schema_for
    schema_for("simulator")
    for name in ("sitebot.apps.check", "sitebot.launcher", "sitebot.site.loader",
                 "sitebot.sim.world_loader", "sitebot.regress.scenario",
                 "sitebot.description.urdf", "sitebot.console.auth",
                 "sitebot.control.ros2_control"):
        __import__(name)


def bounded(load: Callable[[Path], None], path: Path) -> SitebotError:
    """Run *load* on *path*; return its SitebotError after checking the work was bounded.
    Any other exception propagates (a failure: no traceback may reach a user)."""
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        load(path)
    except SitebotError as e:
        error = e
    else:
        error = None
    finally:
        elapsed = time.monotonic() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert error is not None, f"{path}: accepted"
    assert peak < MAX_PEAK_BYTES, f"{path}: {peak / 2**20:.1f} MB allocated"
    assert elapsed < HANG_S, f"{path}: {elapsed:.1f} s (hang detector)"
    return error


def _cases() -> list[str]:
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                  if p.is_file() and p.parent.name != "support")


def test_every_corpus_file_has_an_expectation() -> None:
    assert _cases() == sorted(EXPECTED)
    assert len(EXPECTED) <= 64
    assert max((CORPUS / c).stat().st_size for c in EXPECTED) <= 8 * 1024


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hostile_file_ends_in_one_clear_error(case: str) -> None:
    path = CORPUS / case
    fragment, where = EXPECTED[case]
    error = bounded(LOADERS[case.split("/")[0]], path)
    text = str(error)
    assert fragment in text, text
    assert str(path) in text, text                     # names the file
    if isinstance(error, ConfigError):
        assert error.file == str(path)
        assert error.where == where, text
    elif where is not None:                            # AuthError: the line in the text
        assert f"{path}:{where}:" in text, text
    assert "\x00" not in text and "Traceback" not in text


# ---------------------------------------------------------------- generated nesting
DEPTH = 20_000
NESTINGS = {
    "list": "[" * DEPTH + "]" * DEPTH,
    "map": "{k: " * DEPTH + "1" + "}" * DEPTH,
    "mixed": "[{k: " * (DEPTH // 2) + "1" + "}]" * (DEPTH // 2),
}
#: loader -> (file name, text before the nesting)
NESTED_FILES = {
    "launch": ("n.launch.yaml", "launch: "),
    "config": ("n.yaml", "simulator:\n  ros__parameters:\n    world: "),
    "site": ("n.site.yaml", "site: n\nplaces: "),
    "world": ("n.world.yaml", "world: n\nsite: n.site.yaml\nground: "),
    "scenario": ("n.yaml", "scenario: n\nworld: substation\nmission: "),
    "users": ("n_users.yaml", "users: "),
}


@pytest.mark.parametrize("shape", sorted(NESTINGS))
@pytest.mark.parametrize("loader", sorted(NESTED_FILES))
def test_20000_levels_of_nesting_are_refused(tmp_path: Path, loader: str, shape: str) -> None:
    name, head = NESTED_FILES[loader]
    path = tmp_path / name
    path.write_text(head + NESTINGS[shape] + "\n")
    error = bounded(LOADERS[loader], path)
    assert DEEP in str(error) and str(path) in str(error), str(error)


def test_20000_levels_of_xml_nesting(tmp_path: Path) -> None:
    deep = "<a>" * DEPTH + "</a>" * DEPTH
    plain = tmp_path / "n.urdf"
    plain.write_text(f'<?xml version="1.0"?>\n<robot name="n">{deep}</robot>\n')
    assert "has no <link>" in str(bounded(_urdf, plain))
    xacro = tmp_path / "n.urdf.xacro"
    xacro.write_text('<?xml version="1.0"?>\n<robot xmlns:xacro="http://www.ros.org/wiki/'
                     f'xacro" name="n">{deep}</robot>\n')
    assert "nested too deeply" in str(bounded(_urdf, xacro))


def test_yaml_text_values_take_the_same_path() -> None:
    """YAML read from strings (launch ``-p`` values, rviz configs) has the same bounds."""
    for text, fragment in ((NESTINGS["list"], DEEP), ("a: &a [*a]", RECURSIVE),
                           ("x: !!float 'abc'", "cannot be read as !!float")):
        with pytest.raises(ConfigError, match="<value>") as e:
            yamlio.load_yaml_text(text, "<value>")
        assert fragment in str(e.value)


def test_alias_bomb_is_refused_without_expanding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bomb of 10^12 nodes: the loader composes each node of the text once (about 130)
    and refuses as soon as the expanded count passes the limit."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    calls = []
    plain = yamlio.SafeYamlLoader.compose_node

    def counting(self: yamlio.SafeYamlLoader, parent: object, index: object) -> object:
        calls.append(1)
        return plain(self, parent, index)

    monkeypatch.setattr(yamlio.SafeYamlLoader, "compose_node", counting)
    with pytest.raises(ConfigError, match=BOMB):
        yamlio.load_yaml_text("\n".join(lines))
    assert len(calls) <= 12 * 11 + 1


def test_limits_are_stated() -> None:
    assert yamlio.MAX_YAML_BYTES == 4 * 1024 * 1024 and yamlio.MAX_YAML_DEPTH == 64
    assert yamlio.MAX_YAML_NODES == 100_000


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.site.yaml"
    with path.open("wb") as f:
        f.truncate(yamlio.MAX_YAML_BYTES + 1)           # sparse: no disk written
    error = bounded(_site, path)
    assert "larger than 4194304 bytes" in str(error) and str(path) in str(error)


# ---------------------------------------------------------------- the commands
def _sitebot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sitebot.cli", *args], capture_output=True,
                          text=True, timeout=300)       # hang detector only


def test_sitebot_check_fails_each_file_in_one_line() -> None:
    """Every corpus file ``sitebot check`` knows the kind of: one FAIL line naming it, no
    internal error, no traceback."""
    files = [CORPUS / c for c in sorted(EXPECTED) if not c.startswith("scenario/")]
    run = _sitebot("check", "-q", *map(str, files))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stdout
    lines = run.stdout.splitlines()
    assert len(lines) == len(files), run.stdout
    for path, line in zip(files, lines):
        assert line.startswith(f"FAIL {path}"), line
        assert EXPECTED[str(path.relative_to(CORPUS))][0] in line, line


@pytest.mark.parametrize("case", ["launch/inf_param.launch.yaml",
                                  "launch/negative_param.launch.yaml",
                                  "launch/alias_bomb.launch.yaml"])
def test_launch_print_refuses_what_check_refuses(case: str) -> None:
    path = CORPUS / case
    launch = _sitebot("launch", "--print", str(path))
    check = _sitebot("check", str(path))
    assert launch.returncode == 2 and check.returncode == 2
    assert launch.stdout == "", launch.stdout       # nothing printed, nothing started
    error = launch.stderr.strip()
    assert error.count("\n") == 0 and error.startswith("sitebot launch: error: "), error
    assert str(path) in error, error
    message = error.split(f"{path}", 1)[1]           # what follows the file's name
    assert f"FAIL {path}{message}" in check.stdout, (error, check.stdout)
    assert EXPECTED[case][0] in message
