"""Certified critical points: spurious.certify (search, refusals, bulk API), spurious.verify (the
re-checker) and the `spurious certify` / `spurious verify` commands.

Points come from Newton's method in the Delta(S_{k-1} x S_1)-symmetric subspace (tests/symmetric_points.py),
which reaches the families gradient descent finds (and saddles next to them) in a second, instead of
running the engine; one slow test runs the engine end to end."""
import ast
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import jax
import numpy as np
import pytest

import spurious as sp
from spurious import verify
from spurious.analyze import analyze
from spurious.certify import (Certificate, CertificationRefused, DegenerateHessian, NotCertifiable,
                              NotNearCriticalPoint, PrecisionInsufficient, TooCloseToNonSmooth, certify,
                              certify_families, newton_polish, read_point)
from spurious.cli import main
from spurious.optimize import CONVERGED, Endpoints, GradientDescent

from symmetric_points import symmetric_critical_point

ROOT = Path(__file__).resolve().parents[1]
K = 6
#: starting guesses (a, b, c, e, f) for Newton's method in the symmetric subspace; what each converges to
#: (minimum or saddle, its index) is measured by the tests from the float64 spectrum, never assumed
MINIMUM_START = (1.0, -0.03, 0.25, 0.17, -0.65)
SADDLE_STARTS = ((1.14, -0.03, 0.2, -0.03, -0.04), (-0.59, 0.39, -0.014, 0.017, 1.07))


_JITTED = {}


def jitted(problem, what):
    """problem.<what> compiled once per problem (jax.jit of a fresh bound method would recompile)."""
    key = (id(problem), what)
    if key not in _JITTED:
        _JITTED[key] = (problem, jax.jit(getattr(problem, what)))
    return _JITTED[key][1]


def float_spectrum(problem, W):
    return np.linalg.eigvalsh(np.asarray(jitted(problem, "hessian")(W)))


@pytest.fixture(scope="module")
def problem():
    return sp.ReLUTeacherStudent(teacher=K, student=K)


@pytest.fixture(scope="module")
def minimum(problem):
    W, grad_norm = symmetric_critical_point(K, MINIMUM_START)
    assert grad_norm < 1e-13
    assert float_spectrum(problem, W)[0] > 1e-3
    return W


@pytest.fixture(scope="module")
def saddles(problem):
    points = []
    for start in SADDLE_STARTS:
        W, grad_norm = symmetric_critical_point(K, start)
        assert grad_norm < 1e-13 and float_spectrum(problem, W)[0] < -1e-3
        points.append(W)
    return points


@pytest.fixture(scope="module")
def minimum_certificate(problem, minimum):
    return certify(problem, minimum)


# ------------------------------------------------------------------------------------------------
# the ball-arithmetic closed forms against the JAX closed forms


@pytest.mark.parametrize("k,n,d,general", [(3, 4, 5, True), (4, 4, 4, False)])
def test_ball_closed_forms_enclose_the_float_closed_forms(k, n, d, general):
    rng = np.random.default_rng(k + n)
    problem = sp.ReLUTeacherStudent(k, n, d, teacher_weights=rng.standard_normal((k, d)) if general else None)
    W = rng.standard_normal((n, d)) / math.sqrt(d)
    teacher = verify.ExactTeacher([[Fraction(float(x)) for x in row] for row in problem.teacher_weights])
    with verify.ctx.workprec(128):
        geometry = verify.Geometry(verify._ball_rows(W.tolist(), None), teacher.arb_rows(), teacher)
        loss = verify.loss_enclosure(geometry, teacher)
        grad = np.array([float(x) for x in verify.gradient_enclosure(geometry)]).reshape(n, d)
        hess = np.array([[float(x) for x in row] for row in verify.hessian_enclosure(geometry)])
        widths = [float(x.rad()) for row in verify.hessian_enclosure(geometry) for x in row]
    assert abs(float(loss) - float(jax.jit(problem.loss)(W))) < 1e-14
    np.testing.assert_allclose(grad, jax.jit(problem.grad)(W), atol=1e-14)
    np.testing.assert_allclose(hess, jax.jit(problem.hessian)(W), atol=1e-13)
    assert max(widths) < 1e-30  # at an exact point the balls only carry 128-bit rounding


def test_ball_hessian_on_a_box_contains_the_hessian_of_points_in_it(problem, minimum):
    radius = Fraction(1, 10 ** 4)
    teacher = verify.ExactTeacher([[Fraction(float(x)) for x in row] for row in problem.teacher_weights])
    with verify.ctx.workprec(128):
        box = verify.Geometry(verify._ball_rows(minimum.tolist(), radius), teacher.arb_rows(), teacher)
        hessian = verify.hessian_enclosure(box)
    rng = np.random.default_rng(0)
    for _ in range(3):
        y = minimum + float(radius) * rng.uniform(-1, 1, minimum.shape)
        H = np.asarray(jitted(problem, "hessian")(y))
        inside = [[abs(float(hessian[p][q].mid()) - H[p, q]) <= float(hessian[p][q].rad()) + 1e-14
                   for q in range(len(H))] for p in range(len(H))]
        assert all(all(row) for row in inside)


def test_exact_rational_helpers():
    assert verify.round_decimal(Fraction(123456, 10 ** 8), 3, up=True) == "1.24e-3"
    assert verify.round_decimal(Fraction(123456, 10 ** 8), 3, up=False) == "1.23e-3"
    assert verify.round_decimal(Fraction(-123456, 10 ** 8), 3, up=True) == "-1.23e-3"
    assert verify.round_decimal(Fraction(9999, 1000), 2, up=True) == "1.0e1"
    assert verify.round_decimal(Fraction(5), 1, up=False) == "5e0"
    assert Fraction(verify.round_decimal(Fraction(1, 3), 12, up=True)) >= Fraction(1, 3)
    singular = np.diag([1.0, 0.0, -2.0])
    with pytest.raises(verify.ProofFailed) as failure:
        verify.center_spectrum(verify.arb_mat(singular.tolist()), singular)
    assert failure.value.cause == "degenerate"
    spectrum = verify.center_spectrum(verify.arb_mat(np.diag([3.0, -1.0, 2.0]).tolist()), np.diag([3.0, -1.0, 2.0]))
    assert spectrum.negative == 1 and 0.99 < float(spectrum.gap_lower) <= 1.0


# ------------------------------------------------------------------------------------------------
# what gets certified


def test_certifies_a_spurious_minimum(problem, minimum, minimum_certificate):
    cert = minimum_certificate
    lam_min = float_spectrum(problem, minimum)[0]
    assert cert.kind == "minimum" and cert.morse_index == 0 and cert.spurious is True
    assert cert.loss_lower <= Fraction(float(problem.loss(minimum))) <= cert.loss_upper
    assert 0 < cert.loss_lower and cert.loss_upper - cert.loss_lower < Fraction(1, 10 ** 10)
    assert 0.98 * lam_min < float(cert.eigenvalue_abs_lower) <= lam_min
    assert 0 < cert.distance_upper <= cert.radius < Fraction(1, 10 ** 9)
    assert cert.verify().kind == "minimum"
    bounds = cert.data["bounds"]
    for key in ("student_norm_lower", "student_pairs_one_minus_cos_lower", "student_teacher_one_minus_cos_lower",
                "one_plus_cos_lower"):
        assert Fraction(bounds[key]) > 0


def test_saddles_are_certified_with_their_index_and_never_as_minima(problem, saddles):
    for W in saddles:
        spectrum = float_spectrum(problem, W)
        cert = certify(problem, W)
        assert cert.kind == "saddle" and cert.spurious is False
        assert cert.morse_index == int(np.sum(spectrum < 0)) >= 1
        assert float(cert.eigenvalue_abs_lower) <= np.min(np.abs(spectrum))
        assert cert.verify().morse_index == cert.morse_index
        # relabelling the saddle as a minimum (even with a recomputed digest) is caught
        data = json.loads(cert.to_json())
        data["claim"].update(kind="minimum", morse_index=0, spurious=True)
        data["bounds"]["center_hessian_negative_eigenvalues"] = 0
        data["digest"] = verify.digest(data)
        with pytest.raises(verify.InvalidCertificate):
            verify.verify_certificate(data)


def test_general_teacher_and_student_fewer_than_teacher():
    """A non-orthogonal teacher in d > k; with n < k the global value is unknown, so no 'spurious' claim."""
    problem = sp.ReLUTeacherStudent(teacher=2, student=1, dim=3, teacher_weights=[[1.0, 0.25, 0.0], [0.0, 2.0, -0.5]])
    W = newton_polish(problem, np.array([[0.8, 1.9, -0.3]]), max_move=2.0)
    cert = certify(problem, W)
    assert cert.kind == "minimum" and cert.spurious is None
    assert cert.loss_lower <= Fraction(float(jax.jit(problem.loss)(W))) <= cert.loss_upper
    assert cert.data["bounds"]["student_pairs_one_minus_cos_lower"] is None  # one student: no pairs
    assert cert.verify().spurious is None


# ------------------------------------------------------------------------------------------------
# refusals


def test_zero_neuron_is_refused(problem, minimum):
    W = minimum.copy()
    W[2] = 0.0
    with pytest.raises(TooCloseToNonSmooth, match="zero"):
        certify(problem, W)


@pytest.mark.parametrize("kind", ["students", "student-teacher"])
def test_parallel_pair_is_refused(problem, minimum, kind):
    W = minimum.copy()
    if kind == "students":
        W[3] = 2.0 * W[1]  # exactly parallel (scaling by 2 is exact)
    else:
        W[3] = 0.0
        W[3, 4] = 0.75  # parallel to teacher e_4
    with pytest.raises(TooCloseToNonSmooth, match="parallel"):
        certify(problem, W)
    assert issubclass(TooCloseToNonSmooth, sp.NonSmoothPoint)


@pytest.mark.parametrize("size", [1e-3, 1e-6])
def test_point_moved_away_from_criticality_is_refused(problem, minimum, size):
    W = minimum + size * np.random.default_rng(1).standard_normal(minimum.shape)
    with pytest.raises(NotNearCriticalPoint, match="not near a critical point"):
        certify(problem, W)


def test_polish_recovers_a_slightly_moved_point(problem, minimum, minimum_certificate):
    W = minimum + 1e-6 * np.random.default_rng(1).standard_normal(minimum.shape)
    cert = certify(problem, W, polish=True)
    assert cert.kind == "minimum"
    assert np.max(np.abs(cert.point - minimum)) < 1e-12
    with pytest.raises(NotNearCriticalPoint):
        certify(problem, minimum + 0.2 * np.random.default_rng(2).standard_normal(minimum.shape), polish=True)


def test_degenerate_hessian_is_refused(problem, minimum, saddles):
    """Between a saddle and a minimum the smallest Hessian eigenvalue crosses 0; bisect to the crossing."""
    hessian = jitted(problem, "hessian")
    smallest = lambda t: np.linalg.eigvalsh(np.asarray(hessian((1 - t) * saddles[0] + t * minimum)))[0]
    low, high = 0.0, 1.0
    assert smallest(low) < 0 < smallest(high)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if smallest(middle) < 0 else (low, middle)
    with pytest.raises(DegenerateHessian, match="not separated from 0"):
        certify(problem, (1 - low) * saddles[0] + low * minimum)


def test_precision_insufficient_is_refused_and_automatic_precision_goes_higher(problem, minimum):
    W = minimum.copy()
    W[4] = W[1] * (1 + 2.0 ** -52)  # not exactly parallel: 53-bit balls cannot tell
    with pytest.raises(PrecisionInsufficient, match="53 bits"):
        certify(problem, W, precision=53)
    with pytest.raises(CertificationRefused) as refusal:  # 128 bits separates them; the point is not critical
        certify(problem, W)
    assert not isinstance(refusal.value, PrecisionInsufficient)


def test_bad_arguments(problem, minimum):
    with pytest.raises(sp.SpuriousError, match="shape"):
        certify(problem, minimum[:-1])
    with pytest.raises(sp.SpuriousError, match="radius_factor"):
        certify(problem, minimum, radius_factor=1)
    with pytest.raises(NotCertifiable, match="^problem custom .*cannot be certified"):
        certify(sp.Problem.from_loss(lambda x: (x ** 2).sum(), (2,)), np.ones(2))
    with pytest.raises(sp.SpuriousError, match="spurious.Problem"):
        certify("relu-teacher-student", minimum)


# ------------------------------------------------------------------------------------------------
# the contract: what is certified is decided by the problem's rigorous() data, not by its class

#: a small registered landscape without a rigorous evaluation
QUADRATIC = {"dim": 3, "hidden": 4, "samples": 10, "weight_decay": 0.01}


class ReLUByContract(sp.Problem):
    """Not a ReLUTeacherStudent: a problem that only states, through rigorous(), that its loss is the
    ReLU teacher-student population loss with teacher V = I (k = n)."""

    name = "relu-by-contract"

    def __init__(self, k: int):
        self.k = k
        self.shape = (k, k)
        self._relu = sp.ReLUTeacherStudent(teacher=k, student=k)

    def loss(self, params):
        return self._relu.loss(params)

    def rigorous(self):
        return {"landscape": "relu-teacher-student", "teacher": self.k, "student": self.k,
                "teacher_weights": np.eye(self.k).tolist()}


def test_any_problem_with_rigorous_data_is_certified_from_that_data(minimum, minimum_certificate):
    by_contract = ReLUByContract(K)
    assert by_contract.certifiable and not isinstance(by_contract, sp.ReLUTeacherStudent)
    assert certify(by_contract, minimum).data == minimum_certificate.data


def test_a_problem_without_rigorous_evaluation_is_refused_in_one_line_naming_it():
    quadratic = sp.problems.build("quadratic-network", QUADRATIC)
    assert not quadratic.certifiable
    point = np.asarray(quadratic.init(jax.random.PRNGKey(0)))
    for attempt in (lambda: certify(quadratic, point), lambda: certify(quadratic, point, polish=True),
                    lambda: certify_families(quadratic, type("A", (), {"families": ()})())):
        with pytest.raises(NotCertifiable) as refusal:
            attempt()
        message = str(refusal.value)
        assert message.startswith("problem quadratic-network (dim=3, hidden=4, samples=10, weight_decay=0.01")
        assert "cannot be certified" in message and "relu-teacher-student" in message and "\n" not in message
    assert not issubclass(NotCertifiable, CertificationRefused)  # a property of the problem, never a family's outcome


def test_rigorous_data_for_an_unknown_landscape_or_another_shape_is_refused(minimum):
    class OtherLandscape(ReLUByContract):
        def rigorous(self):
            return {"landscape": "erf-network", "width": self.k}

    with pytest.raises(NotCertifiable, match="names landscape 'erf-network', which spurious.verify does not evaluate"):
        certify(OtherLandscape(K), minimum)

    class WrongShape(ReLUByContract):
        def rigorous(self):
            return {**super().rigorous(), "student": self.k + 1}

    with pytest.raises(sp.SpuriousError, match=r"points of shape \(7, 6\), but the problem's shape is \(6, 6\)"):
        certify(WrongShape(K), minimum)


def test_summary_names_the_certificates_landscape(minimum_certificate):
    assert "spurious local minimum of the ReLU teacher-student loss (k=6, n=6, d=6):" in \
        minimum_certificate.summary()
    other = Certificate({**minimum_certificate.data, "problem": {"name": "erf-network", "width": 3,
                                                                  "weights": [[1.0, 2.0]]}})
    first = other.summary().splitlines()[0]
    assert first == "certified spurious local minimum of the erf-network loss (width=3):" and "ReLU" not in first


# ------------------------------------------------------------------------------------------------
# the certificate file


def _digit_positions(text):
    return [i for i, ch in enumerate(text) if ch.isdigit()]


def _changed(text, i):
    return text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:]


def test_any_changed_digit_fails_verification(minimum_certificate):
    original = json.loads(minimum_certificate.to_json())
    verify.verify_certificate(json.loads(json.dumps(original)))
    fields = ([("bounds", key) for key, v in original["bounds"].items() if isinstance(v, str)]
              + [("claim", key) for key, v in original["claim"].items() if isinstance(v, str)])
    tried = 0
    for section, key in fields:
        for i in _digit_positions(original[section][key]):
            data = json.loads(json.dumps(original))
            data[section][key] = _changed(data[section][key], i)
            with pytest.raises(verify.InvalidCertificate, match="digest"):
                verify.verify_certificate(data)
            # even with the digest recomputed, the mathematics rejects it
            data["digest"] = verify.digest(data)
            with pytest.raises(verify.InvalidCertificate):
                verify.verify_certificate(data)
            tried += 1
    for section, key, new in (("claim", "morse_index", 1), ("bounds", "center_hessian_negative_eigenvalues", 1)):
        data = json.loads(json.dumps(original))
        data[section][key] = new
        data["digest"] = verify.digest(data)
        with pytest.raises(verify.InvalidCertificate):
            verify.verify_certificate(data)
    # every digit of a few point entries, and of the teacher weights
    for row, col in ((0, 0), (3, 5), (5, 2)):
        for i in _digit_positions(original["point"][row][col]):
            data = json.loads(json.dumps(original))
            data["point"][row][col] = _changed(data["point"][row][col], i)
            with pytest.raises(verify.InvalidCertificate):
                verify.verify_certificate(data)
            tried += 1
    data = json.loads(json.dumps(original))
    data["problem"]["teacher_weights"][1][1] = "2.0"
    with pytest.raises(verify.InvalidCertificate):
        verify.verify_certificate(data)
    # a point changed at a significant digit fails on the mathematics, not only on the digest
    data = json.loads(json.dumps(original))
    entry = data["point"][0][0]
    data["point"][0][0] = verify.float_text(float(entry) + 1e-6)
    data["digest"] = verify.digest(data)
    with pytest.raises(verify.InvalidCertificate, match="gradient_norm_upper|proof does not go through"):
        verify.verify_certificate(data)
    assert tried > 60


def test_malformed_certificates_are_refused(tmp_path, minimum_certificate):
    path = tmp_path / "c.json"
    path.write_text("not json")
    with pytest.raises(verify.InvalidCertificate, match="not JSON"):
        verify.verify_file(path)
    data = json.loads(minimum_certificate.to_json())
    data["bounds"]["radius"] = "1e99999999"
    data["digest"] = verify.digest(data)
    with pytest.raises(verify.InvalidCertificate, match="radius"):
        verify.verify_certificate(data)
    data = json.loads(minimum_certificate.to_json())
    data["point"][0][0] = data["point"][0][0] + "0"  # same number, not the canonical spelling
    data["digest"] = verify.digest(data)
    with pytest.raises(verify.InvalidCertificate, match="canonical"):
        verify.verify_certificate(data)


def test_verify_module_imports_no_jax_and_nothing_from_spurious():
    tree = ast.parse((ROOT / "spurious" / "verify.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert not relative
    assert imported <= {"__future__", "contextlib", "hashlib", "json", "math", "os", "re", "sys", "dataclasses",
                        "fractions", "numpy", "flint", "threadpoolctl"}


def test_genuine_certificate_verifies_in_a_fresh_process(tmp_path, minimum_certificate):
    path = tmp_path / "cert.json"
    minimum_certificate.write(path)
    done = subprocess.run([sys.executable, "-m", "spurious", "verify", str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("valid: a spurious local minimum")
    # the checker alone, loaded from its file: no JAX, no spurious package
    script = ("import importlib.util, sys\n"
              f"spec = importlib.util.spec_from_file_location('checker', {str(ROOT / 'spurious' / 'verify.py')!r})\n"
              "checker = importlib.util.module_from_spec(spec); sys.modules['checker'] = checker\n"
              "spec.loader.exec_module(checker)\n"
              f"print(checker.verify_file({str(path)!r}).kind)\n"
              "assert 'jax' not in sys.modules and 'spurious' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "minimum", done.stderr
    tampered = json.loads(path.read_text())
    tampered["claim"]["eigenvalue_abs_lower"] = "9.99e-1"
    path.write_text(json.dumps(tampered))
    done = subprocess.run([sys.executable, str(ROOT / "spurious" / "verify.py"), str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "invalid certificate" in done.stderr


# ------------------------------------------------------------------------------------------------
# command line


def test_cli_certify_and_verify(tmp_path, capsys, minimum, saddles):
    np.save(tmp_path / "min.npy", minimum)
    (tmp_path / "saddle.json").write_text(json.dumps({"point": saddles[0].tolist()}))
    np.savetxt(tmp_path / "min.txt", minimum, delimiter=",")
    out = tmp_path / "cert.json"
    assert main(["certify", "-k", str(K), "-n", str(K), "--point", str(tmp_path / "min.npy"), "-o", str(out)]) == 0
    assert "certified spurious local minimum" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    assert capsys.readouterr().out.startswith("valid:")
    assert main(["certify", "-k", str(K), "-n", str(K), "--point", str(tmp_path / "saddle.json"), "-o",
                 str(tmp_path / "s.json")]) == 0
    assert "saddle of Morse index 1" in capsys.readouterr().out
    assert Certificate.read(tmp_path / "s.json").morse_index == 1
    np.testing.assert_array_equal(read_point(tmp_path / "min.txt"), minimum)
    np.testing.assert_array_equal(read_point(out), minimum)  # a certificate is also a point file

    moved = tmp_path / "moved.npy"
    np.save(moved, minimum + 1e-3)
    assert main(["certify", "-k", str(K), "-n", str(K), "--point", str(moved), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spurious: error: not near a critical point") and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()
    assert main(["certify", "-k", str(K), "-n", str(K), "-o", str(tmp_path / "x.json")]) == 2
    assert "--point" in capsys.readouterr().err
    assert main(["certify", "-k", "3", "-n", str(K), "--point", str(tmp_path / "min.npy"), "-o", "x.json"]) == 2
    assert "shape" in capsys.readouterr().err
    data = json.loads(out.read_text())
    data["bounds"]["radius"] = "1.2e-12"
    out.write_text(json.dumps(data))
    assert main(["verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("spurious: error: invalid certificate: digest mismatch") and err.count("\n") == 1
    assert main(["verify", str(tmp_path / "missing.json")]) == 2


QUADRATIC_ARGS = ["--problem", "quadratic-network"] + [a for k, v in QUADRATIC.items() for a in ("--param", f"{k}={v}")]


@pytest.mark.parametrize("args, message", [
    (QUADRATIC_ARGS + ["--runs", "2"], "problem quadratic-network (dim=3, hidden=4, samples=10, weight_decay=0.01"),
    (QUADRATIC_ARGS + ["--point", "POINT"], "cannot be certified: it has no rigorous"),
    (["--problem", "no-such-landscape", "--runs", "2"], "unknown problem 'no-such-landscape'"),
    (["--problem", "nowhere/missing.py:Landscape", "--runs", "2"], "no such file nowhere/missing.py"),
    (["--problem", "relu-teacher-student:"], "must be path/to/file.py:NAME"),
    (["-k", "3", "-n", "3", "--param", "width=4", "--runs", "2"], "takes no parameter 'width'"),
    (["--param", "teacher=six", "--param", "student=3", "--runs", "2"], "--param teacher must be an integer"),
    (["--param", "teacher", "--runs", "2"], "expected KEY=VALUE"),
    (["--problem", "relu-teacher-student", "--param", "teacher=3", "--runs", "2"], "needs parameter student"),
    (["-k", "3", "--param", "teacher=3", "-n", "3", "--runs", "2"], "given twice"),
    (QUADRATIC_ARGS + ["-k", "3", "--runs", "2"], "takes no parameter 'teacher' (--teacher is shorthand"),
    (["-k", "3", "-n", "3", "--runs", "2", "--protocol", "1999"], "has no protocol '1999'"),
])
def test_cli_refusals_come_first_in_one_line(tmp_path, capsys, monkeypatch, minimum, args, message):
    def no_work(*args, **kwargs):
        raise AssertionError("the engine ran before the refusal")

    monkeypatch.setattr(sp, "run", no_work)
    np.save(tmp_path / "p.npy", minimum[:4, :3])
    out = tmp_path / "cert.json"
    args = [str(tmp_path / "p.npy") if a == "POINT" else a for a in args]
    assert main(["certify", *args, "-q", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spurious: error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_cli_problem_and_params_give_the_shorthands_certificate(tmp_path, capsys, minimum):
    np.save(tmp_path / "min.npy", minimum)
    long_form, shorthand = tmp_path / "long.json", tmp_path / "short.json"
    assert main(["certify", "--problem", "relu-teacher-student", "--param", f"teacher={K}", "--param", f"student={K}",
                 "--point", str(tmp_path / "min.npy"), "-o", str(long_form)]) == 0
    assert main(["certify", "--teacher", str(K), "--student", str(K), "--point", str(tmp_path / "min.npy"),
                 "-o", str(shorthand)]) == 0
    assert long_form.read_bytes() == shorthand.read_bytes()
    assert Certificate.read(long_form).verify().kind == "minimum"
    printed = capsys.readouterr().out
    assert printed.count("certified spurious local minimum of the ReLU teacher-student loss (k=6, n=6, d=6)") == 2


# ------------------------------------------------------------------------------------------------
# bulk API


def test_certify_families_of_an_analysis(problem, minimum, saddles):
    # endpoints as the optimizer would report them: the minimum twice (once permuted), both saddles
    permuted = minimum[[1, 0, 2, 3, 4, 5]][:, [1, 0, 2, 3, 4, 5]]
    params = np.stack([minimum, permuted, saddles[0], saddles[1]])
    endpoints = Endpoints(run=np.arange(4), params=params, loss=np.zeros(4), grad_norm=np.zeros(4),
                          steps=np.zeros(4, int), halvings=np.zeros(4, int), newton=np.zeros(4, bool),
                          status=np.array([CONVERGED] * 4), seed=0, optimizer=GradientDescent(), seconds=0.0)
    analysis = analyze(problem, endpoints)
    results = certify_families(problem, analysis)
    assert [r.family_class for r in results] == [f.cls for f in analysis.families]
    assert all(r.certified for r in results)
    by_class = {r.family_class: r for r in results}
    assert by_class["spurious_minimum"].certificate.spurious is True
    assert {r.certificate.morse_index for r in results if r.family_class == "saddle"} == \
        {f.morse_index for f in analysis.families if f.cls == "saddle"}
    summary = results[0].to_dict(with_certificate=False)
    assert summary["status"] == "certified" and "certificate" not in summary
    # a refusal is recorded, not raised
    broken = analysis.families[0].__class__(**{**analysis.families[0].__dict__,
                                               "representative": np.zeros_like(minimum)})
    refused = certify_families(problem, type("A", (), {"families": (broken,)})())
    assert refused[0].status == "refused" and refused[0].refusal == "TooCloseToNonSmooth"


@pytest.mark.slow
def test_engine_to_certificate_end_to_end(tmp_path, capsys):
    out = tmp_path / "cert.json"
    assert main(["certify", "-k", "8", "-n", "8", "--runs", "64", "--seed", "0", "--family", "lowest-spurious",
                 "-q", "-o", str(out)]) == 0
    cert = Certificate.read(out)
    assert cert.kind == "minimum" and cert.spurious and abs(float(cert.loss_lower) - 0.021508) < 1e-6
    assert main(["verify", str(out)]) == 0
