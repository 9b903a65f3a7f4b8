"""``sitebot plan``: the planner's command line (a stable contract).

  sitebot plan --site FILE|WORLD [--role ROLE] [--json] "INSTRUCTION"
  sitebot plan --site FILE|WORLD --batch FILE.jsonl

One instruction: the answer, human-readable, or the JSON answer with --json.
Batch: one JSON object per input line, ``{"text": ..., "role": ...}`` (role defaults to
operator); one JSON answer per line, in the same order, on standard output.  A line that is
not a JSON object with a string "text" (or has a non-string role) is answered with
``{"status": "refuse", "reason": "batch line N: ...", ...}`` and the batch goes on; blank
lines are answered the same way, so output line N always answers input line N.
JSON answer: {"status": "ok"|"clarify"|"refuse", "steps": [{"skill", "args"}],
"question", "reason", "explanation"}.  Exit code 0 (2 for a bad --site or batch file).
"""
from __future__ import annotations

import argparse
import json
import sys

from sitebot.language.llm import LLMConfig
from sitebot.language.service import TaskPlanner, load_site
from sitebot.language.types import Answer

__all__ = ["main", "batch_lines"]


def batch_lines(tp: TaskPlanner, lines, out) -> int:
    """Answer every line of *lines* (an iterable of str) onto *out*; returns the count."""
    n = 0
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            ans = Answer("refuse", reason=f"batch line {n}: not valid JSON ({e.msg} at column "
                         f"{e.colno})", explanation="batch input error")
        else:
            if not isinstance(obj, dict):
                ans = Answer("refuse", reason=f"batch line {n}: expected a JSON object "
                             '{"text": ..., "role": ...}', explanation="batch input error")
            elif not isinstance(obj.get("text"), str):
                ans = Answer("refuse", reason=f"batch line {n}: missing or non-string 'text'",
                             explanation="batch input error")
            elif obj.get("role") is not None and not isinstance(obj.get("role"), str):
                ans = Answer("refuse", reason=f"batch line {n}: 'role' must be a string",
                             explanation="batch input error")
            else:
                try:
                    ans = tp.plan(obj["text"], obj.get("role") or "operator")
                except Exception as e:  # noqa: BLE001 - one line never stops the batch
                    ans = Answer("refuse", reason=f"batch line {n}: planner error "
                                 f"{type(e).__name__}: {e}", explanation="internal error")
        out.write(json.dumps(ans.to_dict(), ensure_ascii=False) + "\n")
        out.flush()
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot plan", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", required=True, help="site registry file, or a world name "
                    "(substation, construction, datacentre)")
    ap.add_argument("--role", default="operator", help="caller's role (default operator)")
    ap.add_argument("--json", action="store_true", help="print the JSON answer")
    ap.add_argument("--batch", help="JSON-lines file of {text, role}; '-' = stdin")
    ap.add_argument("--llm-url", default="", help="OpenAI-compatible endpoint "
                    "(default $SITEBOT_LLM_URL; empty: offline only)")
    ap.add_argument("--llm-model", default="", help="model name (default $SITEBOT_LLM_MODEL)")
    ap.add_argument("instruction", nargs="*", help="the instruction (quoted)")
    a = ap.parse_args(argv)
    if not a.batch and not a.instruction:
        ap.error("give an INSTRUCTION or --batch FILE")
    reg = load_site(a.site)
    tp = TaskPlanner(reg, llm=LLMConfig.from_env(a.llm_url, a.llm_model))
    if a.batch:
        if a.batch == "-":
            batch_lines(tp, (ln.rstrip("\n") for ln in sys.stdin), sys.stdout)
            return 0
        try:
            with open(a.batch, encoding="utf-8") as f:
                batch_lines(tp, (ln.rstrip("\n") for ln in f), sys.stdout)
        except OSError as e:
            print(f"sitebot plan: error: cannot read batch file {a.batch}: {e}",
                  file=sys.stderr)
            return 2
        return 0
    ans = tp.plan(" ".join(a.instruction), a.role)
    print(json.dumps(ans.to_dict(), ensure_ascii=False) if a.json else ans.human())
    return 0
