"""The audit log: append-only JSON lines, seq continues across restarts, odd data never
crashes it."""
from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from sitebot.safety.audit import AuditLog, default_audit_path, sanitize
from sitebot.safety.types import BaseCommand
from sitebot.types import SafetyLevel


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_lines_fields_and_flush(tmp_path):
    p = tmp_path / "audit" / "safety.jsonl"
    log = AuditLog(p, wall_clock=lambda: 0.0)
    log.write("estop_triggered", 12.5, source="svc", level=SafetyLevel.EMERGENCY_STOP)
    # flushed at once: readable before close
    recs = lines(p)
    assert recs == [{"seq": 0, "sim_time_s": 12.5, "wall_time": "1970-01-01T00:00:00.000000Z",
                     "event": "estop_triggered", "source": "svc",
                     "level": "EMERGENCY_STOP"}]
    log.write("command_dropped", 13.0, command=BaseCommand(math.nan, 0.0, 13.0))
    log.close()
    rec = lines(p)[1]
    assert rec["seq"] == 1
    assert rec["command"] == {"v_mps": "nan", "w_radps": 0.0, "stamp_s": 13.0,
                              "deadman": False}


def test_seq_continues_and_never_rewrites(tmp_path):
    p = tmp_path / "a.jsonl"
    with AuditLog(p) as log:
        for k in range(3):
            log.write("e", float(k))
    before = p.read_text()
    with AuditLog(p) as log:
        assert log.write("again", 3.0)["seq"] == 3
    after = p.read_text()
    assert after.startswith(before)
    assert [r["seq"] for r in lines(p)] == [0, 1, 2, 3]


def test_odd_data_never_crashes(tmp_path):
    class Weird:
        def __repr__(self):
            raise RuntimeError("no repr")

    class E(enum.Enum):
        A = 1

    @dataclass
    class D:
        x: float

    circular: list = []
    circular.append(circular)
    log = AuditLog(tmp_path / "w.jsonl")
    rec = log.write("odd", math.inf, w=Weird(), e=E.A, d=D(-math.inf), arr=np.array([1.0, np.nan]),
                    b=b"\x00", nested={1: {"k": (1, 2)}}, circ=circular, seq="clash",
                    f=np.float32(1.5))
    assert rec["sim_time_s"] == "inf"
    assert rec["e"] == "A" and rec["d"] == {"x": "-inf"} and rec["arr"] == [1.0, "nan"]
    assert rec["nested"] == {"1": {"k": [1, 2]}} and rec["field_seq"] == "clash"
    assert rec["f"] == 1.5
    assert isinstance(rec["w"], str)
    log.close()
    assert len(lines(tmp_path / "w.jsonl")) == 1       # valid JSON (no NaN tokens)


def test_unwritable_path_does_not_raise(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    log = AuditLog(d)            # a directory: cannot be opened
    rec = log.write("e", 1.0)
    assert rec["seq"] == 0 and log.write_errors >= 1
    assert log.events("e") == [rec]


def test_corrupt_tail_seq(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"seq": 7, "event": "x"}\nnot json\n')
    assert AuditLog(p).write("y", 0.0)["seq"] == 8
    assert sanitize({"a": float("nan")}) == {"a": "nan"}


def test_default_path_is_one_file_per_start_under_ros_home(tmp_path):
    import time
    t = time.mktime((2025, 3, 4, 5, 6, 7, 0, 0, -1))          # local time
    assert default_audit_path(tmp_path, t) == \
        tmp_path / "sitebot" / "audit" / "safety_20250304_050607.jsonl"
    assert default_audit_path("/ros", t + 1).name == "safety_20250304_050608.jsonl"


# ---------------------------------------------------------------------------------------
# aggregation and rotation (issue 19: the audit log is not a disk-filling channel)
# ---------------------------------------------------------------------------------------
def test_repeats_of_a_cause_are_one_summary_per_second(tmp_path):
    p = tmp_path / "agg.jsonl"
    log = AuditLog(p, wall_clock=lambda: 0.0)
    for k in range(250):                      # 250 drops over 2.5 s, 2 causes interleaved
        log.write("command_dropped", 10.0 + 0.01 * k, reason="duplicate_stamp", k=k)
        log.write("command_dropped", 10.0 + 0.01 * k, reason="non_finite", k=k)
    log.tick(12.49)                           # inside the third second: nothing due yet
    recs = lines(p)
    # per cause: the first in full, then the two finished seconds' counts
    assert [(r["event"], r["reason"], r.get("count")) for r in recs] == [
        ("command_dropped", "duplicate_stamp", None), ("command_dropped", "non_finite", None),
        ("command_dropped_summary", "duplicate_stamp", 99),
        ("command_dropped_summary", "non_finite", 99),
        ("command_dropped_summary", "duplicate_stamp", 100),
        ("command_dropped_summary", "non_finite", 100)]
    s = recs[2]
    assert (s["first_sim_time_s"], s["last_sim_time_s"], s["sim_time_s"]) == (10.01, 10.99, 10.99)
    assert s["first_wall_time"] == s["last_wall_time"] == "1970-01-01T00:00:00.000000Z"
    log.tick(13.0)                            # the third second is over: its 50 each
    assert [r.get("count") for r in lines(p)[6:]] == [50, 50]
    log.tick(14.5)                            # a whole quiet second: the cause is forgotten
    log.write("command_dropped", 14.6, reason="duplicate_stamp")
    assert "count" not in lines(p)[-1]        # a new first: in full again
    assert [r["seq"] for r in lines(p)] == list(range(9))


def test_pending_counts_go_before_any_other_kind_and_at_close(tmp_path):
    p = tmp_path / "order.jsonl"
    log = AuditLog(p)
    for k in range(5):
        log.write("command_dropped", 1.0 + 0.01 * k, reason="duplicate_stamp")
    rec = log.write("estop_triggered", 1.05, source="service")
    assert rec["seq"] == 2
    for k in range(3):
        log.write("command_dropped", 1.1 + 0.01 * k, reason="duplicate_stamp")
    counted = log.write("command_dropped", 1.2, reason="duplicate_stamp")
    assert counted["aggregated"] is True and "seq" not in counted
    log.close()
    recs = lines(p)
    assert [(r["event"], r.get("count")) for r in recs] == [
        ("command_dropped", None), ("command_dropped_summary", 4), ("estop_triggered", None),
        ("command_dropped_summary", 4)]


def test_stops_and_operator_actions_are_never_aggregated(tmp_path):
    p = tmp_path / "p.jsonl"
    log = AuditLog(p)
    kinds = ("estop_triggered", "estop_input", "estop_reset", "estop_reset_refused",
             "mode_requested", "role_changed", "state_changed", "login", "login_failed",
             "release")
    for k in range(20):
        for kind in kinds:
            log.write(kind, 1.0 + 0.001 * k, reason="same", user="same")
    log.close()
    assert len(lines(p)) == 20 * len(kinds)
    with pytest.raises(ValueError, match="estop_reset"):
        AuditLog(None, aggregate={"estop_reset": ("reason",)})


def test_many_causes_share_one(tmp_path):
    log = AuditLog(tmp_path / "c.jsonl", max_causes=3)
    for k in range(100):
        log.write("trajectory_rejected", 1.0 + 0.001 * k, reason=f"joint 1 at {k} rad")
    log.close()
    recs = lines(tmp_path / "c.jsonl")
    full = [r for r in recs if r["event"] == "trajectory_rejected"]
    summaries = [r for r in recs if r["event"] == "trajectory_rejected_summary"]
    assert [r["reason"] for r in full] == ["joint 1 at 0 rad", "joint 1 at 1 rad",
                                          "joint 1 at 2 rad", "joint 1 at 3 rad"]
    assert [(r["reason"], r["count"]) for r in summaries] == [("*", 96)]


def test_a_huge_record_is_cut_to_one_bounded_line(tmp_path):
    from sitebot.safety.audit import MAX_LINE_BYTES
    log = AuditLog(tmp_path / "h.jsonl")
    log.write("estop_input", 1.0, names=["x" * 1000] * 1000)
    log.close()
    raw = (tmp_path / "h.jsonl").read_bytes()
    assert len(raw) <= MAX_LINE_BYTES
    rec = json.loads(raw)
    assert rec["event"] == "estop_input" and rec["truncated"].startswith('{"seq":0')


def test_rotation_renames_whole_files_and_carries_stops(tmp_path):
    p = tmp_path / "r.jsonl"
    log = AuditLog(p, max_file_bytes=4096, max_files=3, kept_max_bytes=2048)
    first_inode = None
    for k in range(400):
        if k % 50 == 7:
            log.write("estop_triggered", float(k), source="service", k=k)
        log.write("input_rejected", float(k), source="scan", reason="non_finite", k=k)
        if first_inode is None:
            first_inode = p.stat().st_ino
    log.close()
    names = sorted(x.name for x in tmp_path.iterdir())
    assert names == ["r.jsonl", "r.jsonl.1", "r.jsonl.2", "r.jsonl.kept"]
    sizes = {x.name: x.stat().st_size for x in tmp_path.iterdir()}
    assert all(v <= 4096 for k, v in sizes.items() if k != "r.jsonl.kept")
    assert sizes["r.jsonl.kept"] <= 2048
    # renamed, not copied: the first file's inode lives on under a rotated name or was
    # replaced by the rotation; the current file is a new one
    assert p.stat().st_ino != first_inode
    main = [lines(tmp_path / n) for n in ("r.jsonl.2", "r.jsonl.1", "r.jsonl")]
    seqs = [r["seq"] for f in main for r in f]
    assert seqs == list(range(seqs[0], seqs[-1] + 1))        # whole, in order, no gap
    kept = lines(tmp_path / "r.jsonl.kept")
    assert kept and all(r["event"] == "estop_triggered" for r in kept)
    stops = [r["k"] for r in kept] + [r["k"] for f in main for r in f
                                       if r["event"] == "estop_triggered"]
    assert stops == [k for k in range(400) if k % 50 == 7]  # every stop is still on disk
    # seq continues after a restart
    with AuditLog(p, max_file_bytes=4096, max_files=3) as again:
        assert again.write("x", 0.0)["seq"] == seqs[-1] + 1


def test_seq_continues_when_the_current_file_is_new(tmp_path):
    p = tmp_path / "s.jsonl"
    p.with_name("s.jsonl.1").write_text('{"seq": 41, "event": "x"}\n')
    assert AuditLog(p).write("y", 0.0)["seq"] == 42


def test_pending_counts_are_written_at_exit(tmp_path):
    import subprocess
    import sys
    p = tmp_path / "exit.jsonl"
    code = ("from sitebot.safety.audit import AuditLog\n"
            f"log = AuditLog({str(p)!r})\n"
            "for k in range(3):\n"
            "    log.write('command_dropped', 1.0 + 0.1 * k, reason='duplicate_stamp')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)     # never closed
    assert [(r["event"], r.get("count")) for r in lines(p)] == [
        ("command_dropped", None), ("command_dropped_summary", 2)]
