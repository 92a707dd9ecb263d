"""Fine-tuning without TensorFlow: the same model on Keras 3's jax (or torch) backend, for a GPU machine.

A lent GPU machine has PyTorch and JAX but no TensorFlow, takes few files and gives back files of at most
16 MiB each, so the run travels light:

    here:   python -m training pack --data ../shared/data/people_segmentation --out gpu/train.npz
    there:  KERAS_BACKEND=jax python -m training.portable gpu/train.npz --init-from models/cutout-person.weights.h5 \\
              --minutes 8 --out $OUT                       (scripts/gpu_finetune.sh: installs Keras from gpu/wheels)
    here:   python -m training import-weights OUT --config-from RUN --out NEW_RUN   (then export as usual)

The pack holds the training photos stretched to a square (as `fit --fit-mode stretch` sees them), as
JPEG, the masks as 1-bit PNG, each photo's person-free square and, for the photos `mine-negatives` kept,
their hard square; augmentation is numpy's twin of training.pipeline.augment (scale and crop with a mirrored
border, zoomed-out, person-free and hard person-free crops, flip, colour jitter). The weights come back as
float32 .npz chunks in the order of `model.get_weights()`, which the same builder gives on every backend.
This module imports no TensorFlow: only Keras, numpy, Pillow.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.augmentation import ASPECT, BRIGHTNESS, CONTRAST, MIRROR_PAD, NEGATIVE_SHRINK, SATURATION, SCALE, ZOOM_OUT_SCALE
from training.config import LOSS_NAMES
from training.person_free import NO_BOX

CHUNK_BYTES = 15 * 2**20  # under the 16 MiB a file that comes back from the GPU machine may have
MANIFEST = "weights.json"


# ---- the pack (here) ------------------------------------------------------------------------------
def pack(
    data: str | Path,
    out: str | Path,
    side: int = 320,
    quality: int = 70,
    max_mb: float = 40.0,
    seed: int = 0,
    hard_negatives: str | Path | None = None,
) -> dict:
    """Training photos, masks and person-free boxes in one .npz of at most max_mb: a random share of the
    photos when all of them do not fit (the GPU machine takes 64 MiB of carried files in all). The photos
    with a hard person-free square (`mine-negatives`) are always in, with their squares."""
    from training import dataset, person_free
    from training.evaluate import load_truth
    from training.hard_negatives import hard_squares

    samples = dataset.discover(data).train
    hard = dict(zip(*hard_squares(hard_negatives, samples), strict=True)) if hard_negatives else {}

    def encode(sample):
        with Image.open(sample.image) as photo:
            square = photo.convert("RGB").resize((side, side), Image.BILINEAR, reducing_gap=2.0)
            aspect = photo.width / photo.height
        person = Image.fromarray((load_truth(sample.mask) * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
        photo_bytes, mask_bytes = io.BytesIO(), io.BytesIO()
        square.save(photo_bytes, "JPEG", quality=quality)
        person.point(lambda v: 255 if v >= 128 else 0).convert("1").save(mask_bytes, "PNG", optimize=True)
        return photo_bytes.getvalue(), mask_bytes.getvalue(), person_free.training_box(sample.mask), aspect

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        encoded = list(pool.map(encode, samples))
    sizes = np.array([len(e[0]) + len(e[1]) + 32 for e in encoded])
    shuffled = np.random.default_rng(seed).permutation(len(encoded))
    order = np.array(sorted(shuffled, key=lambda i: samples[i] not in hard), int)  # the hard ones first, else shuffled
    fits = sorted(order[: int(np.searchsorted(np.cumsum(sizes[order]), max_mb * 2**20, side="right"))])
    encoded = [encoded[i] for i in fits]
    hard_boxes = [hard.get(samples[i], NO_BOX) for i in fits]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Files laid end to end with their offsets: no pickled objects, so any numpy version reads the pack.
    np.savez(
        out,
        photos=np.frombuffer(b"".join(e[0] for e in encoded), np.uint8),
        photo_ends=np.cumsum([len(e[0]) for e in encoded]),
        masks=np.frombuffer(b"".join(e[1] for e in encoded), np.uint8),
        mask_ends=np.cumsum([len(e[1]) for e in encoded]),
        person_free=np.array([e[2] for e in encoded], np.float32),
        hard_negatives=np.array(hard_boxes, np.float32).reshape(-1, 4),
        aspects=np.array([e[3] for e in encoded], np.float32),
    )
    summary = {"out": str(out), "photos": len(encoded), "of": len(samples), "side": side, "bytes": out.stat().st_size}
    return summary | {"hard_negatives": sum(box != NO_BOX for box in hard_boxes)}


def _file(blob: np.ndarray, ends: np.ndarray, index: int) -> io.BytesIO:
    start = int(ends[index - 1]) if index else 0
    return io.BytesIO(blob[start : int(ends[index])].tobytes())


@dataclass
class Pack:
    photos: np.ndarray  # the JPEG files, end to end
    photo_ends: np.ndarray
    masks: np.ndarray  # the 1-bit PNG files, end to end
    mask_ends: np.ndarray
    person_free: np.ndarray  # (n, 4) top, left, bottom, right in 0..1; zeros: none
    hard_negatives: np.ndarray  # (n, 4) the photo's hard person-free square, as person_free; zeros: none
    aspects: np.ndarray | None = None  # (n,) each photo's width / height before it was stretched; None: not packed

    @classmethod
    def load(cls, path: str | Path) -> Pack:
        with np.load(path) as stored:
            fields = [stored[name] for name in ("photos", "photo_ends", "masks", "mask_ends", "person_free")]
            no_hard = np.zeros_like(fields[-1])  # packs made before hard negatives were packed
            hard = stored["hard_negatives"] if "hard_negatives" in stored.files else no_hard
            return cls(*fields, hard, stored["aspects"] if "aspects" in stored.files else None)

    @property
    def hard_indices(self) -> np.ndarray:
        return np.flatnonzero(self.hard_negatives[:, 2] > self.hard_negatives[:, 0])

    def __len__(self) -> int:
        return len(self.photo_ends)

    def decoded(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        photo = np.asarray(Image.open(_file(self.photos, self.photo_ends, index)).convert("RGB"))
        mask = np.asarray(Image.open(_file(self.masks, self.mask_ends, index)).convert("L"))
        return photo, mask


# ---- augmentation: numpy's twin of training.pipeline.augment --------------------------------------
def scene_box(rng: np.random.Generator, zoom_out_fraction: float, aspect: float | None = None) -> np.ndarray:
    """A box of SCALE of each side, or (zoom_out_fraction of the time) ZOOM_OUT_SCALE sides: people small in the frame.

    aspect: the box's height / width in 0..1 units (default: drawn from ASPECT)."""
    scale = rng.uniform(*ZOOM_OUT_SCALE) if rng.random() < zoom_out_fraction else rng.uniform(*SCALE)
    drawn = rng.uniform(*ASPECT)  # drawn even when given, so that the draws after it stay the same
    aspect = drawn if aspect is None else aspect
    # A zoomed-out box of a very wide or tall photo's true proportions is shrunk to fit the mirrored border.
    scale = min(scale, (1.0 + 2 * MIRROR_PAD) / np.sqrt(max(aspect, 1.0 / aspect)))
    box_h, box_w = scale * np.sqrt(aspect), scale / np.sqrt(aspect)

    def start(length):  # beyond the photo lies its mirror image, MIRROR_PAD of a side each way
        low, high = max(min(0.0, 1.0 - length), -MIRROR_PAD), min(max(0.0, 1.0 - length), 1.0 + MIRROR_PAD - length)
        return rng.uniform(low, high)

    top, left = start(box_h), start(box_w)
    return np.array([top, left, top + box_h, left + box_w])


def negative_box(person_free: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random square of NEGATIVE_SHRINK of the photo's largest person-free square, inside it."""
    shrink = rng.uniform(*NEGATIVE_SHRINK)
    height, width = (person_free[2] - person_free[0]) * shrink, (person_free[3] - person_free[1]) * shrink
    top = person_free[0] + rng.random() * (person_free[2] - person_free[0] - height)
    left = person_free[1] + rng.random() * (person_free[3] - person_free[1] - width)
    return np.array([top, left, top + height, left + width])


def _crop(array: np.ndarray, box: np.ndarray, size: int, resample) -> np.ndarray:
    """The box (0..1 of the photo, may reach MIRROR_PAD beyond it) of the mirror-padded array, at size x size."""
    height, width = array.shape[:2]
    pad_h, pad_w = math.ceil(height * MIRROR_PAD), math.ceil(width * MIRROR_PAD)  # never less than a box may reach
    padding = [(pad_h, pad_h), (pad_w, pad_w)] + [(0, 0)] * (array.ndim - 2)
    padded = Image.fromarray(np.pad(array, padding, mode="reflect"))
    region = (box[1] * width + pad_w, box[0] * height + pad_h, box[3] * width + pad_w, box[2] * height + pad_h)
    return np.asarray(padded.resize((size, size), resample, box=region))


def augment(
    photo: np.ndarray,
    mask: np.ndarray,
    person_free: np.ndarray,
    size: int,
    rng: np.random.Generator,
    negative_fraction: float = 0.0,
    zoom_out_fraction: float = 0.0,
    photo_aspect: float | None = None,
    true_aspect_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 photo (h x w x 3) and mask (h x w, 0/255) -> float32 photo 0..255 and mask 0..1 at size x size.

    photo_aspect: width / height of the scene `photo` shows (default: its own; a packed photo was stretched
    to a square); true_aspect_fraction of the crops show it in those proportions (as training.pipeline.augment)."""
    # Drawn only when asked for, so that runs without true-aspect crops draw exactly what they drew before.
    undistorted = true_aspect_fraction > 0 and rng.random() < true_aspect_fraction
    if photo_aspect is None:
        photo_aspect = photo.shape[1] / photo.shape[0]
    box = scene_box(rng, zoom_out_fraction, photo_aspect if undistorted else None)
    if person_free[2] > person_free[0] and rng.random() < negative_fraction:
        box = negative_box(person_free, rng)
    image = _crop(photo, box, size, Image.BILINEAR).astype(np.float32) / 255.0
    target = _crop(mask, box, size, Image.BILINEAR).astype(np.float32) / 255.0
    if rng.random() < 0.5:
        image, target = image[:, ::-1], target[:, ::-1]
    image = image + rng.uniform(-BRIGHTNESS, BRIGHTNESS)
    image = (image - image.mean()) * rng.uniform(*CONTRAST) + image.mean()
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    image = (image - grey[..., None]) * rng.uniform(*SATURATION) + grey[..., None]
    return np.clip(image, 0.0, 1.0) * 255.0, np.clip(target, 0.0, 1.0)[..., None]


def batches(
    data: Pack,
    size: int,
    batch_size: int,
    seed: int,
    negative_fraction: float,
    zoom_out_fraction: float,
    hard_negative_fraction: float = 0.0,
    true_aspect_fraction: float = 0.0,
):
    """Endless shuffled, augmented batches, prepared on every core one batch ahead. hard_negative_fraction of
    the crops are person-free crops of the packed hard squares (as the tf.data trainer's --hard-negatives)."""
    rng = np.random.default_rng(seed)
    hard = data.hard_indices
    if hard_negative_fraction and not len(hard):
        raise ValueError("hard_negative_fraction needs a pack made with hard negatives (`pack --hard-negatives FILE`)")
    if true_aspect_fraction and data.aspects is None:
        raise ValueError("true_aspect_fraction needs a pack that holds the photos' proportions (pack it again)")

    def one(args):
        index, is_hard, item_seed = args
        photo, mask = data.decoded(index)
        item_rng = np.random.default_rng(item_seed)
        if is_hard:
            return augment(photo, mask, data.hard_negatives[index], size, item_rng, negative_fraction=1.0)
        aspect = None if data.aspects is None else float(data.aspects[index])
        box = data.person_free[index]
        return augment(photo, mask, box, size, item_rng, negative_fraction, zoom_out_fraction, aspect, true_aspect_fraction)

    def draw():
        indices = rng.choice(len(data), batch_size, replace=False)
        is_hard = rng.random(batch_size) < hard_negative_fraction
        if is_hard.any():
            indices[is_hard] = rng.choice(hard, int(is_hard.sum()))
        return list(zip(indices, is_hard, rng.integers(0, 2**63, batch_size), strict=True))

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        pending = pool.map(one, draw())
        while True:
            items = list(pending)
            pending = pool.map(one, draw())
            yield np.stack([i[0] for i in items]), np.stack([i[1] for i in items])


# ---- weights in chunks ----------------------------------------------------------------------------
def save_chunks(weights: list[np.ndarray], out_dir: str | Path, chunk_bytes: int = CHUNK_BYTES, **stats) -> dict:
    """Weights (model.get_weights() order) as float32 .npz files under chunk_bytes each, plus a manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, current, current_bytes = [], {}, 0

    def flush():
        nonlocal current, current_bytes
        if current:
            name = f"weights-{len(files):03d}.npz"
            np.savez(out_dir / name, **current)
            files.append(name)
        current, current_bytes = {}, 0

    for index, weight in enumerate(weights):
        array = np.asarray(weight, np.float32)
        if array.nbytes > chunk_bytes:
            raise ValueError(f"weight {index} alone is {array.nbytes} bytes, over the chunk limit")
        if current_bytes + array.nbytes > chunk_bytes:
            flush()
        current[f"w{index:04d}"] = array
        current_bytes += array.nbytes
    flush()
    manifest = {"count": len(weights), "files": files, **stats}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def load_chunks(chunk_dir: str | Path) -> list[np.ndarray]:
    chunk_dir = Path(chunk_dir)
    manifest = json.loads((chunk_dir / MANIFEST).read_text())
    weights = {}
    for name in manifest["files"]:
        with np.load(chunk_dir / name) as chunk:
            weights.update({int(key[1:]): chunk[key] for key in chunk.files})
    if sorted(weights) != list(range(manifest["count"])):
        raise ValueError(f"{chunk_dir}: expected {manifest['count']} weights, found {len(weights)}")
    return [weights[index] for index in range(manifest["count"])]


# ---- the run (there) ------------------------------------------------------------------------------
def _run_callbacks(seconds: float, lr: float, out: Path, save_every_s: float, stats: dict):
    """Keras callbacks for a run measured in time, not steps: the step rate on a machine nobody has timed is
    unknown, so the learning rate follows a cosine over the time budget (after a short warm-up), training stops
    when the budget is spent, and the weights are written every save_every_s so that a run killed at the
    machine's limit still gives some back."""
    import keras

    warmup_steps = 30

    class TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = self.last_save = time.perf_counter()
            self.steps = 0

        def on_train_batch_begin(self, batch, logs=None):
            elapsed = time.perf_counter() - self.start
            if self.steps < warmup_steps:
                rate = lr * (0.1 + 0.9 * self.steps / warmup_steps)
            else:
                rate = lr * (0.02 + 0.98 * 0.5 * (1.0 + np.cos(np.pi * min(1.0, elapsed / seconds))))
            self.model.optimizer.learning_rate.assign(rate)

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            now = time.perf_counter()
            if self.steps == 1:
                stats["first_step_s"] = round(now - self.start, 1)  # includes building the graph or kernels
                self.steady_start = now
            if now - self.start > seconds:
                self.model.stop_training = True
            elif now - self.last_save > save_every_s:
                save_chunks(self.model.get_weights(), out, partial=True, steps=self.steps)
                self.last_save = now

        def on_train_end(self, logs=None):
            stats["steps"] = self.steps
            if self.steps > 1:
                stats["steady_steps_per_s"] = round((self.steps - 1) / (time.perf_counter() - self.steady_start), 2)

    return [TimeBudget()]


def train(
    pack_path: str | Path,
    init_from: str | Path,
    out: str | Path,
    minutes: float = 8.0,
    size: int = 384,
    batch_size: int = 32,
    lr: float = 1e-4,
    negative_fraction: float = 0.08,
    zoom_out_fraction: float = 0.08,
    hard_negative_fraction: float = 0.0,
    true_aspect_fraction: float = 0.0,
    precision: str = "bfloat16",
    steps_per_epoch: int = 50,
    seed: int = 0,
    loss: str = "bce_dice",
    save_every_minutes: float = 2.0,
) -> dict:
    """Fine-tune the release weights for `minutes` on the pack, then write the weights in chunks to `out`."""
    import keras

    from training.metrics import LOSSES
    from training.model import build_model

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    model = build_model(size, backbone_weights=None)
    model.load_weights(str(init_from))
    model.compile(optimizer=keras.optimizers.Adam(lr, clipnorm=1.0), loss=LOSSES[loss])
    data = Pack.load(pack_path)
    stream = batches(
        data, size, batch_size, seed, negative_fraction, zoom_out_fraction, hard_negative_fraction, true_aspect_fraction
    )
    stats: dict = {}
    callbacks = _run_callbacks(minutes * 60, lr, Path(out), save_every_minutes * 60, stats)
    start = time.perf_counter()
    history = model.fit(stream, epochs=10_000, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=2)
    seconds = time.perf_counter() - start
    images = stats["steps"] * batch_size
    return save_chunks(
        model.get_weights(),
        out,
        backend=keras.backend.backend(),
        device=_device_name(),
        size=size,
        batch_size=batch_size,
        precision=precision,
        lr=lr,
        photos=len(data),
        hard_negative_fraction=hard_negative_fraction,
        images=images,
        seconds=round(seconds, 1),
        images_per_s=round(images / seconds, 1),
        steady_images_per_s=round(stats.get("steady_steps_per_s", 0.0) * batch_size, 1),
        first_step_s=stats.get("first_step_s"),
        epoch_losses=[round(float(v), 4) for v in history.history["loss"]],
    )


def _device_name() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].device_kind
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return keras.backend.backend()


def main(argv: list[str] | None = None) -> int:
    defaults = {name: spec.default for name, spec in inspect.signature(train).parameters.items()}  # one place: train()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pack_path", metavar="pack", help="the .npz made by `python -m training pack`")
    parser.add_argument("--init-from", required=True, help="release weights (.weights.h5)")
    parser.add_argument("--out", required=True, help="folder for the weight chunks")
    for name in (
        "minutes",
        "size",
        "batch_size",
        "lr",
        "negative_fraction",
        "zoom_out_fraction",
        "hard_negative_fraction",
        "true_aspect_fraction",
        "steps_per_epoch",
        "seed",
        "save_every_minutes",
    ):
        parser.add_argument("--" + name.replace("_", "-"), type=type(defaults[name]), default=defaults[name])
    parser.add_argument("--precision", choices=["bfloat16", "float32"], default=defaults["precision"])
    parser.add_argument("--loss", choices=LOSS_NAMES, default=defaults["loss"])
    result = train(**vars(parser.parse_args(argv)))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
