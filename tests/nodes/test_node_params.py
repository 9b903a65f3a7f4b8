"""declare_schema (sitebot.nodes.common) on a real rclpy node, in process: start-up overrides
and runtime set_parameters are validated by the schema."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import rclpy
import rclpy.context
from rclpy.node import Node
from rclpy.parameter import Parameter

from sitebot.config.params import ParamSpec, ParamType
from sitebot.errors import ParameterError
from sitebot.nodes.common import declare_schema

T = ParamType
SCHEMA = (
    ParamSpec("gain", T.FLOAT, 1.0, "a gain", 0.0, 10.0, unit="m/s"),
    ParamSpec("count", T.INT, 3, "a count", 0, 1000),
    ParamSpec("mode", T.STRING, "fast", "a mode", choices=("fast", "slow")),
    ParamSpec("pose", T.FLOAT_ARRAY, [0.0, 0.0, 0.0], "x y yaw", -10.0, 10.0, length=3),
    ParamSpec("names", T.STRING_ARRAY, [], "robot names"),
    ParamSpec("frame", T.STRING, "map", "a fixed frame", read_only=True),
)


@pytest.fixture
def make_node() -> Iterator:
    made: list[tuple[rclpy.context.Context, Node]] = []

    def make(*overrides: tuple[str, Any]) -> Node:
        ctx = rclpy.context.Context()
        rclpy.init(context=ctx)
        node = Node("probe", context=ctx,
                    parameter_overrides=[Parameter(n, value=v) for n, v in overrides])
        made.append((ctx, node))
        return node

    yield make
    for ctx, node in made:
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_defaults(make_node) -> None:
    node = make_node()
    values = declare_schema(node, SCHEMA)
    assert values == {"gain": 1.0, "count": 3, "mode": "fast", "pose": [0.0, 0.0, 0.0],
                      "names": [], "frame": "map"}
    assert node.get_parameter("count").value == 3
    d = node.describe_parameters(["gain"])[0]
    assert d.floating_point_range[0].from_value == 0.0
    assert d.floating_point_range[0].to_value == 10.0
    assert d.additional_constraints == "accepted: float in [0, 10] m/s"
    assert d.description == "a gain [m/s]"


@pytest.mark.parametrize("name, value, text", [
    ("gain", 20.0, "in [0, 10] m/s"),       # rclpy's own range check refuses it
    ("gain", 20, "in [0, 10] m/s"),         # int for float: reaches the schema
    ("count", 2000, "in [0, 1000]"),
    ("count", -1, "in [0, 1000]"),
    ("mode", "medium", "one of 'fast', 'slow'"),
    ("pose", [0.0, 11.0, 0.0], "in [-10, 10]"),
    ("pose", [0.0, 1.0], "of length 3"),
])
def test_invalid_override_raises(make_node, name: str, value: Any, text: str) -> None:
    node = make_node((name, value))
    with pytest.raises(ParameterError) as e:
        declare_schema(node, SCHEMA)
    msg = str(e.value)
    assert f"parameter '{name}'" in msg and "node 'probe'" in msg
    assert text in msg


def test_int_override_for_float_is_accepted_as_float(make_node) -> None:
    node = make_node(("gain", 3), ("pose", [1.0, 2.0, 0.5]), ("names", ["a", "b"]))
    values = declare_schema(node, SCHEMA)
    assert values["gain"] == 3.0 and type(values["gain"]) is float
    assert values["pose"] == [1.0, 2.0, 0.5]
    assert values["names"] == ["a", "b"]


def test_runtime_out_of_range_is_refused(make_node) -> None:
    node = make_node()
    changes: list[dict] = []
    values = declare_schema(node, SCHEMA, on_change=changes.append)
    # a double outside the range: refused (by rclpy's descriptor range, which names the bounds)
    r = node.set_parameters([Parameter("gain", value=20.0)])[0]
    assert r.successful is False
    assert "gain" in r.reason and "0.0" in r.reason and "10.0" in r.reason
    # an integer outside the range of a float parameter: refused by the schema
    r = node.set_parameters([Parameter("gain", value=30)])[0]
    assert r.successful is False
    assert "'gain'" in r.reason and "in [0, 10] m/s" in r.reason
    r = node.set_parameters([Parameter("count", value=1001)])[0]
    assert r.successful is False
    assert "count" in r.reason and "1000" in r.reason
    r = node.set_parameters([Parameter("mode", value="medium")])[0]
    assert r.successful is False and "one of 'fast', 'slow'" in r.reason
    r = node.set_parameters([Parameter("gain", value="fast")])[0]   # wrong type
    assert r.successful is False and "wrong type" in r.reason
    assert node.get_parameter("gain").value == 1.0
    assert node.get_parameter("count").value == 3
    assert node.get_parameter("mode").value == "fast"
    assert values["gain"] == 1.0 and values["count"] == 3 and values["mode"] == "fast"
    assert changes == []


def test_runtime_valid_change_reaches_callback(make_node) -> None:
    node = make_node()
    changes: list[dict] = []
    values = declare_schema(node, SCHEMA, on_change=changes.append)
    r = node.set_parameters([Parameter("gain", value=2.5)])[0]
    assert r.successful is True
    assert changes == [{"gain": 2.5}]
    assert node.get_parameter("gain").value == 2.5 and values["gain"] == 2.5
    r = node.set_parameters([Parameter("gain", value=4)])[0]        # int for float
    assert r.successful is True
    assert changes[-1] == {"gain": 4.0} and type(changes[-1]["gain"]) is float
    r = node.set_parameters_atomically([Parameter("count", value=10),
                                        Parameter("mode", value="slow")])
    assert r.successful is True
    assert changes[-1] == {"count": 10, "mode": "slow"}
    assert values["count"] == 10 and values["mode"] == "slow"
    assert len(changes) == 3


def test_read_only_is_refused(make_node) -> None:
    node = make_node(("frame", "odom"))      # a start-up value is fine
    changes: list[dict] = []
    values = declare_schema(node, SCHEMA, on_change=changes.append)
    assert values["frame"] == "odom"
    r = node.set_parameters([Parameter("frame", value="world")])[0]
    assert r.successful is False
    assert "read-only" in r.reason and "frame" in r.reason
    assert node.get_parameter("frame").value == "odom"
    assert changes == []


def test_time_and_duration_carry_a_rounded_up_second() -> None:
    # 28.9999999999996 s rounds to 29 s 0 ns; without the carry the nanoseconds wrap to 0
    # and the second is lost (time_from_start would step back by 1 s)
    from sitebot.nodes.convert import from_time, to_duration, to_time

    d = to_duration(28.9999999999996)
    assert (d.sec, d.nanosec) == (29, 0)
    t = to_time(1.25)
    assert (t.sec, t.nanosec) == (1, 250_000_000)
    assert from_time(to_time(3.000000001)) == 3.000000001
    d = to_duration(0.3)
    assert (d.sec, d.nanosec) == (0, 300_000_000)
