"""tour: drives the robot through a scripted site tour (the main job until skills exist).

Plans on the world's static map (sitebot.tour), follows the path with wheel odometry
(``odom``) from the known start pose, stops at each place of the route, saves a camera
snapshot there, and finally docks. Publishes ``cmd_vel`` (TwistStamped) only while it has
fresh odometry; stale odometry means a zero command. Writes ``<out_dir>/tour.json`` and
``<out_dir>/snapshots/*.png`` and exits (code 0 when every stop was reached).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Image, LaserScan

from sitebot.errors import SitebotError
from sitebot.types import quaternion_to_yaw
from sitebot.config.params import ParamSpec, ParamType
from sitebot.tour import (FollowerConfig, GridPlanner, PathFollower, planning_grid, tour_stops,
                    wrap_angle)
from sitebot.sim.world import load_world
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

SCHEMA = (
    ParamSpec("world", S, "substation", "world being toured (its site registry gives the places)"),
    ParamSpec("route", S, "", "route id to tour; '' = the world's longest route"),
    ParamSpec("spawn", S, "robot1", "the world's spawn pose the robot starts at"),
    ParamSpec("out_dir", S, "out/demo", "folder for tour.json and snapshots"),
    ParamSpec("max_speed_mps", F, 0.6, "cruise speed", 0.05, 1.5, unit="m/s"),
    ParamSpec("dwell_s", F, 1.0, "time spent at each stop (sim time)", 0.0, 30.0, unit="s"),
    ParamSpec("leg_timeout_s", F, 240.0, "give up a leg after this long (sim time; people "
              "near the path can hold the robot for a while)", 5.0, 3600.0, unit="s"),
    ParamSpec("odom_timeout_s", F, 0.3, "odometry older than this stops the base", 0.02, 5.0, unit="s"),
    ParamSpec("map_resolution_m", F, 0.1, "planning grid resolution", 0.02, 1.0, unit="m"),
    ParamSpec("robot_radius_m", F, 0.42, "inflation of obstacles for planning", 0.1, 2.0, unit="m"),
    ParamSpec("dock", B, True, "end the tour at the dock"),
    ParamSpec("role", S, "", "operator role the tour runs for: restricted zones of other "
              "roles are planned around"),
)


class TourNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("tour", **kwargs)
        self.p = declare_schema(self, SCHEMA)
        self.world = load_world(self.p["world"])
        if self.p["spawn"] not in self.world.spawn_poses:
            raise SitebotError(f"parameter 'spawn': world '{self.world.id}' has no spawn "
                               f"'{self.p['spawn']}'; it has {sorted(self.world.spawn_poses)}")
        self.start = tuple(self.world.spawn_poses[self.p["spawn"]])
        self.stops = tour_stops(self.world, self.p["route"] or None, dock=self.p["dock"])
        grid = planning_grid(self.world, self.p["map_resolution_m"], self.p["robot_radius_m"],
                             role=self.p["role"])
        self.planner = GridPlanner(grid)
        self.follow_cfg = FollowerConfig(max_speed_mps=self.p["max_speed_mps"])
        self.out = Path(self.p["out_dir"])
        (self.out / "snapshots").mkdir(parents=True, exist_ok=True)
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel", QOS_COMMAND)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.create_subscription(LaserScan, "scan", self.on_scan, QOS_SENSOR)
        self.create_subscription(Image, "camera/color/image_raw", self.on_image, QOS_SENSOR)
        self.create_timer(0.1, self.on_watchdog)
        self.pose: tuple[float, float, float] | None = None
        self.pose_stamp = -math.inf
        self.odom_stamp = None
        self.min_ahead_m = math.inf
        self.image: Image | None = None
        self.index = -1
        self.follower: PathFollower | None = None
        self.leg_start = 0.0
        self.dwell_until: float | None = None
        self.results: list[dict] = []
        self.finished = False
        self.exit_code = 1
        self.last_t: float | None = None
        self.get_logger().info(
            f"touring {len(self.stops)} stops in '{self.world.id}': "
            + " -> ".join(s.place_id for s in self.stops))

    # ---------------------------------------------------------------- inputs
    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_scan(self, msg: LaserScan) -> None:
        r = np.asarray(msg.ranges, dtype=np.float64)
        a = msg.angle_min + np.arange(len(r)) * msg.angle_increment
        front = np.abs(np.arctan2(np.sin(a), np.cos(a))) < math.radians(25)
        vals = r[front & np.isfinite(r)]
        self.min_ahead_m = float(vals.min()) if vals.size else math.inf

    def on_image(self, msg: Image) -> None:
        self.image = msg

    def on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        ox, oy = p.position.x, p.position.y
        oyaw = quaternion_to_yaw((p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w))
        if not all(math.isfinite(v) for v in (ox, oy, oyaw)):
            self.stop_base("non-finite odometry")
            return
        sx, sy, syaw = self.start
        c, s = math.cos(syaw), math.sin(syaw)
        self.pose = (sx + c * ox - s * oy, sy + s * ox + c * oy, wrap_angle(syaw + oyaw))
        self.pose_stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.odom_stamp = msg.header.stamp
        self.step(self.pose_stamp)

    def on_watchdog(self) -> None:
        if self.finished:
            return
        if self.now_s() - self.pose_stamp > self.p["odom_timeout_s"] and self.pose is not None:
            self.stop_base("odometry stale")

    # ---------------------------------------------------------------- tour logic
    def stop_base(self, why: str = "") -> None:
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "base_footprint"
        self.cmd_pub.publish(msg)
        if why:
            self.get_logger().warning(f"stopping: {why}", throttle_duration_sec=2.0)

    def send(self, v: float, w: float) -> None:
        msg = TwistStamped()
        # stamped with the odometry it was computed from: one command per measurement
        msg.header.stamp = self.odom_stamp or self.get_clock().now().to_msg()
        msg.header.frame_id = "base_footprint"
        msg.twist.linear.x, msg.twist.angular.z = float(v), float(w)
        self.cmd_pub.publish(msg)

    def begin_leg(self, t: float) -> None:
        self.index += 1
        if self.index >= len(self.stops):
            self.finish()
            return
        stop = self.stops[self.index]
        try:
            path = self.planner.plan(self.pose[:2], stop.pose[:2])
        except SitebotError as e:
            self.record(stop, t, "no_path", str(e))
            self.begin_leg(t)
            return
        self.follower = PathFollower(path, stop.pose[2], self.follow_cfg)
        self.leg_start = t
        length = sum(math.dist(a, b) for a, b in zip(path, path[1:]))
        self.get_logger().info(f"[{self.index + 1}/{len(self.stops)}] to {stop.place_id} "
                               f"({stop.name}): {length:.1f} m, {len(path)} waypoints")

    def record(self, stop, t: float, outcome: str, detail: str = "") -> None:
        snap = ""
        if outcome == "reached" and self.image is not None:
            img = np.frombuffer(bytes(self.image.data), np.uint8).reshape(
                self.image.height, self.image.width, 3)
            snap = f"snapshots/{self.index + 1:02d}_{stop.place_id}.png"
            cv2.imwrite(str(self.out / snap), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        x, y, yaw = self.pose
        self.results.append({
            "index": self.index + 1, "place": stop.place_id, "name": stop.name,
            "assets": list(stop.assets), "outcome": outcome, "detail": detail,
            "arrival_sim_time_s": round(t, 3), "leg_time_s": round(t - self.leg_start, 3),
            "goal": [round(v, 3) for v in stop.pose],
            "odom_pose": [round(x, 3), round(y, 3), round(yaw, 3)],
            "snapshot": snap})
        self.get_logger().info(f"[{self.index + 1}/{len(self.stops)}] {outcome} {stop.place_id} "
                               f"at t={t:.1f} s" + (f" ({detail})" if detail else "")
                               + (f", snapshot {snap}" if snap else ""))

    def step(self, t: float) -> None:
        if self.finished:
            return
        dt = 0.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        if self.follower is None:
            self.begin_leg(t)
            if self.finished:
                return
        if self.dwell_until is not None:
            self.stop_base()
            if t >= self.dwell_until:
                self.dwell_until = None
                self.begin_leg(t)
            return
        stop = self.stops[self.index]
        if t - self.leg_start > self.p["leg_timeout_s"]:
            self.stop_base()
            self.record(stop, t, "timeout", f"not reached within {self.p['leg_timeout_s']:g} s")
            self.begin_leg(t)
            return
        v, w, done = self.follower.update(self.pose, dt, self.min_ahead_m)
        if done:
            self.stop_base()
            self.record(stop, t, "reached")
            self.dwell_until = t + self.p["dwell_s"]
            return
        if self.follower.blocked:
            self.get_logger().warning(f"obstacle {self.min_ahead_m:.2f} m ahead: waiting",
                                   throttle_duration_sec=3.0)
        self.send(v, w)

    def finish(self) -> None:
        self.stop_base()
        self.finished = True
        ok = all(r["outcome"] == "reached" for r in self.results)
        self.exit_code = 0 if ok else 1
        report = {"world": self.world.id, "start": list(self.start),
                  "stops": self.results, "success": ok}
        (self.out / "tour.json").write_text(json.dumps(report, indent=2))
        n_ok = sum(r["outcome"] == "reached" for r in self.results)
        self.get_logger().info(f"tour finished: {n_ok}/{len(self.results)} stops reached; "
                               f"report {self.out / 'tour.json'}")


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = TourNode()
        while rclpy.ok() and not node.finished:
            rclpy.spin_once(node, timeout_sec=0.1)
        # make sure the final zero command goes out before leaving
        for _ in range(3):
            node.stop_base()
            time.sleep(0.02)
        return node.exit_code
    except KeyboardInterrupt:
        return 130
    except SitebotError as e:
        print(f"[ERROR] {e}", flush=True)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
