"""`python -m training COMMAND`: the trainer's command line (`--help` lists the commands, `COMMAND --help` their options)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.config import FitConfig, add_fit_arguments, config_from_args


def _add_fit_parser(sub) -> None:
    p = sub.add_parser("fit", help="train a model into a run directory")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last finished epoch; options typed here (e.g. --epochs) override its config",
    )
    add_fit_arguments(p)


def _run_fit(args, parser) -> int:
    from training.fit import fit

    if args.resume:
        config = config_from_args(args, FitConfig.load(Path(args.resume)))
        config.out = args.resume
    else:
        config = config_from_args(args)
        if not config.data or not config.out:
            parser.error("fit needs --data and --out (or --resume RUN_DIR)")
    if config.hard_negative_fraction and not config.hard_negatives:
        parser.error("--hard-negative-fraction needs --hard-negatives FILE (made by `python -m training mine-negatives`)")
    if config.hard_photo_fraction and not config.hard_photos:
        parser.error("--hard-photo-fraction needs --hard-photos FILE (made by `python -m training mine-photos`)")
    if config.hard_negative_fraction + config.hard_photo_fraction >= 1:
        parser.error("--hard-negative-fraction and --hard-photo-fraction together must leave the photos' own crops a share")
    metrics = fit(config, resume=bool(args.resume))
    print(json.dumps(metrics, indent=2))
    return 0


# Each mining command: its module in training, what it finds, and the `fit` option its file feeds.
MINERS = {
    "mine-negatives": (
        "hard_negatives",
        "find the training photos' person-free squares where a model still finds a person",
        "--hard-negatives",
    ),
    "mine-photos": ("hard_photos", "score a model on every training photo; the low ones are the hard photos", "--hard-photos"),
}


def _add_mine_parser(sub, command: str) -> None:
    _, help_text, fit_option = MINERS[command]
    p = sub.add_parser(command, help=f"{help_text} (for fit {fit_option})")
    p.add_argument("model", help="an exported ONNX model, e.g. models/cutout-person.onnx")
    p.add_argument("--data", required=True, help="dataset root (its training split is mined)")
    p.add_argument("--out", required=True, help=f"JSON file to write, for fit {fit_option}")
    p.add_argument("--limit", type=int, help="mine the first N training photos only")


def _run_mine(args, parser) -> int:
    import importlib

    from service.segmenter import Segmenter
    from training import dataset

    miner = importlib.import_module(f"training.{MINERS[args.command][0]}")
    if not Path(args.model).is_file():
        raise FileNotFoundError(f"no model file {args.model}")
    samples = dataset.load_splits(args.data).train[: args.limit]
    records = miner.mine(Segmenter(args.model, "cpu"), samples)
    print(json.dumps(miner.write(records, args.model, args.out), indent=2))
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
    p.add_argument(
        "--calibration-images",
        type=int,
        default=64,
        help="training photos used to calibrate int8 (every 2nd one's person also on a screen colour)",
    )
    p.add_argument("--check-images", type=int, default=100, help="val photos on which int8 is compared with fp32")
    p.add_argument("--force", action="store_true", help="write an int8 file even when it loses more than 0.005 val IoU")
    p.add_argument(
        "--flip-tta", action="store_true", help="average with the mirrored photo's prediction inside the graph (2x compute)"
    )
    p.add_argument(
        "--aspect-view",
        action="store_true",
        help="a graph for any input shape; the service averages the log-odds of the square and of the photo "
        "mirrored at its own aspect ratio (instead of --flip-tta, same compute)",
    )
    p.add_argument(
        "--scales",
        type=lambda text: [int(part) for part in text.split(",")],
        help="comma-separated model input sizes averaged inside the graph, e.g. 384,320 (the input stays --size)",
    )


def _run_export(args, parser) -> int:
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
        aspect_view=args.aspect_view,
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
        "--parts",
        type=lambda text: text.split(","),
        help="comma-separated reports (default: all): photos (IoU, boundary F, haze, holes, confidence), screens (edges on "
        "green/magenta), no_person (person-free crops), main_subject (photos with several people)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a non-default service option for the photos report, e.g. --option zoom=true (repeatable)",
    )
    p.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="cpu", help="onnxruntime execution provider")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: all cores)")
    p.add_argument("--out", help="report directory: evaluation.json, iou_histogram.png, worst_best.png")


def _service_options(pairs: list[str], parser) -> dict[str, str]:
    """NAME=VALUE pairs checked against the service's own option model, so a typo is an error, not a silent default."""
    from pydantic import ValidationError

    from service.removal import CutoutOptions

    options = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            parser.error(f"--option takes NAME=VALUE, got {pair!r}")
        if name not in CutoutOptions.model_fields:
            parser.error(f"--option {name}: no such service option (options: {', '.join(CutoutOptions.model_fields)})")
        options[name] = value
    try:
        CutoutOptions(**options)
    except ValidationError as exc:
        parser.error(f"--option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    return options


def _run_evaluate(args, parser) -> int:
    from training.evaluate import print_result, run

    if bool(args.model) == bool(args.url):
        parser.error("evaluate needs exactly one of MODEL or --url")
    options = _service_options(args.option, parser)
    result = run(
        args.model,
        args.url,
        args.data,
        split=args.split,
        limit=args.limit,
        parts=args.parts,
        out=args.out,
        provider=args.provider,
        threads=args.threads,
        api_key=args.api_key,
        options=options,
    )
    print_result(result)
    if args.out:
        print(f"report written to {args.out}")
    return 0


def _add_benchmark_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="training throughput: real input pipeline vs synthetic tensors")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement (default: 3)")
    p.add_argument("--samples", type=int, default=256, help="training images in the real pipeline (default: 256)")
    add_fit_arguments(p, skip=("out",))


def _run_benchmark(args, parser) -> int:
    from training.benchmark import benchmark

    config = config_from_args(args)
    if not config.data:
        parser.error("benchmark needs --data")
    print(json.dumps(benchmark(config, args.steps, args.warmup, args.samples)))
    return 0


def _add_weights_parser(sub) -> None:
    p = sub.add_parser("weights", help="write a run's best weights as a release's Keras file (for fit --init-from)")
    p.add_argument("run_dir", help="run directory written by `fit`")
    p.add_argument("--out", required=True, help="e.g. models/cutout-person.weights.h5")


def _run_weights(args, parser) -> int:
    from training.export import write_release_weights

    print(json.dumps(write_release_weights(args.run_dir, args.out), indent=2))
    return 0


def _add_average_parser(sub) -> None:
    p = sub.add_parser("average", help="average the weights of runs or release files into a new run (a model soup)")
    p.add_argument("sources", nargs="+", help="run directories (their best weights) or .weights.h5 files")
    p.add_argument("--config-from", required=True, help="run directory whose config the new run takes")
    p.add_argument("--shares", type=float, nargs="+", help="weight of each source, summing to 1 (default: equal)")
    p.add_argument("--out", required=True, help="new run directory, for `export` and `weights`")


def _run_average(args, parser) -> int:
    from training.export import average_weights

    print(json.dumps(average_weights(args.config_from, args.sources, args.out, args.shares), indent=2))
    return 0


def _add_curves_parser(sub) -> None:
    p = sub.add_parser("curves", help="plot a run's history.csv (fit does it at the end; a stopped run has none yet)")
    p.add_argument("run_dir", help="run directory written by `fit`")
    p.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png)")


def _run_curves(args, parser) -> int:
    from training.report import plot_history

    run_dir = Path(args.run_dir)
    history = run_dir / "history.csv"
    if not history.is_file():
        raise FileNotFoundError(f"{history} not found: is {run_dir} a run directory written by `fit`?")
    out = Path(args.out) if args.out else run_dir / "curves.png"
    plot_history(history, out)
    print(out)
    return 0


def _add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="a markdown table of several evaluation reports (the card's rows)")
    p.add_argument("reports", nargs="+", help="folders written by `evaluate --out` (or their evaluation.json)")
    p.add_argument("--names", nargs="+", help="row names, one per report (default: the folder names)")


def _run_compare(args, parser) -> int:
    from training.compare import comparison_table, read_evaluation

    names = args.names or [Path(report).name for report in args.reports]
    if len(names) != len(args.reports):
        parser.error(f"--names gives {len(names)} names for {len(args.reports)} reports")
    print(comparison_table([(name, read_evaluation(report)) for name, report in zip(names, args.reports, strict=True)]))
    return 0


def _add_pack_parser(sub) -> None:
    p = sub.add_parser("pack", help="the training set in one small .npz for `python -m training.portable` (GPU machines)")
    p.add_argument("--data", required=True, help="dataset root (Kaggle layout or images/ + masks/)")
    p.add_argument("--out", required=True, help="e.g. gpu/train.npz (git-ignored)")
    p.add_argument("--side", type=int, default=320, help="photos are stretched to side x side (default: 320)")
    p.add_argument("--quality", type=int, default=70, help="JPEG quality (default: 70)")
    p.add_argument("--max-mb", type=float, default=40.0, help="size limit: a random share of the photos if all do not fit")
    p.add_argument("--hard-negatives", help="a `mine-negatives` file: its photos are always packed, with their hard squares")


def _run_pack(args, parser) -> int:
    from training.portable import pack

    summary = pack(args.data, args.out, args.side, args.quality, args.max_mb, hard_negatives=args.hard_negatives)
    print(json.dumps(summary, indent=2))
    return 0


def _add_import_weights_parser(sub) -> None:
    p = sub.add_parser("import-weights", help="a new run from the weight chunks a portable (GPU) run wrote")
    p.add_argument("chunks", help="the folder `python -m training.portable --out` wrote")
    p.add_argument("--config-from", required=True, help="run directory whose config the new run takes")
    p.add_argument("--out", required=True, help="new run directory, for `export` and `weights`")


def _run_import_weights(args, parser) -> int:
    from training.export import import_weights

    print(json.dumps(import_weights(args.config_from, args.chunks, args.out), indent=2))
    return 0


def _add_release_run_parser(sub) -> None:
    p = sub.add_parser("release-run", help="a run directory from a release's weights file and card (to re-export or build on)")
    p.add_argument("weights", help="e.g. models/cutout-person.weights.h5")
    p.add_argument("--card", help="the model card whose training_config the run takes (default: the .json beside WEIGHTS)")
    p.add_argument("--data", help="dataset root recorded in the run's config (for `fit --resume` and the export check)")
    p.add_argument("--out", required=True, help="new run directory, for `export`, `average` and `import-weights`")


def _run_release_run(args, parser) -> int:
    from training.export import release_run

    print(json.dumps(release_run(args.weights, args.out, args.card, args.data), indent=2))
    return 0


def _add_card_parser(sub) -> None:
    p = sub.add_parser("card", help="stamp a model with its evaluation and write models/<name>.json")
    p.add_argument("model", type=Path)
    p.add_argument("--evaluation", type=Path, required=True, help="evaluation.json from `python -m training evaluate --out`")
    p.add_argument("--extra", type=Path, help="JSON merged into the card (latency table, runs, commands)")


def _run_card(args, parser) -> int:
    from training.card import write_card

    out = write_card(args.model, args.evaluation, args.extra)
    print(f"stamped {args.model} and wrote {out}")
    return 0


COMMANDS = {
    "fit": (_add_fit_parser, _run_fit),
    "mine-negatives": (lambda sub: _add_mine_parser(sub, "mine-negatives"), _run_mine),
    "mine-photos": (lambda sub: _add_mine_parser(sub, "mine-photos"), _run_mine),
    "export": (_add_export_parser, _run_export),
    "evaluate": (_add_evaluate_parser, _run_evaluate),
    "benchmark": (_add_benchmark_parser, _run_benchmark),
    "weights": (_add_weights_parser, _run_weights),
    "average": (_add_average_parser, _run_average),
    "curves": (_add_curves_parser, _run_curves),
    "compare": (_add_compare_parser, _run_compare),
    "pack": (_add_pack_parser, _run_pack),
    "import-weights": (_add_import_weights_parser, _run_import_weights),
    "release-run": (_add_release_run_parser, _run_release_run),
    "card": (_add_card_parser, _run_card),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in COMMANDS.values():
        add_parser(sub)
    return parser


def _user_errors(command: str) -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: a message, exit 2, no traceback. Imported per command, so
    evaluate never loads TensorFlow."""
    from training.dataset import DatasetError

    errors: tuple[type[Exception], ...] = (DatasetError, FileNotFoundError, FileExistsError)
    if command in ("export", "average", "import-weights", "release-run"):
        from training.export import ExportError

        errors += (ExportError,)
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command][1](args, parser)
    except _user_errors(args.command) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
