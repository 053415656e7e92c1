"""Recorded runs: the evidence behind every number the book's prose quotes.

A record is JSON at ``book/records/<recipe>.json`` (e.g. ``book/records/s01/rf-net.json``)
holding the recipe and its config, the per-epoch history, the parameter count, the device, the
library versions, the git commit, the command and the wall time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch

from evakit import __version__
from evakit.data import atomic_write
from evakit.recipes import get
from evakit.rf import Table
from evakit.train import History


def records_dir() -> Path:
    """``$EVAKIT_RECORDS``, else ``book/records`` of the repository around the working dir."""
    env = os.environ.get("EVAKIT_RECORDS")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder / "book" / "records"
    return here / "book" / "records"


def path_for(recipe: str, directory: Path | None = None, seed: int | None = None) -> Path:
    """Where the record of ``recipe`` lives (``-seedN`` added for a run on another seed)."""
    suffix = f"-seed{seed}" if seed is not None else ""
    return (directory or records_dir()) / f"{recipe}{suffix}.json"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, " \
           f"{torch.get_num_threads()} torch threads"


def git_state() -> dict:
    """The commit the code is at, and whether tracked files differ from it.

    Where the code runs from a copy without ``.git`` (a remote GPU box), the caller states the
    commit the copy was made from in ``EVAKIT_GIT_COMMIT``.
    """
    commit = _git("rev-parse", "HEAD")
    if commit:
        return {"git_commit": commit,
                "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}
    stated = os.environ.get("EVAKIT_GIT_COMMIT", "")
    return {"git_commit": stated, "git_dirty": False,
            "git_note": "copy without .git; commit stated by EVAKIT_GIT_COMMIT" if stated else
                        "no git repository"}


def make(run, command: str | None = None, git: dict | None = None) -> dict:
    """A record (a JSON-ready dict) from a :class:`evakit.recipes.Run`.

    Args:
        run: the finished run.
        command: the command line that produced it (default: this process's).
        git: :func:`git_state` taken when the run started (default: taken now).
    """
    import torchvision

    if run.limit is not None:
        raise ValueError(f"{run.recipe.name} was trained on its first {run.limit} images only; "
                         "a record needs the full training set")
    recipe = run.recipe
    planned = get(recipe.name).epochs
    return {
        "recipe": recipe.name,
        "seed": recipe.seed,
        "seed_is_default": recipe.seed == get(recipe.name).seed,
        "session": recipe.session,
        "summary": recipe.summary,
        "config": recipe.config(),
        "epochs_run": len(run.history),
        "epochs_planned": planned,
        "shortened": len(run.history) < planned,
        "history": run.history.to_dict(),
        "metrics": run.metrics,
        "params": run.params,
        "device": run.device,
        "device_name": _device_name(run.device),
        "data": run.data_sources,
        "fast": run.fast,
        "wall_seconds": round(run.wall_seconds, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "evakit": __version__},
        **(git or git_state()),
        "command": command or " ".join(["evakit", *sys.argv[1:]]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(record: dict, directory: Path | None = None) -> Path:
    """Write a record atomically; returns its path."""
    seed = None if record.get("seed_is_default", True) else record["seed"]
    text = json.dumps(record, indent=1) + "\n"
    path = path_for(record["recipe"], directory, seed)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def load(recipe: str, directory: Path | None = None, seed: int | None = None) -> dict:
    """The record of ``recipe`` (of its run on ``seed``, when that is not the recipe's own)."""
    path = path_for(recipe, directory, seed)
    if not path.is_file():
        raise FileNotFoundError(f"no record for {recipe!r} at {path}: run "
                                f"`evakit train {recipe} --record` to make one")
    return json.loads(path.read_text())


def history(record: dict) -> History:
    """A record's per-epoch history."""
    return History.from_dict(record["history"])


def provenance(record: dict) -> str:
    """One line saying where a record's numbers come from."""
    short = " — SHORTENED RUN" if record["shortened"] else ""
    return (f"{record['recipe']}: {record['epochs_run']} of {record['epochs_planned']} epochs"
            f"{short} on {record['device_name']} ({record['device']}), "
            f"{record['wall_seconds']:.0f} s, commit {record['git_commit'][:10] or 'unknown'}"
            f"{' (uncommitted changes)' if record['git_dirty'] else ''}, "
            f"torch {record['versions']['torch']}, {record['created'][:10]}")


def epochs_table(record: dict) -> Table:
    """A record's history, one row per epoch, captioned with its provenance."""
    h = record["history"]
    rows = [[i + 1, h["lr"][i], round(h["train_loss"][i], 4), round(h["train_acc"][i], 2),
             round(h["test_loss"][i], 4), round(h["test_acc"][i], 2), round(h["seconds"][i], 1)]
            for i in range(len(h["test_acc"]))]
    return Table(["epoch", "lr", "train loss", "train acc %", "test loss", "test acc %", "s"],
                 rows, provenance(record))


def overview(recipes: list[str], directory: Path | None = None) -> Table:
    """One row per recorded recipe: parameters, best and final test accuracy, device, time."""
    rows = []
    for name in recipes:
        r = load(name, directory)
        best_epoch, best = history(r).best()
        rows.append([name, f"{r['params']:,}", f"{r['epochs_run']}/{r['epochs_planned']}",
                     f"{best:.2f} (ep {best_epoch})", f"{r['history']['test_acc'][-1]:.2f}",
                     r["device_name"], f"{r['wall_seconds']:.0f}"])
    return Table(["recipe", "params", "epochs", "best test acc %", "final test acc %", "device",
                  "wall s"], rows, "Recorded full runs (book/records)")


def results_markdown(record: dict) -> str:
    """A Results block generated from a record: parameters, best train and test accuracy."""
    h = record["history"]
    best_train = max(range(len(h["train_acc"])), key=h["train_acc"].__getitem__)
    best_test = max(range(len(h["test_acc"])), key=h["test_acc"].__getitem__)
    return (f"**Results.** Parameters: {record['params']:,}. Best train accuracy: "
            f"{h['train_acc'][best_train]:.2f} % (epoch {best_train + 1}). Best test accuracy: "
            f"{h['test_acc'][best_test]:.2f} % (epoch {best_test + 1}); last epoch "
            f"{h['test_acc'][-1]:.2f} %. *{provenance(record)}.*")


def results_or_missing(recipe: str, directory: Path | None = None) -> str:
    """The recipe's Results block when it has a record, else a plain statement that it has none
    and the one command that makes it (a page never shows a number no run produced)."""
    try:
        return results_markdown(load(recipe, directory))
    except FileNotFoundError:
        return (f"**Results.** No recorded full run of `{recipe}` is in `book/records/` yet, so "
                f"this page quotes no result for it. `evakit train {recipe} --record` (on a GPU "
                "for the CIFAR-10 networks; Colab works) makes the record this block is "
                "generated from.")
