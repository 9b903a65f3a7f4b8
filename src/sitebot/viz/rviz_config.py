"""Parse an rviz2 ``.rviz`` config and check it against a ROS graph (no ROS here).

rviz2 is not installed on the development machines, so the shipped config
(``config/sitebot.rviz``) is checked the way rviz2 would fail at run time, but up front:

* every enabled display has a class the caller knows, with the message type rviz2 expects;
* its topic is advertised, by at least one publisher, with exactly that type;
* the display's QoS can match every publisher (a Reliable display on a Best Effort topic, or
  a Transient Local display on a Volatile publisher, receives nothing in rviz2);
* every tool that publishes (2D Goal Pose, 2D Pose Estimate) has a subscriber of its type.

:func:`parse_rviz_config` reads the file into :class:`RvizConfig`; :func:`check_config`
takes that, a graph snapshot (:class:`Endpoint` lists per topic, e.g. from rclpy's
``get_publishers_info_by_topic``) and the class -> type tables, and returns the problems
as sentences (empty = fine). The ``Update Topic`` of a Map display is optional in rviz2
(incremental updates) and not checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from sitebot.config.yamlio import load_yaml_text, read_text
from sitebot.errors import ConfigError, SitebotError

__all__ = ["RvizConfigError", "TopicRef", "DisplayRef", "ToolRef", "RvizConfig", "Endpoint",
           "parse_rviz_config", "load_rviz_config", "check_config", "resolve_topic",
           "IMPLICIT_TOPICS", "TOPICLESS_DISPLAYS"]

#: displays that subscribe to fixed topics of their own (TF: the tf2 listener)
IMPLICIT_TOPICS: dict[str, tuple[str, ...]] = {"rviz_default_plugins/TF": ("/tf", "/tf_static")}
#: displays that subscribe to nothing
TOPICLESS_DISPLAYS = frozenset({"rviz_common/Group", "rviz_default_plugins/Grid",
                                "rviz_default_plugins/Axes"})


class RvizConfigError(SitebotError):
    """The .rviz file is not a valid rviz2 config (names the file and the key path)."""


@dataclass(frozen=True)
class TopicRef:
    """A display's or tool's topic with the QoS rviz2 will subscribe/publish with."""
    name: str
    reliability: str = "Reliable"          # "Reliable" | "Best Effort" (rviz2's words)
    durability: str = "Volatile"           # "Volatile" | "Transient Local"
    depth: int = 5


@dataclass(frozen=True)
class DisplayRef:
    path: str                               # "Group/Name" as in the Displays panel
    cls: str
    enabled: bool                           # itself and every enclosing group enabled
    topic: TopicRef | None


@dataclass(frozen=True)
class ToolRef:
    cls: str
    topic: TopicRef | None


@dataclass(frozen=True)
class RvizConfig:
    file: str
    fixed_frame: str
    displays: tuple[DisplayRef, ...]
    tools: tuple[ToolRef, ...]

    def enabled_displays(self) -> list[DisplayRef]:
        return [d for d in self.displays if d.enabled]


@dataclass(frozen=True)
class Endpoint:
    """One publisher or subscriber seen in the graph: full type name and QoS policies as
    lower-case words ('reliable'/'best_effort', 'volatile'/'transient_local')."""
    type: str
    reliability: str = "reliable"
    durability: str = "volatile"
    node: str = ""


_RELIABILITY = {"reliable": "Reliable", "best effort": "Best Effort"}
_DURABILITY = {"volatile": "Volatile", "transient local": "Transient Local"}


def _topic(value: Any, where: str, file: str) -> TopicRef | None:
    if value is None:
        return None
    if isinstance(value, str):                           # old form: "Topic: /goal_pose"
        return TopicRef(value)
    if not isinstance(value, Mapping):
        raise RvizConfigError(f"{file}: {where}: a topic is a name or a mapping with 'Value', "
                              f"got {type(value).__name__}")
    name = value.get("Value")
    if not isinstance(name, str) or not name:
        raise RvizConfigError(f"{file}: {where}.Value: topic name missing")
    rel = str(value.get("Reliability Policy", "Reliable"))
    dur = str(value.get("Durability Policy", "Volatile"))
    if rel.lower() not in _RELIABILITY:
        raise RvizConfigError(f"{file}: {where}.Reliability Policy: '{rel}' is not one of "
                              f"{sorted(_RELIABILITY.values())}")
    if dur.lower() not in _DURABILITY:
        raise RvizConfigError(f"{file}: {where}.Durability Policy: '{dur}' is not one of "
                              f"{sorted(_DURABILITY.values())}")
    depth = value.get("Depth", 5)
    if not isinstance(depth, int) or depth < 1:
        raise RvizConfigError(f"{file}: {where}.Depth: must be an integer >= 1, got {depth!r}")
    return TopicRef(name, _RELIABILITY[rel.lower()], _DURABILITY[dur.lower()], depth)


def _displays(items: Any, where: str, file: str, parent: str, parent_on: bool,
              out: list[DisplayRef]) -> None:
    if not isinstance(items, list):
        raise RvizConfigError(f"{file}: {where}: 'Displays' must be a list")
    for i, d in enumerate(items):
        w = f"{where}[{i}]"
        if not isinstance(d, Mapping):
            raise RvizConfigError(f"{file}: {w}: a display is a mapping")
        cls, name = d.get("Class"), d.get("Name")
        if not isinstance(cls, str) or "/" not in cls:
            raise RvizConfigError(f"{file}: {w}.Class: 'package/Name' expected, got {cls!r}")
        if not isinstance(name, str) or not name:
            raise RvizConfigError(f"{file}: {w}.Name: missing")
        enabled = d.get("Enabled", True)
        if not isinstance(enabled, bool):
            raise RvizConfigError(f"{file}: {w}.Enabled: true or false, got {enabled!r}")
        path = f"{parent}/{name}" if parent else name
        on = parent_on and enabled
        if cls == "rviz_common/Group":
            out.append(DisplayRef(path, cls, on, None))
            _displays(d.get("Displays", []), f"{w}.Displays", file, path, on, out)
            continue
        topic_key = "Description Topic" if cls == "rviz_default_plugins/RobotModel" else "Topic"
        if cls == "rviz_default_plugins/RobotModel" and d.get("Description Source") != "Topic":
            raise RvizConfigError(f"{file}: {w}.Description Source: 'Topic' expected (the "
                                  "robot description comes from the robot_description topic)")
        out.append(DisplayRef(path, cls, on, _topic(d.get(topic_key), f"{w}.{topic_key}", file)))


def parse_rviz_config(text: str, file: str = "<rviz config>") -> RvizConfig:
    """Read an rviz2 config. :raises RvizConfigError: naming the file and key path."""
    try:
        doc = load_yaml_text(text, file)             # the one bounded YAML path
    except ConfigError as e:
        raise RvizConfigError(f"{e.file}:{e.where}: not YAML: {e.message}" if e.where
                              else f"{file}: not YAML: {e.message}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("Visualization Manager"), Mapping):
        raise RvizConfigError(f"{file}: 'Visualization Manager' mapping missing")
    vm = doc["Visualization Manager"]
    go = vm.get("Global Options")
    if not isinstance(go, Mapping) or not isinstance(go.get("Fixed Frame"), str):
        raise RvizConfigError(f"{file}: Visualization Manager.Global Options.Fixed Frame missing")
    displays: list[DisplayRef] = []
    _displays(vm.get("Displays", []), "Visualization Manager.Displays", file, "",
              bool(vm.get("Enabled", True)), displays)
    tools = []
    for i, t in enumerate(vm.get("Tools", []) or []):
        w = f"Visualization Manager.Tools[{i}]"
        if not isinstance(t, Mapping) or not isinstance(t.get("Class"), str):
            raise RvizConfigError(f"{file}: {w}.Class: missing")
        tools.append(ToolRef(t["Class"], _topic(t.get("Topic"), f"{w}.Topic", file)))
    return RvizConfig(file, go["Fixed Frame"], tuple(displays), tuple(tools))


def load_rviz_config(path: str | Path) -> RvizConfig:
    p = Path(path)
    try:
        text = read_text(p)                          # bounded size, UTF-8 only
    except ConfigError as e:
        raise RvizConfigError(f"{p}: cannot read: {e.message}") from None
    return parse_rviz_config(text, str(p))


def resolve_topic(name: str, namespace: str = "/") -> str:
    """A relative rviz topic name in rviz's node namespace (absolute names stay)."""
    if name.startswith("/"):
        return name
    ns = namespace.rstrip("/")
    return f"{ns}/{name}"


def _qos_problem(who: str, topic: TopicRef, pubs: Iterable[Endpoint]) -> list[str]:
    out = []
    for p in pubs:
        if topic.reliability == "Reliable" and p.reliability == "best_effort":
            out.append(f"{who}: subscribes Reliable but {p.node or 'a publisher'} publishes "
                       f"'{topic.name}' Best Effort: rviz2 would receive nothing "
                       "(set Reliability Policy: Best Effort)")
        if topic.durability == "Transient Local" and p.durability == "volatile":
            out.append(f"{who}: subscribes Transient Local but {p.node or 'a publisher'} "
                       f"publishes '{topic.name}' Volatile: rviz2 would receive nothing "
                       "(set Durability Policy: Volatile)")
    return out


def check_config(cfg: RvizConfig, graph: Mapping[str, Mapping[str, list[Endpoint]]],
                 display_types: Mapping[str, str | None], tool_types: Mapping[str, str | None],
                 namespace: str = "/") -> list[str]:
    """Problems of ``cfg`` against ``graph`` (``{topic: {'publishers': [...],
    'subscribers': [...]}}``, absolute topic names), one sentence each.

    :param display_types: display class -> the message type rviz2 subscribes with (full
        name, 'sensor_msgs/msg/LaserScan'); None for classes without a topic (Grid, Group).
        A class not in the table is a problem (wrong or unknown class).
    :param tool_types: tool class -> the type it publishes (None: publishes nothing).
    """
    problems: list[str] = []
    for d in cfg.enabled_displays():
        who = f"display '{d.path}' ({d.cls})"
        if d.cls not in display_types:
            problems.append(f"{who}: unknown display class (known: "
                            f"{', '.join(sorted(display_types))})")
            continue
        want = display_types[d.cls]
        if want is None:
            continue
        if d.cls in IMPLICIT_TOPICS:
            # tf2's listener: /tf reliable volatile, /tf_static reliable transient local
            topics = [(t, TopicRef(t, durability="Transient Local" if t.endswith("_static")
                                   else "Volatile")) for t in IMPLICIT_TOPICS[d.cls]]
        elif d.topic is None:
            problems.append(f"{who}: no topic configured")
            continue
        else:
            topics = [(resolve_topic(d.topic.name, namespace), d.topic)]
        for full, ref in topics:
            pubs = list(graph.get(full, {}).get("publishers", []))
            if not pubs:
                problems.append(f"{who}: shows '{full}' but nobody publishes it")
                continue
            wrong = sorted({p.type for p in pubs if p.type != want})
            if wrong:
                problems.append(f"{who}: '{full}' is published as {', '.join(wrong)}; "
                                f"the display needs {want}")
                continue
            problems.extend(_qos_problem(who, ref, pubs))
    for t in cfg.tools:
        if t.cls not in tool_types:
            problems.append(f"tool {t.cls}: unknown tool class (known: "
                            f"{', '.join(sorted(tool_types))})")
            continue
        want = tool_types[t.cls]
        if want is None:
            continue
        if t.topic is None:
            problems.append(f"tool {t.cls}: no topic configured")
            continue
        full = resolve_topic(t.topic.name, namespace)
        subs = list(graph.get(full, {}).get("subscribers", []))
        if not subs:
            problems.append(f"tool {t.cls}: publishes '{full}' but nobody subscribes to it")
            continue
        wrong = sorted({s.type for s in subs if s.type != want})
        if wrong:
            problems.append(f"tool {t.cls}: '{full}' is subscribed as {', '.join(wrong)}; "
                            f"the tool publishes {want}")
            continue
        for s in subs:
            if s.durability == "transient_local" and t.topic.durability == "Volatile":
                problems.append(f"tool {t.cls}: {s.node or 'a subscriber'} wants '{full}' "
                                "Transient Local; the tool publishes Volatile")
            if s.reliability == "reliable" and t.topic.reliability == "Best Effort":
                problems.append(f"tool {t.cls}: {s.node or 'a subscriber'} wants '{full}' "
                                "Reliable; the tool publishes Best Effort")
    return problems
