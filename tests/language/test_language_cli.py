"""`sitebot plan` as a subprocess: one instruction (human and --json) and --batch, with bad
lines answered in place without stopping the batch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SITEBOT = [sys.executable, "-m", "sitebot.cli"]
UNSEEN = Path(__file__).parents[1] / "data" / "planner" / "unseen" / "pumping_station.site.yaml"


def run(*args, stdin=None):
    return subprocess.run(SITEBOT + ["plan", *args], capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_batch(tmp_path):
    lines = [json.dumps({"text": "read the T1 oil pressure gauge"}),
             "this is not json",
             json.dumps({"role": "supervisor"}),
             json.dumps({"text": "open the T2 cooling valve", "role": "supervisor"}),
             json.dumps({"text": "open the T2 cooling valve"}),
             json.dumps(["text"]),
             json.dumps({"text": "read the T1 gauge", "role": "operator"})]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n")
    p = run("--site", "substation", "--batch", str(f))
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(out) == len(lines)
    for o in out:
        assert set(o) == {"status", "steps", "question", "reason", "explanation"}
    assert [o["status"] for o in out] == ["ok", "refuse", "refuse", "ok", "refuse", "refuse",
                                          "clarify"]
    assert out[0]["steps"] == [{"skill": "navigate_to", "args": {"place": "t1_bay"}},
                               {"skill": "read_gauge", "args": {"asset": "t1_oil_pressure_gauge"}}]
    assert "line 2" in out[1]["reason"] and "line 3" in out[2]["reason"]
    assert out[3]["steps"][1] == {"skill": "operate_valve",
                                  "args": {"asset": "t2_cooling_valve", "action": "open"}}
    assert "supervisor" in out[4]["reason"]


def test_single_instruction_json_and_human_on_a_site_file():
    p = run("--site", str(UNSEEN), "--json", "bring the grease gun to pump 1")
    assert p.returncode == 0, p.stderr
    o = json.loads(p.stdout)
    assert o["status"] == "ok" and [s["skill"] for s in o["steps"]] == [
        "navigate_to", "pick", "navigate_to", "place"]
    p = run("--site", "construction", "--role", "supervisor", "close the standpipe valve")
    assert p.returncode == 0 and p.stdout.startswith("ok: plan of 2 steps")
    assert "operate_valve(standpipe_valve, close)" in p.stdout
    p = run("--site", "no_such_world", "dock")
    assert p.returncode == 2 and "no_such_world" in p.stderr
