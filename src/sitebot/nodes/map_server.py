"""map_server: the site bundle's occupancy map on ``map``, the role nav2_map_server plays on
a ROS install (which can replace this node: give it the bundle's ``map.yaml`` as
``yaml_filename``).

Outputs (reliable, transient local: late joiners get the map): ``map``
(nav_msgs/OccupancyGrid, frame ``frame_id``: the bundle's map.yaml exactly as nav2 reads it)
and ``keepout_filter_mask`` (nav_msgs/OccupancyGrid: 100 inside the registry's keep-out
zones, 0 elsewhere, on the map's grid: what a nav2 keepout costmap filter reads).
Service: ``map_server/map`` (nav_msgs/GetMap).  A bad bundle stops the node at start with
one line naming the file and the key.
"""
from __future__ import annotations

from typing import Any

from nav_msgs.msg import OccupancyGrid
from nav_msgs.srv import GetMap
from rclpy.node import Node

from sitebot.config.params import ParamSpec, ParamType
from sitebot.nodes.common import QOS_LATCHED, declare_schema, run_node
from sitebot.nodes.convert import occupancy_grid_msg
from sitebot.site.bundle import load_bundle
from sitebot.site.params import SITE_PARAM

S, B = ParamType.STRING, ParamType.BOOL

SCHEMA = (
    SITE_PARAM,
    ParamSpec("frame_id", S, "map", "frame of the published map"),
    ParamSpec("publish_keepout_mask", B, True, "also publish the keep-out zones as a nav2 "
              "costmap-filter mask on 'keepout_filter_mask'"),
)

__all__ = ["SCHEMA", "MapServerNode", "main"]


class MapServerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("map_server", **kwargs)
        self.p = p = declare_schema(self, SCHEMA)
        self.bundle = b = load_bundle(p["site"])
        stamp = self.get_clock().now().to_msg()
        m = b.map
        self.map_msg = occupancy_grid_msg(m.values, m.origin_x, m.origin_y, m.resolution_m,
                                          stamp, p["frame_id"])
        self.map_pub = self.create_publisher(OccupancyGrid, "map", QOS_LATCHED)
        self.map_pub.publish(self.map_msg)
        if p["publish_keepout_mask"]:
            self.mask_pub = self.create_publisher(OccupancyGrid, "keepout_filter_mask",
                                                  QOS_LATCHED)
            self.mask_pub.publish(occupancy_grid_msg(b.keep_out_mask(), m.origin_x,
                                                     m.origin_y, m.resolution_m, stamp,
                                                     p["frame_id"]))
        self.create_service(GetMap, "map_server/map", self.on_get_map)
        self.get_logger().info(
            f"map_server: site '{b.site}' ({b.folder}): {m.width} x {m.height} cells of "
            f"{m.resolution_m:g} m on {self.resolve_topic_name('map')}")

    def on_get_map(self, request: GetMap.Request, response: GetMap.Response) -> GetMap.Response:
        response.map = self.map_msg
        return response


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: MapServerNode(), args)


if __name__ == "__main__":
    raise SystemExit(main())
