"""``sitebot check FILE_OR_DIR ...``: validate the project's data files offline.

Every argument is a file or a directory (searched recursively, hidden entries and
``__pycache__`` left out, in sorted order).  The kind of each file is told by its name:

==============================  ====================================================
``*.urdf``, ``*.urdf.xacro``,    robot description: :func:`sitebot.description.urdf.load_robot_description`
``*.xacro``                      (a ``.xacro`` whose ``<robot>`` has no ``name`` and holds
                                 only ``xacro:macro``/``property``/``arg``/``include`` is
                                 a *macro library*: its XML and its xacro are checked, its
                                 macros are validated through the file that includes them)
``*.world.yaml``                 world, with its site registry: :func:`sitebot.sim.world.load_world`
``*.site.yaml``                  site registry: :func:`sitebot.site.loader.load_registry`
``*.launch.yaml``                ROS 2 YAML launch file (see below)
other ``*.yaml`` under a         ROS 2 parameter file: every node section is validated
``config/`` directory, or whose  against the parameter schema of that node
top-level values hold            (:mod:`sitebot.nodes.schemas`); an unknown node is an error
``ros__parameters``              listing the known ones; ``/**`` sections are checked
                                 against every node that declares the parameter
``*.rviz``                       rviz2 display configuration: displays and tools parsed,
                                 each with a class and a topic (sitebot.viz.rviz_config)
``*_users.yaml``                 web console users (roles, salted PBKDF2 password hashes)
``*.xml``                        skipped, with a note
==============================  ====================================================

(``.yml`` is accepted wherever ``.yaml`` is.)  A file named on the command line whose
kind is unknown is an error naming the accepted kinds; inside a directory such a file is
skipped with a note, so that a directory may hold a README.  A ``.yaml`` of no known kind
is an error in both cases.

Launch files: the file is first parsed (every tag and attribute checked, with file and
line).  If it declares an argument without default at top level (``ros2 launch`` would
refuse to start it without ``name:=value``), it cannot be resolved with default arguments:
it is reported OK *with a note* naming those arguments, after the structural check only.
Otherwise it is resolved with :func:`sitebot.launcher.load_launch` and its default
arguments (includes, substitutions, executables and parameter files), and the parameters
given to every sitebot node with a known schema (its parameter-file sections and its
``param`` values) are validated against that schema: a bad value is reported at the line
of the launch file, or the key of the parameter file, where it is written.

Output: one line per file, ``OK   <path> (<kind>)``, ``SKIP <path> (<note>)`` or
``FAIL <path>: <message>`` (when the message starts with the file itself, the file is not
repeated: ``FAIL <path>:<line>: <message>`` or ``FAIL <path>: <key>: <message>``), then a
summary line.  Exit code 0 when no file failed, 2 otherwise.  A broken input never ends
in a traceback: a :class:`~sitebot.errors.SitebotError` is the FAIL message; any other
exception is reported as ``FAIL <path>: internal error: <Type>: <message>``.

This module does not import rclpy; the parameter schemas are imported lazily through
:func:`sitebot.nodes.schemas.schema_for` (the node modules do import rclpy).
"""
from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from sitebot.config.params import EVERY_NODE_PARAMS
from sitebot.errors import ConfigError, LaunchError, ParameterError, SitebotError

__all__ = ["main", "check_file", "classify", "CheckResult", "ACCEPTED_KINDS",
           "validate_launch_params"]

ACCEPTED_KINDS = ("*.urdf / *.xacro / *.urdf.xacro (robot description), *.world.yaml "
                  "(world), *.site.yaml (site registry), *.launch.yaml (launch), "
                  "parameter files (*.yaml under config/ or with 'ros__parameters'); "
                  "*.rviz (rviz2 configuration), *_users.yaml (web console users); "
                  "*.xml is skipped")

_YAML = (".yaml", ".yml")
_SKIPPED = {".xml": "XML file, not checked"}
_XACRO_NS = "{http://www.ros.org/wiki/xacro}"
_XACRO_LIBRARY_TAGS = {_XACRO_NS + t for t in ("macro", "property", "arg", "include")}
_WILDCARDS = ("**", "*")
_ALWAYS_ALLOWED = EVERY_NODE_PARAMS


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one file: ``status`` is ``OK``, ``SKIP`` or ``FAIL``."""

    path: Path
    status: str
    text: str   # the kind and notes (OK, SKIP) or the one-line message (FAIL)

    def line(self) -> str:
        shown = str(self.path)
        if self.status == "FAIL":
            return f"FAIL {shown}{_strip_own_path(self.text, self.path)}"
        return f"{self.status:<4} {shown} ({self.text})"


# ======================================================================================
# kinds
# ======================================================================================

def _has_suffix(name: str, stem_suffix: str) -> bool:
    return any(name.endswith(stem_suffix + ext) for ext in _YAML)


def classify(path: Path) -> str | None:
    """The kind of *path* told by its name: ``urdf``, ``xacro``, ``world``, ``site``,
    ``launch``, ``params`` (``*.yaml`` under ``config/``), ``yaml`` (another YAML file,
    a parameter file only if its content says so), ``skip``, or None (unknown)."""
    name = path.name
    if name.endswith(".urdf"):
        return "urdf"
    if name.endswith(".xacro"):
        return "xacro"
    if _has_suffix(name, ".world"):
        return "world"
    if _has_suffix(name, ".site"):
        return "site"
    if _has_suffix(name, ".launch"):
        return "launch"
    if _has_suffix(name, "_users"):
        return "users"
    if name.endswith(_YAML):
        return "params" if "config" in path.parent.parts else "yaml"
    if path.suffix == ".rviz":
        return "rviz"
    if path.suffix in _SKIPPED:
        return "skip"
    return None


# ======================================================================================
# one file
# ======================================================================================

def check_file(path: Path, *, explicit: bool = True) -> CheckResult:
    """Check one file. *explicit*: it was named on the command line (an unknown kind is
    then an error; found in a directory, it is skipped)."""
    kind = classify(path)
    if kind == "skip":
        return CheckResult(path, "SKIP", _SKIPPED[path.suffix])
    if kind is None:
        if explicit:
            return CheckResult(path, "FAIL", f"unknown kind of file; accepted: "
                                             f"{ACCEPTED_KINDS}")
        return CheckResult(path, "SKIP", "not a kind of file sitebot checks")
    try:
        note = _CHECKERS[kind](path)
    except SitebotError as e:
        return CheckResult(path, "FAIL", _one_line(str(e)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a bug, or an input no checker foresaw: still no traceback
        return CheckResult(path, "FAIL", _one_line(
            f"internal error: {type(e).__name__}: {e}"))
    return CheckResult(path, "OK", note)


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def _strip_own_path(message: str, path: Path) -> str:
    """``': msg'``, or ``':12: msg'`` / ``': key: msg'`` when *message* starts with the
    file itself (the loaders name the file, sometimes as an absolute path)."""
    candidates = {str(path), str(path.absolute())}
    try:
        candidates.add(str(path.resolve()))
    except OSError:  # pragma: no cover
        pass
    for prefix in sorted(candidates, key=len, reverse=True):
        if message.startswith(prefix + ":"):
            return message[len(prefix):]
    return ": " + message


# -- robot descriptions ----------------------------------------------------------------

def _check_urdf(path: Path) -> str:
    from sitebot.description.urdf import load_robot_description

    desc = load_robot_description(path)
    return (f"robot description '{desc.name}': {len(desc.links)} links, "
            f"{len(desc.joints)} joints")


def _check_xacro(path: Path) -> str:
    macros = _xacro_library_macros(path)
    if macros is None:
        return "xacro, " + _check_urdf(path)
    from sitebot.description.xacro_bounded import expand_xacro

    expand_xacro(path)           # bounded work: a child process with time and size limits
    users = [p.name for p in sorted(path.parent.glob("*.xacro"))
             if p != path and f'"{path.name}"' in _read(p)]
    note = f"xacro macro library: {', '.join(macros) or 'no macros'}"
    if users:
        note += f"; validated as part of {', '.join(users)}"
    return note


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _xacro_library_macros(path: Path) -> list[str] | None:
    """The macro names when *path* is a xacro macro library (a ``<robot>`` without
    ``name`` holding only macro/property/arg/include), else None.  Malformed XML gives
    None: the robot-description loader then reports it with its line."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    if root.tag != "robot" or root.get("name"):
        return None
    children = list(root)
    if not children or any(c.tag not in _XACRO_LIBRARY_TAGS for c in children):
        return None
    return [c.get("name", "?") for c in children if c.tag == _XACRO_NS + "macro"]


# -- worlds and registries -------------------------------------------------------------

def _check_world(path: Path) -> str:
    from sitebot.sim.world_loader import load_world

    spec = load_world(path)
    return (f"world '{spec.id}': {len(spec.bodies)} bodies, site registry "
            f"{Path(spec.registry.file).name if spec.registry.file else '(inline)'}")


def _check_site(path: Path) -> str:
    from sitebot.site.loader import load_registry

    reg = load_registry(path)
    count = sum(1 for _ in reg.entities())
    return f"site registry: {count} entities"


# -- parameter files -------------------------------------------------------------------

def _node_of(section: str) -> str:
    """The node name of a parameter-file section: ``/ns/simulator`` -> ``simulator``,
    ``/**`` -> ``**``."""
    return section.strip("/").split("/")[-1] if section.strip("/") else section


def _check_params(path: Path) -> str:
    from sitebot.config.params import load_params_file, validate_params
    from sitebot.nodes.schemas import known_nodes, schema_for

    entries = load_params_file(path)
    if not entries:
        raise ConfigError("a parameter file needs at least one node section", path)
    if any(_node_of(section) == "controller_manager" for section in entries):
        return _check_ros2_controllers(path, entries)
    nodes: list[str] = []
    for section, values in entries.items():
        node = _node_of(section)
        if node in _WILDCARDS:
            _check_wildcard(path, section, values)
            nodes.append(section)
            continue
        if node not in known_nodes():
            raise ConfigError(f"unknown node '{node}': no parameter schema for it; known "
                              f"nodes: {', '.join(known_nodes())}", path, section)
        validate_params(schema_for(node), values, file=path, node=section,
                        allow_unknown=_ALWAYS_ALLOWED)
        nodes.append(node)
    return "parameters: " + ", ".join(nodes)


def _check_ros2_controllers(path: Path, entries: dict[str, dict[str, Any]]) -> str:
    """A ros2_control controllers file (a ``controller_manager`` section): the parameters
    belong to ros2_control's nodes, not sitebot's; checked for consistency, names and
    limits (:func:`sitebot.control.ros2_control.check_controllers_file`)."""
    from sitebot.control.ros2_control import check_controllers_file

    declared = check_controllers_file(entries, path)
    return ("ros2_control controllers (not sitebot nodes; consistency, names and limits "
            "checked): "
            + ", ".join(declared))


def _check_wildcard(path: Path, section: str, values: dict[str, Any]) -> None:
    """A ``/**`` section applies to every node: each parameter must be declared by at
    least one known node, and valid for every node that declares it."""
    from sitebot.config.params import validate_value
    from sitebot.nodes.schemas import available_nodes, schema_for

    schemas = {n: {s.name: s for s in schema_for(n)} for n in available_nodes()}
    for name, value in values.items():
        where = f"{section}.ros__parameters.{name}"
        declaring = [n for n in schemas if name in schemas[n]]
        if not declaring:
            if name in _ALWAYS_ALLOWED:
                continue
            declared = sorted({p for specs in schemas.values() for p in specs})
            raise ConfigError(f"unknown parameter '{name}': no known node declares it; "
                              f"declared: {', '.join(declared)}", path, where)
        for n in declaring:
            try:
                validate_value(schemas[n][name], value)
            except ParameterError as e:
                raise ConfigError(f"{e} (node '{n}')", path, where) from None


def _check_yaml(path: Path) -> str:
    """A ``.yaml`` of no kind told by its name: a parameter file if its content is one."""
    from sitebot.config.yamlio import load_yaml

    data = load_yaml(path)
    if isinstance(data, dict) and data and any(
            isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        return _check_params(path)
    raise ConfigError("unknown kind of YAML file (not a parameter file: no "
                      f"'ros__parameters'); accepted: {ACCEPTED_KINDS}", path)


# -- launch files ----------------------------------------------------------------------

def _check_launch(path: Path) -> str:
    from sitebot.launcher import load_launch, parse_launch_file

    lf = parse_launch_file(path)
    required = list(dict.fromkeys(a.name for a in lf.required_args()))
    if required:
        return ("launch; structure checked, not resolved: argument"
                + ("s " if len(required) > 1 else " ") + ", ".join(required)
                + " without default")
    try:
        desc = load_launch(path)
    except LaunchError as e:
        # files for a full ROS install parse here but cannot resolve: they start packages
        # that are not installed (ros2_control, robot_state_publisher) or run $(command)
        missing = re.search(r"package '([\w-]+)' not found", str(e))
        if missing and missing.group(1) != "sitebot":
            return ("launch; structure checked, not resolved: needs the ROS package "
                    f"'{missing.group(1)}', not installed here (run it with `ros2 launch`)")
        if "$(command" in str(e):
            return ("launch; structure checked, not resolved: it uses $(command ...), "
                    "which only `ros2 launch` runs")
        raise
    checked = validate_launch_params(desc)
    note = f"launch: {len(desc.processes)} process" + ("es" if len(desc.processes) != 1
                                                      else "")
    if checked:
        note += f"; parameters of {', '.join(checked)} validated"
    return note


def validate_launch_params(desc: Any) -> list[str]:
    """Validate the parameters a resolved launch description (:func:`load_launch`) gives
    to every sitebot node with a known schema, as ``sitebot check`` does for a launch file
    and ``sitebot launch`` (``--print`` included) does before it prints or starts
    anything.  Returns the names of the processes validated.

    :raises ConfigError: naming the launch file and line, or the parameter file and key,
        of the first bad value.
    """
    return [p.name for p in desc.processes if _check_process_params(p)]


def _check_process_params(proc: Any) -> bool:
    """Validate the parameters a launch file gives to a sitebot node with a known schema.
    Returns whether the process was such a node.

    Every value the node would receive and declares is validated.  A name the node does
    not declare is an error only where it is addressed to this node: in its own ``param``
    list or in a parameter-file section naming it; names from ``/**`` sections and from
    ``set_parameter`` (meant for every node) are let through, as ROS ignores them."""
    from sitebot.config.params import load_params_file, validate_value
    from sitebot.launcher.params import is_inline_params_file
    from sitebot.nodes.schemas import NODE_SCHEMAS, schema_for

    exe = Path(proc.executable).name
    if proc.package != "sitebot" or exe not in NODE_SCHEMAS:
        return False
    specs = {s.name: s for s in schema_for(exe)}
    node = proc.node_name or exe
    ns = (proc.namespace or "/").rstrip("/")
    launch_file, _, line = proc.source.rpartition(":")
    launch_where: Any = int(line) if line.isdigit() else None
    if not launch_file:
        launch_file, launch_where = proc.source, None
    # name -> (value, file, where, strict): strict values must be declared by this node
    given: dict[str, tuple[Any, str, Any, bool]] = {}
    param_lines = _param_lines(launch_file, launch_where)
    for flag, arg in _ros_args(proc.cmd):
        if flag == "--params-file" and is_inline_params_file(arg):
            # the node's inline parameters, in the file launch_ros would write for them
            try:
                inline = load_params_file(arg)
            except ConfigError as e:
                raise ConfigError(f"node '{proc.name}': an inline parameter would not reach "
                                  f"the node as written: {e.message} (launch_ros hands inline "
                                  "parameters over in a file written with yaml.dump; put the "
                                  "value in a parameter file, quoted)", launch_file,
                                  launch_where) from None
            for values in inline.values():
                for name, value in values.items():
                    given[name] = (value, launch_file, param_lines.get(name, launch_where),
                                   name in param_lines)
        elif flag == "--params-file":
            for section, values in load_params_file(arg).items():
                wildcard = section.strip("/") in _WILDCARDS
                if not wildcard and not _section_applies(section, node, ns):
                    continue
                for name, value in values.items():
                    given[name] = (value, arg, f"{section}.ros__parameters.{name}",
                                   not wildcard)
        else:
            name, _, text = arg.partition(":=")
            # strict: written in this node's own 'param' list (not set_parameter)
            given[name] = (_yaml_value(text), launch_file,
                           param_lines.get(name, launch_where), name in param_lines)
    for name, (value, file, where, strict) in given.items():
        spec = specs.get(name)
        if spec is None:
            if strict and name not in _ALWAYS_ALLOWED:
                raise ConfigError(f"node '{proc.name}': unknown parameter '{name}'; this "
                                  f"node declares: {', '.join(sorted(specs))}", file, where)
            continue
        try:
            validate_value(spec, value)
        except ParameterError as e:
            raise ConfigError(f"node '{proc.name}': {e}", file, where) from None
    return True


def _section_applies(section: str, node: str, ns: str) -> bool:
    """Whether the parameter-file section *section* (``simulator``, ``/ns/simulator``,
    ``/**/simulator``) names the node *node* in the namespace *ns* (``''`` for the root)."""
    parts = section.strip("/").split("/")
    if parts[-1] != node:
        return False
    prefix = "/".join(parts[:-1])
    return prefix in ("", "**") or prefix == ns.strip("/")


def _param_lines(file: str, node_line: Any) -> dict[str, int]:
    """Line of each ``{name, value}`` parameter of the ``node`` at *node_line* of the
    launch *file* (nested names dotted), so that a bad value is reported where it is
    written; empty when not found (then the node's line is reported)."""
    from sitebot.launcher import parse_launch_file
    from sitebot.launcher.model import GroupAction, NodeAction, ParamValue

    if not isinstance(node_line, int):
        return {}
    try:
        actions = list(parse_launch_file(file).actions)
    except SitebotError:  # pragma: no cover - the file was just parsed successfully
        return {}
    out: dict[str, int] = {}

    def add(p: ParamValue, prefix: str) -> None:
        if not p.name.is_plain:
            return
        name = prefix + p.name.plain_text
        if p.children:
            for c in p.children:
                add(c, name + ".")
        else:
            out[name] = p.line

    while actions:
        a = actions.pop()
        if isinstance(a, GroupAction):
            actions.extend(a.children)
        elif isinstance(a, NodeAction) and a.line == node_line:
            for item in a.params:
                if isinstance(item, ParamValue):
                    add(item, "")
    return out


def _ros_args(cmd: Sequence[str]) -> Iterator[tuple[str, str]]:
    """``(flag, value)`` of the ``-p``/``--param``/``--params-file`` rules after
    ``--ros-args`` in a command line."""
    inside = False
    it = iter(cmd)
    for tok in it:
        if tok == "--ros-args":
            inside = True
        elif tok == "--":
            inside = False
        elif inside and tok in ("-p", "--param", "--params-file"):
            value = next(it, None)
            if value is not None:
                yield ("--params-file" if tok == "--params-file" else "-p", value)
        elif inside and tok in ("-r", "--remap", "-e", "--enclave", "--log-level"):
            next(it, None)


def _yaml_value(text: str) -> Any:
    from sitebot.config.yamlio import load_yaml_text

    try:
        return load_yaml_text(text)
    except ConfigError:
        return text


def _check_rviz(path: Path) -> str:
    from sitebot.viz.rviz_config import load_rviz_config
    cfg = load_rviz_config(path)
    return (f"rviz2 config: {len(cfg.displays)} displays, {len(cfg.tools)} tools, fixed "
            f"frame '{cfg.fixed_frame}'")


def _check_users(path: Path) -> str:
    from sitebot.console.auth import load_users
    store = load_users(path)
    roles = sorted({u.role for u in store.users.values()})
    return f"console users: {len(store)} ({', '.join(roles)})"


_CHECKERS: dict[str, Callable[[Path], str]] = {
    "users": _check_users,
    "rviz": _check_rviz,
    "urdf": _check_urdf,
    "xacro": _check_xacro,
    "world": _check_world,
    "site": _check_site,
    "launch": _check_launch,
    "params": _check_params,
    "yaml": _check_yaml,
}


# ======================================================================================
# command
# ======================================================================================

def _walk(directory: Path) -> Iterator[Path]:
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or p.name == "__pycache__":
            continue
        if p.is_dir():
            yield from _walk(p)
        elif p.is_file():
            yield p


def iter_results(targets: Sequence[str | Path]) -> Iterator[CheckResult]:
    """One :class:`CheckResult` per file under *targets*, in order."""
    for t in targets:
        p = Path(t)
        if p.is_dir():
            found = False
            for f in _walk(p):
                found = True
                yield check_file(f, explicit=False)
            if not found:
                yield CheckResult(p, "SKIP", "empty directory")
        elif p.is_file():
            yield check_file(p, explicit=True)
        else:
            yield CheckResult(p, "FAIL", "no such file or directory")


def main(argv: Sequence[str] | None = None) -> int:
    """``sitebot check [-q] FILE_OR_DIR ...``; exit code 0 when every file passed, else 2."""
    ap = argparse.ArgumentParser(
        prog="sitebot check",
        description="Validate robot descriptions (URDF/xacro), worlds, site registries, "
                    "parameter files and launch files. Directories are searched "
                    "recursively.",
        epilog="accepted kinds: " + ACCEPTED_KINDS)
    ap.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    ns = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    counts = {"OK": 0, "SKIP": 0, "FAIL": 0}
    for r in iter_results(ns.paths):
        counts[r.status] += 1
        if r.status == "FAIL" or not ns.quiet:
            print(r.line(), flush=True)
    total = sum(counts.values())
    if not ns.quiet:
        print(f"checked {total} file{'s' if total != 1 else ''}: {counts['OK']} OK, "
              f"{counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 2 if counts["FAIL"] else 0
