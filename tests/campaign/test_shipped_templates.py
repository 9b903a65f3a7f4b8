"""The shipped campaign templates (tests/campaigns/): each loads, judges safety on every
run, draws valid worlds, and together they cover every skill in every world that has it."""
from __future__ import annotations

from pathlib import Path

from sitebot.campaign.gate import unjudged_safety
from sitebot.regress.prepare import check_world
from sitebot.regress.template import load_template

SHIPPED = Path(__file__).resolve().parents[1] / "campaigns"
SEEDS = range(3)


def test_every_shipped_template_draws_valid_runs_that_judge_safety():
    templates = [load_template(p) for p in sorted(SHIPPED.glob("*.yaml"))]
    assert len(templates) >= 24
    for t in templates:
        assert "campaign" in t.document.get("tags", []), t.id
        for seed in SEEDS:
            sc = t.sample(seed)
            assert unjudged_safety(sc.criteria) == [], sc.name
            check_world(sc)                       # people, clutter, start: a valid world
            assert sc.criteria.mission in ("succeeded", "any"), sc.name


def test_the_templates_cover_each_skill_in_each_world():
    skills = {"navigate": ("navigate",), "gauge": ("gauge",), "inspect": ("inspect",),
              "pick": ("pick",), "valve": ("valve",), "patrol": ("patrol",),
              "dock": ("dock",)}
    covered: dict[str, set[str]] = {}
    for p in SHIPPED.glob("*.yaml"):
        t = load_template(p)
        tags = set(t.document.get("tags", []))
        for skill, names in skills.items():
            if tags & set(names):
                covered.setdefault(str(t.document["world"]), set()).add(skill)
    for world in ("substation", "construction", "datacentre"):
        assert covered.get(world) == set(skills), (world, covered.get(world))
    tags = [set(load_template(p).document.get("tags", [])) for p in SHIPPED.glob("*.yaml")]
    assert sum("people" in t for t in tags) >= 2 and sum("fault" in t for t in tags) >= 1
