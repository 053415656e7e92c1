"""The session notebooks: paired with their Colab twins, and a cell error is never hidden."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evakit import notebooks

ROOT = Path(__file__).resolve().parents[1]
GOOD = '# %% [markdown]\n# # Good\n\n# %%\nprint("fine")\n'
BROKEN = '# %% [markdown]\n# # Broken\n\n# %%\nprint("fine")\n\n# %%\nraise RuntimeError("boom")\n'


def test_every_session_has_an_up_to_date_colab_twin():
    sources = sorted((ROOT / "sessions").glob("s[0-9][0-9]_*.py"))
    assert sources, "no session sources found"
    assert notebooks.stale_pairs(ROOT) == [], "run `evakit notebooks` to regenerate the twins"


def test_stale_twin_is_detected(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "s99_demo.py").write_text(GOOD)
    assert notebooks.stale_pairs(tmp_path) == [tmp_path / "sessions" / "s99_demo.py"]
    notebooks.sync(tmp_path)
    assert notebooks.stale_pairs(tmp_path) == []
    (tmp_path / "sessions" / "s99_demo.py").write_text(GOOD + "\n# %%\nprint(2)\n")
    assert notebooks.stale_pairs(tmp_path) != []


def test_twin_starts_with_the_colab_install_from_the_configured_repository():
    url = notebooks.repository_url(ROOT)
    twin = notebooks.colab_notebook(next((ROOT / "sessions").glob("s00_*.py")), url)
    first = twin.cells[0]
    assert first.cell_type == "code" and f"git+{url}" in first.source
    assert "google.colab" in first.source
    assert all(not c.get("outputs") for c in twin.cells if c.cell_type == "code")


def test_repository_url_lives_in_config_only():
    url = notebooks.repository_url(ROOT)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    holders = [f for f in tracked if not f.endswith(".ipynb") and (ROOT / f).is_file()
               and url in (ROOT / f).read_text(errors="ignore")]
    assert holders == ["_config.yml"]


def _mini_project(tmp_path: Path, source: str) -> Path:
    shutil.copy(ROOT / "conftest.py", tmp_path)
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntestpaths = sessions\naddopts = --nbval-lax --nbval-current-env "
        "-p no:cacheprovider\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: sessions/s99_demo\n")
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "s99_demo.py").write_text(source)
    return tmp_path


@pytest.mark.parametrize("source, fails", [(GOOD, False), (BROKEN, True)])
def test_a_cell_error_fails_pytest(tmp_path, source, fails):
    project = _mini_project(tmp_path, source)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=project,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode != 0) == fails, done.stdout[-2000:]
    if fails:
        assert "boom" in done.stdout


@pytest.mark.parametrize("source, fails", [(GOOD, False), (BROKEN, True)])
def test_a_cell_error_fails_the_book_build(tmp_path, source, fails):
    project = _mini_project(tmp_path, source)
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
    done = subprocess.run([jb, "build", str(project), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert (done.returncode != 0) == fails, output[-3000:]
    if fails:
        assert "boom" in output
