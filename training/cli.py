"""`python -m training fit|export|evaluate|benchmark`: the trainer's command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.fitting import FIT_MODES, STRETCH
from training.model import ENCODER_STAGES


def _add_fit_parser(sub) -> None:
    p = sub.add_parser("fit", help="train a model into a run directory", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="dataset root: Kaggle layout (segmentation/train.txt, val.txt) or images/ + masks/")
    p.add_argument("--out", help="run directory to create (config, history, checkpoints, metrics, curves)")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last finished epoch; "
        "other options given here (e.g. --epochs) override the saved config",
    )
    p.add_argument(
        "--backbone-weights", default="imagenet", help="encoder weights: 'imagenet' (downloads), 'none', or a local .h5 path"
    )
    p.add_argument("--size", type=int, default=256, help="square input size in pixels (multiple of 16)")
    p.add_argument("--batch-size", type=int, default=8, help="global batch size (split across devices)")
    p.add_argument("--epochs", type=int, default=30, help="number of epochs")
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        help="training steps per epoch (default: one pass over the train split); "
        "short epochs mean frequent checkpoints and validation",
    )
    p.add_argument("--val-limit", type=int, help="validate each epoch on the first N val images only (the final metrics use all)")
    p.add_argument(
        "--fine-tune-from",
        choices=ENCODER_STAGES,
        default="conv1",
        help="first encoder stage that trains; earlier ones stay frozen",
    )
    p.add_argument("--freeze-encoder", action="store_true", help="train the decoder only (stage 1 of staged fine-tuning)")
    p.add_argument(
        "--init-from",
        help="start from these weights (a .weights.h5 file or a run directory's best weights), e.g. a frozen-encoder stage",
    )
    p.add_argument("--loss", choices=["bce", "bce_dice"], default="bce", help="binary cross-entropy, optionally plus a Dice term")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (peak rate for cosine)")
    p.add_argument(
        "--lr-schedule",
        choices=["plateau", "cosine"],
        default="plateau",
        help="reduce on plateau, or warmup + cosine decay over all epochs",
    )
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps (cosine schedule)")
    p.add_argument("--clipnorm", type=float, default=1.0, help="gradient clipping by norm")
    p.add_argument("--plateau-patience", type=int, default=3, help="epochs without val IoU gain before the learning rate is cut")
    p.add_argument("--plateau-factor", type=float, default=0.5, help="learning-rate multiplier on a plateau")
    p.add_argument(
        "--patience", type=int, default=8, help="early stopping: epochs without val IoU gain (best weights are restored)"
    )
    p.add_argument(
        "--mixed-precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16 compute (1.4x faster on AVX512-BF16 CPUs)",
    )
    p.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multiworker"],
        default="default",
        help="tf.distribute strategy; multiworker reads TF_CONFIG",
    )
    p.add_argument(
        "--fit-mode",
        choices=FIT_MODES,
        default=STRETCH,
        help="how images are fitted to the square input (the service uses the same)",
    )
    p.add_argument(
        "--negative-fraction", type=float, default=0.0, help="share of training crops from person-free regions (empty masks)"
    )
    p.add_argument("--zoom-out-fraction", type=float, default=0.0, help="share of training crops zoomed out up to 2x")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share for a plain images/ + masks/ folder")
    p.add_argument("--skip-bad", action="store_true", help="drop unusable samples (counted) instead of stopping")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights init, shuffling, augmentation)")


def _run_fit(args, parser, argv: list[str]) -> int:
    from training.fit import FitConfig, fit

    given = {k: v for k, v in vars(args).items() if k not in ("command", "resume")}
    if args.resume:
        config = FitConfig.load(Path(args.resume))
        # Only options typed on the command line override the saved config.
        typed = {a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
        for key in typed & given.keys():
            setattr(config, key, given[key])
        config.out = args.resume
        metrics = fit(config, resume=True)
    else:
        if not args.data or not args.out:
            parser.error("fit needs --data and --out (or --resume RUN_DIR)")
        metrics = fit(FitConfig(**given))
    print(json.dumps(metrics, indent=2))
    return 0


def _add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a run to ONNX (fp32, fp16, int8)", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("run_dir", help="run directory written by `fit` (its best weights are exported)")
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. models/NAME.onnx")
    p.add_argument("--size", type=int, help="fixed input size of the exported model (default: the training size)")
    p.add_argument(
        "--precision", choices=["fp32", "fp16", "int8"], default="fp32", help="int8: static QDQ for CPU; fp16: for CUDA"
    )
    p.add_argument("--data", help="dataset for parity, calibration and the int8 check (default: the run's)")
    p.add_argument("--calibration-images", type=int, default=64, help="training photos used to calibrate int8")
    p.add_argument("--check-images", type=int, default=100, help="val photos on which int8 is compared with fp32")
    p.add_argument("--force", action="store_true", help="write an int8 file even when it loses more than 0.005 val IoU")
    p.add_argument(
        "--flip-tta", action="store_true", help="average with the mirrored photo's prediction inside the graph (2x compute)"
    )
    p.add_argument(
        "--scales",
        type=lambda text: [int(part) for part in text.split(",")],
        help="comma-separated model input sizes averaged inside the graph, e.g. 384,320 (the input stays --size)",
    )


def _run_export(args) -> int:
    from training.export import export

    summary = export(
        args.run_dir,
        args.out,
        args.size,
        args.precision,
        args.data,
        calibration_images=args.calibration_images,
        check_images=args.check_images,
        force=args.force,
        flip_tta=args.flip_tta,
        scales=args.scales,
    )
    print(json.dumps(summary, indent=2))
    return 0


def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate an ONNX model (or a running service) on a split",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="ONNX file to run through the service's own segmenter")
    p.add_argument("--url", help="evaluate a running service through POST /mask instead, e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", help="X-API-Key for --url")
    p.add_argument("--data", required=True, help="dataset root (Kaggle layout or images/ + masks/)")
    p.add_argument("--split", choices=["val", "train"], default="val", help="which split to evaluate")
    p.add_argument("--limit", type=int, help="evaluate the first N images only")
    p.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="guided-filter refinement (default: the service default)",
    )
    p.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="cpu", help="onnxruntime execution provider")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: all cores)")
    p.add_argument("--out", help="report directory: evaluation.json, iou_histogram.png, worst_best.png")


def _run_evaluate(args, parser) -> int:
    from training import dataset
    from training.evaluate import evaluate_segmenter, evaluate_url, format_table, write_report

    if bool(args.model) == bool(args.url):
        parser.error("evaluate needs exactly one of MODEL or --url")
    splits = dataset.discover(args.data)
    samples = dataset.validate(getattr(splits, args.split), args.split)[: args.limit]
    if args.url:
        result = evaluate_url(args.url, samples, api_key=args.api_key)
        predict_cases = None
    else:
        from service.imaging import decode_image
        from service.removal import DEFAULT_REFINE, predict_probability
        from service.segmenter import Segmenter

        refine = DEFAULT_REFINE if args.refine is None else args.refine
        segmenter = Segmenter(args.model, args.provider, intra_op_threads=args.threads)
        result = evaluate_segmenter(segmenter, samples, refine)
        result["model"], result["refine"] = str(args.model), refine

        def predict_cases(data: bytes):
            return predict_probability(segmenter, decode_image(data, 10**8), refine)

    result["split"] = args.split
    print(format_table(result["metrics"]))
    if args.out:
        if predict_cases is None:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "evaluation.json").write_text(json.dumps(result, indent=2))
        else:
            write_report(result, samples, Path(args.out), predict_cases)
        print(f"report written to {args.out}")
    return 0


def _add_benchmark_parser(sub) -> None:
    p = sub.add_parser(
        "benchmark",
        help="training throughput: real input pipeline vs synthetic tensors",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--backbone-weights", default="imagenet", help="'imagenet', 'none' or a local .h5 path")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--mixed-precision", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--freeze-encoder", action="store_true")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    p.add_argument("--samples", type=int, default=256, help="training images in the real pipeline")


def _run_benchmark(args) -> int:
    from training.benchmark import benchmark
    from training.fit import FitConfig

    config = FitConfig(
        data=args.data,
        out="",
        size=args.size,
        batch_size=args.batch_size,
        backbone_weights=args.backbone_weights,
        freeze_encoder=args.freeze_encoder,
        mixed_precision=args.mixed_precision,
    )
    print(json.dumps(benchmark(config, args.steps, args.warmup, args.samples)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_fit_parser(sub)
    _add_export_parser(sub)
    _add_evaluate_parser(sub)
    _add_benchmark_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    from training.dataset import DatasetError
    from training.export import ExportError

    try:
        if args.command == "fit":
            return _run_fit(args, parser, argv)
        if args.command == "export":
            return _run_export(args)
        if args.command == "evaluate":
            return _run_evaluate(args, parser)
        if args.command == "benchmark":
            return _run_benchmark(args)
    except (DatasetError, ExportError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1
