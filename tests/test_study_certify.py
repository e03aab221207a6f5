"""Bulk certification of a stored study's families: `spurious study certify`, the store records,
the report's marks, exported certificates that verify, resumption, and bad input."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import spurious.store
from spurious.cli import main
from spurious.core.errors import SpuriousError
from spurious.store import Store
from spurious.studies.certification import certify_study

from symmetric_points import symmetric_critical_point

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
    (["--out", "/nonexistent/folder"], "its parent folder /nonexistent does not exist"),
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


# ------------------------------------------------------------------------------------------------
# which stored problems are certified: decided by building each one and asking problem.certifiable

#: a stored study of a registered problem without a rigorous evaluation (a finite-sample loss)
UNCERTIFIABLE_STUDY = """
[study]
name = "finite-sample"
problem = "empirical-teacher-student"
runs = 2
runs_per_cell = 2
seeds = [0]
[grid]
teacher = [2]
extra = [0]
samples = [20]
[optimizer]
max_steps = 2000
"""


def _sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_study_of_an_uncertifiable_problem_is_refused_and_the_store_is_unchanged(tmp_path, capsys):
    config = tmp_path / "finite-sample.toml"
    config.write_text(UNCERTIFIABLE_STUDY)
    db = tmp_path / "f.db"
    assert main(["study", "run", str(config), "--store", str(db), "--no-report", "--quiet"]) == 0
    capsys.readouterr()
    before = _sha256(db)
    out = tmp_path / "certs"
    assert main(["study", "certify", "finite-sample", "--store", str(db), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spurious: error: study 'finite-sample")
    assert "has no problem that can be certified: empirical-teacher-student has no rigorous" in err
    assert _sha256(db) == before and not out.exists()
    assert not os.path.exists(f"{db}-journal") and not os.path.exists(f"{db}-wal")


#: a start of Newton's method in the symmetric subspace that reaches a spurious minimum of k = n = 6
#: (as in tests/test_certify.py; its being a minimum is certified below, not assumed)
K = 6
MINIMUM_START = (1.0, -0.03, 0.25, 0.17, -0.65)
QUADRATIC = {"dim": 3, "hidden": 4, "samples": 10, "weight_decay": 0.01}


class CertificationStore:
    """The part of spurious.store.Store that certification uses, over made-up problem and family rows
    (no study has to be run); it records the lock and every write."""

    def __init__(self, rows, families):
        self.rows, self.families_of = rows, families
        self.events, self.records = [], {}
        self.path = "made-up.db"

    def resolve(self, name):
        return name

    def problems(self, key):
        return [dict(row) for row in self.rows]

    def families(self, key, problem_key=None):
        return [dict(f) for f in self.families_of.get(problem_key, [])]

    def certifications(self, key):
        return dict(self.records)

    def acquire(self, key, command=""):
        self.events.append("acquire")
        return "token"

    def release(self, key, token):
        self.events.append("release")

    def write_certification(self, key, token, problem_key, family, status, summary, certificate):
        self.events.append(("write", problem_key, family["id"]))
        self.records[(problem_key, family["id"])] = {"status": status, "summary": summary, "certificate": certificate}

    # used as `with Store(path, create=False) as store` by the command
    def __call__(self, path, create=True):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _quadratic_row(key="quadratic-network:dim=3"):
    return {"key": key, "name": "quadratic-network", "params": dict(QUADRATIC)}


def _made_up_family(fid, cls, W, loss):
    return {"id": fid, "class": cls, "loss": loss, "representative": np.asarray(W).tolist()}


def test_no_certifiable_problem_is_refused_before_the_lock(tmp_path):
    rng = np.random.default_rng(0)
    store = CertificationStore([_quadratic_row("q1"), _quadratic_row("q2")],
                               {"q1": [_made_up_family(0, "saddle", rng.standard_normal((4, 3)), 0.1)]})
    out = tmp_path / "certs"
    with pytest.raises(SpuriousError) as refusal:
        certify_study(store, "quadratic-only", out_dir=str(out))
    message = str(refusal.value)
    assert message == ("study 'quadratic-only' has no problem that can be certified: quadratic-network has no "
                       "rigorous (ball-arithmetic) evaluation (certificates exist for: relu-teacher-student)")
    assert store.events == [] and store.records == {} and not out.exists()


def test_mixed_study_certifies_the_certifiable_and_counts_the_rest(tmp_path, capsys, monkeypatch):
    W, grad_norm = symmetric_critical_point(K, MINIMUM_START)
    assert grad_norm < 1e-13
    relu = {"key": "relu-teacher-student:k=6", "name": "relu-teacher-student", "params": {"teacher": K, "student": K}}
    rng = np.random.default_rng(1)
    families = {relu["key"]: [_made_up_family(0, "global_minimum", np.eye(K), 0.0),
                              _made_up_family(1, "spurious_minimum", W, 0.0)],
                "q": [_made_up_family(0, "saddle", rng.standard_normal((4, 3)), 0.1)]}
    store = CertificationStore([_quadratic_row("q"), relu], families)
    monkeypatch.setattr(spurious.store, "Store", store)
    out = tmp_path / "certs"
    assert main(["study", "certify", "mixed", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("relu-teacher-student:k=6 family 1 (spurious_minimum, loss 0): certified (minimum")
    assert printed[-1].startswith("mixed: 1 certified, 0 refused, 0 already in the store")
    assert printed[-1].endswith("skipped 1 problem that cannot be certified "
                                "(quadratic-network has no rigorous (ball-arithmetic) evaluation)")
    assert store.events == ["acquire", ("write", relu["key"], 1), "release"]
    record = store.records[(relu["key"], 1)]
    assert record["status"] == "certified" and record["summary"]["spurious"] is True
    files = os.listdir(out)
    assert files == ["relu-teacher-student_k=6-family1.json"]
    assert main(["verify", str(out / files[0])]) == 0
    # through the Python API the skipped problems come back with their reasons; nothing new to do
    again = certify_study(store, "mixed")
    assert (again.certified, again.refused, again.skipped) == (0, 0, 1)
    assert again.uncertifiable == {"q": "quadratic-network has no rigorous (ball-arithmetic) evaluation"}
