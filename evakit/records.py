"""Recorded runs: the evidence behind every number the book's prose quotes.

A record is JSON at ``book/records/<recipe>.json`` (e.g. ``book/records/s01/rf-net.json``)
holding the recipe and its config, the per-epoch history, the parameter count, the device and
precision, the data it saw (dataset, split, size, content hash — never a path), the library
versions, the git commit, the command and the wall time, and what a page needs from the final
model (its test predictions; a gallery's maps). :class:`Record` is that file, loaded and
validated once; the pages, ``check`` and the CLI read its fields, never raw keys.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from evakit import __version__
from evakit.data import DataIdentity, atomic_write
from evakit.errors import RecordError
from evakit.table import Table
from evakit.train import History

if TYPE_CHECKING:
    from evakit.runner import LRFound, Run

FORMAT = 2


@dataclass
class Record:
    """One recorded run (see the module docstring for what each part is for)."""

    recipe: str
    seed: int
    seed_is_default: bool
    session: str
    summary: str
    config: dict
    config_differs: dict
    epochs_planned: int
    history: History
    metrics: dict
    params: int
    device: str
    device_name: str
    precision: str
    threads: int | None
    data: dict[str, DataIdentity]
    wall_seconds: float
    resumed: bool
    versions: dict
    git_commit: str
    git_dirty: bool
    command: str
    created: str
    outputs: dict = field(default_factory=dict)
    format: int = FORMAT

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    @property
    def shortened(self) -> bool:
        return self.epochs_run < self.epochs_planned

    @property
    def final_test_acc(self) -> float:
        return self.history.test_acc[-1]

    def training_time(self) -> str:
        """The wall time in hours, e.g. "3.4 h", saying so when it is the sum of the stretches
        of a run resumed from checkpoints."""
        hours = f"{self.wall_seconds / 3600:.1f} h"
        return f"{hours} (resumed: the sum of its stretches)" if self.resumed else hours

    @property
    def trained_between(self) -> tuple[datetime, datetime] | None:
        """About when the run trained: from ``created`` (when the record was written, UTC
        where it names no zone) back by its wall time — or None for a resumed run, whose
        training was spread over several stretches (its wall time is their sum)."""
        if self.resumed:
            return None
        end = datetime.fromisoformat(self.created)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        return end - timedelta(seconds=self.wall_seconds), end

    def seconds_beside(self, other: Record) -> float:
        """Seconds during which this run and ``other`` were training at the same time (0 when
        either was resumed: its stretches are not recorded) — runs that shared a CPU met the
        same load, so their speeds compare fairly."""
        ours, theirs = self.trained_between, other.trained_between
        if ours is None or theirs is None:
            return 0.0
        (a0, a1), (b0, b1) = ours, theirs
        return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())

    def to_dict(self) -> dict:
        """The JSON-ready form written to disk."""
        d = asdict(self)
        d["history"] = self.history.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "the record") -> Record:
        """Validate and load a record's JSON (one sentence naming ``source`` if it is bad)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format", "none") if isinstance(d, dict) else type(d).__name__
            raise RecordError(f"{source} is not an evakit record of format {FORMAT} (found "
                              f"{found}): re-make it with `evakit train RECIPE --record`")
        missing = [f.name for f in fields(cls) if f.name not in d and f.name != "outputs"]
        if missing:
            raise RecordError(f"{source} lacks {', '.join(missing)}: re-make it with "
                              f"`evakit train {d.get('recipe', 'RECIPE')} --record`")
        try:
            values = {f.name: d[f.name] for f in fields(cls) if f.name in d}
            values["history"] = History.from_dict(d["history"])
            values["data"] = {split: DataIdentity(**ident) for split, ident in d["data"].items()}
            record = cls(**values)
        except (TypeError, KeyError, AttributeError) as e:
            raise RecordError(f"{source} has a malformed field ({e}): re-make it with "
                              f"`evakit train {d.get('recipe', 'RECIPE')} --record`") from None
        if len(record.history) == 0:
            raise RecordError(f"{source} has no epochs in its history")
        return record

    def provenance(self) -> str:
        """One line saying where the record's numbers come from."""
        short = " — SHORTENED RUN" if self.shortened else ""
        resumed = ", resumed from a checkpoint" if self.resumed else ""
        dirty = " (uncommitted changes)" if self.git_dirty else ""
        return (f"{self.recipe}: {self.epochs_run} of {self.epochs_planned} epochs{short} on "
                f"{self.device_name} ({self.device}, {self.precision}){resumed}, "
                f"{self.wall_seconds:.0f} s, commit {self.git_commit[:10] or 'unknown'}{dirty}, "
                f"torch {self.versions['torch']}, {self.created[:10]}")

    def test_set(self) -> str:
        """What the test accuracy was measured on, e.g. "cifar10 test: 1,000 images, …"."""
        return self.data["test"].describe()

    def results_markdown(self) -> str:
        """A Results block: parameters, best train and test accuracy, the data tested on."""
        h = self.history
        best_train, train_acc = h.best("train_acc")
        best_test, test_acc = h.best("test_acc")
        return (f"**Results.** Parameters: {self.params:,}. Best train accuracy: "
                f"{train_acc:.2f} % (epoch {best_train}). Best test accuracy: {test_acc:.2f} % "
                f"(epoch {best_test}); last epoch {h.test_acc[-1]:.2f} %, on "
                f"{self.test_set()}{standard_error_note(self)}. *{self.provenance()}.*")

    def epochs_table(self) -> Table:
        """The history, one row per epoch, captioned with the provenance."""
        h = self.history
        rows = [[i + 1, h.lr[i], round(h.train_loss[i], 4), round(h.train_acc[i], 2),
                 round(h.test_loss[i], 4), round(h.test_acc[i], 2), round(h.seconds[i], 1)]
                for i in range(len(h))]
        return Table(["epoch", "lr", "train loss", "train acc %", "test loss", "test acc %",
                      "s"], rows, self.provenance())


def standard_error_note(record: Record) -> str:
    """", ± x points (one standard error)" for a test set small enough for it to matter."""
    n, p = record.data["test"].size, record.final_test_acc / 100
    se = 100 * (p * (1 - p) / n) ** 0.5
    return f" (± {se:.1f} points, one standard error)" if n < 5000 else ""


def records_dir() -> Path:
    """Where records are read and written.

    ``$EVAKIT_RECORDS`` if set, else ``book/records`` of the repository around the working
    folder (in Colab the install cell clones the repository and works from inside it).
    """
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


def _git(*args: str, where: Path = Path(__file__).parent) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=where).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, " \
           f"{threads} torch thread{'s' if threads != 1 else ''}"


def git_state(where: Path = Path(__file__).parent) -> dict:
    """The commit the code is at, and whether tracked files other than the records differ
    from it (a record written by an earlier run is output, not code).

    Where the code runs from a copy without ``.git`` (a remote GPU box), the caller states the
    commit the copy was made from in ``EVAKIT_GIT_COMMIT``.
    """
    commit = _git("rev-parse", "HEAD", where=where)
    if commit:
        changed = _git("status", "--porcelain", "--untracked-files=no", "--",
                       ":(top)", ":(top,exclude)book/records", where=where)
        return {"git_commit": commit, "git_dirty": bool(changed)}
    return {"git_commit": os.environ.get("EVAKIT_GIT_COMMIT", ""), "git_dirty": False}


def require_clean(git: dict) -> None:
    """Refuse to record from a tree whose tracked files differ from its commit."""
    if git["git_dirty"]:
        raise RecordError("--record needs a clean tree: tracked files differ from commit "
                          f"{git['git_commit'][:10]}, so the record would pin no code; commit "
                          "(or stash) the changes and run again")
    if not git["git_commit"]:
        raise RecordError("--record needs to know the code's commit: run inside the git "
                          "repository, or set EVAKIT_GIT_COMMIT for a copy without .git")


def _this_command() -> str:
    """This process's command line, as ``evakit ...``; a path names its file alone (a record
    names no folder of the machine it was made on)."""
    words = [Path(word).name if Path(word).is_absolute() else word for word in sys.argv[1:]]
    return " ".join(["evakit", *words])


def make(run: Run, command: str | None = None, git: dict | None = None,
         outputs: dict | None = None) -> Record:
    """A record from a finished :class:`evakit.runner.Run`.

    Args:
        run: the finished run.
        command: the command line that produced it (default: this process's).
        git: :func:`git_state` taken when the run started (default: taken now).
        outputs: what a page needs from the final model (see :mod:`evakit.outputs`).
    """
    import torchvision

    if run.limit is not None or run.fast:
        raise RecordError(f"{run.recipe.name} was a FAST or smoke run (limit {run.limit}); a "
                          "record needs the full training set: unset EVAKIT_FAST")
    if run.base is None:
        raise RecordError(f"{run.recipe.name} is not a registered recipe: add it to "
                          "evakit.recipes before recording it")
    recipe, base = run.recipe, run.base
    differs = {k: v for k, v in recipe.differences(base).items() if k not in ("seed", "epochs")}
    return Record(
        recipe=recipe.name, seed=recipe.seed, seed_is_default=recipe.seed == base.seed,
        session=recipe.session, summary=recipe.summary, config=recipe.config(),
        config_differs=differs, epochs_planned=base.epochs, history=run.history,
        metrics=run.metrics, params=run.params, device=run.device,
        device_name=_device_name(run.device), precision=run.precision,
        threads=torch.get_num_threads(), data=run.data,
        wall_seconds=round(run.wall_seconds, 1), resumed=run.resumed_from > 0,
        versions={"python": platform.python_version(), "torch": torch.__version__,
                  "torchvision": torchvision.__version__, "evakit": __version__},
        **(git or git_state()),
        command=command or _this_command(),
        created=datetime.now(UTC).isoformat(timespec="seconds"), outputs=outputs or {})


def save(record: Record, directory: Path | None = None) -> Path:
    """Write a record atomically; returns its path."""
    seed = None if record.seed_is_default else record.seed
    text = json.dumps(record.to_dict(), indent=1) + "\n"
    path = path_for(record.recipe, directory, seed)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read(path: str | Path) -> Record:
    """The record in the file at ``path``, validated."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"no record file at {path}: give a recipe name or the path of a "
                          "record's .json")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path} is not valid JSON ({e.__class__.__name__} at "
                          f"{getattr(e, 'lineno', '?')}:{getattr(e, 'colno', '?')}): it may be "
                          "truncated; re-make it with `evakit train RECIPE --record`") from None
    return Record.from_dict(d, str(path))


def load(recipe: str, directory: Path | None = None, seed: int | None = None) -> Record:
    """The record of ``recipe`` (of its run on ``seed``, when that is not the recipe's own)."""
    path = path_for(recipe, directory, seed)
    if not path.is_file():
        raise RecordError(f"no record for {recipe!r} in {path.parent}: run "
                          f"`evakit train {recipe} --record` to make one")
    return read(path)


def overview(recipes: list[str], directory: Path | None = None) -> Table:
    """One row per recorded recipe: parameters, best and final test accuracy, device, time."""
    rows = []
    for name in recipes:
        r = load(name, directory)
        best_epoch, best = r.history.best()
        rows.append([name, f"{r.params:,}", f"{r.epochs_run}/{r.epochs_planned}",
                     f"{best:.2f} (ep {best_epoch})", f"{r.final_test_acc:.2f}",
                     r.device_name, f"{r.wall_seconds:.0f}"])
    return Table(["recipe", "params", "epochs", "best test acc %", "final test acc %", "device",
                  "wall s"], rows, "Recorded full runs (book/records)")


def results_or_missing(recipe: str, directory: Path | None = None) -> str:
    """The recipe's Results block when it has a record, else a plain statement that it has none
    and the one command that makes it (a page never shows a number no run produced)."""
    if not path_for(recipe, directory).is_file():
        return (f"**Results.** No recorded full run of `{recipe}` is in `book/records/` yet, so "
                f"this page quotes no result for it. `evakit train {recipe} --record` makes the "
                "record this block is generated from.")
    return load(recipe, directory).results_markdown()


# A model this small (at most ~1.8 MB of float16) keeps its final weights beside its record, so a
# page can use the recorded model itself; larger ones keep only their evidence (see evidence).
MAX_WEIGHTS = 900_000


def weights_path(recipe: str, directory: Path | None = None, seed: int | None = None) -> Path:
    """Where the final weights of ``recipe``'s recorded run live (small models only)."""
    suffix = f"-seed{seed}" if seed is not None else ""
    return (directory or records_dir()) / f"{recipe}{suffix}.weights.pt"


def save_weights(run: Run, directory: Path | None = None) -> Path:
    """The run's final weights, in float16, beside its record (atomically)."""
    if run.params > MAX_WEIGHTS:
        raise RecordError(f"{run.recipe.name} has {run.params:,} parameters; only models of at "
                          f"most {MAX_WEIGHTS:,} keep their weights in the repository")
    state = {k: v.detach().cpu().to(torch.float16) if v.is_floating_point() else v.cpu()
             for k, v in run.model.state_dict().items()}
    seed = None if run.base is not None and run.recipe.seed == run.base.seed else run.recipe.seed
    return atomic_write(weights_path(run.recipe.name, directory, seed),
                        lambda tmp: torch.save(state, tmp))


def load_model(recipe: str, directory: Path | None = None,
               seed: int | None = None) -> torch.nn.Module:
    """The recorded model of ``recipe`` (of its run on ``seed``), in eval mode."""
    from evakit import recipes

    path = weights_path(recipe, directory, seed)
    if not path.is_file():
        raise RecordError(f"no recorded weights for {recipe!r} at {path}: only small models "
                          f"keep them; run `evakit train {recipe} --record` to make them")
    model = recipes.get(recipe).build_model()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in state.items()})
    return model.eval()


def range_path(recipe: str, directory: Path | None = None) -> Path:
    """Where the recorded LR range test of ``recipe`` lives."""
    return (directory or records_dir()) / f"{recipe}-lr-range.json"


def save_range(found: LRFound, git: dict | None = None,
               directory: Path | None = None) -> Path:
    """Write an :class:`evakit.runner.LRFound` as a record beside the recipe's, atomically."""
    d = {"recipe": found.recipe, "lrs": found.result.lrs, "losses": found.result.losses,
         "batch_size": found.batch_size, "device": found.device,
         "device_name": _device_name(found.device), "precision": found.precision,
         "threads": torch.get_num_threads(), "data": asdict(found.data), **(git or git_state()),
         "command": _this_command(),
         "created": datetime.now(UTC).isoformat(timespec="seconds"), "format": FORMAT}
    text = json.dumps(d, indent=1) + "\n"
    return atomic_write(range_path(found.recipe, directory), lambda tmp: tmp.write_text(text))


def load_range(recipe: str, directory: Path | None = None) -> dict:
    """The recorded LR range test of ``recipe``: the sweep (``lrs``, ``losses``) and where it
    ran. Read it with ``train.LRRangeResult(d["lrs"], d["losses"])``."""
    path = range_path(recipe, directory)
    if not path.is_file():
        raise RecordError(f"no LR range test of {recipe!r} in {path.parent}: run "
                          f"`evakit lr-find {recipe} --record` to make one")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RecordError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): re-make it "
                          f"with `evakit lr-find {recipe} --record`") from None
