"""Which person and how sure: regions, the main subject, confidence and "no person found"."""

from __future__ import annotations

import numpy as np

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
    assert not subject.assess(blob(np.zeros((200, 300), np.float32), 50, 50, 5, 5)).person_found
    assert subject.assess(blob(np.zeros((200, 300), np.float32), 50, 50, 100, 60)).person_found


def test_confidence_drops_when_the_model_is_undecided():
    decided = blob(np.zeros((200, 300), np.float32), 30, 100, 150, 80)
    undecided = decided.copy()
    undecided[30:180, 100:140] = 0.6  # half the person at a coin flip
    assert subject.assess(decided).confidence > 0.85
    assert subject.assess(undecided).confidence < subject.assess(decided).confidence - 0.3
