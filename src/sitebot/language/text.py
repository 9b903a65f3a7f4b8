"""Text normalization and tokens shared by the splitter, the skill recognizer and the
grounder.  Pure functions, no registry knowledge."""
from __future__ import annotations

import re
import unicodedata

__all__ = ["clean", "tokens", "singular", "is_designator", "designator_parts",
           "NUMBER_WORDS", "ORDINALS", "STOPWORDS", "GENERIC_NOUNS"]

NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
                "eleven": "11", "twelve": "12"}
ORDINALS = {"first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5",
            "sixth": "6", "seventh": "7", "eighth": "8", "ninth": "9", "tenth": "10",
            "1st": "1", "2nd": "2", "3rd": "3", "4th": "4", "5th": "5"}
#: words that carry no identity in a reference ("the gauge *at* the pump").
STOPWORDS = frozenset("""the a an of at on in by near to from for with its it their them this
that these those there here my our your me us all every each both any some one ones which
whatever please now right away also too again and or plus as well just next beside besides
inside outside up down over into onto""".split())
#: nouns that locate rather than identify ("the T1 area", "the compressor spot").
GENERIC_NOUNS = frozenset("area spot location position place side vicinity thing unit "
                          "equipment stuff item bit".split())
#: spelling variants folded on both sides (query and registry names).
_VARIANTS = {"center": "centre", "temp": "temperature", "gage": "gauge", "gages": "gauges",
             "colour": "color", "meter": "gauge", "meters": "gauges", "dial": "gauge",
             "dials": "gauges", "thermo": "thermometer", "pressur": "pressure",
             "grey": "gray", "aluminium": "aluminum", "tyre": "tire"}

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                         "\u2013": "-", "\u2014": "-", "\u00a0": " "})


def clean(text: str) -> str:
    """Case-folded, quotes unified, accents dropped, whitespace collapsed."""
    t = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    t = "".join(c for c in t if not unicodedata.combining(c))
    return " ".join(t.casefold().split())


def singular(word: str) -> str:
    """A crude singular for English plurals of nouns ("gauges" -> "gauge",
    "batteries" -> "battery"); words of 3 letters or less, and "ss"/"us"/"is" endings
    are kept."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Word tokens: possessive 's dropped, spelling variants folded, number words and
    ordinals as digits, letter+number splits joined ("t 1" stays two tokens; "t1" one)."""
    t = clean(text).replace("'s ", " ").replace("s' ", "s ")
    if t.endswith("'s"):
        t = t[:-2]
    out = []
    for w in _TOKEN.findall(t):
        w = _VARIANTS.get(w, w)
        if w in NUMBER_WORDS and w != "one":
            w = NUMBER_WORDS[w]
        elif w in ORDINALS:
            w = ORDINALS[w]
        out.append(w)
    return out


def is_designator(tok: str) -> bool:
    """A token that names one of several alike things: has a digit ("t1", "2", "a3")."""
    return any(c.isdigit() for c in tok)


def designator_parts(tok: str) -> tuple[str, str]:
    """(letters, digits) of a designator token: "cb12" -> ("cb", "12")."""
    letters = "".join(c for c in tok if c.isalpha())
    digits = "".join(c for c in tok if c.isdigit())
    return letters, digits
