"""What the dev-val measurement scripts share: a model file and the dataset's val split, from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from service import Segmenter
from service.settings import DEFAULT_MODEL
from training import dataset

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared/data/people_segmentation"


def model_and_val_samples(doc: str) -> tuple[Segmenter, list[dataset.Sample]]:
    """Parse `[MODEL] [--data DIR]` (the shipped model and ../shared's dataset by default)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    args = parser.parse_args()
    return Segmenter(args.model, "cpu"), dataset.validate(dataset.discover(args.data).val, "val")
