"""Open every page of the built book in headless Chromium and check what a reader would see.

For each page in _toc.yml: the page loads, shows its title (an h1 that is also the window
title), has no error output (no stderr stream, no traceback), and a session page shows its
figures (every figure's image file exists and decodes to a real picture). Pages with maths must
have it typeset by the MathJax served with the site. A screenshot of the session-0 page is kept
in the build folder. Usage: python .ci/check_site.py [BUILD_HTML_DIR]
"""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--virtual-time-budget=8000"]


class Page(HTMLParser):
    """What the checks need from a rendered page's DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.h1, self.images = "", "", []
        self._in = None
        self.mathjax = 0
        self.colab = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("title", "h1") and not getattr(self, tag):
            self._in = tag
        if tag == "img" and "_images/" in a.get("src", ""):  # figures the notebooks drew
            self.images.append(a["src"])
        if tag == "mjx-container":
            self.mathjax += 1
        if tag == "a" and "colab.research.google.com" in a.get("href", ""):
            self.colab.append(a["href"])

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            setattr(self, self._in, getattr(self, self._in) + data)


def toc_pages(toc: dict) -> list[str]:
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            pages.append(chapter["file"])
    return pages


def check(html_dir: Path) -> list[str]:
    problems = []
    pages = toc_pages(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    for page in pages:
        path = html_dir / f"{page}.html"
        if not path.is_file():
            problems.append(f"{page}: {path} was not built")
            continue
        dom = subprocess.run([*CHROMIUM, "--dump-dom", path.as_uri()], capture_output=True,
                             text=True, timeout=120).stdout
        p = Page()
        p.feed(dom)
        heading = p.h1.replace("#", "").strip()
        where = f"{page}:"
        if not dom.strip():
            problems.append(f"{where} Chromium returned no DOM")
            continue
        if not heading or heading not in p.title:
            problems.append(f"{where} title {p.title!r} does not show heading {heading!r}")
        if "output stderr" in dom or "Traceback (most recent call last)" in dom:
            problems.append(f"{where} shows error output")
        source = (ROOT / f"{page}.py") if (ROOT / f"{page}.py").is_file() else ROOT / f"{page}.md"
        if _has_maths(source.read_text()) and p.mathjax == 0:
            problems.append(f"{where} has maths but MathJax typeset none of it")
        if page.startswith("sessions/"):
            problems += _check_session(where, page, path, p)
        print(f"{page}: title {heading!r}, {len(p.images)} figures, {p.mathjax} formulas")
    return problems


def _has_maths(text: str) -> bool:
    if "# %%" in text:          # a py:percent session: its markdown cells are the prose
        cells = re.split(r"(?m)^# %%", text)
        text = "\n".join(c for c in cells if c.startswith(" [markdown]"))
    prose = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.S)  # code is not maths
    return "$" in prose


def _check_session(where: str, page: str, path: Path, p: Page) -> list[str]:
    problems = []
    if not p.images:
        problems.append(f"{where} a session page without figures")
    for src in p.images:
        image = (path.parent / src).resolve()
        try:
            with Image.open(image) as im:
                im.load()
                darkest, brightest = im.convert("L").getextrema()
                if min(im.size) < 50 or darkest == brightest:
                    problems.append(f"{where} figure {src} is blank or tiny")
        except (OSError, ValueError):
            problems.append(f"{where} figure {src} does not load")
    stem = page.split("/")[-1]
    if not any(re.search(rf"sessions/{stem}\.ipynb$", href) for href in p.colab):
        problems.append(f"{where} no Colab button pointing at sessions/{stem}.ipynb "
                        f"(found {p.colab})")
    return problems


def screenshot(html_dir: Path) -> Path:
    page = next(html_dir.glob("sessions/s00_*.html"))
    out = html_dir.parent / "screenshot-s00.png"
    subprocess.run([*CHROMIUM, "--window-size=1280,2000", f"--screenshot={out}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return out


def main() -> int:
    html_dir = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "_build" / "html"
    problems = check(html_dir)
    shot = screenshot(html_dir)
    print("screenshot of session 0:", shot)
    for problem in problems:
        print("PROBLEM", problem)
    print(f"site check: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
