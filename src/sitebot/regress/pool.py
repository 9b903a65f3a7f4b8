"""The pool that runs scenario runs in worker processes (``sitebot regress`` and campaigns).

Each run is a worker process (``python -m sitebot.regress.worker``) with a ROS_DOMAIN_ID of
its own (taken from 200..232 under a lock file, so that parallel runs, and parallel suites
of other users on the machine, never share DDS traffic), killed after the scenario's
``wall_limit`` (plus a margin).  A run's folder is ``OUT/runs/<name>[#repeat]/``.
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

from sitebot.launcher.domains import REGRESS_DOMAINS, DomainPool
from sitebot.regress.scenario import Scenario

__all__ = ["RunPool", "run_dir_name"]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-=.," else "_" for ch in name)


def run_dir_name(sc: Scenario, rep: int = 0) -> str:
    """The folder name of a run under ``OUT/runs``."""
    return _safe(sc.name) + (f"#{rep}" if rep else "")


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
        run_dir = self.out / "runs" / run_dir_name(sc, rep)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        spec = {"file": str(sc.file), "name": sc.name, "seed": sc.seed,
                "run_dir": str(run_dir.resolve()), "repeat": rep, "lockstep": not self.paced}
        (run_dir / "spec.json").write_text(json.dumps(spec))
        dom, lock = self.pool.acquire()
        t0 = time.monotonic()
        result_path = None
        try:
            env = dict(os.environ, ROS_DOMAIN_ID=str(dom),
                       ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
            p = subprocess.Popen([sys.executable, "-m", "sitebot.regress.worker",
                                  str(run_dir / "spec.json")], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                 text=True, errors="replace")
            self.procs[i] = p
            limit = sc.wall_limit + 60.0
            killer = threading.Timer(limit, lambda: _kill(p))
            killer.start()
            last = 0.0
            with open(run_dir / "worker.log", "w") as log:
                for line in p.stdout:          # type: ignore[union-attr]
                    log.write(line)
                    if line.startswith("@@progress "):
                        d = json.loads(line[11:])
                        now = time.monotonic()
                        if now - last >= 5.0 and not self.quiet:
                            last = now
                            self.say(f"  ... {label}: sim {d['sim_t']:.1f} s, wall "
                                     f"{now - t0:.1f} s, level {d['level']}")
                    elif line.startswith("@@result "):
                        result_path = json.loads(line[9:])["path"]
            p.wait()
            killer.cancel()
        finally:
            DomainPool.release(lock)
        wall = time.monotonic() - t0
        if result_path and Path(result_path).is_file():
            res = json.loads(Path(result_path).read_text())
        else:
            res = {"name": sc.name, "scenario": sc.id, "status": "error", "repeat": rep,
                   "reason": f"worker ended (exit {p.returncode}) without a result after "
                             f"{wall:.0f} s (wall limit {sc.wall_limit:g} s); see "
                             f"{run_dir / 'worker.log'}",
                   "checks": [], "metrics": {}, "run_dir": str(run_dir), "file": str(sc.file)}
        res["domain_id"] = dom
        res.setdefault("worker_wall_s", round(wall, 2))
        return res

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
            m = res.get("metrics", {})
            with self.print_lock:
                self.done += 1
            fails = "; ".join(f"{c['name']}={c['value']}" for c in res.get("checks", [])
                              if not c["ok"])
            extra = (f"sim {m.get('sim_time_s')} s, wall {m.get('wall_time_s')} s, RTF "
                     f"{m.get('real_time_factor')}") if m else res.get("reason", "")
            self.say(f"[{i + 1:>3}/{len(self.runs)}] {res['status'].upper():<7} {label} "
                     f"({extra})" + (f" -- {fails}" if fails else ""))

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
