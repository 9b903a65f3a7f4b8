"""rosbag2 recordings in MCAP storage with the ``rosbags`` library (no ROS needed).

:func:`write_bag` takes CDR-serialized messages per topic (as a raw rclpy subscription
delivers them) and writes a rosbag2 folder (``metadata.yaml`` + ``<name>_0.mcap``) that
``ros2 bag info/play``, Foxglove and ``rosbags`` read. The message definitions come from
the ROS 2 Jazzy type store plus sitebot_interfaces' own ``.msg`` files. Timestamps are the
simulation time at which the recorder received each message.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

__all__ = ["write_bag", "read_bag", "typestore", "BAG_VERSION"]

#: rosbag2 metadata version 8 (ROS 2 Jazzy; Kilted reads it too)
BAG_VERSION = 8


def _msg_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path(sys.prefix) / "share" / "sitebot_interfaces" / "msg",
            here.parents[1] / "sitebot_interfaces" / "msg"]


@lru_cache(maxsize=1)
def typestore():
    """Jazzy's standard types plus sitebot_interfaces/msg/*."""
    ts = get_typestore(Stores.ROS2_JAZZY)
    for d in _msg_dirs():
        if d.is_dir():
            types = {}
            for f in sorted(d.glob("*.msg")):
                types.update(get_types_from_msg(f.read_text(), f"sitebot_interfaces/msg/{f.stem}"))
            ts.register(types)
            break
    return ts


def write_bag(path: str | Path, topics: Mapping[str, tuple[str, Sequence[tuple[int, bytes]]]],
              *, custom: Mapping[str, str] | None = None) -> Path:
    """Write ``topics`` ({name: (type, [(t_ns, cdr bytes), ..])}) as a rosbag2/MCAP folder
    at ``path`` (must not exist). Topic names are made absolute. Returns the path."""
    ts = typestore()
    p = Path(path)
    w = Writer(p, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
    for k, v in (custom or {}).items():
        w.set_custom_data(k, str(v))
    with w:
        merged: list[tuple[int, int, object, bytes]] = []
        for i, (topic, (msgtype, msgs)) in enumerate(topics.items()):
            if not msgs:
                continue
            name = topic if topic.startswith("/") else "/" + topic
            conn = w.add_connection(name, msgtype, typestore=ts)
            merged += [(t, i, conn, data) for t, data in msgs]
        merged.sort(key=lambda x: (x[0], x[1]))
        for t, _, conn, data in merged:
            w.write(conn, t, data)
    return p


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> dict[str, list]:
    """{topic: [(t_ns, decoded message)]} (rosbags' own message classes)."""
    ts = typestore()
    out: dict[str, list] = {}
    with Reader(path) as r:
        conns = [c for c in r.connections if topics is None or c.topic in set(topics)]
        for conn, t, data in r.messages(connections=conns):
            out.setdefault(conn.topic, []).append((t, ts.deserialize_cdr(data, conn.msgtype)))
    return out
