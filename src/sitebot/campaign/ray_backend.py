"""A campaign's runs as Ray tasks: ``sitebot campaign --ray ADDRESS|auto|local``.

Each run is one Ray task that declares the CPUs it needs (``--run-cpus``, default 1), so
Ray's scheduler places the runs on the cluster's nodes.  A node need not share the driver's
filesystem: the task gets the template's text (not its path), writes it into a temporary
folder on the node, runs the same worker as the local pool there
(``sitebot.regress.pool.execute_run``: a ``python -m sitebot.regress.worker`` process on a
ROS domain id of its own, killed after the wall limit) and returns the result with the run
folder packed as tar.gz bytes.  The driver unpacks the folder into ``OUT/runs/<name>/`` and
rewrites the paths of the node's temporary folder in the result and in the folder's JSON
files to the driver's, so a campaign folder looks the same whichever backend ran it.  The
worlds come with the package installed on each node.

:class:`RayPool` has :class:`sitebot.regress.pool.RunPool`'s interface (``runs``, ``jobs``,
``on_result``, :meth:`RayPool.run` returning the results in order; Ctrl-C cancels the
tasks).  A task that died (its node lost, killed for memory) is an ``error`` result, an
infrastructure error that the campaign retries like a worker that died locally.

Ray is imported only when a backend is made (:func:`import_ray`): it is a dependency of
this backend alone.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sitebot.errors import SitebotError
from sitebot.launcher.domains import REGRESS_DOMAINS, DomainPool
from sitebot.regress.pool import ended_line, execute_run, run_dir_name, run_spec
from sitebot.regress.scenario import Scenario

__all__ = ["RayBackend", "RayPool", "import_ray", "remote_run", "pack_dir", "unpack_dir",
           "rewrite_paths", "adopt_run", "died_result", "RAY_REQUIREMENT"]

#: the Ray release this backend is tested with (requirements.txt pins it)
RAY_REQUIREMENT = "ray==2.60.0"
#: seconds a cancelled task gets to stop its worker (SIGTERM, then SIGKILL after 15 s)
#: before it is killed outright
CANCEL_GRACE_S = 20.0


def import_ray() -> Any:
    """The ``ray`` module, or a SitebotError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise SitebotError(
            f"--ray needs the Python package 'ray', which does not import in {sys.executable} "
            f"({e}); install the pinned release: {sys.executable} -m pip install "
            f"{RAY_REQUIREMENT} (requirements.txt)") from None
    return ray


# ------------------------------------------------------------------------------------------
# the run folder on its way back (no Ray)
# ------------------------------------------------------------------------------------------
def pack_dir(folder: Path) -> bytes:
    """``folder``'s files as tar.gz bytes, their names relative to ``folder``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and not p.is_symlink():
                tar.add(p, arcname=p.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


def unpack_dir(data: bytes, dest: Path) -> None:
    """Unpack :func:`pack_dir`'s bytes into ``dest`` (replaced if it exists).  Only plain
    files and folders inside ``dest`` are accepted (the bytes come from another machine):
    a link, a device or a name that leaves ``dest`` is a SitebotError naming it."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar.getmembers():
                if not (m.isfile() or m.isdir()):
                    raise SitebotError(f"packed run folder for {dest}: {m.name!r} is not a "
                                       "plain file")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SitebotError(f"packed run folder for {dest} does not unpack: "
                           f"{type(e).__name__}: {e}") from None


def rewrite_paths(obj: Any, mapping: dict[str, str]) -> Any:
    """``obj`` (JSON data) with every occurrence of each key of ``mapping`` in its strings
    replaced by the value: the node's temporary paths made the driver's (longest first, so
    a folder inside another is rewritten as a whole)."""
    pairs = sorted(((k, v) for k, v in mapping.items() if k), key=lambda kv: -len(kv[0]))

    def fix(x: Any) -> Any:
        if isinstance(x, str):
            for old, new in pairs:
                if old in x:
                    x = x.replace(old, new)
            return x
        if isinstance(x, dict):
            return {fix(k): fix(v) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x
    return fix(obj)


def adopt_run(res: dict, packed: bytes, dest: Path, mapping: dict[str, str],
              note: dict | None = None) -> dict:
    """A run that ran elsewhere made the driver's: its folder unpacked into ``dest``, and
    the paths of ``mapping`` (the node's run folder and template file -> the driver's)
    rewritten in the result and in the folder's JSON files (result, spec, metrics, plot).
    Logs and the run's parameter files keep the node's paths: they record where it ran.
    ``note`` (say, the node's name) is added to the result and to its ``result.json``."""
    unpack_dir(packed, dest)
    for p in sorted(dest.glob("*.json")):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue                     # not JSON after all: left as it came
        data = rewrite_paths(data, mapping)
        if p.name == "result.json" and isinstance(data, dict):
            data.update(note or {})
        p.write_text(json.dumps(data, default=str,
                                indent=2 if p.name in ("result.json", "metrics.json") else None))
    return {**rewrite_paths(res, mapping), **(note or {})}


def died_result(sc: Scenario, rep: int, run_dir: Path, why: str) -> dict:
    """The ``error`` result of a run whose Ray task died (its node lost, killed for memory,
    cancelled) or whose folder did not come back: an infrastructure error.  ``run_dir``
    gets the run's ``spec.json`` and a ``worker.log`` that says what happened."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(json.dumps(run_spec(sc, run_dir, rep)))
    (run_dir / "worker.log").write_text(f"the Ray task of {sc.name} ended without a result: "
                                        f"{why}\n")
    return {"name": sc.name, "scenario": sc.id, "status": "error", "repeat": rep,
            "reason": f"the Ray task ended without a result: {why}", "checks": [],
            "metrics": {}, "run_dir": str(run_dir), "file": str(sc.file)}


# ------------------------------------------------------------------------------------------
# the task (runs on a node; plain Python, wrapped by ray.remote on the driver)
# ------------------------------------------------------------------------------------------
def remote_run(job: dict) -> dict:
    """One run on the node that runs this task.  ``job``: ``template_name``, ``template``
    (the file's bytes), ``name``, ``seed``, ``repeat``, ``lockstep``, ``run_dir_name``,
    ``wall_limit``, ``scenario`` (id), ``quiet`` and ``omp_num_threads`` (the driver's, None
    when unset).  Returns ``result``, ``packed`` (the run folder as tar.gz bytes), the
    node's ``run_dir`` and ``file`` (for the driver's path rewriting) and ``host``; the
    temporary folder is removed."""
    tmp = Path(tempfile.mkdtemp(prefix="sitebot-ray-run-"))
    try:
        tpl = tmp / "template" / job["template_name"]
        tpl.parent.mkdir()
        tpl.write_bytes(job["template"])
        run_dir = tmp / "runs" / job["run_dir_name"]
        spec = {"file": str(tpl), "name": job["name"], "seed": job["seed"],
                "run_dir": str(run_dir), "repeat": job["repeat"], "lockstep": job["lockstep"]}
        label = job["name"] + (f"#{job['repeat']}" if job["repeat"] else "")
        last = [0.0]

        def progress(d: dict, wall: float) -> None:
            if wall - last[0] >= 5.0 and not job["quiet"]:
                last[0] = wall
                print(f"  ... {label}: sim {d['sim_t']:.1f} s, wall {wall:.1f} s, level "
                      f"{d['level']}", flush=True)

        # the run's environment as the driver's pool would give it: Ray sets
        # OMP_NUM_THREADS in its workers (1 thread a CPU), the driver may not
        env = dict(os.environ)
        env.pop("OMP_NUM_THREADS", None)
        if job.get("omp_num_threads") is not None:
            env["OMP_NUM_THREADS"] = job["omp_num_threads"]
        res = execute_run(spec, float(job["wall_limit"]), DomainPool(REGRESS_DOMAINS),
                          job["scenario"], on_progress=progress, environ=env)
        return {"result": res, "packed": pack_dir(run_dir), "run_dir": str(run_dir),
                "file": str(tpl), "host": socket.gethostname()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# the driver's side
# ------------------------------------------------------------------------------------------
class RayBackend:
    """A connection to Ray for a campaign: ``address`` ``auto`` (the cluster this machine
    belongs to), ``local`` (a private instance on this machine with ``jobs * run_cpus``
    CPUs) or a cluster's address (``ray://HEAD:10001``, ``HEAD:6379``).  ``run_cpus``: the
    CPUs each run declares.  :meth:`close` disconnects (and stops a private instance)."""

    def __init__(self, address: str, jobs: int = 1, run_cpus: float = 1.0) -> None:
        if not run_cpus > 0:
            raise SitebotError(f"--run-cpus must be > 0, not {run_cpus}")
        if not address:
            raise SitebotError("--ray needs an address, 'auto' or 'local'")
        self.ray = import_ray()
        self.address, self.run_cpus = address, float(run_cpus)
        kw: dict[str, Any] = {"include_dashboard": False, "logging_level": "warning"}
        t0 = time.monotonic()
        try:
            if address == "local":
                # Ray runs its workers (and so the runs' processes) at niceness 15; a
                # private instance gives the runs the local pool's priority instead, so
                # that other work on a shared machine does not starve them
                self.ray.init(address="local", num_cpus=max(1, math.ceil(jobs * run_cpus)),
                              _system_config={"worker_niceness": 0}, **kw)
            elif address.startswith("ray://"):
                self.ray.init(address=address)
            else:
                self.ray.init(address=address, **kw)
        except Exception as e:       # noqa: BLE001 - Ray raises many kinds; all mean the same
            hint = ("; a cluster with token authentication (Ray's default) also needs "
                    "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) "
                    "when named by address" if address not in ("local", "auto") else "")
            raise SitebotError(f"--ray {address}: no Ray cluster to run on "
                               f"({type(e).__name__}: {e}){hint}") from None
        self.start_s = time.monotonic() - t0
        cpus = float(self.ray.cluster_resources().get("CPU", 0.0))
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        biggest = max((float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes),
                      default=0.0)
        #: runs the cluster can hold at once (as it is now: an autoscaler may grow it)
        self.slots = max(1, int(cpus // self.run_cpus))
        self.describe = (f"Ray {'private instance' if address == 'local' else address}: "
                         f"{len(nodes)} node(s), {cpus:g} CPU(s), {self.slots} run(s) at a "
                         f"time ({self.run_cpus:g} CPU each), up in {self.start_s:.1f} s")
        if biggest < self.run_cpus:
            self.describe += (f"; no node has {self.run_cpus:g} CPUs yet: the runs wait for "
                              "one (an autoscaler's)")
        #: the run task: Ray's own retries off, a task that died is the campaign's
        #: infrastructure error (retried by --retries)
        self.task = self.ray.remote(max_retries=0)(remote_run)

    def pool(self, runs: list[tuple[Scenario, int]], out: Path, quiet: bool = False,
             paced: bool = False) -> "RayPool":
        return RayPool(self, runs, out, quiet, paced)

    def close(self) -> None:
        """Disconnect; a private instance (``local``) stops with it."""
        if self.ray.is_initialized():
            self.ray.shutdown()


class RayPool:
    """Runs ``(scenario, repeat)`` pairs as Ray tasks of ``backend`` (all submitted at once;
    the cluster decides where and how many at a time); :meth:`run` returns their results in
    order, each run's folder in ``OUT/runs/<name>/`` as the local pool leaves it."""

    def __init__(self, backend: RayBackend, runs: list[tuple[Scenario, int]], out: Path,
                 quiet: bool = False, paced: bool = False) -> None:
        self.backend, self.runs, self.out = backend, runs, Path(out)
        self.quiet, self.paced = quiet, paced
        self.jobs = backend.slots
        self.results: list[dict | None] = [None] * len(runs)
        self.print_lock = threading.Lock()
        #: called with each run's result as it ends (from the driver's thread)
        self.on_result: Callable[[dict], None] | None = None

    def say(self, text: str) -> None:
        with self.print_lock:
            print(text, flush=True)

    def _job(self, sc: Scenario, rep: int) -> dict:
        return {"template_name": Path(sc.file).name, "template": Path(sc.file).read_bytes(),
                "name": sc.name, "seed": sc.seed, "repeat": rep, "lockstep": not self.paced,
                "run_dir_name": run_dir_name(sc, rep), "wall_limit": sc.wall_limit,
                "scenario": sc.id, "quiet": self.quiet,
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}

    def _collect(self, i: int, ref: Any) -> dict:
        ray = self.backend.ray
        sc, rep = self.runs[i]
        dest = self.out / "runs" / run_dir_name(sc, rep)
        try:
            back = ray.get(ref)
        except ray.exceptions.RayError as e:     # the task died, was cancelled, or raised
            why = str(e).strip().splitlines()
            return died_result(sc, rep, dest, f"{type(e).__name__}: "
                               + (why[-1] if why else "no detail"))
        try:
            return adopt_run(back["result"], back["packed"], dest,
                             {back["run_dir"]: str(dest.resolve()), back["file"]: str(sc.file)},
                             note={"ray_host": back.get("host")})
        except SitebotError as e:
            return died_result(sc, rep, dest, str(e))

    def run(self) -> list[dict]:
        ray = self.backend.ray
        refs: dict[Any, int] = {}
        for i, (sc, rep) in enumerate(self.runs):
            opts = {"num_cpus": self.backend.run_cpus, "name": f"sitebot run {sc.name}"}
            refs[self.backend.task.options(**opts).remote(self._job(sc, rep))] = i
        if not self.quiet:
            self.say(f"ray: {len(refs)} run(s) submitted ({self.backend.run_cpus:g} CPU "
                     "each)")
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in ready:
                    i = refs.pop(ref)      # kept nowhere once collected: Ray frees it
                    res = self._collect(i, ref)
                    self.results[i] = res
                    if self.on_result is not None:
                        self.on_result(res)
                    sc, rep = self.runs[i]
                    self.say(ended_line(i, len(self.runs), sc.name + (f"#{rep}" if rep else ""),
                                        res))
        except KeyboardInterrupt:
            self._cancel(pending)
            raise
        return [r for r in self.results if r is not None]

    def _cancel(self, pending: list) -> None:
        """Cancel the tasks still pending: a running one gets a KeyboardInterrupt and stops
        its worker (``execute_run``); those still running after :data:`CANCEL_GRACE_S`
        are killed."""
        ray = self.backend.ray
        for ref in pending:
            ray.cancel(ref)
        if pending:
            _, left = ray.wait(pending, num_returns=len(pending), timeout=CANCEL_GRACE_S)
            for ref in left:
                ray.cancel(ref, force=True)
