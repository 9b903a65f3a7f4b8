"""Parsing one YAML launch file into :mod:`.model` actions: the file's shape, then one
parser per tag (arg, let, node, executable, group, include, push-ros-namespace, set_env,
unset_env, set_parameter, set_remap), every attribute checked through :mod:`.entities`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sitebot.errors import LaunchError
from sitebot.launcher.entities import SUPPORTED_TAGS, Entity
from sitebot.launcher.model import (Action, ArgAction, ExecutableAction, GroupAction, IncludeAction,
                                    LaunchFile, LetAction, NodeAction, PushRosNamespaceAction,
                                    SetEnvAction, SetParameterAction, SetRemapAction,
                                    UnsetEnvAction)
from sitebot.launcher.params import parse_param
from sitebot.launcher.yamlnodes import YNode, load_yaml

__all__ = ["parse_launch_file"]


def parse_launch_file(path: str | Path) -> LaunchFile:
    """Parse one YAML launch file.

    :raises LaunchError: malformed YAML, a tag or attribute that is not supported, or a
        malformed substitution; the error names the file and line.
    """
    path = Path(path).absolute()
    file = str(path)
    root = load_yaml(path)
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


def _parse_actions(seq: YNode, file: str) -> tuple[Action, ...]:
    out = []
    for item in seq.value:
        if item.kind != "map" or len(item.value) != 1:
            raise LaunchError("each action must be a mapping with exactly one key, the tag "
                              "(e.g. '- node: {...}')", file, item.line)
        (tag, (tline, body)), = item.value.items()
        if tag not in SUPPORTED_TAGS:
            raise LaunchError(f"unsupported tag '{tag}' (supported: "
                              + ", ".join(SUPPORTED_TAGS) + ")", file, tline)
        out.append(_parse_action(Entity(tag, body, file, tline)))
    return tuple(out)


def _parse_action(e: Entity) -> Action:
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
        params = tuple(parse_param(p) for p in e.entities("param"))
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


def _process_attrs(e: Entity) -> dict[str, Any]:
    env = tuple((v.template("name", True), v.template("value", True))
                for v in e.entities("env"))
    return dict(output=e.template("output"), respawn=e.bool_or_template("respawn"),
                respawn_delay=e.non_negative_float("respawn_delay"), cwd=e.template("cwd"),
                launch_prefix=e.template("launch-prefix"), env=env)
