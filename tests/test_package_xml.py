"""Every dependency key of the project's package.xml files resolves with rosdep on ROS 2
Jazzy: checked against the vendored key list tests/data/rosdep_keys_jazzy.txt (rosdistro's
rosdep/base.yaml, rosdep/python.yaml and jazzy/distribution.yaml; regenerate with
scripts/vendor_rosdep_keys.py).  A package of this repository needs no key.  (Issue 21:
`python3-pybullet` is not a key; `rosdep install` stopped at it.)"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPENDS = ("depend", "build_depend", "buildtool_depend", "build_export_depend", "exec_depend",
           "test_depend", "doc_depend")


def _keys() -> set[str]:
    lines = (ROOT / "tests" / "data" / "rosdep_keys_jazzy.txt").read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def _manifests() -> list[Path]:
    return [ROOT / "package.xml"] + sorted((ROOT / "src").glob("*/package.xml"))


def test_every_dependency_key_exists_on_jazzy():
    keys = _keys()
    assert len(keys) > 3000 and {"rclpy", "python3-numpy", "ros2_controllers"} <= keys
    ours = {ET.parse(m).getroot().findtext("name") for m in _manifests()}
    missing = []
    for m in _manifests():
        for tag in DEPENDS:
            for e in ET.parse(m).getroot().iter(tag):
                key = (e.text or "").strip()
                if key not in keys and key not in ours:
                    missing.append(f"{m.relative_to(ROOT)}: <{tag}>{key}</{tag}>")
    assert missing == [], "no such rosdep key on Jazzy: " + "; ".join(missing)


def test_the_check_can_fail():
    assert "python3-pybullet" not in _keys() and "python3-pybullet-pip" in _keys()
