"""Pair each session source (``sessions/sNN_*.py``, py:percent) with its Colab notebook.

The ``.ipynb`` twin is generated, never edited: the source's cells, no outputs, and in front of
them one cell that, in Colab only, clones the repository, installs evakit from the clone and
works in the clone's ``sessions`` folder, so that a page reads its records, workbooks and images
exactly as in the book build (jupyter-book executes each page in its own folder). That cell is
written here only; the repository URL and branch it clones are read from ``_config.yml``
(``repository.url``, ``repository.branch``), the one place the URL lives, and
``$EVAKIT_REPO_URL`` overrides the URL (CI points it at a local clone).
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import yaml

INSTALL_TAG = "colab-install"
# remove-cell: the book renders the .py source, which lacks this cell; should the twin ever be
# rendered, the cell stays hidden.
INSTALL_TAGS = [INSTALL_TAG, "remove-cell"]
CLONE_DIR = "evakit-course"  # not "evakit": a folder of the package's name would shadow it
INSTALL_CODE = '''\
# Colab starts from a bare machine: clone the course, install evakit from the clone and
# work in its sessions folder as the book does (the pages read the recorded runs and the
# workbooks in it). Elsewhere this cell does nothing.
import os
import subprocess
import sys

try:
    import google.colab  # noqa: F401  (only Colab has it)
except ImportError:
    pass
else:
    clone = "{clone}"
    if not os.path.isfile("../_toc.yml"):  # not yet inside the clone
        url = os.environ.get("EVAKIT_REPO_URL", "{url}")
        if not os.path.isdir(clone):
            subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "{branch}",
                            url, clone], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", clone],
                       check=True)
        os.chdir(os.path.join(clone, "sessions"))
        sys.path.insert(0, os.path.abspath(".."))  # importable now, no restart needed'''


def repository(root: Path) -> tuple[str, str]:
    """The repository URL and branch from ``_config.yml``."""
    config = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    return config["url"], config.get("branch") or "main"


def repository_url(root: Path) -> str:
    """The repository URL from ``_config.yml``."""
    return repository(root)[0]


def install_code(url: str, branch: str = "main") -> str:
    """The Colab install cell that clones ``url`` at ``branch``."""
    return INSTALL_CODE.format(url=url, branch=branch, clone=CLONE_DIR)


def colab_notebook(source: Path, url: str, branch: str = "main") -> nbformat.NotebookNode:
    """The notebook twin of a py:percent ``source``: install cell first, no outputs."""
    nb = jupytext.read(source, fmt="py:percent")
    install = nbformat.v4.new_code_cell(install_code(url, branch),
                                        metadata={"tags": list(INSTALL_TAGS)})
    nb.cells.insert(0, install)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata["accelerator"] = "GPU"
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """A notebook as the exact text written to disk."""
    return nbformat.writes(nb) + "\n"


def stale_pairs(root: Path) -> list[Path]:
    """Sources whose ``.ipynb`` twin is missing or differs from what :func:`sync` writes."""
    url, branch = repository(root)
    stale = []
    for source in sorted((root / "sessions").glob("s[0-9][0-9]_*.py")):
        twin = source.with_suffix(".ipynb")
        if not twin.is_file() or twin.read_text() != render(colab_notebook(source, url, branch)):
            stale.append(source)
    return stale


def sync(root: Path) -> list[Path]:
    """(Re)write every stale twin; returns the notebooks written."""
    url, branch = repository(root)
    written = []
    for source in stale_pairs(root):
        twin = source.with_suffix(".ipynb")
        twin.write_text(render(colab_notebook(source, url, branch)))
        written.append(twin)
    return written
