"""The ``sitebot`` command line.

  sitebot launch FILE [name:=value ...]   run a ROS 2 YAML launch file without ROS's launch
  sitebot demo ["INSTRUCTION"] [--world W]   the main job: a simulated mission from English
  sitebot check FILE ...                   validate URDF/xacro, world, site registry,
                                           parameter and launch files
  sitebot bench sim                        simulation real-time factor benchmark
  sitebot key init [PATH]                  create the site's authority key (docs/security.md)
  sitebot safety reset | mode MODE         signed requests to the safety supervisor
  sitebot security policy [--namespace NS] the SROS2 policy of the stack (docs/sros2.md)

``launch``, ``demo``, ``regress`` and ``console`` start nodes that sign and verify with the
site's authority key: they create the default one first when it is missing (a warning, not
a failure, when it exists but is unusable: the nodes then refuse every assertion and say so).

Every :class:`~sitebot.errors.SitebotError` ends as one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from sitebot import __version__
from sitebot.errors import SitebotError

__all__ = ["main"]


def _ensure_authority_key() -> None:
    from sitebot.security import KeyFileError, ensure_key
    try:
        ensure_key()
    except KeyFileError as e:
        print(f"sitebot: warning: {e}", file=sys.stderr)


def _cmd_launch(argv: list[str]) -> int:
    from sitebot.apps.check import validate_launch_params
    from sitebot.launcher import main as launch_main

    # the parameter checks of `sitebot check`, before anything is printed or started
    if not any(a in ("-h", "--help", "--print") for a in argv):
        _ensure_authority_key()
    return launch_main(argv, validate=validate_launch_params)


def _cmd_demo(argv: list[str]) -> int:
    from sitebot.apps.demo import main as mission_main
    _ensure_authority_key()
    return mission_main(argv)


def _cmd_check(argv: list[str]) -> int:
    from sitebot.apps.check import main as check_main
    return check_main(argv)


def _cmd_bench(argv: list[str]) -> int:
    from sitebot.apps.bench import main as bench_main
    return bench_main(argv)


def _cmd_plan(argv: list[str]) -> int:
    from sitebot.apps.plan import main as plan_main
    return plan_main(argv)


def _cmd_regress(argv: list[str]) -> int:
    from sitebot.apps.regress import main as regress_main
    _ensure_authority_key()
    return regress_main(argv)


def _cmd_campaign(argv: list[str]) -> int:
    from sitebot.apps.campaign import main as campaign_main
    _ensure_authority_key()
    return campaign_main(argv)


def _cmd_eval(argv: list[str]) -> int:
    from sitebot.apps.evaluate import main as eval_main
    return eval_main(argv)


def _cmd_console(argv: list[str]) -> int:
    from sitebot.apps.console import main as console_main
    _ensure_authority_key()
    return console_main(argv)


def _cmd_key(argv: list[str]) -> int:
    from sitebot.apps.safety import key_main
    return key_main(argv)


def _cmd_safety(argv: list[str]) -> int:
    from sitebot.apps.safety import safety_main
    return safety_main(argv)


def _cmd_security(argv: list[str]) -> int:
    from sitebot.apps.security import main as security_main
    return security_main(argv)


def _cmd_site(argv: list[str]) -> int:
    from sitebot.apps.site import main as site_main
    return site_main(argv)


def _cmd_survey(argv: list[str]) -> int:
    from sitebot.apps.survey import main as survey_main
    return survey_main(argv)


def _cmd_map(argv: list[str]) -> int:
    from sitebot.apps.mapping import main as map_main
    return map_main(argv)


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "launch": (_cmd_launch, "run a ROS 2 YAML launch file (nodes as separate processes)"),
    "demo": (_cmd_demo, "run a full simulated mission from an English instruction, headless"),
    "check": (_cmd_check, "validate URDF, world, site registry, parameter and launch files"),
    "bench": (_cmd_bench, "benchmarks that print figures"),
    "plan": (_cmd_plan, "turn a plain-English instruction into a validated task plan"),
    "regress": (_cmd_regress, "run scenario suites headless (JUnit, HTML report, MCAP bags)"),
    "campaign": (_cmd_campaign, "randomized runs of scenario templates, success rates"),
    "eval": (_cmd_eval, "evaluate perception, localization or the planner against ground truth"),
    "console": (_cmd_console, "serve the web console (map, camera, e-stop, teleop, instructions)"),
    "site": (_cmd_site, "site bundles: export a world's, check one, list the installed"),
    "survey": (_cmd_survey, "record a site survey (start, stop, status) for commissioning"),
    "map": (_cmd_map, "build a site's map and surveyed markers from a survey bag"),
    "key": (_cmd_key, "create or check the site's authority key (signed roles and requests)"),
    "safety": (_cmd_safety, "signed safety supervisor requests: reset, mode"),
    "security": (_cmd_security, "the SROS2 access-control policy of the stack (docs/sros2.md)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="sitebot", description="sitebot: ROS 2 stack for infrastructure-site robots",
        epilog="commands:\n" + "\n".join(f"  {k:<8} {v[1]}" for k, v in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sitebot {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    if not argv or argv[0] in ("-h", "--help", "--version"):
        parser.parse_args(argv or ["--help"])
        return 0
    ns, rest = parser.parse_known_args(argv[:1])
    try:
        return COMMANDS[ns.command][0](argv[1:] + rest)
    except SitebotError as e:
        print(f"sitebot {ns.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
