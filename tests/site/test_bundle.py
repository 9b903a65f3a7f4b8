"""Site bundles: the nav2 map format read as nav2_map_server reads it, the bundle's checks
(each bad bundle is one error naming file and key), the initial pose, and the shipped
bundles as fresh exports of the worlds."""
from __future__ import annotations

import filecmp
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sitebot.errors import BundleError, ConfigError
from sitebot.paths import data_path
from sitebot.sim.export import export_all, export_bundle
from sitebot.sim.world_loader import available_worlds, load_world
from sitebot.site.bundle import installed_sites, load_bundle, resolve_site
from sitebot.site.mapfile import load_map, save_map
from sitebot.site.occupancy import OccupancyGrid, inflate, resample
from sitebot.types import Pose2D


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    """A fresh export of the substation (each test copies it before breaking it)."""
    return export_bundle("substation", tmp_path_factory.mktemp("sites") / "substation")


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


# ------------------------------------------------------------------ map files
def test_map_file_round_trip_and_nav2_semantics(tmp_path) -> None:
    v = np.zeros((4, 6), np.int8)
    v[0, 0], v[3, 5], v[2, 1] = 100, 100, -1        # row 0 = lowest y
    save_map(tmp_path / "m.yaml", v, 0.05, (-1.0, 2.0))
    m = load_map(tmp_path / "m.yaml")
    assert (m.width, m.height, m.resolution_m, m.origin_x, m.origin_y) == (6, 4, 0.05, -1.0, 2.0)
    assert np.array_equal(m.values, v)
    img = cv2.imread(str(tmp_path / "m.pgm"), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint8 and img[3, 0] == 0 and img[0, 5] == 0     # top row = high y
    assert set(np.unique(img).tolist()) == {0, 205, 254}          # nav2 map_saver's values
    # negate, scale and raw as nav2 reads them: grey 128 -> occupancy 0.498
    grey = np.full((2, 2), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    base = "image: g.png\nresolution: 0.1\norigin: [0, 0, 0]\noccupied_thresh: 0.65\nfree_thresh: 0.25\n"
    for extra, expect in (("negate: 0\n", -1), ("negate: 0\nmode: scale\n", 62),
                          ("negate: 1\nmode: trinary\n", -1), ("negate: 0\nmode: raw\n", -1)):
        (tmp_path / "g.yaml").write_text(base + extra)
        assert int(load_map(tmp_path / "g.yaml").values[0, 0]) == expect, extra
    cv2.imwrite(str(tmp_path / "g.png"), np.full((2, 2), 40, np.uint8))
    (tmp_path / "g.yaml").write_text(base + "negate: 0\nmode: raw\n")
    assert int(load_map(tmp_path / "g.yaml").values[0, 0]) == 40


@pytest.mark.parametrize("change,key,text", [
    (("image: map.pgm", "image: nothing.pgm"), "image", "does not exist"),
    (("resolution: 0.05", "resolution: fine"), "resolution", "must be a number"),
    (("resolution: 0.05", "resolution: -0.05"), "resolution", "must be > 0"),
    (("origin: [-15.0, -15.0, 0.0]", "origin: [-15.0, -15.0]"), "origin", "3 numbers"),
    (("origin: [-15.0, -15.0, 0.0]", "origin: [-15.0, -15.0, 0.7]"), "origin", "rotated"),
    (("negate: 0", "negate: 2"), "negate", "0 or 1"),
    (("free_thresh: 0.196", "free_thresh: 0.9"), "free_thresh", "smaller than occupied"),
    (("mode: trinary", "mode: fancy"), "mode", "unknown map mode"),
    (("negate: 0\n", ""), "negate", "missing required key"),
])
def test_a_bad_map_yaml_names_file_and_key(shipped, tmp_path, change, key, text) -> None:
    b = _copy(shipped, tmp_path)
    _edit(b / "map.yaml", *change)
    with pytest.raises(BundleError) as e:
        load_bundle(b)
    assert e.value.file.endswith("map.yaml") and e.value.where == key, str(e.value)
    assert text in str(e.value)


def test_a_corrupt_image_is_refused(shipped, tmp_path) -> None:
    b = _copy(shipped, tmp_path)
    (b / "map.pgm").write_bytes(b"P5\n600 600\n255\n" + b"\x00" * 10)
    with pytest.raises(BundleError, match="not a readable PGM/PNG/BMP image"):
        load_bundle(b)


# ------------------------------------------------------------------ bundle checks
def test_places_markers_zones_and_starts_are_checked_against_the_map(shipped, tmp_path) -> None:
    b = _copy(shipped, tmp_path)
    good = load_bundle(b)
    bench = good.registry.place("tool_bench")
    # a place inside an occupied cell: paint the tool bench's cell black
    img = cv2.imread(str(b / "map.pgm"), cv2.IMREAD_UNCHANGED)
    r = good.map.height - 1 - math.floor((bench.y - good.map.origin_y) / 0.05)
    c = math.floor((bench.x - good.map.origin_x) / 0.05)
    img[r, c] = 0
    cv2.imwrite(str(b / "map.pgm"), img)
    i = [p.id for p in good.registry.places].index("tool_bench")
    with pytest.raises(BundleError) as e:
        load_bundle(b)
    assert e.value.file.endswith("site.yaml") and e.value.where == f"places[{i}].pose"
    assert "occupied cell of map.yaml" in str(e.value)
    # a marker off the map
    b2 = _copy(shipped, tmp_path / "m")
    _edit(b2 / "site.yaml", "markers:\n", "markers:\n  - {tag: 586, size: 0.1, pose: [40.0, 0.0, 1.0, 0.0]}\n")
    with pytest.raises(BundleError) as e:
        load_bundle(b2)
    assert e.value.where == "markers[0].pose" and "off the map" in str(e.value)
    # a start in an occupied cell (inside a transformer) and an unknown start name
    b3 = _copy(shipped, tmp_path / "s")
    _edit(b3 / "bundle.yaml", "robot2: [-12.0, -10.0, 0.0]", "robot2: [0.0, -9.5, 0.0]")
    with pytest.raises(BundleError) as e:
        load_bundle(b3)
    assert e.value.file.endswith("bundle.yaml") and e.value.where == "starts.robot2"
    b4 = _copy(shipped, tmp_path / "d")
    _edit(b4 / "bundle.yaml", "initial_pose: robot1", "initial_pose: robot7")
    with pytest.raises(BundleError, match="'robot7' is neither 'x y yaw' nor a start"):
        load_bundle(b4)


def test_a_zone_off_the_map_and_a_foreign_registry(shipped, tmp_path) -> None:
    b = _copy(shipped, tmp_path)
    _edit(b / "site.yaml", "zones:\n", "zones:\n  - {id: far_zone, name: far zone, kind: slow, "
          "max_speed: 0.3, polygon: [[14.0, 0.0], [41.0, 0.0], [41.0, 1.0]]}\n")
    with pytest.raises(BundleError) as e:
        load_bundle(b)
    assert e.value.file.endswith("site.yaml") and e.value.where == "zones[0].polygon[1]"
    assert "vertex (41, 0) lies off the map (x -15..15, y -15..15 m)" in str(e.value)
    b2 = _copy(shipped, tmp_path / "f")
    shutil.copyfile(data_path("worlds", "datacentre.site.yaml"), b2 / "site.yaml")
    with pytest.raises(BundleError) as e:
        load_bundle(b2)
    assert e.value.where == "site" and "differs from site.yaml's site 'datacentre'" in str(e.value)


def test_missing_files_and_names(shipped, tmp_path) -> None:
    b = _copy(shipped, tmp_path)
    (b / "map.yaml").unlink()
    with pytest.raises(BundleError, match="the bundle has no map.yaml"):
        load_bundle(b)
    with pytest.raises(BundleError, match="is not a folder"):
        resolve_site(str(tmp_path / "nowhere"))
    with pytest.raises(BundleError, match="no installed site 'atlantis'; installed: "):
        resolve_site("atlantis")
    with pytest.raises(BundleError, match="parameter 'site' is empty"):
        resolve_site("")


def test_initial_pose_from_a_start_place_dock_or_numbers(shipped) -> None:
    b = load_bundle(shipped)
    assert b.initial_pose("") == b.starts["robot1"] == Pose2D(-12.0, -12.0, 0.0)
    assert b.initial_pose("robot2") == Pose2D(-12.0, -10.0, 0.0)
    assert b.initial_pose("t1_bay") == b.registry.place("t1_bay").pose
    dock = b.registry.docks[0]
    assert b.initial_pose(dock.id) == b.registry.place(dock.place).pose
    assert b.initial_pose("1.5, -2 0.25") == Pose2D(1.5, -2.0, 0.25)
    with pytest.raises(BundleError, match="not finite"):
        b.initial_pose("nan 0 0")
    with pytest.raises(BundleError, match="'t1_oil_temp_gauge' is neither"):
        b.initial_pose("t1_oil_temp_gauge")              # an asset has no robot pose


# ------------------------------------------------------------------ grids
def test_resampling_keeps_every_obstacle_and_inflation_grows_by_the_distance() -> None:
    occ = np.zeros((40, 40), bool)
    occ[20, 13] = True                                   # one 5 cm cell
    g = OccupancyGrid(0.0, 0.0, 0.05, occ)
    coarse = resample(g, 0.1)
    assert coarse.occupied.shape == (20, 20) and coarse.occupied.sum() == 1
    assert coarse.occupied[10, 6]
    grown = inflate(occ, 0.05, 0.30)
    inner = grown[7:33, 7:33]                            # away from the edge's growth
    rr, cc = np.nonzero(inner)
    d = np.hypot(rr + 7 - 20, cc + 7 - 13) * 0.05
    assert d.max() <= 0.30 + 1e-9 and grown[20, 19] and not grown[20, 20]
    assert len(d) == 113                                 # cells within 6 cells of the centre
    assert grown[0, :].sum() == 40 and grown[:6, 20].all() and not grown[6, 20]


def test_bundle_static_map_covers_the_world_map() -> None:
    """The stack's map (from the bundle) has every cell the world's own grid has, at the
    resolutions the nodes use."""
    for name in available_worlds():
        w, b = load_world(name), load_bundle(name)
        for res, grow in ((0.1, 0.0), (0.1, 0.3), (0.2, 0.5)):
            truth = w.occupancy_grid(res, grow, keep_out=False).occupied
            got = b.static_map(res, grow).occupied
            assert got.shape == truth.shape
            assert int((truth & ~got).sum()) == 0, (name, res, grow)
            # and nothing farther than one cell from the structure (thin fences that the
            # world's centre-sampled grid misses at 10 cm are in the bundle's map)
            near = w.occupancy_grid(res, grow + res, keep_out=False).occupied
            assert int((got & ~near).sum()) == 0, (name, res, grow)


# ------------------------------------------------------------------ shipped bundles
def test_installed_bundles_are_fresh_exports_of_the_worlds(tmp_path) -> None:
    sites = installed_sites()
    assert set(available_worlds()) <= set(sites), sites
    fresh = export_all(tmp_path)
    assert len(fresh) == 3
    for f in fresh:
        cmp = filecmp.dircmp(f, sites[f.name], ignore=[".export-stamp"])
        stale = cmp.diff_files + cmp.left_only + cmp.right_only
        assert not stale, (f"installed site {sites[f.name]} differs from a fresh export in "
                           f"{stale}: run 'make setup' (or 'sitebot site export --all')")
    b = load_bundle("substation")
    assert b.map.resolution_m == 0.05 and (b.map.width, b.map.height) == (600, 600)
    assert len(b.scene) >= 80 and b.gauges_file is not None and b.mask_file is not None
    assert int((b.keep_out_mask() == 100).sum()) > 1000


def test_site_check_cli(shipped, tmp_path) -> None:
    cli = [sys.executable, "-m", "sitebot.cli", "site", "check"]
    ok = subprocess.run(cli + [str(shipped)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "11 dial layouts" in ok.stdout
    assert ok.stdout.endswith("ok (3 warning(s))\n"), ok.stdout
    b = _copy(shipped, tmp_path)
    _edit(b / "gauges.yaml", "radius: 0.1\n", "radius: big\n")
    bad = subprocess.run(cli + [str(b)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "gauges.yaml: dials[0].radius" in bad.stderr, bad.stderr
    c = _copy(shipped, tmp_path / "k")
    img = cv2.imread(str(c / "keepout_mask.pgm"), cv2.IMREAD_UNCHANGED)
    img[:] = 255
    cv2.imwrite(str(c / "keepout_mask.pgm"), img)
    bad = subprocess.run(cli + [str(c)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cells differ from the keep-out zones" in bad.stderr


def test_a_failed_export_leaves_the_old_bundle(tmp_path) -> None:
    out = export_bundle("datacentre", tmp_path / "dc")
    before = (out / "map.pgm").read_bytes()
    with pytest.raises(ConfigError):
        export_bundle(tmp_path / "missing.world.yaml", out)
    assert (out / "map.pgm").read_bytes() == before and load_bundle(out).site == "datacentre"


@pytest.mark.parametrize("header", [b"P5\n90000 90000\n255\n", b"P5 # c\n# x\n9000 9000 255\n"])
def test_a_huge_image_is_refused_from_its_header(shipped, tmp_path, header) -> None:
    b = _copy(shipped, tmp_path)
    (b / "map.pgm").write_bytes(header + b"\x00" * 64)
    with pytest.raises(BundleError, match=r"has 9\d+ x 9\d+ pixels; at most 64000000"):
        load_bundle(b)
    (b / "map.pgm").write_bytes(b"GIF89a" + b"\x00" * 64)
    with pytest.raises(BundleError, match="is not a PGM, PNG or BMP image"):
        load_bundle(b)
