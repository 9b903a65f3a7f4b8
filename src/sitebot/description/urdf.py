"""Load, expand and validate the robot description (URDF or xacro).

The description is the single source of the robot's geometry: the simulator, the
kinematics and the odometry read the wheel radius, the wheel separation and the joint
limits from here instead of duplicating constants.

Validation (each failure is a :class:`~sitebot.errors.UrdfError` naming the file and the
line, or the link/joint):

* well-formed XML whose root element is ``<robot>``;
* unique link and joint names, every joint's parent and child link exist;
* the links form one tree: a single root, no link with two parents, no cycle;
* revolute, continuous and prismatic joints have ``<limit>`` with velocity > 0 and
  effort > 0; revolute and prismatic ones also lower < upper;
* every ``<inertial>`` has mass in (0, 10 t] and an inertia tensor that is positive
  definite and whose principal moments satisfy the triangle inequality (I1 + I2 >= I3);
* every number is finite; origins lie within +-1 km and +-4*pi rad; ``<contact>``
  frictions (``lateral_friction`` ...) lie in [0, 10]; link and joint names are printable;
* ``<mimic>`` names an existing joint.

A ``.xacro`` file is expanded with bounded work (:mod:`.xacro_bounded`: a child process
with a timeout and memory, output and exponent bounds); a plain file is read with the
size and UTF-8 checks of :func:`sitebot.config.yamlio.read_text`.

Line numbers point into the file that was parsed: the source itself for a plain URDF;
for a xacro file (whose expansion has no source lines) the error names the link or joint
and gives the line of the expanded XML in the message.
"""
from __future__ import annotations

import enum
import hashlib
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping
from xml.parsers import expat

import numpy as np

from sitebot.config.checks import ANGLE_LIMIT_RAD, MAX_FRICTION, MAX_MASS_KG, SITE_HEIGHT_M
from sitebot.config.yamlio import read_text
from sitebot.description.xacro_bounded import expand_xacro
from sitebot.errors import UrdfError
from sitebot.paths import data_path

__all__ = [
    "JointType",
    "Origin",
    "Mimic",
    "JointInfo",
    "Geometry",
    "LinkInfo",
    "RobotDescription",
    "load_robot_description",
    "parse_urdf",
    "write_urdf_file",
    "ARM_JOINT_NAMES",
    "GRIPPER_JOINT_NAMES",
    "WHEEL_JOINT_NAMES",
]

#: Unprefixed names of the joints other modules address by role.
ARM_JOINT_NAMES: tuple[str, ...] = tuple(f"arm_joint_{i}" for i in range(1, 7))
GRIPPER_JOINT_NAMES: tuple[str, ...] = ("gripper_left_finger_joint", "gripper_right_finger_joint")
WHEEL_JOINT_NAMES: tuple[str, ...] = ("left_wheel_joint", "right_wheel_joint")

_ROOT_LINK_SUFFIX = "base_footprint"
#: Relative tolerance of the inertia triangle inequality (URDFs carry rounded numbers).
_TRIANGLE_RTOL = 1e-6


class JointType(str, enum.Enum):
    """URDF joint types."""

    REVOLUTE = "revolute"
    CONTINUOUS = "continuous"
    PRISMATIC = "prismatic"
    FIXED = "fixed"
    FLOATING = "floating"
    PLANAR = "planar"

    @property
    def movable(self) -> bool:
        return self is not JointType.FIXED


_LIMITED_TYPES = (JointType.REVOLUTE, JointType.CONTINUOUS, JointType.PRISMATIC)


@dataclass(frozen=True)
class Origin:
    """A URDF ``<origin>``: translation [m] and roll-pitch-yaw [rad] (fixed axes X, Y, Z)."""

    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Mimic:
    """``<mimic>``: position = multiplier * position(joint) + offset."""

    joint: str
    multiplier: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class JointInfo:
    """One joint of the description.

    ``lower``/``upper`` are [rad] (revolute) or [m] (prismatic), ``None`` for continuous,
    fixed, floating and planar joints.  ``velocity_limit`` is [rad/s] or [m/s],
    ``effort_limit`` [N*m] or [N]; ``None`` for fixed joints.  ``axis`` is a unit vector
    in the joint frame.  ``line`` is the line of the ``<joint>`` element in the parsed XML.
    """

    name: str
    type: JointType
    parent: str
    child: str
    axis: tuple[float, float, float]
    origin_xyz: tuple[float, float, float]
    origin_rpy: tuple[float, float, float]
    lower: float | None = None
    upper: float | None = None
    velocity_limit: float | None = None
    effort_limit: float | None = None
    mimic: Mimic | None = None
    line: int | None = None

    @property
    def origin(self) -> Origin:
        return Origin(self.origin_xyz, self.origin_rpy)


@dataclass(frozen=True)
class Geometry:
    """A primitive (or mesh) of a visual/collision element, in the link frame.

    Sizes in metres: ``size`` (box, x y z), ``radius`` (cylinder, sphere), ``length``
    (cylinder, along its local z).
    """

    kind: str  # "box" | "cylinder" | "sphere" | "mesh"
    origin: Origin = Origin()
    size: tuple[float, float, float] | None = None
    radius: float | None = None
    length: float | None = None
    filename: str | None = None


@dataclass(frozen=True)
class LinkInfo:
    """One link: its inertial (``None`` for pure frames) and collision geometry.

    ``inertia`` is (ixx, ixy, ixz, iyy, iyz, izz) [kg*m^2] about the inertial origin.
    """

    name: str
    mass_kg: float | None = None
    inertia: tuple[float, float, float, float, float, float] | None = None
    inertial_origin: Origin = Origin()
    collisions: tuple[Geometry, ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class RobotDescription:
    """A validated robot description.

    ``xml`` is the expanded URDF text, ``source`` the file it came from, ``prefix`` the
    string prepended to every link and joint name (the xacro ``prefix`` argument).
    ``joints`` and ``link_infos`` are read-only mappings in document order.  Two
    descriptions compare equal when their text, source, links and prefix are equal.
    """

    xml: str
    source: Path
    name: str
    joints: Mapping[str, JointInfo] = field(compare=False)
    links: tuple[str, ...]
    root_link: str
    link_infos: Mapping[str, LinkInfo] = field(
        default_factory=lambda: MappingProxyType({}), compare=False)
    prefix: str = ""

    # ---- names by role -------------------------------------------------------------
    def prefixed(self, name: str) -> str:
        """``prefix + name``: the full name of an unprefixed link or joint name."""
        return self.prefix + name

    def _role(self, role: str, names: tuple[str, ...]) -> tuple[str, ...]:
        full = tuple(self.prefixed(n) for n in names)
        missing = [n for n in full if n not in self.joints]
        if missing:
            raise UrdfError(f"the description has no {role} joint(s) {', '.join(missing)}; "
                            f"expected {', '.join(full)}", self.source, missing[0])
        return full

    @property
    def arm_joints(self) -> tuple[str, ...]:
        """The six arm joints, base to flange."""
        return self._role("arm", ARM_JOINT_NAMES)

    @property
    def gripper_joints(self) -> tuple[str, ...]:
        """(left finger, right finger); the right one mimics the left."""
        return self._role("gripper", GRIPPER_JOINT_NAMES)

    @property
    def wheel_joints(self) -> tuple[str, ...]:
        """(left wheel, right wheel)."""
        return self._role("wheel", WHEEL_JOINT_NAMES)

    @property
    def actuated_joints(self) -> tuple[str, ...]:
        """Joints with an actuator: wheels, arm, then the gripper joints that mimic nothing."""
        grip = tuple(j for j in self.gripper_joints if self.joints[j].mimic is None)
        return self.wheel_joints + self.arm_joints + grip

    @property
    def movable_joints(self) -> tuple[str, ...]:
        """Every non-fixed joint, in document order."""
        return tuple(n for n, j in self.joints.items() if j.type.movable)

    @property
    def caster_links(self) -> tuple[str, ...]:
        """Links whose name contains ``caster`` (passive, low-friction supports)."""
        return tuple(n for n in self.links if "caster" in n[len(self.prefix):])

    # ---- geometry the simulator and kinematics need --------------------------------
    @property
    def wheel_radius_m(self) -> float:
        """Radius [m] of the left wheel's collision cylinder (or sphere)."""
        joint = self.joints[self.wheel_joints[0]]
        info = self.link_infos.get(joint.child)
        for geom in (info.collisions if info else ()):
            if geom.kind in ("cylinder", "sphere") and geom.radius is not None:
                return float(geom.radius)
        raise UrdfError(f"wheel link '{joint.child}' has no cylinder or sphere collision "
                        "to read the wheel radius from", self.source, joint.child)

    @property
    def wheel_separation_m(self) -> float:
        """Distance [m] between the two wheel centres (the wheel joint origins)."""
        left, right = (self.joints[j] for j in self.wheel_joints)
        if left.parent != right.parent:
            raise UrdfError("wheel joints must share one parent link to read the wheel "
                            f"separation ('{left.parent}' != '{right.parent}')",
                            self.source, left.name)
        return float(np.linalg.norm(np.subtract(left.origin_xyz, right.origin_xyz)))

    def joint(self, name: str) -> JointInfo:
        """The joint called ``name`` (full or unprefixed name)."""
        for candidate in (name, self.prefixed(name)):
            if candidate in self.joints:
                return self.joints[candidate]
        raise UrdfError(f"no joint '{name}'; joints are: {', '.join(self.joints)}",
                        self.source, name)


# ======================================================================================
# loading
# ======================================================================================

def load_robot_description(path: Path | str | None = None,
                           mappings: Mapping[str, str] | None = None) -> RobotDescription:
    """Load and validate a robot description.

    :param path: a ``.urdf`` or ``.xacro`` file; default ``urdf/sitebot.urdf.xacro`` of the
        package's data directory.
    :param mappings: xacro arguments (``prefix``, ``hardware_plugin``, ``use_sim``); only
        allowed for xacro files.
    :raises UrdfError: the file is missing, malformed or physically unusable.
    """
    source = Path(path) if path is not None else data_path("urdf", "sitebot.urdf.xacro")
    source = source.resolve()
    if not source.is_file():
        raise UrdfError("robot description file not found", source)
    mappings = {str(k): str(v) for k, v in (mappings or {}).items()}
    if source.name.endswith(".xacro"):
        text = expand_xacro(source, mappings)
        from_xacro = True
    else:
        if mappings:
            raise UrdfError(f"xacro arguments {sorted(mappings)} given for a plain URDF; "
                            "arguments apply only to .xacro files", source)
        text = read_text(source, UrdfError)     # bounded size, UTF-8 only
        from_xacro = False
    return parse_urdf(text, source, prefix=mappings.get("prefix"), expanded=from_xacro)


# ======================================================================================
# parsing and validation
# ======================================================================================

class _Doc:
    """An ElementTree with the source line of every element."""

    def __init__(self, root: ET.Element, lines: dict[int, int]) -> None:
        self.root = root
        self._lines = lines

    def line(self, el: ET.Element) -> int | None:
        return self._lines.get(id(el))


def _parse_xml(text: str, source: Path) -> _Doc:
    parser = expat.ParserCreate()
    lines: dict[int, int] = {}
    stack: list[ET.Element] = []
    roots: list[ET.Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = ET.Element(tag, attrs)
        lines[id(el)] = parser.CurrentLineNumber
        if stack:
            stack[-1].append(el)
        else:
            roots.append(el)
        stack.append(el)

    def end(tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            el = stack[-1]
            if len(el):
                last = el[-1]
                last.tail = (last.tail or "") + data
            else:
                el.text = (el.text or "") + data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise UrdfError(f"malformed XML: {expat.ErrorString(exc.code)} (column {exc.offset})",
                        source, exc.lineno) from exc
    return _Doc(roots[0], lines)


class _Checker:
    """Helpers that raise UrdfError at the right place."""

    def __init__(self, doc: _Doc, source: Path, expanded: bool) -> None:
        self.doc = doc
        self.source = source
        self.expanded = expanded

    def fail(self, message: str, el: ET.Element | None, what: str | None) -> UrdfError:
        line = self.doc.line(el) if el is not None else None
        if self.expanded or line is None:
            if line is not None:
                message = f"{message} (line {line} of the expanded URDF)"
            return UrdfError(message, self.source, what)
        if what:
            message = f"{what}: {message}"
        return UrdfError(message, self.source, line)

    def floats(self, el: ET.Element, attr: str, n: int, what: str,
               default: tuple[float, ...] | None = None) -> tuple[float, ...]:
        raw = el.get(attr)
        if raw is None:
            if default is None:
                raise self.fail(f"<{el.tag}> needs attribute '{attr}'", el, what)
            return default
        parts = raw.split()
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != n or not all(math.isfinite(v) for v in values):
            raise self.fail(f"<{el.tag} {attr}=\"{raw}\">: expected {n} finite number(s)",
                            el, what)
        return values

    def number(self, el: ET.Element, attr: str, what: str,
               default: float | None = None) -> float:
        raw = el.get(attr)
        if raw is None and default is not None:
            return default
        return self.floats(el, attr, 1, what)[0]

    def origin(self, parent: ET.Element, what: str) -> Origin:
        el = parent.find("origin")
        if el is None:
            return Origin()
        xyz = self.floats(el, "xyz", 3, what, (0.0, 0.0, 0.0))
        rpy = self.floats(el, "rpy", 3, what, (0.0, 0.0, 0.0))
        for attr, values, limit, unit in (("xyz", xyz, SITE_HEIGHT_M, "m"),
                                          ("rpy", rpy, ANGLE_LIMIT_RAD, "rad")):
            if max(abs(v) for v in values) > limit:
                raise self.fail(f"<origin {attr}=\"{el.get(attr)}\">: each value must lie "
                                f"within +-{limit:g} {unit}", el, what)
        return Origin(xyz, rpy)  # type: ignore[arg-type]

    def name(self, el: ET.Element) -> str:
        name = el.get("name")
        if not name or not name.isprintable() or name != name.strip():
            raise self.fail(f"<{el.tag}> needs a name of printable characters (no control "
                            f"characters or surrounding spaces), got {name!r}", el,
                            f"{el.tag} {name!r}" if name else None)
        return name


def parse_urdf(text: str, source: Path | str = Path("<string>"), *,
               prefix: str | None = None, expanded: bool = False) -> RobotDescription:
    """Parse and validate URDF text (already expanded).

    :param source: the file named in errors.
    :param prefix: the name prefix; if ``None`` it is read off the root link
        (``<prefix>base_footprint``), else empty.
    :param expanded: ``True`` when ``text`` is xacro output (errors then name the element
        instead of giving a source line).
    """
    source = Path(source)
    doc = _parse_xml(text, source)
    chk = _Checker(doc, source, expanded)
    robot = doc.root
    if robot.tag != "robot":
        raise chk.fail(f"root element is <{robot.tag}>; a URDF's root element is <robot>",
                       robot, None)
    robot_name = robot.get("name", "")

    links: dict[str, LinkInfo] = {}
    for el in robot.findall("link"):
        info = _parse_link(chk, el)
        if info.name in links:
            raise chk.fail(f"duplicate link name '{info.name}'", el, f"link '{info.name}'")
        links[info.name] = info
    if not links:
        raise chk.fail("the robot has no <link>", robot, None)

    joints: dict[str, JointInfo] = {}
    joint_els: dict[str, ET.Element] = {}
    for el in robot.findall("joint"):
        info = _parse_joint(chk, el)
        if info.name in joints:
            raise chk.fail(f"duplicate joint name '{info.name}'", el, f"joint '{info.name}'")
        joints[info.name] = info
        joint_els[info.name] = el

    # tree structure
    parent_of: dict[str, str] = {}
    for name, j in joints.items():
        el = joint_els[name]
        for role, link in (("parent", j.parent), ("child", j.child)):
            if link not in links:
                raise chk.fail(f"{role} link '{link}' does not exist", el, f"joint '{name}'")
        if j.child in parent_of:
            raise chk.fail(f"link '{j.child}' is the child of two joints "
                           f"('{parent_of[j.child]}' and '{name}'); a URDF is a tree",
                           el, f"joint '{name}'")
        parent_of[j.child] = name
        if j.mimic is not None and j.mimic.joint not in {n for n in joint_els}:
            raise chk.fail(f"mimics joint '{j.mimic.joint}', which does not exist",
                           el, f"joint '{name}'")
    roots = [n for n in links if n not in parent_of]
    if len(roots) != 1:
        if not roots:
            raise chk.fail("no root link: the joints form a cycle", robot, "robot")
        raise chk.fail(f"{len(roots)} root links ({', '.join(roots)}); a URDF has exactly "
                       "one link that is no joint's child", robot, f"link '{roots[1]}'")
    root = roots[0]
    children: dict[str, list[str]] = {n: [] for n in links}
    for j in joints.values():
        children[j.parent].append(j.child)
    seen = {root}
    todo = [root]
    while todo:
        for c in children[todo.pop()]:
            if c not in seen:
                seen.add(c)
                todo.append(c)
    if len(seen) != len(links):
        stray = next(n for n in links if n not in seen)
        jname = parent_of[stray]
        raise chk.fail(f"link '{stray}' is on a cycle of joints, unreachable from the root "
                       f"'{root}'", joint_els[jname], f"joint '{jname}'")

    if prefix is None:
        prefix = root[: -len(_ROOT_LINK_SUFFIX)] if root.endswith(_ROOT_LINK_SUFFIX) else ""
    return RobotDescription(
        xml=text,
        source=source,
        name=robot_name,
        joints=MappingProxyType(joints),
        links=tuple(links),
        root_link=root,
        link_infos=MappingProxyType(links),
        prefix=prefix,
    )


def _parse_link(chk: _Checker, el: ET.Element) -> LinkInfo:
    name = chk.name(el)
    what = f"link '{name}'"
    mass = inertia = None
    inertial_origin = Origin()
    inertial = el.find("inertial")
    if inertial is not None:
        inertial_origin = chk.origin(inertial, what)
        mass_el = inertial.find("mass")
        if mass_el is None:
            raise chk.fail("<inertial> without <mass>", inertial, what)
        mass = chk.number(mass_el, "value", what)
        if not 0.0 < mass <= MAX_MASS_KG:
            raise chk.fail(f"mass {mass:g} kg: must be > 0 and <= {MAX_MASS_KG:g}", mass_el,
                           what)
        in_el = inertial.find("inertia")
        if in_el is None:
            raise chk.fail("<inertial> without <inertia>", inertial, what)
        keys = ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")
        values = tuple(chk.number(in_el, k, what, 0.0 if k in ("ixy", "ixz", "iyz") else None)
                       for k in keys)
        _check_inertia(chk, in_el, what, values)
        inertia = values  # type: ignore[assignment]
    for friction in el.findall("contact/*"):
        if friction.tag.endswith("_friction"):
            mu = chk.number(friction, "value", what)
            if not 0.0 <= mu <= MAX_FRICTION:
                raise chk.fail(f"<{friction.tag} value=\"{friction.get('value')}\">: must lie "
                               f"in [0, {MAX_FRICTION:g}]", friction, what)
    collisions = []
    for col in el.findall("collision"):
        collisions.append(_parse_geometry(chk, col, what))
    return LinkInfo(name=name, mass_kg=mass, inertia=inertia,  # type: ignore[arg-type]
                    inertial_origin=inertial_origin, collisions=tuple(collisions),
                    line=chk.doc.line(el))


def _check_inertia(chk: _Checker, el: ET.Element, what: str,
                   v: tuple[float, ...]) -> None:
    ixx, ixy, ixz, iyy, iyz, izz = v
    tensor = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]], dtype=float)
    eig = np.linalg.eigvalsh(tensor)
    if not eig[0] > 0.0:
        raise chk.fail(f"inertia tensor is not positive definite (principal moments "
                       f"{', '.join(f'{e:.6g}' for e in eig)} kg*m^2; all must be > 0)",
                       el, what)
    i1, i2, i3 = sorted(eig)
    if i1 + i2 < i3 * (1.0 - _TRIANGLE_RTOL):
        raise chk.fail(f"principal moments of inertia {i1:.6g}, {i2:.6g}, {i3:.6g} kg*m^2 "
                       "violate the triangle inequality (I1 + I2 >= I3)", el, what)


def _parse_geometry(chk: _Checker, parent: ET.Element, what: str) -> Geometry:
    origin = chk.origin(parent, what)
    geom = parent.find("geometry")
    if geom is None or len(geom) == 0:
        raise chk.fail(f"<{parent.tag}> without <geometry>", parent, what)
    shape = geom[0]
    if shape.tag == "box":
        size = chk.floats(shape, "size", 3, what)
        if min(size) <= 0:
            raise chk.fail(f"box size {size}: every side must be > 0 m", shape, what)
        return Geometry("box", origin, size=size)  # type: ignore[arg-type]
    if shape.tag == "cylinder":
        r = chk.number(shape, "radius", what)
        h = chk.number(shape, "length", what)
        if r <= 0 or h <= 0:
            raise chk.fail("cylinder radius and length must be > 0 m", shape, what)
        return Geometry("cylinder", origin, radius=r, length=h)
    if shape.tag == "sphere":
        r = chk.number(shape, "radius", what)
        if r <= 0:
            raise chk.fail("sphere radius must be > 0 m", shape, what)
        return Geometry("sphere", origin, radius=r)
    if shape.tag == "mesh":
        return Geometry("mesh", origin, filename=shape.get("filename"))
    raise chk.fail(f"unknown geometry <{shape.tag}>; accepted: box, cylinder, sphere, mesh",
                   shape, what)


def _parse_joint(chk: _Checker, el: ET.Element) -> JointInfo:
    name = chk.name(el)
    what = f"joint '{name}'"
    raw_type = el.get("type")
    try:
        jtype = JointType(raw_type)
    except ValueError:
        raise chk.fail(f"type '{raw_type}' is not a URDF joint type; accepted: "
                       f"{', '.join(t.value for t in JointType)}", el, what) from None
    links = {}
    for role in ("parent", "child"):
        sub = el.find(role)
        if sub is None or not sub.get("link"):
            raise chk.fail(f"needs <{role} link=\"...\"/>", el, what)
        links[role] = sub.get("link")
    origin = chk.origin(el, what)
    axis: tuple[float, ...] = (1.0, 0.0, 0.0)
    axis_el = el.find("axis")
    if axis_el is not None:
        axis = chk.floats(axis_el, "xyz", 3, what)
    norm = float(np.linalg.norm(axis))
    if jtype.movable and norm < 1e-9:
        raise chk.fail("axis is the zero vector", axis_el if axis_el is not None else el, what)
    if norm > 0:
        axis = tuple(float(a) / norm for a in axis)

    lower = upper = velocity = effort = None
    limit_el = el.find("limit")
    if jtype in _LIMITED_TYPES:
        if limit_el is None:
            raise chk.fail(f"a {jtype.value} joint needs <limit> with "
                           + ("lower, upper, " if jtype is not JointType.CONTINUOUS else "")
                           + "velocity and effort", el, what)
        velocity = _required(chk, limit_el, "velocity", what)
        effort = _required(chk, limit_el, "effort", what)
        if not velocity > 0:
            raise chk.fail(f"velocity limit {velocity}: must be > 0", limit_el, what)
        if not effort > 0:
            raise chk.fail(f"effort limit {effort}: must be > 0", limit_el, what)
        if jtype is not JointType.CONTINUOUS:
            lower = _required(chk, limit_el, "lower", what)
            upper = _required(chk, limit_el, "upper", what)
            if not lower < upper:
                raise chk.fail(f"limit lower={lower} is not below upper={upper}",
                               limit_el, what)
    mimic = None
    mimic_el = el.find("mimic")
    if mimic_el is not None:
        target = mimic_el.get("joint")
        if not target:
            raise chk.fail("<mimic> without joint=", mimic_el, what)
        mimic = Mimic(target, chk.number(mimic_el, "multiplier", what, 1.0),
                      chk.number(mimic_el, "offset", what, 0.0))
    return JointInfo(name=name, type=jtype, parent=links["parent"], child=links["child"],
                     axis=axis, origin_xyz=origin.xyz, origin_rpy=origin.rpy,  # type: ignore[arg-type]
                     lower=lower, upper=upper, velocity_limit=velocity, effort_limit=effort,
                     mimic=mimic, line=chk.doc.line(el))


def _required(chk: _Checker, el: ET.Element, attr: str, what: str) -> float:
    if el.get(attr) is None:
        raise chk.fail(f"<limit> needs attribute '{attr}'", el, what)
    return chk.number(el, attr, what)


# ======================================================================================
# writing
# ======================================================================================

def write_urdf_file(desc: RobotDescription, directory: Path | str, *,
                    frame_mass_kg: float | None = None) -> Path:
    """Write the expanded URDF into ``directory`` and return the file's path.

    The file name carries a hash of the content, so descriptions with different prefixes
    or arguments never overwrite each other.

    :param frame_mass_kg: if given, every link without ``<inertial>`` (pure frames such as
        ``base_footprint``, ``tool0``, optical frames) gets this mass [kg] and a matching tiny
        inertia.  PyBullet otherwise gives such links 1 kg and 1 kg*m^2.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = desc.xml
    if frame_mass_kg is not None:
        if not (math.isfinite(frame_mass_kg) and frame_mass_kg > 0):
            raise ValueError(f"frame_mass_kg={frame_mass_kg}: must be a finite number > 0")
        text = _with_frame_inertials(text, frame_mass_kg)
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    stem = desc.name or "robot"
    path = directory / f"{stem}_{digest}.urdf"
    path.write_text(text, encoding="utf-8")
    return path


def _with_frame_inertials(text: str, mass_kg: float) -> str:
    root = ET.fromstring(text)
    # inertia of a 1 cm solid sphere of this mass
    i = 0.4 * mass_kg * 0.01 ** 2
    for link in root.findall("link"):
        if link.find("inertial") is None:
            inertial = ET.SubElement(link, "inertial")
            ET.SubElement(inertial, "origin", xyz="0 0 0", rpy="0 0 0")
            ET.SubElement(inertial, "mass", value=repr(mass_kg))
            ET.SubElement(inertial, "inertia", ixx=repr(i), ixy="0", ixz="0",
                          iyy=repr(i), iyz="0", izz=repr(i))
    return ET.tostring(root, encoding="unicode")
