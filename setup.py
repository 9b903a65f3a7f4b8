"""sitebot: installable by pip (``pip install -e .``) and by colcon (ament_python).

The ROS layout (``ros2 run sitebot <node>`` finds executables in ``lib/sitebot``) comes from
setup.cfg; launch/config/urdf/worlds are installed under ``share/sitebot``.
"""
from __future__ import annotations

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sitebot"
HERE = os.path.dirname(os.path.abspath(__file__))


def data_tree(folder: str) -> list[tuple[str, list[str]]]:
    """(install dir, files) pairs that mirror ``folder`` under share/sitebot."""
    out: dict[str, list[str]] = {}
    for path in sorted(glob(os.path.join(folder, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            dest = os.path.join("share", PACKAGE, os.path.dirname(path))
            out.setdefault(dest, []).append(path)
    return sorted(out.items())


def shipped_sites() -> list[tuple[str, list[str]]]:
    """The shipped worlds' site bundles (``sites/<world>/``), exported from the worlds when
    missing (``make setup`` exports them too; a test checks they are fresh)."""
    if not glob(os.path.join("sites", "*", "bundle.yaml")):
        import sys
        sys.path.insert(0, os.path.join(HERE, "src"))
        try:
            from sitebot.sim.export import export_all
            export_all(os.path.join(HERE, "sites"))
        except ImportError as e:          # a build without numpy/opencv: no shipped sites
            print(f"warning: shipped sites not exported ({e})")
    return [(d, [f for f in files if not os.path.basename(f).startswith(".")])
            for d, files in data_tree("sites")]


# Every node, runnable as `ros2 run sitebot <name>` and by `sitebot launch`.
NODES = {
    "simulator": "sitebot.nodes.simulator:main",
    "safety_supervisor": "sitebot.nodes.safety_supervisor:main",
    "control_loop": "sitebot.nodes.control_loop:main",
    "camera_perception": "sitebot.nodes.camera_perception:main",
    "spatial_perception": "sitebot.nodes.spatial_perception:main",
    "localization": "sitebot.nodes.localization:main",
    "navigation": "sitebot.nodes.navigation:main",
    "arm_planner": "sitebot.nodes.arm_planner:main",
    "task_planner": "sitebot.nodes.task_planner:main",
    "task_executor": "sitebot.nodes.task_executor:main",
    "web_console": "sitebot.nodes.web_console:main",
    "teleop_relay": "sitebot.nodes.teleop_relay:main",
    "site_viz": "sitebot.nodes.site_viz:main",
    "map_server": "sitebot.nodes.map_server:main",
    "survey_recorder": "sitebot.nodes.survey_recorder:main",
}

# C extensions (the control kernel of the control-loop issue) are added here.
from setuptools import Extension  # noqa: E402  (kept with the list it serves)

EXT_MODULES: list = [
    Extension(
        "sitebot.control._control_kernel",
        sources=["src/sitebot/control/native/_control_kernel.c",
                 "src/sitebot/control/native/control_kernel.c",
                 "src/sitebot/control/native/rt_loop.c"],
        depends=["src/sitebot/control/native/control_kernel.h", "src/sitebot/control/native/rt_loop.h"],
        include_dirs=["src/sitebot/control/native"],
        # -ffp-contract=off: no fused multiply-add, so C and the Python reference agree
        extra_compile_args=["-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Wextra",
                            "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                            "-Wno-cast-function-type"],
        libraries=["m", "pthread"],
    ),
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="ROS 2 stack for mobile manipulators on infrastructure sites",
    license="Apache-2.0",
    maintainer="sitebot maintainers",
    maintainer_email="maintainers@sitebot-robotics.org",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src", include=["sitebot", "sitebot.*"]),
    package_data={"sitebot.console": ["static/*"]},
    ext_modules=EXT_MODULES,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *data_tree("launch"),
        *data_tree("config"),
        *data_tree("urdf"),
        *data_tree("worlds"),
        *shipped_sites(),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in NODES.items()]
        + ["sitebot = sitebot.cli:main"],
    },
)
