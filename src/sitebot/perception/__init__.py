"""Perception (core, no ROS): fiducials and gauge reading from the camera
(:mod:`.fiducials`, :mod:`.gauge`), point clouds, obstacles, local map and people from depth
and lidar.  Nodes: ``camera_perception``, ``spatial_perception``.  Submodules are imported
on demand (nothing heavy here)."""
