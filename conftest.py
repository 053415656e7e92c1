"""Let ``pytest`` execute the session notebooks from their py:percent sources with nbval.

nbval collects ``.ipynb`` files only and reads them with ``nbformat.read``. Here the sources of
truth are ``sessions/sNN_*.py`` (the ``.ipynb`` twins are generated from them and kept in sync
by ``tests/test_notebooks.py``), so the twins are ignored and each source is handed to nbval,
whose reader is taught to open py:percent files through jupytext. Only files in ``sessions/``
matching ``sNN_*.py`` are collected this way, and never imported as Python test modules.
"""

import re
from pathlib import Path

import jupytext
import nbformat
import nbval.plugin
import pytest

SESSION_SOURCE = re.compile(r"s\d\d_\w+\.py")
collect_ignore_glob = ["sessions/*.ipynb", "_build/*"]


class _PercentAwareNbformat:
    """nbformat, except that ``read`` opens a py:percent source through jupytext."""

    def __getattr__(self, name):
        return getattr(nbformat, name)

    @staticmethod
    def read(path, as_version=4):
        if str(path).endswith(".py"):
            return jupytext.read(path, fmt="py:percent")
        return nbformat.read(path, as_version=as_version)


nbval.plugin.nbformat = _PercentAwareNbformat()


class _NotAModule(pytest.File):
    """A session source named on the command line: collected by nbval only, never imported."""

    def collect(self):
        return []


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent):
    # `pytest sessions/s03_backprop.py` would otherwise also import the page as a test module,
    # running every cell a second time outside the notebook.
    if module_path.parent.name == "sessions" and SESSION_SOURCE.fullmatch(module_path.name):
        return _NotAModule.from_parent(parent, path=module_path)
    return None


def pytest_collect_file(file_path: Path, parent):
    if file_path.parent.name == "sessions" and SESSION_SOURCE.fullmatch(file_path.name):
        return nbval.plugin.IPyNbFile.from_parent(parent, path=file_path)
    return None
