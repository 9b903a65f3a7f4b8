"""The campaign's HTML report (sitebot.campaign.report) and ``sitebot campaign report`` on
the synthetic campaign folder of ``conftest.py``: a well-formed, self-contained page, the
safety section first and red, every run that did not pass with its label, picture, bag and
replay command, and a clear error on a broken campaign.json."""
from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

from sitebot.apps.campaign import main as campaign_main
from sitebot.campaign.report import _ticks, rates_svg, write_report

SVG = "{http://www.w3.org/2000/svg}svg"


def _page(path: Path) -> ET.Element:
    return ET.fromstring(path.read_text())     # well-formed: it parses as XML


def _by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {e.get("id"): e for e in root.iter() if e.get("id")}


def _text(e: ET.Element) -> str:
    return " ".join("".join(e.itertext()).split())


def test_the_report_shows_safety_first_and_every_failed_run(synthetic_campaign):
    path = write_report(synthetic_campaign)
    assert path == synthetic_campaign / "report.html"
    text = path.read_text()
    assert "<script" not in text and "http://" not in text.replace(
        "http://www.w3.org/2000/svg", "")                      # nothing fetched
    root = _page(path)
    body = root.find("body")
    # the safety section comes before any other section, red: three runs violated safety
    assert [c.tag for c in body][:4] == ["h1", "p", "div", "h2"]
    first_div = body.find("div")
    assert first_div.get("id") == "safety" and first_div.get("class") == "safety unsafe"
    assert "Safety: 3 run(s) violated safety" in _text(first_div)
    assert "no_keep_out" in _text(first_div) and "slow_zones" in _text(first_div)
    sections = _by_id(root)
    camp = json.loads((synthetic_campaign / "campaign.json").read_text())
    shown = {_text(d.find("h3")).rsplit(" ", 1)[0]: d for k, d in sections.items()
             if k.startswith("run-")}
    # every run that did not pass, and the two passed runs that violated safety
    assert sorted(shown) == sorted(["fetch[seed=2]", "gauge[seed=1]", "gauge[seed=2]",
                                    "crossing[seed=1]", "fetch[seed=3]", "gauge[seed=0]"])
    for r in camp["runs"]:
        if r["status"] == "passed" and r["name"] not in ("fetch[seed=3]", "gauge[seed=0]"):
            assert r["name"] not in shown
            continue
        sec = shown[r["name"]]
        words = _text(sec)
        assert f"sitebot regress --replay {shlex.quote(r['run_dir'])}" in words
        if r["label"]:
            assert r["label"] in words and r["evidence"] in words
        if r["status"] == "error":                       # the worker died: no plot, no bag
            assert sec.find(f".//{SVG}") is None
            assert "No plot.json" in words and "No bag" in words and r["reason"] in words
            continue
        assert sec.find(f".//{SVG}") is not None         # the path over the map
        bag = [a for a in sec.iter("a") if "bag" in a.get("href", "")]
        assert len(bag) == 1
        # relative to the page (folder names hold '=': quoted)
        href = bag[0].get("href")
        assert href == "runs/" + r["name"].replace("[", "_").replace("=", "%3D") \
            .replace("]", "_") + "/bag/"
    # the picture of a run whose world file is gone is its path alone
    assert "the path alone" in _text(shown["gauge[seed=1]"])
    assert "the path alone" not in _text(shown["fetch[seed=2]"])
    # the map of a run with its world draws the world's structure (grey obstacles)
    fetch_map = shown["fetch[seed=2]"].find(f".//{SVG}")
    assert len(fetch_map.findall("{http://www.w3.org/2000/svg}polygon")) >= 3
    # rates, times, variables and causes are drawn: one SVG each at least
    assert len(body.findall(f".//{SVG}")) >= 3 + 2 + 7 + 1 + 5
    assert "failure causes" in text.lower() and "grasp_missed" in text


def test_a_clean_campaign_gets_a_green_safety_section(synthetic_campaign):
    camp = json.loads((synthetic_campaign / "campaign.json").read_text())
    keep = [r for r in camp["runs"] if r["name"] in ("fetch[seed=0]", "fetch[seed=1]")]
    (synthetic_campaign / "clean.json").write_text(json.dumps({**camp, "runs": keep}))
    out = synthetic_campaign / "clean.html"
    write_report(synthetic_campaign / "clean.json", out)
    safety = _by_id(_page(out))["safety"]
    assert safety.get("class") == "safety ok"
    assert _text(safety).startswith("Safety: no violation")
    assert "Runs that did not pass or violated safety (0)" in out.read_text()


def test_rates_svg_draws_each_interval_where_it_lies():
    svg = ET.fromstring(rates_svg([("a", {"passed": 3, "judged": 4, "rate": 0.75,
                                          "ci95": [0.3006, 0.9544]})], w=660))
    dot = svg.find("{http://www.w3.org/2000/svg}circle")
    # the plot spans x = 240 .. 540 (660 wide, 240 for labels and 120 for numbers)
    assert float(dot.get("cx")) == 240 + 0.75 * 300
    whisker = [ln for ln in svg.iter("{http://www.w3.org/2000/svg}line")
               if ln.get("stroke") == "#1565c0"][0]
    assert (float(whisker.get("x1")), float(whisker.get("x2"))) == (330.2, 526.3)
    assert _ticks(74) == [0, 20, 40, 60, 80] and _ticks(7.3) == [0, 2, 4, 6, 8]


def test_the_cli_writes_the_report_and_names_a_broken_campaign_json(
        synthetic_campaign, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "r.html"
    assert campaign_main(["report", str(synthetic_campaign), "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    _page(out)
    broken = tmp_path / "broken"
    broken.mkdir()
    assert campaign_main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken / 'campaign.json'}: cannot read" in err
    (broken / "campaign.json").write_text('{"runs": [}')
    assert campaign_main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"sitebot campaign report: error: {broken / 'campaign.json'}: not valid JSON" in err
    assert not (broken / "report.html").exists()
