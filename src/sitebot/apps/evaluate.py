"""``sitebot eval <what> [args]``: evaluations against the simulator's ground truth (or a
labelled set), each in ``sitebot.tools`` and printing a table of figures.

  sitebot eval perception     fiducial pose, gauge reading, people, obstacles
  sitebot eval localization   EKF position/heading error, consistency, kidnapping
  sitebot eval planner        language planner accuracy on the labelled instruction set
"""
from __future__ import annotations

import importlib
import sys

EVALUATIONS = {
    "perception": "sitebot.tools.perception_eval",
    "localization": "sitebot.tools.localization_eval",
    "planner": "sitebot.tools.planner_eval",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in EVALUATIONS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(EVALUATIONS[argv[0]]).main(argv[1:])
