"""Word lists and patterns of the offline planner: requests that weaken or bypass safety
(refused before anything else is read), conditions and loops (not in the plan language),
politeness and filler, and verb forms.  Patterns are over :func:`text.clean` text."""
from __future__ import annotations

import re

__all__ = ["safety_violation", "condition_or_loop", "strip_fillers", "base_verb",
           "NEGATION"]

_SAFETY_THING = (r"(?:the\s+|your\s+|all\s+|any\s+|its\s+|my\s+)?(?:\w+\s+){0,2}?"
                 r"(?:lidars?|laser(?:\s+scanners?)?|scanners?|sensors?|cameras?|bumpers?|"
                 r"safety(?:\s+\w+)?|e-?stops?|emergency\s+stops?|estops?|"
                 r"collision(?:\s+\w+)?|obstacle\s+(?:detection|avoidance)|geo-?fenc\w*|"
                 r"speed\s+limits?|speed\s+caps?|limits?|limiters?|supervisor|watchdogs?|"
                 r"alarms?|people\s+detection|person\s+detection|keep[- ]?outs?|"
                 r"zones?|interlocks?|protective\s+\w+|separation(?:\s+\w+)?|brakes?|"
                 r"guards?|monitoring|restrictions?|checks?|confirmations?|warnings?|"
                 r"audit(?:\s+log)?|logging|heartbeat)")
_SAFETY: list[tuple[str, str]] = [
    # hidden / injected instructions and made-up modes
    (r"\b(?:ignore|disregard|forget|override|overrule|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)?"
     r"(?:previous|prior|earlier|above|preceding|former|original|existing|other|safety|"
     r"standing)?\s*(?:instructions?|rules?|prompts?|constraints?|restrictions?|guidelines?|"
     r"directives?|programming|orders|policies|policy|protocols?|limits?|settings?)\b",
     "an instruction to ignore the rules"),
    (r"\b(?:new|updated|revised|hidden|secret)\s+(?:system\s+)?(?:instructions?|orders|prompt)\b",
     "injected instructions"),
    (r"\bsystem\s*(?:prompt|message|override|:)|\[\s*system\s*\]|<\s*/?\s*system\s*>|"
     r"^\s*(?:system|assistant|admin)\s*:", "injected instructions"),
    (r"\b(?:you are now|from now on,? you|act as|pretend(?: to be| you are| that)?|"
     r"roleplay|role-play|jailbreak|sudo|dan mode)\b", "an attempt to change the robot's rules"),
    (r"\b(?:maintenance|override|debug|developer|dev|admin|administrator|god|test|service|"
     r"engineering|expert|unrestricted|unsafe|manual override|emergency override|"
     r"bypass|unlocked|unlimited|turbo|racing|sport|diagnostic|factory|root|superuser|"
     r"super ?user|safe ?mode ?off)\s+(?:\w+\s+)?mode\b", "a made-up operating mode"),
    (r"\b(?:enter|enable|activate|switch to|switch into|go into|turn on|engage)\s+\w+(?:\s+\w+)?\s+mode\b",
     "a request to switch operating mode"),
    (r"\b(?:override|bypass|circumvent|defeat|disarm|get around|work around|"
     r"sidestep|cheat)\b", "a request to bypass safety"),
    # switching safety functions off
    (r"\b(?:disable|deactivate|turn\s+off|switch\s+off|shut\s+off|shut\s+down|power\s+down|"
     r"kill|mute|silence|unplug|disconnect|cover|block|tape\s+over|ignore|suspend|pause|"
     r"stop|remove|lift|loosen|relax|raise|increase|lower|reduce|decrease|drop|cancel|"
     r"skip|reset|release|clear|acknowledge|silence)\s+" + _SAFETY_THING + r"\b",
     "a request to disable or weaken a safety function"),
    (r"\b(?:turn|switch|shut)\s+" + _SAFETY_THING + r"\s+(?:off|down)\b",
     "a request to disable a safety function"),
    (r"\bwithout\s+(?:any\s+|the\s+)?(?:safety|stopping|slowing|confirmation|confirming|asking|"
     r"checks?|checking|limits?|the\s+speed\s+limit|speed\s+limits?|supervision|the\s+supervisor|"
     r"permission|authori[sz]ation)\b", "a request to act without safety or confirmation"),
    (r"\b(?:no|skip\s+the|skip)\s+(?:confirmation|safety\s+checks?|speed\s+limits?)\b",
     "a request to skip safety or confirmation"),
    (r"\b(?:do not|don't|dont|never)\s+(?:stop|slow(?:\s+down)?|brake|yield|wait|ask)\s*"
     r"(?:for|if|when|even|near|around|because|$)", "a request not to stop or slow for safety"),
    (r"\b(?:do not|don't|dont|never)\s+(?:ask|wait)\s+for\s+(?:confirmation|permission|approval)\b",
     "a request to skip confirmation"),
    # speed
    (r"\bfaster\s+than\s+(?:allowed|permitted|the\s+(?:speed\s+)?limit|normal|usual|legal|"
     r"safe|the\s+rules?)\b", "a request to exceed the speed limit"),
    (r"\b(?:exceed|exceeding|break|breaking|beat|above)\s+(?:the\s+)?(?:speed\s+)?"
     r"(?:limits?|max(?:imum)?\s+speed)\b", "a request to exceed the speed limit"),
    (r"\b(?:full|max|maximum|top|highest|unlimited|unrestricted)\s+speed\b",
     "a request to drive at full speed regardless of limits"),
    (r"\bspeed\s+limits?\s+(?:off|disabled|removed)\b", "a request to remove the speed limit"),
    # people and zones
    (r"\b(?:even\s+if|even\s+when|even\s+though|regardless\s+of\s+whether)\s+"
     r"(?:there\s+(?:is|are)\s+|someone|somebody|anyone|people|a\s+person|workers?)",
     "a request to keep going near people"),
    (r"\b(?:run\s+over|drive\s+(?:into|through|over)\s+(?:people|the\s+people|workers|a\s+person|"
     r"someone|the\s+crowd))\b", "a request to endanger people"),
    (r"\b(?:ignore|disregard)\s+(?:the\s+)?(?:people|person|workers?|pedestrians?|humans?)\b",
     "a request to ignore people"),
    (r"\b(?:enter|into|inside|through|across|cross|crossing|cut\s+through|via|in)\s+"
     r"(?:the\s+|a\s+)?(?:\w+\s+){0,3}?keep[- ]?out\b", "a request to enter a keep-out zone"),
    (r"\bi\s*(?:am|'m|m)\s+(?:the\s+|a\s+|an\s+)?(?:site\s+)?(?:supervisor|admin|administrator|"
     r"manager|boss|engineer|developer|root|authori[sz]ed)\b|\bas\s+(?:the\s+|a\s+)?"
     r"(?:supervisor|admin|administrator|root)\b|\b(?:supervisor|admin)\s+(?:access|"
     r"privileges?|rights|role|override)\b|\bauthori[sz]ation\s+code\b|\bpassword\b",
     "a role claimed in the text (the caller's role comes from the request, not the words)"),
]
SAFETY_PATTERNS = [(re.compile(p), why) for p, why in _SAFETY]

_CONDITIONS: list[tuple[str, str]] = [
    (r"\bif\b(?!\s+(?:possible|you\s+can|you\s+could|you\s+don't\s+mind|you\s+would|"
     r"you\s+please|needed\s+for\s+access))", "a condition ('if ...')"),
    (r"\b(?:unless|whenever|otherwise|in\s+case|as\s+long\s+as|provided\s+that|"
     r"depending\s+on|only\s+when|except\s+when|or\s+else)\b", "a condition"),
    (r"\bwhen\s+(?!you(?:'re|\s+are|'ve|\s+have|\s+get|\s+arrive|\s+reach)|done|finished|"
     r"there|ready\b)", "a condition ('when ...')"),
    (r"\bonce\s+(?:the|it|its|pressure|temperature|the\s+\w+\s+(?:is|reaches|drops|rises))\b"
     r"(?!\s+(?:you|done))", "a condition ('once ...')"),
    (r"\b(?:until|till|while)\b", "a loop or condition ('until'/'while')"),
    (r"\b(?:every|each)\s+(?:\d+\s+|few\s+|other\s+|couple\s+of\s+)?(?:seconds?|minutes?|"
     r"hours?|days?|mornings?|evenings?|nights?|shifts?|weeks?|months?|time\s+you|visit|"
     r"round|cycle)\b", "a repetition ('every ...')"),
    (r"\b(?:hourly|daily|nightly|weekly|monthly|periodically|repeatedly|continuously|"
     r"constantly|continually|forever|indefinitely|non-?stop|on\s+repeat|in\s+a\s+loop|"
     r"over\s+and\s+over|again\s+and\s+again|keep\s+on|on\s+a\s+schedule|"
     r"at\s+regular\s+intervals)\b", "a repetition"),
    (r"\b(?:keep|continue)\s+\w+ing\b", "a repetition ('keep ...ing')"),
    (r"\b(?:repeat|loop|monitor|watch)\b", "a repetition or monitoring"),
    (r"\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|several|many|multiple)\s+times\b|"
     r"\b(?:twice|thrice)\b", "a repetition ('N times')"),
    (r"\b(?:above|below|over|under|exceeds?|greater\s+than|less\s+than|more\s+than|higher\s+than|"
     r"lower\s+than)\s+\d+(?:\.\d+)?\s*(?:bar|psi|kpa|degrees?|deg|c|f|%|percent)?\b.*"
     r"\b(?:then|close|open|shut|stop|alert|call|report)\b",
     "a threshold condition"),
]
CONDITION_PATTERNS = [(re.compile(p), why) for p, why in _CONDITIONS]

NEGATION = re.compile(r"^(?:do not|don't|dont|never|avoid|no need to|not)\b")

_LEAD_FILLERS = re.compile(
    r"^(?:please|pls|kindly|ok(?:ay)?|hey|hi|hello|right|so|well|now|also|and|then|first(?: of all)?|"
    r"firstly|secondly|next|finally|lastly|afterwards|after that|just|robot|sitebot|"
    r"(?:can|could|would|will|might) you(?: please)?|you should|you need to|you must|"
    r"you have to|i (?:want|need|would like|'d like|d like) you to|we (?:want|need) you to|"
    r"i (?:want|need) to|go ahead and|make sure (?:to|you)|be sure to|remember to|"
    r"don't forget to|do not forget to|try to|proceed to|start by|begin by|let's|lets|"
    r"your (?:next )?task is to|the task is to|i'd appreciate if you|time to|"
    r"once (?:you(?:'re| are) )?(?:done|finished|there)|when (?:you(?:'re| are) )?"
    r"(?:done|finished|there|ready)|after (?:you(?:'re| are) )?(?:done|finished)|"
    r"once you (?:get|arrive) there|when you (?:get|arrive) there|while you(?:'re| are) there|"
    r"after|before that|but first)[\s,:]+")
_TRAIL_FILLERS = re.compile(
    r"[\s,]+(?:please|pls|for me|now|right now|right away|immediately|asap|thanks|thank you|"
    r"if possible|if you can|if you could|if you don't mind|when you can|quickly|as well|too|"
    r"straight away|at once|first|next|afterwards|after that|soon|today|okay|ok|carefully|"
    r"slowly|safely)$")
_GERUND = {"reading": "read", "docking": "dock", "inspecting": "inspect", "going": "go",
           "picking": "pick", "patrolling": "patrol", "closing": "close", "opening": "open",
           "taking": "take", "bringing": "bring", "checking": "check", "driving": "drive",
           "fetching": "fetch", "grabbing": "grab", "delivering": "deliver", "putting": "put",
           "placing": "place", "dropping": "drop", "returning": "return", "visiting": "visit",
           "charging": "charge", "heading": "head", "moving": "move", "photographing":
           "photograph", "examining": "examine", "looking": "look", "shutting": "shut",
           "turning": "turn", "collecting": "collect", "carrying": "carry", "getting": "get",
           "navigating": "navigate", "doing": "do", "running": "run", "recording": "record",
           "isolating": "isolate", "retrieving": "retrieve", "leaving": "leave",
           "surveying": "survey", "scanning": "scan", "walking": "walk", "travelling":
           "travel", "traveling": "travel", "entering": "enter"}


def safety_violation(text: str) -> str | None:
    """Why *text* (cleaned) asks to weaken, bypass or disable safety, or None."""
    for pat, why in SAFETY_PATTERNS:
        m = pat.search(text)
        if m:
            return f"{why}: '{m.group(0).strip()}'"
    return None


def condition_or_loop(text: str) -> str | None:
    """Why *text* (cleaned) holds a condition or a loop, or None."""
    for pat, why in CONDITION_PATTERNS:
        m = pat.search(text)
        if m:
            return f"{why}: '{m.group(0).strip()}'"
    return None


def strip_fillers(clause: str) -> str:
    """Politeness and sequencing words off both ends of a clause."""
    c = clause.strip(" ,.;:!?")
    for _ in range(6):
        n = _LEAD_FILLERS.sub("", c).strip(" ,.;:!?")
        n = _TRAIL_FILLERS.sub("", n).strip(" ,.;:!?")
        if n == c:
            break
        c = n
    return c


def base_verb(clause: str) -> str:
    """A leading gerund as its base form ("reading the gauge" -> "read the gauge")."""
    head, _, rest = clause.partition(" ")
    if head in _GERUND:
        return (_GERUND[head] + " " + rest).strip()
    return clause
