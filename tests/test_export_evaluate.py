"""Export to ONNX: parity, metadata, int8, test-time augmentation, the model card stamp."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from service.fitting import aspect_area_shape, fit_image  # noqa: E402
from service.segmenter import MIRRORED_ASPECT, SQUARE, SURE, ModelLoadError, Segmenter  # noqa: E402
from tests.conftest import INT8_WEIGHT_LIMIT, TINY_SIZE, int8_weight_range  # noqa: E402
from training import dataset  # noqa: E402
from training.export import ExportError, export, load_trained_model  # noqa: E402


def test_onnx_contract(tiny_onnx):
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.type == "tensor(float)" and list(inp.shape[1:]) == [TINY_SIZE, TINY_SIZE, 3]
    assert not isinstance(inp.shape[0], int)  # dynamic batch
    assert out.name == "mask"
    batch = np.random.default_rng(0).uniform(0, 255, (3, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    probs = session.run(None, {"image": batch})[0]
    assert probs.shape == (3, TINY_SIZE, TINY_SIZE, 1) and probs.min() >= 0 and probs.max() <= 1
    assert onnx.load(str(tiny_onnx)).opset_import[0].version == 17


def test_onnx_matches_keras(tiny_run, tiny_onnx):
    model, _ = load_trained_model(tiny_run, TINY_SIZE)
    batch = np.random.default_rng(1).uniform(0, 255, (2, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert np.max(np.abs(session.run(None, {"image": batch})[0] - model.predict(batch, verbose=0))) <= 1e-4


def test_metadata_round_trip(tiny_run, tiny_onnx):
    segmenter = Segmenter(tiny_onnx, provider="cpu")
    meta = segmenter.info.metadata
    assert segmenter.info.input_size == TINY_SIZE and segmenter.info.fit_mode == "stretch"
    assert meta["cutout.precision"] == "fp32" and meta["cutout.name"] == "tiny"
    assert float(meta["cutout.parity_max_abs_diff"]) <= 1e-4
    assert json.loads(meta["cutout.train_metrics"]) == json.loads((tiny_run / "metrics.json").read_text())
    assert json.loads(meta["cutout.training_config"])["size"] == TINY_SIZE
    for key in (
        "cutout.version",
        "cutout.git_commit",
        "cutout.created",
        "cutout.training_data",
        "cutout.preprocessing",
        "cutout.pad_rgb",
    ):
        assert meta[key], key


def test_int8_export_is_checked_against_fp32(tiny_run, tmp_path):
    out = tmp_path / "tiny-int8.onnx"
    cwd_before = set(os.listdir(os.getcwd()))
    summary = export(tiny_run, out, precision="int8", calibration_images=8, check_images=4, force=True)
    assert set(os.listdir(os.getcwd())) == cwd_before  # quantization scratch files stayed in a temp dir
    assert {"fp32_iou", "int8_iou", "iou_loss"} <= summary.keys()
    graph_ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= graph_ops
    low, high = int8_weight_range(out)
    assert -INT8_WEIGHT_LIMIT <= low < 0 < high <= INT8_WEIGHT_LIMIT  # no int16 saturation on CPUs without VNNI
    segmenter = Segmenter(out, provider="cpu")
    assert segmenter.info.metadata["cutout.precision"] == "int8"
    prob = segmenter.predict(Image.new("RGB", (50, 30), (200, 10, 10)))
    assert prob.shape == (30, 50) and 0 <= prob.min() <= prob.max() <= 1


def test_calibration_set_puts_every_second_person_on_a_screen(shapes_dataset):
    from training.edges import GREEN, MAGENTA
    from training.export import calibration_set

    samples = dataset.load_splits(shapes_dataset).train[:5]
    calibration = calibration_set(samples, TINY_SIZE, "stretch")
    assert calibration.photos.shape == (5, TINY_SIZE, TINY_SIZE, 3)
    assert calibration.screens.shape == (3, TINY_SIZE, TINY_SIZE, 3)  # photos 0, 2 and 4
    for composite, screen in zip(calibration.screens, (GREEN, MAGENTA, GREEN), strict=True):
        on_screen = np.all(composite == np.array(screen, np.float32), axis=-1)
        assert 0.2 < on_screen.mean() < 1.0  # the background is the screen colour, the person is not
    person = ~np.all(calibration.screens[0] == np.array(GREEN, np.float32), axis=-1)
    same_as_photo = np.all(calibration.screens[0] == calibration.photos[0], axis=-1)
    assert same_as_photo[person].mean() > 0.5  # what is not the screen colour is the photo's own person


def test_activation_ranges_are_the_mean_of_each_images_extremes(tiny_onnx, tmp_path):
    from training.export import mean_activation_ranges

    rng = np.random.default_rng(3)
    dark = rng.uniform(0, 60, (1, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    bright = rng.uniform(0, 255, (1, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    each = [mean_activation_ranges(tiny_onnx, image, tmp_path / f"one-{i}.onnx") for i, image in enumerate((dark, bright))]
    both = mean_activation_ranges(tiny_onnx, np.concatenate([dark, bright]), tmp_path / "both.onnx")
    assert both.keys() == each[0].keys() and len(both) > 10
    widths = []
    for name, (low, high) in both.items():
        assert low == pytest.approx((each[0][name][0] + each[1][name][0]) / 2, rel=1e-4, abs=1e-5)
        assert high == pytest.approx((each[0][name][1] + each[1][name][1]) / 2, rel=1e-4, abs=1e-5)
        widths.append((high - low, max(each[0][name][1], each[1][name][1]) - min(each[0][name][0], each[1][name][0])))
    assert any(mean < extreme * 0.99 for mean, extreme in widths)  # narrower than the extremes over both images


def test_wider_ranges_cover_every_set():
    from training.export import wider_ranges

    photos = {"a": (0.0, 1.0), "b": (-1.0, 2.0)}
    screens = {"a": (-0.5, 0.8), "c": (0.0, 3.0)}
    assert wider_ranges(photos, screens) == {"a": (-0.5, 1.0), "b": (-1.0, 2.0), "c": (0.0, 3.0)}
    assert wider_ranges(photos) == photos


def test_int8_scales_widen_for_screens_never_narrow(tiny_onnx):
    from training.export import Calibration, to_int8

    rng = np.random.default_rng(4)
    photos = rng.uniform(60, 200, (2, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    green = np.zeros((1, TINY_SIZE, TINY_SIZE, 3), np.float32)
    green[..., 1] = 255.0
    proto = onnx.load(str(tiny_onnx))

    def activation_scales(calibration):
        graph = to_int8(proto, calibration).graph
        values = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
        return {
            n.input[0]: float(values[n.input[1]])
            for n in graph.node
            if n.op_type == "QuantizeLinear" and values[n.input[1]].size == 1
        }

    alone = activation_scales(Calibration(photos, np.empty((0, TINY_SIZE, TINY_SIZE, 3), np.float32)))
    with_screen = activation_scales(Calibration(photos, green))
    assert alone.keys() == with_screen.keys()
    assert all(with_screen[name] >= alone[name] * (1 - 1e-6) for name in alone)
    assert any(with_screen[name] > alone[name] * 1.05 for name in alone)


def test_int8_refused_when_it_costs_too_much(shapes_dataset, monkeypatch):
    import training.export as export_module

    # Quantisation itself is exercised above; here only the refusal rule, without converting a model.
    monkeypatch.setattr(export_module, "to_int8", lambda proto, calibration: "int8 graph")
    splits = dataset.load_splits(shapes_dataset)
    for loss, refused in ((0.1, True), (0.004, False)):
        scores = {"fp32_iou": 0.9, "int8_iou": 0.9 - loss, "iou_loss": loss}
        monkeypatch.setattr(export_module, "int8_vs_fp32", lambda *a, scores=scores: scores)
        convert = lambda force: export_module._to_precision("fp32 graph", "int8", splits, 64, "stretch", 4, 8, force, {})  # noqa: E731
        if refused:
            with pytest.raises(ExportError, match="costs 0.1000 val IoU"):
                convert(force=False)
            assert convert(force=True) == "int8 graph"  # --force writes it anyway
        else:
            assert convert(force=False) == "int8 graph"


def test_card_stamps_the_evaluation_into_the_model(tiny_onnx, tmp_path):
    from service import __version__
    from training.card import set_metadata, stamp

    model = tmp_path / "stamped.onnx"
    exported_before_the_bump = onnx.load(str(tiny_onnx))
    meta = {p.key: p.value for p in exported_before_the_bump.metadata_props}
    set_metadata(exported_before_the_bump, {**meta, "cutout.version": "0.0.1"})
    onnx.save(exported_before_the_bump, str(model))
    evaluation = {"metrics": {"mean_iou": 0.5, "boundary_f": 0.25}, "split": "val", "refine": True}
    card = stamp(model, evaluation, {"note": "x"})
    meta = Segmenter(model, provider="cpu").info.metadata
    assert (
        json.loads(meta["cutout.val_metrics"]) == card["val_metrics"] == {**evaluation["metrics"], "split": "val", "refine": True}
    )
    assert card["input_size"] == TINY_SIZE and card["note"] == "x" and card["precision"] == "fp32"
    assert meta["cutout.name"] == card["name"] == "stamped"
    assert meta["cutout.version"] == card["version"] == __version__
    assert meta["cutout.tta"] == "none"  # one view: nothing for the service to combine


def test_card_stamps_how_this_service_combines_two_views(tiny_onnx, tmp_path):
    from training.card import set_metadata, stamp

    model = tmp_path / "two-views.onnx"
    exported_by_an_older_release = onnx.load(str(tiny_onnx))
    meta = {p.key: p.value for p in exported_by_an_older_release.metadata_props}
    old = "the service averages the square with the photo mirrored at its aspect ratio (square,mirrored-aspect)"
    set_metadata(exported_by_an_older_release, {**meta, "cutout.views": f"{SQUARE},{MIRRORED_ASPECT}", "cutout.tta": old})
    onnx.save(exported_by_an_older_release, str(model))
    stamp(model, {"metrics": {"mean_iou": 0.5}})
    stamped = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert stamped["cutout.tta"] != old and "log-odds" in stamped["cutout.tta"]


def test_flip_averaging_export_is_mirror_symmetric(tiny_run, tmp_path):
    out = tmp_path / "tta.onnx"
    summary = export(tiny_run, out, flip_tta=True)
    assert summary["parity_max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(2).uniform(0, 255, (1, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    direct = session.run(None, {"image": image})[0]
    mirrored = session.run(None, {"image": image[:, :, ::-1].copy()})[0][:, :, ::-1]
    np.testing.assert_allclose(direct, mirrored, atol=1e-5)
    assert Segmenter(out, provider="cpu").info.metadata["cutout.tta"] == "hflip-average"


def test_aspect_view_export_takes_any_shape_and_the_service_averages_both_views(tiny_run, tmp_path):
    out = tmp_path / "aspect.onnx"
    summary = export(tiny_run, out, aspect_view=True)
    assert summary["parity_max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model, _ = load_trained_model(tiny_run, None)  # the same weights, built for any shape
    wide = np.random.default_rng(4).uniform(0, 255, (1, TINY_SIZE - 16, TINY_SIZE + 32, 3)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"image": wide})[0], model.predict(wide, verbose=0), atol=1e-4)

    segmenter = Segmenter(out, provider="cpu")
    assert segmenter.info.views == (SQUARE, MIRRORED_ASPECT) and segmenter.info.input_size == TINY_SIZE
    photo = Image.fromarray(np.random.default_rng(5).integers(0, 256, (60, 90, 3), dtype=np.uint8))
    # Each view's raw model run through the segmenter's own session (two sessions may sum in different orders);
    # the fitting, mirroring, resizing and combining below are done by hand.
    square = segmenter.predict_model_size(fit_image(photo, TINY_SIZE, segmenter.info.fit_mode)[0][None])[0]
    height, width = aspect_area_shape(photo.width, photo.height, TINY_SIZE)
    assert (height, width) == (48, 80)
    view = np.asarray(photo.resize((width, height), Image.BILINEAR), dtype=np.float32)[None, :, ::-1]
    mirrored = segmenter.predict_model_size(np.ascontiguousarray(view))[0][:, ::-1]
    mirrored = np.asarray(Image.fromarray(np.ascontiguousarray(mirrored)).resize(square.shape[::-1], Image.BILINEAR))
    # The service clips each view at SURE so that a certain pixel keeps finite log-odds.
    views = [np.clip(p.astype(np.float64), SURE, 1 - SURE) for p in (square, mirrored)]
    log_odds = [np.log(p / (1 - p)) for p in views]
    np.testing.assert_allclose(segmenter.predict_small(photo), 1 / (1 + np.exp(-(log_odds[0] + log_odds[1]) / 2)), atol=1e-4)
    assert segmenter.predict(photo).shape == (60, 90)

    half = tmp_path / "aspect-fp16.onnx"  # the CUDA file: the same views, run here on CPU
    export(tiny_run, half, precision="fp16", aspect_view=True)
    half_segmenter = Segmenter(half, provider="cpu")
    assert half_segmenter.info.views == (SQUARE, MIRRORED_ASPECT)
    square_input = fit_image(photo, TINY_SIZE, segmenter.info.fit_mode)[0][None]
    for model_input in (square_input, np.ascontiguousarray(view)):  # each view; log-odds magnify fp16's rounding near 0 and 1
        np.testing.assert_allclose(
            half_segmenter.predict_model_size(model_input), segmenter.predict_model_size(model_input), atol=0.02
        )
    assert np.mean((half_segmenter.predict_small(photo) >= 0.5) == (segmenter.predict_small(photo) >= 0.5)) > 0.99


def test_aspect_view_is_refused_where_the_service_cannot_run_it(tiny_run, tiny_onnx, tmp_path):
    with pytest.raises(ExportError, match="without --flip-tta"):
        export(tiny_run, tmp_path / "both.onnx", flip_tta=True, aspect_view=True)
    from training.card import set_metadata

    proto = onnx.load(str(tiny_onnx))
    meta = {entry.key: entry.value for entry in proto.metadata_props}
    set_metadata(proto, {**meta, "cutout.views": f"{SQUARE},{MIRRORED_ASPECT}"})  # a fixed shape cannot take the view
    onnx.save(proto, tmp_path / "fixed.onnx")
    with pytest.raises(ModelLoadError, match="fixed shape"):
        Segmenter(tmp_path / "fixed.onnx", provider="cpu")
    set_metadata(proto, {**meta, "cutout.views": f"{SQUARE},upside-down"})
    onnx.save(proto, tmp_path / "unknown.onnx")
    with pytest.raises(ModelLoadError, match="unknown cutout.views"):
        Segmenter(tmp_path / "unknown.onnx", provider="cpu")


def test_a_graph_onnxruntime_cannot_load_is_refused_with_the_reason():
    from training.export import check_parity

    broken = onnx.ModelProto()  # no graph, no opset: what a failed conversion looks like to onnxruntime
    with pytest.raises(ExportError, match="cannot load the converted graph"):
        check_parity(lambda batch: batch, broken, np.zeros((1, TINY_SIZE, TINY_SIZE, 3), np.float32))


def test_a_graph_whose_mask_has_another_shape_is_refused_though_the_values_agree():
    """tf2onnx once folded the last Reshape and Squeeze into a 5-D mask, (1, N, H, W, 1): every value right, so
    only the shape tells, and numpy would broadcast it against Keras' (N, H, W, 1) without a word."""
    from onnx import TensorProto, helper

    from training.export import OPSET, check_parity

    nodes = [
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[3], keepdims=1),
        helper.make_node("Unsqueeze", ["grey", "front"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes,
        "five_d_mask",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, None, None, 3])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, None)],
        [helper.make_tensor("front", TensorProto.INT64, [1], [0])],
    )
    five_d = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    batch = np.random.default_rng(0).uniform(0, 255, (2, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    grey = lambda images: images.mean(axis=3, keepdims=True)  # noqa: E731
    assert np.allclose(ort.InferenceSession(five_d.SerializeToString()).run(None, {"image": batch})[0][0], grey(batch))
    with pytest.raises(ExportError, match=r"mask is \(1, 2, .*Keras' \(2, "):
        check_parity(grey, five_d, batch)


def test_conversion_leaves_tf2onnx_optimizers_as_they_were():
    from tf2onnx import optimizer

    from training.export import UNSAFE_OPTIMIZERS, _without_optimizers

    before = list(optimizer._optimizers)
    assert set(UNSAFE_OPTIMIZERS) <= set(before)  # a tf2onnx that renames it would bring the 5-D mask back unseen
    with _without_optimizers(optimizer._optimizers, UNSAFE_OPTIMIZERS):
        assert not set(UNSAFE_OPTIMIZERS) & set(optimizer._optimizers)
        assert [name for name in before if name not in UNSAFE_OPTIMIZERS] == list(optimizer._optimizers)
    assert list(optimizer._optimizers) == before  # same names, same order: the order is the order they run in


def test_scale_averaging_export_is_the_mean_of_both_scales(tiny_run, tiny_onnx, tmp_path):
    import tensorflow as tf

    small = TINY_SIZE // 2
    averaged = tmp_path / "scales.onnx"
    summary = export(tiny_run, averaged, scales=[TINY_SIZE, small])
    assert summary["parity_max_abs_diff"] <= 1e-4 and summary["tta"] == f"scale-average {TINY_SIZE}+{small}"
    small_model, _ = load_trained_model(tiny_run, small)  # the same weights built for the small input

    def run(path, image):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": image})[0]

    image = np.random.default_rng(3).uniform(0, 255, (1, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    shrunk = tf.image.resize(image, (small, small)).numpy()
    small_back = tf.image.resize(small_model.predict(shrunk, verbose=0), (TINY_SIZE, TINY_SIZE)).numpy()
    expected = (run(tiny_onnx, image) + small_back) / 2  # tiny_onnx: the same run at full size, no averaging
    np.testing.assert_allclose(run(averaged, image), expected, atol=1e-4)
    assert Segmenter(averaged, provider="cpu").info.metadata["cutout.tta"] == f"scale-average {TINY_SIZE}+{small}"


def test_average_makes_a_run_whose_weights_are_the_mean(tiny_run, tmp_path):
    from training.cli import main
    from training.export import average_weights

    model, _ = load_trained_model(tiny_run, TINY_SIZE)
    original = model.get_weights()
    model.set_weights([w + 1.0 for w in original])
    shifted = tmp_path / "shifted.weights.h5"
    model.save_weights(shifted)

    assert main(["average", str(tiny_run), str(shifted), "--config-from", str(tiny_run), "--out", str(tmp_path / "soup")]) == 0
    soup, config = load_trained_model(tmp_path / "soup", TINY_SIZE)
    assert config.size == TINY_SIZE
    for averaged, start in zip(soup.get_weights(), original, strict=True):
        assert np.allclose(averaged, start + 0.5, atol=1e-5)
    with pytest.raises(ExportError, match="one share per source"):
        average_weights(tiny_run, [tiny_run, shifted], tmp_path / "bad", shares=[0.7, 0.7])
    with pytest.raises(ExportError, match="named"):
        average_weights(tiny_run, [tiny_run, tmp_path / "shifted.h5"], tmp_path / "bad")


def test_a_run_that_records_no_dataset_needs_data_to_export(tiny_run, tmp_path):
    from training.fit import FitConfig

    config = FitConfig.load(tiny_run)
    config.data = None  # as `release-run` writes it without --data
    config.save(tmp_path)
    with pytest.raises(ExportError, match="give --data"):
        export(tmp_path, tmp_path / "never.onnx")
    assert not (tmp_path / "never.onnx").exists()
