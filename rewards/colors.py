"""Colour similarity as ChartMimic computes it: sRGB -> CIELAB (D65) -> CIEDE2000.

ChartMimic uses colormath (sRGBColor -> LabColor, delta_e_cie2000); this reproduces its
arithmetic with numpy, including colormath's form of the mean hue (which adds 360 degrees
whenever the hues are more than 180 apart), so similarities agree to float precision.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# colormath's sRGB -> XYZ matrix and D65 (2 degree) white point
_RGB_TO_XYZ = np.array(
    [[0.412424, 0.357579, 0.180464], [0.212656, 0.715158, 0.0721856], [0.0193324, 0.119193, 0.950444]]
)
_D65 = np.array([0.95047, 1.00000, 1.08883])
_CIE_E = 216.0 / 24389.0
_CIE_K = 24389.0 / 27.0


def hex_to_rgb255(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    if len(h) < 6:
        raise ValueError(f"not a hex colour: {color!r}")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@lru_cache(maxsize=65536)
def hex_to_lab(color: str) -> tuple[float, float, float]:
    rgb = np.array(hex_to_rgb255(color), dtype=float) / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = _RGB_TO_XYZ @ linear
    t = xyz / _D65
    f = np.where(t > _CIE_E, np.cbrt(t), (7.787 * t) + (16.0 / 116.0))
    L = 116.0 * f[1] - 16.0
    a = 500.0 * (f[0] - f[1])
    b = 200.0 * (f[1] - f[2])
    return float(L), float(a), float(b)


def delta_e_ciede2000(lab1, lab2) -> float:
    return float(_delta_e(*lab1, *lab2))


def _delta_e(L1, a1, b1, L2, a2, b2):
    """CIEDE2000 elementwise: numbers or broadcastable numpy arrays."""
    avg_lp = (L1 + L2) / 2.0
    c1 = np.hypot(a1, b1)
    c2 = np.hypot(a2, b2)
    avg_c = (c1 + c2) / 2.0
    g = 0.5 * (1 - np.sqrt(avg_c**7 / (avg_c**7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    avg_cp = (c1p + c2p) / 2.0
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    avg_hp = ((abs(h1p - h2p) > 180) * 360 + h1p + h2p) / 2.0  # colormath's variant
    t = (
        1
        - 0.17 * np.cos(np.radians(avg_hp - 30))
        + 0.24 * np.cos(np.radians(2 * avg_hp))
        + 0.32 * np.cos(np.radians(3 * avg_hp + 6))
        - 0.2 * np.cos(np.radians(4 * avg_hp - 63))
    )
    diff = h2p - h1p
    delta_hp = diff + (abs(diff) > 180) * 360 - (h2p > h1p) * 720
    delta_lp = L2 - L1
    delta_cp = c2p - c1p
    delta_big_hp = 2 * np.sqrt(c2p * c1p) * np.sin(np.radians(delta_hp) / 2.0)
    s_l = 1 + (0.015 * (avg_lp - 50) ** 2) / np.sqrt(20 + (avg_lp - 50) ** 2)
    s_c = 1 + 0.045 * avg_cp
    s_h = 1 + 0.015 * avg_cp * t
    delta_ro = 30 * np.exp(-(((avg_hp - 275) / 25) ** 2))
    r_c = np.sqrt(avg_cp**7 / (avg_cp**7 + 25.0**7))
    r_t = -2 * r_c * np.sin(2 * np.radians(delta_ro))
    return np.sqrt(
        (delta_lp / s_l) ** 2
        + (delta_cp / s_c) ** 2
        + (delta_big_hp / s_h) ** 2
        + r_t * (delta_cp / s_c) * (delta_big_hp / s_h)
    )


@lru_cache(maxsize=262144)
def color_similarity(c1: str, c2: str) -> float:
    """1 - dE2000/100 (floored at 0) for two hex colours; 1/0 equality for two colormap names."""
    hex1, hex2 = c1.startswith("#"), c2.startswith("#")
    if hex1 and hex2:
        return max(0.0, 1.0 - delta_e_ciede2000(hex_to_lab(c1), hex_to_lab(c2)) / 100.0)
    if not hex1 and not hex2:
        return 1.0 if c1 == c2 else 0.0
    return 0.0


def lab_array(colors: list[str]) -> np.ndarray:
    return np.array([hex_to_lab(c) for c in colors], dtype=float).reshape(-1, 3)


def hex_similarity_matrix(gen: list[str], ref: list[str], labs: np.ndarray | None = None) -> np.ndarray:
    """color_similarity for every (gen, ref) pair of hex colours, in one numpy pass: the
    pairwise Python loop is what made thousands of colours take seconds. `labs` stands
    for ref when its CIELAB values are at hand."""
    g, r = lab_array(gen), (lab_array(ref) if labs is None else labs)
    if not len(g) or not len(r):
        return np.zeros((len(g), len(r)))
    de = _delta_e(g[:, None, 0], g[:, None, 1], g[:, None, 2], r[None, :, 0], r[None, :, 1], r[None, :, 2])
    return np.maximum(0.0, 1.0 - de / 100.0)


def similarity_matrix(gen: list[str], ref: list[str]) -> np.ndarray:
    """color_similarity for every pair, hex colours and colormap names mixed."""
    out = np.zeros((len(gen), len(ref)))
    gh = [i for i, c in enumerate(gen) if c.startswith("#")]
    rh = [j for j, c in enumerate(ref) if c.startswith("#")]
    if gh and rh:
        out[np.ix_(gh, rh)] = hex_similarity_matrix([gen[i] for i in gh], [ref[j] for j in rh])
    names: dict[str, list[int]] = {}
    for j, c in enumerate(ref):
        if not c.startswith("#"):
            names.setdefault(c, []).append(j)
    for i, c in enumerate(gen):
        if not c.startswith("#"):
            out[i, names.get(c, [])] = 1.0
    return out
