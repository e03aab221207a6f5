"""The docs' user landscape (docs/examples/erf_network.py, docs/your-landscape.md): its closed form
against Monte Carlo and numerical integration, and the three ways of running it (Python, the
`spurious run` command, a TOML study) giving the same classes and families on the same seed."""
from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tokenize
from collections import Counter
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import dblquad
from scipy.special import erf

import spurious as sp
from spurious.problems import registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "erf_network.py"
PAGE = ROOT / "docs" / "your-landscape.md"
SPEC = f"{EXAMPLE}:ErfNetwork"
DOCS_SPEC = "docs/examples/erf_network.py:ErfNetwork"  # as the page writes it, from the repository root
RUNS, SEED = 20, 0


def erf_network(**params):
    return registry.build(SPEC, params)


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.S)


# -- the file and the page ------------------------------------------------------------------------
def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not a docstring."""
    lines, previous = set(), tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        kind = token.type
        if kind == tokenize.STRING and previous in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT):
            previous = kind  # a string standing alone as a statement: a docstring
            continue
        if kind not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER):
            lines.update(range(token.start[0], token.end[0] + 1))
        if kind not in (tokenize.COMMENT, tokenize.NL):
            previous = kind
    return len(lines)


def test_the_example_is_at_most_20_lines_and_the_page_shows_it():
    source = EXAMPLE.read_text()
    assert code_lines(source) <= 20
    assert code_lines('"""doc"""\nimport os  # why\n\n\ndef f():\n    """doc"""\n    return (1,\n            2)\n') == 4
    body = source.split('"""', 2)[2].strip()  # the file after its module docstring
    assert code_blocks("python")[0].strip() == body, "docs/your-landscape.md shows another version of the file"


def test_parameters_are_typed_and_bad_input_is_one_line():
    found = registry.entry(SPEC)
    assert found.parameter("teacher").type == "int" and found.parameter("teacher").required
    assert found.parameter("dim").optional and found.parameter("dim").default is None
    with pytest.raises(sp.SpuriousError, match="must be an integer"):
        erf_network(teacher="3", student=3)
    for bad in ({"teacher": 3, "student": 0}, {"teacher": 3, "student": 3, "dim": 2}):
        with pytest.raises(sp.SpuriousError, match="erf network needs") as caught:
            erf_network(**bad)
        assert "\n" not in str(caught.value)


# -- the closed form ----------------------------------------------------------------------------------
def closed_pair(a, b) -> float:
    return float(2 / np.pi * np.arcsin(2 * a @ b / np.sqrt((1 + 2 * a @ a) * (1 + 2 * b @ b))))


def integrated_pair(a, b) -> float:
    """E[erf(a.x) erf(b.x)] as a 2-d integral: x projected on span(a, b) is a standard normal pair."""
    _, R = np.linalg.qr(np.stack([a, b], 1))
    density = lambda y, x: np.exp(-(x * x + y * y) / 2) / (2 * np.pi)
    integrand = lambda y, x: density(y, x) * erf(R[0, 0] * x + R[1, 0] * y) * erf(R[0, 1] * x + R[1, 1] * y)
    return dblquad(integrand, -12, 12, -12, 12, epsabs=1e-12, epsrel=1e-12)[0]


def test_pair_expectation_matches_a_numerical_integral():
    rng = np.random.default_rng(0)
    module = sys.modules[type(erf_network(teacher=1, student=1)).__module__]
    for scale in (0.5, 1.5):
        a, b = scale * rng.standard_normal(3), rng.standard_normal(3)
        for u, v in ((a, b), (a, a), (a, -0.3 * a)):  # generic, equal (the diagonal terms), parallel
            assert abs(integrated_pair(u, v) - closed_pair(u, v)) <= 1e-10
            kernel = float(module.erf_kernel(jnp.asarray(u[None]), jnp.asarray(v[None]))[0, 0])
            assert abs(kernel - closed_pair(u, v)) <= 1e-14


@pytest.mark.parametrize("teacher, student, dim", [(2, 3, 3), (3, 3, None)])
def test_loss_matches_monte_carlo(teacher, student, dim):
    problem = erf_network(teacher=teacher, student=student, dim=dim)
    d = problem.shape[1]
    rng = np.random.default_rng(teacher * 10 + student)
    W = rng.standard_normal(problem.shape) / np.sqrt(d)
    V = np.eye(teacher, d)
    samples = 2_000_000
    x = rng.standard_normal((samples, d))
    residual = erf(x @ W.T).sum(1) - erf(x @ V.T).sum(1)
    values = 0.5 * residual ** 2
    mean, error = values.mean(), values.std(ddof=1) / np.sqrt(samples)
    exact = float(problem.loss(jnp.asarray(W)))
    assert abs(mean - exact) <= 4 * error, f"closed form {exact}, Monte Carlo {mean} +- {error}"


def test_global_minimum_value():
    fitted = erf_network(teacher=2, student=3)
    W = np.vstack([np.eye(2), np.zeros((1, 2))])  # the teacher, one neuron off
    assert fitted.global_min_value == 0.0 and abs(float(fitted.loss(jnp.asarray(W)))) <= 1e-15
    assert erf_network(teacher=3, student=2).global_min_value is None
    rng = np.random.default_rng(1)
    assert all(float(fitted.loss(jnp.asarray(rng.standard_normal((3, 2))))) > 0 for _ in range(5))


# -- three ways, one answer ------------------------------------------------------------------------------
def family_tuples(families) -> list[tuple]:
    """(class, Morse index, count, loss) of each family, in a canonical order."""
    return sorted(families, key=lambda f: (f[0], f[1], f[2], f[3]))


def assert_same_families(mine, theirs, where: str):
    mine, theirs = family_tuples(mine), family_tuples(theirs)
    assert [f[:3] for f in mine] == [f[:3] for f in theirs], f"{where}: families differ: {mine} vs {theirs}"
    for a, b in zip(mine, theirs):
        assert abs(a[3] - b[3]) <= 1e-9, f"{where}: family loss {a[3]} vs {b[3]}"


@pytest.fixture(scope="module")
def in_python():
    """The Python way, as the page writes it (the spec made absolute: tests run from anywhere)."""
    problem = registry.build(SPEC, {"teacher": 3, "student": 3})
    result = sp.run(problem, runs=RUNS, seed=SEED)
    families = [(f.cls, int(f.morse_index), int(f.count), float(f.loss)) for f in result.analysis.families]
    return result, result.analysis.counts(), families


def test_sp_run_classifies_every_endpoint(in_python):
    result, counts, families = in_python
    assert sum(counts.values()) == RUNS and len(result.analysis.cls) == RUNS
    assert "global_minimum" in counts  # n = k = 3 has the teacher itself among its minima
    assert sum(f[2] for f in families) <= RUNS
    for cls, index, count, loss in families:
        assert loss >= -1e-12 and count >= 1
        if cls == "global_minimum":
            assert index == 0 and loss <= 1e-9


def test_the_command_line_gives_the_same_numbers(in_python, tmp_path):
    _, counts, families = in_python
    command = (f"spurious run --problem {DOCS_SPEC} --param teacher=3 --param student=3 "
               f"--runs {RUNS} --seed {SEED} --json out.json")
    assert any(command in block for block in code_blocks("sh")), "the page shows another command"
    out = tmp_path / "out.json"
    args = command.split()[1:-1] + [str(out), "--quiet"]
    done = subprocess.run([sys.executable, "-m", "spurious", *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["runs"] == RUNS and summary["seed"] == SEED
    assert summary["counts"] == counts
    assert_same_families(families, [(f["class"], f["morse_index"], f["count"], f["loss"]) for f in summary["families"]],
                         "spurious run")


def test_a_toml_study_stores_and_reports_the_same_numbers(in_python, tmp_path):
    _, counts, families = in_python
    # the page's study file, saved next to a copy of the example as the page says
    shutil.copy(EXAMPLE, tmp_path / "erf_network.py")
    (study := tmp_path / "erf_study.toml").write_text(code_blocks("toml")[0])
    store, html = tmp_path / "erf.db", tmp_path / "erf-reports"
    done = subprocess.run([sys.executable, "-m", "spurious", "study", "run", str(study), "--store", str(store),
                           "--html", str(html), "--quiet"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # read the store as plain SQLite: what it holds, not what the store's own reader says
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        problems = {json.loads(params)["student"]: key for key, params in db.execute("SELECT key, params FROM problems")}
        assert sorted(problems) == [3, 4]
        per_problem = {}
        for student, key in problems.items():
            classes = Counter(c for (c,) in db.execute("SELECT class FROM runs WHERE problem_key = ?", (key,)))
            stored = [(c, i, n, loss) for c, i, n, loss in db.execute(
                "SELECT class, morse_index, count, loss FROM families WHERE problem_key = ?", (key,))]
            per_problem[student] = (dict(classes), stored)
    finally:
        db.close()
    assert sum(per_problem[4][0].values()) == RUNS
    assert per_problem[3][0] == counts
    assert_same_families(families, per_problem[3][1], "the study")

    pages = sorted(html.glob("*.html"))
    assert pages, f"no HTML report in {html}"
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(svg|style|script).*?</\1>", " ", pages[0].read_text(), flags=re.S))
    for student in (3, 4):
        assert re.search(rf"student\s*=\s*{student}\b", text), f"the report names no problem with student = {student}"
    assert re.search(r"famil", text, re.I) and re.search(r"global.minim", text, re.I)
