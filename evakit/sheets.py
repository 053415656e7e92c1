"""Excel workbooks for sessions 2 and 3 whose every derived cell is a live formula.

The network is the course's 2-2-2 example: inputs i1, i2; hidden h1 = w1·i1 + w2·i2,
h2 = w3·i1 + w4·i2 with a_h = σ(h); outputs o1 = w5·a_h1 + w6·a_h2, o2 = w7·a_h1 + w8·a_h2 with
a_o = σ(o); error E_total = ½(t1 − a_o1)² + ½(t2 − a_o2)². The sheet ``network`` holds the inputs,
targets and initial weights; each learning-rate sheet has its own η and one row per step, whose
weights are the previous row's minus η times its gradients (session 2's workbook has a single
``forward`` sheet instead). Change any number on ``network`` and every sheet recomputes.

``recalculate`` has a spreadsheet engine compute every formula — LibreOffice when it is
installed, else the pure-Python ``formulas`` package — and says which one did.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from evakit.data import atomic_write
from evakit.errors import ArgumentError, EvakitError

DEFAULT_INPUTS = (0.05, 0.10)
DEFAULT_TARGETS = (0.01, 0.99)
DEFAULT_WEIGHTS = (0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55)
DEFAULT_LEARNING_RATES = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)

FORWARD = ["h1", "h2", "a_h1", "a_h2", "o1", "o2", "a_o1", "a_o2", "E1", "E2", "E_total"]
WEIGHTS = [f"w{i}" for i in range(1, 9)]
GRADIENTS = [f"∂E_total/∂{w}" for w in WEIGHTS]

# Column formulas in the notation of the derivation; {name} is replaced by a cell reference.
FORMULAS = {
    "h1": "{w1}*{i1}+{w2}*{i2}",
    "h2": "{w3}*{i1}+{w4}*{i2}",
    "a_h1": "1/(1+EXP(-{h1}))",
    "a_h2": "1/(1+EXP(-{h2}))",
    "o1": "{w5}*{a_h1}+{w6}*{a_h2}",
    "o2": "{w7}*{a_h1}+{w8}*{a_h2}",
    "a_o1": "1/(1+EXP(-{o1}))",
    "a_o2": "1/(1+EXP(-{o2}))",
    "E1": "0.5*({t1}-{a_o1})^2",
    "E2": "0.5*({t2}-{a_o2})^2",
    "E_total": "{E1}+{E2}",
    "∂E_total/∂w1": "(({a_o1}-{t1})*{a_o1}*(1-{a_o1})*{w5}+({a_o2}-{t2})*{a_o2}*(1-{a_o2})*{w7})"
                    "*{a_h1}*(1-{a_h1})*{i1}",
    "∂E_total/∂w2": "(({a_o1}-{t1})*{a_o1}*(1-{a_o1})*{w5}+({a_o2}-{t2})*{a_o2}*(1-{a_o2})*{w7})"
                    "*{a_h1}*(1-{a_h1})*{i2}",
    "∂E_total/∂w3": "(({a_o1}-{t1})*{a_o1}*(1-{a_o1})*{w6}+({a_o2}-{t2})*{a_o2}*(1-{a_o2})*{w8})"
                    "*{a_h2}*(1-{a_h2})*{i1}",
    "∂E_total/∂w4": "(({a_o1}-{t1})*{a_o1}*(1-{a_o1})*{w6}+({a_o2}-{t2})*{a_o2}*(1-{a_o2})*{w8})"
                    "*{a_h2}*(1-{a_h2})*{i2}",
    "∂E_total/∂w5": "({a_o1}-{t1})*{a_o1}*(1-{a_o1})*{a_h1}",
    "∂E_total/∂w6": "({a_o1}-{t1})*{a_o1}*(1-{a_o1})*{a_h2}",
    "∂E_total/∂w7": "({a_o2}-{t2})*{a_o2}*(1-{a_o2})*{a_h1}",
    "∂E_total/∂w8": "({a_o2}-{t2})*{a_o2}*(1-{a_o2})*{a_h2}",
}
# The chain rule behind each column, for the notes sheet.
CHAIN_RULE = {
    "h1, h2": "h1 = w1·i1 + w2·i2;  h2 = w3·i1 + w4·i2",
    "a_h1, a_h2": "a_h = σ(h) = 1 / (1 + e^(−h))",
    "o1, o2": "o1 = w5·a_h1 + w6·a_h2;  o2 = w7·a_h1 + w8·a_h2",
    "a_o1, a_o2": "a_o = σ(o)",
    "E1, E2, E_total": "E1 = ½(t1 − a_o1)²;  E2 = ½(t2 − a_o2)²;  E_total = E1 + E2",
    "∂E_total/∂w5": "∂E_total/∂a_o1 · ∂a_o1/∂o1 · ∂o1/∂w5 = (a_o1 − t1) · a_o1(1 − a_o1) · a_h1",
    "∂E_total/∂w6": "(a_o1 − t1) · a_o1(1 − a_o1) · a_h2",
    "∂E_total/∂w7": "(a_o2 − t2) · a_o2(1 − a_o2) · a_h1",
    "∂E_total/∂w8": "(a_o2 − t2) · a_o2(1 − a_o2) · a_h2",
    "∂E_total/∂a_h1": "(a_o1 − t1)·a_o1(1 − a_o1)·w5 + (a_o2 − t2)·a_o2(1 − a_o2)·w7  "
                      "(a_h1 feeds both outputs)",
    "∂E_total/∂a_h2": "(a_o1 − t1)·a_o1(1 − a_o1)·w6 + (a_o2 − t2)·a_o2(1 − a_o2)·w8",
    "∂E_total/∂w1": "∂E_total/∂a_h1 · a_h1(1 − a_h1) · i1",
    "∂E_total/∂w2": "∂E_total/∂a_h1 · a_h1(1 − a_h1) · i2",
    "∂E_total/∂w3": "∂E_total/∂a_h2 · a_h2(1 − a_h2) · i1",
    "∂E_total/∂w4": "∂E_total/∂a_h2 · a_h2(1 − a_h2) · i2",
    "update": "w ← w − η · ∂E_total/∂w   (each row's weights come from the row above)",
}
HEADER_ROW = 4
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")


def _numbers(name: str, values, length: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(values)
    except TypeError:
        raise ArgumentError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if length is not None and len(values) != length:
        raise ArgumentError(f"{name} must have {length} numbers, got {len(values)}: {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ArgumentError(f"{name} must hold finite numbers, got {v!r} in {values!r}")
    return tuple(float(v) for v in values)


def _check(inputs, targets, weights, learning_rates, steps):
    inputs = _numbers("inputs", inputs, 2)
    targets = _numbers("targets", targets, 2)
    weights = _numbers("weights", weights, 8)
    learning_rates = _numbers("learning_rates", learning_rates)
    if not learning_rates or any(lr <= 0 for lr in learning_rates):
        raise ArgumentError(f"learning_rates must be positive numbers, got {learning_rates!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ArgumentError(f"steps must be an integer of at least 1, got {steps!r}")
    return inputs, targets, weights, learning_rates


def _network_sheet(wb: Workbook, inputs, targets, weights) -> dict[str, str]:
    """The shared inputs, targets and initial weights; returns name → absolute reference."""
    ws = wb.active
    ws.title = "network"
    ws["A1"] = "2-2-2 network, sigmoid activations, E_total = ½(t1 − a_o1)² + ½(t2 − a_o2)²"
    ws["A1"].font = Font(bold=True)
    ws["A2"] = "Edit the yellow cells: every sheet recomputes."
    refs = {}
    for row, (name, value) in enumerate(
            zip(["i1", "i2", "t1", "t2", *WEIGHTS], [*inputs, *targets, *weights],
                strict=True), start=4):
        ws.cell(row, 1, name).font = Font(bold=True)
        cell = ws.cell(row, 2, value)
        cell.fill = INPUT_FILL
        refs[name] = f"network!$B${row}"
    ws.column_dimensions["A"].width = 10
    return refs


def _columns(ws: Worksheet, names: list[str]) -> dict[str, int]:
    """Write the bold header row; returns column name → column number."""
    col = {name: i + 1 for i, name in enumerate(names)}
    for name, c in col.items():
        cell = ws.cell(HEADER_ROW, c, name)
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        ws.column_dimensions[get_column_letter(c)].width = 14 if name.startswith("∂") else 10
    return col


def _derived(ws: Worksheet, r: int, col: dict[str, int], net: dict[str, str],
             names: list[str]) -> None:
    """Row ``r``'s formulas for ``names``, reading this row's weights and the network sheet."""
    here = {name: f"{get_column_letter(c)}{r}" for name, c in col.items()}
    refs = {**{k: net[k] for k in ("i1", "i2", "t1", "t2")}, **here}
    for name in names:
        ws.cell(r, col[name], "=" + FORMULAS[name].format(**refs))


def _forward_sheet(wb: Workbook, net: dict[str, str]) -> Worksheet:
    """Session 2's sheet: one forward pass from the network sheet's weights."""
    ws = wb.create_sheet("forward")
    ws["A1"] = "The forward pass and the error of the network sheet's inputs and weights."
    ws["A2"] = "Every cell below is a formula: change a yellow cell on the network sheet."
    col = _columns(ws, [*WEIGHTS, *FORWARD])
    r = HEADER_ROW + 1
    for w in WEIGHTS:
        ws.cell(r, col[w], f"={net[w]}")
    _derived(ws, r, col, net, FORWARD)
    ws.freeze_panes = ws.cell(r, 1)
    return ws


def _step_sheet(wb: Workbook, lr: float, steps: int,
                net: dict[str, str]) -> tuple[Worksheet, int]:
    """One sheet per learning rate; returns (the sheet, column of E_total)."""
    ws = wb.create_sheet(f"lr={lr:g}")
    ws["A1"], ws["B1"] = "η (learning rate)", lr
    ws["B1"].fill = INPUT_FILL
    ws["A2"] = "One row per step; weights of step n+1 = weights of step n − η·gradients of step n."
    eta = "$B$1"
    col = _columns(ws, ["step", *WEIGHTS, *FORWARD, *GRADIENTS])
    for step in range(steps):
        r = HEADER_ROW + 1 + step
        ws.cell(r, col["step"], step)
        for w in WEIGHTS:
            if step == 0:
                formula = f"={net[w]}"
            else:
                above = r - 1
                formula = (f"={get_column_letter(col[w])}{above}-{eta}*"
                           f"{get_column_letter(col['∂E_total/∂' + w])}{above}")
            ws.cell(r, col[w], formula)
        _derived(ws, r, col, net, FORWARD + GRADIENTS)
    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 2)
    return ws, col["E_total"]


def _chart(title: str, series: list[tuple[Worksheet, str, int]], steps: int) -> LineChart:
    """A line chart of E_total against step, one line per (sheet, label, column)."""
    chart = LineChart()
    chart.title = title
    chart.x_axis.title = "step"
    chart.y_axis.title = "E_total"
    chart.height, chart.width = 9, 16
    for ws, label, column in series:
        chart.add_data(Reference(ws, min_col=column, min_row=HEADER_ROW + 1,
                                 max_row=HEADER_ROW + steps))
        chart.series[-1].tx = SeriesLabel(v=label)
        chart.series[-1].smooth = False
    return chart


def _notes_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet("notes")
    ws["A1"] = "The chain rule behind each column"
    ws["A1"].font = Font(bold=True)
    for row, (column, rule) in enumerate(CHAIN_RULE.items(), start=3):
        ws.cell(row, 1, column).font = Font(bold=True)
        ws.cell(row, 2, rule)
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 100


def backprop_workbook(path: str | Path, *, inputs: Sequence[float] = DEFAULT_INPUTS,
                      targets: Sequence[float] = DEFAULT_TARGETS,
                      weights: Sequence[float] = DEFAULT_WEIGHTS,
                      learning_rates: Sequence[float] = DEFAULT_LEARNING_RATES,
                      steps: int = 50) -> Path:
    """Write session 3's backpropagation workbook.

    Args:
        path: the .xlsx to write (atomically).
        inputs: i1, i2.
        targets: t1, t2.
        weights: initial w1 … w8.
        learning_rates: one sheet per learning rate η.
        steps: rows (gradient-descent steps) per sheet.

    Returns:
        The path written.
    """
    inputs, targets, weights, learning_rates = _check(inputs, targets, weights,
                                                      learning_rates, steps)
    return _write(path, inputs, targets, weights, learning_rates, steps)


def feedforward_workbook(path: str | Path, *, inputs: Sequence[float] = DEFAULT_INPUTS,
                         targets: Sequence[float] = DEFAULT_TARGETS,
                         weights: Sequence[float] = DEFAULT_WEIGHTS) -> Path:
    """Write session 2's workbook: the same network's forward pass and error, nothing trained.

    Args:
        path: the .xlsx to write (atomically).
        inputs: i1, i2.
        targets: t1, t2.
        weights: w1 … w8.

    Returns:
        The path written.
    """
    inputs = _numbers("inputs", inputs, 2)
    targets = _numbers("targets", targets, 2)
    weights = _numbers("weights", weights, 8)
    wb = Workbook()
    _forward_sheet(wb, _network_sheet(wb, inputs, targets, weights))
    return atomic_write(path, wb.save)


def _write(path, inputs, targets, weights, learning_rates, steps) -> Path:
    wb = Workbook()
    net = _network_sheet(wb, inputs, targets, weights)
    series = []
    for lr in learning_rates:
        ws, column = _step_sheet(wb, lr, steps, net)
        series.append((ws, f"η = {lr:g}", column))
    for ws, label, column in series:
        ws.add_chart(_chart(f"E_total, {label}", [(ws, label, column)], steps),
                     f"A{HEADER_ROW + steps + 3}")
    curves = wb.create_sheet("curves", 1)
    curves["A1"] = "E_total against step for every learning rate"
    curves.add_chart(_chart("E_total for each learning rate", series, steps), "A3")
    _notes_sheet(wb)
    return atomic_write(path, wb.save)


# ---- recalculation: a spreadsheet engine computes every formula ------------------------------

ENGINES = ("libreoffice", "formulas")
# What each Excel error value says went wrong, for the error raised on an uncomputable cell.
_ERROR_MEANINGS = {
    "#NAME?": "an unknown function or name",
    "#DIV/0!": "a division by zero",
    "#REF!": "a reference to a missing cell or sheet",
    "#VALUE!": "a value of the wrong type",
    "#NUM!": "a number out of range",
    "#N/A": "a value that is not available",
    "#NULL!": "an empty intersection of ranges",
}


@dataclass(frozen=True)
class Recalculated:
    """A recalculated copy of a workbook and the engine that computed its values.

    Attributes:
        path: the copy, an .xlsx whose formula cells hold computed values: open it with
            ``openpyxl.load_workbook(path, data_only=True)`` or ``read_columns``. LibreOffice's
            copy keeps each formula beside its value (and the charts); the ``formulas`` copy
            holds the values in place of the formulas (openpyxl can write no cached values, and
            does not carry charts).
        engine: ``"libreoffice"`` or ``"formulas"``.
        version: the engine's version, e.g. ``"7.4.7.2"`` or ``"1.3.4"``.
    """

    path: Path
    engine: str
    version: str

    @property
    def label(self) -> str:
        """The engine in words, e.g. ``LibreOffice 7.4.7.2`` or ``formulas 1.3.4 (pure Python)``."""
        if self.engine == "libreoffice":
            return f"LibreOffice {self.version}"
        return f"formulas {self.version} (pure Python)"


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def engines_available() -> list[str]:
    """The recalculation engines on this machine, the default first.

    Returns:
        ``["libreoffice", "formulas"]`` when LibreOffice (``soffice`` or ``libreoffice``) is on
        PATH, else ``["formulas"]``: the pure-Python engine is always installed with evakit.
    """
    return (["libreoffice"] if _soffice() else []) + ["formulas"]


def recalculate(path: str | Path, out_dir: str | Path | None = None,
                engine: str | None = None) -> Recalculated:
    """Recalculate every formula of a workbook and save a copy holding the computed values.

    Args:
        path: the workbook (.xlsx).
        out_dir: the folder of the copy (by default a new temporary folder); not the
            workbook's own folder, where the copy would replace it.
        engine: ``"libreoffice"`` (headless LibreOffice Calc), ``"formulas"`` (the pure-Python
            package of that name), or None for the first of ``engines_available()``.

    Returns:
        The copy (``out_dir/<name>.xlsx``) and the engine that computed it.

    Raises:
        ArgumentError: an unknown engine, a missing workbook, or out_dir the workbook's folder.
        EvakitError: a formula the engine cannot compute (the sentence names the sheet, the
            cell and the formula); no copy is left then. Both are ValueErrors.
        RuntimeError: LibreOffice was asked for but is not installed, or wrote no copy.
    """
    path = Path(path)
    if not path.is_file():
        raise ArgumentError(f"path must be an existing .xlsx workbook, got {str(path)!r}")
    if engine is None:
        engine = engines_available()[0]
    if engine not in ENGINES:
        raise ArgumentError(f"engine must be one of {', '.join(ENGINES)} or None, got {engine!r}")
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="evakit-"))
    if out_dir.resolve() == path.parent.resolve():
        raise ArgumentError(f"out_dir must differ from the workbook's folder (the copy would "
                            f"replace the workbook), got {str(out_dir)!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{path.stem}.xlsx"
    out.unlink(missing_ok=True)      # a stale copy must not pass for this run's result
    if engine == "libreoffice":
        version = _with_libreoffice(path, out)
    else:
        version = _with_formulas(path, out)
    return Recalculated(out, engine, version)


def _with_libreoffice(path: Path, out: Path) -> str:
    """Convert ``path`` to ``out`` in headless LibreOffice; returns LibreOffice's version."""
    soffice = _soffice()
    if soffice is None:
        raise RuntimeError("LibreOffice is needed for engine='libreoffice': install it "
                           "(Debian/Ubuntu/Colab: apt-get install libreoffice-calc-nogui) or "
                           "use engine='formulas'")
    # A private profile folder: a second LibreOffice (or a desktop one) cannot block this one.
    profile = (out.parent / "lo-profile").resolve().as_uri()
    done = subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--calc",
                           "--convert-to", "xlsx", "--outdir", str(out.parent), str(path)],
                          check=True, capture_output=True, text=True, timeout=300)
    if not out.is_file():
        raise RuntimeError(f"LibreOffice wrote no {out.name} from {path}: "
                           f"{(done.stderr or done.stdout).strip() or 'it gave no reason'}")
    values = load_workbook(out, data_only=True, read_only=True)
    errors = [(ws.title, c.coordinate, _gives(str(c.value))) for ws in values
              for row in ws.iter_rows() for c in row if c.data_type == "e"]
    values.close()
    if errors:
        out.unlink()
        # LibreOffice rewrites formulas (unknown functions in lower case): quote the user's own.
        written = load_workbook(path)
        raise _uncomputable("LibreOffice", [(sheet, cell, written[sheet][cell].value, why)
                                            for sheet, cell, why in errors])
    reply = subprocess.run([soffice, "--version"], capture_output=True, text=True, timeout=60)
    found = re.search(r"\d+(\.\d+)+", reply.stdout)
    return found.group() if found else "(version unknown)"


def _with_formulas(path: Path, out: Path) -> str:
    """Compute ``path`` with the ``formulas`` package, write the values to ``out``.

    Returns:
        The version of ``formulas``.
    """
    import formulas
    from formulas.errors import FormulaError
    from formulas.tokens.operand import XlError

    book = load_workbook(path)
    cells = {(ws.title, c.coordinate): c for ws in book for row in ws.iter_rows() for c in row
             if c.data_type == "f"}
    try:
        # Its progress bar goes to stderr: a notebook would show it as noise.
        with contextlib.redirect_stderr(io.StringIO()):
            solution = formulas.ExcelModel().loads(str(path)).finish().calculate()
    except FormulaError:
        # The error does not always quote the formula: find the first cell that fails to parse.
        bad = next(((sheet, cell, c.value) for (sheet, cell), c in cells.items()
                    if not _parses(str(c.value))), None)
        if bad is None:
            raise
        raise _uncomputable("formulas", [(*bad, "it is not a valid formula")]) from None
    values = _by_cell(solution)
    errors = []
    for (sheet, cell), c in cells.items():
        value = values.get((sheet.upper(), cell))
        if isinstance(value, XlError):
            errors.append((sheet, cell, c.value, _gives(str(value))))
            continue
        value = value.item() if hasattr(value, "item") else value    # numpy → Python
        if isinstance(value, str | bool | int | float):
            c.value = value
        else:
            errors.append((sheet, cell, c.value, "it gave no value"))
    if errors:
        raise _uncomputable("formulas", errors)
    atomic_write(out, book.save)
    return formulas.__version__


def _parses(formula: str) -> bool:
    """Whether the ``formulas`` package can parse this formula."""
    import formulas
    from formulas.errors import FormulaError

    try:
        formulas.Parser().ast(formula)
    except FormulaError:
        return False
    return True


# A cell of a formulas solution: '[book.xlsx]SHEET'!B7, sheet upper-cased, quotes doubled.
_SOLUTION_CELL = re.compile(r"^'?\[[^\]]*\](.+?)'?!([A-Z]+[0-9]+)$")


def _by_cell(solution) -> dict[tuple[str, str], object]:
    """The formulas solution as (SHEET, cell) → the computed scalar; ranges are left out."""
    cells = {}
    for key, ranges in solution.items():
        found = _SOLUTION_CELL.match(str(key))
        if found is not None and getattr(ranges, "value", None) is not None:
            sheet = found.group(1).replace("''", "'")
            cells[sheet, found.group(2)] = ranges.value[0, 0]
    return cells


def _gives(error_value: str) -> str:
    """What an Excel error value says, e.g. ``it gives #NAME? (an unknown function or name)``."""
    meaning = _ERROR_MEANINGS.get(error_value)
    return f"it gives {error_value}" + (f" ({meaning})" if meaning else "")


def _uncomputable(engine: str, errors: list[tuple[str, str, str, str]]) -> EvakitError:
    """The error for the (sheet, cell, formula, why) of every cell that failed, first first."""
    sheet, cell, formula, why = errors[0]
    more = f"; {len(errors) - 1} other formula cells fail too" if len(errors) > 1 else ""
    return EvakitError(f"{engine} could not compute {sheet}!{cell} ({formula}): {why}{more}")


def read_columns(path: str | Path, sheet: str) -> dict[str, list]:
    """The computed values of a sheet of a recalculated workbook, one list per column.

    Args:
        path: a recalculated copy (``recalculate(...).path``).
        sheet: a step sheet (``"lr=0.5"``) or ``"forward"``.

    Returns:
        Column name (the header row) → its values, one per row (per step).
    """
    ws = load_workbook(path, data_only=True, read_only=True)[sheet]
    rows = list(ws.iter_rows(min_row=HEADER_ROW, values_only=True))
    header = rows[0]
    return {name: [row[i] for row in rows[1:] if row[0] is not None]
            for i, name in enumerate(header) if name is not None}
