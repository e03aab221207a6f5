"""Splitting a neuron of a spurious minimum (one more student neuron): the embedded point, the 2021
criterion against the wider problem's Hessian and against finite differences of the loss, the
certificate and its tampering, descent from the split point, and refusals."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spurious as sp
from spurious.annihilation import annihilate, splitting_curvatures
from spurious.certify import NotAnnihilated, certify_split
from spurious.verify import InvalidCertificate, digest, verify_certificate

from symmetric_points import symmetric_critical_point

ROOT = Path(__file__).resolve().parents[1]
K = 6
MINIMUM_START = (1.0, -0.03, 0.25, 0.17, -0.65)


@pytest.fixture(scope="module")
def minimum():
    W, grad_norm = symmetric_critical_point(K, MINIMUM_START)
    assert grad_norm < 1e-13
    return W


@pytest.fixture(scope="module")
def result(minimum):
    return annihilate(sp.ReLUTeacherStudent(K, K), minimum, "0.3")


def test_the_split_point_is_critical_with_the_same_loss(minimum):
    problem = sp.ReLUTeacherStudent(K, K)
    wider, embedded = problem.split(minimum, 2, 0.3)
    assert wider.shape == (K + 1, K) and wider.teacher == K
    np.testing.assert_allclose(embedded[2] + embedded[-1], minimum[2], atol=1e-15)
    assert float(wider.loss(jnp.asarray(embedded))) == pytest.approx(float(problem.loss(jnp.asarray(minimum))), abs=1e-13)
    assert np.linalg.norm(np.asarray(wider.grad(jnp.asarray(embedded)))) < 1e-13


def test_the_2021_criterion_equals_the_wider_hessian_and_finite_differences(minimum):
    """a^T S a / (alpha (1 - alpha)) three ways: the splitting block, the (n+1)-Hessian along D, and a
    second difference of the (n+1)-loss along D (an oracle that uses neither Hessian)."""
    problem = sp.ReLUTeacherStudent(K, K)
    for alpha in (0.5, 0.3):
        splits = splitting_curvatures(problem, minimum, alpha)
        assert all(s.agrees for s in splits)
        assert all(s.criterion < 0 for s in splits)  # every neuron of this minimum annihilates
        s = splits[0]
        wider, embedded = problem.split(minimum, 0, alpha)
        D = np.zeros(wider.shape)
        D[0], D[-1] = s.direction, -s.direction
        loss = jax.jit(wider.loss)
        t = 1e-4
        second = (float(loss(embedded + t * D)) - 2 * float(loss(embedded)) + float(loss(embedded - t * D))) / t ** 2
        assert second == pytest.approx(s.criterion / (alpha * (1 - alpha)), rel=2e-3)
        # the direction is orthogonal to the neuron: moving weight between the halves is flat
        assert abs(s.direction @ minimum[0]) < 1e-12


def test_the_certificate_verifies_and_descent_from_the_split_reaches_the_global_minimum(result):
    assert result.certified and result.refusal is None
    verified = verify_certificate(json.loads(result.certificate.to_json()))
    assert verified.neuron == result.neuron and verified.alpha == "0.3"
    bound = result.certificate.splitting_curvature_upper
    assert bound < 0 and float(bound) >= result.chosen.criterion - 1e-6  # an upper bound, and a sharp one
    assert float(result.certificate.curvature_upper) >= result.chosen.criterion / 0.21 - 1e-5
    assert result.descent.counts() == {"global_minimum": 8}


@pytest.mark.parametrize("tamper", [
    lambda c: c["point"][3].__setitem__(2, repr(float(c["point"][3][2]) * (1 + 1e-12))),
    lambda c: c["split"].__setitem__("alpha", "0.4"),
    lambda c: c["split"].__setitem__("neuron", (c["split"]["neuron"] + 1) % K),
    lambda c: c["split"]["direction"].__setitem__(0, repr(-float(c["split"]["direction"][0]))),
    lambda c: c["claim"].__setitem__("curvature_upper", "-9.99e-1"),
    lambda c: c["bounds"].__setitem__("splitting_curvature_upper", "-5.00e-1"),
    lambda c: c["claim"].__setitem__("embedded_student", K + 2),
])
def test_a_tampered_annihilation_certificate_is_refused(result, tamper):
    data = copy.deepcopy(result.certificate.data)
    tamper(data)
    with pytest.raises(InvalidCertificate):
        verify_certificate(data)
    data["digest"] = digest(data)  # even with a fresh digest the mathematics does not check
    with pytest.raises(InvalidCertificate):
        verify_certificate(data)


def test_a_split_along_a_direction_of_positive_curvature_is_not_certified(minimum):
    """Along the neuron itself (moving weight from one half to the other) the curvature is exactly 0: no
    negative bound, no certificate."""
    problem = sp.ReLUTeacherStudent(K, K)
    block = np.asarray(problem.splitting_blocks(minimum))[0]
    along = minimum[0] / np.linalg.norm(minimum[0])
    assert abs(along @ block @ along) < 1e-12
    with pytest.raises(NotAnnihilated, match="not annihilated"):
        certify_split(problem, minimum, 0, 0.5, along)


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "spurious", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_command_writes_a_certificate_that_verify_accepts(tmp_path, minimum):
    np.save(tmp_path / "W.npy", minimum)
    code, out, err = cli("annihilate", "-k", K, "-n", K, "--point", tmp_path / "W.npy", "--random-starts", 0,
                         "-o", tmp_path / "split.json", "--json", tmp_path / "split-summary.json")
    assert code == 0, err
    assert "certified" in out and "global_minimum 2" in out
    summary = json.loads((tmp_path / "split-summary.json").read_text())
    assert summary["certified"] and summary["agrees"] and summary["criterion"] < 0
    code, out, err = cli("verify", tmp_path / "split.json")
    assert code == 0 and out.startswith("valid: the spurious local minimum"), err


@pytest.mark.parametrize("args, message", [
    (("-k", 6, "-n", 5, "--runs", 10), "n >= k"),
    (("-k", 6, "-n", 6, "--runs", 10, "--alpha", "1.5"), "alpha must lie strictly between 0 and 1"),
    (("-k", 6, "-n", 6, "--runs", 10, "--alpha", "0"), "alpha must lie strictly between 0 and 1"),
    (("-k", 6, "-n", 6, "--runs", 10, "--alpha", "half"), "alpha must be a number"),
    (("-k", 6, "-n", 6, "--runs", 10, "--neuron", 6), "--neuron must be a student neuron"),
    (("-k", 6, "-n", 6), "either --point FILE or --runs N"),
    (("--problem", "quadratic-network", "--param", "dim=3", "--param", "hidden=2", "--param", "samples=10",
      "--runs", 10), "cannot be certified"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_work(tmp_path, args, message):
    code, out, err = cli("annihilate", *args, "-o", tmp_path / "c.json", cwd=tmp_path)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("spurious: error:")
    assert list(tmp_path.iterdir()) == []


def test_a_point_that_is_not_critical_is_refused(tmp_path, minimum):
    np.save(tmp_path / "W.npy", minimum + 1e-3)
    code, out, err = cli("annihilate", "-k", K, "-n", K, "--point", tmp_path / "W.npy", "-o", tmp_path / "c.json")
    assert code == 2 and "not a critical point" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.json").exists()


SHIPPED = sorted((ROOT / "benchmarks" / "certificates" / "annihilation").glob("relu-k*-split.json"),
                 key=lambda p: int(p.name.split("-k")[1].split("-")[0]))


def test_the_shipped_annihilation_certificates_cover_k_6_to_20():
    assert [int(p.name.split("-k")[1].split("-")[0]) for p in SHIPPED] == list(range(6, 21))


@pytest.mark.parametrize("path", [p for p in SHIPPED if int(p.name.split("-k")[1].split("-")[0]) <= 8],
                         ids=lambda p: p.name)
def test_the_shipped_annihilation_certificates_of_small_k_verify(path):
    verified = verify_certificate(json.loads(path.read_text()))
    assert verified.base.spurious and float(verified.curvature_upper) < 0


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_annihilation_certificate_verifies(path):
    verified = verify_certificate(json.loads(path.read_text()))
    assert verified.base.spurious and float(verified.curvature_upper) < 0


def test_a_study_annihilates_its_spurious_families_and_the_report_shows_them(tmp_path):
    (tmp_path / "s.toml").write_text('[study]\nname = "k7"\nproblem = "relu-teacher-student"\nruns = 60\n'
                                     'runs_per_cell = 60\n[grid]\nteacher = [7]\nextra = [0]\n')
    store = tmp_path / "s.db"
    code, out, err = cli("study", "run", tmp_path / "s.toml", "--store", store, "--no-report", "-q")
    assert code == 0, err
    code, out, err = cli("study", "annihilate", "k7", "--store", store, "--out", tmp_path / "certs")
    assert code == 0, err
    assert "1 certified, 0 refused" in out
    files = list((tmp_path / "certs").iterdir())
    assert len(files) == 1 and verify_certificate(json.loads(files[0].read_text())).base.spurious
    code, again, err = cli("study", "annihilate", "k7", "--store", store)
    assert code == 0 and "0 certified, 0 refused, 1 already in the store" in again
    code, report, err = cli("report", "k7", "--store", store, "--html", tmp_path / "html")
    assert code == 0, err
    assert "one more neuron (spurious study annihilate):" in report and "verified claim" in report
    assert "One more neuron" in (tmp_path / "html" / "k7.html").read_text()
    code, out, err = cli("study", "annihilate", "k7", "--store", store, "--alpha", "2")
    assert code == 2 and "alpha must lie strictly between 0 and 1" in err
