"""``sitebot demo``: the main job. A full simulated mission from a plain-English instruction.

It launches the whole stack (``launch/mission.launch.yaml``: simulator and control loop,
safety supervisor, perception, localization, navigation, arm planner, language planner,
task executor) as separate processes, sends the instruction on ``task/command``, shows the
plan (or the question / refusal), waits for the executor to finish, and writes to ``--out``:

  report.json        the executor's mission report (steps, readings, safety events, path)
  summary.json       outcome, readings checked against the simulator's truth, distances,
                     sim/wall time, real-time factor, localization error
  plan.json          the planner's answer, with its explanation
  map.png            the world with zones, places, the true path and the filter's path
  trajectory.csv     ground truth, odometry and filtered pose over time
  images/, readings/ camera images and gauge crops the skills saved
  safety_audit.jsonl the supervisor's audit log
  launch.log         every line the processes printed

Exit code 0 when the plan succeeded and every gauge reading lies within the perception
tolerance of the simulator's true value.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from sitebot.launcher.domains import TOOL_DOMAINS, hold_domain, local_dds_env
from sitebot.openlog import world_readers
from sitebot.security import Authority, command_digest
from sitebot.sim.world_loader import load_world
from sitebot.site.bundle import load_bundle
from sitebot.viz.map_image import draw_map

if TYPE_CHECKING:  # pragma: no cover
    from sitebot.nodes.recorder import TopicRecorder

__all__ = ["main", "DEFAULT_INSTRUCTION"]

DEFAULT_INSTRUCTION = ("read the pressure gauges at the transformers, then bring the voltage "
                       "detector to the T2 bay and return to the dock")
#: A reading counts as correct within this fraction of the gauge's full scale
#: (perception's aim: 2 % on 95 % of reports).
READING_TOLERANCE_FS = 0.03


def _pose(t: float, msg) -> tuple[float, float, float, float]:
    from sitebot.nodes.convert import planar_pose
    return (t, *planar_pose(msg.pose.pose))


#: A delivered object counts when its centre lies this close [m] to where 'place' puts it
#: (``place_forward_m`` ahead of the place pose) and on the floor.
DELIVERY_TOLERANCE_M = 0.35


def check_deliveries(world, steps: list[dict], objects: list[tuple[float, dict]],
                     place_forward_m: float = 0.6) -> list[dict]:
    """Each pick-then-place of the report against where the simulator says the object
    ended up (``objects``: (t, {object id: (x, y, z)}) samples of ``ground_truth/objects``)."""
    rows, held = [], None
    first = objects[0][1] if objects else {}
    last = objects[-1][1] if objects else {}
    for s in steps:
        if s["skill"] == "pick" and s["outcome"] == "succeeded":
            held = s["args"]["object"]
        elif s["skill"] == "place" and held is not None:
            place = world.registry.place(s["args"]["place"])
            want = (place.x + place_forward_m * math.cos(place.yaw),
                    place.y + place_forward_m * math.sin(place.yaw))
            end = last.get(held)
            start = first.get(held)
            err = math.dist(end[:2], want) if end else math.inf
            rows.append({"object": held, "place": place.id,
                         "start": [round(v, 3) for v in start] if start else None,
                         "end": [round(v, 3) for v in end] if end else None,
                         "error_m": round(err, 3) if math.isfinite(err) else None,
                         "ok": bool(end) and err <= DELIVERY_TOLERANCE_M and end[2] < 0.2})
            held = None
    return rows


def check_readings(world, readings: list[dict]) -> list[dict]:
    """Each reported reading against the simulator's true dial value."""
    rows = []
    for r in readings:
        asset = world.registry.asset(r["asset"])
        truth = world.gauge(asset.id).value
        span = asset.gauge.max_value - asset.gauge.min_value
        err = abs(r["value"] - truth) / span
        rows.append({"asset": asset.id, "value": round(r["value"], 4), "truth": truth,
                     "unit": r["unit"], "error_fs": round(err, 4),
                     "ok": err <= READING_TOLERANCE_FS})
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="sitebot demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instruction", nargs="?", default=DEFAULT_INSTRUCTION,
                    help=f"what the robot should do (default: {DEFAULT_INSTRUCTION!r})")
    ap.add_argument("--site", default="", help="site bundle the stack runs on: a folder or "
                    "an installed site (default: the world's installed bundle)")
    ap.add_argument("--world", default="", help="world the simulator plays (default: the "
                    "world the --site bundle was exported from, else substation)")
    ap.add_argument("--role", default="operator", choices=("operator", "supervisor"))
    ap.add_argument("--out", default="out/demo", help="output folder (replaced)")
    ap.add_argument("--real-time-factor", type=float, default=1.0,
                    help="simulated seconds per wall second (default 1; 0 = as fast as "
                         "the simulator can, which can starve perception on a small machine)")
    ap.add_argument("--timeout", type=float, default=1500.0, help="wall-clock limit [s]")
    ap.add_argument("--confirm", action="store_true",
                    help="answer 'yes' as a supervisor when the executor asks to confirm")
    a = ap.parse_args(argv)

    from nav_msgs.msg import Odometry
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import String
    from visualization_msgs.msg import MarkerArray

    from sitebot.launcher import launched
    from sitebot.nodes.common import QOS_COMMAND
    from sitebot.nodes.recorder import TopicRecorder
    from sitebot_interfaces.msg import TaskCommand, TaskPlan

    site = load_bundle(a.site) if a.site else None
    if not a.world:
        src = site.source.get("world", "") if site is not None else "substation.world.yaml"
        if not src:
            ap.error(f"the bundle {site.folder} names no source world; give --world")
        a.world = src.removesuffix(".world.yaml")
    world = load_world(a.world)        # the simulator's, and the judge's ground truth
    if site is None:
        site = load_bundle(world.registry.site)
    if site.site != world.registry.site:
        ap.error(f"the bundle is site '{site.site}', the world '{a.world}' is site "
                 f"'{world.registry.site}'")
    out = Path(a.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = open(out / "launch.log", "w", buffering=1)

    def on_line(line: str) -> None:
        log.write(line + "\n")
        if (line.startswith("[task_executor]") and "[INFO]" in line) or "[ERROR]" in line \
                or "process has died" in line:
            print(line, flush=True)

    hold_domain(TOOL_DOMAINS)
    env = local_dds_env()
    # every launched process logs the world files it opens (sitebot.openlog): the stack
    # must read none (the simulator plays a black-box robot)
    env["SITEBOT_OPEN_LOG"] = str(out / "world_reads")
    print(f"sitebot demo: the simulator plays world '{world.id}'; the stack runs on site "
          f"bundle '{site.site}' ({site.folder}); role {a.role}, outputs in {out}\n"
          f"instruction: {a.instruction!r}", flush=True)
    t_wall0 = time.monotonic()
    rec = TopicRecorder("mission_client")
    for topic in ("ground_truth/odom", "odom", "odometry/filtered"):
        rec.subscribe(Odometry, topic)
    rec.subscribe(Clock, "/clock", keep=False)
    rec.subscribe(MarkerArray, "ground_truth/objects")
    rec.subscribe(TaskPlan, "task/plan", qos=QOS_COMMAND)
    rec.subscribe(String, "task/status", keep=True)
    rec.subscribe(String, "task/confirmation_request", qos=QOS_COMMAND)
    cmd_pub = rec.publisher(TaskCommand, "task/command", QOS_COMMAND)
    confirm_pub = rec.publisher(TaskCommand, "task/confirm", QOS_COMMAND)
    # the demo acts as the site's operator tool: its instruction and answers are signed with
    # the site key (`sitebot demo` creates the default one when missing; docs/security.md)
    authority = Authority.open("", lambda text: print(f"warning: {text}", flush=True))
    user = os.environ.get("USER", "demo")

    def signed(scope: str, subject: str, role: str, digest: str) -> str:
        return authority.sign(scope, subject, user, role, time.time(), digest=digest) \
            if authority.key else ""

    answer: TaskPlan | None = None
    finished: dict | None = None
    failure = ""
    try:
        with launched("mission.launch.yaml",
                      {"world": a.world, "site": str(site.folder), "out_dir": str(out),
                       "real_time_factor": str(a.real_time_factor)},
                      env=env, on_line=on_line) as h:
            deadline = t_wall0 + a.timeout
            # the planner and the executor are up when they subscribe; the stack is warm
            # when localization publishes
            while time.monotonic() < deadline and not h.failed and (
                    cmd_pub.get_subscription_count() == 0
                    or rec.count("odometry/filtered") == 0):
                time.sleep(0.1)
            if h.failed:
                failure = f"processes failed at start: {h.failed}"
            elif time.monotonic() >= deadline:
                failure = "the stack did not come up in time"
            else:
                cmd_pub.publish(TaskCommand(request_id="mission", text=a.instruction,
                                            role=a.role, authority=signed(
                                                "command", "mission", a.role,
                                                command_digest(a.instruction))))
                answered = shown = 0
                while time.monotonic() < deadline and not h.failed:
                    statuses = rec.get("task/status")
                    for _, m in statuses[shown:]:
                        _print_progress(json.loads(m.data), rec, time.monotonic() - t_wall0,
                                        answer)
                    shown = len(statuses)
                    plans = rec.get("task/plan")
                    if answer is None and plans:
                        answer = plans[-1][1]
                        _print_answer(answer)
                        if answer.status != TaskPlan.STATUS_OK:
                            break
                    for _, m in rec.get("task/confirmation_request")[answered:]:
                        answered += 1
                        req = json.loads(m.data)
                        print(f"confirmation asked: {req['question']} -> "
                              f"{'yes' if a.confirm else 'no'} (--confirm answers yes)")
                        confirm_pub.publish(TaskCommand(
                            text="yes" if a.confirm else "no", role="supervisor",
                            in_reply_to=req["plan_id"], authority=signed(
                                "confirm", req["plan_id"], "supervisor",
                                str(req.get("plan_digest", "")))))
                    done = [json.loads(m.data) for _, m in rec.get("task/status")]
                    done = [d for d in done if d.get("state") == "finished"]
                    if done:
                        finished = done[-1]
                        break
                    time.sleep(0.2)
                if answer is None:
                    failure = "no answer from the planner"
                elif answer.status == TaskPlan.STATUS_OK and finished is None:
                    failure = ("processes failed: " + ", ".join(h.failed)) if h.failed \
                        else "the mission did not finish in time"
            codes, failed = dict(h.exit_codes), list(h.failed)
        wall_s = time.monotonic() - t_wall0
    finally:
        truth = [_pose(t, m) for t, m in rec.get("ground_truth/odom")]
        filt = [_pose(t, m) for t, m in rec.get("odometry/filtered")]
        objects = [(t, {mk.text: (mk.pose.position.x, mk.pose.position.y,
                                  mk.pose.position.z) for mk in m.markers})
                   for t, m in rec.get("ground_truth/objects")]
        clock = rec.get("/clock")
        sim_time = clock[-1][0] if clock else math.nan
        rec.close()
        log.close()

    report_file = out / "mission" / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    if report is not None:
        shutil.copy(report_file, out / "report.json")
    if answer is not None:
        (out / "plan.json").write_text(json.dumps(
            {"status": ["ok", "clarify", "refuse"][answer.status],
             "steps": [{"skill": s.skill, "args": dict(zip(s.arg_names, s.arg_values))}
                       for s in answer.steps],
             "question": answer.question, "reason": answer.reason,
             "explanation": answer.explanation}, indent=2))
    with open(out / "trajectory.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "t_s", "x_m", "y_m", "yaw_rad"])
        for name, series in (("truth", truth), ("filtered", filt)):
            for t, x, y, yaw in series:
                w.writerow([name, f"{t:.3f}", f"{x:.4f}", f"{y:.4f}", f"{yaw:.4f}"])
    cv2.imwrite(str(out / "map.png"), draw_map(world, truth, filt))

    readings = check_readings(world, report["readings"]) if report else []
    deliveries = check_deliveries(world, report["steps"], objects) if report else []
    loc_err = _localization_error(truth, filt)
    readers = world_readers(out / "world_reads")
    black_box = set(readers) <= {"simulator"}
    dist = sum(math.dist(p[1:3], q[1:3]) for p, q in zip(truth, truth[1:]))
    ok = (not failure and report is not None and report["result"] == "succeeded"
          and all(r["ok"] for r in readings) and all(d["ok"] for d in deliveries)
          and black_box)
    summary = {
        "world": world.id, "instruction": a.instruction, "role": a.role, "success": ok,
        "failure": failure or (report["reason"] if report and report["result"] != "succeeded"
                               else ""),
        "plan_status": None if answer is None else ["ok", "clarify", "refuse"][answer.status],
        "result": report["result"] if report else None,
        "steps": report["outcomes"] if report else {},
        "readings": readings,
        "deliveries": deliveries,
        "safety_events": len(report["safety_events"]) if report else 0,
        "distance_travelled_m": round(dist, 2),
        "localization_error_m": loc_err,
        "sim_time_s": round(sim_time, 2) if math.isfinite(sim_time) else None,
        "wall_time_s": round(wall_s, 2),
        "real_time_factor": round(sim_time / wall_s, 2) if math.isfinite(sim_time) else None,
        "exit_codes": codes, "failed_processes": failed,
        "site": str(site.folder), "world_files_read_by": readers,
        "stack_read_no_world_file": black_box,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(summary, report, out)
    if answer is not None and answer.status != TaskPlan.STATUS_OK:
        return 3
    return 0 if ok else 1


def _localization_error(truth: list, filt: list) -> dict | None:
    if not truth or not filt:
        return None
    import bisect
    ts = [p[0] for p in truth]
    errs = []
    for t, x, y, _ in filt:
        i = bisect.bisect_left(ts, t)
        cands = [truth[j] for j in (i - 1, i) if 0 <= j < len(truth)]
        near = min(cands, key=lambda p: abs(p[0] - t))
        if abs(near[0] - t) < 0.1:
            errs.append(math.dist(near[1:3], (x, y)))
    if not errs:
        return None
    return {"rms": round(math.sqrt(sum(e * e for e in errs) / len(errs)), 3),
            "max": round(max(errs), 3), "samples": len(errs)}


def _step_label(s) -> str:
    """A plan step as ``skill(arg=value, ...)``."""
    return f"{s.skill}({', '.join(f'{k}={v}' for k, v in zip(s.arg_names, s.arg_values))})"


def _print_progress(status: dict, rec: "TopicRecorder", wall_s: float, ans) -> None:
    """One line per executor step state as it happens (the main job is not silent between
    the plan and the final table): sim and wall time since the demo started."""
    if "step" not in status:
        return
    clock = rec.get("/clock")
    sim = f"{clock[-1][0]:7.1f}" if clock else "    ?"
    i, skill = int(status["step"]), str(status["skill"])
    label = _step_label(ans.steps[i - 1]) if ans is not None and 0 < i <= len(ans.steps) \
        else skill
    state = str(status["state"]).replace(f"{skill} ", "").replace(f" {skill}", "")
    text = f": {status['message']}" if status.get("message") and state.startswith(
        ("paused", "attempt")) else ""
    print(f"[sim {sim} s | wall {wall_s:7.1f} s] {i}/{status['steps']} {label}: {state}{text}",
          flush=True)


def _print_answer(ans) -> None:
    status = ["ok", "clarify", "refuse"][ans.status]
    print(f"\nplanner: {status}")
    if ans.status == 0:
        for i, s in enumerate(ans.steps, 1):
            print(f"  {i:>2}. {_step_label(s)}")
    elif ans.status == 1:
        print(f"  question: {ans.question}")
    else:
        print(f"  reason: {ans.reason}")
    print(flush=True)


def _print_summary(summary: dict, report: dict | None, out: Path) -> None:
    if report:
        print(f"\n{'#':>2}  {'step':<44} {'outcome':<10} {'tries':>5} {'t [s]':>7}")
        for i, s in enumerate(report["steps"], 1):
            label = s["skill"] + "(" + ", ".join(f"{v}" for v in s["args"].values()) + ")"
            print(f"{i:>2}  {label:<44} {s['outcome']:<10} {s['attempts']:>5} "
                  f"{s['duration_s']:>7.1f}")
    if summary["readings"]:
        print(f"\n{'gauge':<28} {'read':>8} {'true':>8} {'unit':<6} {'error % FS':>10}")
        for r in summary["readings"]:
            print(f"{r['asset']:<28} {r['value']:>8.3f} {r['truth']:>8.3f} {r['unit']:<6} "
                  f"{100 * r['error_fs']:>10.2f}{'' if r['ok'] else '  <-- wrong'}")
    for d in summary["deliveries"]:
        print(f"\ndelivered {d['object']} to {d['place']}: ended at {d['end']}, "
              f"{d['error_m']} m from the drop point{'' if d['ok'] else '  <-- wrong'}")
    le = summary["localization_error_m"]
    print(f"\nresult: {summary['result']}; {summary['distance_travelled_m']} m driven, "
          f"{summary['sim_time_s']} s simulated in {summary['wall_time_s']} s wall "
          f"(real-time factor {summary['real_time_factor']}); safety state changes: "
          f"{summary['safety_events']}"
          + (f"; localization error RMS {le['rms']} m, max {le['max']} m" if le else "")
          + "\nworld files read: " + ("; ".join(
              f"{p}: {', '.join(Path(f).name for f in fs)}"
              for p, fs in summary["world_files_read_by"].items()) or "none")
          + (" (only the simulator: the stack ran on the site bundle)"
             if summary["stack_read_no_world_file"] else "  <-- the stack read a world file")
          + f"\noutputs in {out}")
    if not summary["success"]:
        print(f"demo FAILED: {summary['failure'] or 'a reading or a delivery is wrong'}",
              file=sys.stderr)
