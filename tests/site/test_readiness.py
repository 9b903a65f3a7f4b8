"""``sitebot site check``'s second half: what a valid bundle still lacks before a first
mission, found with the robot's own planner (sitebot.commissioning.readiness)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from sitebot.commissioning.readiness import readiness
from sitebot.perception.gauge import load_dial_layouts
from sitebot.site.bundle import load_bundle


def _dials(b):
    return load_dial_layouts(b.gauges_file, b.registry)


@pytest.mark.parametrize("site,warnings", [("substation", 3), ("construction", 1),
                                           ("datacentre", 2)])
def test_the_shipped_sites_are_ready(site, warnings) -> None:
    b = load_bundle(site)
    found = readiness(b, _dials(b))
    assert [f for f in found if f.level == "error"] == []
    assert len(found) == warnings                       # places in restricted zones
    assert all("restricted zone" in f.message for f in found)
    # a supervisor may enter the breaker bay: nothing left to say on the substation
    if site == "substation":
        assert readiness(b, _dials(b), role="supervisor") == []


def _copy(tmp_path, site="substation"):
    dst = tmp_path / site
    shutil.copytree(load_bundle(site).folder, dst)
    return dst


def test_what_a_first_mission_would_miss(tmp_path) -> None:
    d = _copy(tmp_path)
    text = (d / "site.yaml").read_text()
    # a keep-out band across the whole yard (on no place): the north is cut off
    band = ("  - {id: trench, name: cable trench, kind: keep_out, polygon: "
            "[[-14.9, -0.5], [14.9, -0.5], [14.9, -0.2], [-14.9, -0.2]]}\n")
    text = text.replace("zones:\n", "zones:\n" + band, 1)
    i = text.index("docks:")
    j = text.index("markers:")
    text = text[:i] + "docks: []\n\n" + text[j:]          # and no dock
    (d / "site.yaml").write_text(text)
    for f in ("keepout_mask.yaml", "keepout_mask.pgm"):    # now stale (it is optional)
        (d / f).unlink()
    dials = (d / "gauges.yaml").read_text()
    k = dials.index("  - asset: t2_oil_pressure_gauge")
    (d / "gauges.yaml").write_text(dials[:k] + dials[dials.index("  - asset:", k + 5):])
    b = load_bundle(d)
    found = readiness(b, _dials(b), role="supervisor")
    errors = {f.where: f.message for f in found if f.level == "error"}
    assert "no dock" in errors.pop("docks")
    assert "dial layout" in errors.pop("assets.t2_oil_pressure_gauge")
    north = {p.id for p in b.registry.places if p.y > 0}
    assert {w.split(".", 1)[1] for w in errors if w.startswith("places.")} == north
    assert all("unreachable from the start" in errors[f"places.{p}"] for p in north)
    legs = [w for w in errors if w.startswith("routes.")]
    assert legs and all("avoids keep-out zones" in errors[w] for w in legs)
    assert len(errors) == len(north) + len(legs)
    r = subprocess.run([sys.executable, "-m", "sitebot.cli", "site", "check", str(d),
                        "--role", "supervisor"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    n = len(north) + len(legs) + 2
    assert f"not ready: {n} error(s) before a first mission" in r.stdout, r.stdout


def test_a_place_too_close_to_structure(tmp_path) -> None:
    d = _copy(tmp_path)
    text = (d / "site.yaml").read_text()
    # T1 bay moved 0.7 m towards its tank: a free cell of the map, but closer to the
    # structure than the robot's footprint radius
    (d / "site.yaml").write_text(text.replace("pose: [-6.0, -6.9, -1.5708]",
                                              "pose: [-6.0, -7.6, -1.5708]", 1))
    b = load_bundle(d)
    found = [f for f in readiness(b, _dials(b)) if f.level == "error"]
    assert [f.where for f in found] == ["places.t1_bay"], found
    assert "may not stand there" in found[0].message


def test_a_new_site_and_its_draft_markers(tmp_path) -> None:
    """sitebot site new: a bundle every node loads (start free, all else unknown), not ready
    (no dock); survey drafts merged into it are warned about until confirmed."""
    from sitebot.commissioning.newsite import adopt_survey
    d = tmp_path / "new"
    r = subprocess.run([sys.executable, "-m", "sitebot.cli", "site", "new", "northfield",
                        "--out", str(d), "--start", "2 3 1.5708"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    b = load_bundle(d)
    assert tuple(b.initial_pose("")) == pytest.approx((2.0, 3.0, 1.5708))
    m = b.map
    assert (m.values == 0).sum() == 21 * 21 and (m.values < 0).sum() == m.values.size - 441
    assert not b.static_map().occupied.any()          # unknown is not structure
    again = subprocess.run([sys.executable, "-m", "sitebot.cli", "site", "new", "northfield",
                            "--out", str(d)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "a bundle exists here already" in again.stderr
    notes = adopt_survey(d, [{"tag": 7, "size": 0.1, "pose": [2.5, 3.0, 1.2, 0.0],
                              "draft": True, "std": [0.01, 0.01, 0.01, 0.02],
                              "sightings": 5}])
    assert notes == ["marker 7: draft added (5 sightings)"]
    found = readiness(load_bundle(d), {})
    warned = {f.where: f.message for f in found if f.level == "warning"}
    assert "1 draft marker(s) from the survey (tags 7)" in warned["markers"]
    assert [f.where for f in found if f.level == "error"] == ["docks"]
