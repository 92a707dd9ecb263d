"""Every option of `fit`, written once: its default, type, choices and help live in FitConfig's fields.

The command line is generated from these fields (`add_fit_arguments`), and a run folder's config.json
is a FitConfig too, so a default changes in one place. No TensorFlow here: `--help` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

# Kept in step with service.fitting (a test checks), without importing the service's onnxruntime here.
FIT_MODES = ("stretch", "letterbox")
ENCODER_STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")
LOSS_NAMES = ("bce", "bce_dice", "bce_lovasz")  # training.metrics.LOSSES implements them (a test checks)


def option(default, help: str, choices: tuple | None = None, flag: bool = False):
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


@dataclass
class FitConfig:
    data: str = option(None, "dataset root: Kaggle layout (segmentation/train.txt, val.txt) or images/ + masks/")
    out: str = option(None, "run directory to create (config, history, checkpoints, metrics, curves)")
    size: int = option(256, "square input size in pixels (multiple of 16)")
    batch_size: int = option(8, "global batch size (split across devices)")
    epochs: int = option(30, "number of epochs")
    steps_per_epoch: int | None = option(
        None, "training steps per epoch (default: one pass over the train split); short epochs mean frequent checkpoints"
    )
    val_limit: int | None = option(None, "validate each epoch on the first N val images only (the final metrics use all)")
    backbone_weights: str = option("imagenet", "encoder weights: 'imagenet' (downloads), 'none', or a local .h5 path")
    fine_tune_from: str = option("conv1", "first encoder stage that trains; earlier ones stay frozen", ENCODER_STAGES)
    freeze_encoder: bool = option(False, "train the decoder only (stage 1 of staged fine-tuning)", flag=True)
    init_from: str | None = option(
        None,
        "start from these weights: a .weights.h5 file (e.g. models/cutout-person.weights.h5, the shipped model) "
        "or a run directory's best weights; the encoder comes with them, so no ImageNet file is needed",
    )
    loss: str = option(
        "bce",
        "binary cross-entropy, optionally plus a Dice term or the Lovász per-image IoU surrogate",
        LOSS_NAMES,
    )
    lr: float = option(1e-4, "Adam learning rate (peak rate for cosine)")
    lr_schedule: str = option("plateau", "reduce on plateau, or warmup + cosine decay over all epochs", ("plateau", "cosine"))
    warmup_steps: int = option(0, "linear warmup steps (cosine schedule)")
    clipnorm: float = option(1.0, "gradient clipping by norm")
    plateau_patience: int = option(3, "epochs without val IoU gain before the learning rate is cut")
    plateau_factor: float = option(0.5, "learning-rate multiplier on a plateau")
    min_lr: float = option(1e-6, "lowest learning rate on plateaus")
    patience: int = option(8, "early stopping: epochs without val IoU gain (best weights are restored)")
    mixed_precision: str = option(
        "float32", "bfloat16 compute: faster on CPUs with AVX512-BF16/AMX (`benchmark` tells)", ("float32", "bfloat16")
    )
    strategy: str = option(
        "default", "tf.distribute strategy; multiworker reads TF_CONFIG", ("default", "mirrored", "multiworker")
    )
    fit_mode: str = option("stretch", "how images are fitted to the square input (the service uses the same)", FIT_MODES)
    negative_fraction: float = option(
        0.0, "share of training crops taken from person-free regions of the photos (empty masks): teaches 'no person here'"
    )
    hard_negatives: str | None = option(
        None, "a `mine-negatives` file: person-free squares of the training photos where a model still finds a person"
    )
    hard_negative_fraction: float = option(0.0, "share of training crops drawn from those squares (needs --hard-negatives)")
    hard_photos: str | None = option(
        None, "a `mine-photos` file: each training photo's IoU under a model; the low ones are the hard photos"
    )
    hard_photo_fraction: float = option(0.0, "share of training crops drawn from the hard photos (needs --hard-photos)")
    zoom_out_fraction: float = option(0.0, "share of training crops zoomed out up to 1.8x (people small in the frame)")
    true_aspect_fraction: float = option(
        0.0, "share of training crops in the photo's own proportions, not stretched (the service's second view)"
    )
    own_shape_fraction: float = option(
        0.0, "share of training crops at the shape of the service's second view (the photo's proportions), not square"
    )
    val_fraction: float = option(0.1, "validation share for a plain images/ + masks/ folder")
    skip_bad: bool = option(False, "drop unusable samples (counted) instead of stopping", flag=True)
    seed: int = option(0, "random seed (weights init, shuffling, augmentation)")

    def save(self, run_dir: Path) -> None:
        (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> FitConfig:
        """A run's saved options; options added since the run was made take their defaults."""
        return cls.from_saved(json.loads((Path(run_dir) / "config.json").read_text()))

    @classmethod
    def from_saved(cls, saved: dict) -> FitConfig:
        """Options saved by a run or recorded in a model card; unknown keys are dropped, missing ones default."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})


def _value_type(annotation: str):
    hints = typing.get_type_hints(FitConfig)
    return next(t for t in typing.get_args(hints[annotation]) or (hints[annotation],) if t is not type(None))


def add_fit_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One --option per FitConfig field, with the field's default, type, choices and help.

    Every default is SUPPRESSed on the command line: what the user did not type stays unset, so a
    resumed run keeps its saved options and a new run takes FitConfig's defaults.
    """
    for spec in dataclasses.fields(FitConfig):
        if spec.name in skip:
            continue
        flag = "--" + spec.name.replace("_", "-")
        help_text = f"{spec.metadata['help']} (default: {spec.default})"
        if spec.metadata["flag"]:
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        else:
            value_type = _value_type(spec.name)
            parser.add_argument(
                flag, type=value_type, choices=spec.metadata["choices"], default=argparse.SUPPRESS, help=help_text
            )


def config_from_args(args: argparse.Namespace, base: FitConfig | None = None) -> FitConfig:
    """The options typed on the command line over `base` (a resumed run's config) or the defaults."""
    known = {f.name for f in dataclasses.fields(FitConfig)}
    typed = {k: v for k, v in vars(args).items() if k in known}
    return dataclasses.replace(base, **typed) if base else FitConfig(**typed)
