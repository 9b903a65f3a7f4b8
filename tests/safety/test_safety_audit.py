"""The audit log: append-only JSON lines, seq continues across restarts, odd data never
crashes it."""
from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass

import numpy as np

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
