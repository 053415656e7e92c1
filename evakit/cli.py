"""The ``evakit`` console script.

    evakit recipes                         list the recipes
    evakit train RECIPE [--epochs N] [--record] [--checkpoint F [--resume]]
                 [--precision fp32|bf16] [--threads N] [--device D] [--seed S]
    evakit lr-find RECIPE [--record]       the LR range test on a recipe's model and data
    evakit summary RECIPE|MODEL            the EVA table (layers, shapes, RF, params)
    evakit sheet backprop|feedforward -o FILE [--lr LR ...] [--steps N]
    evakit check SESSION RECORD            grade a recorded run (a recipe name or a JSON path)
    evakit bench loader|s04|cifar|precision|s08|gpt|speedrun
                                           speed figures, with a baseline from the same run
    evakit anchors ANNOTATIONS.json [--k 3 4 5 6] [--plot FILE]
                                           anchor boxes by k-means (1 - IoU) on COCO-format boxes
    evakit notebooks [--check]             regenerate (or check) the sessions' .ipynb twins

Bad input ends with one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"evakit: {message}", file=sys.stderr)
        raise SystemExit(2)


def _number(kind: type, lowest: float, what: str):
    """An argparse type: ``kind`` (int or float) of at least ``lowest`` (or above 0 for floats),
    else one sentence saying what was expected."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < lowest or (kind is float and not value > 0):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_positive = _number(int, 1, "a positive integer")
_non_negative = _number(int, 0, "a non-negative integer")
_positive_float = _number(float, 0, "a positive number")


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
    t.add_argument("--seed", type=_non_negative,
                   help="another seed than the recipe's (record: -seedN)")
    t.add_argument("--precision", choices=["fp32", "bf16"],
                   help="default: the recipe's, else bf16 where native (CUDA, AVX-512 BF16)")
    t.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's)")
    f = sub.add_parser("lr-find", help="LR range test on a recipe's model and data")
    f.add_argument("recipe")
    f.add_argument("--iterations", type=_positive, default=200, help="batches in the sweep")
    f.add_argument("--start-lr", type=_positive_float, default=1e-4)
    f.add_argument("--end-lr", type=_positive_float, default=10.0)
    f.add_argument("--record", action="store_true",
                   help="write book/records/RECIPE-lr-range.json (full data only)")
    f.add_argument("--precision", choices=["fp32", "bf16"])
    f.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's)")
    s = sub.add_parser("summary", help="layer table with shapes, RF and parameters")
    s.add_argument("name", help="a recipe or a model name")
    w = sub.add_parser("sheet", help="write an Excel workbook with live formulas")
    w.add_argument("kind", choices=["backprop", "feedforward"])
    w.add_argument("-o", "--output", type=Path, required=True, help="the .xlsx to write")
    w.add_argument("--lr", type=_positive_float, nargs="+", help="learning rates (backprop)")
    w.add_argument("--steps", type=_positive, default=50, help="steps per sheet (backprop)")
    c = sub.add_parser("check", help="grade a recorded run against an assignment")
    c.add_argument("session", help="the session whose assignment grades it, e.g. s04 (a "
                   "session without a grader names those that have one)")
    c.add_argument("record", help="a recipe name (its book/records file) or a record's path")
    c.add_argument("--structure", action="store_true",
                   help="grade the recipe's model alone (no record: no accuracy constraints)")
    b = sub.add_parser("bench", help="speed figures against a baseline in the same run")
    b.add_argument("what", choices=["loader", "s04", "cifar", "precision", "s08", "gpt",
                                    "speedrun"])
    b.add_argument("--images", type=_positive, help="images per pipeline (loader: 20 000, "
                   "cifar: 10 000)")
    b.add_argument("--step-images", type=_positive,
                   help="images through the training step per pipeline (cifar)")
    b.add_argument("--batch-size", type=_positive, default=512, help="images per batch (cifar)")
    b.add_argument("--epochs", type=_positive, help="at most this many epochs (s04)")
    b.add_argument("--device", help="cpu, cuda, mps (default: the fastest here)")
    b.add_argument("--parity-steps", type=_positive, default=300,
                   help="batches of the fp32-vs-bf16 parity run (precision; 0 skips it)")
    a = sub.add_parser("anchors", help="anchor boxes by k-means with distance 1 - IoU")
    a.add_argument("annotations", type=Path, help="a COCO-format annotation file (.json)")
    a.add_argument("--k", type=_positive, nargs="+", default=[3, 4, 5, 6],
                   help="numbers of anchors to fit (default: 3 4 5 6)")
    a.add_argument("--plot", type=Path, help="save mean IoU against k and the anchors here")
    n = sub.add_parser("notebooks", help="regenerate the sessions' .ipynb twins")
    n.add_argument("--check", action="store_true", help="only report stale twins (exit 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)
    try:
        return _COMMANDS[args.command](args)
    except ValueError as e:     # every evakit.errors class is a ValueError
        print(f"evakit: {e}", file=sys.stderr)
        return 2


def _recipes(_args) -> int:
    from evakit import recipes
    for name in recipes.names():
        r = recipes.get(name)
        print(f"{name:<22} session {r.session:<4} {r.epochs:>3} epochs  {r.summary}")
    return 0


def _train(args) -> int:
    from evakit import data, evidence, records, runner
    from evakit.errors import ArgumentError
    if args.resume and args.checkpoint is None:
        raise ArgumentError("--resume needs --checkpoint FILE to resume from")
    git = records.git_state()
    if args.record:
        if data.is_fast():
            raise ArgumentError("--record writes a full run, but EVAKIT_FAST is set: unset it")
        records.require_clean(git)
    run = runner.run(args.recipe, epochs=args.epochs, seed=args.seed, device=args.device,
                     precision=args.precision, checkpoint=args.checkpoint, resume=args.resume)
    print(f"{run.recipe.name}: {run.params:,} parameters, final test accuracy "
          f"{run.history.test_acc[-1]:.2f}% after {len(run.history)} epochs "
          f"({run.wall_seconds:.0f} s on {run.device}, {run.precision})"
          + "".join(f", {k} {v:.2f}%" for k, v in run.metrics.items() if k != "test_acc"))
    if args.record:
        outputs = evidence.collect(run, run.test_set)
        if run.params <= records.MAX_WEIGHTS:
            print("weights written to", records.save_weights(run))
        print("record written to", records.save(records.make(run, git=git, outputs=outputs)))
    return 0


def _lr_find(args) -> int:
    from evakit import data, records, runner
    from evakit.errors import ArgumentError
    git = records.git_state()
    if args.record:
        if data.is_fast():
            raise ArgumentError("--record writes a full run, but EVAKIT_FAST is set: unset it")
        records.require_clean(git)
    if args.start_lr >= args.end_lr:
        raise ArgumentError(f"--start-lr must be below --end-lr, got {args.start_lr} and "
                            f"{args.end_lr}")
    found = runner.lr_find(args.recipe, iterations=args.iterations, start_lr=args.start_lr,
                           end_lr=args.end_lr, precision=args.precision)
    r = found.result
    print(f"{args.recipe}: {len(r.lrs)} batches, the loss turns up after {r.usable}; it starts "
          f"to fall at lr {r.falling_lr:.2g}, falls fastest at {r.suggested_lr:.2g}, is lowest "
          f"at {r.minimum_lr:.2g}")
    if args.record:
        print("written to", records.save_range(found, git))
    return 0


def _summary(args) -> int:
    from evakit import models, recipes, rf
    from evakit.errors import ArgumentError
    if args.name.startswith("s25/"):
        raise ArgumentError("s25/digit-sum takes two inputs; its table is drawn in session 2.5")
    if args.name in recipes.RECIPES:
        recipe = recipes.get(args.name)
        model, size = recipe.build_model(), recipe.input_size
    elif args.name in models.names():
        model, size = models.create(args.name), models.input_size(args.name)
    else:
        raise ArgumentError(f"{args.name!r} is neither a recipe nor a model: see "
                            "`evakit recipes`")
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
    from evakit import check, records
    if args.structure:
        from evakit import recipes
        report = check.grade(args.session, model=recipes.get(args.record).build_model())
        print(report)
        return 0 if report.passed else 1
    path = Path(args.record)
    record = records.read(path) if path.suffix == ".json" else records.load(args.record)
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
        print(f"data: {result['source']}; device: {result['device']} ({result['precision']}); "
              f"{bench.torch.get_num_threads()} torch threads")
        print("loader alone:")
        _print_rates(result["loader"], "albumentations")
        print("training step of the custom ResNet:")
        _print_rates(result["step"], "albumentations")
        return 0
    if args.what == "precision":
        return _bench_precision(bench, args)
    if args.what == "s08":
        return _bench_s08(bench)
    if args.what == "gpt":
        return _bench_gpt(bench, args)
    if args.what == "speedrun":
        return _bench_speedrun(bench, args)
    result = bench.s04(max_epochs=args.epochs, device=args.device)
    reached = result["reached_99_4"]
    print(f"{result['recipe']} on {result['device']} ({result['threads']} torch threads, "
          f"{result['cpus']} CPUs): {result['seconds_per_epoch']:.1f} s per epoch; "
          + (f"99.4 % reached at epoch {reached[0]}, after {reached[1]:.0f} s"
             if reached else f"99.4 % not reached in {result['epochs']} epochs"))
    return 0


def _bench_precision(bench, args) -> int:
    import torch
    images = args.images or 1024
    print(f"one training step, batch {args.batch_size if args.batch_size != 512 else 128}, "
          f"{images:,} images per setting, {torch.get_num_threads()} torch threads:")
    rows = bench.precision(images, 128 if args.batch_size == 512 else args.batch_size,
                           device=args.device)
    for name, fp32, bf16 in rows:
        print(f"  {name:<20} fp32 {fp32.per_second:>7,.0f} images/s   bf16 + channels-last "
              f"{bf16.per_second:>7,.0f} images/s   ratio {bf16.per_second / fp32.per_second:.2f}×")
    if args.parity_steps:
        acc = bench.parity(steps=args.parity_steps, device=args.device)
        print(f"parity, s06/cifar-net from seed 1, {acc['steps']} batches: test accuracy fp32 "
              f"{acc['fp32']:.2f} %, bf16 {acc['bf16']:.2f} % (on {acc['test_images']:,} test "
              f"images; one standard error ≈ "
              f"{100 * (0.25 / acc['test_images']) ** 0.5:.1f} points at most)")
    return 0


def _bench_gpt(bench, args) -> int:
    import torch
    results = bench.gpt(device=args.device)
    print(f"session 11's character GPT (4 layers, 4 heads, width 128, context 64) on Tiny "
          f"Shakespeare, {torch.get_num_threads()} torch threads; held-out loss (last 10 %) "
          f"in fp32; time = training steps only:")
    for r in results:
        reached = r.reached
        print(f"  {r.setting.name:<48} {r.tokens_per_second:>8,.0f} tokens/s  "
              + (f"loss {r.target} after {reached[1]:5.1f} s (it {reached[0]:,})"
                 if reached else f"loss {r.target} not reached in {r.seconds:.1f} s")
              + f"; final loss {r.final_loss:.3f} after {r.seconds:.1f} s")
    base, ours = results[0], results[-1]
    if base.reached and ours.reached:
        print(f"  ratio: {base.setting.name.split(':')[0]} takes "
              f"{base.reached[1] / ours.reached[1]:.1f}× as long to reach {ours.target}")
    print(f"  tokens per second: {ours.tokens_per_second / base.tokens_per_second:.1f}× the "
          "baseline's")
    return 0


def _bench_speedrun(bench, args) -> int:
    import torch
    fast, eager, base = bench.speedrun(args.images or 4096, device=args.device)
    print(f"session 8's speedrun (compiled and eager) against the custom ResNet, training "
          f"steps only, {fast.rate.images:,} images each, {torch.get_num_threads()} torch "
          "threads:")
    for speed, what in ((fast, "its whole run"), (eager, "its whole run"),
                        (base, "to 90 % as recorded")):
        print(f"  {speed.recipe:<18} {speed.rate.per_second:>7,.0f} images/s; {speed.epochs} "
              f"epochs ({what}) of {speed.train_images:,} images: "
              f"{speed.projected_seconds / 60:.1f} min")
    quicker = min(fast, eager, key=lambda speed: speed.projected_seconds)
    ratio = base.projected_seconds / quicker.projected_seconds
    print(f"  ratio: the custom ResNet takes {ratio:.1f}× as long to reach 90 % as the speedrun "
          f"({quicker.recipe}, the quicker here) takes for its whole run")
    print(f"  ratio: compiled steps run at {fast.rate.per_second / eager.rate.per_second:.2f}× "
          "the eager steps' speed (compiling itself not counted)")
    print(f"  floor: this CPU's matrix products peak at {fast.peak_flops / 1e9:,.0f} GFLOP/s "
          "here; at that rate, with elementwise work free,")
    for speed in (fast, base):
        print(f"  {speed.recipe:<18} {speed.flops_per_image / 1e9:.2f} GFLOP per training image:"
              f" {speed.floor_seconds / 60:.1f} min; its steps run at "
              f"{speed.share_of_peak:.0%} of the peak")
    return 0


def _bench_s08(bench) -> int:
    result = bench.s08()
    record, reached = result["record"], result["reached_90"]
    print(f"{record.provenance()}")
    print(f"  {result['seconds_per_epoch']:.0f} s per epoch; "
          + (f"90 % reached at epoch {reached[0]}, after {reached[1] / 60:.1f} min"
             if reached else "90 % not reached"))
    return 0


def _anchors(args) -> int:
    from evakit import detect
    from evakit.errors import ArgumentError
    if not args.annotations.is_file():
        raise ArgumentError(f"no file at {args.annotations}: expected a COCO-format annotation "
                            "file (.json)")
    if args.plot is not None and not args.plot.resolve().parent.is_dir():
        raise ArgumentError(f"--plot {args.plot}: its folder does not exist; give a file in an "
                            "existing folder")
    report = detect.anchors_report(args.annotations, args.k)
    print(report)
    if args.plot is not None:
        try:
            report.figure().savefig(args.plot, dpi=120)
        except OSError as e:
            raise ArgumentError(f"--plot {args.plot} could not be written ({e.strerror or e}): "
                                "give a file in an existing, writable folder") from None
        print("figure written to", args.plot)
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


_COMMANDS = {"recipes": _recipes, "train": _train, "lr-find": _lr_find, "summary": _summary,
             "sheet": _sheet,
             "check": _check, "bench": _bench, "anchors": _anchors, "notebooks": _notebooks}


if __name__ == "__main__":
    raise SystemExit(main())
