"""Start the processes of a resolved launch description and supervise them.

Behaviour follows ``ros2 launch``:

* every process runs in its own session (hence its own process group) with the
  inherited environment plus the launch file's changes; ``PYTHONUNBUFFERED=1`` is added
  when unset so Python nodes' output is not held back by pipe buffering;
* each output line is prefixed with ``[name]``; on the console, ``output: screen``,
  ``both`` and ``full`` show stdout and stderr, ``log`` (the default) shows only stderr,
  ``own_log`` shows nothing (sitebot writes no log files);
* a process that exits non-zero is reported as
  ``[ERROR] [name]: process has died [pid N, exit code C, cmd '...']`` and the others
  keep running; ``respawn: true`` restarts it after ``respawn_delay``;
* on stop (Ctrl-C, SIGTERM, ``stop_event``) each process group gets SIGINT, then SIGTERM
  after ``sigterm_timeout`` seconds, then SIGKILL after ``sigkill_timeout`` more; a second
  Ctrl-C kills at once;
* the launch ends when no process is left; the exit status is 1 when any process failed
  (a non-zero exit that is not the answer to the launcher's own stop signals), else 0.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Callable, Iterator, Mapping, Sequence

from sitebot import paths
from sitebot.errors import LaunchError, SitebotError
from sitebot.launcher.model import LaunchDescription, NodeProcess
from sitebot.launcher.packages import ExecutableResolver, find_package_share
from sitebot.launcher.parser import load_launch, parse_launch_file

__all__ = ["LaunchHandle", "run", "launched", "main", "find_launch_file"]

_SHOWN: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "screen": ("stdout", "stderr"), "both": ("stdout", "stderr"),
    "full": ("stdout", "stderr"), "log": ("stderr",), "own_log": (),
})
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
_STOP_CODES = frozenset({-s for s in _STOP_SIGNALS} | {128 + s for s in _STOP_SIGNALS})
_HISTORY = 20000


@dataclass
class _Proc:
    spec: NodeProcess
    popen: subprocess.Popen | None = None
    running: bool = False
    respawn_pending: bool = False
    returncode: int | None = None
    readers: list[threading.Thread] = field(default_factory=list)
    waiter: threading.Thread | None = None
    pgids: list[int] = field(default_factory=list)


class LaunchHandle:
    """A running launch: start it, watch its output, stop it.

    ``on_line(line)`` is called, from background threads but never concurrently, with every
    line: process output as ``[name] text`` and the launcher's own messages
    (``[INFO] [name]: ...``, ``[ERROR] [name]: ...``), whatever the ``output`` setting.
    With ``echo`` the lines are also written to ``stream`` (default ``sys.stdout``) as
    ``ros2 launch`` shows them (``output`` honoured).

    :param env: variables set for every process on top of the inherited environment
        (e.g. ``{'ROS_DOMAIN_ID': '42'}``); the launch file's own changes apply after it.
    """

    def __init__(self, description: LaunchDescription, *,
                 env: Mapping[str, str] | None = None,
                 on_line: Callable[[str], None] | None = None, echo: bool = False,
                 stream: IO[str] | None = None, sigterm_timeout: float = 5.0,
                 sigkill_timeout: float = 5.0) -> None:
        self.description = description
        self._env = dict(env or {})
        self._on_line = on_line
        self._echo = echo
        self._stream = stream
        self.sigterm_timeout = sigterm_timeout
        self.sigkill_timeout = sigkill_timeout
        self._procs = [_Proc(spec) for spec in description.processes]
        self._cond = threading.Condition()
        self._out_lock = threading.Lock()
        self._history: collections.deque[str] = collections.deque(maxlen=_HISTORY)
        self._seen = 0
        self._started = False
        self._stopping = False
        self._stopped = False
        self._failed: list[str] = []
        self._all_pids: list[int] = []

    # ------------------------------------------------------------------ public state
    @property
    def pids(self) -> dict[str, int]:
        """Live processes: name -> pid."""
        with self._cond:
            return {p.spec.name: p.popen.pid for p in self._procs
                    if p.running and p.popen is not None}

    @property
    def all_pids(self) -> list[int]:
        """Every pid started so far (respawns included)."""
        with self._cond:
            return list(self._all_pids)

    @property
    def exit_codes(self) -> dict[str, int]:
        """name -> exit code of its last run, for processes that have ended."""
        with self._cond:
            return {p.spec.name: p.returncode for p in self._procs
                    if not p.running and p.returncode is not None}

    @property
    def failed(self) -> list[str]:
        """Names of the processes that failed (once per failure)."""
        with self._cond:
            return list(self._failed)

    @property
    def lines(self) -> list[str]:
        """Every line so far (the last 20000)."""
        with self._cond:
            return list(self._history)

    @property
    def returncode(self) -> int | None:
        """None while anything runs; then 1 if a process failed, else 0."""
        with self._cond:
            if not (self._stopped or (self._started and self._all_done())):
                return None
            return 1 if self._failed else 0

    # ------------------------------------------------------------------ output
    def _emit(self, line: str, show: bool = True) -> None:
        with self._out_lock:
            with self._cond:
                self._history.append(line)
                self._seen += 1
                self._cond.notify_all()
            if self._on_line is not None:
                try:
                    self._on_line(line)
                except Exception as e:  # a broken callback must not kill the reader
                    print(f"[launch] on_line callback failed: {e!r}", file=sys.stderr)
            if self._echo and show:
                stream = self._stream or sys.stdout
                try:
                    stream.write(line + "\n")
                    stream.flush()
                except (OSError, ValueError):
                    pass

    @property
    def line_count(self) -> int:
        """How many lines were emitted so far (a mark for :meth:`wait_for_line`)."""
        with self._cond:
            return self._seen

    def wait_for_line(self, pattern: str | re.Pattern[str], timeout: float, *,
                      after: int = 0) -> str:
        """Wait until a line matches ``pattern`` (regex search) and return it.

        :param after: only consider lines emitted after this :attr:`line_count` mark.
        :raises TimeoutError: listing the last lines.
        """
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        checked = after
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._seen > checked:
                    new = list(self._history)[-min(self._seen - checked, len(self._history)):]
                    checked = self._seen
                    for line in new:
                        if rx.search(line):
                            return line
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n  ".join(list(self._history)[-15:])
                    raise TimeoutError(f"no line matching {rx.pattern!r} within {timeout} s; "
                                       f"last lines:\n  {tail}")
                self._cond.wait(left)

    # ------------------------------------------------------------------ processes
    def _environment(self, spec: NodeProcess) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self._env)
        env.update(spec.env)
        for name in spec.unset_env:
            env.pop(name, None)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _spawn(self, proc: _Proc) -> None:
        spec = proc.spec
        try:
            popen = subprocess.Popen(
                spec.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self._environment(spec), cwd=spec.cwd,
                start_new_session=True)
        except OSError as e:
            self._emit(f"[ERROR] [{spec.name}]: failed to start {spec.cmd[0]!r}: "
                       f"{e.strerror or e}")
            with self._cond:
                proc.running = False
                proc.respawn_pending = False
                proc.returncode = None
                self._failed.append(spec.name)
                self._cond.notify_all()
            return
        with self._cond:
            proc.popen = popen
            proc.running = True
            proc.respawn_pending = False
            proc.returncode = None
            proc.pgids.append(popen.pid)
            self._all_pids.append(popen.pid)
            stopping = self._stopping
        self._emit(f"[INFO] [{spec.name}]: process started with pid [{popen.pid}]")
        shown = _SHOWN.get(spec.output, ("stdout", "stderr"))
        proc.readers = [
            threading.Thread(target=self._read, args=(spec.name, popen.stdout, "stdout" in shown),
                             name=f"launch-out-{spec.name}", daemon=True),
            threading.Thread(target=self._read, args=(spec.name, popen.stderr, "stderr" in shown),
                             name=f"launch-err-{spec.name}", daemon=True),
        ]
        for t in proc.readers:
            t.start()
        proc.waiter = threading.Thread(target=self._wait_proc, args=(proc, popen),
                                       name=f"launch-wait-{spec.name}", daemon=True)
        proc.waiter.start()
        if stopping:  # a stop raced with this (re)spawn
            self._signal(proc, signal.SIGINT)

    def _read(self, name: str, pipe: IO[bytes], show: bool) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._emit(f"[{name}] {text}", show)

    def _wait_proc(self, proc: _Proc, popen: subprocess.Popen) -> None:
        rc = popen.wait()
        # Let the readers drain what the process wrote before it ended; do not wait long,
        # a child it left behind may still hold the pipes open.
        deadline = time.monotonic() + 0.5
        for t in proc.readers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        spec = proc.spec
        with self._cond:
            stopping = self._stopping
        if rc == 0:
            self._emit(f"[INFO] [{spec.name}]: process has finished cleanly [pid {popen.pid}]")
            failed = False
        elif stopping and rc in _STOP_CODES:
            self._emit(f"[INFO] [{spec.name}]: process stopped [pid {popen.pid}, exit code {rc}]")
            failed = False
        else:
            self._emit(f"[ERROR] [{spec.name}]: process has died [pid {popen.pid}, exit code "
                       f"{rc}, cmd '{' '.join(spec.cmd)}']")
            failed = True
        with self._cond:
            proc.returncode = rc
            proc.running = False
            if failed:
                self._failed.append(spec.name)
            respawn = spec.respawn and not self._stopping
            proc.respawn_pending = respawn
            self._cond.notify_all()
            if respawn:
                self._cond.wait_for(lambda: self._stopping, timeout=spec.respawn_delay)
                if self._stopping:
                    proc.respawn_pending = False
                    self._cond.notify_all()
                    return
        if respawn:
            self._emit(f"[INFO] [{spec.name}]: respawning")
            self._spawn(proc)

    def _all_done(self) -> bool:
        return all(not p.running and not p.respawn_pending for p in self._procs)

    def _signal(self, proc: _Proc, sig: int) -> None:
        popen = proc.popen
        if popen is None or popen.returncode is not None:
            return
        try:
            os.killpg(popen.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                popen.send_signal(sig)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------------ control
    def start(self) -> "LaunchHandle":
        """Start every process, in order.  Returns self."""
        with self._cond:
            if self._started:
                raise RuntimeError("this launch was already started")
            self._started = True
        for proc in self._procs:
            with self._cond:
                if self._stopping:
                    break
            self._spawn(proc)
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no process is left (respawns included); True if so."""
        with self._cond:
            return self._cond.wait_for(self._all_done, timeout)

    def kill(self) -> None:
        """SIGKILL every process group at once (no lock taken: usable from a signal
        handler)."""
        for proc in list(self._procs):
            popen = proc.popen
            if popen is not None and popen.returncode is None:
                try:
                    os.killpg(popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def stop(self) -> int:
        """Stop everything (SIGINT, then SIGTERM, then SIGKILL) and reap it all.

        Idempotent; returns :attr:`returncode`."""
        with self._cond:
            already = self._stopping
            self._stopping = True
            self._cond.notify_all()
        if already:
            self.wait(self.sigterm_timeout + self.sigkill_timeout + 5.0)
            return self.returncode if self.returncode is not None else 1
        for sig, timeout, name in ((signal.SIGINT, self.sigterm_timeout, "SIGINT"),
                                   (signal.SIGTERM, self.sigkill_timeout, "SIGTERM"),
                                   (signal.SIGKILL, 5.0, "SIGKILL")):
            with self._cond:
                live = [p for p in self._procs if p.running]
            if not live:
                break
            if sig != signal.SIGINT:
                previous = "SIGINT" if sig == signal.SIGTERM else "SIGTERM"
                waited = self.sigterm_timeout if sig == signal.SIGTERM else self.sigkill_timeout
                for p in live:
                    self._emit(f"[ERROR] [{p.spec.name}]: process[{p.spec.name}] failed to "
                               f"terminate '{waited}' seconds after receiving '{previous}', "
                               f"escalating to '{name}'")
            for p in live:
                self._emit(f"[INFO] [{p.spec.name}]: sending signal '{name}' to "
                           f"process[{p.spec.name}]")
                self._signal(p, sig)
            self.wait(timeout)
        # Leftovers of a process group whose leader is gone (children it spawned): kill
        # them and give them a moment to die.
        swept = []
        for proc in self._procs:
            for pgid in proc.pgids:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                    swept.append(pgid)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 1.0
        while swept and time.monotonic() < deadline:
            swept = [g for g in swept if _group_has_live_members(g)]
            if swept:
                time.sleep(0.01)
        for proc in self._procs:
            if proc.waiter is not None:
                proc.waiter.join(timeout=5.0)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            return 1 if self._failed else 0

    shutdown = stop

    def __enter__(self) -> "LaunchHandle":
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_has_live_members(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def run(description: LaunchDescription, *, stop_event: threading.Event | None = None,
        on_line: Callable[[str], None] | None = None, env: Mapping[str, str] | None = None,
        echo: bool = True, stream: IO[str] | None = None, sigterm_timeout: float = 5.0,
        sigkill_timeout: float = 5.0, handle_signals: bool | None = None) -> int:
    """Run a launch description until every process has ended or a stop is requested.

    :param stop_event: set it (from another thread) to stop the launch.
    :param on_line: called with every line (see :class:`LaunchHandle`).
    :param env: variables for every process on top of the inherited environment.
    :param echo: write lines to ``stream`` (stdout) as ``ros2 launch`` shows them.
    :param handle_signals: catch SIGINT/SIGTERM to stop (a second one kills); default:
        when called from the main thread.
    :returns: 0, or 1 when a process failed.
    """
    handle = LaunchHandle(description, env=env, on_line=on_line, echo=echo, stream=stream,
                          sigterm_timeout=sigterm_timeout, sigkill_timeout=sigkill_timeout)
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    interrupted = threading.Event()
    previous: dict[int, object] = {}

    def on_signal(signum: int, frame: object) -> None:
        if interrupted.is_set():
            handle.kill()
        interrupted.set()

    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        handle.start()
        while not handle.wait(0.1):
            if interrupted.is_set() or (stop_event is not None and stop_event.is_set()):
                break
    except KeyboardInterrupt:
        pass
    finally:
        if interrupted.is_set():
            handle._emit("[WARNING] [launch]: interrupted, stopping all processes")
        try:
            code = handle.stop()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)  # type: ignore[arg-type]
    return code


@contextmanager
def launched(path: str | Path | LaunchDescription,
             args: Mapping[str, object] | None = None, *,
             env: Mapping[str, str] | None = None, resolver: ExecutableResolver | None = None,
             on_line: Callable[[str], None] | None = None, echo: bool = False,
             sigterm_timeout: float = 5.0,
             sigkill_timeout: float = 5.0) -> Iterator[LaunchHandle]:
    """Start a launch file in the background; stop everything on exit.

    ``env`` (e.g. ``{'ROS_DOMAIN_ID': '42'}``) is seen by ``$(env ...)`` and set for every
    process.  Use the handle's :meth:`~LaunchHandle.wait_for_line`, ``pids``, ``lines``.

    .. code-block:: python

        with launched("sim.launch.yaml", {"world": "substation"}) as h:
            h.wait_for_line(r"\\[simulator\\] .*ready", timeout=20)
    """
    if isinstance(path, LaunchDescription):
        description = path
    else:
        environ = dict(os.environ)
        environ.update(env or {})
        description = load_launch(find_launch_file(path), args, environ=environ,
                                  resolver=resolver)
    handle = LaunchHandle(description, env=env, on_line=on_line, echo=echo,
                          sigterm_timeout=sigterm_timeout, sigkill_timeout=sigkill_timeout)
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


# ============================================================================== CLI


def find_launch_file(target: str | Path, package: str | None = None) -> Path:
    """A launch file from a path, a name in sitebot's ``launch/`` directory (``sim``,
    ``sim.launch.yaml``), or a file name searched under a package's share directory.

    :raises LaunchError: when not found, listing what is available.
    """
    if package is not None:
        try:
            share = find_package_share(package)
        except LookupError as e:
            raise LaunchError(str(e.args[0])) from None
        matches = sorted(p for p in share.rglob(str(target)) if p.is_file())
        if not matches:
            raise LaunchError(f"no launch file '{target}' under {share}")
        return matches[0]
    path = Path(target)
    if path.is_file():
        return path
    launch_dir = paths.data_path("launch")
    if not path.is_absolute() and len(path.parts) == 1:
        for name in (str(target), f"{target}.launch.yaml", f"{target}.yaml"):
            candidate = launch_dir / name
            if candidate.is_file():
                return candidate
    available = sorted(p.name for p in launch_dir.glob("*.yaml")) if launch_dir.is_dir() else []
    raise LaunchError(f"launch file '{target}' not found (not a file, and not in {launch_dir}; "
                      "available: " + (", ".join(available) or "none") + ")")


def _format_process(p: NodeProcess) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(p.env.items()))
    unset = " ".join(f"-u {k}" for k in p.unset_env)
    parts = [f"[{p.name}]"]
    if env or unset:
        parts.append(" ".join(x for x in ("env", unset, env) if x))
    if p.cwd:
        parts.append(f"(cwd {p.cwd})")
    parts.append(shlex.join(p.cmd))
    return " ".join(parts)


def main(argv: Sequence[str] | None = None, *,
         validate: Callable[[LaunchDescription], object] | None = None) -> int:
    """``sitebot launch [PACKAGE] FILE [name:=value ...] [--print] [--show-args]``.

    :param validate: called with the resolved description before it is printed or run
        (the ``sitebot`` command passes the parameter checks of ``sitebot check``, which
        this package cannot import); a :class:`SitebotError` it raises is the error.
    """
    ap = argparse.ArgumentParser(
        prog="sitebot launch",
        description="Run a ROS 2 YAML launch file without ROS's launch installed.")
    ap.add_argument("target", nargs="+", metavar="[PACKAGE] FILE [name:=value ...]",
                    help="a launch file path, a name in sitebot's launch directory, or "
                         "PACKAGE FILE; then launch arguments as name:=value")
    ap.add_argument("--print", dest="print_only", action="store_true",
                    help="print the resolved command lines instead of running them")
    ap.add_argument("-s", "--show-args", action="store_true",
                    help="list the launch file's arguments and exit")
    ap.add_argument("--domain-id", type=int, metavar="N",
                    help="set ROS_DOMAIN_ID for the launch file and every process")
    ap.add_argument("--sigterm-timeout", type=float, default=5.0, metavar="S",
                    help="seconds after SIGINT before SIGTERM (and again before SIGKILL)")
    ns = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        files = [t for t in ns.target if ":=" not in t]
        launch_args: dict[str, str] = {}
        for t in ns.target:
            if ":=" in t:
                name, _, value = t.partition(":=")
                if not name:
                    raise LaunchError(f"malformed launch argument {t!r} (expected name:=value)")
                launch_args[name] = value
        if len(files) == 1:
            path = find_launch_file(files[0])
        elif len(files) == 2:
            path = find_launch_file(files[1], package=files[0])
        else:
            raise LaunchError("expected FILE or PACKAGE FILE before the name:=value arguments, "
                              f"got {files}")
        env: dict[str, str] = {}
        if ns.domain_id is not None:
            env["ROS_DOMAIN_ID"] = str(ns.domain_id)
        environ = dict(os.environ)
        environ.update(env)
        if ns.show_args:
            try:
                declared = [(a.name, a.default, a.description) for a in
                            load_launch(path, launch_args, environ=environ).declared]
            except LaunchError:  # e.g. required arguments missing: this file's own
                declared = [(a.name, str(a.default) if a.default else None, a.description)
                            for a in parse_launch_file(path).iter_args()]
            print(f"Arguments (pass arguments as '<name>:=<value>') of {path}:")
            if not declared:
                print("  (none)")
            for name, default, desc in declared:
                print(f"\n    '{name}':\n        {desc or 'no description given'}")
                if default is not None:
                    print(f"        (default: '{default}')")
            return 0
        description = load_launch(path, launch_args, environ=environ)
        if validate is not None:
            validate(description)
        if ns.print_only:
            print(f"# {description.file}")
            if description.arguments:
                print("# arguments: " + " ".join(f"{k}={v}" for k, v in
                                                 description.arguments.items()))
            for p in description.processes:
                print(_format_process(p))
            return 0
        return run(description, env=env, sigterm_timeout=ns.sigterm_timeout,
                   sigkill_timeout=ns.sigterm_timeout)
    except SitebotError as e:
        print(f"sitebot launch: error: {e}", file=sys.stderr)
        return 2
