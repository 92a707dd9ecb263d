"""Alpha shaping and foreground colour estimation, on composites whose true colours are known."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from service.compose import rgba_pixels
from service.matte import ALPHA_HIGH, ALPHA_LOW, decontaminate, estimate_foreground, shape_alpha


def composite_scene(width=300, height=200, background=(0, 255, 0)):
    """A textured warm foreground over a flat screen colour, with a soft 12 px transition between them."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    foreground = np.dstack(
        [150 + 40 * np.sin(rows / 40), 90 + 25 * np.cos(cols / 50), 70 + 20 * np.sin((rows + cols) / 60)]
    ).astype(np.float32)
    edge = width / 2 + 10 * np.sin(rows / 25)
    alpha = np.clip((edge - cols) / 12 + 0.5, 0, 1).astype(np.float32)
    photo = alpha[..., None] * foreground + (1 - alpha[..., None]) * np.array(background, np.float32)
    return np.round(photo).astype(np.uint8), np.round(alpha * 255).astype(np.uint8), foreground


@pytest.mark.parametrize("background", [(0, 255, 0), (255, 0, 255), (250, 250, 250)])
def test_foreground_colour_is_recovered_in_the_soft_band(background):
    photo, alpha, truth = composite_scene(background=background)
    estimated = estimate_foreground(photo, alpha).astype(np.float32)
    band = (alpha > 0.1 * 255) & (alpha < 0.9 * 255)
    error = np.abs(estimated[band] - truth[band]).mean()
    untouched = np.abs(photo[band].astype(np.float32) - truth[band]).mean()
    assert untouched > 40  # the photo's own edge colours are far off: that is the fringe users see
    assert error < 4, f"mean error {error:.1f} of 255 in the 0.1..0.9 band"


def test_foreground_keeps_solid_and_clear_pixels_as_they_are():
    photo, alpha, _ = composite_scene()
    estimated = estimate_foreground(photo, alpha)
    solid_or_clear = (alpha == 0) | (alpha == 255)
    assert np.array_equal(estimated[solid_or_clear], photo[solid_or_clear])
    hard = np.where(alpha >= 128, 255, 0).astype(np.uint8)
    assert estimate_foreground(photo, hard) is photo  # nothing semi-transparent: nothing to estimate


def test_the_cutout_gets_the_same_colours_in_place():
    photo, alpha, _ = composite_scene(background=(255, 0, 255))
    rgba = rgba_pixels(Image.fromarray(photo), alpha)
    decontaminate(rgba, Image.fromarray(photo))
    assert np.array_equal(rgba[..., :3], estimate_foreground(photo, alpha))
    assert np.array_equal(rgba[..., 3], alpha)


def test_foreground_of_a_large_photo_is_fitted_on_a_small_copy_and_still_right():
    photo, alpha, truth = composite_scene(width=2400, height=900)
    estimated = estimate_foreground(photo, alpha).astype(np.float32)
    band = (alpha > 0.1 * 255) & (alpha < 0.9 * 255)
    assert np.abs(estimated[band] - truth[band]).mean() < 4


def test_alpha_shaping_snaps_the_ends_and_keeps_the_middle():
    prob = np.array([0.0, ALPHA_LOW, (ALPHA_LOW + ALPHA_HIGH) / 2, ALPHA_HIGH, 1.0], np.float32)
    assert shape_alpha(prob).tolist() == [0, 0, 128, 255, 255]
    ramp = shape_alpha(np.linspace(0, 1, 101, dtype=np.float32))
    assert np.all(np.diff(ramp.astype(int)) >= 0)  # monotone: never inverts the model's order
    assert shape_alpha(np.array([0.5], np.float32))[0] == 128  # so a 128 threshold is the model's 0.5
