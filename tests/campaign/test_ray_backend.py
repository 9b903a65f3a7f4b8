"""The Ray backend of ``sitebot campaign`` (sitebot.campaign.ray_backend).

Without Ray: a run folder packed on a node and unpacked on the driver is the same folder,
the node's temporary paths become the driver's, a packed folder that would write outside
its place or make a link is refused, a task that died is an infrastructure error, a worker
starts with no signal blocked, and a missing ``ray`` is a clear error; the KubeRay manifest
matches the pin and the image.  With Ray (a private instance, ``--ray local``): a small
campaign gives the same campaign folder as the local pool, run for run, and that folder
resumes.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from sitebot.apps.campaign import main as campaign_main
from sitebot.campaign.ray_backend import (RAY_REQUIREMENT, adopt_run, died_result, import_ray,
                                          pack_dir, unpack_dir)
from sitebot.campaign.taxonomy import label_run
from sitebot.errors import SitebotError
from sitebot.regress.pool import run_dir_name, spawn
from sitebot.regress.template import load_template

REPO = Path(__file__).resolve().parents[2]
SHORT = REPO / "tests" / "campaign" / "templates" / "substation_drive_short_random.yaml"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_packed_run_folder_unpacks_to_the_same_files(tmp_path):
    src = tmp_path / "node" / "run"
    (src / "bag").mkdir(parents=True)
    (src / "world").mkdir()
    (src / "bag" / "bag.mcap").write_bytes(bytes(range(256)) * 40)
    (src / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    (src / "world" / "substation.world.yaml").write_text("world: substation\n")
    (src / "launch.log").write_text("line\n" * 100)
    dest = tmp_path / "out" / "runs" / "x_seed=1_"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("from an earlier attempt")
    unpack_dir(pack_dir(src), dest)
    assert _files(dest) == _files(src)
    assert len(_files(dest)) == 4


def _tar(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buf.getvalue()


def test_a_packed_folder_that_leaves_its_place_or_links_is_refused(tmp_path):
    dest = tmp_path / "runs" / "r"
    with pytest.raises(SitebotError, match="does not unpack"):
        unpack_dir(_tar(tarfile.TarInfo("../escaped.txt"), b"x"), dest)
    assert not (tmp_path / "runs" / "escaped.txt").exists()
    link = tarfile.TarInfo("bag")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    with pytest.raises(SitebotError, match="'bag' is not a plain file"):
        unpack_dir(_tar(link), dest)
    with pytest.raises(SitebotError, match="does not unpack"):
        unpack_dir(b"not a tar.gz", dest)


def test_the_nodes_paths_become_the_drivers(tmp_path):
    node_run = "/tmp/sitebot-ray-run-ab12/runs/t_seed=3_"
    node_file = "/tmp/sitebot-ray-run-ab12/template/t.yaml"
    src = tmp_path / "node"
    src.mkdir()
    result = {"name": "t[seed=3]", "seed": 3, "file": node_file, "run_dir": node_run,
              "bag": f"{node_run}/bag", "audit_log": f"{node_run}/safety_audit.jsonl",
              "events": [{"kind": "error", "error": f"bag not written in {node_run}/bag"}],
              "metrics": {"sim_time_s": 5.0}}
    (src / "result.json").write_text(json.dumps(result, indent=2))
    (src / "spec.json").write_text(json.dumps({"file": node_file, "run_dir": node_run}))
    (src / "plot.json").write_text(json.dumps({"world_file": f"{node_run}/world/w.yaml"}))
    (src / "launch.log").write_text(f"started in {node_run}\n")
    dest = tmp_path / "out" / "runs" / "t_seed=3_"
    driver_file = str(tmp_path / "templates" / "t.yaml")
    res = adopt_run(result, pack_dir(src), dest, {node_run: str(dest), node_file: driver_file},
                    note={"ray_host": "node-7"})
    assert res["run_dir"] == str(dest) and res["file"] == driver_file
    assert res["bag"] == f"{dest}/bag" and res["audit_log"] == f"{dest}/safety_audit.jsonl"
    assert res["events"][0]["error"] == f"bag not written in {dest}/bag"
    assert res["seed"] == 3 and res["metrics"] == {"sim_time_s": 5.0}
    assert res["ray_host"] == "node-7"                     # where it ran, kept with it
    assert json.loads((dest / "result.json").read_text()) == res
    assert json.loads((dest / "spec.json").read_text()) == {"file": driver_file,
                                                           "run_dir": str(dest)}
    assert json.loads((dest / "plot.json").read_text()) == {
        "world_file": f"{dest}/world/w.yaml"}
    # a log records where the run ran: left as it came
    assert (dest / "launch.log").read_text() == f"started in {node_run}\n"


def test_a_task_that_died_is_an_infrastructure_error(tmp_path):
    sc = load_template(SHORT).sample(4)
    run_dir = tmp_path / "runs" / run_dir_name(sc)
    res = died_result(sc, 0, run_dir, "WorkerCrashedError: the worker died unexpectedly")
    assert res["status"] == "error" and res["name"] == sc.name == f"{sc.id}[seed=4]"
    assert label_run(res)[0] == "infrastructure_error"
    assert "WorkerCrashedError" in (run_dir / "worker.log").read_text()
    spec = json.loads((run_dir / "spec.json").read_text())
    assert (spec["name"], spec["seed"], spec["run_dir"]) == (sc.name, 4, str(run_dir))


def test_without_ray_the_error_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)            # import ray fails
    with pytest.raises(SitebotError, match=re.escape(RAY_REQUIREMENT)):
        import_ray()
    assert campaign_main([str(SHORT), "--runs", "1", "--ray", "local",
                          "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--ray needs the Python package 'ray'" in err and RAY_REQUIREMENT in err
    assert not (tmp_path / "o" / "runs").exists()
    assert campaign_main([str(SHORT), "--runs", "1", "--run-cpus", "0",
                          "--out", str(tmp_path / "o")]) == 2
    assert "--run-cpus must be > 0" in capsys.readouterr().err
    # the version the error names is the one requirements.txt installs
    assert RAY_REQUIREMENT in (REPO / "requirements.txt").read_text().splitlines()


def test_the_kuberay_manifest_runs_the_pinned_ray_in_the_projects_image():
    doc = yaml.safe_load((REPO / "docker" / "kuberay-raycluster.yaml").read_text())
    assert doc["kind"] == "RayCluster" and doc["apiVersion"] == "ray.io/v1"
    assert doc["spec"]["rayVersion"] == RAY_REQUIREMENT.split("==")[1]
    assert doc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"   # no runs
    entry = "/usr/local/bin/sitebot-entrypoint"
    assert f"docker/entrypoint.sh {entry}" in (REPO / "docker" / "Dockerfile").read_text()
    pods = [doc["spec"]["headGroupSpec"]] + doc["spec"]["workerGroupSpecs"]
    for group in pods:
        pod = group["template"]["spec"]
        (c,) = pod["containers"]
        assert c["command"][0] == entry and "$KUBERAY_GEN_RAY_START_CMD" in c["args"][0]
        in_memory = {v["name"] for v in pod["volumes"]
                     if v.get("emptyDir", {}).get("medium") == "Memory"}
        assert any(m["mountPath"] == "/dev/shm" and m["name"] in in_memory
                   for m in c["volumeMounts"]), group
    for group in doc["spec"]["workerGroupSpecs"]:
        (c,) = group["template"]["spec"]["containers"]
        # the CPUs Ray counts on a pod are the CPUs the pod gets
        assert (c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
                == group["rayStartParams"]["num-cpus"])


def test_a_worker_starts_with_no_signal_blocked_whatever_its_starter_blocks():
    # a Ray worker's thread blocks SIGINT; the run's processes must not inherit that
    seen = {}

    def start() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        p = spawn([sys.executable, "-c", "print(open('/proc/self/status').read())"],
                  dict(os.environ))
        seen["status"] = p.communicate(timeout=60)[0]
        seen["still_blocked"] = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])

    t = threading.Thread(target=start)
    t.start()
    t.join()
    blocked = next(line for line in seen["status"].splitlines() if line.startswith("SigBlk:"))
    assert int(blocked.split()[1], 16) == 0
    assert seen["still_blocked"]                       # the starter's own mask is kept


def _layout(out: Path) -> dict[str, set[str]]:
    return {d.name: set(_files(d)) for d in sorted((out / "runs").iterdir())}


@pytest.mark.integration
def test_the_ray_backend_gives_the_local_pools_campaign_folder(tmp_path, capsys):
    pytest.importorskip("ray")
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    common = [str(SHORT), "--first-seed", "3", "--jobs", "2", "--quiet"]
    assert campaign_main([*common, "--runs", "2", "--out", str(local)]) == 0
    capsys.readouterr()
    assert campaign_main([*common, "--runs", "2", "--out", str(on_ray), "--ray", "local"]) == 0
    assert "on Ray private instance: 1 node(s), 2 CPU(s)" in capsys.readouterr().out
    import ray
    assert not ray.is_initialized()                # the private instance stopped with the run
    # the folder the Ray runs came back to resumes: their verdicts are found, nothing runs
    assert campaign_main([*common, "--runs", "2", "--out", str(on_ray), "--ray", "local"]) == 0
    said = capsys.readouterr().out
    assert "2 already done" in said and "0 to run" in said and "on Ray" not in said

    camps = [json.loads((out / "campaign.json").read_text()) for out in (local, on_ray)]
    runs = [{r["name"]: r for r in c["runs"]} for c in camps]
    assert list(runs[0]) == list(runs[1]) == [f"{SHORT.stem}[seed=3]", f"{SHORT.stem}[seed=4]"]
    tpl = load_template(SHORT)
    for name, r in runs[0].items():
        s = runs[1][name]
        assert r["status"] in ("passed", "failed") and s["status"] in ("passed", "failed"), \
            (r, s)
        assert r["seed"] == s["seed"] and r["draws"] == s["draws"] == tpl.explain(r["seed"])
    assert _layout(local) == _layout(on_ray)
    assert len(_layout(on_ray)) == 2
    for name, r in runs[1].items():
        run_dir = on_ray / "runs" / run_dir_name(tpl.sample(r["seed"]))
        assert r["run_dir"] == str(run_dir)
        text = (run_dir / "result.json").read_text()
        res = json.loads(text)
        base = json.loads((local / "runs" / run_dir.name / "result.json").read_text())
        assert (res["name"], res["seed"]) == (base["name"], base["seed"]) == (name, r["seed"])
        assert res["file"] == base["file"] == str(SHORT)
        assert res["scenario_sha256"] == base["scenario_sha256"]
        assert res["run_dir"] == str(run_dir) and res["bag"] == str(run_dir / "bag")
        assert "sitebot-ray-run-" not in text             # no path of the node's folder left
        assert res["ray_host"] and "ray_host" not in base
        spec = json.loads((run_dir / "spec.json").read_text())
        assert spec == {**json.loads((local / "runs" / run_dir.name / "spec.json").read_text()),
                        "run_dir": str(run_dir)}
