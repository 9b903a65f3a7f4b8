"""Parameters of the spatial perception node (ParamSpec schema) and their mapping to the
core configuration; robot sensor mounts from the URDF (:class:`SensorMounts`). No ROS here."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from sitebot.config.params import ParamSpec, ParamType
from sitebot.description.kinematics import planar_frame_pose
from sitebot.perception.cloud import CloudConfig, mount_transform
from sitebot.perception.localmap import LocalMapConfig
from sitebot.perception.people import ClassifierConfig, DetectorConfig, TrackerConfig
from sitebot.perception.spatial_pipeline import SpatialConfig
from sitebot.site.params import INITIAL_POSE_PARAM, SITE_PARAM
from sitebot.types import Pose2D

__all__ = ["SCHEMA", "spatial_config_from_params", "default_spatial", "robot_mounts",
           "SensorMounts"]

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING
FA = ParamType.FLOAT_ARRAY

SCHEMA = (
    # frames and sources
    ParamSpec("base_frame", S, "base_footprint", "robot base frame (points, obstacles)"),
    ParamSpec("odom_frame", S, "odom", "odometry frame (local map, tracking)"),
    ParamSpec("map_frame", S, "map", "map frame (people for the supervisor)"),
    ParamSpec("camera_frame", S, "camera_depth_optical_frame",
              "depth optical frame used when the image's header names none"),
    ParamSpec("laser_frame", S, "laser_link", "laser frame used when the scan names none"),
    replace(SITE_PARAM, default="", description="site bundle whose map rejects people candidates on "
            "structure: a folder or an installed site's name ('' = none)"),
    INITIAL_POSE_PARAM,
    ParamSpec("people_frame", S, "map", "frame of the people output: 'map' (needs a map pose: "
              "odometry/filtered, or odom + the initial map pose) or 'base'",
              choices=("map", "base")),
    # cloud
    ParamSpec("depth_stride", I, 1, "use every n-th depth pixel", 1, 8),
    ParamSpec("depth_min_range_m", F, 0.15, "nearest depth used", 0.0, 5.0, unit="m"),
    ParamSpec("depth_max_range_m", F, 8.0, "farthest depth used", 0.5, 50.0, unit="m"),
    ParamSpec("voxel_m", F, 0.05, "voxel grid filter size", 0.0, 0.5, unit="m"),
    ParamSpec("ground_band_m", F, 0.15, "ground plane candidates: points within this of z = 0",
              0.01, 1.0, unit="m"),
    ParamSpec("ground_max_tilt_deg", F, 8.0, "largest accepted ground plane tilt", 0.0, 45.0,
              unit="deg"),
    ParamSpec("ground_distance_m", F, 0.03, "RANSAC inlier distance", 0.005, 0.3, unit="m"),
    ParamSpec("min_obstacle_height_m", F, 0.05, "obstacle points: lowest height above ground",
              0.0, 1.0, unit="m"),
    ParamSpec("max_obstacle_height_m", F, 2.3, "obstacle points: highest height clustered",
              0.1, 10.0, unit="m"),
    ParamSpec("cluster_method", S, "grid", "obstacle clustering", choices=("grid", "dbscan")),
    ParamSpec("cluster_eps_m", F, 0.1, "cluster cell size / DBSCAN radius", 0.01, 1.0, unit="m"),
    ParamSpec("cluster_min_points", I, 4, "smallest cluster (points)", 1, 10000),
    # local map
    ParamSpec("local_map_size_m", F, 10.0, "local map window edge", 1.0, 100.0, unit="m"),
    ParamSpec("local_map_resolution_m", F, 0.05, "local map cell size", 0.01, 1.0, unit="m"),
    ParamSpec("local_map_decay_s", F, 5.0, "cells not observed for this long become unknown",
              0.1, 3600.0, unit="s"),
    ParamSpec("local_map_max_height_m", F, 1.9, "depth points above this (the robot's height) "
              "do not obstruct", 0.1, 10.0, unit="m"),
    ParamSpec("local_map_rate_hz", F, 5.0, "local_map publication rate", 0.1, 50.0, unit="Hz"),
    # people
    ParamSpec("people_max_range_m", F, 8.0, "people candidates farther than this are ignored",
              0.5, 30.0, unit="m"),
    ParamSpec("static_margin_m", F, 0.15, "candidates within this of static structure are "
              "structure", 0.0, 1.0, unit="m"),
    ParamSpec("static_map_resolution_m", F, 0.1, "cell size of the world's static occupancy "
              "grid", 0.01, 1.0, unit="m"),
    ParamSpec("depth_veto_height_m", F, 1.0, "the camera vetoes a lidar person candidate whose "
              "obstacle points stay below this height", 0.2, 2.0, unit="m"),
    ParamSpec("depth_max_age_s", F, 0.6, "depth frames older than this are not fused", 0.0,
              5.0, unit="s"),
    ParamSpec("birth_hits", I, 3, "detections before a track is published", 1, 20),
    ParamSpec("death_misses", I, 6, "scans without a detection before a track is dropped",
              1, 100),
    ParamSpec("accel_sigma_mps2", F, 2.0, "tracker process noise (white acceleration)", 0.01,
              20.0, unit="m/s^2"),
    ParamSpec("gate_max_m", F, 1.2, "largest distance of a detection to its track", 0.1, 5.0,
              unit="m"),
    ParamSpec("person_heading_min_speed_mps", F, 0.05, "a person's published heading is the "
              "walking direction above this speed, else 0", 0.0, 10.0, unit="m/s"),
    # diagnostics / input checks
    ParamSpec("stale_timeout_s", F, 1.0, "an input older than this is reported stale", 0.1,
              60.0, unit="s"),
)


def spatial_config_from_params(p: Mapping[str, Any]) -> SpatialConfig:
    cloud = CloudConfig(stride=p["depth_stride"], min_range_m=p["depth_min_range_m"],
                        max_range_m=p["depth_max_range_m"], voxel_m=p["voxel_m"],
                        ground_band_m=p["ground_band_m"],
                        ground_max_tilt_deg=p["ground_max_tilt_deg"],
                        ground_distance_m=p["ground_distance_m"],
                        min_obstacle_height_m=p["min_obstacle_height_m"],
                        max_obstacle_height_m=p["max_obstacle_height_m"],
                        cluster_method=p["cluster_method"], cluster_eps_m=p["cluster_eps_m"],
                        cluster_min_points=p["cluster_min_points"])
    lm = LocalMapConfig(size_m=p["local_map_size_m"], resolution_m=p["local_map_resolution_m"],
                        decay_s=p["local_map_decay_s"],
                        max_obstacle_height_m=p["local_map_max_height_m"],
                        min_obstacle_height_m=p["min_obstacle_height_m"])
    det = DetectorConfig(max_range_m=p["people_max_range_m"],
                         depth_veto_height_m=p["depth_veto_height_m"],
                         classifier=ClassifierConfig())
    trk = TrackerConfig(birth_hits=p["birth_hits"], death_misses=p["death_misses"],
                        accel_sigma_mps2=p["accel_sigma_mps2"], gate_max_m=p["gate_max_m"])
    return SpatialConfig(cloud=cloud, local_map=lm, detector=det, tracker=trk,
                         depth_max_age_s=p["depth_max_age_s"],
                         static_margin_m=p["static_margin_m"],
                         static_map_resolution_m=p["static_map_resolution_m"],
                         person_heading_min_speed_mps=p["person_heading_min_speed_mps"])


def default_params() -> dict[str, Any]:
    return {s.name: s.default for s in SCHEMA}


def default_spatial() -> SpatialConfig:
    return spatial_config_from_params(default_params())


def robot_mounts(description, base: str = "base_footprint",
                 camera: str = "camera_depth_optical_frame", laser: str = "laser_link"
                 ) -> tuple[np.ndarray, Pose2D]:
    """(T_base_camera 4x4, laser pose (x, y, yaw) in base) from the URDF's fixed joints."""
    T_cam = mount_transform(description, base, camera)
    return T_cam, Pose2D.of(planar_frame_pose(description, base, laser))


class SensorMounts:
    """Where the robot's depth cameras and lasers sit on the base (the URDF's fixed joints),
    looked up once per frame name; a message that names no frame gets the default one.

    :raises ValueError: (from the lookups) a frame that is not fixed to the base.
    """

    def __init__(self, description, base: str, camera: str, laser: str) -> None:
        self.description, self.base = description, base
        self.default_camera, self.default_laser = camera, laser
        self._cameras: dict[str, np.ndarray] = {}
        self._lasers: dict[str, Pose2D] = {}
        self.camera(camera)
        self.laser(laser)

    def camera(self, frame: str = "") -> np.ndarray:
        """T_base_camera (4x4) of an optical frame."""
        frame = frame or self.default_camera
        if frame not in self._cameras:
            self._cameras[frame] = mount_transform(self.description, self.base, frame)
        return self._cameras[frame]

    def laser(self, frame: str = "") -> Pose2D:
        """The planar pose of a laser frame in the base frame."""
        frame = frame or self.default_laser
        if frame not in self._lasers:
            self._lasers[frame] = Pose2D.of(planar_frame_pose(self.description, self.base,
                                                              frame))
        return self._lasers[frame]
