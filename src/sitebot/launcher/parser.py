"""Read ROS 2 YAML launch files and resolve them into processes, without ROS's launch.

Two steps:

* :func:`parse_launch_file` reads one file into :class:`~.model.LaunchFile` (actions whose
  attribute values are parsed but unresolved :class:`~.substitutions.Template` objects).
  Every tag and attribute is checked against what the ROS 2 YAML frontend accepts *and*
  this launcher implements; anything else is a :class:`LaunchError` naming the file and
  the line.
* :func:`load_launch` walks the actions as ``ros2 launch`` would (launch configurations,
  group scoping, includes, namespaces, conditions) and returns a
  :class:`~.model.LaunchDescription`: the exact command line of every process.

The command line of a ``node`` follows launch_ros: ``<exe> [args] [--ros-args <ros_args>]
--ros-args [-r __node:=N] [-r __ns:=/ns] [-p global params] [--params-file F | -p name:=v
in the order of the param list] [-r from:=to (set_remap first)]``.  Inline parameters are
passed as ``-p name:=<YAML value>`` (launch_ros writes them to a temporary params file; the
effect on the node is the same) so that resolution writes no files.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from .. import paths
from ..errors import LaunchError
from .model import (
    Action, ArgAction, ArgInfo, Condition, ExecutableAction, GroupAction, IncludeAction,
    LaunchDescription, LaunchFile, LetAction, NodeAction, NodeProcess, ParamFile,
    ParamItem, ParamValue, PushRosNamespaceAction, SetEnvAction, SetParameterAction,
    SetRemapAction, UnsetEnvAction,
)
from .substitutions import Subst, Template, evaluate, evaluate_condition, parse_template

__all__ = [
    "ExecutableResolver",
    "parse_launch_file",
    "load_launch",
    "resolve_executable",
    "find_package_share",
    "format_param_value",
    "SUPPORTED_TAGS",
    "OUTPUT_MODES",
]

#: ``resolver(package, executable)`` -> the command prefix that starts it, or None to fall
#: back to the built-in lookup (console_scripts entry points, then AMENT_PREFIX_PATH).
ExecutableResolver = Callable[[str, str], "Sequence[str] | None"]

_COND = ("if", "unless")
_PROC = ("output", "respawn", "respawn_delay", "cwd", "env", "launch-prefix")

#: tag -> accepted attributes
SUPPORTED_TAGS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "arg": ("name", "default", "description", "choice") + _COND,
    "let": ("name", "value") + _COND,
    "node": ("pkg", "exec", "name", "namespace", "args", "ros_args", "exec_name", "param",
             "remap") + _PROC + _COND,
    "executable": ("cmd", "name", "shell") + _PROC + _COND,
    "group": ("scoped", "forwarding", "keep", "children") + _COND,
    "include": ("file", "arg") + _COND,
    "push-ros-namespace": ("namespace",) + _COND,
    "push_ros_namespace": ("namespace",) + _COND,
    "set_env": ("name", "value") + _COND,
    "unset_env": ("name",) + _COND,
    "set_parameter": ("name", "value") + _COND,
    "set_remap": ("from", "to") + _COND,
})

OUTPUT_MODES = ("screen", "log", "both", "own_log", "full")
_PARAM_TYPES = ("str", "bool", "float", "int", "list_of_str", "list_of_bool",
                "list_of_float", "list_of_int", "yaml")
_MAX_INCLUDE_DEPTH = 32
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_IDENT_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


# =============================================================== YAML with line numbers


@dataclass
class _Y:
    """A YAML node: ``kind`` is 'scalar' (value: Python scalar), 'seq' (list[_Y]) or 'map'
    (dict[str, tuple[key_line, _Y]])."""

    kind: str
    value: Any
    line: int


def _load_yaml(path: Path) -> _Y | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise LaunchError(f"cannot read launch file: {e.strerror or e}", path) from None
    except UnicodeDecodeError as e:
        raise LaunchError(f"launch file is not UTF-8 text: {e}", path) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _convert(loader, node, path)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x) or "syntax error"
        raise LaunchError(f"malformed YAML: {what}", path,
                          mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise LaunchError(f"malformed YAML: {e}", path) from None
    finally:
        loader.dispose()


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: Path) -> _Y:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return _Y("scalar", loader.construct_object(node, deep=True), line)
    if isinstance(node, yaml.SequenceNode):
        return _Y("seq", [_convert(loader, n, path) for n in node.value], line)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, tuple[int, _Y]] = {}
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            key = loader.construct_object(knode, deep=True) \
                if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise LaunchError(f"keys must be strings, got {key!r}", path, kline)
            if key in out:
                raise LaunchError(f"duplicate key '{key}' (first on line {out[key][0]})",
                                  path, kline)
            out[key] = (kline, _convert(loader, vnode, path))
        return _Y("map", out, line)
    raise LaunchError("unsupported YAML node", path, line)  # pragma: no cover


# ====================================================================== parsing to AST


class _Entity:
    """The attributes of one tag, with type checks that name file and line."""

    def __init__(self, tag: str, node: _Y, file: str, line: int) -> None:
        self.tag = tag
        self.file = file
        self.line = line
        if node.kind != "map":
            raise LaunchError(
                f"'{tag}' must be a mapping of attributes, got "
                + ("nothing" if node.kind == "scalar" and node.value is None
                   else _yaml_kind(node)), file, node.line)
        self.attrs: dict[str, tuple[int, _Y]] = node.value
        accepted = SUPPORTED_TAGS[tag]
        for key, (kline, _) in self.attrs.items():
            if key not in accepted:
                raise LaunchError(
                    f"unsupported attribute '{key}' in '{tag}' (supported: "
                    + ", ".join(accepted) + ")", file, kline)

    def err(self, msg: str, line: int | None = None) -> LaunchError:
        return LaunchError(msg, self.file, line if line is not None else self.line)

    def has(self, key: str) -> bool:
        return key in self.attrs

    def raw(self, key: str, required: bool = False) -> _Y | None:
        if key not in self.attrs:
            if required:
                raise self.err(f"'{self.tag}' needs the attribute '{key}'")
            return None
        return self.attrs[key][1]

    def string(self, key: str, required: bool = False) -> tuple[str, int] | None:
        node = self.raw(key, required)
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, str):
            hint = ""
            if node.kind == "scalar" and node.value is not None:
                hint = f" (quote it: {key}: \"{_yaml_scalar_text(node.value)}\"; ros2 launch " \
                       "accepts only strings here)"
            raise self.err(f"attribute '{key}' of '{self.tag}' must be a string, got "
                           f"{_yaml_kind(node)}{hint}", node.line)
        return node.value, node.line

    def template(self, key: str, required: bool = False) -> Template | None:
        got = self.string(key, required)
        if got is None:
            return None
        return parse_template(got[0], self.file, got[1])

    def boolean(self, key: str) -> bool | None:
        node = self.raw(key)
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, bool):
            raise self.err(f"attribute '{key}' of '{self.tag}' must be true or false "
                           f"(unquoted), got {_yaml_kind(node)}", node.line)
        return node.value

    def bool_or_template(self, key: str) -> bool | Template | None:
        node = self.raw(key)
        if node is None:
            return None
        if node.kind == "scalar" and isinstance(node.value, bool):
            return node.value
        return self.template(key)

    def non_negative_float(self, key: str) -> float | None:
        node = self.raw(key)
        if node is None:
            return None
        if node.kind != "scalar" or isinstance(node.value, bool) \
                or not isinstance(node.value, float) or node.value < 0 \
                or not math.isfinite(node.value):
            raise self.err(f"attribute '{key}' of '{self.tag}' must be a non-negative float "
                           f"such as 1.0, got {_yaml_kind(node)}", node.line)
        return node.value

    def entities(self, key: str) -> list["_Sub"]:
        node = self.raw(key)
        if node is None:
            return []
        if node.kind != "seq" or not node.value or any(n.kind != "map" for n in node.value):
            raise self.err(f"attribute '{key}' of '{self.tag}' must be a non-empty list of "
                           "mappings", node.line)
        return [_Sub(f"{self.tag}.{key}", n, self.file) for n in node.value]

    def condition(self) -> Condition | None:
        c_if = self.template("if")
        c_unless = self.template("unless")
        if c_if is not None and c_unless is not None:
            raise self.err(f"'{self.tag}' cannot have both 'if' and 'unless'")
        if c_if is not None:
            return Condition(c_if, False)
        if c_unless is not None:
            return Condition(c_unless, True)
        return None


class _Sub(_Entity):
    """An item of a list attribute (``param``, ``remap``, ``arg``, ``env``, ``keep``,
    ``choice``): accepted keys depend on the list."""

    _KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
        "node.param": ("name", "value", "type", "param", "from"),
        "node.param.param": ("name", "value", "type", "param"),
        "node.remap": ("from", "to"),
        "node.env": ("name", "value"),
        "executable.env": ("name", "value"),
        "include.arg": ("name", "value"),
        "group.keep": ("name", "value"),
        "arg.choice": ("value",),
    })

    def __init__(self, tag: str, node: _Y, file: str) -> None:  # noqa: D107
        self.tag = tag
        self.file = file
        self.line = node.line
        self.attrs = node.value
        accepted = self._KEYS[tag]
        for key, (kline, _) in self.attrs.items():
            if key not in accepted:
                raise LaunchError(
                    f"unsupported attribute '{key}' in '{tag}' item (supported: "
                    + ", ".join(accepted) + ")", file, kline)

    def entities(self, key: str) -> list["_Sub"]:
        node = self.raw(key)
        if node is None:
            return []
        if node.kind != "seq" or not node.value or any(n.kind != "map" for n in node.value):
            raise self.err(f"'{key}' of '{self.tag}' must be a non-empty list of mappings",
                           node.line)
        tag = f"{self.tag}.{key}"
        if tag not in self._KEYS:  # nested params nest further
            tag = "node.param.param"
        return [_Sub(tag, n, self.file) for n in node.value]


def _yaml_kind(node: _Y) -> str:
    if node.kind == "scalar":
        v = node.value
        return "nothing" if v is None else f"{type(v).__name__} {v!r}"
    return "a list" if node.kind == "seq" else "a mapping"


def _yaml_scalar_text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def parse_launch_file(path: str | Path) -> LaunchFile:
    """Parse one YAML launch file.

    :raises LaunchError: malformed YAML, a tag or attribute that is not supported, or a
        malformed substitution; the error names the file and line.
    """
    path = Path(path).absolute()
    file = str(path)
    root = _load_yaml(path)
    if root is None or root.kind != "map" or "launch" not in root.value:
        raise LaunchError("a YAML launch file must have the single top-level key 'launch'",
                          file, root.line if root is not None else 1)
    for key, (kline, _) in root.value.items():
        if key != "launch":
            raise LaunchError(f"unexpected top-level key '{key}' (only 'launch' is allowed)",
                              file, kline)
    kline, body = root.value["launch"]
    if body.kind == "scalar" and body.value is None:
        return LaunchFile(path, ())
    if body.kind != "seq":
        raise LaunchError("'launch' must be a list of actions", file, body.line)
    return LaunchFile(path, _parse_actions(body, file))


def _parse_actions(seq: _Y, file: str) -> tuple[Action, ...]:
    out = []
    for item in seq.value:
        if item.kind != "map" or len(item.value) != 1:
            raise LaunchError("each action must be a mapping with exactly one key, the tag "
                              "(e.g. '- node: {...}')", file, item.line)
        (tag, (tline, body)), = item.value.items()
        if tag not in SUPPORTED_TAGS:
            raise LaunchError(f"unsupported tag '{tag}' (supported: "
                              + ", ".join(SUPPORTED_TAGS) + ")", file, tline)
        out.append(_parse_action(_Entity(tag, body, file, tline)))
    return tuple(out)


def _parse_action(e: _Entity) -> Action:
    cond = e.condition()
    common = dict(file=e.file, line=e.line, condition=cond)
    tag = e.tag
    if tag == "arg":
        name, nline = e.string("name", True)  # type: ignore[misc]
        if not name:
            raise e.err("argument name must not be empty", nline)
        desc = e.string("description")
        choices = None
        if e.has("choice"):
            choices = []
            for c in e.entities("choice"):
                v = c.string("value", True)
                choices.append(v[0])  # type: ignore[index]
            choices = tuple(choices)
            default = e.string("default")
            if default is not None and "$(" not in default[0] and default[0] not in choices:
                raise e.err(f"default {default[0]!r} of argument '{name}' is not one of its "
                            f"choices {list(choices)}", default[1])
        return ArgAction(name=name, default=e.template("default"),
                         description=desc[0] if desc else None, choices=choices, **common)
    if tag == "let":
        return LetAction(name=e.template("name", True), value=e.template("value", True),
                         **common)
    if tag == "node":
        remaps = tuple((r.template("from", True), r.template("to", True))
                       for r in e.entities("remap"))
        params = tuple(_parse_param(p) for p in e.entities("param"))
        return NodeAction(
            executable=e.template("exec", True), package=e.template("pkg"),
            name=e.template("name"), namespace=e.template("namespace"),
            args=e.template("args"), ros_args=e.template("ros_args"),
            exec_name=e.template("exec_name"), params=params, remaps=remaps,
            **_process_attrs(e), **common)
    if tag == "executable":
        shell = e.boolean("shell")
        if shell:
            raise e.err("'shell: true' is not supported (run 'sh -c ...' as the cmd instead)",
                        e.attrs["shell"][0])
        return ExecutableAction(cmd=e.template("cmd", True), name=e.template("name"),
                                **_process_attrs(e), **common)
    if tag == "group":
        scoped = e.boolean("scoped")
        forwarding = e.boolean("forwarding")
        keep = tuple((k.template("name", True), k.template("value", True))
                     for k in e.entities("keep"))
        children_node = e.raw("children", True)
        if children_node.kind != "seq":  # type: ignore[union-attr]
            raise e.err("'children' of 'group' must be a list of actions",
                        children_node.line)  # type: ignore[union-attr]
        return GroupAction(children=_parse_actions(children_node, e.file),  # type: ignore
                           scoped=True if scoped is None else scoped,
                           forwarding=True if forwarding is None else forwarding,
                           keep=keep, **common)
    if tag == "include":
        args = tuple((a.template("name", True), a.template("value", True))
                     for a in e.entities("arg"))
        return IncludeAction(path=e.template("file", True), args=args, **common)
    if tag in ("push-ros-namespace", "push_ros_namespace"):
        return PushRosNamespaceAction(namespace=e.template("namespace", True), **common)
    if tag == "set_env":
        return SetEnvAction(name=e.template("name", True), value=e.template("value", True),
                            **common)
    if tag == "unset_env":
        return UnsetEnvAction(name=e.template("name", True), **common)
    if tag == "set_parameter":
        return SetParameterAction(name=e.template("name", True),
                                  value=e.template("value", True), **common)
    if tag == "set_remap":
        return SetRemapAction(src=e.template("from", True), dst=e.template("to", True),
                              **common)
    raise e.err(f"unsupported tag '{tag}'")  # pragma: no cover


def _process_attrs(e: _Entity) -> dict[str, Any]:
    env = tuple((v.template("name", True), v.template("value", True))
                for v in e.entities("env"))
    return dict(output=e.template("output"), respawn=e.bool_or_template("respawn"),
                respawn_delay=e.non_negative_float("respawn_delay"), cwd=e.template("cwd"),
                launch_prefix=e.template("launch-prefix"), env=env)


def _parse_param(p: _Sub) -> ParamItem:
    if p.has("from"):
        for other in ("name", "value", "type", "param"):
            if p.has(other):
                raise p.err(f"a 'param' item with 'from' cannot also have '{other}'",
                            p.attrs[other][0])
        return ParamFile(path=p.template("from", True), file=p.file, line=p.line)
    return _parse_param_value(p)


def _parse_param_value(p: _Sub) -> ParamValue:
    if not p.has("name"):
        raise p.err("a 'param' item needs 'name' (with 'value' or nested 'param') or 'from'")
    name = p.template("name", True)
    ptype = p.string("type")
    if ptype is not None and ptype[0] not in _PARAM_TYPES:
        raise p.err(f"unknown parameter type '{ptype[0]}' (supported: "
                    + ", ".join(_PARAM_TYPES) + ")", ptype[1])
    has_value, has_nested = p.has("value"), p.has("param")
    if has_value == has_nested:
        raise p.err("a 'param' item needs exactly one of 'value' and nested 'param'")
    if has_nested:
        if ptype is not None:
            raise p.err("'type' cannot be used with nested 'param'", ptype[1])
        children = tuple(_parse_param_value(c) for c in p.entities("param"))
        return ParamValue(name=name, file=p.file, line=p.line, children=children)
    node = p.raw("value")
    assert node is not None
    return ParamValue(name=name, file=p.file, line=node.line,
                      value=_param_literal(node, p), type=ptype[0] if ptype else None)


def _param_literal(node: _Y, p: _Sub) -> Any:
    if node.kind == "scalar":
        v = node.value
        if isinstance(v, str):
            return parse_template(v, p.file, node.line)
        if isinstance(v, (bool, int, float)):
            return v
        raise p.err(f"parameter value must be a string, number, boolean or list, got "
                    f"{_yaml_kind(node)}", node.line)
    if node.kind == "seq":
        if not node.value:
            raise p.err("a list parameter value must not be empty", node.line)
        items = []
        for item in node.value:
            if item.kind != "scalar" or item.value is None or \
                    not isinstance(item.value, (str, bool, int, float)):
                raise p.err("list parameter values may only hold strings, numbers or "
                            f"booleans, got {_yaml_kind(item)}", item.line)
            items.append(parse_template(item.value, p.file, item.line)
                         if isinstance(item.value, str) else item.value)
        return tuple(items)
    raise p.err("a parameter value cannot be a mapping (use nested 'param' items)",
                node.line)


# =============================================================== packages & executables


def _ament_prefixes(environ: Mapping[str, str]) -> list[Path]:
    return [Path(p) for p in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def find_package_share(package: str, environ: Mapping[str, str] | None = None) -> Path:
    """``$(find-pkg-share package)``: :func:`sitebot.paths.share_dir` for ``sitebot``,
    otherwise ``<prefix>/share/<package>`` of the first AMENT_PREFIX_PATH prefix that has
    the package (ament index marker or share directory).

    :raises LookupError: when not found.
    """
    if package == "sitebot":
        return paths.share_dir()
    environ = os.environ if environ is None else environ
    for prefix in _ament_prefixes(environ):
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / package
        share = prefix / "share" / package
        if marker.is_file() or share.is_dir():
            return share
    raise LookupError(f"package '{package}' not found (searched AMENT_PREFIX_PATH="
                      f"{environ.get('AMENT_PREFIX_PATH', '')!r}; 'sitebot' is built in)")


def _find_package_prefix(package: str, environ: Mapping[str, str]) -> Path:
    if package == "sitebot":
        share = paths.share_dir()
        if share.name == "sitebot" and share.parent.name == "share":
            return share.parent.parent
        raise LookupError("package 'sitebot' runs from a source checkout and has no "
                          f"install prefix (its data is in {share})")
    return find_package_share(package, environ).parent.parent


def _entry_point(package: str, executable: str) -> tuple[list[str] | None, list[str] | None]:
    """(command, None) if found; (None, [console script names]) if the distribution exists
    without it; (None, None) if there is no such distribution."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None, None
    scripts = [ep for ep in dist.entry_points if ep.group == "console_scripts"]
    for ep in scripts:
        if ep.name == executable:
            module, attr = ep.module, ep.attr
            if not _IDENT_PATH_RE.match(module) or not _IDENT_PATH_RE.match(attr or ""):
                return None, [s.name for s in scripts]
            head, _, rest = attr.partition(".")
            call = f"_entry.{rest}" if rest else "_entry"
            code = (f"import sys; sys.argv[0] = {json.dumps(executable)}; "
                    f"from {module} import {head} as _entry; sys.exit({call}())")
            return [sys.executable, "-c", code], None
    return None, sorted(s.name for s in scripts)


def resolve_executable(package: str, executable: str,
                       environ: Mapping[str, str] | None = None,
                       resolver: ExecutableResolver | None = None) -> list[str]:
    """The command prefix that runs ``executable`` of ``package``.

    Order: ``resolver`` (if given and it returns a command); the ``console_scripts`` entry
    point named ``executable`` of the installed Python distribution named ``package`` (run
    with this interpreter); ``<prefix>/lib/<package>/<executable>`` in AMENT_PREFIX_PATH.

    :raises LookupError: naming the package and executable, and what was searched.
    """
    environ = os.environ if environ is None else environ
    if resolver is not None:
        got = resolver(package, executable)
        if got is not None:
            return list(got)
    cmd, scripts = _entry_point(package, executable)
    if cmd is not None:
        return cmd
    prefixes = _ament_prefixes(environ)
    in_ament = False
    for prefix in prefixes:
        candidate = prefix / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
        if (prefix / "lib" / package).is_dir() or (prefix / "share" / package).is_dir():
            in_ament = True
    if scripts is None and not in_ament:
        raise LookupError(
            f"package '{package}' not found: no installed Python distribution named "
            f"'{package}' and no '{package}' in AMENT_PREFIX_PATH="
            f"{environ.get('AMENT_PREFIX_PATH', '')!r} (executable '{executable}')"
            + ("; install it with 'pip install -e .'" if package == "sitebot" else ""))
    detail = []
    if scripts is not None:
        detail.append(f"console_scripts of '{package}': "
                      + (", ".join(scripts) if scripts else "none"))
    if in_ament:
        detail.append(f"no executable lib/{package}/{executable} in AMENT_PREFIX_PATH")
    raise LookupError(f"executable '{executable}' not found in package '{package}' ("
                      + "; ".join(detail) + ")")


# ========================================================================= resolution


def format_param_value(value: object) -> str:
    """A parameter value as the YAML text of a ``-p name:=value`` rule."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value and "\n" not in value
        except yaml.YAMLError:
            plain = False
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) if isinstance(v, str)
                               else format_param_value(v) for v in value) + "]"
    raise TypeError(f"unsupported parameter value {value!r}")  # pragma: no cover


def _prefix_namespace(base: str | None, ns: str | None) -> str | None:
    if base is None and ns is None:
        return None
    if ns is None:
        combined = base
    elif not base or ns.startswith("/"):
        combined = ns
    else:
        combined = ("" if base == "/" else base) + "/" + ns
    assert combined is not None
    if combined != "/":
        combined = combined.rstrip("/")
    return combined


def _absolute_namespace(ns: str | None) -> str | None:
    if ns is None:
        return None
    return ns if ns.startswith("/") else "/" + ns


def _namespace_problem(ns: str) -> str | None:
    if ns == "/":
        return None
    if not ns.startswith("/"):
        return "must be absolute"
    if ns.endswith("/"):
        return "must not end with '/'"
    for token in ns[1:].split("/"):
        if not token:
            return "must not contain '//'"
        if not _NAME_RE.match(token):
            return (f"token '{token}' must start with a letter or '_' and hold only "
                    "letters, digits and '_'")
    return None


@dataclass
class _Scope:
    configs: dict[str, str]
    environ: dict[str, str]
    ros_namespace: str | None = None
    global_params: list[tuple[str, object]] = dataclasses.field(default_factory=list)
    global_remaps: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def copy(self) -> "_Scope":
        return _Scope(dict(self.configs), dict(self.environ), self.ros_namespace,
                      list(self.global_params), list(self.global_remaps))


class _Resolver:
    """Walks the actions like ``ros2 launch`` visits them; implements SubstitutionContext."""

    def __init__(self, environ: Mapping[str, str], resolver: ExecutableResolver | None,
                 cli_args: Mapping[str, str]) -> None:
        self.base_environ = dict(environ)
        self.scope = _Scope(dict(cli_args), dict(environ))
        self.exec_resolver = resolver
        self.files: dict[Path, LaunchFile] = {}
        self.current: Path = Path()
        self.processes: list[NodeProcess] = []
        self.arguments: dict[str, str] = {}
        self.depth = 0

    # -- SubstitutionContext
    def launch_configuration(self, name: str) -> str | None:
        return self.scope.configs.get(name)

    @property
    def environ(self) -> Mapping[str, str]:
        return self.scope.environ

    @property
    def current_file(self) -> Path:
        return self.current

    def find_package_share(self, package: str) -> Path:
        return find_package_share(package, self.scope.environ)

    def find_package_prefix(self, package: str) -> Path:
        return _find_package_prefix(package, self.scope.environ)

    # -- helpers
    def ev(self, t: Template) -> str:
        return evaluate(t, self)

    def load(self, path: Path) -> LaunchFile:
        path = path.absolute()
        if path not in self.files:
            self.files[path] = parse_launch_file(path)
        return self.files[path]

    def run_file(self, lf: LaunchFile) -> None:
        saved = self.current
        self.current = lf.path
        try:
            for action in lf.actions:
                self.run(action)
        finally:
            self.current = saved

    def run(self, a: Action) -> None:
        if a.condition is not None:
            value = evaluate_condition(a.condition.expr, self,
                                       "unless" if a.condition.unless else "if")
            if value == a.condition.unless:
                return
        handler = getattr(self, "do_" + type(a).__name__)
        handler(a)

    # -- actions
    def do_ArgAction(self, a: ArgAction) -> None:
        configs = self.scope.configs
        if a.name not in configs:
            if a.default is None:
                desc = f" ({a.description})" if a.description else ""
                raise LaunchError(f"required launch argument '{a.name}'{desc} was not given "
                                  f"and has no default (pass {a.name}:=<value>)",
                                  a.file, a.line)
            configs[a.name] = self.ev(a.default)
        value = configs[a.name]
        if a.choices is not None and value not in a.choices:
            raise LaunchError(f"argument '{a.name}' is {value!r}, which is not one of its "
                              f"choices {list(a.choices)}", a.file, a.line)
        self.arguments[a.name] = value

    def do_LetAction(self, a: LetAction) -> None:
        name = self.ev(a.name)
        self.scope.configs[name] = self.ev(a.value)

    def do_GroupAction(self, a: GroupAction) -> None:
        keep = [(self.ev(k), self.ev(v)) for k, v in a.keep]
        if not a.scoped:
            self.scope.configs.update(keep)
            for child in a.children:
                self.run(child)
            return
        saved = self.scope
        if a.forwarding:
            self.scope = saved.copy()
            self.scope.configs.update(keep)
        else:
            self.scope = _Scope(dict(keep), dict(self.base_environ))
        try:
            for child in a.children:
                self.run(child)
        finally:
            self.scope = saved

    def do_IncludeAction(self, a: IncludeAction) -> None:
        raw = self.ev(a.path)
        path = Path(raw)
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise LaunchError(f"included launch file not found: {path}", a.file, a.line)
        if path.suffix not in (".yaml", ".yml"):
            raise LaunchError(f"only YAML launch files can be included, not '{path.name}'",
                              a.file, a.line)
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise LaunchError(f"includes nested deeper than {_MAX_INCLUDE_DEPTH} (an include "
                              "cycle?)", a.file, a.line)
        lf = self.load(path)
        names = [self.ev(n) for n, _ in a.args]
        for required in lf.required_args():
            if required.name not in names:
                raise LaunchError(
                    f"included file {path.name} requires argument '{required.name}' (no "
                    f"default, declared on line {required.line}); pass it in the include's "
                    "'arg' list (given: " + (", ".join(names) or "none") + ")",
                    a.file, a.line)
        for (_, value), name in zip(a.args, names):
            self.scope.configs[name] = self.ev(value)
        self.depth += 1
        try:
            self.run_file(lf)
        except LaunchError as e:
            raise LaunchError(f"{e.message} (included from {Path(a.file).name}:{a.line})",
                              e.file, e.where) from None
        finally:
            self.depth -= 1

    def do_PushRosNamespaceAction(self, a: PushRosNamespaceAction) -> None:
        pushed = self.ev(a.namespace)
        ns = _absolute_namespace(_prefix_namespace(self.scope.ros_namespace, pushed))
        assert ns is not None
        problem = _namespace_problem(ns)
        if problem:
            raise LaunchError(f"namespace '{ns}' {problem}", a.file, a.line)
        self.scope.ros_namespace = ns

    def do_SetEnvAction(self, a: SetEnvAction) -> None:
        self.scope.environ[self.ev(a.name)] = self.ev(a.value)

    def do_UnsetEnvAction(self, a: UnsetEnvAction) -> None:
        self.scope.environ.pop(self.ev(a.name), None)

    def do_SetParameterAction(self, a: SetParameterAction) -> None:
        name = self.ev(a.name)
        value = self.yaml_value(self.ev(a.value), name, a.value)
        self.scope.global_params.append((name, value))

    def do_SetRemapAction(self, a: SetRemapAction) -> None:
        self.scope.global_remaps.append((self.ev(a.src), self.ev(a.dst)))

    def do_NodeAction(self, a: NodeAction) -> None:
        exe = self.ev(a.executable)
        pkg = self.ev(a.package) if a.package is not None else None
        if pkg is not None:
            try:
                prefix = resolve_executable(pkg, exe, self.scope.environ, self.exec_resolver)
            except LookupError as e:
                raise LaunchError(str(e.args[0]), a.file, a.line) from None
        else:
            prefix = [exe]
        cmd = list(prefix)
        if a.args is not None:
            cmd += self.split_cmdline(a.args)
        if a.ros_args is not None:
            cmd += ["--ros-args"] + self.split_cmdline(a.ros_args)
        cmd.append("--ros-args")
        node_name = None
        if a.name is not None:
            node_name = self.ev(a.name)
            if not _NAME_RE.match(node_name):
                raise LaunchError(f"invalid node name {node_name!r}: it must start with a "
                                  "letter or '_' and hold only letters, digits and '_'",
                                  a.name.file, a.name.line)
            cmd += ["-r", f"__node:={node_name}"]
        ns_attr = self.ev(a.namespace) if a.namespace is not None else None
        ns = _absolute_namespace(_prefix_namespace(self.scope.ros_namespace, ns_attr))
        if ns is not None:
            problem = _namespace_problem(ns)
            if problem:
                line = a.namespace.line if a.namespace is not None else a.line
                raise LaunchError(f"namespace '{ns}' {problem}", a.file, line)
            cmd += ["-r", f"__ns:={ns}"]
        for name, value in self.scope.global_params:
            cmd += ["-p", f"{name}:={format_param_value(value)}"]
        for item in a.params:
            if isinstance(item, ParamFile):
                raw = self.ev(item.path)
                path = Path(raw)
                if not path.is_absolute():
                    path = Path.cwd() / path
                if not path.is_file():
                    raise LaunchError(f"parameters file not found: {path}",
                                      item.file, item.line)
                cmd += ["--params-file", str(path)]
            else:
                for name, value in self.param_values(item, ""):
                    cmd += ["-p", f"{name}:={format_param_value(value)}"]
        remaps = list(self.scope.global_remaps)
        remaps += [(self.ev(s), self.ev(d)) for s, d in a.remaps]
        for src, dst in remaps:
            cmd += ["-r", f"{src}:={dst}"]
        label = self.ev(a.exec_name) if a.exec_name is not None else (
            node_name or os.path.basename(exe))
        self.add_process(a, label, cmd, exe, pkg, node_name, ns or "/")

    def do_ExecutableAction(self, a: ExecutableAction) -> None:
        cmd = self.split_cmdline(a.cmd)
        if not cmd:
            raise LaunchError("'cmd' of 'executable' is empty", a.file, a.line)
        label = self.ev(a.name) if a.name is not None else os.path.basename(cmd[0])
        self.add_process(a, label, cmd, cmd[0], None, None, "")

    def add_process(self, a: NodeAction | ExecutableAction, label: str, cmd: list[str],
                    exe: str, pkg: str | None, node_name: str | None, ns: str) -> None:
        output = self.ev(a.output) if a.output is not None else "log"
        if output not in OUTPUT_MODES:
            raise LaunchError(f"output must be one of {', '.join(OUTPUT_MODES)}, got "
                              f"{output!r}", a.file, a.output.line if a.output else a.line)
        respawn = False
        if isinstance(a.respawn, bool):
            respawn = a.respawn
        elif a.respawn is not None:
            respawn = evaluate_condition(a.respawn, self, "respawn")
        if a.launch_prefix is not None:
            cmd = shlex.split(self.ev(a.launch_prefix)) + cmd
        env = {k: v for k, v in self.scope.environ.items() if self.base_environ.get(k) != v}
        unset = tuple(k for k in self.base_environ if k not in self.scope.environ)
        for k, v in a.env:
            env[self.ev(k)] = self.ev(v)
        cwd = self.ev(a.cwd) if a.cwd is not None else None
        self.processes.append(NodeProcess(
            name=label, namespace=ns, cmd=cmd, env=env, node_name=node_name, package=pkg,
            executable=exe, output=output, respawn=respawn,
            respawn_delay=a.respawn_delay or 0.0, cwd=cwd,
            unset_env=tuple(k for k in unset if k not in env),
            source=f"{a.file}:{a.line}"))

    # -- values
    def split_cmdline(self, t: Template) -> list[str]:
        """Split like launch's frontend: literal text is split with shlex, while a
        substitution's result stays inside the argument it appears in."""
        result: list[str] = []
        cur: list[str] | None = None
        for part in t.parts:
            if isinstance(part, Subst):
                cur = (cur or []) + [self.ev(Template((part,), t.file, t.line))]
                continue
            try:
                tokens = shlex.split(part)
            except ValueError as e:
                raise LaunchError(f"cannot split command line {part!r}: {e}",
                                  t.file, t.line) from None
            if not tokens:
                if cur is not None:
                    result.append("".join(cur))
                    cur = None
                continue
            if part[0].isspace() and cur is not None:
                result.append("".join(cur))
                cur = None
            cur = (cur or []) + [tokens[0]]
            if len(tokens) > 1:
                result.append("".join(cur))
                result.extend(tokens[1:-1])
                cur = [tokens[-1]]
            if part[-1].isspace():
                result.append("".join(cur))
                cur = None
        if cur is not None:
            result.append("".join(cur))
        return result

    def param_values(self, p: ParamValue, prefix: str) -> list[tuple[str, object]]:
        name = self.ev(p.name)
        full = f"{prefix}.{name}" if prefix else name
        if p.children:
            out: list[tuple[str, object]] = []
            for c in p.children:
                out += self.param_values(c, full)
            return out
        return [(full, self.param_value(p, full))]

    def param_value(self, p: ParamValue, name: str) -> object:
        v, ptype = p.value, p.type
        where = Template((), p.file, p.line)

        def fail(msg: str) -> LaunchError:
            return LaunchError(f"parameter '{name}': {msg}", p.file, p.line)

        if isinstance(v, tuple):
            items = []
            for item in v:
                if isinstance(item, Template):
                    text = self.ev(item)
                    item = text if ptype == "list_of_str" else self.yaml_value(text, name, item)
                items.append(item)
            return self.check_list(items, ptype, fail)
        if isinstance(v, Template):
            text = self.ev(v)
            if ptype == "str":
                return text
            value = self.yaml_value(text, name, where)
        else:
            value = v
        if ptype in (None, "yaml"):
            return value
        if ptype.startswith("list_of_"):
            if not isinstance(value, list):
                raise fail(f"expected a list for type {ptype}, got {value!r}")
            return self.check_list(value, ptype, fail)
        return self.check_scalar(value, ptype, fail)

    @staticmethod
    def check_scalar(value: object, ptype: str, fail: Callable[[str], LaunchError]) -> object:
        if ptype == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        want = {"str": str, "int": int, "float": float, "bool": bool}[ptype]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise fail(f"expected {ptype}, got {value!r}")
        return value

    def check_list(self, items: list, ptype: str | None,
                   fail: Callable[[str], LaunchError]) -> list:
        if not items:
            raise fail("a list value must not be empty")
        if ptype is not None and ptype.startswith("list_of_"):
            return [self.check_scalar(i, ptype[len("list_of_"):], fail) for i in items]
        if ptype not in (None, "yaml"):
            raise fail(f"expected {ptype}, got a list")
        kinds = {type(i) for i in items}
        if len(kinds) != 1 or not kinds <= {bool, int, float, str}:
            raise fail("list items must all have the same type (bool, int, float or str), "
                       f"got {items!r}")
        return items

    @staticmethod
    def yaml_value(text: str, name: str, where: Template) -> object:
        """A substituted string read with YAML rules, as launch_ros does."""
        if text == "":
            return ""
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise LaunchError(f"parameter '{name}': value {text!r} is not valid YAML (quote "
                              "it inside the string, or give type: str)",
                              where.file, where.line) from None
        if isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list) and value and len({type(i) for i in value}) == 1 \
                and type(value[0]) in (bool, int, float, str):
            return value
        raise LaunchError(f"parameter '{name}': value {text!r} reads as {value!r}; allowed "
                          "are a bool, int, float, string or a non-empty list of one of "
                          "those (give type: str to keep it a string)",
                          where.file, where.line)


def _unique_labels(procs: list[NodeProcess]) -> list[NodeProcess]:
    def dups(items: Iterable[str]) -> set[str]:
        seen, out = set(), set()
        for i in items:
            (out if i in seen else seen).add(i)
        return out

    clash = dups(p.name for p in procs)
    procs = [dataclasses.replace(p, name=f"{p.namespace.strip('/')}/{p.name}")
             if p.name in clash and p.namespace.strip("/") else p for p in procs]
    clash = dups(p.name for p in procs)
    counters: dict[str, int] = {}
    out = []
    for p in procs:
        if p.name in clash:
            counters[p.name] = counters.get(p.name, 0) + 1
            p = dataclasses.replace(p, name=f"{p.name}-{counters[p.name]}")
        out.append(p)
    return out


def _cli_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def load_launch(path: str | Path, args: Mapping[str, object] | None = None, *,
                environ: Mapping[str, str] | None = None,
                resolver: ExecutableResolver | None = None) -> LaunchDescription:
    """Resolve a YAML launch file into the processes ``ros2 launch`` would start.

    Pure apart from reading files: nothing is started or written.

    :param path: the launch file.
    :param args: launch arguments, as given on the command line (``name:=value``);
        values are turned into strings (booleans as ``true``/``false``).
    :param environ: the environment seen by ``$(env)``/``set_env`` and used for
        AMENT_PREFIX_PATH; ``os.environ`` by default.  Processes record only the changes
        made by the launch file (``NodeProcess.env``/``unset_env``).
    :param resolver: consulted first to turn ``pkg``/``exec`` into a command.
    :raises LaunchError: with file and line for every problem; unknown command-line
        arguments are reported with the list of declared arguments.
    """
    path = Path(path)
    cli = {str(k): _cli_value(v) for k, v in (args or {}).items()}
    r = _Resolver(os.environ if environ is None else environ, resolver, cli)
    top = r.load(path)
    r.run_file(top)
    declared: list[ArgInfo] = []
    seen: set[str] = set()
    for lf in r.files.values():
        for a in lf.iter_args():
            if a.name not in seen:
                seen.add(a.name)
                declared.append(ArgInfo(a.name, str(a.default) if a.default else None,
                                        a.description, a.choices, a.file, a.line))
    unknown = [k for k in cli if k not in seen]
    if unknown:
        names = ", ".join(a.name for a in declared) or "none"
        raise LaunchError("unknown launch argument" + ("s " if len(unknown) > 1 else " ")
                          + ", ".join(repr(u) for u in unknown)
                          + f" (declared arguments: {names})", top.path)
    return LaunchDescription(file=top.path, processes=_unique_labels(r.processes),
                             arguments=dict(r.arguments), declared=declared)
