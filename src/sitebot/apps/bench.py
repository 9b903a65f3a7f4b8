"""``sitebot bench <what> [args]``: benchmarks that print figures and ratios measured side by
side in one run. Each lives in ``sitebot.tools`` next to the others; this command picks one.

  sitebot bench sim          simulation real-time factor (core and node, per world)
  sitebot bench control      the control kernel (C vs Python), the 1 kHz RT loop, tracking
  sitebot bench safety       the supervisor cycle, then hazard-to-stop latency in simulation
  sitebot bench safety latency [--speed ...]   only the latency
  sitebot bench perception | localization | nav | arm | planner
  sitebot bench shutdown     how fast every node ends on SIGINT
  sitebot bench commission [--short]   a shipped world commissioned from nothing
  sitebot bench profile SCENARIO [--py-spy]   CPU per simulated second, per process of a run
  sitebot bench rays         lidar and depth per frame: PyBullet vs Open3D ray casting
  sitebot bench campaign [--runs 4] [--jobs 2]   campaign throughput: local pool vs Ray
"""
from __future__ import annotations

import importlib
import sys

__all__ = ["main", "BENCHES"]

#: ``sitebot bench <what> ARGS`` runs ``<module>.main(ARGS)``
BENCHES = {
    "sim": "sitebot.tools.sim_bench",
    "control": "sitebot.tools.control_bench",
    "perception": "sitebot.tools.perception_bench",
    "localization": "sitebot.tools.localization_bench",
    "nav": "sitebot.tools.nav_bench",
    "arm": "sitebot.tools.arm_bench",
    "planner": "sitebot.tools.planner_bench",
    "shutdown": "sitebot.tools.shutdown_bench",
    "commission": "sitebot.tools.commission",
    "profile": "sitebot.tools.run_profile",
    "rays": "sitebot.tools.ray_bench",
    "campaign": "sitebot.tools.campaign_bench",
}


def _safety(argv: list[str]) -> int:
    from sitebot.tools.safety_latency import main as latency_main
    if argv[:1] == ["latency"]:
        return latency_main(argv[1:])
    from sitebot.tools.safety_bench import main as safety_main
    return safety_main(argv) or latency_main([])


def main(argv: list[str]) -> int:
    what = argv[0] if argv else ""
    if what == "safety":
        return _safety(argv[1:])
    if what in BENCHES:
        return importlib.import_module(BENCHES[what]).main(argv[1:])
    help_asked = what in ("-h", "--help")
    print(__doc__.strip(), file=sys.stdout if help_asked else sys.stderr)
    if not help_asked:
        print(f"sitebot bench: unknown benchmark {what!r}; accepted: "
              + ", ".join(sorted([*BENCHES, "safety"])), file=sys.stderr)
    return 0 if help_asked else 2
