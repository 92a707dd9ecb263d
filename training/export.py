"""Export a trained run to one self-describing ONNX file (fp32, fp16 for CUDA, or int8 QDQ for CPU).

The file is the whole contract with the service: input `image` (float32 NHWC RGB 0..255 at a fixed size,
or any height and width that are multiples of 16 when the service adds the aspect view; dynamic batch),
output `mask` (person probability), and metadata_props describing everything else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from service import __version__
from service.fitting import PAD_RGB, aspect_area_shape, fit_image, mirrored_view
from service.segmenter import MIRRORED_ASPECT, SQUARE, TWO_VIEWS_DESCRIPTION
from training import dataset
from training.card import set_metadata
from training.fit import FitConfig, initial_weights_path

OPSET = 17
PARITY_TOLERANCE = 1e-4
INT8_MAX_IOU_LOSS = 0.005
CALIBRATION_IMAGES = 64
SCREEN_EVERY = 2  # calibration photos whose person is also pasted on a screen colour: every 2nd
TRAINING_DATA = "Kaggle 'Person Segmentation' (nikhilroxtomar): Pexels photos, Supervisely masks; non-commercial use only"


class ExportError(RuntimeError):
    """The export would produce a file that does not meet the contract (parity, int8 quality)."""


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_trained_model(run_dir: Path, size: int | None):
    """Rebuild the run's architecture at `size` (None: any shape) in float32 and load its best (else last) weights."""
    import keras

    from training.model import build_model

    config = FitConfig.load(run_dir)
    keras.mixed_precision.set_global_policy("float32")  # export full precision whatever the run trained in
    model = build_model(size, backbone_weights=None)
    weights = run_dir / "best.weights.h5"
    model.load_weights(weights if weights.exists() else run_dir / "last.weights.h5")
    return model, config


def with_flip_averaging(model):
    """Test-time augmentation inside the graph: average the prediction and that of the mirrored photo."""
    import tensorflow as tf

    def predict(image):
        mirrored = model(tf.reverse(image, axis=[2]), training=False)
        return (model(image, training=False) + tf.reverse(mirrored, axis=[2])) / 2.0

    return predict


def with_scale_averaging(predict_by_size: dict, size: int):
    """Multi-scale test-time augmentation inside the graph.

    The graph takes `size` x `size`; every other scale sees the input resized to it, and its prediction is
    resized back before averaging. A larger scale finds small people, a smaller one keeps context.
    (The architecture's image pooling is built for one input size, hence one predictor per scale.)
    Not every pair converts: with tf2onnx 1.17, 448 with 384 and mirroring fails onnxruntime's shape
    inference, and the export refuses it before writing; 384 with 320 converts and matches Keras.
    """
    import tensorflow as tf

    def predict(image):
        predictions = []
        for scale, scale_predict in predict_by_size.items():
            if scale == size:
                predictions.append(scale_predict(image))
            else:
                scaled = scale_predict(tf.image.resize(image, (scale, scale), method="bilinear"))
                predictions.append(tf.image.resize(scaled, (size, size), method="bilinear"))
        return tf.add_n(predictions) / float(len(predictions))

    return predict


def tta_description(flip_tta: bool, scales: list[int], size: int, aspect_view: bool = False) -> str:
    if aspect_view:
        return TWO_VIEWS_DESCRIPTION
    parts = ["hflip-average"] if flip_tta else []
    if any(scale != size for scale in scales):
        parts.append("scale-average " + "+".join(map(str, scales)))
    return ", ".join(parts) or "none"


def build_predictor(run_dir: Path, size: int, flip_tta: bool, scales: list[int] | None, aspect_view: bool = False):
    """The Keras function that the ONNX graph reproduces: one model, or an average over mirrors and scales.

    aspect_view: the plain model at any input shape; the service runs it on the square and on the mirrored
    aspect view and averages them (service/segmenter.py), so neither mirror nor scale goes into the graph."""
    if aspect_view:
        if flip_tta or (scales and scales != [size]):
            raise ExportError("the aspect view is the second view: export it without --flip-tta or --scales")
        model, config = load_trained_model(run_dir, None)
        return (lambda image: model(image, training=False)), config
    scales = scales or [size]
    predictors, config = {}, None
    for scale in dict.fromkeys(scales):
        model, config = load_trained_model(run_dir, scale)
        predictors[scale] = with_flip_averaging(model) if flip_tta else (lambda image, m=model: m(image, training=False))
    if list(predictors) == [size]:
        return predictors[size], config
    return with_scale_averaging(predictors, size), config


def convert_to_onnx(predict, size: int | None) -> onnx.ModelProto:
    """size: the input's fixed side, or None for any height and width."""
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import optimizer

    function = tf.function(lambda image: {"mask": predict(image)})
    spec = [tf.TensorSpec((None, size, size, 3), tf.float32, name="image")]
    with _without_optimizers(optimizer._optimizers, UNSAFE_OPTIMIZERS):
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    return proto


# tf2onnx's reshape optimizer, on the graph for any input shape, sometimes folds the output's last Reshape and
# Squeeze into one Reshape to a 5-D shape: the mask comes out (1, N, H, W, 1). Whether it does depends on the
# order of a set of names, so on Python's per-process hash seed: the same weights export right in one process and
# wrong in the next (PYTHONHASHSEED=2 did it for the shipped graph; without this optimizer that seed exports right).
UNSAFE_OPTIMIZERS = ("reshape_optimizer",)


@contextlib.contextmanager
def _without_optimizers(optimizers: dict, names: tuple[str, ...]):
    """tf2onnx's optimizer registry (a module-level dict) without `names` for the duration of one conversion."""
    original = dict(optimizers)  # its order is the order they run in
    for name in names:
        optimizers.pop(name, None)
    try:
        yield
    finally:
        optimizers.clear()
        optimizers.update(original)


def fitted_batch(samples: list[dataset.Sample], size: int, fit_mode: str) -> np.ndarray:
    """Real photos fitted exactly as the service fits them."""
    return np.stack([fit_image(Image.open(s.image).convert("RGB"), size, fit_mode)[0] for s in samples])


def aspect_view_batch(samples: list[dataset.Sample], size: int) -> np.ndarray:
    """Real photos at the first one's aspect-view shape, mirrored as the service's second view is."""
    with Image.open(samples[0].image) as first:
        height, width = aspect_area_shape(first.width, first.height, size)
    return np.stack([mirrored_view(Image.open(s.image).convert("RGB"), height, width) for s in samples])


def cpu_session(proto: onnx.ModelProto, what: str = "converted"):
    """An onnxruntime session over the graph, or an ExportError that says why it cannot load."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportError(f"onnxruntime cannot load the {what} graph; not writing the file: {exc}") from exc


def check_parity(predict, proto: onnx.ModelProto, batch: np.ndarray) -> float:
    onnx_out = cpu_session(proto).run(None, {"image": batch})[0]
    keras_out = np.asarray(predict(batch))
    if onnx_out.shape != keras_out.shape:  # numpy would broadcast (1, N, H, W, 1) against (N, H, W, 1) silently
        raise ExportError(f"the ONNX graph's mask is {onnx_out.shape}, Keras' {keras_out.shape}; not writing the file")
    diff = float(np.max(np.abs(onnx_out - keras_out)))
    if diff > PARITY_TOLERANCE:
        raise ExportError(f"ONNX and Keras disagree by {diff:.2e} (> {PARITY_TOLERANCE:.0e}); not writing the file")
    return diff


def portable_config(config: FitConfig) -> dict:
    """The run's options without paths of the machine that made it (file names are kept)."""
    options = {k: v for k, v in vars(config).items() if k not in ("data", "out")}
    for key in ("backbone_weights", "init_from"):
        if options.get(key) and options[key] not in ("imagenet", "none"):
            options[key] = Path(options[key]).name
    return options


def build_metadata(
    name: str, size: int, precision: str, config: FitConfig, run_dir: Path, parity: float, tta: str, aspect_view: bool = False
) -> dict[str, str]:
    metrics_path = run_dir / "metrics.json"
    shape = "any height and width, multiples of 16" if aspect_view else "dynamic batch"
    views = {"cutout.views": f"{SQUARE},{MIRRORED_ASPECT}"} if aspect_view else {}
    return {
        "cutout.name": name,
        "cutout.version": __version__,
        "cutout.input_name": "image",
        "cutout.output_name": "mask",
        "cutout.input_size": str(size),
        "cutout.input_layout": f"NHWC float32 RGB 0..255, {shape}",
        "cutout.fit": config.fit_mode,
        "cutout.pad_rgb": ",".join(map(str, PAD_RGB)),
        "cutout.preprocessing": "inside the graph: caffe-style ResNet normalisation (RGB->BGR, minus ImageNet mean)",
        "cutout.output": "person probability in [0,1], N x H x W x 1; threshold 0.5 for a binary mask",
        "cutout.precision": precision,
        "cutout.tta": tta,
        **views,
        "cutout.architecture": "ResNet-50 encoder (ImageNet) + DeepLabV3+ decoder, output stride 16",
        "cutout.training_data": TRAINING_DATA,
        "cutout.training_config": json.dumps(portable_config(config)),
        "cutout.run": run_dir.name,  # relative to the runs folder: no path of the training machine
        "cutout.train_metrics": metrics_path.read_text() if metrics_path.exists() else "{}",
        "cutout.parity_max_abs_diff": f"{parity:.3e}",
        "cutout.git_commit": git_commit(),
        "cutout.created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    omit_unused_resize_inputs(proto)
    # Inputs/outputs stay float32 so the service feeds the same tensors to every precision.
    return convert_float_to_float16(proto, keep_io_types=True)


def omit_unused_resize_inputs(proto: onnx.ModelProto) -> None:
    """Leave out `roi` and `scales` of every Resize that is given its output `sizes` (as in the any-shape graph).

    tf2onnx passes them as empty tensors; the fp16 converter casts those into named tensors, which onnxruntime
    then reads as `scales` given alongside `sizes` and refuses to load. An omitted input stays omitted."""
    dropped = set()
    for node in proto.graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        modes = [a.s.decode() for a in node.attribute if a.name == "coordinate_transformation_mode"]
        if modes != ["tf_crop_and_resize"]:  # the one mode that reads `roi`
            dropped.update(node.input[1:3])
            node.input[1] = node.input[2] = ""
    still_used = {name for node in proto.graph.node for name in node.input}
    unused = [tensor for tensor in proto.graph.initializer if tensor.name in dropped - still_used]
    for tensor in unused:
        proto.graph.initializer.remove(tensor)


class _CalibrationReader:
    """Feeds real fitted photos to onnxruntime's calibrator, one at a time."""

    def __init__(self, batch: np.ndarray):
        self.items = iter([{"image": image[None]} for image in batch])

    def get_next(self):
        return next(self.items, None)


@dataclass
class Calibration:
    """What int8 is calibrated on: training photos, and persons from them pasted on flat screen colours."""

    photos: np.ndarray
    screens: np.ndarray


def calibration_set(samples: list[dataset.Sample], size: int, fit_mode: str) -> Calibration:
    """The photos fitted as the service fits them; every SCREEN_EVERY-th one's person also on green or magenta."""
    from training.edges import SCREENS, screen_composite
    from training.evaluate import THRESHOLD, load_truth

    photos, screens = [], []
    for index, sample in enumerate(samples):
        photo = Image.open(sample.image).convert("RGB")
        photos.append(fit_image(photo, size, fit_mode)[0])
        if index % SCREEN_EVERY:
            continue
        pixels, person = np.asarray(photo), load_truth(sample.mask) >= THRESHOLD
        if person.shape != pixels.shape[:2]:
            continue
        screen = SCREENS[index // SCREEN_EVERY % len(SCREENS)]
        screens.append(fit_image(Image.fromarray(screen_composite(pixels, person, screen)), size, fit_mode)[0])
    no_screens = np.empty((0, size, size, 3), np.float32)
    return Calibration(np.stack(photos), np.stack(screens) if screens else no_screens)


def mean_activation_ranges(model_path: Path, batch: np.ndarray, scratch_path: Path) -> dict[str, tuple[float, float]]:
    """For each tensor int8 will quantize: the mean over the images of each image's lowest and highest value."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    calibrator = create_calibrator(
        str(model_path),
        None,
        augmented_model_path=str(scratch_path),  # the model with every tensor's min and max as outputs
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"moving_average": True, "symmetric": False},
    )
    calibrator.collect_data(_CalibrationReader(batch))
    ranges = {}
    for name, data in calibrator.compute_data().data.items():
        low, high = (np.asarray(value, np.float64).reshape(-1) for value in data.range_value)
        ranges[name] = (float(low.min()), float(high.max()))
    return ranges


def wider_ranges(*range_sets: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Per tensor, the range that covers every set's range (tensors missing from a set are skipped there)."""
    names = set().union(*range_sets)
    return {
        name: (min(r[name][0] for r in range_sets if name in r), max(r[name][1] for r in range_sets if name in r))
        for name in sorted(names)
    }


def to_int8(proto: onnx.ModelProto, calibration: Calibration) -> onnx.ModelProto:
    """Static QDQ int8 (per-channel 7-bit weights, uint8 activations), calibrated on real photos and screens.

    Weights use 7 of their 8 bits (reduce_range) because CPUs without VNNI (plain AVX2, AVX-512 before
    VNNI) multiply uint8 by int8 in pairs summed into int16, which saturates with full-range weights:
    one file then scores lower on those CPUs than on CPUs with VNNI. With 7-bit weights no pair sum
    can overflow, so every x86 CPU computes the same mask.

    Activation ranges are the mean of each image's extremes rather than the extremes over all images:
    one unusual photo no longer widens a tensor's range and costs every photo precision. Flat green or
    magenta behind a person drives many tensors further than photos do, so each tensor gets the wider of
    the photos' and the screens' mean range; with photos alone, screen composites lose the most
    (models/README.md, "Int8 calibration").

    Pre-processing and quantization write big scratch files: all of them stay in a temp directory.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="cutout-int8-") as tmp:
        fp32_path, prep_path, int8_path = Path(tmp, "fp32.onnx"), Path(tmp, "prep.onnx"), Path(tmp, "int8.onnx")
        onnx.save(proto, fp32_path)
        quant_pre_process(str(fp32_path), str(prep_path), skip_symbolic_shape=True)
        range_sets = [
            mean_activation_ranges(prep_path, batch, Path(tmp, f"ranges-{kind}.onnx"))
            for kind, batch in (("photos", calibration.photos), ("screens", calibration.screens))
            if len(batch)
        ]
        overrides = {
            name: [{"rmin": np.float32(low), "rmax": np.float32(high)}] for name, (low, high) in wider_ranges(*range_sets).items()
        }
        quantize_static(
            str(prep_path),
            str(int8_path),
            # The ranges are all given; the quantizer's own calibration pass needs just one photo.
            _CalibrationReader(calibration.photos[:1]),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"CalibTensorRangeSymmetric": False, "TensorQuantOverrides": overrides},
        )
        return onnx.load(str(int8_path))


def export(
    run_dir: str | Path,
    out: str | Path,
    size: int | None = None,
    precision: str = "fp32",
    data: str | None = None,
    parity_images: int = 8,
    calibration_images: int = CALIBRATION_IMAGES,
    check_images: int = 100,
    force: bool = False,
    flip_tta: bool = False,
    scales: list[int] | None = None,
    aspect_view: bool = False,
) -> dict:
    """Write `out` and return a summary. int8 is checked against fp32 on `check_images` val photos.

    scales: model input sizes averaged inside the graph (default: just `size`).
    aspect_view: a graph for any input shape, which the service runs on the square and on the photo mirrored
    at its own aspect ratio (service/segmenter.py); `size` stays the square's side.
    """
    run_dir, out = Path(run_dir), Path(out)
    recorded = FitConfig.load(run_dir)
    if not (data or recorded.data):
        raise ExportError(f"{run_dir} records no dataset: give --data (photos for the parity, calibration and int8 checks)")
    size = size or recorded.size
    predict, config = build_predictor(run_dir, size, flip_tta, scales, aspect_view)
    tta = tta_description(flip_tta, scales or [size], size, aspect_view)
    splits = dataset.discover(data or config.data, config.val_fraction, config.seed)
    proto = convert_to_onnx(predict, None if aspect_view else size)
    parity_photos = splits.val[:parity_images]
    parity = check_parity(predict, proto, fitted_batch(parity_photos, size, config.fit_mode))
    if aspect_view:
        parity = max(parity, check_parity(predict, proto, aspect_view_batch(parity_photos, size)))
    summary = {"out": str(out), "size": size, "precision": precision, "tta": tta, "parity_max_abs_diff": parity}
    name = out.stem
    set_metadata(proto, build_metadata(name, size, "fp32", config, run_dir, parity, tta, aspect_view))

    proto = _to_precision(proto, precision, splits, size, config.fit_mode, calibration_images, check_images, force, summary)
    set_metadata(proto, build_metadata(name, size, precision, config, run_dir, parity, tta, aspect_view))
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, out)
    summary["bytes"] = out.stat().st_size
    return summary


def _to_precision(proto, precision, splits, size, fit_mode, calibration_images, check_images, force, summary) -> onnx.ModelProto:
    """fp32 as converted, fp16 for CUDA, or int8 for CPU (refused when it loses too much val IoU)."""
    if precision == "fp32":
        return proto
    if precision == "fp16":
        half = to_fp16(proto)
        cpu_session(half, "fp16")
        return half
    if precision != "int8":
        raise ValueError(f"unknown precision {precision!r}")
    step = max(1, len(splits.train) // calibration_images)
    quantized = to_int8(proto, calibration_set(splits.train[::step][:calibration_images], size, fit_mode))
    summary.update(int8_vs_fp32(proto, quantized, splits.val[:check_images]))
    if summary["iou_loss"] > INT8_MAX_IOU_LOSS and not force:
        raise ExportError(
            f"int8 costs {summary['iou_loss']:.4f} val IoU against fp32 (limit {INT8_MAX_IOU_LOSS}); "
            "use --force to write it anyway"
        )
    return quantized


def int8_vs_fp32(fp32: onnx.ModelProto, int8: onnx.ModelProto, samples: list[dataset.Sample]) -> dict:
    """Mean per-image IoU of both files through the serving path, on the same val photos."""
    from training.evaluate import evaluate_photos, segmenter_from_proto, segmenter_predict

    unrefined = {"refine": False}
    fp32_scores, _ = evaluate_photos(segmenter_predict(segmenter_from_proto(fp32)), samples, unrefined)
    int8_scores, _ = evaluate_photos(segmenter_predict(segmenter_from_proto(int8)), samples, unrefined)
    return {
        "fp32_iou": fp32_scores["mean_iou"],
        "int8_iou": int8_scores["mean_iou"],
        "iou_loss": fp32_scores["mean_iou"] - int8_scores["mean_iou"],
        "check_images": len(samples),
    }


def write_release_weights(run_dir: str | Path, out: str | Path) -> dict:
    """The run's best weights as the release's Keras file: model weights only (no optimizer state),
    convolution kernels in float16 (half the bytes; they load into float32 variables unchanged).

    `fit --init-from` this file starts from the released model on any machine, without the ImageNet file.
    """
    import hashlib

    import h5py

    run_dir, out = Path(run_dir), Path(out)
    model, _config = load_trained_model(run_dir, FitConfig.load(run_dir).size)
    with tempfile.TemporaryDirectory(prefix="cutout-weights-") as tmp:
        plain = Path(tmp) / "plain.weights.h5"
        model.save_weights(plain)
        out.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(plain, "r") as source, h5py.File(out, "w") as target:

            def copy(name, item):
                if isinstance(item, h5py.Dataset):
                    data = item[()]
                    target.create_dataset(name, data=data.astype(np.float16) if data.ndim == 4 else data)
                else:
                    target.require_group(name)
                for key, value in item.attrs.items():
                    target[name].attrs[key] = value

            for key, value in source.attrs.items():
                target.attrs[key] = value
            source.visititems(copy)
    return {"out": str(out), "bytes": out.stat().st_size, "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def average_weights(base_run: str | Path, sources: list, out_run: str | Path, shares: list[float] | None = None) -> dict:
    """A new run directory whose best weights are the weighted mean of `sources` (a "model soup",
    Wortsman et al. 2022): runs' best weights or release files of the same architecture, e.g. a fine-tuned
    run and the release it started from. Its config is `base_run`'s, so `export` and `weights` read it as any run.
    """
    base_run, out_run = Path(base_run), Path(out_run)
    shares = shares or [1.0 / len(sources)] * len(sources)
    if len(shares) != len(sources) or abs(sum(shares) - 1.0) > 1e-6:
        raise ExportError(f"give one share per source, summing to 1 (got {shares} for {len(sources)} sources)")
    if out_run.exists():
        raise FileExistsError(f"{out_run} already exists")
    paths = [initial_weights_path(str(source)) for source in sources]
    misnamed = [str(path) for path in paths if not path.name.endswith(".weights.h5")]
    if misnamed:  # Keras picks the file format by the name: another .h5 name reads as an empty legacy file
        raise ExportError(f"weights files must be named *.weights.h5: {', '.join(misnamed)}")
    model, config = load_trained_model(base_run, FitConfig.load(base_run).size)
    mean = None
    for path, share in zip(paths, shares, strict=True):
        model.load_weights(path)
        weighted = [share * w.astype(np.float64) for w in model.get_weights()]
        mean = weighted if mean is None else [m + w for m, w in zip(mean, weighted, strict=True)]
    _write_run(model, config, mean, out_run)
    return {"out": str(out_run), "sources": [str(p) for p in paths], "shares": shares}


def import_weights(base_run: str | Path, chunk_dir: str | Path, out_run: str | Path) -> dict:
    """A new run directory whose best weights are those a portable run (training.portable, e.g. on a GPU
    machine without TensorFlow) sent back in chunks. Its config is `base_run`'s, as for `average_weights`."""
    from training.portable import MANIFEST, load_chunks

    base_run, out_run = Path(base_run), Path(out_run)
    if out_run.exists():
        raise FileExistsError(f"{out_run} already exists")
    if not (Path(chunk_dir) / MANIFEST).is_file():
        raise FileNotFoundError(f"{chunk_dir} holds no {MANIFEST}: not the output of training.portable")
    model, config = load_trained_model(base_run, FitConfig.load(base_run).size)
    weights = load_chunks(chunk_dir)
    expected = [w.shape for w in model.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ExportError(f"{chunk_dir}: {len(weights)} weights that do not match the model's {len(expected)}")
    _write_run(model, config, weights, out_run)
    return {"out": str(out_run), "weights": len(weights), "from": str(chunk_dir)}


def release_run(weights: str | Path, out_run: str | Path, card: str | Path | None = None, data: str | None = None) -> dict:
    """A run directory from a release: its Keras weights file and the training config its card records
    (default: the `.json` beside the weights). `export`, `average --config-from` and `import-weights
    --config-from` read it as any run, so a fresh clone can re-export a release or build on it."""
    import keras

    from training.model import build_model

    weights, out_run = Path(weights), Path(out_run)
    card = Path(card) if card else weights.with_name(weights.name.removesuffix(".weights.h5") + ".json")
    if out_run.exists():
        raise FileExistsError(f"{out_run} already exists")
    for path in (weights, card):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
    recorded = json.loads(card.read_text()).get("training_config")
    if not isinstance(recorded, dict):
        raise ExportError(f"{card} records no training_config: not a model card written by `training card`")
    config = FitConfig.from_saved({**recorded, "data": data, "out": str(out_run)})
    keras.mixed_precision.set_global_policy("float32")
    model = build_model(config.size, backbone_weights=None)
    model.load_weights(weights)
    _write_run(model, config, model.get_weights(), out_run)
    return {"out": str(out_run), "weights": str(weights), "card": str(card)}


def _write_run(model, config: FitConfig, weights: list, out_run: Path) -> None:
    model.set_weights([new.astype(old.dtype) for new, old in zip(weights, model.get_weights(), strict=True)])
    out_run.mkdir(parents=True)
    config.save(out_run)
    model.save_weights(out_run / "best.weights.h5")
