"""Site registry: the shipped registries load; every rejection rule names file and key."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.config.yamlio import load_yaml
from sitebot.errors import ConfigError, RegistryError
from sitebot.paths import data_path
from sitebot.site.geometry import point_in_polygon, polygon_self_intersection
from sitebot.site.loader import load_registry, parse_registry
from sitebot.site.registry import AssetKind, ObjectKind, ZoneKind, normalize_name
from sitebot.types import Pose2D

SHIPPED = ("substation", "construction", "datacentre")

BASE: dict[str, Any] = {
    "site": "testsite",
    "frame": "map",
    "places": [
        {"id": "p1", "name": "place one", "aliases": ["first place"], "pose": [0.0, 0.0, 0.0]},
        {"id": "p2", "name": "place two", "pose": [5.0, 0.0, 3.14]},
        {"id": "dock_place", "name": "dock place", "pose": [-5.0, 0.0, 0.0]},
    ],
    "assets": [
        {"id": "g1", "name": "pressure gauge", "kind": "gauge", "place": "p1",
         "gauge": {"unit": "bar", "min_value": 0, "max_value": 10}, "fiducial": 1},
        {"id": "v1", "name": "valve one", "kind": "valve", "place": "p2", "fiducial": 2},
        {"id": "panel1", "name": "panel", "kind": "panel", "place": "p2"},
    ],
    "objects": [{"id": "drill", "name": "drill", "kind": "tool", "place": "p1"}],
    "zones": [
        {"id": "pit", "name": "pit", "kind": "keep_out",
         "polygon": [[10, 10], [12, 10], [12, 12], [10, 12]]},
        {"id": "slow1", "name": "slow area", "kind": "slow",
         "polygon": [[-1, -1], [1, -1], [1, 1], [-1, 1]], "max_speed": 0.5},
        {"id": "r1", "name": "restricted area", "kind": "restricted",
         "polygon": [[4, -1], [6, -1], [6, 1], [4, 1]], "roles": ["supervisor"]},
    ],
    "routes": [{"id": "round", "name": "round", "waypoints": ["p1", "p2"]}],
    "docks": [{"id": "dock1", "place": "dock_place"}],
}


def write(tmp_path: Path, data: Any, name: str = "test.site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def reject(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> RegistryError:
    data = copy.deepcopy(BASE)
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    err = info.value
    assert err.file == str(path)
    assert str(path) in str(err)
    return err


# --------------------------------------------------------------------------- shipped files
@pytest.mark.parametrize("site", SHIPPED)
def test_shipped_registry_loads(site: str) -> None:
    reg = load_registry(data_path("worlds", f"{site}.site.yaml"))
    assert reg.site == site
    assert reg.frame == "map"
    assert len(reg.places) >= 10
    assert len(reg.assets) >= 10
    assert len(reg.docks) == 1
    assert len(reg.routes) >= 2
    assert len(reg.gauges) >= 3
    kinds = {z.kind for z in reg.zones}
    assert kinds == {ZoneKind.KEEP_OUT, ZoneKind.SLOW, ZoneKind.RESTRICTED}
    # every asset carries a distinct fiducial
    tags = [a.fiducial for a in reg.assets]
    assert None not in tags
    assert len(set(tags)) == len(tags)
    n = (len(reg.places) + len(reg.assets) + len(reg.objects) + len(reg.zones)
         + len(reg.routes) + len(reg.docks))
    assert len(reg.all_ids) == n


def test_substation_lookups() -> None:
    reg = load_registry(data_path("worlds", "substation.site.yaml"))
    g = reg.asset("t1_oil_pressure_gauge")
    assert g.kind is AssetKind.GAUGE
    assert g.gauge is not None and (g.gauge.unit, g.gauge.min_value, g.gauge.max_value) == \
        ("bar", 0.0, 2.5)
    assert reg.by_name("the T1 pressure gauge") is g
    assert reg.by_name("  t1   PRESSURE gauge ") is g
    assert reg.by_name("no such thing") is None
    assert reg.asset_by_fiducial(3) is g
    assert reg.place(g.place).pose == Pose2D(-6.0, -6.9, -1.5708)
    x, y, yaw = reg.place("t1_bay").pose
    assert (x, y, yaw) == (-6.0, -6.9, -1.5708)
    assert {a.id for a in reg.assets_at("t1_bay")} == {"t1", "t1_oil_temp_gauge",
                                                        "t1_oil_pressure_gauge"}
    assert reg.dock_place("dock1").id == "dock_bay"
    assert reg.route("transformer_patrol").waypoints == ("t1_bay", "t2_bay", "t3_bay")
    assert reg.object("voltage_detector").kind is ObjectKind.TOOL
    # zones_at: inside the HV yard, the transformer slow zone, the breaker bay, and nowhere
    assert [z.id for z in reg.zones_at(7.5, 8.0)] == ["hv_keep_out"]
    slow = reg.zones_at(0.0, -6.9)
    assert [z.id for z in slow] == ["transformer_slow_zone"]
    assert slow[0].max_speed_mps == 0.5
    assert reg.zones_at(-2.75, 5.0)[0].roles == ("supervisor",)
    assert reg.zones_at(-12.0, -12.0) == ()
    with pytest.raises(KeyError, match="t1_bay"):
        reg.asset("t1_bay")   # a place, not an asset; message lists the assets
    assert "t1_bay" in reg and "nothing" not in reg


def test_construction_objects_and_datacentre_roles() -> None:
    con = load_registry(data_path("worlds", "construction.site.yaml"))
    assert {o.id for o in con.objects_at("tool_crib")} == {
        "drill", "wrench", "torque_wrench", "tape_measure", "toolbox"}
    dc = load_registry(data_path("worlds", "datacentre.site.yaml"))
    ups = dc.zone("ups_room_zone")
    assert ups.kind is ZoneKind.RESTRICTED and set(ups.roles) == {"supervisor", "electrician"}
    assert ups.contains(dc.place("ups_a_stand").x, dc.place("ups_a_stand").y)
    assert not ups.contains(dc.place("ups_room_entrance").x, dc.place("ups_room_entrance").y)
    assert math.isclose(dc.zone("open_floor_tile").area_m2, 1.44)


def test_parse_registry_from_data() -> None:
    reg = parse_registry(copy.deepcopy(BASE), file="mem.yaml")
    assert reg.file == Path("mem.yaml")
    assert len(reg.all_ids) == 12
    assert reg.zone("slow1").max_speed_mps == 0.5


# --------------------------------------------------------------------------- rejections
def test_reject_missing_required_field(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["places"][1].pop("name"))
    assert err.where == "places[1].name"
    assert "missing" in err.message


def test_reject_wrong_type(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["places"][0].__setitem__("pose", "north"))
    assert err.where == "places[0].pose"
    assert "[x, y, yaw]" in err.message


def test_reject_non_finite_pose(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["places"][0].__setitem__("pose", [0.0, float("nan"), 0]))
    assert err.where == "places[0].pose[1]"
    assert "finite" in err.message


def test_reject_unknown_top_level_key(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d.__setitem__("gates", []))
    assert err.where == "gates"
    assert "places" in err.message and "docks" in err.message   # lists accepted keys


def test_reject_unknown_key_in_entity(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][0].__setitem__("colour", "red"))
    assert err.where == "assets[0].colour"


def test_reject_unknown_asset_kind(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][1].__setitem__("kind", "lamp"))
    assert err.where == "assets[1].kind"
    for kind in AssetKind:
        assert kind.value in err.message


def test_reject_unknown_zone_and_object_kind(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["zones"][0].__setitem__("kind", "danger"))
    assert err.where == "zones[0].kind"
    assert "keep_out, slow, restricted" in err.message
    err = reject(tmp_path, lambda d: d["objects"][0].__setitem__("kind", "gadget"))
    assert err.where == "objects[0].kind"
    assert "tool, part, container, other" in err.message


def test_reject_duplicate_id_across_sections(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["objects"][0].__setitem__("id", "p1"))
    assert err.where == "objects[0].id"
    assert "places[0]" in err.message


def test_reject_bad_id(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["places"][2].__setitem__("id", "Dock Place"))
    assert err.where == "places[2].id"
    assert "snake_case" in err.message


def test_reject_dangling_asset_place(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][2].__setitem__("place", "nowhere"))
    assert err.where == "assets[2].place"
    assert "nowhere" in err.message and "p1" in err.message


def test_reject_dangling_object_place(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["objects"][0].__setitem__("place", "shed"))
    assert err.where == "objects[0].place"


def test_reject_dangling_route_waypoint(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["routes"][0]["waypoints"].__setitem__(1, "nowhere"))
    assert err.where == "routes[0].waypoints[1]"


def test_reject_dangling_dock_place(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["docks"][0].__setitem__("place", "nowhere"))
    assert err.where == "docks[0].place"


def test_reject_gauge_without_gauge_block(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][0].pop("gauge"))
    assert err.where == "assets[0].gauge"


def test_reject_gauge_min_not_below_max(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][0]["gauge"].__setitem__("max_value", 0))
    assert err.where == "assets[0].gauge.max_value"
    assert "less than" in err.message


def test_reject_gauge_block_on_non_gauge(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][1].__setitem__(
        "gauge", {"unit": "bar", "min_value": 0, "max_value": 1}))
    assert err.where == "assets[1].gauge"


def test_reject_slow_zone_speed(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["zones"][1].pop("max_speed"))
    assert err.where == "zones[1].max_speed"
    err = reject(tmp_path, lambda d: d["zones"][1].__setitem__("max_speed", 0.0))
    assert err.where == "zones[1].max_speed"
    assert "> 0" in err.message


def test_reject_restricted_zone_without_roles(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["zones"][2].pop("roles"))
    assert err.where == "zones[2].roles"
    err = reject(tmp_path, lambda d: d["zones"][2].__setitem__("roles", []))
    assert err.where == "zones[2].roles"


def test_reject_polygon_too_few_vertices(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["zones"][0].__setitem__("polygon", [[0, 0], [1, 0]]))
    assert err.where == "zones[0].polygon"
    assert "at least 3" in err.message


def test_reject_polygon_non_finite_vertex(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["zones"][0]["polygon"].__setitem__(
        2, [float("inf"), 12.0]))
    assert err.where == "zones[0].polygon[2][0]"


def test_reject_self_intersecting_polygon(tmp_path: Path) -> None:
    bow_tie = [[10, 10], [12, 12], [12, 10], [10, 12]]
    err = reject(tmp_path, lambda d: d["zones"][0].__setitem__("polygon", bow_tie))
    assert err.where == "zones[0].polygon"
    assert "self-intersects" in err.message


def test_reject_zero_area_polygon(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["zones"][0].__setitem__(
        "polygon", [[0, 0], [1, 1], [2, 2]]))
    assert err.where == "zones[0].polygon"


def test_reject_place_inside_keep_out(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["places"][1].__setitem__("pose", [11.0, 11.0, 0.0]))
    assert err.where == "places[1].pose"
    assert "pit" in err.message


def test_reject_alias_collision(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["objects"][0].__setitem__(
        "aliases", ["cordless drill", "The  Pressure Gauge"]))
    assert err.where == "objects[0].aliases[1]"
    assert "g1" in err.message
    err = reject(tmp_path, lambda d: d["routes"][0].__setitem__("name", "Place One"))
    assert err.where == "routes[0].name"


def test_reject_duplicate_fiducial(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["assets"][1].__setitem__("fiducial", 1))
    assert err.where == "assets[1].fiducial"
    err = reject(tmp_path, lambda d: d["assets"][1].__setitem__("fiducial", 587))
    assert err.where == "assets[1].fiducial"
    assert "<= 586" in err.message


MARKER = {"tag": 7, "size": 0.16, "pose": [1.0, 2.0, 1.2, 0.5]}


def test_marker_survey_keys_are_optional_and_loaded(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["markers"] = [dict(MARKER),
                       dict(MARKER, tag=8, draft=True, std=[0.01, 0.02, 0.005, 0.0],
                            sightings=14),
                       dict(MARKER, tag=9, draft=False, sightings=0)]
    reg = load_registry(write(tmp_path, data))
    plain, draft, confirmed = reg.markers
    assert (plain.draft, plain.std, plain.sightings) == (False, None, None)
    assert (draft.draft, draft.std, draft.sightings) == (True, (0.01, 0.02, 0.005, 0.0), 14)
    assert (confirmed.draft, confirmed.sightings) == (False, 0)
    assert (draft.x, draft.y, draft.z, draft.yaw, draft.size_m) == (1.0, 2.0, 1.2, 0.5, 0.16)


@pytest.mark.parametrize("key,value,where,words", [
    ("draft", "yes", "markers[0].draft", "bool"),
    ("std", [0.01, 0.01, 0.01], "markers[0].std", "[sx, sy, sz, syaw]"),
    ("std", 0.01, "markers[0].std", "[sx, sy, sz, syaw]"),
    ("std", [0.01, -0.02, 0.01, 0.01], "markers[0].std[1]", ">= 0"),
    ("std", [0.01, 0.01, float("inf"), 0.01], "markers[0].std[2]", "finite"),
    ("std", [0.01, 0.01, 0.01, float("nan")], "markers[0].std[3]", "finite"),
    ("sightings", -1, "markers[0].sightings", ">= 0"),
    ("sightings", 2.5, "markers[0].sightings", "int"),
    ("sightings", True, "markers[0].sightings", "int"),
    ("surveyed", True, "markers[0].surveyed", "draft, std, sightings"),
])
def test_reject_bad_marker_survey_keys(tmp_path: Path, key: str, value: Any, where: str,
                                       words: str) -> None:
    err = reject(tmp_path, lambda d: d.__setitem__("markers", [dict(MARKER, **{key: value})]))
    assert err.where == where
    assert words in err.message


def test_reject_route_with_one_waypoint(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["routes"][0].__setitem__("waypoints", ["p1"]))
    assert err.where == "routes[0].waypoints"


def test_reject_empty_and_non_mapping_document(tmp_path: Path) -> None:
    path = tmp_path / "empty.site.yaml"
    path.write_text("")
    with pytest.raises(RegistryError, match="empty"):
        load_registry(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(RegistryError, match="mapping"):
        load_registry(path)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.site.yaml"
    path.write_text("site: x\nplaces:\n  - {id: a, name: b\n  - c\n")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert isinstance(info.value.where, int) and info.value.where >= 3
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError) as info2:
        load_yaml(path)
    assert type(info2.value) is ConfigError


def test_duplicate_yaml_key_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.site.yaml"
    path.write_text("site: x\nplaces: []\nzones: []\nplaces: []\n")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert info.value.where == 4
    assert "duplicate key 'places' (first on line 2)" in info.value.message
    # merge keys are not duplicates
    path.write_text("a: &base {x: 1, y: 2}\nb:\n  <<: *base\n  x: 3\n")
    assert load_yaml(path) == {"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 2}}


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.site.yaml"
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert info.value.file == str(path)
    assert "not found" in info.value.message


# --------------------------------------------------------------------------- geometry, names
@settings(max_examples=200, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5))
def test_point_in_rectangle_matches_bounds(x: float, y: float) -> None:
    rect = [(-1.0, -2.0), (3.0, -2.0), (3.0, 1.5), (-1.0, 1.5)]
    assert point_in_polygon(x, y, rect) == (-1.0 <= x <= 3.0 and -2.0 <= y <= 1.5)


def test_polygon_self_intersection_cases() -> None:
    assert polygon_self_intersection([(0, 0), (2, 0), (2, 2), (0, 2)]) is None
    assert polygon_self_intersection([(0, 0), (2, 2), (2, 0), (0, 2)]) == (0, 2)
    # concave but simple (an L) is fine
    assert polygon_self_intersection([(0, 0), (3, 0), (3, 1), (1, 1), (1, 3), (0, 3)]) is None


@given(st.text(max_size=30))
def test_normalize_name_is_idempotent(text: str) -> None:
    once = normalize_name(text)
    assert normalize_name(once) == once or once.startswith(("the ", "a ", "an "))


def test_object_size_is_loaded_and_checked(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["objects"][0]["size"] = [0.3, 0.03, 0.06]
    reg = parse_registry(data, file="mem.yaml")
    obj = reg.object(data["objects"][0]["id"])
    assert obj.size == (0.3, 0.03, 0.06) and obj.narrowest_m == 0.03
    for bad, words in (([0.3, 0.0, 0.06], "(0, 20]"), ([0.3, 0.03], "[length, width, height]"),
                       ([0.3, float("inf"), 0.1], "finite")):
        err = reject(tmp_path, lambda d: d["objects"][0].__setitem__("size", bad))
        assert err.where.startswith("objects[0].size"), err.where
        assert words in err.message, err.message
