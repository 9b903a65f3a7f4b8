"""Scenario templates (sitebot.regress.template): random variables over a scenario's key
paths, drawn per seed, reproducibly, and checked as scenarios."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sitebot.regress.template import MAX_SEED, load_template
from sitebot.regress.scenario import ScenarioError

BASE = """\
scenario: crossing_random
description: a worker crosses ahead at a random speed and time
tags: [safety, people]
world: substation
robot: {start: [-12.5, -12.0, 0.0]}
duration: 16
mission:
  kind: none
  drive: [[0.5, 0.5, 0.0]]
actors:
  replace: true
  add:
  - {id: crosser, path: [[-8.5, -14.0], [-8.5, -9.5]], speed: 1.2, loop: false,
     yields: false, radius: 0.25, start_delay: 6.3}
criteria:
  min_separation: 0.05
"""

RANDOM = """\
random:
  actors.add[0].speed: {uniform: [0.6, 1.4], round: 3}
  actors.add[0].start_delay: {normal: [6.0, 2.0], clip: [3.0, 9.0]}
  actors.add[0].yields: {choice: [true, false], weights: [1, 3]}
  duration: {integer: [12, 20]}
"""


def _write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_a_seed_determines_the_run_and_seeds_differ(tmp_path):
    t = load_template(_write(tmp_path, BASE + RANDOM))
    assert t.id == "crossing_random" and len(t.variables) == 4
    a, b = t.sample(7), t.sample(7)
    assert a.as_dict() == b.as_dict()
    assert a.seed == 7 and a.name == "crossing_random[seed=7]"
    ex = t.explain(7)
    crosser = a.actors_add[0]
    assert crosser["speed"] == ex["actors.add[0].speed"]
    assert crosser["start_delay"] == ex["actors.add[0].start_delay"]
    assert crosser["yields"] == ex["actors.add[0].yields"] and a.duration == ex["duration"]
    # 200 seeds: every draw within its bounds, and the values spread over them
    draws = [t.explain(s) for s in range(200)]
    speeds = [d["actors.add[0].speed"] for d in draws]
    delays = [d["actors.add[0].start_delay"] for d in draws]
    durations = {d["duration"] for d in draws}
    assert all(0.6 <= v <= 1.4 and v == round(v, 3) for v in speeds)
    assert max(speeds) - min(speeds) > 0.6
    assert all(3.0 <= v <= 9.0 for v in delays) and min(delays) == 3.0 and max(delays) == 9.0
    assert durations == set(range(12, 21))           # both ends included
    yields = sum(d["actors.add[0].yields"] for d in draws)
    assert 20 <= yields <= 80                         # weight 1 of 4: about 50 of 200


def test_adding_a_variable_leaves_the_others_draws_alone(tmp_path):
    t1 = load_template(_write(tmp_path, BASE + RANDOM, "a.yaml"))
    t2 = load_template(_write(tmp_path, BASE + RANDOM
                              + "  actors.add[0].radius: {uniform: [0.2, 0.3]}\n", "b.yaml"))
    for seed in (0, 1, 99, MAX_SEED):
        e1, e2 = t1.explain(seed), t2.explain(seed)
        assert {k: e2[k] for k in e1} == e1 and 0.2 <= e2["actors.add[0].radius"] <= 0.3


def test_a_zero_weight_choice_is_never_drawn(tmp_path):
    t = load_template(_write(tmp_path, BASE + "random:\n  actors.add[0].yields: "
                             "{choice: [true, false], weights: [0, 1]}\n"))
    assert not any(t.explain(s)["actors.add[0].yields"] for s in range(100))


@pytest.mark.parametrize("random, where, words", [
    ("  duration: {gauss: [1, 2]}\n", "random.duration", "expected one of uniform"),
    ("  duration: {uniform: [20, 10]}\n", "random.duration.uniform", "above high"),
    ("  duration: {uniform: [10]}\n", "random.duration.uniform", "at least 2"),
    ("  duration: {normal: [10, -1]}\n", "random.duration.normal", "negative"),
    ("  duration: {integer: [10.5, 12]}\n", "random.duration.integer", "whole numbers"),
    ("  duration: {uniform: [10, 12], clip: [0, 1]}\n", "random.duration.clip",
     "normal only"),
    ("  duration: {choice: [10, 12], weights: [1]}\n", "random.duration.weights", "at least 2"),
    ("  actors.add[3].speed: {uniform: [1, 2]}\n", "random.actors.add[3].speed",
     "does not exist"),
    # a drawn value the scenario format refuses: the error names the seed
    ("  duration: {choice: [-5]}\n", "duration", "seed 0"),
])
def test_bad_templates_name_the_file_the_key_and_what_is_wrong(tmp_path, random, where, words):
    p = _write(tmp_path, BASE + "random:\n" + random)
    with pytest.raises(ScenarioError) as e:
        load_template(p)
    msg = str(e.value)
    assert str(p) in msg and where in msg and words in msg, msg


def test_a_run_whose_draw_is_invalid_names_its_seed(tmp_path):
    p = _write(tmp_path, BASE + "random:\n  duration: {choice: [30, 20, -5]}\n")
    t = load_template(p)
    bad = [s for s in range(50) if t.explain(s)["duration"] == -5]
    assert bad and t.sample(next(s for s in range(50) if s not in bad)).duration > 0
    with pytest.raises(ScenarioError, match=f"seed {bad[0]}: .*duration"):
        t.sample(bad[0])


@pytest.mark.parametrize("extra, words", [
    ("seed: 3\n" + RANDOM, "has no seed"),
    ("variations: {duration: [10, 12]}\n" + RANDOM, "cannot be combined"),
    ("", "needs a 'random' section"),
    ("random: {}\n", "is empty"),
])
def test_what_a_template_may_not_hold(tmp_path, extra, words):
    with pytest.raises(ScenarioError, match=words):
        load_template(_write(tmp_path, BASE + extra))


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.5, True, "3"])
def test_a_seed_outside_the_range_is_refused(tmp_path, seed):
    t = load_template(_write(tmp_path, BASE + RANDOM))
    with pytest.raises(ScenarioError, match="seed"):
        t.sample(seed)
    with pytest.raises(ScenarioError, match="seed"):
        t.explain(seed)
