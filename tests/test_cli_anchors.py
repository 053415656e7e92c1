"""`evakit anchors`: the table of anchor fits on real annotation files, and bad files refused."""

import re
import subprocess
import sys

import pytest

from evakit import cli, data, detect

ROOT = data.data_root() / "detection"
FILES = {"taco": ROOT / "taco" / "annotations.json",
         "coco128": ROOT / "coco128" / "coco128_train2017_from_yolo.json"}


def _rows(out: str) -> dict[int, tuple[float, list[tuple[float, float]]]]:
    """k → (mean IoU, anchors) from the printed table."""
    rows = {}
    for line in out.splitlines():
        found = re.match(r"\s*(\d+)\s+([0-9.]+)\s+(\(.*)$", line)
        if found:
            pairs = re.findall(r"\(([0-9.]+), ([0-9.]+)\)", found[3])
            rows[int(found[1])] = (float(found[2]), [(float(w), float(h)) for w, h in pairs])
    return rows


@pytest.mark.parametrize("name", sorted(FILES))
def test_anchors_on_real_annotations_prints_k_3_to_6(name, capsys, tmp_path):
    path = FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} is not here (set EVAKIT_DATA to the shared data)")
    plot = tmp_path / "anchors.png"
    assert cli.main(["anchors", str(path), "--k", "3", "4", "5", "6", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert sorted(rows) == [3, 4, 5, 6]
    assert all(len(anchors) == k for k, (_, anchors) in rows.items())
    ious = [rows[k][0] for k in (3, 4, 5, 6)]
    assert ious == sorted(ious) and 0.3 < ious[0] < ious[-1] < 0.8    # more anchors fit better
    # The printed numbers are anchors_report's, the code the session page calls.
    report = detect.anchors_report(path, (3, 4, 5, 6))
    assert ious == [round(report.fits[k].mean_iou, 4) for k in (3, 4, 5, 6)]
    boxes = len(detect.read_coco(path))
    assert f"{boxes} boxes" in out
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_default_ks_are_3_to_6(capsys):
    if not FILES["coco128"].is_file():
        pytest.skip("COCO128 is not here")
    assert cli.main(["anchors", str(FILES["coco128"])]) == 0
    assert sorted(_rows(capsys.readouterr().out)) == [3, 4, 5, 6]


@pytest.mark.parametrize("content, says", [
    ("{ not json", "is not valid JSON"),
    ('{"images": [], "annotations": [], "categories": []}', "holds no boxes"),
    ('[1, 2, 3]', "is not a COCO annotation file"),
    ('{"images": [{"id": 1, "width": 10, "height": 10}], "categories": [{"id": 1, "name": "a"}],'
     ' "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 3]}]}',
     "positive width and height"),
])
def test_a_bad_file_is_one_sentence_and_exit_2(content, says, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert cli.main(["anchors", str(path)]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""


@pytest.mark.parametrize("args, says", [
    (["anchors", "no-such-file.json"], "no file at no-such-file.json"),
    (["anchors", "x.json", "--k", "0"], "expected a positive integer"),
])
def test_bad_arguments_are_one_sentence_and_exit_2(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(cli.main(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_too_many_anchors_and_a_bad_plot_folder_are_one_sentence(tmp_path, capsys):
    path = tmp_path / "two.json"
    path.write_text('{"images": [{"id": 1, "width": 10, "height": 10}], "categories": '
                    '[{"id": 1, "name": "a"}], "annotations": ['
                    '{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 3]},'
                    '{"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}')
    assert cli.main(["anchors", str(path), "--k", "3"]) == 2
    assert "number of distinct box shapes (2)" in capsys.readouterr().err
    assert cli.main(["anchors", str(path), "--k", "2", "--plot",
                     str(tmp_path / "missing" / "a.png")]) == 2
    assert "folder does not exist" in capsys.readouterr().err


def test_the_console_script_exits_2_on_a_bad_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{")
    done = subprocess.run([sys.executable, "-m", "evakit.cli", "anchors", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "not valid JSON" in done.stderr
