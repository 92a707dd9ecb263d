"""How the service combines its two views of a photo (service/segmenter.py)."""

import numpy as np

from service.segmenter import average_log_odds


def test_views_are_combined_as_the_mean_of_their_log_odds():
    rng = np.random.default_rng(0)
    first, second = rng.uniform(0.01, 0.99, (2, 40, 30))
    log_odds = np.log(first / (1 - first)) + np.log(second / (1 - second))
    np.testing.assert_allclose(average_log_odds(first, second), 1 / (1 + np.exp(-log_odds / 2)), atol=1e-5)
    np.testing.assert_allclose(average_log_odds(first, second), average_log_odds(second, first), atol=1e-6)
    np.testing.assert_allclose(average_log_odds(first, first), first, atol=1e-5)  # views that agree keep their value


def test_a_sure_view_outweighs_an_unsure_one_where_the_plain_mean_would_not():
    sure_person, unsure_background = np.float32([[0.999]]), np.float32([[0.1]])
    assert (sure_person + unsure_background) / 2 < 0.6
    assert average_log_odds(sure_person, unsure_background)[0, 0] > 0.9
    sure_background, unsure_person = np.float32([[0.001]]), np.float32([[0.9]])
    assert average_log_odds(sure_background, unsure_person)[0, 0] < 0.1


def test_certain_views_stay_finite():
    certain = average_log_odds(np.float32([[0.0, 1.0, 1.0]]), np.float32([[1.0, 1.0, 0.0]]))
    assert np.isfinite(certain).all() and certain.dtype == np.float32
    np.testing.assert_allclose(certain, [[0.5, 1.0, 0.5]], atol=1e-3)


def test_the_sweep_reads_every_part_of_a_rule_and_defaults_to_what_is_served():
    from scripts.view_combination_sweep import parse_rule
    from service import refine, subject

    assert parse_rule("logit") == ("logit", 0.5, subject.STRAY_CONFIDENCE, 0.0, refine.REFINE_WORK_SIDE)
    assert parse_rule("mean:0.6:stray=0.9:cut=-0.02:side=640") == ("mean", 0.6, 0.9, -0.02, 640)
