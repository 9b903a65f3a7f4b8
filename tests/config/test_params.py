"""Parameter schemas (sitebot.config.params): value validation, parameter files, node schemas."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from sitebot.config.params import (ParamSpec, ParamType, load_params_file, node_params_from_file,
                                   validate_params, validate_value)
from sitebot.errors import ConfigError, ParameterError
from sitebot.nodes import navigation, simulator
from sitebot.paths import data_path

T = ParamType

COUNT = ParamSpec("count", T.INT, 3, "a count", 0, 1000)
GAIN = ParamSpec("gain", T.FLOAT, 0.5, "a gain", 0.0, 2.5, unit="m/s")
FLAG = ParamSpec("flag", T.BOOL, False, "a flag")
MODE = ParamSpec("mode", T.STRING, "fast", "a mode", choices=("fast", "slow"))
NAME = ParamSpec("name", T.STRING, "", "any text")
POSE = ParamSpec("pose", T.FLOAT_ARRAY, [0.0, 0.0, 0.0], "x y yaw", -10.0, 10.0, length=3)
IDS = ParamSpec("ids", T.INT_ARRAY, [], "ids", 0, 9)
TAGS = ParamSpec("tags", T.STRING_ARRAY, [], "tags", choices=("a", "b"))
SCHEMA = (COUNT, GAIN, FLAG, MODE, NAME, POSE, IDS, TAGS)


def _raises(spec: ParamSpec, value) -> str:
    with pytest.raises(ParameterError) as e:
        validate_value(spec, value)
    msg = str(e.value)
    assert f"'{spec.name}" in msg
    assert "accepted: " + spec.accepted() in msg
    return msg


# ---------------------------------------------------------------------------- values
def test_bool() -> None:
    assert validate_value(FLAG, True) is True
    assert validate_value(FLAG, False) is False
    for bad in (1, 0, "true", None, 1.0):
        assert "wrong type" in _raises(FLAG, bad)


def test_int() -> None:
    assert validate_value(COUNT, 0) == 0
    assert validate_value(COUNT, 1000) == 1000
    assert type(validate_value(COUNT, 7)) is int
    for bad in (True, False, 3.0, "3", None):      # bool is not int; no float for int
        assert "wrong type" in _raises(COUNT, bad)
    for out in (-1, 1001, 10**12):
        msg = _raises(COUNT, out)
        assert "out of range" in msg and "in [0, 1000]" in msg and "'count'" in msg


def test_float() -> None:
    v = validate_value(GAIN, 2)                     # int accepted for float, converted
    assert v == 2.0 and type(v) is float
    assert validate_value(GAIN, 2.5) == 2.5
    assert validate_value(GAIN, 0.0) == 0.0
    assert "wrong type" in _raises(GAIN, True)      # bool is not a number here
    assert "wrong type" in _raises(GAIN, "1.0")
    for nf in (math.nan, math.inf, -math.inf):
        assert "not finite" in _raises(GAIN, nf)
    msg = _raises(GAIN, 2.5000001)
    assert "in [0, 2.5] m/s" in msg and "'gain'" in msg
    assert "in [0, 2.5]" in _raises(GAIN, -1e-9)


def test_float_unbounded_side() -> None:
    lo = ParamSpec("lo", T.FLOAT, 1.0, "only a lower bound", min_value=0.5)
    assert lo.accepted() == "float in [0.5, inf]"
    assert validate_value(lo, 1e300) == 1e300
    assert "in [0.5, inf]" in _raises(lo, 0.4)
    free = ParamSpec("free", T.FLOAT, 1.0, "no bounds")
    assert free.accepted() == "float"
    assert validate_value(free, -1e300) == -1e300
    assert "not finite" in _raises(free, math.nan)


def test_string_and_choices() -> None:
    assert validate_value(NAME, "anything") == "anything"
    assert validate_value(MODE, "slow") == "slow"
    assert "wrong type" in _raises(NAME, 3)
    msg = _raises(MODE, "medium")
    assert "'medium' is not accepted" in msg and "one of 'fast', 'slow'" in msg


def test_arrays() -> None:
    assert validate_value(POSE, [1, 2.5, -3]) == [1.0, 2.5, -3.0]
    assert all(type(x) is float for x in validate_value(POSE, (1, 2, 3)))
    assert validate_value(IDS, []) == []
    assert validate_value(IDS, [0, 9, 4]) == [0, 9, 4]
    assert validate_value(TAGS, ["b", "a"]) == ["b", "a"]
    for n in (2, 4):
        msg = _raises(POSE, [0.0] * n)
        assert f"has {n} elements" in msg and "of length 3" in msg
    assert "element [1]" in _raises(POSE, [0.0, 11.0, 0.0])
    assert "element [2]" in _raises(POSE, [0.0, 0.0, math.nan])
    assert "wrong type" in _raises(POSE, [0.0, True, 0.0])
    assert "wrong type" in _raises(POSE, 1.0)
    assert "wrong type" in _raises(IDS, [1, 2.0])
    assert "element [0]" in _raises(IDS, [10])
    assert "'tags[1]'" in _raises(TAGS, ["a", "c"])
    assert "wrong type" in _raises(TAGS, ["a", 1])


def test_spec_construction_checks() -> None:
    with pytest.raises(ValueError, match="needs a description"):
        ParamSpec("x", T.INT, 0, "")
    with pytest.raises(ParameterError, match="in \\[1, 5\\]"):
        ParamSpec("x", T.INT, 0, "default out of range", 1, 5)
    assert POSE.accepted() == "float[] of length 3 in [-10, 10]"


# ---------------------------------------------------------------------------- many values
def test_validate_params_fills_defaults_and_converts() -> None:
    out = validate_params(SCHEMA, {"count": 5, "gain": 1, "use_sim_time": True})
    assert out == {"count": 5, "gain": 1.0, "flag": False, "mode": "fast", "name": "",
                   "pose": [0.0, 0.0, 0.0], "ids": [], "tags": []}
    assert "use_sim_time" not in out


def test_validate_params_unknown_lists_declared_names() -> None:
    with pytest.raises(ConfigError) as e:
        validate_params(SCHEMA, {"gian": 1.0}, file="p.yaml", node="ctl")
    err = e.value
    assert err.file == "p.yaml" and err.where == "ctl.ros__parameters.gian"
    assert "unknown parameter 'gian'" in str(err)
    assert "declares: count, flag, gain, ids, mode, name, pose, tags" in str(err)
    assert str(err).startswith("p.yaml: ctl.ros__parameters.gian: ")
    with pytest.raises(ConfigError, match="unknown parameter 'use_sim_time'"):
        validate_params(SCHEMA, {"use_sim_time": True}, allow_unknown=())


def test_validate_params_bad_value_carries_file_and_key() -> None:
    with pytest.raises(ConfigError) as e:
        validate_params(SCHEMA, {"count": 5000}, file=Path("cfg/a.yaml"), node="ctl")
    assert e.value.file == "cfg/a.yaml" and e.value.where == "ctl.ros__parameters.count"
    assert "in [0, 1000]" in str(e.value)
    with pytest.raises(ConfigError) as e:
        validate_params(SCHEMA, {"flag": 1})
    assert e.value.file is None and e.value.where == "flag"


# ---------------------------------------------------------------------------- files
def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def test_load_params_file_flattens_nested(tmp_path: Path) -> None:
    p = _write(tmp_path, """
ctl:
  ros__parameters:
    count: 4
    limits:
      speed:
        max: 1.5
        min: -0.5
      turn: 2
    tags: [a, b]
other:
  ros__parameters: {}
""")
    got = load_params_file(p)
    assert got == {"ctl": {"count": 4, "limits.speed.max": 1.5, "limits.speed.min": -0.5,
                           "limits.turn": 2, "tags": ["a", "b"]},
                   "other": {}}


@pytest.mark.parametrize("text, where, what", [
    ("ctl:\n  count: 4\n", "ctl", "expected 'ros__parameters:'"),
    ("ctl: 3\n", "ctl", "expected 'ros__parameters:'"),
    ("ctl:\n  ros__parameters: {}\n  extra: 1\n", "ctl", "unexpected keys ['extra']"),
    ("ctl:\n  ros__parameters: [1, 2]\n", "ctl.ros__parameters", "must be a mapping"),
    ("- a\n- b\n", None, "must be a mapping of node names"),
])
def test_load_params_file_rejects_malformed(tmp_path: Path, text: str, where, what: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_params_file(p)
    assert e.value.file == str(p) and e.value.where == where
    assert what in str(e.value)


def test_node_params_from_file_merges_wildcard_and_node(tmp_path: Path) -> None:
    p = _write(tmp_path, """
/**:
  ros__parameters:
    count: 1
    gain: 0.25
    use_sim_time: true
ctl:
  ros__parameters:
    count: 7
    mode: slow
other:
  ros__parameters:
    gain: 2.0
""")
    out = node_params_from_file(p, "ctl", SCHEMA)
    assert out["count"] == 7          # the node's section wins over /**
    assert out["gain"] == 0.25        # from /**; 'other' does not leak in
    assert out["mode"] == "slow"
    assert out["flag"] is False       # default
    assert node_params_from_file(p, "/other", SCHEMA)["gain"] == 2.0
    assert node_params_from_file(p, "absent", SCHEMA)["count"] == 1


def test_node_params_from_file_reports_file_and_key(tmp_path: Path) -> None:
    p = _write(tmp_path, "ctl:\n  ros__parameters:\n    gain: 9.0\n")
    with pytest.raises(ConfigError) as e:
        node_params_from_file(p, "ctl", SCHEMA)
    assert e.value.file == str(p) and e.value.where == "ctl.ros__parameters.gain"
    assert "in [0, 2.5] m/s" in str(e.value)


# ---------------------------------------------------------------------------- shipped schemas
@pytest.mark.parametrize("schema", [simulator.SCHEMA, navigation.SCHEMA],
                         ids=["simulator", "navigation"])
def test_node_schemas_are_documented_and_valid(schema: tuple[ParamSpec, ...]) -> None:
    assert len(schema) >= 10
    names = [s.name for s in schema]
    assert len(set(names)) == len(names)
    for spec in schema:
        assert isinstance(spec.type, ParamType)
        assert len(spec.description) >= 8, spec.name
        assert validate_value(spec, spec.default) == spec.default, spec.name
    defaults = validate_params(schema, {})
    assert defaults == {s.name: s.default for s in schema}


def test_shipped_sim_yaml_validates() -> None:
    path = data_path("config", "sim.yaml")
    assert "simulator" in load_params_file(path)
    p = node_params_from_file(path, "simulator", simulator.SCHEMA)
    assert p["world"] == "substation"
    assert p["time_step_s"] == pytest.approx(1.0 / 240.0)
    assert (p["camera_width"], p["camera_height"]) == (320, 240)
    assert p["cmd_timeout_s"] == 0.5 and p["seed"] == 0
    assert set(p) == {s.name for s in simulator.SCHEMA}


def test_dataclass_from_params_takes_named_fields_and_turns_lists_into_tuples() -> None:
    import dataclasses

    from sitebot.config.params import dataclass_from_params, fields_from_params

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        speed_mps: float = 0.5
        sections: tuple[str, ...] = ("a",)
        spawn: tuple[float, float, float] = (0.0, 0.0, 0.0)

    p = {"speed_mps": 0.25, "sections": ["x", "y"], "unrelated": 3, "spawn": [9, 9, 9]}
    assert fields_from_params(Cfg, p, exclude=("spawn",)) == {"speed_mps": 0.25,
                                                              "sections": ("x", "y")}
    c = dataclass_from_params(Cfg, p, spawn=(1.0, 2.0, 3.0))
    assert c == Cfg(0.25, ("x", "y"), (1.0, 2.0, 3.0))
    # a prefix selects a group of parameters; absent fields keep their defaults
    assert dataclass_from_params(Cfg, {"approach_speed_mps": 0.08}, "approach_") == Cfg(0.08)
