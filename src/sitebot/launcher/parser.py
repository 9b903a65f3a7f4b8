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

The parts, each module importing only the ones before it: :mod:`.yamlnodes` (YAML with
line numbers) -> :mod:`.entities` (the supported tags, attribute checks) ->
:mod:`.params` (parameters: parsing, typing, formatting) and :mod:`.packages` (packages
and executables) -> :mod:`.actions` (tags to actions: :func:`parse_launch_file`) -> this
module (resolution: :func:`load_launch`).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from sitebot.errors import LaunchError
from sitebot.launcher.actions import parse_launch_file
from sitebot.launcher.model import (Action, ArgAction, ArgInfo, ExecutableAction, GroupAction,
                                    IncludeAction, LaunchDescription, LaunchFile, LetAction,
                                    NodeAction, NodeProcess, ParamFile, PushRosNamespaceAction,
                                    SetEnvAction, SetParameterAction, SetRemapAction,
                                    UnsetEnvAction)
from sitebot.launcher.packages import (ExecutableResolver, find_package_prefix, find_package_share,
                                       resolve_executable)
from sitebot.launcher.params import ParamResolver, inline_params_file, params_file_key
from sitebot.launcher.substitutions import Subst, Template, evaluate, evaluate_condition

__all__ = [
    "parse_launch_file",
    "load_launch",
    "OUTPUT_MODES",
]

OUTPUT_MODES = ("screen", "log", "both", "own_log", "full")
_MAX_INCLUDE_DEPTH = 32
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ========================================================================= resolution


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


class _Resolver(ParamResolver):
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
        return find_package_prefix(package, self.scope.environ)

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
        # inline parameters reach the node as launch_ros hands them: in a parameter file
        # (yaml.dump) that rcl reads, one per run of consecutive inline items, in order
        key = params_file_key(ns if ns_attr is not None or self.scope.ros_namespace else None,
                              node_name)
        inline: dict[str, object] = dict(self.scope.global_params)

        def flush() -> None:
            if inline:
                cmd.extend(["--params-file", str(inline_params_file(key, inline))])
                inline.clear()
        for item in a.params:
            if isinstance(item, ParamFile):
                raw = self.ev(item.path)
                path = Path(raw)
                if not path.is_absolute():
                    path = Path.cwd() / path
                if not path.is_file():
                    raise LaunchError(f"parameters file not found: {path}",
                                      item.file, item.line)
                flush()
                cmd += ["--params-file", str(path)]
            else:
                inline.update(self.param_values(item, ""))
        flush()
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

    Nothing is started; files are read, and each node's inline parameters are written to a
    temporary parameter file, as launch_ros does (:func:`.params.inline_params_file`).

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
