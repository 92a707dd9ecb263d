"""Which person and how sure: regions, the main subject, confidence and "no person found"."""

from __future__ import annotations

import numpy as np
import pytest

from service import subject


def blob(prob, top, left, height, width, value=0.97):
    prob[top : top + height, left : left + width] = value
    return prob


def test_regions_are_eight_connected():
    grid = np.zeros((6, 6), bool)
    grid[0, 0] = grid[1, 1] = True  # diagonal neighbours: one region
    grid[4:6, 4:6] = True
    labels, count = subject.label_regions(grid)
    assert count == 2 and labels[0, 0] == labels[1, 1] != labels[5, 5]


def flood_fill_regions(binary):
    """The plain way: a queue per region, cells in raster order."""
    from collections import deque

    labels, count = np.zeros(binary.shape, np.int32), 0
    for start in zip(*np.nonzero(binary), strict=True):
        if labels[start]:
            continue
        count += 1
        labels[start], queue = count, deque([start])
        while queue:
            y, x = queue.popleft()
            for ny in range(max(0, y - 1), min(binary.shape[0], y + 2)):
                for nx in range(max(0, x - 1), min(binary.shape[1], x + 2)):
                    if binary[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels, count


def test_regions_match_a_flood_fill():
    rng = np.random.default_rng(7)
    serpent = np.zeros((33, 40), bool)  # one region whose far end is 300 cells away from its first
    serpent[::4] = True
    for row in range(0, 29, 4):
        serpent[row : row + 5, 39 if row % 8 == 0 else 0] = True
    grids = [rng.random((30, 45)) < density for density in (0.2, 0.45, 0.6, 0.8) for _ in range(5)]
    grids += [serpent, np.zeros((4, 4), bool), np.ones((1, 7), bool), np.eye(6, dtype=bool)]
    for grid in grids:
        labels, count = subject.label_regions(grid)
        expected_labels, expected_count = flood_fill_regions(grid)
        assert count == expected_count and np.array_equal(labels, expected_labels)
    assert subject.label_regions(serpent)[1] == 1


def test_small_unsure_regions_are_dropped_and_people_kept():
    prob = np.full((300, 400), 0.05, np.float32)  # faint haze everywhere: not a region, left as it is
    blob(prob, 40, 100, 250, 100)  # a person
    blob(prob, 90, 250, 200, 60)  # another, half the first's area
    blob(prob, 20, 340, 30, 30, value=0.65)  # a balloon the model is unsure of, under a tenth of the person
    blob(prob, 240, 20, 40, 20)  # a distant person the model is sure of, as small
    kept = subject.without_strays(prob)
    assert kept[150, 150] and kept[200, 280] and kept[260, 30] and not kept[35, 355]
    assert kept[5, 5] and kept[295, 395]  # away from the balloon nothing changes
    assert subject.without_strays(prob, share=0.02)[35, 355]  # a smaller share keeps the balloon
    assert not subject.without_strays(prob, confidence=1.01)[260, 30]  # size alone drops the distant person too
    assert not subject.without_strays(prob, share=0.6, confidence=1.01)[200, 280]  # and a larger share the second person


def test_a_single_region_keeps_every_pixel():
    prob = blob(np.full((200, 300), 0.2, np.float32), 30, 100, 150, 80, value=0.6)
    assert subject.without_strays(prob).all()
    assert subject.without_strays(np.zeros((200, 300), np.float32)).all()


def test_main_subject_keeps_the_central_person_and_drops_passers_by():
    prob = np.zeros((300, 400), np.float32)
    blob(prob, 40, 150, 250, 100)  # the subject, centred
    blob(prob, 150, 10, 100, 40)  # a passer-by at the left edge
    blob(prob, 150, 340, 100, 40)
    kept = subject.main_subject(prob)
    assert kept[200, 200] and not kept[200, 30] and not kept[200, 360]


def test_main_subject_keeps_a_part_cut_off_by_an_object():
    prob = np.zeros((300, 400), np.float32)
    blob(prob, 40, 150, 180, 100)  # body
    blob(prob, 235, 160, 60, 80)  # legs, split from the body by a bag held across
    blob(prob, 120, 0, 60, 30)  # someone at the edge
    kept = subject.main_subject(prob)
    assert kept[100, 200] and kept[260, 200] and not kept[150, 10]


def test_no_person_when_nothing_or_a_speck_is_found():
    assert not subject.assess(np.zeros((200, 300), np.float32)).person_found
    assert not subject.assess(blob(np.zeros((200, 300), np.float32), 50, 50, 3, 3)).person_found
    assert subject.assess(blob(np.zeros((200, 300), np.float32), 50, 50, 100, 60)).person_found


def test_a_distant_person_is_still_a_person():
    # 12 x 8 of 200 x 300 pixels (0.16% of the photo): the size of the smallest dev val person
    assert subject.assess(blob(np.zeros((200, 300), np.float32), 50, 50, 12, 8)).person_found


def test_confidence_drops_when_the_model_is_undecided():
    decided = blob(np.zeros((200, 300), np.float32), 30, 100, 150, 80)
    undecided = decided.copy()
    undecided[30:180, 100:140] = 0.6  # half the person at a coin flip
    assert subject.assess(decided).confidence > 0.85
    assert subject.assess(undecided).confidence < subject.assess(decided).confidence - 0.3


def test_zoom_box_keeps_the_photo_aspect_and_stays_inside():
    from service.zoom import zoom_box

    assert zoom_box((0.1, 0.1, 0.9, 0.9)) is None  # a big subject needs no second look
    top, left, bottom, right = zoom_box((0.80, 0.90, 0.95, 0.97))  # small, near the bottom-right corner
    assert bottom - top == pytest.approx(right - left)  # same share both ways: the photo's own aspect
    assert 0.0 <= top < 0.80 and 0.0 <= left < 0.90 and bottom <= 1.0 and right <= 1.0


def test_zoomed_map_covers_the_small_person_at_higher_resolution(served_model):
    from PIL import Image

    from service import Segmenter
    from service.zoom import zoomed_map
    from tests.conftest import PHOTOS

    segmenter = Segmenter(served_model, provider="cpu")
    photo = Image.open(PHOTOS / "man-person-jumping-desert.jpg").convert("RGB")  # a small figure in a big scene
    small = segmenter.predict_small(photo)
    merged = zoomed_map(segmenter, photo, small)
    assert merged.shape == (photo.height, photo.width)  # the box needs the photo's full resolution here
    assert (merged >= 0.5).mean() == pytest.approx((small >= 0.5).mean(), abs=0.02)  # the same person, found again
