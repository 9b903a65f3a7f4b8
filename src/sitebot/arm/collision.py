"""Collision checking of the arm against itself, the robot body and the scene (numpy).

Model (all in the robot's root frame, ``base_footprint``):

* **the arm** (every link moved by the six arm joints: arm links, gripper palm and fingers)
  is covered by spheres made from its URDF collision primitives: a cylinder of radius r and
  length L by n = ceil(L / r) spheres on its axis, spacing s = L / n, radius
  sqrt(r^2 + (s/2)^2) (every point of the cylinder lies in one of them); a box by a grid of
  spheres, each the circumsphere of its cell; a sphere by itself.  Covering spheres are
  conservative: the model is never smaller than the URDF geometry.
* **the robot body** (links the arm joints do not move: chassis, wheels, casters, lidar,
  mast, camera, arm base) and the **ground** (z < 0) are kept as exact primitives.
* **the scene**: the site bundle's static collision objects near the robot (boxes,
  cylinders, spheres with their poses: structure, gauge plates, valve bodies and handles),
  transformed from the map into the base frame with the robot's map pose, plus perceived
  obstacle boxes.

A state is in collision when a sphere of the arm comes closer than ``padding_m`` to a
scene or body primitive, or two spheres of a pair of arm links that may collide come
closer than ``self_padding_m``.  Pairs that cannot or always collide are left out (the
allowed-collision matrix, as MoveIt's setup assistant builds it): adjacent links (parent and
child through one joint, fixed links merged) and pairs found in collision in every one of
``acm_samples`` random configurations.

Everything is vectorised over a batch of configurations (``check_batch``): a motion is
checked by interpolating the segment so that no point of the arm moves more than
``max_step_m`` between checked states (a bound from the joint deltas and each joint's
lever arm), and all its states are checked in one call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from sitebot.arm.kinematics import ArmKinematics, pose_matrix
from sitebot.types import rpy_matrix

__all__ = ["Primitive", "CollisionChecker", "scene_primitives", "scene_near",
           "box_primitive", "covering_spheres"]

BOX, CYLINDER, SPHERE = "box", "cylinder", "sphere"


@dataclass(frozen=True)
class Primitive:
    """A box (``size`` = half extents x, y, z), a cylinder (``size`` = radius, half length;
    axis local z) or a sphere (``size`` = radius), posed by ``pose`` (4x4, root frame)."""

    kind: str
    size: tuple[float, ...]
    pose: np.ndarray = field(compare=False)
    name: str = ""

    def bounding_radius(self) -> float:
        if self.kind == BOX:
            return float(np.linalg.norm(self.size))
        if self.kind == CYLINDER:
            return float(math.hypot(self.size[0], self.size[1]))
        return float(self.size[0])

    def transformed(self, m: np.ndarray, name: str | None = None) -> "Primitive":
        return Primitive(self.kind, self.size, m @ self.pose, self.name if name is None
                         else name)


def box_primitive(center: Sequence[float], size: Sequence[float], yaw: float = 0.0,
                  name: str = "") -> Primitive:
    """An axis-aligned (about z by ``yaw``) box from its centre and full edge lengths."""
    return Primitive(BOX, tuple(abs(float(s)) / 2 for s in size),
                     pose_matrix(center, rpy_matrix(0.0, 0.0, yaw)), name)


def _geometry_primitive(g: Any, name: str) -> Primitive | None:
    m = pose_matrix(g.origin.xyz, rpy_matrix(*g.origin.rpy))
    if g.kind == "box" and g.size:
        return Primitive(BOX, tuple(s / 2 for s in g.size), m, name)
    if g.kind == "cylinder" and g.radius and g.length:
        return Primitive(CYLINDER, (g.radius, g.length / 2), m, name)
    if g.kind == "sphere" and g.radius:
        return Primitive(SPHERE, (g.radius,), m, name)
    return None


def covering_spheres(p: Primitive) -> tuple[np.ndarray, np.ndarray]:
    """Centres (m, 3) in the primitive's parent frame and radii (m,) of spheres that
    together contain the primitive."""
    if p.kind == SPHERE:
        local, radii = np.zeros((1, 3)), np.array([p.size[0]])
    elif p.kind == CYLINDER:
        r, h = p.size
        n = max(1, int(math.ceil(2 * h / r - 1e-9)))
        s = 2 * h / n
        z = -h + s / 2 + s * np.arange(n)
        local = np.column_stack([np.zeros(n), np.zeros(n), z])
        radii = np.full(n, math.hypot(r, s / 2))
    else:
        half = np.asarray(p.size, float)
        cell = max(float(half.min()) * 2, float(half.max()) * 2 / 3)
        ns = np.maximum(1, np.ceil(2 * half / cell - 1e-9)).astype(int)
        steps = 2 * half / ns
        axes = [-half[i] + steps[i] / 2 + steps[i] * np.arange(ns[i]) for i in range(3)]
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        local = np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()])
        radii = np.full(len(local), 0.5 * float(np.linalg.norm(steps)))
    centres = local @ p.pose[:3, :3].T + p.pose[:3, 3]
    return centres, radii


class _PrimitiveTable:
    """Primitives stacked by kind for vectorised point distances: every primitive's frame
    change is one row block of a single matrix, so the points of a batch are transformed
    into all primitive frames by one matrix product."""

    def __init__(self, prims: Sequence[Primitive]) -> None:
        self.prims = list(prims)
        boxes = [i for i, p in enumerate(prims) if p.kind == BOX]
        cyls = [i for i, p in enumerate(prims) if p.kind == CYLINDER]
        sphs = [i for i, p in enumerate(prims) if p.kind == SPHERE]
        self.order = boxes + cyls + sphs

        def stack(idx: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if not idx:
                return np.zeros((3, 0)), np.zeros(0), np.zeros((0, 3))
            # loc = R^T p - R^T c for each primitive, as p @ M - off
            M = np.concatenate([prims[i].pose[:3, :3] for i in idx], axis=1)    # (3, 3n)
            off = np.concatenate([prims[i].pose[:3, :3].T @ prims[i].pose[:3, 3]
                                  for i in idx])
            size = np.array([list(prims[i].size) + [0.0] * (3 - len(prims[i].size))
                             for i in idx], dtype=float)
            return M, off, size
        self.box = stack(boxes)
        self.cyl = stack(cyls)
        self.sph = np.array([prims[i].pose[:3, 3] for i in sphs]).reshape(-1, 3), \
            np.array([prims[i].size[0] for i in sphs], dtype=float)

    def __len__(self) -> int:
        return len(self.prims)

    def distances(self, pts: np.ndarray) -> np.ndarray:
        """Distances (N, P) from points (N, 3) to each primitive's surface (0 inside),
        columns in the order of :attr:`order`."""
        out = []
        N = len(pts)
        M, off, half = self.box
        if len(half):
            loc = (pts @ M - off).reshape(N, -1, 3)
            ex = np.maximum(np.abs(loc) - half[None], 0.0)
            out.append(np.sqrt(np.einsum("nbi,nbi->nb", ex, ex)))
        M, off, s = self.cyl
        if len(s):
            loc = (pts @ M - off).reshape(N, -1, 3)
            radial = np.sqrt(loc[..., 0] ** 2 + loc[..., 1] ** 2)
            er = np.maximum(radial - s[None, :, 0], 0.0)
            ez = np.maximum(np.abs(loc[..., 2]) - s[None, :, 1], 0.0)
            out.append(np.sqrt(er * er + ez * ez))
        c, r = self.sph
        if len(r):
            d = np.sqrt(np.maximum((pts * pts).sum(1)[:, None] + (c * c).sum(1)[None]
                                   - 2.0 * pts @ c.T, 0.0))
            out.append(np.maximum(d - r[None], 0.0))
        if not out:
            return np.zeros((N, 0))
        return out[0] if len(out) == 1 else np.concatenate(out, axis=1)


class CollisionChecker:
    """State and motion validity of the arm (see the module docstring).

    :param kin: the arm's kinematics (its ``fixed_positions`` set the finger opening).
    :param padding_m: clearance kept from the scene and the robot body [m].
    :param self_padding_m: clearance kept between arm links [m].
    :param max_step_m: largest displacement of any arm point between two checked states
        of a motion [m].
    :param acm_samples: random configurations used to find always-colliding link pairs.
    """

    def __init__(self, kin: ArmKinematics, padding_m: float = 0.02,
                 self_padding_m: float = 0.005, max_step_m: float = 0.04,
                 acm_samples: int = 300, seed: int = 0) -> None:
        self.kin = kin
        self.padding_m = float(padding_m)
        self.self_padding_m = float(self_padding_m)
        self.max_step_m = float(max_step_m)
        desc = kin.desc
        self.checks = 0          # configurations checked (states)
        # --- arm spheres (per moving link) ---
        link_idx, local, radii, owner = [], [], [], []
        for li, link in enumerate(kin.frames):
            info = desc.link_infos.get(link)
            for g in (info.collisions if info else ()):
                p = _geometry_primitive(g, link)
                if p is None:
                    continue
                c, r = covering_spheres(p)
                link_idx += [li] * len(r)
                local.append(c)
                radii.append(r)
                owner += [link] * len(r)
        self.sphere_link = np.array(link_idx, dtype=int)
        self.sphere_local = np.concatenate(local)
        self.sphere_radius = np.concatenate(radii)
        self.sphere_owner = owner
        # --- body primitives (static links) + ground ---
        body: list[Primitive] = []
        for link, m in kin.static_frames.items():
            info = desc.link_infos.get(link)
            for g in (info.collisions if info else ()):
                p = _geometry_primitive(g, link)
                if p is not None:
                    body.append(p.transformed(m))
        body.append(Primitive(BOX, (50.0, 50.0, 0.5), pose_matrix((0.0, 0.0, -0.5)),
                              "ground"))
        self.body = body
        # --- geometric parent of each link (nearest ancestor with geometry) ---
        has_geom = {n for n, i in desc.link_infos.items() if i.collisions}
        has_geom.add("ground")

        def geo_parent(link: str) -> str | None:
            lk = kin.parent_link.get(link)
            while lk is not None and lk not in has_geom:
                lk = kin.parent_link.get(lk)
            return lk
        self._geo_parent = {n: geo_parent(n) for n in desc.links}
        moving = [f for f in kin.frames if f in has_geom]
        adjacent = set()
        for a in list(moving) + [b.name for b in body]:
            pa = self._geo_parent.get(a)
            if pa is not None:
                adjacent.add(frozenset((a, pa)))
        # siblings through a fixed chain without geometry (fingers on the palm) are adjacent
        # to their common geometric parent only; fingers vs fingers are checked
        self.disabled: set[frozenset] = set(adjacent)
        self._build_pairs()
        always = self._always_colliding(acm_samples, seed)
        self.disabled |= always
        self.always_colliding = always
        self._build_pairs()
        self._lever = self._lever_arms()
        self._shoulder = kin.fk(np.zeros(6))[kin.frame_index[
            desc.joints[kin.joint_names[1]].child], :3, 3]
        self.set_scene(())

    # ------------------------------------------------------------------ set-up
    def _build_pairs(self) -> None:
        own = self.sphere_owner
        S = len(own)
        allowed = np.zeros((S, S), dtype=bool)
        for a in range(S):
            for b in range(a + 1, S):
                if own[a] != own[b] and frozenset((own[a], own[b])) not in self.disabled:
                    allowed[a, b] = True
        self._self_mask = allowed                                   # upper triangle
        rr = self.sphere_radius[:, None] + self.sphere_radius[None]
        self._self_r2 = (rr + self.self_padding_m) ** 2
        self._body_table = _PrimitiveTable(self.body)
        names = [self.body[i].name for i in self._body_table.order]
        self._body_mask = np.array([[frozenset((o, n)) not in self.disabled for n in names]
                                    for o in own], dtype=bool)       # (S, Pb)

    def _self_hits(self, c: np.ndarray, pad: float) -> np.ndarray:
        """(K, S, S) bool: allowed sphere pairs closer than ``pad``."""
        sq = np.einsum("ksi,ksi->ks", c, c)
        d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * (c @ c.transpose(0, 2, 1))
        rr = self.sphere_radius[:, None] + self.sphere_radius[None]
        return (d2 < (rr + pad) ** 2) & self._self_mask[None]

    def _always_colliding(self, n: int, seed: int) -> set[frozenset]:
        """Link pairs in collision in every one of ``n`` random configurations."""
        if n <= 0:
            return set()
        rng = np.random.default_rng(seed)
        Q = rng.uniform(self.kin.lower, self.kin.upper, size=(n, 6))
        c = self._centres(Q)
        own = np.array(self.sphere_owner)
        hit = self._self_hits(c, self.self_padding_m)               # (n, S, S)
        out: set[frozenset] = set()
        links = sorted(set(self.sphere_owner))
        for i, a in enumerate(links):
            for b in links[i + 1:]:
                if frozenset((a, b)) in self.disabled:
                    continue
                ia, ib = own == a, own == b
                h = hit[:, ia][:, :, ib].any(axis=(1, 2)) | hit[:, ib][:, :, ia].any(axis=(1, 2))
                if h.all():
                    out.add(frozenset((a, b)))
        names = np.array([self.body[i].name for i in self._body_table.order])
        db = self._body_table.distances(c.reshape(-1, 3)).reshape(n, len(own), -1)
        hb = (db < self.sphere_radius[None, :, None]) & self._body_mask[None]
        for a in links:
            for nm in set(names):
                if frozenset((a, nm)) in self.disabled:
                    continue
                if hb[:, own == a][:, :, names == nm].any(axis=(1, 2)).all():
                    out.add(frozenset((a, nm)))
        return out

    def _lever_arms(self) -> np.ndarray:
        """Per joint: an upper bound [m] of the distance from the joint's axis point to any
        arm sphere surface downstream of it (sum of the link offsets along the chain)."""
        kin = self.kin
        desc = kin.desc
        child_of = {desc.joints[n].child: i for i, n in enumerate(kin.joint_names)}
        joint_by_child = {j.child: j for j in desc.joints.values()}
        out = np.zeros(6)
        for s in range(len(self.sphere_owner)):
            link = self.sphere_owner[s]
            dist = float(np.linalg.norm(self.sphere_local[s])) + self.sphere_radius[s]
            lk = link
            while lk in joint_by_child:
                if lk in child_of:
                    i = child_of[lk]
                    out[i] = max(out[i], dist)
                dist += float(np.linalg.norm(joint_by_child[lk].origin_xyz))
                lk = joint_by_child[lk].parent
        return out

    # ------------------------------------------------------------------ scene
    def set_scene(self, prims: Iterable[Primitive]) -> None:
        """Replace the scene (primitives in the root frame).  Primitives the arm cannot
        reach (further from the shoulder than the arm's reach plus the padding) are kept
        in :attr:`scene` but left out of the checks."""
        self.scene = list(prims)
        reach = float(self._lever[1]) + self.padding_m + 0.05
        near = [p for p in self.scene
                if _PrimitiveTable([p]).distances(self._shoulder[None])[0, 0] <= reach]
        self._scene_table = _PrimitiveTable(near)

    # ------------------------------------------------------------------ checks
    def _centres(self, Q: np.ndarray) -> np.ndarray:
        F = self.kin.fk(Q)[:, self.sphere_link]                     # (K, S, 4, 4)
        return (F[..., :3, :3] @ self.sphere_local[None, :, :, None])[..., 0] + F[..., :3, 3]

    def check_batch(self, Q: np.ndarray, padding_m: float | None = None) -> np.ndarray:
        """(K,) bool: True where configuration k of ``Q`` (K, 6) is collision-free."""
        Q = np.atleast_2d(np.asarray(Q, dtype=float))
        K = Q.shape[0]
        self.checks += K
        pad = self.padding_m if padding_m is None else float(padding_m)
        self_pad = self.self_padding_m if padding_m is None else min(self.self_padding_m,
                                                                     float(padding_m))
        ok = np.all(Q >= self.kin.lower - 1e-9, axis=1) & np.all(Q <= self.kin.upper + 1e-9,
                                                                  axis=1)
        c = self._centres(Q)                                        # (K, S, 3)
        r = self.sphere_radius
        ok &= ~self._self_hits(c, self_pad).any(axis=(1, 2))
        flat = c.reshape(-1, 3)
        S = len(r)
        db = self._body_table.distances(flat).reshape(K, S, -1)
        ok &= ~((db < (r + pad)[None, :, None]) & self._body_mask[None]).any(axis=(1, 2))
        if len(self._scene_table):
            ds = self._scene_table.distances(flat).reshape(K, S, -1)
            ok &= ~(ds < (r + pad)[None, :, None]).any(axis=(1, 2))
        return ok

    def is_valid(self, q: Sequence[float]) -> bool:
        return bool(self.check_batch(np.asarray(q, float)[None])[0])

    def explain(self, q: Sequence[float]) -> str | None:
        """None when ``q`` is valid, else which link hits what (for rejections)."""
        q = np.asarray(q, dtype=float)
        if not self.kin.within_limits(q):
            bad = [n for n, v, lo, hi in zip(self.kin.joint_names, q, self.kin.lower,
                                             self.kin.upper) if not lo <= v <= hi]
            return f"outside joint limits: {', '.join(bad)}"
        c = self._centres(q[None])[0]
        r = self.sphere_radius
        own = self.sphere_owner
        hits = np.argwhere(self._self_hits(c[None], self.self_padding_m)[0])
        if hits.size:
            a, b = (int(v) for v in hits[0])
            return f"self-collision: {own[a]} with {own[b]}"
        for table, mask, what in ((self._body_table, self._body_mask, "robot body"),
                                  (self._scene_table, None, "scene")):
            if not len(table):
                continue
            dd = table.distances(c)
            hit = dd < (r + self.padding_m)[:, None]
            if mask is not None:
                hit &= mask
            if hit.any():
                s, p = (int(v) for v in np.argwhere(hit)[0])
                prim = table.prims[table.order[p]]
                return f"{own[s]} collides with {what} '{prim.name}'"
        return None

    def motion_states(self, q0: np.ndarray, q1: np.ndarray,
                      max_step_m: float | None = None) -> np.ndarray:
        """States (n + 1, 6) along the straight joint-space segment q0 -> q1 such that no
        arm point moves more than ``max_step_m`` between consecutive states."""
        q0 = np.asarray(q0, float)
        q1 = np.asarray(q1, float)
        step = self.max_step_m if max_step_m is None else float(max_step_m)
        bound = float(np.dot(self._lever, np.abs(q1 - q0)))
        n = max(1, int(math.ceil(bound / step)))
        f = np.linspace(0.0, 1.0, n + 1)[:, None]
        return q0 + f * (q1 - q0)

    def check_motion(self, q0: np.ndarray, q1: np.ndarray, max_step_m: float | None = None,
                     padding_m: float | None = None, include_start: bool = False) -> bool:
        """True when every state along q0 -> q1 (interpolated, see :meth:`motion_states`)
        is valid; the start is assumed valid unless ``include_start``."""
        states = self.motion_states(q0, q1, max_step_m)
        if not include_start:
            states = states[1:]
        # check in chunks: an early collision ends the check sooner
        for k in range(0, len(states), 64):
            if not self.check_batch(states[k:k + 64], padding_m).all():
                return False
        return True

    def check_path(self, path: np.ndarray, max_step_m: float, padding_m: float = 0.0
                   ) -> tuple[bool, int, int]:
        """Dense re-check of a waypoint path (N, 6): (valid, index of the first bad
        segment or -1, states checked)."""
        path = np.asarray(path, float)
        n = 0
        if not self.check_batch(path[:1], padding_m)[0]:
            return False, 0, 1
        for i in range(len(path) - 1):
            st = self.motion_states(path[i], path[i + 1], max_step_m)[1:]
            n += len(st)
            for k in range(0, len(st), 256):
                if not self.check_batch(st[k:k + 256], padding_m).all():
                    return False, i, n
        return True, -1, n


def scene_primitives(objects: Iterable[Any]) -> list[Primitive]:
    """The site's static collision objects (:class:`~sitebot.site.bundle.SceneObject`: map
    frame, full sizes) as primitives in the map frame."""
    out: list[Primitive] = []
    for o in objects:
        m = pose_matrix(o.xyz, rpy_matrix(*o.rpy))
        if o.shape == BOX:
            out.append(Primitive(BOX, tuple(s / 2 for s in o.size), m, o.id))
        elif o.shape == CYLINDER:
            out.append(Primitive(CYLINDER, (o.size[0], o.size[1] / 2), m, o.id))
        else:
            out.append(Primitive(SPHERE, (o.size[0],), m, o.id))
    return out


def scene_near(primitives: Sequence[Primitive], base_pose: Sequence[float],
               radius_m: float = 2.0) -> list[Primitive]:
    """The map-frame ``primitives`` within ``radius_m`` of the robot, in the base frame.

    ``base_pose`` = (x, y, yaw) of ``base_footprint`` in the map."""
    x, y, yaw = (float(v) for v in base_pose)
    if not all(math.isfinite(v) for v in (x, y, yaw)):
        raise ValueError(f"robot map pose {tuple(base_pose)} is not finite")
    t_base_map = np.linalg.inv(pose_matrix((x, y, 0.0), rpy_matrix(0.0, 0.0, yaw)))
    return [p.transformed(t_base_map) for p in primitives
            if math.hypot(p.pose[0, 3] - x, p.pose[1, 3] - y) - p.bounding_radius() <= radius_m]
