"""What a simulated world hands the robot's side: the simulation's stand-in for a site
bundle (``../shared/design/brief.md``, "Site bundle": the registry, an occupancy map of the
mapped structure, where the robots start).  No PyBullet.

A node other than the simulator takes a :class:`SiteBundle` (:func:`load_bundle`) instead of
the whole :class:`~sitebot.sim.world.WorldSpec`: it sees the registry, the static map and the
start poses, never the scene (bodies, people, gauge values).  When a commissioned bundle
(``map.yaml`` and image) exists, it replaces this one function.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from sitebot.sim.world import OccupancyGrid, WorldSpec
from sitebot.sim.world_loader import load_world
from sitebot.site.registry import SiteRegistry
from sitebot.types import Pose2D

__all__ = ["SiteBundle", "load_bundle"]


@dataclass(frozen=True)
class SiteBundle:
    """A site as the robot knows it: ``site`` (the world/registry id), the ``registry`` and
    the robots' ``start_poses`` (map frame) by name."""

    site: str
    registry: SiteRegistry
    start_poses: Mapping[str, Pose2D]
    _world: WorldSpec = field(repr=False, compare=False)

    def static_map(self, resolution_m: float = 0.1, inflate_m: float = 0.0) -> OccupancyGrid:
        """The mapped static structure (the ground's edge and every obstacle footprint, grown
        by ``inflate_m`` [m]; keep-out zones not included) on a grid of ``resolution_m`` [m]."""
        return self._world.occupancy_grid(resolution_m, inflate_m, keep_out=False)

    def start_pose(self, name: str, default: Pose2D | None = None) -> Pose2D | None:
        """The start pose of robot ``name``, or ``default`` when the site has none by that
        name."""
        pose = self.start_poses.get(name)
        return default if pose is None else Pose2D.of(pose)


def load_bundle(world: str | Path) -> SiteBundle:
    """The bundle a world exports (a bare name such as ``"substation"`` or a world file).

    :raises WorldError: naming the world file and the problem (see :func:`load_world`).
    """
    w = load_world(world)
    return SiteBundle(w.id, w.registry, w.spawn_poses, w)
