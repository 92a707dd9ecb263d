"""Edge quality as users see it: screen composites with known alpha and colour, haze and holes.

A val photo's person (its ground-truth mask) is pasted on a flat saturated screen colour, so the ideal
cutout is known exactly: alpha = the mask, colour = the photo's inside the person. The served RGBA
cutout of the composite is then scored near the true edge. Numpy only (no TensorFlow).

Distances are chessboard distances (square neighbourhoods), all in pixels of the photo:
- edge error: mean |out - ideal| of both laid on mid grey, within EDGE_BAND px of the true edge (0..255);
- colour bleed: alpha-weighted excess of the screen colour in the returned colour over the true person
  colour, within EDGE_BAND px of the edge (outside the person: the colour of the nearest person pixel);
- haze: mean alpha HAZE_NEAR..HAZE_FAR px outside the person (0..1);
- holes: mean 1 - alpha at least HOLE_DEPTH px inside the person (0..1).
"""

from __future__ import annotations

import numpy as np

from service.refine import box_mean

GREEN, MAGENTA = (0, 255, 0), (255, 0, 255)
SCREENS = (GREEN, MAGENTA)
EDGE_BAND = 6
HAZE_NEAR, HAZE_FAR = 3, 20
HOLE_DEPTH = 4
GREY = 128.0


def dilate(binary: np.ndarray, radius: int) -> np.ndarray:
    """Every pixel within `radius` (chessboard) of a True pixel: O(pixels) whatever the radius."""
    return box_mean(binary.astype(np.float32), radius) > 1e-6


def erode(binary: np.ndarray, radius: int) -> np.ndarray:
    return ~dilate(~binary, radius)


def screen_composite(photo: np.ndarray, person: np.ndarray, screen: tuple[int, int, int]) -> np.ndarray:
    """The photo's person on a flat screen colour (uint8 RGB)."""
    return np.where(person[..., None], photo, np.array(screen, np.uint8)).astype(np.uint8)


def nearest_person_colour(photo: np.ndarray, person: np.ndarray, steps: int) -> np.ndarray:
    """The photo's colour inside the person; outside, grown outwards `steps` pixels from the nearest person pixel."""
    colour = np.where(person[..., None], photo, 0).astype(np.float32)
    known = person.copy()
    for _ in range(steps):
        total = np.zeros_like(colour)
        count = np.zeros(known.shape, np.float32)
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
            shifted_known = np.roll(known, (dy, dx), axis=(0, 1))
            total += np.roll(colour, (dy, dx), axis=(0, 1)) * shifted_known[..., None]
            count += shifted_known
        grow = ~known & (count > 0)
        colour[grow] = total[grow] / count[grow][:, None]
        known |= grow
    return colour


def screen_excess(rgb: np.ndarray, screen: tuple[int, int, int]) -> np.ndarray:
    """How much a colour leans towards the screen: green minus the other two's mean, or the reverse for magenta."""
    rgb = rgb.astype(np.float32)
    green_lean = rgb[..., 1] - (rgb[..., 0] + rgb[..., 2]) / 2
    return green_lean if screen[1] > (screen[0] + screen[2]) / 2 else -green_lean


def edge_band(person: np.ndarray, radius: int = EDGE_BAND) -> np.ndarray:
    return dilate(person, radius) & ~erode(person, radius)


def composite_scores(
    photo: np.ndarray, person: np.ndarray, screen: tuple[int, int, int], rgb: np.ndarray, alpha: np.ndarray
) -> dict:
    """Edge error and colour bleed of a served cutout (rgb uint8, alpha uint8) of the screen composite."""
    band = edge_band(person)
    if not band.any():
        return {"edge_error": 0.0, "colour_bleed": 0.0}
    a = alpha[band].astype(np.float32)[:, None] / 255.0
    out_on_grey = rgb[band].astype(np.float32) * a + GREY * (1 - a)
    truth = person[band][:, None]
    ideal_on_grey = np.where(truth, photo[band].astype(np.float32), GREY)
    true_colour = nearest_person_colour(photo, person, EDGE_BAND + 1)[band]
    excess = np.maximum(0.0, screen_excess(rgb[band], screen) - screen_excess(true_colour, screen))
    weights = a[:, 0]
    return {
        "edge_error": float(np.mean(np.abs(out_on_grey - ideal_on_grey))),
        "colour_bleed": float(np.sum(weights * excess) / max(float(np.sum(weights)), 1e-6)),
    }


def haze_and_holes(person: np.ndarray, alpha: np.ndarray) -> dict:
    """Mean alpha just outside the person and mean transparency well inside it (both 0..1)."""
    outside = dilate(person, HAZE_FAR) & ~dilate(person, HAZE_NEAR - 1)
    inside = erode(person, HOLE_DEPTH)
    a = alpha.astype(np.float32) / 255.0
    return {
        "haze": float(a[outside].mean()) if outside.any() else 0.0,
        "holes": float(1.0 - a[inside].mean()) if inside.any() else 0.0,
    }
