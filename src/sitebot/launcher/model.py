"""Types of the launcher: the parsed launch file (actions with unresolved substitutions)
and the resolved description (one :class:`NodeProcess` per process to start).

Parsed actions mirror the tags of the ROS 2 YAML launch frontend; every one carries the
file and line it came from and its ``if``/``unless`` condition.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

from sitebot.launcher.substitutions import Template

__all__ = [
    "Condition",
    "ArgAction", "LetAction", "NodeAction", "ExecutableAction", "GroupAction",
    "IncludeAction", "PushRosNamespaceAction", "SetEnvAction", "UnsetEnvAction",
    "SetParameterAction", "SetRemapAction", "Action",
    "ParamFile", "ParamValue", "ParamItem", "LaunchFile",
    "ArgInfo", "NodeProcess", "LaunchDescription",
]


# ------------------------------------------------------------------ parsed (AST) types


@dataclass(frozen=True)
class Condition:
    """``if: <expr>`` (``unless`` False) or ``unless: <expr>`` (``unless`` True)."""

    expr: Template
    unless: bool = False


@dataclass(frozen=True, kw_only=True)
class _Base:
    file: str
    line: int
    condition: Condition | None = None


@dataclass(frozen=True, kw_only=True)
class ArgAction(_Base):
    """``arg``: declares a launch argument (``name``, ``default``, ``description``,
    ``choice: [{value}]``)."""

    name: str
    default: Template | None = None
    description: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class LetAction(_Base):
    """``let``: sets a launch configuration."""

    name: Template
    value: Template


@dataclass(frozen=True, kw_only=True)
class ParamFile:
    """``param: [{from: <file>}]``: a ROS parameters YAML file."""

    path: Template
    file: str
    line: int


# A parameter value as written: a string template (YAML rules apply after substitution),
# a YAML scalar, or a list of those.
ParamLiteral = Union[Template, bool, int, float, tuple]


@dataclass(frozen=True, kw_only=True)
class ParamValue:
    """``param: [{name, value, type?}]`` or nested ``{name, param: [...]}``."""

    name: Template
    file: str
    line: int
    value: ParamLiteral | None = None
    type: str | None = None
    children: tuple["ParamValue", ...] = ()


ParamItem = Union[ParamFile, ParamValue]


@dataclass(frozen=True, kw_only=True)
class NodeAction(_Base):
    """``node``: a ROS node from ``pkg``/``exec``."""

    executable: Template
    package: Template | None = None
    name: Template | None = None
    namespace: Template | None = None
    args: Template | None = None
    ros_args: Template | None = None
    exec_name: Template | None = None
    output: Template | None = None
    respawn: Template | bool | None = None
    respawn_delay: float | None = None
    cwd: Template | None = None
    launch_prefix: Template | None = None
    env: tuple[tuple[Template, Template], ...] = ()
    params: tuple[ParamItem, ...] = ()
    remaps: tuple[tuple[Template, Template], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExecutableAction(_Base):
    """``executable``: any command (``cmd``)."""

    cmd: Template
    name: Template | None = None
    output: Template | None = None
    respawn: Template | bool | None = None
    respawn_delay: float | None = None
    cwd: Template | None = None
    launch_prefix: Template | None = None
    env: tuple[tuple[Template, Template], ...] = ()


@dataclass(frozen=True, kw_only=True)
class GroupAction(_Base):
    """``group``: ``scoped`` (default true), ``forwarding`` (default true), ``keep``,
    ``children``."""

    children: tuple["Action", ...]
    scoped: bool = True
    forwarding: bool = True
    keep: tuple[tuple[Template, Template], ...] = ()


@dataclass(frozen=True, kw_only=True)
class IncludeAction(_Base):
    """``include``: another YAML launch file, with ``arg: [{name, value}]``."""

    path: Template
    args: tuple[tuple[Template, Template], ...] = ()


@dataclass(frozen=True, kw_only=True)
class PushRosNamespaceAction(_Base):
    """``push-ros-namespace`` / ``push_ros_namespace``."""

    namespace: Template


@dataclass(frozen=True, kw_only=True)
class SetEnvAction(_Base):
    """``set_env``."""

    name: Template
    value: Template


@dataclass(frozen=True, kw_only=True)
class UnsetEnvAction(_Base):
    """``unset_env``."""

    name: Template


@dataclass(frozen=True, kw_only=True)
class SetParameterAction(_Base):
    """``set_parameter``: a parameter for every node later in the same scope."""

    name: Template
    value: Template


@dataclass(frozen=True, kw_only=True)
class SetRemapAction(_Base):
    """``set_remap``: a remapping for every node later in the same scope."""

    src: Template
    dst: Template


Action = Union[ArgAction, LetAction, NodeAction, ExecutableAction, GroupAction,
               IncludeAction, PushRosNamespaceAction, SetEnvAction, UnsetEnvAction,
               SetParameterAction, SetRemapAction]


@dataclass(frozen=True)
class LaunchFile:
    """One parsed launch file."""

    path: Path
    actions: tuple[Action, ...]

    def iter_args(self) -> Iterator[ArgAction]:
        """Every ``arg`` in the file, including those in groups and under conditions."""
        stack = list(reversed(self.actions))
        while stack:
            a = stack.pop()
            if isinstance(a, ArgAction):
                yield a
            elif isinstance(a, GroupAction):
                stack.extend(reversed(a.children))

    def required_args(self) -> Iterator[ArgAction]:
        """``arg`` without default reached unconditionally (top level or in groups without
        condition): an ``include`` of this file must pass them, as ``ros2 launch`` checks."""
        stack = [a for a in reversed(self.actions) if a.condition is None]
        while stack:
            a = stack.pop()
            if isinstance(a, ArgAction) and a.default is None:
                yield a
            elif isinstance(a, GroupAction):
                stack.extend(c for c in reversed(a.children) if c.condition is None)


# ----------------------------------------------------------------------- resolved types


@dataclass(frozen=True)
class ArgInfo:
    """A declared launch argument, for ``--show-args`` and error messages."""

    name: str
    default: str | None
    description: str | None
    choices: tuple[str, ...] | None
    file: str
    line: int


@dataclass(frozen=True)
class NodeProcess:
    """One process to start.

    :param name: unique label of the process, used as the ``[name]`` output prefix: the
        ``exec_name`` (or executable's ``name``) attribute, else the node name, else the
        executable; qualified by the namespace and then numbered when not unique.
    :param namespace: the ROS namespace passed as ``__ns`` (``'/'`` when none was given);
        ``''`` for an ``executable`` action.
    :param cmd: the full command line.
    :param env: environment variables to set on top of the inherited environment
        (from ``set_env`` and the ``env`` attribute).
    :param node_name: the node name passed as ``__node``, or None.
    :param unset_env: variables to remove (from ``unset_env``).
    """

    name: str
    namespace: str
    cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)
    node_name: str | None = None
    package: str | None = None
    executable: str = ""
    output: str = "log"
    respawn: bool = False
    respawn_delay: float = 0.0
    cwd: str | None = None
    unset_env: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class LaunchDescription:
    """A resolved launch file: the processes to start, in launch order.

    :param file: the top-level launch file.
    :param processes: one entry per ``node``/``executable`` whose conditions held.
    :param arguments: the value of every declared argument of every loaded file.
    :param declared: the arguments declared by the loaded files, in order of appearance.
    """

    file: Path
    processes: list[NodeProcess]
    arguments: dict[str, str] = field(default_factory=dict)
    declared: list[ArgInfo] = field(default_factory=list)

    def __iter__(self) -> Iterator[NodeProcess]:
        return iter(self.processes)

    def __len__(self) -> int:
        return len(self.processes)

    def process(self, name: str) -> NodeProcess:
        """The process labelled ``name``; KeyError listing the labels otherwise."""
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(f"no process named {name!r} (have: "
                       + ", ".join(p.name for p in self.processes) + ")")
