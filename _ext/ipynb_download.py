"""Offer each session's Colab twin (``sessions/sNN_*.ipynb``) in its page's download menu.

The book renders the py:percent sources, so sphinx-book-theme's download menu offers the ``.py``
and a PDF. The theme adds a ``.ipynb`` entry when the page context names one
(``ipynb_source``, a path under ``_build/html/_sources``); it does so itself only for MyST
Markdown notebooks. This extension copies the twin there and names it, before the theme builds
its header buttons (they run at priority 501).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx


def offer_twin(app: Sphinx, pagename: str, templatename: str, context: dict,
               doctree) -> None:
    """For a page built from ``X.py`` beside a twin ``X.ipynb``: put the twin in the menu."""
    if doctree is None or pagename not in app.env.all_docs:
        return
    source = Path(app.env.doc2path(pagename))
    twin = source.with_suffix(".ipynb")
    if source.suffix != ".py" or not twin.is_file():
        return
    name = f"{pagename}.ipynb"
    target = Path(app.outdir) / "_sources" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(twin, target)
    context["ipynb_source"] = name


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", offer_twin, priority=500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
