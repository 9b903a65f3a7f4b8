"""``sitebot regress`` end to end: one suite invocation (worker processes, each its own
ROS_DOMAIN_ID, the real stack from launch files) with a passing scenario repeated three
times and a deliberately failing one, against an injected baseline. Checks the verdicts,
the failure in JUnit and HTML, the MCAP bag read back with ``rosbags``, the reproducibility
of the repeats, the baseline regression flag, the incident index and the dataset export."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sitebot.apps import regress as cli
from sitebot.bag import read_bag
from sitebot.regress.results import REPRO_TOLERANCES

pytestmark = pytest.mark.integration

PASSING = """scenario: regress_probe
description: drive, lose the lidar for 1 s, expect the watchdog's protective stop
tags: [test]
world: substation
seed: 4
robot: {start: [-12.5, -12.0, 0.0]}
duration: 6
mission: {kind: none, drive: [[0.3, 0.4, 0.0]]}
actors:
  replace: true
  add: [{id: walker, path: [[-10.0, -14.3], [-6.0, -14.3]], speed: 0.5, loop: false}]
faults:
- {at: 2.5, kind: sensor_dropout, sensor: scan, duration: 1.0}
criteria:
  min_travel: 0.8
  min_separation: 0.5
  safety_events: [{level: PROTECTIVE_STOP, cause: scan_stale, after_fault: 0, within: 0.75}]
"""
FAILING = PASSING.replace("regress_probe", "deliberately_failing").replace(
    "min_travel: 0.8", "min_travel: 50.0").replace("tags: [test]", "tags: [test, broken]")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    d = tmp_path_factory.mktemp("regress")
    scen = d / "scenarios"
    scen.mkdir()
    (scen / "probe.yaml").write_text(PASSING)
    (scen / "failing.yaml").write_text(FAILING)
    # an injected baseline: the probe's path was "much shorter" before -> a regression
    (d / "baseline.json").write_text(json.dumps(
        {"version": 1, "scenarios": {"regress_probe": {"path_length_m": 0.5}}}))
    out = d / "out"
    code = cli.main([str(scen), "--jobs", "2", "--repeat", "3", "--filter", "regress_probe",
                     "--out", str(out), "--baseline", str(d / "baseline.json"), "--quiet",
                     "--export-dataset", str(d / "dataset")])
    code2 = cli.main([str(scen), "--jobs", "1", "--filter", "deliberately_failing",
                      "--out", str(d / "out2"), "--junit", str(d / "junit.xml"), "--quiet"])
    res = json.loads((out / "results.json").read_text())
    res2 = json.loads((d / "out2" / "results.json").read_text())
    return d, code, code2, res, res2


def test_passing_runs_pass_and_reproduce(suite):
    d, code, _, res, _ = suite
    runs = res["runs"]
    assert [r["status"] for r in runs] == ["passed"] * 3, [r.get("checks") for r in runs]
    assert res["flaky"] == []
    spread = res["spread"]["regress_probe"]
    for metric, tol in REPRO_TOLERANCES.items():
        if metric in spread:
            assert spread[metric] <= tol, (metric, spread[metric], tol)
    lat = [next(c["value"] for c in r["checks"] if c["name"] == "safety_event[0]")
           for r in runs]
    print(f"\nscan_stale latency over 3 runs: {lat}; spread {spread}")
    assert max(lat) - min(lat) <= 0.1
    # the injected baseline regression fails the suite although every run passed
    assert code == 1
    assert {(g["name"], g["metric"]) for g in res["regressions"]} == {
        ("regress_probe", "path_length_m")}


def test_failing_scenario_is_reported_in_junit_and_html(suite):
    d, _, code2, _, res2 = suite
    assert code2 == 1 and res2["runs"][0]["status"] == "failed"
    root = ET.parse(d / "junit.xml").getroot()
    assert root.get("failures") == "1"
    fail = root.find("testcase/failure")
    assert fail is not None and "min_travel" in fail.get("message")
    html = (d / "out2" / "report.html").read_text()
    assert "deliberately_failing" in html and "min_travel" in html and "FAIL" in html
    assert html.count("<svg") >= 3                # map, speed/separation, timeline


def test_bag_is_readable_with_rosbags(suite):
    d, _, _, res, _ = suite
    run = res["runs"][0]
    meta = (Path(run["bag"]) / "metadata.yaml").read_text()
    assert "storage_identifier: mcap" in meta
    msgs = read_bag(run["bag"])
    assert len(msgs["/ground_truth/odom"]) > 80          # 20 Hz for 6 s
    states = [m for _, m in msgs["/safety/state"]]
    assert any("scan_stale" in m.reasons for m in states)
    stamps = [t for t, _ in msgs["/scan"]]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) > 0.9e9                              # the 1 s dropout is in the bag
    events = [json.loads(m.data) for _, m in msgs["/regress/events"]]
    assert any(e.get("fault") == "sensor_dropout" for e in events)


def test_incidents_and_dataset_export(suite):
    d, _, _, res, _ = suite
    rows = json.loads((d / "out" / "incidents.json").read_text())
    kinds = {r["kind"] for r in rows}
    assert "safety_protective_stop" in kinds and "fault" in kinds
    assert "label" in (d / "out" / "incidents.csv").read_text().splitlines()[0]
    labels = [json.loads(x) for x in (d / "dataset" / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 3 and all((d / "dataset" / x["bag"] / "metadata.yaml").is_file()
                                    for x in labels)
    assert labels[0]["incidents"]
