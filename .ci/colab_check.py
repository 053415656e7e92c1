#!/usr/bin/env python3
"""Colab end to end, without Colab: every session's ``.ipynb`` twin runs as a learner's would.

A learner's Colab machine has Python, torch and torchvision, and nothing of this repository.
The check rebuilds that here, outside the checkout:

1. the package is built as a wheel (``pip wheel . --no-deps``) and installed into a fresh venv
   that holds torch and torchvision only (Colab's own torch; installed from this machine's
   disk, nothing reused from ``.venv``), with ``nbclient`` and ``ipykernel`` to run notebooks;
2. the checkout's committed HEAD is pushed, as the branch ``_config.yml`` names, into a bare
   repository in a temporary folder, and ``EVAKIT_REPO_URL`` points the install cell at it
   (a ``file://`` URL, so that the cell's ``git clone --depth 1`` really is shallow);
3. a stub ``google.colab`` on ``PYTHONPATH`` makes the install cell believe it is in Colab;
4. each twin is copied alone into an empty folder and executed there with nbclient: its install
   cell clones the repository, ``pip install -e``'s it into the venv and moves into the clone's
   ``sessions`` folder, and the page then runs as in the book build.

``EVAKIT_DATA`` stands in for the downloads Colab makes (``../shared/data`` when it exists) and
``EVAKIT_FAST=1`` keeps the runs short. One line per session (name, seconds, ok/FAILED); any
failure shows the failing cell's error and makes the exit status 1.

Usage: ``.venv/bin/python .ci/colab_check.py [s01 s04 ...]`` (no names: every session).
The functions are importable (``tests/test_notebooks.py`` runs a one-cell notebook through
them); ``--execute NOTEBOOK`` is the step that runs inside the kernel's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The torch Colab brings; the venv's only packages before the wheel. Both come from this
# machine's disk (pip's configured local index), so the fresh install costs no download.
BASE_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1"]
RUNNER_PACKAGES = ["nbclient", "ipykernel"]
CELL_TIMEOUT_S = 900
NOTEBOOK_TIMEOUT_S = 1800
KERNEL_NAME = "colab-sim"
# torch's CUDA wheels and their nvidia-* dependencies fill about 6 GB once unpacked; with the
# clones, the pip cache and the kernels' scratch, the fresh venv needs this much free.
NEEDED_FREE_BYTES = 8 * 1024**3
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Outcome:
    """How one notebook ran."""

    name: str
    seconds: float
    ok: bool
    error: str = ""


def _run(cmd: list[str | Path], quiet: bool = False) -> None:
    """Run ``cmd``; ``quiet`` hides its output unless it fails."""
    cmd = [str(c) for c in cmd]
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode:
        if quiet:
            print(_tail(done.stdout + done.stderr), file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, cmd)


def build_wheel(checkout: Path, dest: Path) -> Path:
    """The evakit wheel built from ``checkout`` (its working tree) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dest, checkout],
         quiet=True)
    (wheel,) = dest.glob("evakit-*.whl")
    return wheel


def make_venv(dest: Path, wheel: Path) -> Path:
    """A fresh venv at ``dest``: torch and torchvision, then ``wheel``; its Python."""
    _run([sys.executable, "-m", "venv", dest])
    python = dest / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q"]
    _run([*pip, *BASE_PACKAGES], quiet=True)
    _run([*pip, wheel, *RUNNER_PACKAGES], quiet=True)  # the other dependencies: from PyPI
    return python


def local_repository(checkout: Path, dest: Path, branch: str) -> str:
    """A bare repository at ``dest`` whose ``branch`` is the checkout's HEAD; its file:// URL."""
    _run(["git", "init", "-q", "--bare", dest])
    _run(["git", "-C", checkout, "push", "-q", dest.resolve().as_uri(),
          f"HEAD:refs/heads/{branch}"])
    return dest.resolve().as_uri()


def colab_stub(dest: Path) -> Path:
    """A folder holding a stub ``google.colab``, for ``PYTHONPATH``.

    ``google`` stays a namespace package (no ``__init__.py``), so that an installed
    ``google.protobuf`` and the like still import beside the stub.
    """
    package = dest / "google" / "colab"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""Stand-in for Colab: its presence says "Colab"."""\n')
    return dest


def colab_env(stub: Path, repo_url: str, home: Path, data: Path | None) -> dict[str, str]:
    """The environment of a simulated Colab kernel.

    A home of its own (nothing cached from earlier runs), no evakit settings from the caller's
    environment, the stub on ``PYTHONPATH`` and the install cell pointed at ``repo_url``.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EVAKIT_", "PYTHON", "VIRTUAL_ENV", "JUPYTER", "XDG_", "CONDA"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), PYTHONPATH=str(stub), EVAKIT_REPO_URL=repo_url, EVAKIT_FAST="1",
               NO_ALBUMENTATIONS_UPDATE="1", PYTHONUNBUFFERED="1", MPLBACKEND="agg")
    if data is not None:
        env["EVAKIT_DATA"] = str(data)
    return env


def run_twin(python: Path, notebook: Path, workdir: Path, env: dict[str, str],
             timeout: float = NOTEBOOK_TIMEOUT_S) -> Outcome:
    """Copy ``notebook`` alone into a new empty folder under ``workdir`` and execute it there.

    The execution runs in ``python`` (``--execute`` below), whose kernel is the same Python.
    """
    name = notebook.stem
    folder = workdir / name
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / notebook.name)
    start = time.monotonic()
    try:
        done = subprocess.run([str(python), str(Path(__file__).resolve()), "--execute",
                               notebook.name], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome(name, time.monotonic() - start, False, f"timed out after {timeout:.0f} s")
    seconds = time.monotonic() - start
    if done.returncode == 0:
        return Outcome(name, seconds, True)
    return Outcome(name, seconds, False, ANSI.sub("", done.stdout + done.stderr).strip())


def execute(notebook: Path, cell_timeout: float = CELL_TIMEOUT_S) -> int:
    """Execute ``notebook`` in its folder with nbclient, in a kernel of this very Python.

    Writes the executed notebook beside it (``*.executed.ipynb``); on a cell error prints the
    cell and its traceback and returns 1.
    """
    import nbclient
    import nbformat

    kernels = Path(tempfile.mkdtemp(prefix="colab-kernel-"))
    spec = kernels / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simulated Colab)", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(kernels)
    notebook = notebook.resolve()
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=cell_timeout, kernel_name=KERNEL_NAME,
                                     resources={"metadata": {"path": str(notebook.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        print(err)
        return 1
    finally:
        nbformat.write(nb, notebook.with_suffix(".executed.ipynb"))
        shutil.rmtree(kernels, ignore_errors=True)
    return 0


def shared_data(checkout: Path) -> Path | None:
    """``../shared/data`` beside the checkout, when it exists."""
    data = checkout.parent / "shared" / "data"
    return data.resolve() if data.is_dir() else None


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sessions", nargs="*", help="session prefixes (e.g. s01); default all")
    parser.add_argument("--execute", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute:
        return execute(args.execute)

    sys.path.insert(0, str(ROOT))
    from evakit import notebooks

    _, branch = notebooks.repository(ROOT)
    twins = sorted((ROOT / "sessions").glob("s[0-9][0-9]_*.ipynb"))
    if args.sessions:
        twins = [t for t in twins if any(t.name.startswith(s) for s in args.sessions)]
    if not twins:
        print("no session notebooks matched", file=sys.stderr)
        return 2
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout.strip()
    data = shared_data(ROOT)
    print(f"clones run the committed HEAD {head}"
          + (" (the working tree has uncommitted changes: not in the clones)" if dirty else ""))
    print(f"EVAKIT_DATA={data or '(unset: datasets download)'}")

    scratch = Path(tempfile.gettempdir())
    free = shutil.disk_usage(scratch).free
    if free < NEEDED_FREE_BYTES:
        print(f"colab check: {scratch} has {free / 1024**3:.1f} GB free, and the fresh venv with "
              f"Colab's torch needs about {NEEDED_FREE_BYTES / 1024**3:.0f} GB: free some space "
              "there or point TMPDIR at a disk that has it.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        tmp = Path(tmp)
        start = time.monotonic()
        wheel = build_wheel(ROOT, tmp / "wheel")
        python = make_venv(tmp / "venv", wheel)
        url = local_repository(ROOT, tmp / "repo.git", branch)
        env = colab_env(colab_stub(tmp / "colab-stub"), url, tmp / "home", data)
        print(f"wheel, fresh venv and local repository: {time.monotonic() - start:.0f} s")
        outcomes = []
        for twin in twins:
            outcome = run_twin(python, twin, tmp / "run", env)
            outcomes.append(outcome)
            print(f"{outcome.name:32} {outcome.seconds:6.0f} s  "
                  f"{'ok' if outcome.ok else 'FAILED'}", flush=True)
        failed = [o for o in outcomes if not o.ok]
        for outcome in failed:
            print(f"\n--- {outcome.name}: the failing cell\n{_tail(outcome.error)}")
        print(f"\ncolab check: {len(outcomes) - len(failed)} of {len(outcomes)} sessions ran "
              f"in a simulated Colab, {time.monotonic() - start:.0f} s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
