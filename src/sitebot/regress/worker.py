"""One regression run in its own process: ``python -m sitebot.regress.worker SPEC.json``.

The runner starts one worker per run with its own ``ROS_DOMAIN_ID``. The worker prepares
the run folder, runs the scenario (``driver``), and writes into the run folder:

  bag/                 rosbag2 (MCAP) of the run (metadata.yaml + bag_0.mcap)
  metrics.json         the metrics
  result.json          verdict, checks, metrics, events, plan steps, timings
  plot.json            downsampled series for the HTML report
  safety_audit.jsonl   the supervisor's audit log
  launch.log           every line the processes printed

Lines on stdout starting with ``@@progress`` / ``@@result`` carry JSON for the runner.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sitebot.errors import SitebotError
from sitebot.launcher.domains import local_dds_env
from sitebot.regress.metrics import compute_metrics, judge
from sitebot.regress.prepare import missing_nodes, prepare_run
from sitebot.regress.replay import file_sha256
from sitebot.regress.scenario import Scenario, load_scenario
from sitebot.regress.template import is_template, load_template
from sitebot.sim.world_loader import load_world

__all__ = ["run_worker", "main"]


def _emit(tag: str, data: Any) -> None:
    sys.stdout.write(f"@@{tag} {json.dumps(data)}\n")
    sys.stdout.flush()


def _downsample(seq: list, n: int = 600) -> list:
    if len(seq) <= n:
        return list(seq)
    k = math.ceil(len(seq) / n)
    return list(seq[::k]) + [seq[-1]]


def _result_base(sc: Scenario, spec: dict) -> dict[str, Any]:
    return {"scenario": sc.id, "name": sc.name, "file": str(sc.file), "tags": list(sc.tags),
            "world": sc.world, "seed": sc.seed, "variant": dict(sc.variant),
            "repeat": spec.get("repeat", 0), "run_dir": spec["run_dir"],
            "mission": sc.mission.kind, "description": sc.description,
            "lockstep": bool(spec.get("lockstep", False)),
            "scenario_sha256": file_sha256(sc.file)}


def run_worker(spec: dict) -> dict[str, Any]:
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_template(spec["file"]):           # a campaign's run: the template's draw for a seed
        scs = [load_template(spec["file"]).sample(int(spec["seed"]))]
    else:
        scs = [s for s in load_scenario(spec["file"]) if s.name == spec["name"]]
    if not scs or scs[0].name != spec["name"]:
        raise SitebotError(f"no scenario {spec['name']!r} in {spec['file']}")
    sc = scs[0]
    res = _result_base(sc, spec)
    missing = missing_nodes(sc)
    if missing:
        res.update(status="skipped", reason="needs " + ", ".join(missing), checks=[],
                   metrics={})
        return res
    prep = prepare_run(sc, run_dir, lockstep=bool(spec.get("lockstep", False)))
    from sitebot.regress import driver  # ROS from here on
    from sitebot.bag import write_bag
    os.environ.setdefault("ROS_DOMAIN_ID", "0")
    env = local_dds_env()
    run = driver.run_scenario(sc, run_dir, prep["launch_file"], prep["launch_args"], env=env,
                              progress=lambda p: _emit("progress", p),
                              log_path=run_dir / "launch.log",
                              lockstep=bool(spec.get("lockstep", False)))
    tp = time.monotonic()
    rec = driver.decode_records(run["raw"])
    world = load_world(prep["world_file"])
    m = compute_metrics(sc, world, rec, run)
    t_metrics = time.monotonic() - tp
    series = m.pop("_series")
    checks = judge(sc, m, run, rec)
    status = "passed" if all(c.ok for c in checks) else "failed"
    if run["aborted"] and not rec.get("truth"):
        status = "error"
    events = run["events"] + [{**e, "kind": "sim_fault", "fault": e.get("kind")}
                              for e in rec.get("sim_faults", [])]
    events.sort(key=lambda e: (e.get("t") or 0.0))
    topics = {t: (driver.RECORDED[t][0], msgs) for t, msgs in run["raw"].items()}
    topics[driver.EVENTS_TOPIC[0]] = (driver.EVENTS_TOPIC[1], [
        (int(max(float(e.get("t") or 0.0), 0.0) * 1e9), driver.serialize_event(e))
        for e in events])
    bag_dir = run_dir / "bag"
    tb = time.monotonic()
    try:
        write_bag(bag_dir, topics, custom={"scenario": sc.name, "seed": str(sc.seed),
                                           "verdict": status})
        bag = str(bag_dir)
    except Exception as e:            # noqa: BLE001 - a broken bag must not hide the verdict
        bag = ""
        checks_err = f"bag not written: {type(e).__name__}: {e}"
        events.append({"t": None, "kind": "error", "error": checks_err})
    m["bag_messages"] = sum(len(v[1]) for v in topics.values())
    m["postprocess_wall_s"] = {"metrics": round(t_metrics, 2),
                               "bag": round(time.monotonic() - tb, 2)}
    (run_dir / "metrics.json").write_text(json.dumps(m, indent=2))
    plot = {"truth": _downsample([(round(r[0], 2), round(r[1], 3), round(r[2], 3))
                                  for r in rec.get("truth", [])]),
            "people": _downsample([(round(t, 2), [(round(x, 2), round(y, 2)) for x, y in ps])
                                   for t, ps in rec.get("people", [])], 300),
            "series": _downsample([(round(t, 2), round(v, 3),
                                    None if not math.isfinite(s) else round(s, 3))
                                   for t, v, s in series]),
            "timeline": m["safety_timeline"], "world_file": prep["world_file"],
            "bodies": list(sc.bodies) + [dict(f.params) for f in sc.faults
                                         if f.kind == "spawn_body"]}
    (run_dir / "plot.json").write_text(json.dumps(plot))
    # the steps the executor was given: the scenario's plan, or the planner's for an
    # instruction (none when it refused or asked); campaigns count success per skill
    planned = (run["mission"].get("details") or {}).get("plan") or {}
    steps = planned.get("steps", []) if sc.mission.kind == "instruction" else \
        [{"skill": st["skill"], "args": dict(st.get("args") or {})} for st in sc.mission.steps]
    res.update(status=status, reason=run["aborted"] or "", plan_steps=steps,
               checks=[c.as_dict() for c in checks], metrics=m, events=events, bag=bag,
               audit_log=prep["audit_log"] if Path(prep["audit_log"]).exists() else "",
               exit_codes=run["exit_codes"], failed_processes=run["failed"])
    return res


def _on_term(signum: int, frame: Any) -> None:
    # unwind: the launch context manager stops every process of the stack
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _on_term)
    argv = list(sys.argv[1:] if argv is None else argv)
    spec = json.loads(Path(argv[0]).read_text())
    t0 = time.monotonic()
    try:
        res = run_worker(spec)
    except SitebotError as e:
        res = {"name": spec.get("name"), "scenario": spec.get("name"), "status": "error",
               "reason": str(e), "checks": [], "metrics": {}, "run_dir": spec["run_dir"],
               "file": spec.get("file"), "repeat": spec.get("repeat", 0)}
    except KeyboardInterrupt as e:
        res = {"name": spec.get("name"), "scenario": spec.get("name"), "status": "error",
               "reason": f"interrupted ({e}): wall-clock limit or Ctrl-C", "checks": [],
               "metrics": {}, "run_dir": spec["run_dir"], "file": spec.get("file"),
               "repeat": spec.get("repeat", 0)}
    except Exception as e:           # noqa: BLE001 - report, never hang the suite
        res = {"name": spec.get("name"), "scenario": spec.get("name"), "status": "error",
               "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
               "checks": [], "metrics": {}, "run_dir": spec["run_dir"],
               "file": spec.get("file"), "repeat": spec.get("repeat", 0)}
    res["worker_wall_s"] = round(time.monotonic() - t0, 2)
    out = Path(spec["run_dir"]) / "result.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    _emit("result", {"path": str(out), "status": res["status"]})
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
