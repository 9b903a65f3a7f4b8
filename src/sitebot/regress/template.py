"""Scenario templates: a scenario file with random variables (no ROS).

A template is a scenario file (``docs/regress.md``) with a ``random`` section that maps key
paths of the scenario to distributions::

    random:
      robot.start: {choice: [[2.0, 3.0, 0.0], [10.5, -4.0, 1.57]]}
      actors.add[0].speed: {uniform: [0.6, 1.4]}
      sim.lidar_noise_m: {normal: [0.01, 0.003], clip: [0.0, 0.03]}
      faults[0].at: {integer: [5, 30]}
      mission.instruction: {choice: ["read the gauges at the transformers",
                                     "check the transformer pressure gauges"]}

Distributions: ``uniform: [low, high]``, ``normal: [mean, std]`` (optionally ``clip: [low,
high]``), ``integer: [low, high]`` (both ends included) and ``choice: [values]`` (optionally
``weights: [w, ...]``); any of them may add ``round: N`` (decimals).  A key path names an
existing key or list item (``a.b[2].c``), or a new key of an existing mapping.  Variables
that draw from the site (places, free floor, people, clutter, displaced objects) are in
``sitebot.regress.world_draws``; variables are drawn in the order of the ``random`` section.

A run is fully determined by the template and its seed: each variable is drawn from its own
random stream, seeded by the run's seed, the variable's key path and the template's id, so
adding a variable to a template does not change what the others draw, and two templates
do not draw alike.  The seed is also the run's ``seed``
(the simulator's sensor noise).  Every sampled document is checked as a scenario, so an
error names the template, the seed and the key.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.errors import ConfigError
from sitebot.regress.scenario import Scenario, ScenarioError, _Parser, _set_path
from sitebot.regress.world_draws import WORLD_KINDS, draw_world_variable, parse_world_variable

__all__ = ["Variable", "Template", "load_template", "is_template", "DISTRIBUTIONS", "MAX_SEED"]

#: the distributions a variable may follow, with the number of parameters each takes
DISTRIBUTIONS = {"uniform": 2, "normal": 2, "integer": 2, "choice": None}
#: the largest seed (a scenario's seed is a 31-bit integer)
MAX_SEED = 2**31 - 1
_OPTIONS = ("clip", "weights", "round")


@dataclass(frozen=True)
class Variable:
    """One random variable of a template: where it goes and what it follows."""
    path: str
    kind: str
    params: tuple[Any, ...]
    clip: tuple[float, float] | None = None
    weights: tuple[float, ...] | None = None
    decimals: int | None = None
    #: a world variable's parameters (``sitebot.regress.world_draws``); None for the others
    world: Mapping[str, Any] | None = None
    #: the template's id: two templates' variables of the same path draw apart
    template: str = ""

    def stream(self, seed: int) -> np.random.Generator:
        """The variable's own random stream for a run's ``seed``."""
        return np.random.default_rng(np.random.SeedSequence(
            [int(seed), _digest(self.path), _digest(self.template)]))

    def draw(self, seed: int, doc: Mapping[str, Any] | None = None,
             where: Path | None = None) -> Any:
        """The value for a run's ``seed``; a world variable also needs the document drawn so
        far (``doc``: its world, robot start and people)."""
        rng = self.stream(seed)
        if self.world is not None:
            return self._draw_world(rng, seed, doc or {}, where)
        if self.kind == "choice":
            p = None
            if self.weights is not None:
                w = np.asarray(self.weights, dtype=float)
                p = w / w.sum()
            value = copy.deepcopy(self.params[int(rng.choice(len(self.params), p=p))])
        elif self.kind == "integer":
            value = int(rng.integers(int(self.params[0]), int(self.params[1]), endpoint=True))
        else:
            a, b = (float(x) for x in self.params)
            value = float(rng.uniform(a, b) if self.kind == "uniform" else rng.normal(a, b))
            if self.clip is not None:
                value = min(max(value, self.clip[0]), self.clip[1])
        if self.decimals is not None and isinstance(value, float):
            value = round(value, self.decimals)
        return value

    def _draw_world(self, rng: np.random.Generator, seed: int, doc: Mapping[str, Any],
                    where: Path | None) -> Any:
        from sitebot.regress.prepare import base_world     # (prepare builds on scenarios)
        at = f"{where}: random.{self.path}" if where else f"random.{self.path}"
        try:
            world = base_world(str(doc.get("world")))
        except (OSError, ConfigError) as e:
            raise ScenarioError(f"{at}: the world {doc.get('world')!r} cannot be loaded for "
                                f"this {self.kind} variable: {e}") from None
        try:
            return draw_world_variable(self.kind, self.world or {}, rng, world, doc)
        except ValueError as e:
            raise ScenarioError(f"{at}: seed {seed}: {e}") from None


@dataclass(frozen=True)
class Template:
    """A scenario template (module doc): the scenario document and its variables."""
    file: Path
    document: Mapping[str, Any]
    variables: tuple[Variable, ...]

    @property
    def id(self) -> str:
        return str(self.document.get("scenario", self.file.stem))

    def explain(self, seed: int) -> dict[str, Any]:
        """The values the run with ``seed`` draws, per key path."""
        return self._draw(seed)[1]

    def _draw(self, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The document of the run with ``seed`` and its drawn values.  Variables are drawn
        in the order of the ``random`` section: a world variable sees what the ones before
        it set (clutter keeps clear of the people drawn before it)."""
        _check_seed(seed, self.file)
        s = Schema(self.file, ScenarioError)
        doc = copy.deepcopy(dict(self.document))
        doc["seed"] = int(seed)
        values = {}
        for v in self.variables:
            values[v.path] = v.draw(seed, doc, self.file)
            _set_path(doc, v.path, copy.deepcopy(values[v.path]), s,
                      key_path("random", v.path))
        return doc, values

    def sample(self, seed: int) -> Scenario:
        """The scenario of the run with ``seed`` (checked as any scenario file is; its name
        is ``ID[seed=N]``)."""
        doc = self._draw(seed)[0]
        s = Schema(self.file, ScenarioError)
        try:
            return _Parser(s).parse(doc, {"seed": int(seed)})
        except ScenarioError as e:
            raise ScenarioError(f"seed {seed}: {e}") from None


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _check_seed(seed: Any, file: Path) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= int(seed) <= MAX_SEED:
        raise ScenarioError(f"{file}: seed {seed!r} must be an integer in [0, {MAX_SEED}]")


def _variable(s: Schema, path: str, spec: Any) -> Variable:
    where = key_path("random", path)
    m = s.mapping(spec, where)
    world_kinds = [k for k in m if k in WORLD_KINDS]
    if len(world_kinds) == 1:
        kind = world_kinds[0]
        params = parse_world_variable(s, where, kind, m[kind],
                                      {k: v for k, v in m.items() if k != kind})
        return Variable(path, kind, (), world=params)
    kinds = [k for k in m if k in DISTRIBUTIONS]
    unknown = [k for k in m if k not in DISTRIBUTIONS and k not in _OPTIONS]
    if unknown or len(kinds) != 1:
        s.fail(f"expected one of {', '.join(DISTRIBUTIONS)} (with {', '.join(_OPTIONS)} as "
               f"options) or a world variable ({', '.join(WORLD_KINDS)}), got "
               f"{', '.join(map(str, m)) or 'nothing'}", where)
    kind = kinds[0]
    at = key_path(where, kind)
    n = DISTRIBUTIONS[kind]
    if n is None:
        params = tuple(s.seq(m[kind], at, min_len=1))
    else:
        raw = s.seq(m[kind], at, min_len=n, max_len=n)
        params = tuple(s.number(x, f"{at}[{i}]") for i, x in enumerate(raw))
        if kind == "integer" and any(float(p) != int(p) for p in params):
            s.fail("integer bounds must be whole numbers", at)
        if kind in ("uniform", "integer") and params[0] > params[1]:
            s.fail(f"low {params[0]:g} is above high {params[1]:g}", at)
        if kind == "normal" and params[1] < 0:
            s.fail(f"standard deviation {params[1]:g} is negative", at)
    clip = weights = decimals = None
    if m.get("clip") is not None:
        if kind != "normal":
            s.fail("clip applies to normal only (uniform and integer have bounds)",
                   key_path(where, "clip"))
        c = s.seq(m["clip"], key_path(where, "clip"), min_len=2, max_len=2)
        clip = (s.number(c[0], key_path(where, "clip")), s.number(c[1], key_path(where, "clip")))
        if clip[0] > clip[1]:
            s.fail("clip low is above clip high", key_path(where, "clip"))
    if m.get("weights") is not None:
        if kind != "choice":
            s.fail("weights apply to choice only", key_path(where, "weights"))
        w = s.seq(m["weights"], key_path(where, "weights"), min_len=len(params),
                  max_len=len(params))
        weights = tuple(s.number(x, key_path(where, "weights"), min_value=0.0) for x in w)
        if sum(weights) <= 0:
            s.fail("the weights sum to zero", key_path(where, "weights"))
    if m.get("round") is not None:
        decimals = s.integer(m["round"], key_path(where, "round"), min_value=0, max_value=12)
    return Variable(path, kind, params, clip, weights, decimals)


def load_template(path: str | Path) -> Template:
    """Load a template and check it: its variables, and the scenario drawn with seed 0."""
    p = Path(path)
    data = load_yaml(p, error=ScenarioError)
    s = Schema(p, ScenarioError)
    if data is None:
        s.fail("the file is empty; expected a scenario with a 'random' section", "")
    root = dict(s.mapping(data, ""))
    if "variations" in root:
        s.fail("a template draws its runs from 'random'; 'variations' cannot be combined "
               "with it", "variations")
    if root.get("random") is None:
        s.fail("a template needs a 'random' section (key paths to distributions)", "random")
    if "seed" in root:
        s.fail("a template has no seed: each run's seed is given when it is drawn", "seed")
    rnd = s.mapping(root.pop("random"), "random")
    if not rnd:
        s.fail("the 'random' section is empty", "random")
    tid = str(root.get("scenario", p.stem))
    variables = tuple(dataclasses.replace(_variable(s, str(k), v), template=tid)
                      for k, v in rnd.items())
    t = Template(p, root, variables)
    t.sample(0)                      # every key path exists and the drawn scenario is valid
    return t


def is_template(path: str | Path) -> bool:
    """Whether a scenario file is a template (it has a ``random`` section)."""
    try:
        data = load_yaml(Path(path), error=ScenarioError)
    except ScenarioError:
        return False
    return isinstance(data, dict) and "random" in data
