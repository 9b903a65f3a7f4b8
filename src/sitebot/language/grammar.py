"""Splitting an instruction into clauses with a small lark grammar.

The grammar sees an instruction as clauses separated by sequencing words and punctuation:
``,`` ``;`` ``.`` ``then`` ``and then`` ``after that`` ``afterwards`` ``and finally``
``finally`` ``lastly`` ``next`` (not "next to") ``followed by`` ``and``.  "and" and ","
also join noun phrases ("the T1 and T2 gauges", "the drill, the tape and the toolbox"),
so a piece that does not start with a verb is put back onto the clause before it (the
grounder then splits the coordinated noun phrase).  "before X, Y" runs Y first.
"""
from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark

__all__ = ["split_clauses", "GRAMMAR"]

GRAMMAR = r"""
start: _SEP* clause (_SEP+ clause)* _SEP*
clause: WORD+
_SEP.2: /(?:,|;|!|\?|\b(?:and\s+then|and\s+after\s+that|after\s+that|afterwards|and\s+finally|finally|lastly|then|followed\s+by|and\s+also|and|as\s+well\s+as\s+to|next(?!\s+to\b)|once\s+done|when\s+done|when\s+finished|once\s+finished|and\s+once\s+done|and\s+when\s+done)\b)/
WORD: /[^\s,;!?]+/
%ignore /\s+/
"""


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr")


def _pieces(text: str) -> list[str]:
    t = re.sub(r"\.(?=\s|$)", " ; ", text)      # sentence ends (not decimals)
    t = t.replace(":", " ; ") if re.search(r":\s", t) else t
    if not t.strip(" ;,.!?"):
        return []
    tree = _parser().parse(t)
    return [" ".join(str(w) for w in c.children) for c in tree.children]


def split_clauses(text: str, starts_with_verb) -> list[str]:
    """The clauses of *text* (cleaned), in execution order.

    ``starts_with_verb(piece) -> bool`` tells a verb phrase from a noun phrase; noun
    phrases are joined back to the clause before them with the separator "and"."""
    raw = _pieces(text)
    out: list[str] = []
    for p in raw:
        if out and not starts_with_verb(p):
            out[-1] = f"{out[-1]} and {p}"
        else:
            out.append(p)
    # "before <X>, <Y>" -> Y, X
    i = 0
    while i < len(out) - 1:
        if re.match(r"^before\s+", out[i]):
            first = out[i + 1]
            out[i + 1] = re.sub(r"^before\s+", "", out[i])
            out[i] = first
            i += 2
        else:
            i += 1
    return out
