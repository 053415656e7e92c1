"""The session notebooks: paired with their Colab twins, a twin runs in a simulated Colab, and a
cell error is never hidden."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from evakit import notebooks

ROOT = Path(__file__).resolve().parents[1]
GOOD = '# %% [markdown]\n# # Good\n\n# %%\nprint("fine")\n'
BROKEN = '# %% [markdown]\n# # Broken\n\n# %%\nprint("fine")\n\n# %%\nraise RuntimeError("boom")\n'


def test_every_session_has_an_up_to_date_colab_twin():
    sources = sorted((ROOT / "sessions").glob("s[0-9][0-9]_*.py"))
    assert sources, "no session sources found"
    assert notebooks.stale_pairs(ROOT) == [], "run `evakit notebooks` to regenerate the twins"


def test_session_code_lines_fit_the_page_column():
    """A code line over 88 characters scrolls sideways on the site's code column (and in Colab)."""
    long = []
    for source in sorted((ROOT / "sessions").glob("s[0-9][0-9]_*.py")):
        for cell in jupytext.read(source, fmt="py:percent").cells:
            if cell.cell_type == "code":
                long += [f"{source.name}: {line}" for line in cell.source.splitlines()
                         if len(line) > 88]
    assert long == [], "\n".join(long)


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
    url, branch = notebooks.repository(ROOT)
    twin = notebooks.colab_notebook(next((ROOT / "sessions").glob("s00_*.py")), url, branch)
    first = twin.cells[0]
    assert first.cell_type == "code"
    assert set(first.metadata["tags"]) == {notebooks.INSTALL_TAG, "remove-cell"}
    code = first.source
    assert code == notebooks.install_code(url, branch)
    # a shallow clone of the configured repository and branch, unless EVAKIT_REPO_URL says
    # otherwise; installed from the clone and worked in from its sessions folder
    assert f'os.environ.get("EVAKIT_REPO_URL", "{url}")' in code
    assert '"--depth", "1", "--branch", ' + f'"{branch}"' in code
    assert '"pip", "install", "-q", "-e", clone' in code
    assert 'os.chdir(os.path.join(clone, "sessions"))' in code
    assert "google.colab" in code
    assert max(len(line) for line in code.splitlines()) <= 88
    assert all(not c.get("outputs") for c in twin.cells if c.cell_type == "code")


def test_outside_colab_the_install_cell_does_nothing(tmp_path):
    url, branch = notebooks.repository(ROOT)
    code = notebooks.install_code(url, branch) + "\nprint(os.getcwd())\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == str(tmp_path) and list(tmp_path.iterdir()) == []


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
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntestpaths = sessions\naddopts = --nbval-lax --nbval-current-env "
        "-p no:cacheprovider\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: sessions/s99_demo\n")
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "s99_demo.py").write_text(source)
    notebooks.sync(tmp_path)
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
    else:  # the page's download menu offers its Colab twin (_ext/ipynb_download.py)
        html = project / "_build" / "html"
        offered = html / "_sources" / "sessions" / "s99_demo.ipynb"
        assert offered.read_text() == (project / "sessions" / "s99_demo.ipynb").read_text()
        page = (html / "sessions" / "s99_demo.html").read_text()
        assert 'href="../_sources/sessions/s99_demo.ipynb"' in page
        assert "download-notebook-button" in page and "evakit-course" not in page


def _colab_check():
    """``.ci/colab_check.py`` as a module (its folder is no package)."""
    spec = importlib.util.spec_from_file_location("colab_check", ROOT / ".ci" / "colab_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def _overlay_venv(dest: Path) -> Path:
    """A venv of its own (pip installs into it) that sees this environment's packages.

    It stands in for ``colab_check.make_venv`` (minutes to install torch): its site-packages
    lists ours in a ``.pth``. Our ``.pth`` files are not processed there, so this checkout's
    editable evakit is not importable in it: the install cell's clone is the only evakit.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_path('purelib'))"], capture_output=True,
                             text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (Path(purelib) / "_overlay.pth").write_text("\n".join(ours) + "\n")
    return python


READS_A_RECORD = """\
# %%
from pathlib import Path

import evakit
from evakit import records

here = Path.cwd()
assert here.name == "sessions" and (here.parent / "_toc.yml").is_file(), here
assert Path(evakit.__file__).resolve().is_relative_to(here.parent.resolve()), evakit.__file__
assert records.records_dir().resolve() == (here.parent / "book" / "records").resolve()
print(records.load("s01/rf-net").provenance())
"""


def test_a_twin_runs_in_a_simulated_colab(tmp_path):
    """The machinery of .ci/colab_check.py on a one-cell twin that reads a record: the install
    cell clones the committed HEAD (shallow), installs evakit from the clone and works there."""
    check = _colab_check()
    url, branch = notebooks.repository(ROOT)
    repo = check.local_repository(ROOT, tmp_path / "repo.git", branch)
    env = check.colab_env(check.colab_stub(tmp_path / "stub"), repo, tmp_path / "home", None)
    source = tmp_path / "s99_record.py"
    source.write_text(READS_A_RECORD)
    twin = source.with_suffix(".ipynb")
    twin.write_text(notebooks.render(notebooks.colab_notebook(source, url, branch)))
    python = _overlay_venv(tmp_path / "venv")

    outcome = check.run_twin(python, twin, tmp_path / "run", env, timeout=600)
    assert outcome.ok, outcome.error[-3000:]
    clone = tmp_path / "run" / "s99_record" / notebooks.CLONE_DIR
    assert (clone / ".git" / "shallow").is_file()
    executed = nbformat.read(clone.parent / "s99_record.executed.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "s01/rf-net: " in printed and " epochs " in printed, printed


def test_a_failing_cell_fails_the_simulated_colab(tmp_path):
    check = _colab_check()
    twin = tmp_path / "s99_broken.ipynb"
    source = tmp_path / "s99_broken.py"
    source.write_text('# %%\nraise RuntimeError("boom")\n')
    twin.write_text(notebooks.render(jupytext.read(source, fmt="py:percent")))
    env = check.colab_env(check.colab_stub(tmp_path / "stub"), "file:///nowhere",
                          tmp_path / "home", None)
    outcome = check.run_twin(Path(sys.executable), twin, tmp_path / "run", env, timeout=300)
    assert not outcome.ok and "RuntimeError: boom" in outcome.error


def test_the_simulated_colab_says_when_the_disk_is_too_full(monkeypatch, capsys):
    """A full scratch disk stops the check before pip does, in one sentence that says so."""
    check = _colab_check()
    monkeypatch.setattr(check.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        total=10 * 1024**3, used=9 * 1024**3, free=1024**3))
    assert check.main(["s00"]) == 2
    said = capsys.readouterr().err.strip()
    assert "1.0 GB free" in said and "needs about 8 GB" in said, said
