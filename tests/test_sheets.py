"""The backprop workbook: live formulas, recalculated by each engine, equal to torch autograd."""

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
import torch

from evakit import sheets
from evakit.errors import ArgumentError, EvakitError

LEARNING_RATES = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)
STEPS = 12
EDITED_W1 = 0.9       # a learner's edit on the network sheet, made before recalculating
EDITED_WEIGHTS = (EDITED_W1, *sheets.DEFAULT_WEIGHTS[1:])
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_libreoffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed "
                                       "(.ci/run installs libreoffice-calc-nogui)")
ENGINES = [pytest.param("formulas"), pytest.param("libreoffice", marks=needs_libreoffice)]


def torch_reference(lr: float, steps: int, inputs=sheets.DEFAULT_INPUTS,
                    targets=sheets.DEFAULT_TARGETS, weights=sheets.DEFAULT_WEIGHTS):
    """The same network in float64 with autograd and plain SGD: one dict per step."""
    w = torch.tensor(weights, dtype=torch.float64, requires_grad=True)
    i = torch.tensor(inputs, dtype=torch.float64)
    t = torch.tensor(targets, dtype=torch.float64)
    rows = []
    for _ in range(steps):
        a_h = torch.sigmoid(torch.stack([w[0] * i[0] + w[1] * i[1], w[2] * i[0] + w[3] * i[1]]))
        o = torch.stack([w[4] * a_h[0] + w[5] * a_h[1], w[6] * a_h[0] + w[7] * a_h[1]])
        a_o = torch.sigmoid(o)
        e = 0.5 * (t - a_o) ** 2
        e_total = e.sum()
        (grad,) = torch.autograd.grad(e_total, w)
        row = {f"w{k + 1}": w[k].item() for k in range(8)}
        row |= {"a_h1": a_h[0].item(), "a_h2": a_h[1].item(), "o1": o[0].item(),
                "o2": o[1].item(), "a_o1": a_o[0].item(), "a_o2": a_o[1].item(),
                "E1": e[0].item(), "E2": e[1].item(), "E_total": e_total.item()}
        row |= {f"∂E_total/∂w{k + 1}": grad[k].item() for k in range(8)}
        rows.append(row)
        with torch.no_grad():
            w -= lr * grad
    return rows


@dataclass
class Computed:
    """The workbook as written (formulas), its recalculation, and the computed values."""
    written: Path
    result: sheets.Recalculated
    values: openpyxl.Workbook


@pytest.fixture(scope="module", params=ENGINES)
def computed(request, tmp_path_factory) -> Computed:
    """One recalculation per engine: the backprop workbook with w1 edited on the network sheet."""
    folder = tmp_path_factory.mktemp(request.param)
    path = sheets.backprop_workbook(folder / "backprop.xlsx", learning_rates=LEARNING_RATES,
                                    steps=STEPS)
    wb = openpyxl.load_workbook(path)
    assert wb["network"]["A8"].value == "w1"
    wb["network"]["B8"] = EDITED_W1
    wb.save(path)
    result = sheets.recalculate(path, folder / "out", engine=request.param)
    return Computed(path, result, openpyxl.load_workbook(result.path, data_only=True))


def formula_cells(path: Path) -> int:
    wb = openpyxl.load_workbook(path)
    return sum(1 for ws in wb for row in ws.iter_rows() for c in row
               if isinstance(c.value, str) and c.value.startswith("="))


def check_against_torch(written: Path, computed: openpyxl.Workbook) -> tuple[int, float]:
    """Fail unless every derived cell is a formula whose computed value equals torch's.

    Returns:
        The number of cells compared and the largest |difference|.
    """
    written = openpyxl.load_workbook(written)
    compared, worst = 0, 0.0
    for lr in LEARNING_RATES:
        formulas, values = written[f"lr={lr:g}"], computed[f"lr={lr:g}"]
        header = [c.value for c in formulas[sheets.HEADER_ROW]]
        for step, expected in enumerate(torch_reference(lr, STEPS, weights=EDITED_WEIGHTS)):
            r = sheets.HEADER_ROW + 1 + step
            for name, value in expected.items():
                col = header.index(name) + 1
                cell = formulas.cell(r, col).value
                assert isinstance(cell, str) and cell.startswith("="), \
                    f"{name} at step {step} (lr {lr}) is a typed value, not a formula: {cell!r}"
                got = values.cell(r, col).value
                assert isinstance(got, float), (lr, step, name, got)
                assert got == pytest.approx(value, abs=1e-9), (lr, step, name)
                worst = max(worst, abs(got - value))
                compared += 1
    return compared, worst


def test_recalculation_equals_torch_autograd(computed):
    compared, worst = check_against_torch(computed.written, computed.values)
    assert compared == len(LEARNING_RATES) * STEPS * 25
    print(f"{computed.result.label}: {compared} cells, max |difference| {worst:.1e}")


def test_a_workbook_of_typed_values_fails_the_proof(computed, tmp_path):
    computed.values.save(tmp_path / "typed.xlsx")      # the computed numbers, no formulas
    assert formula_cells(tmp_path / "typed.xlsx") == 0
    with pytest.raises(AssertionError, match="typed value, not a formula"):
        check_against_torch(tmp_path / "typed.xlsx", computed.values)


def test_changing_a_weight_in_the_sheet_changes_everything(computed):
    edited, default = (torch_reference(0.5, STEPS, weights=w) for w in
                       (EDITED_WEIGHTS, sheets.DEFAULT_WEIGHTS))
    values = computed.values["lr=0.5"]
    header = [c.value for c in values[sheets.HEADER_ROW]]
    for name in ("w1", "E_total", "∂E_total/∂w8"):      # an input, the error, a far gradient
        got = values.cell(sheets.HEADER_ROW + 3, header.index(name) + 1).value
        assert abs(default[2][name] - edited[2][name]) > 1e-6      # far above the 1e-9 tolerance
        assert got == pytest.approx(edited[2][name], abs=1e-9), name


def test_read_columns_gives_the_computed_values(computed):
    columns = sheets.read_columns(computed.result.path, "lr=0.5")
    assert columns["step"] == list(range(STEPS))
    assert columns["E_total"] == pytest.approx(
        [r["E_total"] for r in torch_reference(0.5, STEPS, weights=EDITED_WEIGHTS)], abs=1e-9)


def test_the_result_names_its_engine(computed):
    result = computed.result
    assert result.path == computed.written.parent / "out" / "backprop.xlsx"
    assert re.fullmatch(r"\d+(\.\d+)+", result.version), result.version
    if result.engine == "formulas":
        import formulas
        assert result.version == formulas.__version__
        assert result.label == f"formulas {formulas.__version__} (pure Python)"
    else:
        assert result.label == f"LibreOffice {result.version}"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_formula_the_engine_cannot_compute_is_one_clear_error(tmp_path, engine):
    path = sheets.backprop_workbook(tmp_path / "bad.xlsx", learning_rates=(0.5,), steps=3)
    wb = openpyxl.load_workbook(path)
    wb["lr=0.5"]["C7"] = "=FOO(B7)"       # w2 at step 2: the cells after it depend on it
    wb.save(path)
    name = {"formulas": "formulas", "libreoffice": "LibreOffice"}[engine]
    with pytest.raises(EvakitError, match=re.escape(
            f"{name} could not compute lr=0.5!C7 (=FOO(B7)): it gives #NAME? (an unknown "
            "function or name); 17 other formula cells fail too")):
        sheets.recalculate(path, tmp_path / "out", engine=engine)
    assert not (tmp_path / "out" / "bad.xlsx").exists()


def test_a_formula_that_does_not_parse_names_its_cell(tmp_path):
    path = sheets.backprop_workbook(tmp_path / "bad.xlsx", learning_rates=(0.5,), steps=2)
    wb = openpyxl.load_workbook(path)
    wb["network"]["D4"] = "=B4+"
    wb.save(path)
    with pytest.raises(EvakitError, match=re.escape(
            "formulas could not compute network!D4 (=B4+): it is not a valid formula")):
        sheets.recalculate(path, tmp_path / "out", engine="formulas")


def test_without_libreoffice_the_default_engine_is_formulas(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert sheets.engines_available() == ["formulas"]
    path = sheets.backprop_workbook(tmp_path / "b.xlsx", learning_rates=(0.5,), steps=2)
    result = sheets.recalculate(path, tmp_path / "out")
    assert result.engine == "formulas"
    assert sheets.read_columns(result.path, "lr=0.5")["E_total"] == pytest.approx(
        [r["E_total"] for r in torch_reference(0.5, 2)], abs=1e-9)
    with pytest.raises(RuntimeError, match="LibreOffice is needed for engine='libreoffice'"):
        sheets.recalculate(path, tmp_path / "lo", engine="libreoffice")


def test_with_libreoffice_on_path_it_is_the_default(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/bin/{name}")
    assert sheets.engines_available() == ["libreoffice", "formulas"]


@pytest.mark.parametrize("kwargs, says", [
    ({"engine": "excel"}, "engine must be one of libreoffice, formulas or None, got 'excel'"),
    ({"out_dir": "."}, "out_dir must differ from the workbook's folder"),
])
def test_bad_recalculate_arguments_are_one_clear_error(tmp_path, monkeypatch, kwargs, says):
    monkeypatch.chdir(tmp_path)
    path = sheets.backprop_workbook(tmp_path / "b.xlsx", learning_rates=(0.5,), steps=1)
    with pytest.raises(ArgumentError, match=re.escape(says)):
        sheets.recalculate(path, **kwargs)
    with pytest.raises(ArgumentError, match="path must be an existing .xlsx workbook"):
        sheets.recalculate(tmp_path / "missing.xlsx")


def test_structure_headers_notes_and_charts(tmp_path):
    path = sheets.backprop_workbook(tmp_path / "b.xlsx", learning_rates=(0.1, 2.0), steps=4)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["network", "curves", "lr=0.1", "lr=2", "notes"]
    header = [c.value for c in wb["lr=0.1"][sheets.HEADER_ROW]]
    assert header[:9] == ["step", *sheets.WEIGHTS]
    assert "E_total" in header and "∂E_total/∂w1" in header
    assert wb["lr=2"]["B1"].value == 2.0
    notes = [c.value for c in wb["notes"]["A"]]
    assert "∂E_total/∂w1" in notes and "update" in notes
    names = zipfile.ZipFile(path).namelist()      # openpyxl does not read charts back
    assert sum(n.startswith("xl/charts/chart") for n in names) == 3   # 2 sheets + overview


def test_feedforward_workbook_has_the_forward_pass_only(tmp_path):
    wb = openpyxl.load_workbook(sheets.feedforward_workbook(tmp_path / "ff.xlsx"))
    header = [c.value for c in wb["forward"][sheets.HEADER_ROW]]
    assert "E_total" in header and not any(str(h).startswith("∂") for h in header)


def test_feedforward_workbook_says_nothing_of_learning_rates_or_steps(tmp_path):
    wb = openpyxl.load_workbook(sheets.feedforward_workbook(tmp_path / "ff.xlsx"))
    assert wb.sheetnames == ["network", "forward"]
    text = [str(c.value) for ws in wb for row in ws.iter_rows() for c in row
            if c.value is not None]
    assert any("E_total" in t for t in text)          # the scan does see the sheet's words
    for word in ("η", "learning", "step", "lr"):
        assert not [t for t in text if word in t.lower()], word


@pytest.mark.parametrize("kwargs, says", [
    ({"inputs": (0.05,)}, "inputs must have 2 numbers"),
    ({"weights": (0.1,) * 7}, "weights must have 8 numbers"),
    ({"targets": (0.01, "high")}, "targets must hold finite numbers"),
    ({"learning_rates": (0.5, -1)}, "learning_rates must be positive"),
    ({"steps": 0}, "steps must be an integer of at least 1"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"inputs": 3}, "inputs must be a sequence of numbers"),
])
def test_bad_arguments_are_one_clear_error(tmp_path, kwargs, says):
    with pytest.raises(ArgumentError, match=says):
        sheets.backprop_workbook(tmp_path / "x.xlsx", **kwargs)
    assert not list(tmp_path.iterdir())


def _cells(path: Path) -> dict:
    wb = openpyxl.load_workbook(path)
    return {(ws.title, c.coordinate): c.value for ws in wb for row in ws.iter_rows() for c in row
            if c.value is not None}


@pytest.mark.parametrize("name, build", [
    ("backprop.xlsx", lambda p: sheets.backprop_workbook(p)),
    ("feedforward.xlsx", lambda p: sheets.feedforward_workbook(p)),
])
def test_the_downloads_on_the_book_pages_are_what_the_code_writes(tmp_path, name, build):
    committed = Path(__file__).resolve().parents[1] / "book" / "downloads" / name
    assert _cells(committed) == _cells(build(tmp_path / name)), \
        f"regenerate it: evakit sheet {name.split('.')[0]} -o book/downloads/{name}"
