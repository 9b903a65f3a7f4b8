"""Everything a run needs on disk before the stack starts (no ROS): the per-run world file
(start pose, actors), the parameter files of the simulator and the supervisor, the fault
schedule, the launch file and its arguments, and the check of required executables."""
from __future__ import annotations

import copy
import functools
import importlib.util
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from sitebot.barrier import PERIOD_NS
from sitebot.config.yamlio import load_yaml
from sitebot.errors import ConfigError
from sitebot.regress.scenario import Scenario, ScenarioError
from sitebot.sim.export import export_bundle
from sitebot.sim.world import WorldSpec
from sitebot.sim.world_loader import load_world, parse_world, world_path
from sitebot.site.bundle import installed_sites

__all__ = ["prepare_run", "check_world", "base_world", "missing_nodes", "LAUNCH_FILES"]

LAUNCH_FILES = {"none": "regress_base.launch.yaml", "goals": "regress_nav.launch.yaml",
                "instruction": "regress_task.launch.yaml", "plan": "regress_task.launch.yaml"}
#: supervisor settings of the mission stack (launch/mission.launch.yaml, where the reasons
#: are given) for the runs with the task stack; a scenario's ``supervisor`` overrides them
TASK_SUPERVISOR = {
    "localization_source": "filter",
    "scan_person_candidates": False,      # people come from spatial_perception's tracker
    "people_required": True,
    "people_timeout_s": 1.0,
}
#: simulator settings of the task-stack runs: every one of their 9-10 nodes runs on sim time
#: and handles each /clock message (an idle arm_planner or task_planner took 4-6 % of a core
#: here at 100 Hz); 50 Hz still ticks the fastest timer of the stack (the supervisor's 50 Hz
#: safety state) every period
TASK_SIM = {"clock_rate_hz": 50.0}
#: every node of a run is spun by rclpy's EventsExecutor (a third of the CPU per callback of
#: the wait-set executor: sitebot.nodes.executors); nodes that need threads keep theirs
RUN_EXECUTOR = {"executor": "events"}
#: nodes each launch file starts besides the simulator and the supervisor
LAUNCH_NODES = {"regress_base.launch.yaml": (),
                "regress_nav.launch.yaml": ("localization", "navigation"),
                "regress_task.launch.yaml": ("localization", "navigation", "camera_perception",
                                             "spatial_perception", "arm_planner",
                                             "task_planner", "task_executor")}


def _node_available(name: str) -> bool:
    exe = Path(sys.executable).parent / name
    if not (exe.exists() or shutil.which(name)):
        return False
    try:
        return importlib.util.find_spec(f"sitebot.nodes.{name}") is not None
    except (ImportError, ValueError):
        return False


def missing_nodes(sc: Scenario) -> list[str]:
    """Executables the scenario needs that do not exist (yet) in this installation."""
    need = list(sc.needed_nodes) + list(LAUNCH_NODES[LAUNCH_FILES[sc.mission.kind]])
    return [n for n in dict.fromkeys(need) if not _node_available(n)]


def _world_doc(sc: Scenario, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The world of the run: the scenario's world file (or ``data``, that file already
    parsed) with the scenario's robot start and actors."""
    src = world_path(sc.world)
    if data is None:
        data = load_yaml(src, error=ScenarioError)      # the one bounded YAML path
    site = Path(data["site"])
    data["site"] = str(site if site.is_absolute() else (src.parent / site).resolve())
    if sc.start is not None:
        data.setdefault("spawn", {})["robot1"] = [float(v) for v in sc.start]
    actors = [] if sc.actors_replace else list(data.get("actors") or [])
    known = {a["id"] for a in actors}
    for rid in sc.actors_remove:
        if rid not in known:
            raise ScenarioError(f"no actor {rid!r} in world {sc.world!r}; actors: "
                                + ", ".join(sorted(known)), file=sc.file, where="actors.remove")
    actors = [a for a in actors if a["id"] not in sc.actors_remove]
    for a in sc.actors_add:
        actors = [b for b in actors if b["id"] != a["id"]] + [dict(a)]
    data["actors"] = actors
    _move_objects(sc, data)
    return data


def _move_objects(sc: Scenario, data: dict[str, Any]) -> None:
    """Move the bodies of the scenario's ``objects`` (offset in the map frame, turned
    about the vertical) in the world document."""
    if not sc.objects:
        return
    bodies = {b.get("object"): b for b in data.get("bodies") or [] if isinstance(b, dict)}
    for oid, mv in sc.objects.items():
        b = bodies.get(oid)
        if b is None:
            raise ScenarioError(f"no object {oid!r} in world {sc.world!r}; objects: "
                                + ", ".join(sorted(str(k) for k in bodies if k)),
                                file=sc.file, where=f"objects.{oid}")
        pose = [float(v) for v in b["pose"]]
        if len(pose) == 3:
            pose.append(0.0)
        pose[0] += mv["offset"][0]
        pose[1] += mv["offset"][1]
        pose[-1] += math.radians(mv["turn"])
        b["pose"] = pose


def _participants(sc: Scenario) -> list[str]:
    """The nodes of a run that take part in the barrier: the launch file's nodes (with its
    conditions: the camera pipeline only with a camera, the language planner only for
    instructions), the supervisor and the runner's own driver node."""
    nodes = ["safety_supervisor", "regress_driver",
             *LAUNCH_NODES[LAUNCH_FILES[sc.mission.kind]]]
    return [n for n in nodes if not (n == "camera_perception" and not sc.camera)
            and not (n == "task_planner" and sc.mission.kind != "instruction")]


def _write_world(sc: Scenario, wdir: Path) -> Path:
    """The world of the run, written into ``wdir`` and checked."""
    doc = _world_doc(sc)
    wdir.mkdir(parents=True, exist_ok=True)
    wfile = wdir / f"{doc['world']}.world.yaml"
    wfile.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        load_world(wfile)                   # the scenario's changes must give a valid world
    except ConfigError as e:
        raise ScenarioError(f"the world with this scenario's robot/actors is invalid: {e}",
                            file=sc.file, where="actors") from None
    return wfile


def check_world(sc: Scenario) -> None:
    """Raise a ScenarioError when the scenario's robot and actors do not make a valid world
    (an actor that walks through a wall, a start inside a rack): what a run would find
    first, checked without running (a campaign checks every draw of its templates).  The
    world file and its site registry are parsed once per world (parsing them took 2 s a
    draw), the draw's world from the data."""
    src = world_path(sc.world)
    base, spec = _parsed_world(str(src), src.stat().st_mtime_ns)
    try:
        parse_world(_world_doc(sc, copy.deepcopy(base)), file=src, registry=spec.registry)
    except ConfigError as e:
        raise ScenarioError(f"the world with this scenario's robot/actors is invalid: {e}",
                            file=sc.file, where="actors") from None


@functools.lru_cache(maxsize=8)
def _parsed_world(src: str, mtime_ns: int) -> tuple[dict[str, Any], Any]:
    data = load_yaml(Path(src), error=ScenarioError)
    doc = copy.deepcopy(data)
    site = Path(doc["site"])
    doc["site"] = str(site if site.is_absolute() else (Path(src).parent / site).resolve())
    return data, parse_world(doc, file=Path(src))


def base_world(world: str) -> WorldSpec:
    """The world a scenario names (a shipped world's name or a file), as its file defines
    it: parsed once per world file (template draws and campaign checks share it)."""
    src = world_path(world)
    return _parsed_world(str(src), src.stat().st_mtime_ns)[1]


def prepare_run(sc: Scenario, run_dir: Path, lockstep: bool = False) -> dict[str, Any]:
    """Write the run's files into ``run_dir``; returns launch file, launch arguments,
    world file and audit log path.  ``lockstep``: the simulator runs unpaced in lockstep
    with every node of the stack (``sitebot.barrier``; each node gets ``sim_lockstep``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    wfile = _write_world(sc, run_dir / "world")
    schedule = [{"kind": "spawn_body", "at": 0.0, "label": f"body{i}", **dict(b)}
                for i, b in enumerate(sc.bodies)]
    schedule += [f.sim_fault() for f in sc.faults if not f.runner and f.at is not None]
    (run_dir / "faults.yaml").write_text(yaml.safe_dump({"faults": schedule}, sort_keys=False))
    audit = run_dir / "safety_audit.jsonl"
    task = sc.mission.kind in ("instruction", "plan")
    sim = {"world": str(wfile), "seed": sc.seed, "start_paused": True,
           "real_time_factor": 0.0 if lockstep else float(sc.real_time_factor),
           "lockstep": bool(lockstep), "camera_enabled": bool(sc.camera), **RUN_EXECUTOR,
           # lockstep: one /clock per barrier period, so every timer fires at a barrier
           **({"clock_rate_hz": 1e9 / PERIOD_NS,
               "lockstep_expect": _participants(sc)} if lockstep else {}),
           "fault_schedule": str(run_dir / "faults.yaml"),
           **(TASK_SIM if task else {}), **dict(sc.sim)}
    # the stack's site: the world's installed bundle, or (a world given by path) the run's
    # own export; the scenario's start reaches it as the initial pose, as on a robot
    site = sc.world if "/" not in sc.world and sc.world in installed_sites() else \
        str(export_bundle(wfile, run_dir / "site"))
    initial = " ".join(repr(float(v)) for v in sc.start) if sc.start is not None else ""
    sup = {"use_sim_time": True, "sim_lockstep": bool(lockstep), **RUN_EXECUTOR, "site": site, "initial_pose": initial, "audit_log": str(audit),
           **(TASK_SUPERVISOR if task else {}), **dict(sc.supervisor)}
    (run_dir / "sim_params.yaml").write_text(yaml.safe_dump(
        {"simulator": {"ros__parameters": sim}}, sort_keys=False))
    (run_dir / "supervisor_params.yaml").write_text(yaml.safe_dump(
        {"safety_supervisor": {"ros__parameters": sup}}, sort_keys=False))
    # per-node overrides of the scenario (``params``), loaded last by every node of the
    # nav/task stacks; a file always exists (a section no node has when none is given)
    # (every node: whether it is a participant of the simulator's barrier)
    node_params = {"/**": {"ros__parameters": {"sim_lockstep": bool(lockstep), **RUN_EXECUTOR}},
                   **{n: {"ros__parameters": dict(v)} for n, v in sc.params.items()}}
    (run_dir / "node_params.yaml").write_text(yaml.safe_dump(node_params, sort_keys=False))
    launch = LAUNCH_FILES[sc.mission.kind]
    args = {"sim_params": str(run_dir / "sim_params.yaml"),
            "supervisor_params": str(run_dir / "supervisor_params.yaml")}
    if sc.mission.kind != "none":
        args.update(site=site, initial_pose=initial)
        args["node_params"] = str(run_dir / "node_params.yaml")
    if task:
        args.update(out_dir=str(run_dir / "executor"),
                    pose_source="dead_reckoning"
                    if sup.get("localization_source") == "dead_reckoning" else "filter",
                    role=str(sup.get("role", "")),
                    camera="true" if sc.camera else "false",
                    planner="true" if sc.mission.kind == "instruction" else "false")
    return {"launch_file": launch, "launch_args": args, "world_file": str(wfile),
            "audit_log": str(audit)}
