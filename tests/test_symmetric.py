"""Fixed-point spaces of diagonal Young subgroups (ReLU teacher-student, V = I, n = d = k): the loss on
them against the dense loss, the isotypic spectrum against the dense Hessian, Newton and continuation
against an independent dense Newton and a multistart, isotropy of endpoints, large-k certificates and
their tampering, and the command line."""
import copy
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import spurious as sp
from spurious import fixed_points as fp
from spurious import verify_symmetric as vs
from spurious.certify import certify_symmetric
from spurious.problems.symmetry import coordinate_isotropy
from spurious.verify import InvalidCertificate

from symmetric_points import fixed_space_saddle, symmetric_critical_point

# the 2018 minimum at k = 6 in the coordinates of Fix(Delta(S_5 x S_1)): D0, O0, D1, X01, X10
START_2018 = (1.0, -0.03, -0.65, 0.25, 0.17)
PARTITIONS = [(5, 1), (4, 2), (3, 2, 1), (6,), (2, 2, 2), (7, 1, 1), (3, 3), (1, 1, 1, 1), (5, 3, 2)]


def dense(k):
    return sp.ReLUTeacherStudent(teacher=k, student=k)


def random_values(sizes, rng):
    """A random point of Fix(H) away from the non-smooth set (generic entries)."""
    return rng.normal(size=len(vs.coordinates(sizes))) * 0.5 + 0.1


@pytest.fixture(scope="module")
def family_2018():
    point = fp.newton((5, 1), START_2018)
    return {p.k: p for p in [point] + fp.continue_in_k(point, list(range(7, 21)) + [25, 30, 40])}


@pytest.mark.parametrize("sizes", PARTITIONS)
def test_fixed_space_loss_and_gradient_match_the_dense_problem(sizes):
    rng = np.random.default_rng(sum(sizes) * 7 + len(sizes))
    k = sum(sizes)
    problem = dense(k)
    for _ in range(3):
        x = random_values(sizes, rng)
        W = vs.to_matrix(sizes, x)
        assert fp.restricted_loss(sizes, x) == pytest.approx(float(problem.loss(W)), abs=1e-13)
        # grad L = E^T grad F: the dense gradient summed over each orbit of entries
        grad = np.asarray(problem.grad(W))
        summed = [np.sum(grad * (vs.to_matrix(sizes, np.eye(len(x))[c]) != 0)) for c in range(len(x))]
        np.testing.assert_allclose(fp.restricted_gradient(sizes, x), summed, atol=1e-12)
        # the float64 loss agrees with the Arb evaluation of the same formula
        assert float(fp.precise_loss(sizes, x)) == pytest.approx(float(problem.loss(W)), abs=1e-13)


@pytest.mark.parametrize("sizes", PARTITIONS)
def test_isotypic_spectrum_equals_the_dense_spectrum_with_multiplicities(sizes):
    rng = np.random.default_rng(len(sizes) + 100 * sum(sizes))
    x = random_values(sizes, rng)
    k = sum(sizes)
    spectrum = fp.symmetric_spectrum(sizes, x)
    assert sum(b.multiplicity * len(b.eigenvalues) for b in spectrum.blocks) == k * k
    eigenvalues = np.linalg.eigvalsh(np.asarray(dense(k).hessian(vs.to_matrix(sizes, x))))
    np.testing.assert_allclose(spectrum.full(), eigenvalues, atol=1e-10)


def test_block_sizes_of_the_2018_type_follow_the_representation_theory():
    """Delta(S_{k-1} x S_1): trivial x5, standard [k-2,1] x5, [k-3,2] x1, [k-3,1,1] x1 (12 distinct)."""
    for k in (6, 10, 1000):
        blocks = vs.isotypic_blocks((k - 1, 1))
        p = k - 1
        assert [(b.dimension, b.size) for b in blocks] == [
            (1, 5), (p - 1, 5), (p * (p - 3) // 2, 1), ((p - 1) * (p - 2) // 2, 1)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=4))
def test_isotypic_blocks_cover_every_direction(sizes):
    blocks = vs.isotypic_blocks(tuple(sizes))  # raises unless sum dim x copies = k^2
    k = sum(sizes)
    assert sum(b.dimension * b.size for b in blocks) == k * k
    assert blocks[0].size == len(vs.coordinates(tuple(sizes)))


def test_2018_minima_dense_check_at_k_40(family_2018):
    """The solver's critical point at k = 40 is critical for the dense problem, and its 1600 Hessian
    eigenvalues are the blocks' 12 with their multiplicities."""
    point = family_2018[40]
    W = point.matrix()
    problem = dense(40)
    assert float(np.max(np.abs(np.asarray(problem.grad(W))))) < 1e-13
    eigenvalues = np.linalg.eigvalsh(np.asarray(problem.hessian(W)))
    spectrum = fp.symmetric_spectrum(point.sizes, point.values)
    np.testing.assert_allclose(spectrum.full(), eigenvalues, atol=1e-9)
    assert len(spectrum.distinct()) == 12 and spectrum.morse_index == 0


@pytest.mark.parametrize("k", [6, 9, 13, 20])
def test_continuation_agrees_with_an_independent_dense_newton(family_2018, k):
    """tests/symmetric_points.py solves the same family with the problem's dense gradient and Hessian."""
    W, gradient = symmetric_critical_point(k, [START_2018[i] for i in (0, 1, 3, 4, 2)], iterations=60)
    assert gradient < 1e-12
    np.testing.assert_allclose(family_2018[k].matrix(), W, atol=1e-10)
    # the published lowest spurious losses (2018, 6 digits)
    published = {6: 0.025081, 9: 0.020014, 13: 0.015613, 20: 0.011276}
    assert family_2018[k].loss == pytest.approx(published[k], abs=5e-7)


def test_multistart_families_are_reproduced_by_the_fixed_point_solver():
    """Every spurious family of a k = 11 multistart has a diagonal isotropy; Newton in its fixed space
    from its coordinates gives its loss to 1e-12 and every dense eigenvalue to 1e-9."""
    k = 11
    result = sp.run(dense(k), runs=60, seed=1)
    spurious_families = [f for f in result.analysis.families if f.cls != "global_minimum"]
    assert len(spurious_families) >= 2
    for family in spurious_families:
        found = coordinate_isotropy(family.representative, k, 1e-6)
        assert found.diagonal and family.isotropy == found.name
        values, deviation = vs.from_matrix(found.sizes, family.representative[np.ix_(found.rows, found.columns)])
        assert deviation < 1e-9
        solved = fp.newton(found.sizes, values)
        assert abs(solved.loss - family.loss) < 1e-12
        eigenvalues = np.linalg.eigvalsh(np.asarray(dense(k).hessian(family.representative)))
        np.testing.assert_allclose(fp.symmetric_spectrum(found.sizes, solved.values).full(), eigenvalues, atol=1e-9)


def test_isotropy_is_invariant_and_recognises_types(family_2018):
    rng = np.random.default_rng(5)
    point = family_2018[12]
    for _ in range(3):
        image = point.matrix()[rng.permutation(12)][:, rng.permutation(12)]
        found = coordinate_isotropy(image, 12)
        assert (found.name, found.type, found.diagonal) == ("Δ(S_11 × S_1)", "Δ(S_{k−1} × S_1)", True)
        values, _ = vs.from_matrix(found.sizes, image[np.ix_(found.rows, found.columns)])
        np.testing.assert_allclose(values, point.values, atol=1e-15)
    assert coordinate_isotropy(np.eye(7)[rng.permutation(7)], 7).name == "ΔS_7"
    # one more neuron (a split): the group acts on the k matched neurons and fixes the extra one
    wider = dense(12).split(point.matrix(), 11, 0.3)[1]
    assert coordinate_isotropy(wider, 12).name == "Δ(S_11 × S_1) on 12 neurons, 1 more fixed"
    # breaking the symmetry of one neuron leaves the others' group: Delta(S_10 x S_1 x S_1)
    broken = point.matrix().copy()
    broken[0, 0] += 1e-3
    assert coordinate_isotropy(broken, 12, 1e-6).name == "Δ(S_10 × S_1^2)"
    # a generic point has only the trivial group
    assert coordinate_isotropy(rng.normal(size=(5, 5)), 5).name == "trivial"


def test_high_precision_newton_fixes_what_float64_cannot_resolve(family_2018):
    point = fp.continue_in_k(family_2018[40], [100, 400, 1000])[-1]
    precise = fp.high_precision_newton(point)
    assert precise.gradient_norm < 1e-13  # the float64 point nearest the critical point
    assert abs(float(fp.precise_loss(precise.sizes, precise.values)) - 2.925528213523e-4) < 1e-15


# ---------------------------------------------------------------------------------------------
# certificates


@pytest.fixture(scope="module")
def certificate_10000(family_2018):
    point = fp.continue_in_k(family_2018[40], fp.ladder(40, [10000]))[-1]
    return certify_symmetric(point)


def _redigest(certificate):
    certificate["digest"] = vs.digest(certificate)
    return certificate


def test_large_k_certificate_verifies_and_states_a_spurious_minimum(certificate_10000):
    verified = vs.verify_certificate(json.loads(json.dumps(certificate_10000)))
    assert verified.kind == "minimum" and verified.spurious and verified.morse_index == 0
    lower, upper = Fraction(verified.loss_lower), Fraction(verified.loss_upper)
    # 12 significant digits at least; the value from the continuation at 256 bits
    assert 0 < lower <= Fraction("2.9612583390137e-5") <= upper and (upper - lower) / lower < Fraction(1, 10 ** 12)
    assert 0.0896 < float(verified.eigenvalue_lower) < 0.0898


@pytest.mark.parametrize("tamper", ["point", "multiplicity", "copies", "index", "negative", "eigenvalue",
                                    "loss", "partition", "digest", "problem", "types"])
def test_tampered_certificate_fails(certificate_10000, tamper):
    bad = copy.deepcopy(certificate_10000)
    if tamper == "point":  # one digit of the diagonal coordinate (its 6th significant digit)
        text = bad["point"]["values"][0]
        digits = list(text)
        position = [i for i, ch in enumerate(digits) if ch.isdigit()][5]
        digits[position] = "7" if digits[position] != "7" else "3"
        bad["point"]["values"][0] = "".join(digits)
        assert float(bad["point"]["values"][0]) != float(text)
    elif tamper == "multiplicity":
        bad["blocks"][1]["eigenvalue_multiplicity"] += 1
    elif tamper == "copies":
        bad["blocks"][1]["copies"] -= 1
    elif tamper == "index":
        bad["claim"]["morse_index"] = 98
        bad["claim"]["kind"] = "saddle"
    elif tamper == "negative":
        bad["blocks"][1]["negative"] = 1
    elif tamper == "eigenvalue":
        bad["blocks"][2]["eigenvalue_lower"] = "9.9e-1"
    elif tamper == "loss":
        bad["claim"]["loss_lower"] = "3.0e-5"
    elif tamper == "problem":  # context the proof does not cover
        bad["problem"]["activation"] = "tanh"
    elif tamper == "types":
        bad["blocks"][1]["negative"] = 0.0
    elif tamper == "partition":
        bad["isotropy"] = {"partition": [9998, 2], "name": vs.isotropy_name((9998, 2), symbolic=False)}
    if tamper != "digest":
        _redigest(bad)  # a forger recomputes the digest: the mathematics must catch it
    else:
        bad["claim"]["loss_upper"] = "2.75e-3"
    with pytest.raises(InvalidCertificate):
        vs.verify_certificate(bad)


def test_a_saddle_certificate_counts_its_index_by_multiplicities():
    """A critical point of Fix(Delta(S_5 x S_1)) with negative directions: the certified Morse index
    (sum of multiplicity x negative block eigenvalues) equals the dense Hessian's count."""
    saddle = fixed_space_saddle()
    certificate = certify_symmetric(saddle)
    verified = vs.verify_certificate(certificate)
    dense_index = int(np.sum(np.linalg.eigvalsh(np.asarray(dense(6).hessian(saddle.matrix()))) < 0))
    assert verified.kind == "saddle" and verified.morse_index == dense_index > 1


def test_verifier_runs_without_jax(certificate_10000, tmp_path):
    path = tmp_path / "cert.json"
    path.write_text(json.dumps(certificate_10000))
    code = ("import sys; sys.modules['jax'] = None; sys.modules['jax.numpy'] = None\n"
            "import spurious.verify_symmetric as v, json\n"
            f"print(v.verify_certificate(json.load(open({str(path)!r}))).summary())\n"
            "assert 'jax' not in [m for m in sys.modules if sys.modules[m] is not None]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("valid: a spurious local minimum") and "k = n = d = 10000" in done.stdout


# ---------------------------------------------------------------------------------------------
# command line


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "spurious", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def point_file(family_2018, tmp_path_factory):
    path = tmp_path_factory.mktemp("symmetric") / "k8.npy"
    rng = np.random.default_rng(2)
    np.save(path, family_2018[8].matrix()[rng.permutation(8)][:, rng.permutation(8)])
    return path


def test_cli_continue_certifies_and_verify_rechecks(point_file, tmp_path):
    out = tmp_path / "certs"
    done = _cli("symmetric", "continue", "--point", str(point_file), "--at", "8,30", "--certify", str(out),
                "--json", str(tmp_path / "table.json"))
    assert done.returncode == 0, done.stderr
    assert "Δ(S_{k−1} × S_1)" in done.stdout
    table = json.loads((tmp_path / "table.json").read_text())
    assert [row["k"] for row in table["rows"]] == [8, 30] and all(row["spurious"] for row in table["rows"])
    certificate = out / "symmetric-k30-1.json"
    checked = _cli("verify", str(certificate))
    assert checked.returncode == 0 and "Δ(S_29 × S_1)" in checked.stdout
    tampered = json.loads(certificate.read_text())
    tampered["blocks"][0]["eigenvalue_multiplicity"] = 2
    certificate.write_text(json.dumps(_redigest(tampered)))
    refused = _cli("verify", str(certificate))
    assert refused.returncode == 1 and "invalid certificate" in refused.stderr


def test_cli_solve_with_dense_check(point_file):
    done = _cli("symmetric", "solve", "--point", str(point_file), "--dense-check")
    assert done.returncode == 0, done.stderr
    assert "isotropy Δ(S_7 × S_1)" in done.stdout and "Morse index 0" in done.stdout
    difference = float(done.stdout.split("by at most ")[1].split(";")[0])
    assert difference < 1e-9


@pytest.mark.parametrize("args, words", [
    (["--blocks", "6,2"], "is Δ(S_7 × S_1), not Δ(S_6 × S_2)"),
    (["--blocks", "6,1"], "add up to 7, not k = 8"),
    (["--blocks", "1,7"], "largest first"),
    (["--blocks", "x"], "comma-separated integers"),
])
def test_cli_refuses_a_group_that_does_not_fit(point_file, args, words):
    done = _cli("symmetric", "solve", "--point", str(point_file), *args)
    assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_refuses_bad_input_before_any_work(point_file, tmp_path):
    generic = tmp_path / "generic.npy"
    np.save(generic, np.random.default_rng(0).normal(size=(6, 6)))
    cases = [
        (["solve", "--point", str(generic)], "not a diagonal group"),
        (["continue", "--point", str(point_file), "--at", "5"], "must be >= the point's k = 8"),
        (["continue", "--point", str(point_file), "--at", "100000000"], "above the largest supported"),
        (["continue", "--point", str(point_file), "--at", "20", "--certify", str(tmp_path / "no" / "such")],
         "does not exist"),
        (["solve", "--point", str(tmp_path / "missing.npy")], "missing.npy"),
    ]
    for args, words in cases:
        done = _cli("symmetric", *args)
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_cli_refuses_a_dense_check_beyond_memory(tmp_path):
    big = tmp_path / "big.npy"
    k = 400
    np.save(big, vs.to_matrix((k - 1, 1), [1.0, -1e-6, -0.99, 0.005, 0.003]))
    done = _cli("symmetric", "solve", "--point", str(big), "--dense-check")
    assert done.returncode == 2 and "--dense-check at k = 400" in done.stderr


def test_the_analysis_takes_isotypic_spectra_where_dense_ones_are_out_of_reach(family_2018):
    """Above the dense limit the analysis asks the problem for the isotypic spectrum; forced here at
    k = 12 (limit 0), it equals the dense spectrum of the same points; a point without symmetry falls
    back to the dense one."""
    from spurious.analyze import hessian_spectra

    problem = dense(12)
    generic = np.random.default_rng(4).normal(size=(12, 12)) * 0.3
    points = np.stack([family_2018[12].matrix(), generic])
    fast = hessian_spectra(problem, points, dense_limit=0)
    slow = hessian_spectra(problem, points, dense_limit=10 ** 9)
    assert problem.isotypic_spectrum(points[0]) is not None and problem.isotypic_spectrum(points[1]) is None
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, atol=1e-10)
