"""The supervisor's parameter schema and config: every parameter described and ranged,
defaults consistent, validation errors name the parameter."""
from __future__ import annotations

from dataclasses import fields

import pytest

from sitebot.config.params import ParamType
from sitebot.errors import ConfigError, SitebotError
from sitebot.safety.config import NODE_SCHEMA, SCHEMA, SafetyConfig, safety_config_from_params
from sitebot.types import Mode


def test_schema_matches_config_and_defaults():
    names = [s.name for s in SCHEMA]
    assert len(names) == len(set(names))
    assert set(names) == {f.name for f in fields(SafetyConfig)}
    cfg = SafetyConfig()
    for spec in SCHEMA:
        value = getattr(cfg, spec.name)
        assert (list(value) if isinstance(value, tuple) else value) == spec.default, spec.name
        assert len(spec.description) > 15, spec.name
        if spec.type in (ParamType.FLOAT, ParamType.INT):
            assert spec.min_value is not None and spec.max_value is not None, spec.name


def test_contract_defaults():
    cfg = SafetyConfig()
    assert cfg.person_speed_mps == 1.6
    assert cfg.reduced_max_linear_mps == 0.25
    assert cfg.estop_min_latch_s == 5.0
    assert cfg.protective_stop_category == 2
    assert cfg.footprint_radius_m == 0.4
    assert cfg.start_mode is Mode.AUTOMATIC
    assert cfg.mode_limits(Mode.MANUAL).max_linear_mps == 0.5


def test_from_params():
    cfg = safety_config_from_params({"estop_category": 0, "heartbeat_nodes": ["nav"],
                                     "arm_keep_out_boxes": [0, 0, 0, 1, 1, 1],
                                     "use_sim_time": True})
    assert cfg.estop_category == 0 and cfg.heartbeat_nodes == ("nav",)
    assert cfg.keep_out_boxes() == ((0.0, 0.0, 0.0, 1.0, 1.0, 1.0),)
    assert cfg.as_params()["heartbeat_nodes"] == ["nav"]


@pytest.mark.parametrize("params,fragment", [
    ({"estop_category": 2}, "estop_category"),
    ({"person_speed_mps": -1.0}, "person_speed_mps"),
    ({"battery_policy": "panic"}, "'finish', 'return'"),
    ({"braking_decel_mps2": float("nan")}, "not finite"),
    ({"person_min_width_m": 0.9}, "person_max_width_m"),
    ({"arm_keep_out_boxes": [0, 0, 0, 1, 1]}, "multiple of 6"),
    ({"arm_keep_out_boxes": [1, 0, 0, 0, 1, 1]}, "min < max"),
    ({"manual_max_linear_mps": 2.0}, "auto_max_linear_mps"),
    ({"heartbeat_nodes": ["a", "a"]}, "unique"),
])
def test_invalid_params(params, fragment):
    with pytest.raises(SitebotError) as e:
        safety_config_from_params(params)
    assert fragment in str(e.value)
    assert next(iter(params)) in str(e.value)          # the parameter is named


def test_unknown_param_lists_declared():
    with pytest.raises(ConfigError, match="unknown parameter 'speed'"):
        safety_config_from_params({"speed": 1.0})


def test_node_schema_is_separate_with_its_defaults():
    core = {s.name for s in SCHEMA}
    node = {s.name: s for s in NODE_SCHEMA}
    assert len(node) == len(NODE_SCHEMA) and not core & set(node)
    assert node["static_map_resolution_m"].default == 0.1
    assert (node["static_map_resolution_m"].min_value,
            node["static_map_resolution_m"].max_value) == (0.02, 1.0)
    assert node["static_match_m"].default == 0.25
    assert node["localization_source"].default == "dead_reckoning"
    assert "until" not in node["localization_source"].description
