"""Pair each session source (``sessions/sNN_*.py``, py:percent) with its Colab notebook.

The ``.ipynb`` twin is generated, never edited: the source's cells, no outputs, and in front of
them one cell that installs evakit when the notebook runs in Colab. That cell is written here
only, and the repository URL it installs from is read from ``_config.yml`` (``repository.url``),
the one place the URL lives.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import yaml

INSTALL_TAG = "colab-install"
INSTALL_CODE = '''\
# Colab starts from a bare machine: install evakit there first (elsewhere it is installed).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "evakit @ git+{url}"], check=True)'''


def repository_url(root: Path) -> str:
    """The repository URL from ``_config.yml``."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    return config["repository"]["url"]


def colab_notebook(source: Path, url: str) -> nbformat.NotebookNode:
    """The notebook twin of a py:percent ``source``: install cell first, no outputs."""
    nb = jupytext.read(source, fmt="py:percent")
    install = nbformat.v4.new_code_cell(INSTALL_CODE.format(url=url),
                                        metadata={"tags": [INSTALL_TAG]})
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
    url = repository_url(root)
    stale = []
    for source in sorted((root / "sessions").glob("s[0-9][0-9]_*.py")):
        twin = source.with_suffix(".ipynb")
        if not twin.is_file() or twin.read_text() != render(colab_notebook(source, url)):
            stale.append(source)
    return stale


def sync(root: Path) -> list[Path]:
    """(Re)write every stale twin; returns the notebooks written."""
    url = repository_url(root)
    written = []
    for source in stale_pairs(root):
        twin = source.with_suffix(".ipynb")
        twin.write_text(render(colab_notebook(source, url)))
        written.append(twin)
    return written
