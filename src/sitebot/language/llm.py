"""Optional LLM proposer: an OpenAI-compatible chat-completions endpoint proposes a plan as
JSON; the proposal goes through the same validator as the offline planner's and never
decides on its own (see :class:`sitebot.language.TaskPlanner`).

Configured by arguments or the environment: ``SITEBOT_LLM_URL`` (the endpoint's base URL,
e.g. ``http://127.0.0.1:8000/v1``, or the full ``.../chat/completions`` URL),
``SITEBOT_LLM_MODEL``, ``SITEBOT_LLM_API_KEY``.  urllib only; a timeout, an HTTP error,
non-JSON output or a malformed plan raise :class:`LLMError`, and the caller falls back to
the offline answer.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from sitebot.language.types import SKILLS, STATUSES, Step
from sitebot.language.validator import steps_from_json
from sitebot.site.registry import SiteRegistry

__all__ = ["LLMConfig", "LLMError", "LLMProposal", "propose", "system_prompt"]


class LLMError(Exception):
    """The endpoint could not be reached or answered something unusable."""


@dataclass(frozen=True)
class LLMConfig:
    url: str = ""
    model: str = ""
    api_key: str = ""
    timeout_s: float = 10.0

    @staticmethod
    def from_env(url: str = "", model: str = "", api_key: str = "",
                 timeout_s: float = 10.0) -> "LLMConfig":
        """Explicit values first, then SITEBOT_LLM_URL / _MODEL / _API_KEY."""
        return LLMConfig(url or os.environ.get("SITEBOT_LLM_URL", ""),
                         model or os.environ.get("SITEBOT_LLM_MODEL", ""),
                         api_key or os.environ.get("SITEBOT_LLM_API_KEY", ""), timeout_s)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def endpoint(self) -> str:
        u = self.url.rstrip("/")
        return u if u.endswith("/chat/completions") else u + "/chat/completions"


@dataclass(frozen=True)
class LLMProposal:
    status: str
    steps: tuple[Step, ...]
    question: str
    reason: str
    raw: str


def system_prompt(reg: SiteRegistry) -> str:
    """The instructions and the site's ids for the model."""
    lines = ["You turn a site robot operator's instruction into a plan. Answer ONLY a JSON "
             'object: {"status": "ok"|"clarify"|"refuse", "steps": [{"skill": ..., "args": '
             '{...}}], "question": "...", "reason": "..."}.',
             "Skills and arguments (ids from the site below): " + "; ".join(
                 f"{k}({', '.join(v)})" for k, v in SKILLS.items()) + "; action is open or "
             "close.",
             "Never guess: an ambiguous or unknown reference or a missing argument is "
             "status clarify with one question. Conditions, loops, requests to weaken or "
             "bypass safety, keep-out or restricted zones, and things no skill can do are "
             "status refuse with a reason. Bring X to Y = navigate_to(X place), pick(X), "
             "navigate_to(Y), place(Y).",
             f"Site {reg.site}:"]
    for p in reg.places:
        lines.append(f"place {p.id}: {p.name}; " + ", ".join(p.aliases))
    for a in reg.assets:
        lines.append(f"asset {a.id} ({a.kind.value}, at {a.place}): {a.name}; "
                     + ", ".join(a.aliases))
    for o in reg.objects:
        lines.append(f"object {o.id} ({o.kind.value}, at {o.place}): {o.name}; "
                     + ", ".join(o.aliases))
    for r in reg.routes:
        lines.append(f"route {r.id}: {r.name}; " + ", ".join(r.aliases))
    for z in reg.zones:
        lines.append(f"zone {z.id} ({z.kind.value}): {z.name}")
    return "\n".join(lines)


def _extract_json(content: str) -> Any:
    c = content.strip()
    if c.startswith("```"):
        c = c.strip("`")
        c = c[c.find("{"):] if "{" in c else c
    start, end = c.find("{"), c.rfind("}")
    if start < 0 or end <= start:
        raise LLMError("the model's answer holds no JSON object")
    try:
        return json.loads(c[start:end + 1])
    except json.JSONDecodeError as e:
        raise LLMError(f"the model's answer is not valid JSON: {e}") from None


def propose(cfg: LLMConfig, reg: SiteRegistry, text: str, role: str) -> LLMProposal:
    """Ask the endpoint for a plan; raises :class:`LLMError` on any problem."""
    body = {"model": cfg.model or "default", "temperature": 0,
            "messages": [{"role": "system", "content": system_prompt(reg)},
                         {"role": "user", "content": f"role: {role}\ninstruction: {text}"}]}
    req = urllib.request.Request(cfg.endpoint, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if cfg.api_key:
        req.add_header("Authorization", f"Bearer {cfg.api_key}")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
            payload = json.loads(resp.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise LLMError(f"endpoint {cfg.endpoint} unreachable: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LLMError(f"endpoint answered non-JSON: {e}") from None
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("endpoint answer has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise LLMError("choices[0].message.content is not a string")
    data = _extract_json(content)
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        raise LLMError(f"proposal status must be one of {', '.join(STATUSES)}")
    try:
        steps = tuple(steps_from_json(data.get("steps") or []))
    except ValueError as e:
        raise LLMError(f"malformed proposal: {e}") from None
    q, r = data.get("question") or "", data.get("reason") or ""
    if not isinstance(q, str) or not isinstance(r, str):
        raise LLMError("question and reason must be strings")
    if data["status"] == "clarify" and not q:
        raise LLMError("a clarify proposal needs a question")
    if data["status"] == "refuse" and not r:
        raise LLMError("a refuse proposal needs a reason")
    return LLMProposal(data["status"], steps, q, r, content)
