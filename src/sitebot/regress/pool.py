"""The pool that runs scenario runs in worker processes (``sitebot regress`` and campaigns).

Each run is a worker process (``python -m sitebot.regress.worker``) with a ROS_DOMAIN_ID of
its own (taken from 200..232 under a lock file, so that parallel runs, and parallel suites
of other users on the machine, never share DDS traffic), killed after the scenario's
``wall_limit`` (plus a margin).  A run's folder is ``OUT/runs/<name>[#repeat]/``.

:func:`execute_run` is one run, wherever it runs: this pool's threads call it, and so does
a campaign's Ray task on a cluster node (``sitebot.campaign.ray_backend``).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from sitebot.errors import SitebotError
from sitebot.launcher.domains import REGRESS_DOMAINS, DomainPool, local_dds_env
from sitebot.regress.scenario import Scenario

__all__ = ["RunPool", "run_dir_name", "run_spec", "execute_run", "spawn", "ended_line",
           "WALL_MARGIN_S"]

#: seconds a worker gets beyond its scenario's ``wall_limit`` before it is killed
WALL_MARGIN_S = 60.0


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-=.," else "_" for ch in name)


def run_dir_name(sc: Scenario, rep: int = 0) -> str:
    """The folder name of a run under ``OUT/runs``."""
    return _safe(sc.name) + (f"#{rep}" if rep else "")


def run_spec(sc: Scenario, run_dir: Path, rep: int = 0, lockstep: bool = True,
             file: str | Path | None = None) -> dict:
    """The worker's ``spec.json`` for a run of ``sc`` in ``run_dir`` (``file``: where the
    scenario or template file is on the machine that runs it; default ``sc.file``)."""
    return {"file": str(sc.file if file is None else file), "name": sc.name, "seed": sc.seed,
            "run_dir": str(Path(run_dir).resolve()), "repeat": rep, "lockstep": lockstep}


def _error_result(spec: dict, scenario: str, reason: str) -> dict:
    return {"name": spec["name"], "scenario": scenario, "status": "error",
            "repeat": spec.get("repeat", 0), "reason": reason, "checks": [], "metrics": {},
            "run_dir": spec["run_dir"], "file": spec["file"]}


def execute_run(spec: dict, wall_limit: float, domains: DomainPool, scenario: str = "",
                on_progress: Callable[[dict, float], None] | None = None,
                on_start: Callable[[subprocess.Popen], None] | None = None,
                environ: dict[str, str] | None = None) -> dict:
    """One run: a fresh folder ``spec["run_dir"]`` with ``spec.json``, a worker process on a
    domain id of ``domains``, its output in ``worker.log``; the worker is killed after
    ``wall_limit`` + :data:`WALL_MARGIN_S` wall seconds.  Returns the worker's result, or an
    ``error`` result naming the log when it ended without one (``scenario``: the scenario's
    id for that result).  ``on_progress(progress, wall_s)`` gets the worker's progress
    lines, ``on_start(process)`` the worker once started (to stop it on Ctrl-C).  The
    worker's environment is ``environ`` (default: this process's) with its domain id.  A
    KeyboardInterrupt (Ctrl-C, a cancelled Ray task) stops the worker and propagates."""
    run_dir = Path(spec["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(spec))
    t0 = time.monotonic()
    try:
        dom, lock = domains.acquire()
    except SitebotError as e:
        (run_dir / "worker.log").write_text(f"no worker started: {e}\n")
        return {**_error_result(spec, scenario, f"no worker started: {e}"),
                "worker_wall_s": 0.0}
    result_path = None
    p: subprocess.Popen | None = None
    try:
        env = dict(os.environ if environ is None else environ, ROS_DOMAIN_ID=str(dom),
                   PYTHONUNBUFFERED="1")
        local_dds_env(env)
        p = spawn([sys.executable, "-m", "sitebot.regress.worker", str(run_dir / "spec.json")],
                  env)
        if on_start is not None:
            on_start(p)
        killer = threading.Timer(wall_limit + WALL_MARGIN_S, lambda: _kill(p))
        killer.start()
        try:
            with open(run_dir / "worker.log", "w") as log:
                for line in p.stdout:          # type: ignore[union-attr]
                    log.write(line)
                    if line.startswith("@@progress "):
                        if on_progress is not None:
                            on_progress(json.loads(line[11:]), time.monotonic() - t0)
                    elif line.startswith("@@result "):
                        result_path = json.loads(line[9:])["path"]
            p.wait()
        except KeyboardInterrupt:
            _kill(p)
            raise
        finally:
            killer.cancel()
    finally:
        DomainPool.release(lock)
    wall = time.monotonic() - t0
    if result_path and Path(result_path).is_file():
        res = json.loads(Path(result_path).read_text())
    else:
        res = _error_result(spec, scenario,
                            f"worker ended (exit {p.returncode}) without a result after "
                            f"{wall:.0f} s (wall limit {wall_limit:g} s); see "
                            f"{run_dir / 'worker.log'}")
    res["domain_id"] = dom
    res.setdefault("worker_wall_s", round(wall, 2))
    return res


def spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own, its output (stdout and stderr) on a text pipe,
    with no signal blocked, as from a shell, whatever the calling thread blocks: a Ray
    worker's thread blocks SIGINT, and a child inherits the mask (a run's nodes then ignore
    the SIGINT that stops them, and took two thirds more CPU under Ray)."""
    mask = signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, text=True, errors="replace")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def ended_line(i: int, total: int, label: str, res: dict) -> str:
    """The line that reports a run's end: ``[ i/N] STATUS label (sim, wall, RTF)``."""
    m = res.get("metrics", {})
    fails = "; ".join(f"{c['name']}={c['value']}" for c in res.get("checks", [])
                      if not c["ok"])
    extra = (f"sim {m.get('sim_time_s')} s, wall {m.get('wall_time_s')} s, RTF "
             f"{m.get('real_time_factor')}") if m else res.get("reason", "")
    return (f"[{i + 1:>3}/{total}] {res['status'].upper():<7} {label} ({extra})"
            + (f" -- {fails}" if fails else ""))


class RunPool:
    """Runs ``(scenario, repeat)`` pairs, ``jobs`` at a time; :meth:`run` returns their
    results in order (a run whose worker died is an ``error`` result naming its log)."""

    def __init__(self, runs: list[tuple[Scenario, int]], out: Path, jobs: int,
                 quiet: bool = False, paced: bool = False) -> None:
        self.runs, self.out, self.jobs = runs, out, max(1, jobs)
        self.paced = paced
        self.pool = DomainPool(REGRESS_DOMAINS)
        self.results: list[dict | None] = [None] * len(runs)
        self.print_lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.quiet = quiet
        self.procs: dict[int, subprocess.Popen] = {}
        #: called with each run's result as it ends (from a pool thread)
        self.on_result: Callable[[dict], None] | None = None

    def say(self, text: str) -> None:
        with self.print_lock:
            print(text, flush=True)

    def _run_one(self, i: int) -> dict:
        sc, rep = self.runs[i]
        label = sc.name + (f"#{rep}" if rep else "")
        spec = run_spec(sc, self.out / "runs" / run_dir_name(sc, rep), rep,
                        lockstep=not self.paced)
        last = [0.0]

        def progress(d: dict, wall: float) -> None:
            if wall - last[0] >= 5.0 and not self.quiet:
                last[0] = wall
                self.say(f"  ... {label}: sim {d['sim_t']:.1f} s, wall {wall:.1f} s, "
                         f"level {d['level']}")

        return execute_run(spec, sc.wall_limit, self.pool, sc.id, on_progress=progress,
                           on_start=lambda p: self.procs.__setitem__(i, p))

    def _loop(self) -> None:
        while True:
            with self.print_lock:
                if self.next >= len(self.runs):
                    return
                i = self.next
                self.next += 1
            sc, rep = self.runs[i]
            label = sc.name + (f"#{rep}" if rep else "")
            if not self.quiet:
                self.say(f"[{i + 1:>3}/{len(self.runs)}] start  {label}")
            res = self._run_one(i)
            self.results[i] = res
            if self.on_result is not None:
                self.on_result(res)
            with self.print_lock:
                self.done += 1
            self.say(ended_line(i, len(self.runs), label, res))

    def run(self) -> list[dict]:
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.jobs)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except KeyboardInterrupt:
            killers = [threading.Thread(target=_kill, args=(p,)) for p in self.procs.values()
                       if p.poll() is None]
            for k in killers:
                k.start()
            for k in killers:
                k.join()
            raise
        return [r for r in self.results if r is not None]


def _kill(p: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the worker (it stops its launch: the stack's processes live in sessions of
    their own and would otherwise outlive it), SIGKILL its group after ``grace_s``."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        p.wait(grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
