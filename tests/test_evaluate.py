"""Evaluation as users get it (numpy + onnxruntime, no TensorFlow): known answers and the real model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PHOTOS, ROOT
from training import dataset, edges
from training.evaluate import (
    Served,
    boundary_f,
    evaluate,
    evaluate_no_person,
    evaluate_photos,
    load_truth,
    segmenter_predict,
    url_predict,
)

SCENES = PHOTOS.parent / "scenes"


@pytest.fixture(scope="module")
def photo_dataset(tmp_path_factory):
    """The test photos (and the several-people scene) as a dataset in images/ + masks/ layout."""
    root = tmp_path_factory.mktemp("photos")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for image in [*sorted(PHOTOS.glob("*.jpg")), SCENES / "main-person-with-passers-by.jpg"]:
        shutil.copy(image, root / "images")
        truth = (load_truth(image.with_suffix(".png")) >= 0.5).astype(np.uint8)
        Image.fromarray(truth).save(root / "masks" / image.with_suffix(".png").name)
    return root


def samples_of(root):
    splits = dataset.discover(root, val_fraction=0.5)
    return sorted(splits.train + splits.val, key=lambda s: s.stem)


def test_known_answers(photo_dataset):
    samples = samples_of(photo_dataset)
    truths = {s.image.read_bytes(): (load_truth(s.mask) * 255).astype(np.uint8) for s in samples}

    def perfect(data, options):
        alpha = truths[data]
        return Served(alpha, np.zeros((*alpha.shape, 3), np.uint8), 1.0, True)

    def empty(data, options):
        return Served(np.zeros_like(truths[data]), np.zeros((*truths[data].shape, 3), np.uint8), 0.0, False)

    best, _ = evaluate_photos(perfect, samples)
    assert best["mean_iou"] == 1.0 and best["pooled_iou"] == 1.0 and best["boundary_f"] == 1.0
    assert best["haze"] == 0.0 and best["holes"] == 0.0
    worst, _ = evaluate_photos(empty, samples)
    assert worst["mean_iou"] == 0.0 and worst["recall"] == 0.0 and worst["holes"] == 1.0
    seen = []
    evaluate_photos(lambda data, options: seen.append(options) or perfect(data, options), samples, {"zoom": "true"})
    assert seen == [{"zoom": "true"}] * len(samples)  # every photo is served with the options measured


def test_boundary_f_tolerates_two_pixels():
    truth = np.zeros((40, 40))
    truth[10:30, 10:30] = 1
    shifted = np.zeros_like(truth)
    shifted[12:32, 10:30] = 1
    far = np.zeros_like(truth)
    far[16:36, 10:30] = 1
    assert boundary_f(truth, truth) == 1.0
    assert boundary_f(shifted, truth) > 0.6
    assert boundary_f(far, truth) < 0.5


def test_edge_scores_of_a_perfect_and_a_fringed_cutout():
    photo = np.full((60, 80, 3), (200, 120, 90), np.uint8)
    person = np.zeros((60, 80), bool)
    person[10:50, 20:60] = True
    alpha = person.astype(np.uint8) * 255
    perfect = edges.composite_scores(photo, person, edges.GREEN, photo, alpha)
    assert perfect == {"edge_error": 0.0, "colour_bleed": 0.0}
    fringed = photo.copy()
    fringed[person & ~edges.erode(person, 2)] = (100, 230, 60)  # a green rim inside the edge
    scores = edges.composite_scores(photo, person, edges.GREEN, fringed, alpha)
    assert scores["colour_bleed"] > 20 and scores["edge_error"] > 10
    assert edges.haze_and_holes(person, alpha) == {"haze": 0.0, "holes": 0.0}


def test_the_shipped_model_through_the_served_path(served_model, photo_dataset):
    from service.segmenter import Segmenter

    samples = samples_of(photo_dataset)
    result = evaluate(segmenter_predict(Segmenter(served_model, provider="cpu")), samples, progress=False)
    photos, screens, subject = result["metrics"], result["screens"], result["main_subject"]
    assert photos["images"] == 5 and photos["mean_iou"] > 0.85 and photos["boundary_f"] > 0.5
    assert photos["haze"] < 0.1 and photos["holes"] < 0.1 and 0 < photos["latency_p50_ms"]
    assert screens["images"] == 5 and screens["edge_error"] < 10 and screens["colour_bleed"] < 10
    assert subject["photos"] == 1 and subject["others_dropped"] > 0.9 and subject["iou_main"] > subject["iou_all"]
    crops, records = evaluate_no_person(segmenter_predict(Segmenter(served_model, provider="cpu")), samples, min_side=96)
    assert crops["crops"] == len(records) > 0 and 0.0 <= crops["mean_false_area"] < 0.05


def test_a_running_service_scores_the_same_as_in_process(live_server, served_model, photo_dataset):
    from service.segmenter import Segmenter

    samples = samples_of(photo_dataset)[:3]
    by_url, _ = evaluate_photos(url_predict(live_server), samples)
    in_process, _ = evaluate_photos(segmenter_predict(Segmenter(served_model, provider="cpu")), samples)
    for key in ("mean_iou", "boundary_f", "haze", "holes"):
        assert by_url[key] == pytest.approx(in_process[key], abs=1e-9), key


def test_evaluate_command_loads_no_tensorflow(served_model, photo_dataset, tmp_path):
    probe = (
        "import sys, runpy; sys.argv = sys.argv[1:]; "
        "code = 0\ntry:\n    runpy.run_module('training', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules)\n"
        "print('LOADED', loaded); sys.exit(code)"
    )
    command = [sys.executable, "-c", probe, "training", "evaluate", str(served_model), "--data", str(photo_dataset)]
    command += ["--split", "train", "--limit", "2", "--parts", "photos,screens", "--option", "threshold=0.5"]
    command += ["--out", str(tmp_path / "report")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED []" in result.stdout and "mean_iou" in result.stdout and "edge_error" in result.stdout
    report = json.loads((tmp_path / "report" / "evaluation.json").read_text())
    assert report["metrics"]["images"] == 2 and report["screens"]["images"] == 2
    assert report["options"] == {"threshold": "0.5"}
    compared = subprocess.run(
        [sys.executable, "-c", probe, "training", "compare", str(tmp_path / "report"), "--names", "tiny"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert compared.returncode == 0 and "LOADED []" in compared.stdout, compared.stderr[-2000:]
    row = next(line for line in compared.stdout.splitlines() if line.startswith("| tiny |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == f"{report['metrics']['mean_iou']:.4f}" and cells[2] == f"{report['metrics']['boundary_f']:.4f}"
    assert cells[3] == f"{report['screens']['edge_error']:.2f} / {report['screens']['colour_bleed']:.2f}"
    assert cells[4] == cells[5] == "-"  # the no-person part was not run
    for bad in ("zoom=maybe", "zooom=true", "zoom"):
        refused = subprocess.run(
            [sys.executable, "-m", "training", "evaluate", str(served_model), "--data", str(photo_dataset), "--option", bad],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert refused.returncode == 2 and "--option" in refused.stderr and "Traceback" not in refused.stderr, bad
    missing = subprocess.run(
        [sys.executable, "-m", "training", "compare", str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert missing.returncode == 2 and "evaluation.json" in missing.stderr and "Traceback" not in missing.stderr
    helped = subprocess.run([sys.executable, "-c", probe, "training", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert helped.returncode == 0 and "LOADED []" in helped.stdout and "evaluate" in helped.stdout


def test_the_cut_sweep_at_one_half_is_the_served_alpha(served_model, photo_dataset):
    """scripts.alpha_cut_sweep scores other cuts of what the service shapes; its 0.5 row must be the service's."""
    from scripts.alpha_cut_sweep import served_probability
    from service.segmenter import Segmenter

    segmenter = Segmenter(served_model, provider="cpu")
    predict = segmenter_predict(segmenter)
    for sample in samples_of(photo_dataset)[:3]:
        photo = Image.open(sample.image).convert("RGB")
        prob = served_probability(segmenter, photo)
        served = predict(sample.image.read_bytes(), {}).alpha >= 128
        assert served.any() and np.mean((prob >= 128) != served) < 1e-4
        assert ((prob >= round(0.6 * 255)) <= (prob >= 128)).all() and (prob >= round(0.4 * 255)).sum() > served.sum()
