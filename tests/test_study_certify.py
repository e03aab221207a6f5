"""Bulk certification of a stored study's families: `spurious study certify`, the store records,
the report's marks, exported certificates that verify, resumption, and bad input."""
from __future__ import annotations

import os

import pytest

from spurious.cli import main
from spurious.store import Store

STUDY = """
[study]
name = "certify-me"
problem = "relu-teacher-student"
runs = 24
runs_per_cell = 12
seeds = [0]
[grid]
teacher = [10]
extra = [0]
"""


@pytest.fixture(scope="module")
def study_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certify-study")
    config = folder / "study.toml"
    config.write_text(STUDY)
    db = str(folder / "s.db")
    assert main(["study", "run", str(config), "--store", db, "--no-report", "--quiet"]) == 0
    return db


def test_bulk_certify_records_marks_exports_and_resumes(study_store, tmp_path, capsys):
    out = tmp_path / "certs"  # created by the command, as in the README's example
    assert main(["study", "certify", "certify-me", "--store", study_store, "--lowest", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 certified, 0 refused, 0 already in the store" in printed

    with Store(study_store, create=False) as store:
        key = store.resolve("certify-me")
        records = store.certifications(key)
        families = {f["id"]: f for f in store.families(key)}
    assert len(records) == 1
    (problem_key, family_id), record = next(iter(records.items()))
    family = families[family_id]
    assert family["class"] == "spurious_minimum"
    assert family["loss"] == min(f["loss"] for f in families.values() if f["class"] == "spurious_minimum")
    summary = record["summary"]
    assert record["status"] == "certified" and summary["kind"] == "minimum" and summary["spurious"] is True
    # the enclosure is of the exact critical point's loss; the stored float loss is within rounding of it
    assert float(summary["loss_lower"]) - 1e-12 <= family["loss"] <= float(summary["loss_upper"]) + 1e-12
    assert float(summary["loss_upper"]) - float(summary["loss_lower"]) < 1e-9

    files = os.listdir(out)
    assert len(files) == 1
    assert main(["verify", str(out / files[0])]) == 0  # the exported certificate re-checks on its own
    capsys.readouterr()

    assert main(["study", "certify", "certify-me", "--store", study_store, "--lowest"]) == 0
    assert "0 certified, 0 refused, 1 already in the store" in capsys.readouterr().out

    assert main(["report", "certify-me", "--store", study_store]) == 0
    report = capsys.readouterr().out
    assert "certified" in report and "yes, r=" in report


@pytest.mark.parametrize("args, message", [
    (["--classes", "global_minimum"], "cannot certify class global_minimum"),
    (["--out", "/nonexistent/folder"], "no such folder, nor its parent /nonexistent"),
    (["--out", "STORE"], "not a folder"),  # a file in the way (the store itself)
])
def test_bad_certify_input_is_one_line_exit_2_and_store_untouched(study_store, capsys, args, message):
    def snapshot():
        with Store(study_store, create=False) as store:
            key = store.resolve("certify-me")
            return store.content(key), store.certifications(key)

    args = [study_store if a == "STORE" else a for a in args]
    before = snapshot()
    assert main(["study", "certify", "certify-me", "--store", study_store, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert snapshot() == before
