"""The ``evakit`` console script.

    evakit recipes                         list the recipes
    evakit train RECIPE [--epochs N] [--record] [--checkpoint F [--resume]]
    evakit summary RECIPE|MODEL            the EVA table (layers, shapes, RF, params)
    evakit sheet backprop|feedforward -o FILE [--lr LR ...] [--steps N]
    evakit check SESSION RECORD            grade a recorded run (a recipe name or a JSON path)
    evakit bench loader|s04|cifar          speed figures, with a baseline from the same run
    evakit notebooks [--check]             regenerate (or check) the sessions' .ipynb twins

Bad input ends with one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

INPUT_SIZES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"evakit: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="evakit", description="The evakit course toolkit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("recipes", help="list the training recipes")
    t = sub.add_parser("train", help="train a recipe")
    t.add_argument("recipe")
    t.add_argument("--epochs", type=_positive, help="override the recipe's epoch count")
    t.add_argument("--record", action="store_true",
                   help="write book/records/RECIPE.json (full data only, not in FAST mode)")
    t.add_argument("--checkpoint", type=Path, help="checkpoint file, written every epoch")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    t.add_argument("--device", help="cpu, cuda, mps (default: the fastest here)")
    t.add_argument("--seed", type=int, help="another seed than the recipe's (record: -seedN)")
    s = sub.add_parser("summary", help="layer table with shapes, RF and parameters")
    s.add_argument("name", help="a recipe or a model name")
    w = sub.add_parser("sheet", help="write an Excel workbook with live formulas")
    w.add_argument("kind", choices=["backprop", "feedforward"])
    w.add_argument("-o", "--output", type=Path, required=True, help="the .xlsx to write")
    w.add_argument("--lr", type=_positive_float, nargs="+", help="learning rates (backprop)")
    w.add_argument("--steps", type=_positive, default=50, help="steps per sheet (backprop)")
    c = sub.add_parser("check", help="grade a recorded run against an assignment")
    c.add_argument("session", help="s03, s04, s06 or s08")
    c.add_argument("record", help="a recipe name (its book/records file) or a record's path")
    c.add_argument("--structure", action="store_true",
                   help="grade the recipe's model alone (no record: no accuracy constraints)")
    b = sub.add_parser("bench", help="speed figures against a baseline in the same run")
    b.add_argument("what", choices=["loader", "s04", "cifar"])
    b.add_argument("--images", type=_positive, help="images per pipeline (loader: 20 000, "
                   "cifar: 10 000)")
    b.add_argument("--step-images", type=_positive,
                   help="images through the training step per pipeline (cifar)")
    b.add_argument("--batch-size", type=_positive, default=512, help="images per batch (cifar)")
    b.add_argument("--epochs", type=_positive, help="at most this many epochs (s04)")
    b.add_argument("--device", help="cpu, cuda, mps (default: the fastest here)")
    n = sub.add_parser("notebooks", help="regenerate the sessions' .ipynb twins")
    n.add_argument("--check", action="store_true", help="only report stale twins (exit 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    from evakit.data import DataUnavailable

    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, DataUnavailable) as e:
        print(f"evakit: {e}", file=sys.stderr)
        return 2


def _recipes(_args) -> int:
    from evakit import recipes
    for name in recipes.names():
        r = recipes.get(name)
        print(f"{name:<22} session {r.session:<4} {r.epochs:>3} epochs  {r.summary}")
    return 0


def _train(args) -> int:
    from evakit import data, recipes, records
    if args.resume and args.checkpoint is None:
        raise ValueError("--resume needs --checkpoint FILE to resume from")
    if args.record and data.is_fast():
        raise ValueError("--record writes a full run, but EVAKIT_FAST is set: unset it")
    git = records.git_state()
    run = recipes.run(args.recipe, epochs=args.epochs, seed=args.seed, device=args.device,
                      checkpoint=args.checkpoint, resume=args.resume)
    print(f"{run.recipe.name}: {run.params:,} parameters, final test accuracy "
          f"{run.history.test_acc[-1]:.2f}% after {len(run.history)} epochs "
          f"({run.wall_seconds:.0f} s on {run.device})"
          + "".join(f", {k} {v:.2f}%" for k, v in run.metrics.items() if k != "test_acc"))
    if args.record:
        print("record written to", records.save(records.make(run, git=git)))
    return 0


def _summary(args) -> int:
    from evakit import models, recipes, rf
    if args.name.startswith("s25/"):
        raise ValueError("s25/digit-sum takes two inputs; its table is drawn in session 2.5")
    if args.name in recipes.RECIPES:
        recipe = recipes.get(args.name)
        model, size = recipes.build_model(recipe), INPUT_SIZES[recipe.dataset]
    elif args.name in models.names():
        model, size = models.create(args.name), (1, 28, 28)
    else:
        raise ValueError(f"{args.name!r} is neither a recipe nor a model: see `evakit recipes`")
    print(rf.summary(model, size))
    return 0


def _sheet(args) -> int:
    from evakit import sheets
    if args.kind == "backprop":
        lrs = tuple(args.lr) if args.lr else sheets.DEFAULT_LEARNING_RATES
        path = sheets.backprop_workbook(args.output, learning_rates=lrs, steps=args.steps)
    else:
        path = sheets.feedforward_workbook(args.output)
    print("wrote", path)
    return 0


def _check(args) -> int:
    import json

    from evakit import check, records
    path = Path(args.record)
    if args.structure:
        from evakit import recipes
        report = check.grade(args.session, model=recipes.build_model(recipes.get(args.record)))
        print(report)
        return 0 if report.passed else 1
    if path.suffix == ".json":
        if not path.is_file():
            raise ValueError(f"no record file at {path}")
        record = json.loads(path.read_text())
    else:
        try:
            record = records.load(args.record)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
    report = check.grade(args.session, record)
    print(report)
    return 0 if report.passed else 1


def _print_rates(rates, baseline_name: str) -> None:
    for r in rates:
        print(f"  {r.name:<62} {r.per_second:>10,.0f} images/s  "
              f"({r.images:,} in {r.seconds:.1f} s)")
    baseline = max(rates[1:], key=lambda r: r.per_second)
    print(f"  ratio: evakit is {rates[0].per_second / baseline.per_second:.1f}× the fastest "
          f"{baseline_name} setting")


def _bench(args) -> int:
    from evakit import bench
    if args.what == "loader":
        _print_rates(bench.loader(args.images or 20_000, device=args.device), "torchvision")
        return 0
    if args.what == "cifar":
        result = bench.cifar(args.images or 10_000, args.step_images, args.batch_size,
                             device=args.device)
        print(f"data: {result['source']}; device: {result['device']}"
              + (" (channels-last, bfloat16 autocast)" if result["device"].startswith("cuda")
                 else " (float32)") + f"; {bench.torch.get_num_threads()} torch threads")
        print("loader alone:")
        _print_rates(result["loader"], "albumentations")
        print("training step of the custom ResNet:")
        _print_rates(result["step"], "albumentations")
        return 0
    result = bench.s04(max_epochs=args.epochs, device=args.device)
    reached = result["reached_99_4"]
    print(f"{result['recipe']} on {result['device']} ({result['threads']} torch threads, "
          f"{result['cpus']} CPUs): {result['seconds_per_epoch']:.1f} s per epoch; "
          + (f"99.4 % reached at epoch {reached[0]}, after {reached[1]:.0f} s"
             if reached else f"99.4 % not reached in {result['epochs']} epochs"))
    return 0


def _notebooks(args) -> int:
    from evakit import notebooks
    root = Path.cwd()
    if not (root / "_config.yml").is_file():
        raise ValueError(f"run `evakit notebooks` from the repository root ({root} has no "
                         "_config.yml)")
    if args.check:
        stale = notebooks.stale_pairs(root)
        for source in stale:
            print(f"{source}: its .ipynb twin is stale; run `evakit notebooks`")
        return 1 if stale else 0
    for twin in notebooks.sync(root):
        print("wrote", twin)
    return 0


_COMMANDS = {"recipes": _recipes, "train": _train, "summary": _summary, "sheet": _sheet,
             "check": _check, "bench": _bench, "notebooks": _notebooks}


if __name__ == "__main__":
    raise SystemExit(main())
