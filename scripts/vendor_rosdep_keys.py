#!/usr/bin/env python3
"""Write tests/data/rosdep_keys_jazzy.txt: the rosdep keys a ROS 2 Jazzy install resolves,
from a checkout of the rosdistro repository (rosdep/base.yaml and rosdep/python.yaml: system
keys; jazzy/distribution.yaml: the released ROS packages).  The test of package.xml checks
every dependency key against this list, so a key that does not exist (python3-pybullet,
where the key is python3-pybullet-pip) fails here instead of in `rosdep install`.

    python3 scripts/vendor_rosdep_keys.py <rosdistro checkout> [--commit SHA]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "rosdep_keys_jazzy.txt"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rosdistro", type=Path, help="a checkout (or bare mirror) of ros/rosdistro")
    ap.add_argument("--commit", default="HEAD")
    a = ap.parse_args()

    def show(path: str) -> dict:
        text = subprocess.run(["git", "-C", str(a.rosdistro), "show", f"{a.commit}:{path}"],
                              check=True, capture_output=True, text=True).stdout
        return yaml.safe_load(text)
    sha = subprocess.run(["git", "-C", str(a.rosdistro), "rev-parse", a.commit], check=True,
                         capture_output=True, text=True).stdout.strip()
    keys = set(show("rosdep/base.yaml")) | set(show("rosdep/python.yaml"))
    for name, repo in show("jazzy/distribution.yaml")["repositories"].items():
        release = repo.get("release")
        if release:     # without 'packages': one package named as the repository
            keys |= set(release.get("packages") or [name])
    OUT.write_text(f"# rosdep keys resolvable on ROS 2 Jazzy (ros/rosdistro {sha}: "
                   "rosdep/base.yaml, rosdep/python.yaml, jazzy/distribution.yaml)\n"
                   "# regenerate: python3 scripts/vendor_rosdep_keys.py <rosdistro>\n"
                   + "".join(f"{k}\n" for k in sorted(keys)))
    print(f"{len(keys)} keys -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
