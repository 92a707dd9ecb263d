"""Compositing, cropping, thresholds and refinement: pure functions on arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from service import compose
from service.matte import ALPHA_HIGH, ALPHA_LOW
from service.refine import box_mean, guided_filter
from service.removal import CutoutOptions, MaskOptions, OptionError, Segmentation, alpha_curve, render_cutout, render_mask


def found(prob: np.ndarray, threshold: float | None = None) -> Segmentation:
    return Segmentation(alpha_curve(threshold)(prob), person_found=True, confidence=0.9)


@pytest.fixture
def scene():
    photo = Image.new("RGB", (40, 30), (0, 0, 255))
    prob = np.zeros((30, 40), np.float32)
    prob[10:20, 5:15] = 0.9
    prob[10:20, 15:16] = 0.3
    return photo, prob


def test_soft_and_hard_alpha(scene):
    _, prob = scene
    soft = alpha_curve(None)(prob)
    hard = alpha_curve(0.5)(prob)
    span = ALPHA_HIGH - ALPHA_LOW
    assert soft[15, 10] == round(min(1.0, (0.9 - ALPHA_LOW) / span) * 255) and soft[0, 0] == 0
    assert soft[15, 15] == round(max(0.0, (0.3 - ALPHA_LOW) / span) * 255)
    edges = alpha_curve(None)(np.array([ALPHA_LOW - 0.01, 0.5, ALPHA_HIGH + 0.01]))
    assert edges.tolist() == [0, 128, 255]  # the ends snap, the middle stays: thresholding at 0.5 is unchanged
    assert set(np.unique(hard)) == {0, 255} and hard[15, 15] == 0


def test_cutout_on_color_and_image(scene):
    photo, prob = scene
    alpha = alpha_curve(0.5)(prob)
    pixels = compose.rgba_pixels(photo, alpha, strip_rows=7)  # strips that do not divide the height
    assert np.array_equal(pixels[..., :3], np.asarray(photo)) and np.array_equal(pixels[..., 3], alpha)
    rgba = compose.cutout(pixels)
    assert rgba.mode == "RGBA" and rgba.getpixel((10, 15)) == (0, 0, 255, 255) and rgba.getpixel((0, 0))[3] == 0
    on_red = compose.on_color(rgba, compose.parse_color("#ff0000"))
    assert on_red.getpixel((0, 0)) == (255, 0, 0, 255) and on_red.getpixel((10, 15)) == (0, 0, 255, 255)
    background = Image.new("RGB", (400, 100), (0, 255, 0))
    on_green = compose.on_image(rgba, background)
    assert on_green.size == (40, 30) and on_green.getpixel((0, 0)) == (0, 255, 0, 255)


def test_parse_color_with_alpha():
    assert compose.parse_color("#10203040") == (16, 32, 48, 64)
    assert compose.parse_color("#102030") == (16, 32, 48, 255)


def test_bbox_crop_and_margin(scene):
    photo, prob = scene
    options = CutoutOptions(crop=True, crop_margin=2, refine=False)
    result = render_cutout(photo, found(prob), options)
    assert result.image.size == (10 + 4, 10 + 4)
    assert result.bbox == (2, 2, 12, 12)
    assert compose.subject_bbox(np.zeros((5, 5), np.uint8)) is None


def test_max_size_scales_the_bbox(scene):
    photo, prob = scene
    result = render_cutout(photo, found(prob), CutoutOptions(max_size=20))
    assert result.image.size == (20, 15) and result.bbox == (2, 5, 8, 10)


def test_jpeg_needs_a_background(scene):
    photo, prob = scene
    with pytest.raises(OptionError, match="jpeg"):
        render_cutout(photo, found(prob), CutoutOptions(format="jpeg"))
    assert render_cutout(photo, found(prob), CutoutOptions(format="jpeg", bg_color="#ffffff")).image.mode == "RGBA"


def test_mask_render(scene):
    _, prob = scene
    result = render_mask(found(prob, 0.5), MaskOptions(threshold=0.5))
    assert result.image.mode == "L" and result.image.size == (40, 30) and result.bbox == (5, 10, 15, 20)


def test_option_validation():
    for bad in ({"threshold": 1.5}, {"bg_color": "red"}, {"max_size": 0}, {"format": "gif"}, {"crop_margin": -1}):
        with pytest.raises(ValueError):
            CutoutOptions(**bad)


def test_box_mean_matches_a_direct_window_mean():
    x = np.random.default_rng(0).random((9, 11)).astype(np.float32)
    got = box_mean(x, 2)
    for i, j in [(0, 0), (4, 5), (8, 10), (3, 0)]:
        window = x[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3]
        assert got[i, j] == pytest.approx(window.mean(), rel=1e-5)


def test_guided_filter_snaps_a_blurry_mask_to_the_photo_edge():
    photo = np.zeros((60, 60, 3), np.float32)
    photo[:, 30:] = 255  # a sharp vertical edge
    blurry = np.clip((np.arange(60) - 20) / 20, 0, 1)[None, :].repeat(60, 0).astype(np.float32)  # ramp 20..40
    refined = guided_filter(photo, blurry, radius=4, eps=1e-4)
    step_across_edge = refined[:, 30] - refined[:, 29]
    assert np.all(step_across_edge > 0.2)  # the mask now jumps where the photo does...
    assert np.all(blurry[:, 30] - blurry[:, 29] < 0.06)  # ...where it only ramped before
    assert refined[:, 27].mean() < blurry[:, 27].mean() and refined[:, 33].mean() > blurry[:, 33].mean()


def test_guided_filter_sees_an_edge_between_colours_of_one_brightness():
    # Red against green of the same grey level (0.299 R = 0.587 G): no edge at all to a grey guide.
    photo = np.zeros((60, 60, 3), np.float32)
    photo[:, :30, 0] = 196.3
    photo[:, 30:, 1] = 100.0
    grey = photo @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.ptp(grey) < 0.1
    blurry = np.clip((np.arange(60) - 20) / 20, 0, 1)[None, :].repeat(60, 0).astype(np.float32)
    refined = guided_filter(photo, blurry, radius=4, eps=1e-4)
    assert np.all(refined[:, 30] - refined[:, 29] > 0.2)
    assert refined[:, 27].mean() < blurry[:, 27].mean() and refined[:, 33].mean() > blurry[:, 33].mean()


def test_guided_coefficients_solve_each_pixels_colour_least_squares():
    from service.refine import box_mean, guided_coefficients

    rng = np.random.default_rng(3)
    guide, prob = rng.random((20, 24, 3)).astype(np.float32), rng.random((20, 24)).astype(np.float32)
    radius, eps = 2, 1e-3
    coefficients = guided_coefficients(guide, prob, radius, eps)
    # He et al.'s closed form per window, with numpy's solver, then the same box averaging.
    mean_i, mean_p = box_mean(guide, radius), box_mean(prob, radius)
    cov_ip = box_mean(guide * prob[..., None], radius) - mean_i * mean_p[..., None]
    moments = box_mean((guide[..., :, None] * guide[..., None, :]).reshape(20, 24, 9), radius).reshape(20, 24, 3, 3)
    sigma = moments - mean_i[..., :, None] * mean_i[..., None, :]
    a = np.linalg.solve(sigma + eps * np.eye(3), cov_ip[..., None])[..., 0]
    b = mean_p - np.sum(a * mean_i, axis=-1)
    expected = box_mean(np.concatenate([a, b[..., None]], axis=-1).astype(np.float32), radius)
    assert np.allclose(coefficients, expected, atol=1e-4)


def as_float_alpha(prob: np.ndarray) -> np.ndarray:
    return np.round(prob * 255).astype(np.uint8)


def test_refinement_of_a_large_photo_runs_at_a_capped_size():
    from service.refine import REFINE_WORK_SIDE, full_resolution_alpha

    height, width = 1200, REFINE_WORK_SIDE * 4
    photo = np.zeros((height, width, 3), np.uint8)
    photo[:, width // 2 :] = 255
    # A blurry edge 8 model pixels wide (64 photo pixels), as a 320-px model upsampled 8x would give.
    small = np.clip((np.arange(width // 8) - width / 16 + 4) / 8, 0, 1)[None, :].repeat(height // 8, 0).astype(np.float32)
    plain = full_resolution_alpha(Image.fromarray(photo), small, 320, as_float_alpha, refine=False)
    refined = full_resolution_alpha(Image.fromarray(photo), small, 320, as_float_alpha, refine=True)
    assert refined.shape == (height, width) and refined.dtype == np.uint8
    inside, outside = width // 2 + 8, width // 2 - 8
    assert refined[:, inside].mean() > plain[:, inside].mean() + 12  # pulled towards the photo's edge
    assert refined[:, outside].mean() < plain[:, outside].mean() - 12


def test_strips_upsample_like_pillow():
    from service.refine import full_resolution_alpha

    small = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    photo = Image.new("RGB", (900, 700))
    ours = full_resolution_alpha(photo, small, 32, as_float_alpha, refine=False)
    pillow = np.asarray(Image.fromarray(small).resize((900, 700), Image.BILINEAR))
    assert np.abs(ours.astype(int) - as_float_alpha(pillow).astype(int)).max() <= 1
