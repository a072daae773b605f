"""CLEVR-like shape scenes drawn offline with numpy and Pillow, and their spy edits.

A scene is a handful of objects (cube, sphere, cylinder, cone; eight CLEVR colours; two
sizes) standing on a ground plane seen by a pinhole camera a little above it: farther
objects are smaller and higher in the frame, round tops are ellipses. Surfaces are
Lambert + Blinn-Phong shaded per pixel, each object casts a soft shadow, and the image is
drawn at 2x and box-filtered down for anti-aliasing.

The spy's version changes the shape AND colour of two objects in place (same position,
same size). Two design choices keep that change local, so a record can say exactly where
the images differ:
- objects are placed so that their *slots* never overlap, where a slot is the union of the
  boxes every shape could occupy there plus the shadow; an edit can never touch a neighbour;
- the shadow depends on position and size only, not on the shape, so it is the same in
  both images and the pixels that differ lie inside the changed objects' boxes.

Everything is a pure function of the seed: the same seed gives byte-identical images.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone")
# CLEVR's palette (sRGB).
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SIZES: dict[str, float] = {"small": 0.6, "large": 1.05}  # world units (the object's diameter)

_SUPERSAMPLE = 2
_LIGHT = np.array([-0.55, 0.65, 0.52]) / np.linalg.norm([-0.55, 0.65, 0.52])  # x right, y up, z to viewer
_HALF = (_LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(_LIGHT + np.array([0.0, 0.0, 1.0]))
_AMBIENT, _DIFFUSE, _SPECULAR, _SHININESS = 0.32, 0.78, 0.35, 40.0
_SLOT_GAP = 6  # pixels kept free between two objects' slots


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera `eye` units above the ground; pixels from world (x, z)."""

    width: int = 480
    height: int = 320
    eye: float = 3.0
    near: float = 5.0  # depth range objects are placed in
    far: float = 10.0

    @property
    def horizon(self) -> float:
        return 0.2 * self.height

    @property
    def focal(self) -> float:
        # Chosen so the nearest ground line sits ~10% above the bottom edge.
        return (0.9 * self.height - self.horizon) * self.near / self.eye

    def ground(self, x: float, z: float) -> tuple[float, float]:
        """Pixel of the ground point (x, z)."""
        return self.width / 2 + self.focal * x / z, self.horizon + self.focal * self.eye / z

    def scale(self, z: float) -> float:
        """Pixels per world unit at depth z."""
        return self.focal / z

    def tilt(self, z: float) -> float:
        """Minor/major axis ratio of a horizontal circle at depth z (sine of the view angle)."""
        return min(0.6, max(0.25, self.eye / math.hypot(self.eye, z)))


@dataclass(frozen=True)
class SceneObject:
    id: int
    shape: str
    color: str
    size: str
    x: float  # world position on the ground plane: x across, z depth from the camera
    z: float
    turn: float  # a cube's rotation about the vertical, as the apparent skew of its top (-0.35..0.35)

    def describe(self) -> str:
        return f"{self.size} {self.color} {self.shape}"


# ---------------------------------------------------------------------------
# Geometry: where each shape's pixels and shadow lie
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    cx: float  # footprint centre in pixels
    gy: float
    s: float  # diameter in pixels
    e: float  # tilt

    @property
    def upright(self) -> float:
        return math.sqrt(1.0 - self.e * self.e)


def _frame(obj: SceneObject, cam: Camera) -> _Frame:
    cx, gy = cam.ground(obj.x, obj.z)
    return _Frame(cx, gy, SIZES[obj.size] * cam.scale(obj.z), cam.tilt(obj.z))


def _cube_faces(f: _Frame, turn: float) -> dict[str, list[tuple[float, float]]]:
    """Front, top and side quads of a cube seen slightly from above (oblique projection)."""
    s, e = f.s * 0.82, f.e  # a cube's edge reads bigger than a sphere's diameter; shrink it
    depth, dx = s * e, turn * s
    x0, x1 = f.cx - s / 2 - dx / 2, f.cx + s / 2 - dx / 2
    bottom = f.gy + depth / 2
    top = bottom - s * f.upright
    faces = {
        "front": [(x0, top), (x1, top), (x1, bottom), (x0, bottom)],
        "top": [(x0, top), (x1, top), (x1 + dx, top - depth), (x0 + dx, top - depth)],
    }
    edge = x1 if dx >= 0 else x0
    faces["side"] = [(edge, top), (edge + dx, top - depth), (edge + dx, bottom - depth), (edge, bottom)]
    return faces


def _shape_box(shape: str, f: _Frame, turn: float) -> tuple[float, float, float, float]:
    """Exact pixel extent (x0, y0, x1, y1) of a shape, before rounding."""
    r = f.s / 2
    if shape == "sphere":
        cy = f.gy - r * f.upright
        return f.cx - r, cy - r, f.cx + r, cy + r
    if shape == "cylinder":
        h = f.s * f.upright
        return f.cx - r, f.gy - h - r * f.e, f.cx + r, f.gy + r * f.e
    if shape == "cone":
        return f.cx - r, f.gy - 1.15 * f.s * f.upright, f.cx + r, f.gy + r * f.e
    if shape == "cube":
        pts = [p for quad in _cube_faces(f, turn).values() for p in quad]
        return min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def _shadow_ellipse(f: _Frame) -> tuple[float, float, float, float]:
    """Centre and semi-axes of the soft shadow: cast away from the light, shape-independent."""
    return f.cx + 0.35 * f.s, f.gy - 0.12 * f.s * f.e, 0.62 * f.s, 0.62 * f.s * f.e + 0.08 * f.s


def _outward(box: tuple[float, float, float, float], width: int, height: int) -> list[int]:
    x0, y0, x1, y1 = box
    return [max(0, math.floor(x0)), max(0, math.floor(y0)), min(width, math.ceil(x1)), min(height, math.ceil(y1))]


def object_bbox(obj: SceneObject, cam: Camera) -> list[int]:
    """The object's pixels in the final image: [x0, y0, x1, y1), x1/y1 exclusive.

    One pixel of margin covers the anti-aliasing filter's reach.
    """
    x0, y0, x1, y1 = _shape_box(obj.shape, _frame(obj, cam), obj.turn)
    return _outward((x0 - 1, y0 - 1, x1 + 1, y1 + 1), cam.width, cam.height)


def _slot(obj: SceneObject, cam: Camera) -> tuple[float, float, float, float]:
    """Everything any shape at this position and size could touch, shadow included."""
    f = _frame(obj, cam)
    boxes = [_shape_box(shape, f, obj.turn) for shape in SHAPES]
    sx, sy, ax, ay = _shadow_ellipse(f)
    boxes.append((sx - ax, sy - ay, sx + ax, sy + ay))
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _apart(a, b, gap: float) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


# ---------------------------------------------------------------------------
# Scene generation and the spy edit
# ---------------------------------------------------------------------------


class SceneError(ValueError):
    """A scene that cannot be built as asked (too many objects for the frame)."""


def _place(rng: random.Random, cam: Camera, n_objects: int, attempts: int) -> list[SceneObject] | None:
    """Greedy random placement; None when `attempts` draws did not fit `n_objects`."""
    objects: list[SceneObject] = []
    slots: list[tuple[float, float, float, float]] = []
    margin = 4
    for _ in range(attempts):
        z = rng.uniform(cam.near, cam.far)
        half_width = 0.62 * z * (cam.width / 2) / cam.focal
        candidate = SceneObject(
            id=len(objects),
            shape=rng.choice(SHAPES),
            color=rng.choice(list(COLORS)),
            size=rng.choice(list(SIZES)),
            x=round(rng.uniform(-half_width, half_width), 4),
            z=round(z, 4),
            turn=round(rng.uniform(-0.35, 0.35), 4),
        )
        slot = _slot(candidate, cam)
        inside = (
            slot[0] >= margin and slot[1] >= margin and slot[2] <= cam.width - margin and slot[3] <= cam.height - margin
        )
        if inside and all(_apart(slot, other, _SLOT_GAP) for other in slots):
            objects.append(candidate)
            slots.append(slot)
            if len(objects) == n_objects:
                return objects
    return None


def make_scene(
    rng: random.Random, cam: Camera, n_objects: int, layouts: int = 50, attempts: int = 100
) -> list[SceneObject]:
    """`n_objects` random objects whose slots do not overlap and lie inside the frame.

    Greedy placement gets stuck when early objects take the middle of the frame, so a
    stuck layout is started afresh rather than pressed on with.
    """
    for _ in range(layouts):
        objects = _place(rng, cam, n_objects, attempts)
        if objects is not None:
            return objects
    raise SceneError(
        f"could not place {n_objects} non-overlapping objects in a {cam.width}x{cam.height} "
        f"frame ({layouts} layouts tried); use fewer objects or a larger image"
    )


def edit_scene(
    objects: list[SceneObject], rng: random.Random, n_changes: int = 2
) -> tuple[list[SceneObject], list[int]]:
    """Change the shape and the colour of `n_changes` objects in place; returns the new list and their ids."""
    if not 1 <= n_changes <= len(objects):
        raise SceneError(f"cannot change {n_changes} objects in a scene of {len(objects)}")
    ids = sorted(rng.sample([o.id for o in objects], n_changes))
    edited = list(objects)
    for i in ids:
        old = objects[i]
        edited[i] = replace(
            old,
            shape=rng.choice([s for s in SHAPES if s != old.shape]),
            color=rng.choice([c for c in COLORS if c != old.color]),
        )
    return edited, ids


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


def _background(cam: Camera, ss: int) -> np.ndarray:
    """A CLEVR-like grey studio backdrop: brighter towards the viewer, a soft spotlight."""
    h, w = cam.height * ss, cam.width * ss
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w
    level = 0.52 + 0.2 * ys + 0.12 * np.exp(-(((xs - 0.42) / 0.45) ** 2 + ((ys - 0.6) / 0.6) ** 2))
    return np.repeat((level * 235.0)[:, :, None], 3, axis=2)


def _smoothstep(edge0: float, edge1: float, v: np.ndarray) -> np.ndarray:
    t = np.clip((v - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _grid(box: list[int], ss: int) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """Sample-centre coordinates (in final-image pixels) of the supersampled patch covering `box`."""
    x0, y0, x1, y1 = (v * ss for v in box)
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5) / ss
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) / ss
    return xs[None, :], ys[:, None], (slice(y0, y1), slice(x0, x1))


def _draw_shadow(canvas: np.ndarray, obj: SceneObject, cam: Camera, ss: int) -> None:
    sx, sy, ax, ay = _shadow_ellipse(_frame(obj, cam))
    box = _outward((sx - ax, sy - ay, sx + ax, sy + ay), cam.width, cam.height)
    xs, ys, patch = _grid(box, ss)
    d = np.sqrt(((xs - sx) / ax) ** 2 + ((ys - sy) / ay) ** 2)
    darkness = 0.42 * (1.0 - _smoothstep(0.25, 1.0, d))
    canvas[patch] *= (1.0 - darkness)[:, :, None]


def _shade(rgb: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> np.ndarray:
    """Lambert + Blinn-Phong for unit normals (camera frame: x right, y up, z to the viewer)."""
    diffuse = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
    spec = np.clip(nx * _HALF[0] + ny * _HALF[1] + nz * _HALF[2], 0.0, 1.0) ** _SHININESS
    base = np.asarray(rgb, dtype=np.float32)
    color = base * (_AMBIENT + _DIFFUSE * diffuse)[..., None] + (_SPECULAR * 255.0 * spec)[..., None]
    return np.clip(color, 0.0, 255.0)


def _flat(rgb, normal: tuple[float, float, float], shape: tuple[int, int]) -> np.ndarray:
    n = np.asarray(normal, dtype=np.float32) / np.linalg.norm(normal)
    ones = np.ones(shape, dtype=np.float32)
    return _shade(rgb, n[0] * ones, n[1] * ones, n[2] * ones)


def _in_quad(xs: np.ndarray, ys: np.ndarray, quad: list[tuple[float, float]]) -> np.ndarray:
    """Points inside a convex quad (either winding)."""
    signs = []
    for (ax, ay), (bx, by) in zip(quad, quad[1:] + quad[:1]):
        signs.append((bx - ax) * (ys - ay) - (by - ay) * (xs - ax))
    return np.logical_or(np.all([s >= 0 for s in signs], axis=0), np.all([s <= 0 for s in signs], axis=0))


def _layers(
    obj: SceneObject, f: _Frame, xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mask, colour) layers of one object, back to front."""
    rgb = COLORS[obj.color]
    r, e, up = f.s / 2, f.e, f.upright
    if obj.shape == "sphere":
        cy = f.gy - r * up
        u, v = (xs - f.cx) / r, (cy - ys) / r
        rr = np.broadcast_to(u * u + v * v, shape)
        nz = np.sqrt(np.clip(1.0 - rr, 0.0, 1.0))
        return [(rr <= 1.0, _shade(rgb, np.broadcast_to(u, shape), np.broadcast_to(v, shape), nz))]
    if obj.shape == "cube":
        faces = _cube_faces(f, obj.turn)
        side = 1.0 if obj.turn >= 0 else -1.0
        normals = {"side": (side, 0.05, 0.35), "front": (-0.3 * obj.turn, 0.05, 1.0), "top": (0.0, up, e)}
        return [(_in_quad(xs, ys, faces[k]), _flat(rgb, normals[k], shape)) for k in ("side", "front", "top")]
    u = np.clip((xs - f.cx) / r, -1.0, 1.0)
    if obj.shape == "cylinder":
        h = f.s * up
        top_y = f.gy - h
        body = (np.abs(xs - f.cx) <= r) & (ys >= top_y) & (ys <= f.gy + r * e * np.sqrt(np.clip(1 - u * u, 0, 1)))
        body_normal = (
            np.broadcast_to(u, shape),
            np.zeros(shape, np.float32),
            np.broadcast_to(np.sqrt(1 - u * u), shape),
        )
        cap = ((xs - f.cx) / r) ** 2 + ((ys - top_y) / (r * e)) ** 2 <= 1.0
        return [
            (np.broadcast_to(body, shape), _shade(rgb, *body_normal)),
            (np.broadcast_to(cap, shape), _flat(rgb, (0.0, up, e), shape)),
        ]
    if obj.shape == "cone":
        apex = f.gy - 1.15 * f.s * up
        half = r * np.clip((ys - apex) / (f.gy - apex), 0.0, 1.0)
        base = ((xs - f.cx) / r) ** 2 + ((ys - f.gy) / (r * e)) ** 2 <= 1.0
        body = ((np.abs(xs - f.cx) <= half) & (ys >= apex) & (ys <= f.gy)) | (base & (ys >= f.gy))
        w = np.clip((xs - f.cx) / np.maximum(half, 1e-3), -1.0, 1.0)
        n = np.stack(np.broadcast_arrays(0.9 * w, np.full(shape, 0.42, np.float32), 0.9 * np.sqrt(1 - w * w)))
        n /= np.linalg.norm(n, axis=0, keepdims=True)
        return [(np.broadcast_to(body, shape), _shade(rgb, n[0], n[1], n[2]))]
    raise ValueError(f"unknown shape {obj.shape!r}; expected one of {', '.join(SHAPES)}")


def _draw_object(canvas: np.ndarray, obj: SceneObject, cam: Camera, ss: int) -> None:
    f = _frame(obj, cam)
    box = _outward(_shape_box(obj.shape, f, obj.turn), cam.width, cam.height)
    xs, ys, patch = _grid(box, ss)
    shape = (ys.shape[0], xs.shape[1])
    region = canvas[patch]
    for mask, color in _layers(obj, f, xs, ys, shape):
        region[mask] = color[mask]


def render_scene(objects: list[SceneObject], cam: Camera) -> Image.Image:
    """The scene as an RGB image of cam.width x cam.height."""
    ss = _SUPERSAMPLE
    canvas = _background(cam, ss)
    for obj in objects:
        _draw_shadow(canvas, obj, cam, ss)
    for obj in sorted(objects, key=lambda o: -o.z):  # far to near
        _draw_object(canvas, obj, cam, ss)
    big = Image.fromarray(np.round(canvas).astype(np.uint8), "RGB")
    return big.resize((cam.width, cam.height), Image.Resampling.BOX)


# ---------------------------------------------------------------------------
# One spy pair
# ---------------------------------------------------------------------------


@dataclass
class ScenePair:
    original: Image.Image
    modified: Image.Image
    record: dict


def _object_row(obj: SceneObject, cam: Camera) -> dict:
    cx, gy = cam.ground(obj.x, obj.z)
    row = {k: v for k, v in asdict(obj).items() if k not in ("x", "z", "turn")}
    row.update(position=[round(cx, 1), round(gy, 1)], world=[obj.x, obj.z], bbox=object_bbox(obj, cam))
    return row


def make_scene_pair(
    seed: int, *, width: int = 480, height: int = 320, min_objects: int = 3, max_objects: int = 6, n_changes: int = 2
) -> ScenePair:
    """A CLEVR-like scene and its spy version (two objects change shape and colour), from `seed`."""
    if not 1 <= min_objects <= max_objects:
        raise SceneError(f"objects range {min_objects}..{max_objects} is empty")
    if n_changes > min_objects:
        raise SceneError(f"cannot change {n_changes} objects when a scene may hold only {min_objects}")
    cam = Camera(width=width, height=height)
    rng = random.Random(seed)
    objects = make_scene(rng, cam, rng.randint(min_objects, max_objects))
    edited, ids = edit_scene(objects, rng, n_changes)
    changes = []
    for i in ids:
        before, after = _object_row(objects[i], cam), _object_row(edited[i], cam)
        changes.append(
            {
                "id": i,
                "before": {k: before[k] for k in ("shape", "color", "bbox")},
                "after": {k: after[k] for k in ("shape", "color", "bbox")},
                "region": [
                    min(before["bbox"][0], after["bbox"][0]),
                    min(before["bbox"][1], after["bbox"][1]),
                    max(before["bbox"][2], after["bbox"][2]),
                    max(before["bbox"][3], after["bbox"][3]),
                ],
                "text": f"the {objects[i].describe()} became a {edited[i].describe()}",
            }
        )
    record = {
        "kind": "scene",
        "seed": seed,
        "image_size": [width, height],
        "objects": [_object_row(o, cam) for o in objects],
        "modified_objects": [_object_row(o, cam) for o in edited],
        "changed_ids": ids,
        "changes": changes,
    }
    return ScenePair(render_scene(objects, cam), render_scene(edited, cam), record)
