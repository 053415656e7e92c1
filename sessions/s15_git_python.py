# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Session 1.5 — Git & Python 101
#
# The tools every later session assumes. The first half is **git**, the program that
# keeps the history of a project: every command on this page really runs, in a
# temporary folder, and its output is printed under it — a small project is created,
# changed, branched, merged, pushed to a "remote" and pulled back, rewound to an old
# version, and finally contributed to the way you would contribute to this course: fork,
# branch, push, pull request. The second half is the **Python** the notebooks use:
# comprehensions, functions, classes and dataclasses, virtual environments, and how to
# read a traceback.
#
# **Objectives.** After this session you can
# - create a repository, commit changes and read its history and diffs;
# - work on a branch and merge it back;
# - push to and pull from a remote, and contribute through a fork and a pull request;
# - look at and restore an old version, and undo a commit without rewriting history;
# - read and write the Python of the course: comprehensions, functions with keyword
#   arguments, classes, dataclasses; create a virtual environment.
#
# ```{note}
# **FAST mode** changes nothing on this page: it trains nothing and loads no dataset. The
# git commands run in a temporary folder that is deleted at the end, so running the page
# leaves no trace on your machine.
# ```

# %%
import evakit

S = evakit.setup(seed=1)

# %%
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from IPython.display import Markdown, display

workspace = tempfile.TemporaryDirectory()      # deleted in the last cell
root = Path(workspace.name)
# A page that prints the same on every machine: no global git settings of this machine,
# and a clock that starts at the same instant and ticks a minute per command.
ISOLATED = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
minutes = iter(range(10_000))


def git(*args: str, cwd: str = "project") -> str:
    """Run `git args` in the workspace folder `cwd`; print the command, its output."""
    when = f"2025-01-01T{9 + (m := next(minutes)) // 60:02d}:{m % 60:02d}:00+00:00"
    env = {**ISOLATED, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    done = subprocess.run(["git", *args], cwd=root / cwd, env=env, capture_output=True,
                          text=True)
    output = (done.stdout + done.stderr).rstrip()
    # a diff's "index" line names the files' content hashes: left out, as hashes are
    output = "\n".join(line for line in output.splitlines()
                       if not line.startswith("index "))
    print(f"{cwd}$ git {shlex.join(args)}" + (f"\n{output}" if output else ""))
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed with status {done.returncode}")
    return output


def write(path: str, text: str) -> None:
    """Create or overwrite a file of the workspace (what you would do in an editor)."""
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    print(f"(wrote {path})")


# %% [markdown]
# ## 1. Why version control
#
# A deep-learning project changes all the time: a new layer, another learning rate, a
# fixed bug. Git records **snapshots** of a folder. A **commit** is one snapshot with a
# message and a pointer to the commit before it, so the project's history is a chain of
# commits you can read, compare and go back to. A **branch** is a movable name for a line
# of commits; a **remote** (GitHub, say) is a copy of the repository somewhere else.
#
# ## 2. A repository: init, config, add, commit, log
#
# `git init` turns a folder into a repository (`-b main` names its first branch). Every
# commit records an author, so tell git who you are — here for this repository only;
# `git config --global` would set it for every repository of your user.

# %%
(root / "project").mkdir()
git("init", "-q", "-b", "main")
git("config", "user.name", "Ada Lovelace")
git("config", "user.email", "ada@example.com")
write("project/README.md", "# Digits\nA small MNIST classifier.\n")
write("project/train.py", "EPOCHS = 10\nBATCH_SIZE = 64\nprint('training')\n")
git("status", "--short");

# %% [markdown]
# `??` marks files git does not track yet. Committing is two steps: `git add` puts
# changes in the **staging area** (what the next commit will contain), `git commit`
# records them. The split lets you commit some changes and keep others for later.

# %%
git("add", "README.md", "train.py")
git("status", "--short")
git("commit", "-q", "-m", "Train a first MNIST classifier")
git("log", "--format=%s (%an)");

# %% [markdown]
# `A` means added to the staging area. `git log` lists the commits, newest first; a
# format of `%s` prints each one's subject line, `%an` its author. (Plain `git log` also
# shows each commit's *hash* — a 40-character name like `e96f1e9…` that identifies it —
# and its date; this page leaves them out because they differ on every machine.)
#
# ## 3. What changed: diff
#
# Change a file and `git diff` shows the change line by line: `-` lines were removed,
# `+` lines added, the others are context. `git diff --staged` shows what is staged
# instead; `git commit -a` stages every change of tracked files and commits at once.

# %%
write("project/train.py", "EPOCHS = 15\nBATCH_SIZE = 64\nprint('training')\n")
git("diff")
git("commit", "-q", "-a", "-m", "Train for 15 epochs: still improving at 10")
git("log", "--format=%s");

# %% [markdown]
# A good message says *why*: "Train for 15 epochs" is visible in the diff; "still
# improving at 10" is not.
#
# ## 4. Branches and merging
#
# An experiment goes on a **branch**, so that `main` keeps working while you try it.
# `git switch -c NAME` creates a branch and moves to it; commits made there leave `main`
# untouched. Meanwhile `main` can move on too (here: a README fix). `git merge` then
# brings the branch's commits into `main`; when both sides changed, git makes a *merge
# commit* with two parents.

# %%
git("switch", "-q", "-c", "bigger-batch")
write("project/train.py", "EPOCHS = 15\nBATCH_SIZE = 128\nprint('training')\n")
git("commit", "-q", "-a", "-m", "Batch size 128: twice the images per step")
git("switch", "-q", "main")
write("project/README.md", "# Digits\nA small MNIST classifier (PyTorch).\n")
git("commit", "-q", "-a", "-m", "README: say which library")
git("merge", "-q", "--no-edit", "bigger-batch")
git("log", "--graph", "--format=%s")
git("branch");

# %% [markdown]
# The graph shows the two lines of work and the merge commit that joins them; `*` in
# `git branch` marks the branch you are on. Had both sides changed the *same* lines, git
# would stop with a **conflict**: it writes both versions into the file between `<<<<<<<`
# and `>>>>>>>` markers, you edit the file to the version you want, then `git add` it and
# `git commit`.
#
# Underneath, that history is a graph: every commit points to its parent, a merge commit to
# two. Drawn from `git log` of the project (the first-parent line of `main` at the bottom):

# %%
import matplotlib.pyplot as plt


def commit_graph(cwd: str = "project", branch: str = "main"):
    """Every commit as a dot with an arrow to each parent; returns the figure."""
    def lines(*args: str) -> list[str]:
        return subprocess.run(["git", *args], cwd=root / cwd, env=ISOLATED, check=True,
                              capture_output=True, text=True).stdout.splitlines()
    commits = [line.split("|", 1) for line in
               lines("log", "--all", "--topo-order", "--reverse", "--format=%H %P|%s")]
    trunk = set(lines("rev-list", "--first-parent", branch))
    at = {ids.split()[0]: (x, 0 if ids.split()[0] in trunk else 1)
          for x, (ids, _) in enumerate(commits)}
    fig, ax = plt.subplots(figsize=(2.1 * len(commits) + 1, 2.6))
    for ids, subject in commits:
        child, *parents = ids.split()
        for parent in parents:
            ax.annotate("", at[parent], at[child],
                        arrowprops={"arrowstyle": "->", "color": "grey", "shrinkA": 9,
                                    "shrinkB": 9})
        x, y = at[child]
        ax.plot(x, y, "o", ms=14, color="C0" if y == 0 else "C1")
        label_y = y - 0.35 if y == 0 else y + 0.3
        ax.text(x, label_y, subject[:20], ha="center", fontsize=8)
    ax.set_ylim(-0.8, 1.7)
    ax.set_xlim(-0.7, len(commits) - 0.3)
    ax.axis("off")
    ax.set_title(f"commits of the project: {branch} (blue) and the branch merged into "
                 "it (orange); arrows point to parents", fontsize=9)
    return fig


commit_graph();

# %% [markdown]
# ## 5. Going back to an old version
#
# `HEAD` is the commit you are on; `HEAD~1` its parent, `HEAD~2` the one before. Three
# ways back, from the most gentle:
#
# - **look**: `git show COMMIT:FILE` prints a file as it was;
# - **restore one file**: `git restore --source=COMMIT FILE` puts the old version in the
#   working folder (commit it, or `git restore FILE` to undo);
# - **undo a commit**: `git revert COMMIT` makes a *new* commit that reverses it — the
#   history keeps both, so nothing others already have is rewritten. (Below,
#   `--no-commit` stages the reversal and `git commit --no-edit` records it with git's
#   message, `Revert "…"`; plain `git revert COMMIT` does both, after opening an editor
#   for the message.)
#
# (`git switch --detach COMMIT` moves the whole folder to an old commit to run it;
# `git switch main` comes back.)

# %%
git("show", "HEAD~3:train.py")
git("restore", "--source=HEAD~3", "train.py")
git("diff")
git("restore", "train.py")
git("status", "--short")
git("revert", "--no-commit", "HEAD~1")
git("commit", "-q", "--no-edit")
git("log", "--format=%s")
print("README.md now:", (root / "project/README.md").read_text(), sep="\n")

# %% [markdown]
# `HEAD~3` is the first commit (`EPOCHS = 10`); restoring it and restoring back left
# nothing changed. The revert undid the README commit with a commit of its own — the
# README says "(PyTorch)" no more — while the batch-size change stays.
#
# ## 6. Remotes: push and pull
#
# A remote is another copy of the repository, usually on GitHub. Here a **bare**
# repository (one with history but no working folder — what a server keeps) in the same
# temporary folder plays GitHub, so everything runs without a network. `git push` sends
# your commits to it; a colleague `git clone`s it, commits and pushes; you `git pull`
# their work.

# %%
git("init", "-q", "--bare", "-b", "main", "github.git", cwd=".")
git("remote", "add", "origin", "../github.git")
git("remote", "-v")
git("push", "-q", "-u", "origin", "main")
git("clone", "-q", "github.git", "colleague", cwd=".")
git("config", "user.name", "Grace Hopper", cwd="colleague")
git("config", "user.email", "grace@example.com", cwd="colleague")
write("colleague/.gitignore", "data/\n*.pt\n.venv/\n")
git("add", ".gitignore", cwd="colleague")
git("commit", "-q", "-m", "Ignore data, checkpoints and the virtual environment",
    cwd="colleague")
git("push", "-q", cwd="colleague")
git("pull", "-q")
git("log", "--format=%s (%an)");

# %% [markdown]
# The colleague's commit arrived with `git pull` (which is `git fetch`, download, then
# `git merge`). Her `.gitignore` lists what never belongs in git: datasets, checkpoints,
# the virtual environment — large, generated, or machine-specific. Git now ignores them:

# %%
write("project/data/mnist.npz", "(a dataset)")
write("project/model.pt", "(a checkpoint)")
write("project/notes.md", "ideas\n")
git("status", "--short");

# %% [markdown]
# Only `notes.md` is offered for committing.
#
# ## 7. Contributing: fork, branch, pull request
#
# You cannot push to a repository you do not own, such as this course's. The
# **fork-and-submit** workflow gets your change in anyway:
#
# 1. **Fork** on GitHub (the *Fork* button): a copy of the repository under your account.
# 2. **Clone your fork**; add the original as a second remote, conventionally
#    `upstream`.
# 3. **Branch**, commit your change, and **push the branch to your fork** (`origin`).
# 4. Open a **pull request** on GitHub (*Compare & pull request*, or
#    `gh pr create`): a request that the maintainers merge your branch. They review it,
#    may ask for changes (push more commits to the same branch; the pull request
#    follows), and merge it.
# 5. **Stay up to date**: `git fetch upstream` and `git merge upstream/main` (or
#    `git pull upstream main`) bring in what others merged meanwhile.
#
# The same steps, run here: `github.git` plays the course's repository, and a bare clone
# of it plays your fork — which is what the Fork button makes on GitHub's side.

# %%
git("clone", "-q", "--bare", "github.git", "my-fork.git", cwd=".")
git("clone", "-q", "my-fork.git", "contribution", cwd=".")
git("config", "user.name", "Alan Turing", cwd="contribution")
git("config", "user.email", "alan@example.com", cwd="contribution")
git("remote", "add", "upstream", "../github.git", cwd="contribution")
git("switch", "-q", "-c", "fix-readme", cwd="contribution")
write("contribution/README.md", "# Digits\nA small MNIST classifier, 99 % accurate.\n")
git("commit", "-q", "-a", "-m", "README: state the accuracy", cwd="contribution")
git("push", "-q", "-u", "origin", "fix-readme", cwd="contribution")
git("branch", cwd="my-fork.git")
git("branch", cwd="github.git");

# %% [markdown]
# The branch `fix-readme` is on your fork, not on the course's repository: that is where
# the pull request takes it from. While it waits for review, the course moves on; keeping
# up with `upstream` is one fetch and one merge:

# %%
git("commit", "-q", "--allow-empty", "-m", "Course: a commit merged meanwhile",
    cwd="colleague")
git("push", "-q", cwd="colleague")
git("switch", "-q", "main", cwd="contribution")
git("fetch", "-q", "upstream", cwd="contribution")
git("merge", "-q", "upstream/main", cwd="contribution")
git("log", "-n", "2", "--format=%s", cwd="contribution");

# %% [markdown]
# ## 8. The Python the course uses
#
# ### Virtual environments
#
# A **virtual environment** is a folder holding its own Python packages, so each project
# gets the versions it needs without touching the others. To work on this course on your
# own machine (in Colab the first cell of every session installs what it needs):
#
# ```bash
# python -m venv .venv          # create the environment in the folder .venv
# source .venv/bin/activate      # use it here (Windows: .venv\Scripts\activate)
# pip install -e ".[test]"       # evakit, editable, with its test tools
# EVAKIT_FAST=1 pytest           # the unit tests and every notebook
# ```
#
# `-e` (editable) installs the package *from the folder*, so your edits to `evakit/` take
# effect without reinstalling. `.venv/` is in `.gitignore`: it is rebuilt, never
# committed.
#
# ### Comprehensions
#
# A comprehension builds a list, dict or set from a loop in one expression — the course
# uses them for layer lists, tables and records.

# %%
squares = [n * n for n in range(6)]
even_squares = [n * n for n in range(6) if n % 2 == 0]
kernel_area = {k: k * k for k in (3, 5, 7, 11)}
sizes = {len(word) for word in ["conv", "pool", "relu", "linear"]}
total = sum(n * n for n in range(6))               # a generator: no list is built
print(squares, even_squares, kernel_area, sorted(sizes), total, sep="\n")

# %% [markdown]
# ### Functions
#
# Defaults, keyword-only arguments (after `*`, they must be named at the call, which
# keeps calls readable), type hints that document what goes in and out, a docstring, and
# several results returned as a tuple and unpacked:

# %%
def output_size(n: int, k: int, *, padding: int = 0, stride: int = 1) -> int:
    """The size of a convolution's output along one axis (session 0)."""
    return (n + 2 * padding - k) // stride + 1


def shape_and_rf(n: int, layers: int) -> tuple[int, int]:
    """Map size and receptive field after `layers` unpadded 3×3 convolutions."""
    return n - 2 * layers, 1 + 2 * layers


print(output_size(28, 3), output_size(28, 3, padding=1), output_size(28, 3, stride=2))
size, rf = shape_and_rf(28, 4)
print(f"after 4 layers: {size}×{size}, receptive field {rf}")
first, *rest = [3, 1, 2]
print(f"{first=}, {rest=} | {0.98765:.2%} | {1234567:,} | {7:>4d}|")

# %% [markdown]
# ### Classes
#
# A class bundles data (attributes, set in `__init__`) with the functions that use them
# (methods). A subclass inherits and extends; `super().__init__()` runs the parent's
# setup first — the first line of every `nn.Module` you will write. A `__call__` method
# makes instances callable, which is how `model(x)` runs a module's `forward`.

# %%
class Layer:
    """Something that maps an input to an output, counting its calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def __call__(self, x: float) -> float:
        self.calls += 1
        return self.forward(x)

    def forward(self, x: float) -> float:
        raise NotImplementedError


class Scale(Layer):
    def __init__(self, factor: float) -> None:
        super().__init__(f"scale×{factor:g}")
        self.factor = factor

    def forward(self, x: float) -> float:
        return self.factor * x


double = Scale(2)
print(double(3), double(4.5), f"{double.name} was called {double.calls} times")

# %% [markdown]
# ### Dataclasses
#
# A class that mostly holds named values is a **dataclass**: `@dataclass` writes
# `__init__`, a readable `repr` and `==` from the annotated fields. `frozen=True` forbids
# changing a field after creation (make a changed copy with `replace`). evakit's training
# recipes are frozen dataclasses — every hyperparameter named once:

# %%
from dataclasses import FrozenInstanceError, asdict, dataclass, field, replace

from evakit import recipes


@dataclass(frozen=True)
class Experiment:
    name: str
    epochs: int = 10
    lr: float = 0.01
    tags: list[str] = field(default_factory=list)   # a fresh list for each instance


base = Experiment("baseline")
longer = replace(base, epochs=20)
print(base, longer, base == Experiment("baseline"), asdict(longer)["epochs"], sep="\n")
recipe = recipes.get("s01/rf-net")
print(type(recipe).__name__, "|", recipe.name, "| epochs", recipe.epochs, "| lr",
      recipe.lr, "| optimizer", recipe.optimizer)

# %% [markdown]
# ### Reading a traceback
#
# When something fails, Python prints a *traceback*: the chain of calls that led to the
# error, outermost first. Read it from the **last line** — the error's type and message —
# then walk up to the first frame in your own code. Most errors in this course are shape
# errors:

# %%
import torch

layer = torch.nn.Linear(784, 64)
try:
    layer(torch.zeros(4, 1, 28, 28))                # forgot to flatten the images
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
print(tuple(layer(torch.zeros(4, 1, 28, 28).flatten(1)).shape))

# %% [markdown]
# The message names the two shapes that do not fit: PyTorch read the images as
# 4 · 1 · 28 rows of 28 values, and the layer wants 784 values per row. The fix is
# `flatten(1)`. When in doubt, print `tensor.shape` just before the failing line.
#
# ### Notebooks as Python files
#
# The sessions are Jupytext files (`sessions/sNN_*.py`): plain Python with `# %%` cell
# markers and Markdown in comments, so they diff cleanly in git; `jupyter lab` opens them
# as notebooks, and each has a generated `.ipynb` twin for Colab.
#
# ## Exercises
#
# 1. Which command shows changes you have made but not staged yet, and which shows the
#    staged ones?
# 2. A commit you pushed yesterday broke the training. How do you undo it without
#    rewriting the history others already pulled?
# 3. Write one comprehension for the dict mapping each even digit 0–8 to its square.
# 4. What happens on `Experiment("a").epochs = 5`, and how do you get an experiment like
#    it with 5 epochs?
# 5. In the fork-and-submit workflow, where do you push your branch, and from where do
#    you fetch the course's new commits?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
even_squares_dict = {d: d * d for d in range(0, 10, 2)}
try:
    Experiment("a").epochs = 5
    frozen_error = "nothing"
except FrozenInstanceError as error:
    frozen_error = f"`{type(error).__name__}: {error}`"
display(Markdown(f"""```{{admonition}} Answers
:class: dropdown
1. `git diff` shows unstaged changes; `git diff --staged` the staged ones (what the
   next commit will contain).
2. `git revert COMMIT` (e.g. `git revert HEAD~1`): a new commit that reverses it, then
   push. The broken commit stays in the history, so nobody's copy is rewritten.
3. `{{d: d * d for d in range(0, 10, 2)}}` gives `{even_squares_dict}`.
4. The assignment raises {frozen_error}: the dataclass is frozen.
   `replace(Experiment("a"), epochs=5)` makes a new one.
5. Push to your fork (`origin`: `git push -u origin BRANCH`), then open the pull
   request; fetch from the course's repository (`upstream`: `git fetch upstream`, then
   `git merge upstream/main`).
```"""))

# %%
workspace.cleanup()                                 # delete the temporary folder

# %% [markdown]
# ## Summary
#
# - `git init`, `add`, `commit`, `log`, `diff`, `status`: record snapshots and read them.
# - Branch for an experiment (`switch -c`), `merge` it back; conflicts are edited, added
#   and committed.
# - `show`, `restore --source`, `revert`: look at, restore, or undo old versions without
#   rewriting history.
# - `push` / `pull` (= `fetch` + `merge`) synchronise with a remote; `.gitignore` keeps
#   data, checkpoints and virtual environments out.
# - Contribute by fork → clone → branch → push to your fork → pull request; keep up with
#   `upstream`.
# - Python: comprehensions, keyword-only arguments, classes with `super().__init__()` and
#   `__call__`, frozen dataclasses with `replace`, a virtual environment per project;
#   read a traceback from its last line.
#
# ## References
#
# - S. Chacon, B. Straub, *Pro Git*, 2nd ed., Apress (2014), free at git-scm.com/book.
# - GitHub Docs, *Fork a repository* and *Creating a pull request from a fork*.
# - The Python Tutorial, sections 5 (data structures, comprehensions), 9 (classes), and
#   12 (virtual environments and packages), docs.python.org.
# - PEP 557, *Data Classes*.
