"""`spurious export`: the runs and families of a stored study as CSV, JSON and Parquet files, with the
columns and values of the notebook data frames, every path checked first, and the store only read."""
import csv
import hashlib
import io
import json
import math
import os
import stat

import numpy as np
import pytest

from spurious.cli import main
from spurious.cli.export import file_stem
from spurious.store import Store
from spurious.studies import load_study, plan
from spurious.studies.kinds import merge_families

from study_fakes import landscape_result

CONFIG = """
[study]
name = "fake"
problem = "relu-teacher-student"
runs = 6
runs_per_cell = 3
seeds = [0]
[grid]
teacher = [3]
extra = [0, 1]
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A closed store with one complete made-up study (2 problems, 2 cells each), where one problem
    also has a list-valued parameter the other lacks, and one run has no lambda_min and is not
    polished (missing values and bools in every format); and a study with no problems (no runs)."""
    folder = tmp_path_factory.mktemp("export")
    (folder / "study.toml").write_text(CONFIG)
    config = load_study(str(folder / "study.toml"))
    problems = config.problems()
    stored_problems = [dict(p) for p in problems]
    stored_problems[1] = {**problems[1], "params": {**problems[1]["params"], "weights": [[0.1, 1 / 3], [2.0, -1e-300]]}}
    path = folder / "store.db"
    store = Store(path)
    cells = plan(config)
    store.register(config.record(), stored_problems, cells)
    store.register({"key": "no-runs", "name": "no-runs", "size": None, "kind": "experiment", "title": "none",
                    "config": {}, "work_hash": "0"}, [], [])
    token = store.acquire(config.key)
    by_problem = {}
    for cell in cells:
        by_problem.setdefault(cell["problem_key"], []).append(cell)
    for pkey, group in by_problem.items():
        problem = next(p for p in problems if p["key"] == pkey)
        runs_total = sum(c["runs"] for c in group)
        fams = []
        for i, cell in enumerate(group):
            result = landscape_result(cell, spurious=1 + cell["index"] % 2, saddles=1)
            if cell["index"] == 0:
                result["runs"]["lambda_min"][2] = None
                result["runs"]["polished"][2] = False
            fams += [{**f, "cell": cell["index"], "local": f["id"], "seed": cell["seed"]} for f in result["families"]]
            families = None
            if i == len(group) - 1:
                families = merge_families(problem["name"], problem["params"], problem["tolerances"], fams, runs_total)
            assert store.commit_cell(config.key, token, cell, result, families)
    store.release(config.key, token)
    store.close()
    with Store(path, create=False) as reader:
        frames = {"runs": reader.runs_frame("fake"), "families": reader.families_frame("fake")}
    return path, frames


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def plain(value):
    """A value from a frame or a file as plain Python: None for NaN/None, lists for arrays."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def same(a, b) -> bool:
    """Equal, with the same kind of value (a bool is not an int, an int is not a string)."""
    a, b = plain(a), plain(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    kind = lambda v: bool if isinstance(v, bool) else (int, float) if isinstance(v, (int, float)) else type(v)
    return kind(a) == kind(b) and a == b


def from_csv_field(field: str, like):
    """Parse one CSV field back into the kind of value the frame holds there."""
    like = plain(like)
    if field == "":
        return None
    if isinstance(like, bool):
        return {"true": True, "false": False}[field]
    if isinstance(like, int):
        return int(field)
    if isinstance(like, float):
        return float(field)
    if isinstance(like, list):
        return json.loads(field)
    return field


def assert_matches(frame, columns, rows):
    """rows (lists of values, in file order) hold exactly the frame's columns and values."""
    assert columns == list(frame.columns)
    assert len(rows) == len(frame)
    for i, row in enumerate(rows):
        for column, value, want in zip(columns, row, frame.iloc[i].tolist()):
            assert same(value, want), (i, column, value, want)


def export(*argv, capsys):
    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_json_and_parquet_hold_the_frames_columns_and_values(stored, tmp_path, capsys):
    import pandas as pd

    path, frames = stored
    before = digest(path)
    store_folder = sorted(os.listdir(path.parent))
    runs, families = frames["runs"], frames["families"]
    assert len(runs) == 12 and len(families) == 6 and runs["lambda_min"].isna().sum() == 1
    assert "weights" in runs.columns and runs["weights"].isna().sum() == 6

    printed = {}
    for fmt in ("csv", "json", "parquet"):
        code, printed[fmt], err = export("fake", "--store", str(path), "--format", fmt, "--out", str(tmp_path),
                                         capsys=capsys)
        assert code == 0 and err == "", err
    assert sorted(os.listdir(tmp_path)) == ["fake-families.csv", "fake-families.parquet", "fake-runs.csv",
                                            "fake-runs.parquet", "fake.json"]
    assert printed["json"] == f"{tmp_path / 'fake.json'}: 12 runs, 6 families\n"
    assert printed["csv"] == f"{tmp_path / 'fake-runs.csv'}: 12 runs\n{tmp_path / 'fake-families.csv'}: 6 families\n"

    for table, frame in frames.items():
        with open(tmp_path / f"fake-{table}.csv", newline="", encoding="utf-8") as fh:
            header, *body = list(csv.reader(fh))
        assert header == list(frame.columns)
        parsed = [[from_csv_field(f, like) for f, like in zip(row, frame.iloc[i].tolist())] for i, row in enumerate(body)]
        assert_matches(frame, header, parsed)

        parquet = pd.read_parquet(tmp_path / f"fake-{table}.parquet")
        assert_matches(frame, list(parquet.columns), [parquet.iloc[i].tolist() for i in range(len(parquet))])

    doc = json.loads((tmp_path / "fake.json").read_text())
    assert doc["study"] == "fake" and set(doc) == {"study", "columns", "runs", "families"}
    for table, frame in frames.items():
        columns = doc["columns"][table]
        assert all(list(record) == columns for record in doc[table])
        assert_matches(frame, columns, [list(record.values()) for record in doc[table]])

    # full precision, missing values, lists as JSON text, bools
    text = (tmp_path / "fake-runs.csv").read_text()
    assert '"[[0.1, 0.3333333333333333], [2.0, -1e-300]]"' in text and ",false," in text and ",," in text
    assert doc["runs"][2]["lambda_min"] is None and doc["runs"][2]["polished"] is False
    assert doc["families"][0]["representative"] == families.iloc[0]["representative"]

    # the store was only read (a reader of a WAL database may leave SQLite's empty -wal and -shm files)
    assert digest(path) == before
    assert set(os.listdir(path.parent)) - {"store.db-wal", "store.db-shm"} == set(store_folder)
    assert not os.path.exists(f"{path}-wal") or os.path.getsize(f"{path}-wal") == 0


def test_one_table_to_standard_output_and_files_replaced(stored, tmp_path, capsys, monkeypatch):
    path, frames = stored
    code, out, err = export("fake", "--store", str(path), "--format", "csv", "--table", "runs", "--out", "-",
                            capsys=capsys)
    assert code == 0 and err == ""
    header, *body = list(csv.reader(io.StringIO(out)))
    assert header == list(frames["runs"].columns) and len(body) == 12

    code, out, err = export("fake", "--store", str(path), "--format", "json", "--out", "-", capsys=capsys)
    assert code == 0 and json.loads(out)["columns"]["families"] == list(frames["families"].columns)

    target = tmp_path / "fake-families.csv"
    target.write_text("old content\n")
    monkeypatch.chdir(tmp_path)  # the default --out is the current folder
    code, out, err = export("fake", "--store", str(path), "--format", "csv", "--table", "families", capsys=capsys)
    assert code == 0 and os.listdir(tmp_path) == ["fake-families.csv"]
    assert target.read_text().startswith("problem_key,teacher,student,weights,id,")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask


def test_an_interrupted_export_leaves_the_old_file_and_no_other(stored, tmp_path, capsys, monkeypatch):
    path, _ = stored
    target = tmp_path / "fake-runs.csv"
    target.write_text("old content\n")

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    code, out, err = export("fake", "--store", str(path), "--format", "csv", "--out", str(tmp_path), capsys=capsys)
    assert code == 130
    assert os.listdir(tmp_path) == ["fake-runs.csv"] and target.read_text() == "old content\n"


@pytest.mark.parametrize("case", ["missing store", "unknown study", "out is a file", "out is missing",
                                  "two csv tables to stdout", "parquet to stdout", "no runs", "no pyarrow",
                                  "output file is a folder"])
def test_refusals_are_one_line_exit_2_and_write_nothing(stored, tmp_path, capsys, monkeypatch, case):
    import sys

    path, _ = stored
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "a-file").write_text("x")
    args = {"store": str(path), "study": "fake", "format": "csv", "out": str(out_dir)}
    expect = {
        "missing store": ("store", str(tmp_path / "none.db"), "no store at"),
        "unknown study": ("study", "nothing", "no study 'nothing'"),
        "out is a file": ("out", str(tmp_path / "a-file"), "is a file, not a folder"),
        "out is missing": ("out", str(tmp_path / "missing" / "deeper"), "does not exist"),
        "two csv tables to stdout": ("out", "-", "--table runs or --table families"),
        "parquet to stdout": ("format", "parquet", "standard output"),
        "no runs": ("study", "no-runs", "stores no runs or families"),
        "no pyarrow": ("format", "parquet", "spurious[parquet]"),
        "output file is a folder": ("out", str(out_dir), "is a folder, not a file"),
    }[case]
    args[expect[0]] = expect[1]
    if case == "parquet to stdout":
        args["out"] = "-"
    if case == "no pyarrow":
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    if case == "output file is a folder":
        (out_dir / "fake-families.csv").mkdir()
    before = digest(path)
    listing = sorted(os.listdir(tmp_path)), sorted(os.listdir(out_dir))
    code, out, err = export(args["study"], "--store", args["store"], "--format", args["format"], "--out", args["out"],
                            capsys=capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("spurious: error: ") and expect[2] in err, err
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(out_dir))) == listing
    assert digest(path) == before and not (tmp_path / "none.db").exists()


def test_unknown_format_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["export", "fake", "--format", "xml"])
    assert stop.value.code == 2 and "invalid choice: 'xml'" in capsys.readouterr().err


def test_file_names_follow_the_report_names():
    assert file_stem("safran-shamir-2018@quick") == "safran-shamir-2018-quick"
    assert file_stem("fake") == "fake"


def test_tables_read_together_see_one_state_of_the_store(stored, tmp_path):
    import shutil
    import sqlite3

    path, _ = stored
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    # as while a study runs: its writer has the store in WAL mode (at rest it is one rollback-journal
    # file, where a reader's snapshot simply holds writers off until it ends)
    sqlite3.connect(copy).execute("PRAGMA journal_mode = WAL").connection.close()
    with Store(copy, create=False, read_only=True) as reader:
        with reader.snapshot():
            assert len(reader.runs_rows("fake")[1]) == 12
            writer = sqlite3.connect(copy, isolation_level=None)
            writer.execute("DELETE FROM runs WHERE cell = 0")  # a commit by another process meanwhile
            writer.close()
            assert len(reader.runs_rows("fake")[1]) == 12
        assert len(reader.runs_rows("fake")[1]) == 9


def test_an_unfinished_study_is_exported_with_a_note(stored, tmp_path, capsys):
    import shutil
    import sqlite3

    path, _ = stored
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    db = sqlite3.connect(copy, isolation_level=None)
    db.execute("DELETE FROM cells WHERE idx = 3")
    db.close()
    code, out, err = export("fake", "--store", str(copy), "--format", "json", "--out", "-", capsys=capsys)
    assert code == 0 and len(json.loads(out)["runs"]) == 12
    assert err == "note: study fake is not complete (3 of 4 cells): families are listed only for its finished problems\n"


def test_a_missing_out_folder_is_created_like_mkdir(stored, tmp_path, capsys):
    path, _ = stored
    target = tmp_path / "new"
    code, out, err = export("fake", "--store", str(path), "--format", "csv", "--out", str(target), capsys=capsys)
    assert code == 0, err
    assert sorted(os.listdir(target)) == ["fake-families.csv", "fake-runs.csv"]
