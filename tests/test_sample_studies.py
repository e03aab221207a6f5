"""Learning from samples: the batched SGD machinery (spurious.sgd), the exact parity gradient
variance against brute force and Parseval, the data generators (determinism, also across processes),
and the four sample studies at their quick size, end to end through the CLI, the store and the HTML
report, with checks that their numbers are sane."""
from __future__ import annotations

import json
import os
from html import escape as html_escape
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from spurious import sgd
from spurious.cli import main
from spurious.core.errors import SpuriousError
from spurious.experiments import EXPERIMENTS, ExperimentReport, Figure, Verdict, load_all
from spurious.experiments import parity_2017, weight_sharing_2017, wide_cnn_2018, width_scaling_2021
from spurious.store import Store
from spurious.core.jsonable import canonical_json

STUDIES = ["weight-sharing-2017", "parity-2017", "width-scaling-2021", "wide-cnn-2018"]


# -- exact gradient variance over all parity targets ----------------------------------------------------
@pytest.mark.parametrize("dim", [3, 5])
def test_parity_gradients_match_brute_force(dim):
    """Every target's population gradient from one Walsh-Hadamard transform equals jax.grad of the
    hinge loss over all 2^d points, target by target; the chunked variance agrees with it."""
    params = parity_2017.init_network(jax.random.PRNGKey(dim), dim, 10 * dim)
    fast = parity_2017.parity_gradients(parity_2017.network, parity_2017.hinge, params, dim)

    points = sgd.cube_points(dim)
    flat, unravel = ravel_pytree(params)
    grad = jax.jit(jax.grad(lambda f, y: parity_2017.hinge_loss(unravel(f), points, y)))
    brute = []
    for subset in range(2 ** dim):  # every target: the parity of the coordinates whose bit is set
        labels = jnp.prod(jnp.where((subset >> np.arange(dim)) & 1 == 1, points, 1.0), axis=1)
        brute.append(np.asarray(grad(flat, labels)))
    brute = np.array(brute)
    np.testing.assert_allclose(fast, brute, rtol=0, atol=1e-13)

    # the variance, computed in three column chunks, against the brute-force gradients
    stats = parity_2017.parity_gradient_variance(parity_2017.network, parity_2017.hinge, params, dim,
                                                 chunk_bytes=8 * 2 ** dim * (flat.size // 3 + 1))
    assert stats["chunks"] == 3
    deviations = np.sum((brute - brute.mean(axis=0)) ** 2, axis=1)
    assert stats["variance"] == pytest.approx(np.mean(deviations), rel=1e-12)
    assert stats["max_deviation"] == pytest.approx(np.sqrt(deviations.max()), rel=1e-12)
    dp = jax.vmap(jax.grad(lambda f, x: parity_2017.network(unravel(f), x)), in_axes=(None, 0))(flat, points)
    assert stats["g2"] == pytest.approx(float(jnp.mean(jnp.sum(dp ** 2, axis=1))), rel=1e-12)
    assert 0 < stats["ratio"] <= 1.0  # Theorem 1 of the paper: Var <= G^2 / 2^d


def test_parity_variance_equals_parseval_where_hinge_is_linear():
    """Where |p(x)| < 1 on every input, the hinge loss is -y p in p, g_S = -E[chi_S grad p], and
    Parseval gives Var = G^2/2^d - ||grad p(1,...,1)||^2 / 4^d exactly (an independent closed form)."""
    dim = 9
    params = parity_2017.init_network(jax.random.PRNGKey(1), dim, 10 * dim)
    params = {**params, "a": 0.05 * params["a"], "c": 0.0 * params["c"]}  # small outputs: linear hinge region
    points = sgd.cube_points(dim)
    assert float(jnp.max(jnp.abs(parity_2017.network(params, points)))) < 1
    stats = parity_2017.parity_gradient_variance(parity_2017.network, parity_2017.hinge, params, dim)
    flat, unravel = ravel_pytree(params)
    at_ones = jax.grad(lambda f: parity_2017.network(unravel(f), points[0]))(flat)  # row 0 is (1, ..., 1)
    assert np.all(np.asarray(points[0]) == 1.0)
    expected = stats["g2"] / 2 ** dim - float(at_ones @ at_ones) / 4 ** dim
    assert stats["variance"] == pytest.approx(expected, rel=1e-10)


def test_walsh_hadamard_is_the_parity_transform():
    dim = 4
    points = np.asarray(sgd.cube_points(dim))
    values = np.random.default_rng(0).normal(size=(2 ** dim, 3))
    transform = parity_2017.walsh_hadamard(values)
    for subset in range(2 ** dim):
        chi = np.asarray(sgd.parity(points, ((subset >> np.arange(dim)) & 1).astype(bool)))
        np.testing.assert_allclose(transform[subset], chi @ values, atol=1e-12)
    with pytest.raises(ValueError):
        parity_2017.walsh_hadamard(np.ones((6, 2)))


# -- data generators: same seed same data, different seed different data -------------------------------
GENERATORS = {
    "gaussian": lambda seed: sgd.gaussian(seed, (20, 3)),
    "cube": lambda seed: sgd.cube(seed, 20, 6),
    "signs": lambda seed: sgd.random_signs(seed, 50),
    "subset": lambda seed: sgd.random_subset(seed, 16),
    "patches": lambda seed: weight_sharing_2017.patch_data(seed, 20, 4, 5, 3.0, 1.0)[1],
    "teacher_filter": lambda seed: weight_sharing_2017.teacher_filter(seed, 10, 3.0),
    "random_labels": lambda seed: width_scaling_2021.dataset(seed, 20, 8)[0],
    "images": lambda seed: wide_cnn_2018.images(seed, 5, 8),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_data_generators_are_deterministic(name):
    make = GENERATORS[name]
    first, again, other = np.asarray(make(3)), np.asarray(make(3)), np.asarray(make(4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


IN_FRESH_PROCESS = ("gaussian", "cube", "signs", "subset")  # every study draws its data through these


def test_data_generators_give_the_same_data_in_a_fresh_process():
    """Streams are named by a stable hash (crc32), not Python's per-process salted hash()."""
    code = ("import json, numpy as np, sys; sys.path.insert(0, 'tests'); from test_sample_studies import GENERATORS; "
            "print(json.dumps({k: np.asarray(f(7), dtype=float).ravel().tolist() for k, f in GENERATORS.items() "
            f"if k in {IN_FRESH_PROCESS!r}}}))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(there) == sorted(IN_FRESH_PROCESS)
    for name in IN_FRESH_PROCESS:
        np.testing.assert_array_equal(np.asarray(GENERATORS[name](7), dtype=float).ravel(), there[name], err_msg=name)


def test_streams_of_one_seed_differ_and_values_are_what_they_claim():
    assert not np.array_equal(np.asarray(sgd.gaussian(0, (10,), "train")), np.asarray(sgd.gaussian(0, (10,), "test")))
    x = np.asarray(sgd.cube(1, 100, 7))
    assert set(np.unique(x)) == {-1.0, 1.0}
    points = np.asarray(sgd.cube_points(3))
    assert points.shape == (8, 3) and len({tuple(r) for r in points}) == 8
    assert sgd.random_subset(5, 1).tolist() == [True]  # never empty
    for bad in (-1, 1.5, True):
        with pytest.raises(SpuriousError):
            sgd.stream_key(bad, "train")


def test_patch_data_target_is_the_mixture():
    x, y, low, high = weight_sharing_2017.patch_data(0, 50, 4, 5, 3.0, 2.0)
    u0 = weight_sharing_2017.teacher_filter(0, 5, 3.0)
    assert float(jnp.linalg.norm(u0)) == pytest.approx(3.0)
    h = np.tanh(np.asarray(x) @ np.asarray(u0))
    np.testing.assert_allclose(y, (2 * h[:, 0] + h.prod(axis=1)) / 3, atol=1e-14)
    np.testing.assert_allclose(low, h[:, 0], atol=1e-14)
    np.testing.assert_allclose(high, h.prod(axis=1), atol=1e-14)
    # the model with the teacher filter (shared or one copy per patch) reproduces y exactly
    np.testing.assert_allclose(weight_sharing_2017.model(u0, x, 2.0), y, atol=1e-14)
    np.testing.assert_allclose(weight_sharing_2017.model(jnp.tile(u0, (4, 1)), x, 2.0), y, atol=1e-14)
    # q = E tanh(3z)^2 by quadrature against a Monte Carlo estimate
    z = np.random.default_rng(0).standard_normal(400_000)
    assert weight_sharing_2017.tanh_second_moment(3.0) == pytest.approx(np.mean(np.tanh(3 * z) ** 2), abs=3e-3)


def test_conv_features_have_rank_min_n1_n():
    x = wide_cnn_2018.images(0, 50, 6)
    p = wide_cnn_2018.patches(x, 3)
    assert p.shape == (50, 16, 9)
    np.testing.assert_array_equal(p[3, 5], np.asarray(x[3, 1:4, 1:4]).ravel())  # position (1, 1)
    features_of = jax.jit(wide_cnn_2018.conv_features)
    for channels, expected in ((2, 32), (4, 50)):
        conv = wide_cnn_2018.init_network(0, channels, 3, 16, 4, 1.0)["conv"]
        features = features_of(conv, p)
        assert features.shape == (50, 16 * channels)
        assert wide_cnn_2018.numerical_rank(features, 1e-10)[0] == expected
    # one channel repeated: the features of the copies coincide, so the rank stays that of one channel
    conv = {"w": jnp.tile(conv["w"][:1], (4, 1)), "b": jnp.zeros(4)}
    assert wide_cnn_2018.numerical_rank(features_of(conv, p), 1e-10)[0] == 16
    assert wide_cnn_2018.numerical_rank(np.full((3, 3), np.nan), 1e-10) == (None, None)


# -- the training machinery -----------------------------------------------------------------------------
def _linear_problem(members=3, samples=40, dim=4):
    x = sgd.gaussian(0, (samples, dim))
    w_true = sgd.gaussian(0, (dim,), "teacher")
    y = x @ w_true
    params = sgd.gaussian(0, (members, dim), "init")

    def loss(w, xs, ys):
        return 0.5 * jnp.mean((xs @ w - ys) ** 2)

    return loss, params, x, y, w_true


def test_full_batch_gd_matches_an_explicit_loop():
    loss, params, x, y, _ = _linear_problem()
    result = sgd.train_many(loss, params, (x, y), optax.sgd(0.1), 30, None, record_every=10)
    expected = np.asarray(params)
    grad = jax.jit(jax.grad(loss))
    for _ in range(30):
        expected = expected - 0.1 * np.stack([np.asarray(grad(w, x, y)) for w in expected])
    np.testing.assert_allclose(result.params, expected, atol=1e-12)
    assert result.losses.shape == (3, 4) and result.steps.tolist() == [0, 10, 20, 30]
    np.testing.assert_allclose(result.losses[:, -1], [float(loss(w, x, y)) for w in expected], rtol=1e-12)


def test_minibatch_sgd_is_reproducible_and_solves_a_realizable_problem():
    loss, params, x, y, w_true = _linear_problem()
    optimizer = optax.sgd(0.05)
    run = lambda key: sgd.train_many(loss, params, (x, y), optimizer, 400, 8, key, record_every=100)
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    assert np.all(a.losses[:, -1] < 1e-6 * a.losses[:, 0])
    np.testing.assert_allclose(a.params, np.tile(w_true, (3, 1)), atol=1e-3)


def test_each_epoch_visits_every_sample_once():
    # loss -sum(w[batch indices]) with SGD lr 1 adds 1 to w_i each time sample i is in a batch
    samples = 40
    index = jnp.arange(samples)
    counts = jnp.zeros((2, samples))

    def loss(w, idx):
        return -jnp.sum(w[idx])

    two_epochs = sgd.train_many(loss, counts, (index,), optax.sgd(1.0), 10, 8, 0)
    np.testing.assert_array_equal(two_epochs.params, 2.0)
    # batch 12: three batches per epoch, the 4 left over are dropped (a fresh permutation each epoch)
    one_epoch = sgd.train_many(loss, counts, (index,), optax.sgd(1.0), 3, 12, 0)
    for row in one_epoch.params:
        assert sorted(np.unique(row).tolist()) == [0.0, 1.0] and row.sum() == 36
    assert not np.array_equal(one_epoch.params[0], one_epoch.params[1])  # members draw their own order


def test_per_member_datasets_and_stop_below():
    loss, params, x, y, _ = _linear_problem()
    data_x = jnp.stack([x, 2 * x, 3 * x])
    data_y = jnp.stack([y, y, y])
    together = sgd.train_many(loss, params, (data_x, data_y), optax.sgd(0.02), 50, None, data_axis=0)
    for i in range(3):  # each member trained alone on its own data gives the same parameters
        alone = sgd.train_many(loss, params[i:i + 1], (data_x[i], data_y[i]), optax.sgd(0.02), 50, None)
        np.testing.assert_allclose(together.params[i], alone.params[0], atol=1e-12)

    stops = sgd.train_many(loss, params, (x, y), optax.sgd(0.1), 2000, None, record_every=10,
                           stop_below=jnp.array([1e-2, 1e-6, -1.0]))
    assert stops.stopped[0] < stops.stopped[1] < stops.stopped[2] == 2000
    assert stops.losses[0, -1] <= 1e-2 and stops.losses[1, -1] <= 1e-6
    k = stops.stopped[0] // 10  # a stopped member's later records repeat the loss at which it stopped
    assert stops.losses[0, k - 1] > 1e-2 and np.all(stops.losses[0, k:] == stops.losses[0, k])


def test_members_with_different_learning_rates_train_in_one_program():
    loss, params, x, y, _ = _linear_problem()
    rates = [0.01, 0.05, 0.2]
    together = sgd.train_many(loss, params, (x, y), optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), 50, None,
                              hyperparams={"learning_rate": rates})
    for i, rate in enumerate(rates):
        alone = sgd.train_many(loss, params[i:i + 1], (x, y), optax.sgd(rate), 50, None)
        np.testing.assert_allclose(together.params[i], alone.params[0], rtol=0, atol=1e-14)
    with pytest.raises(SpuriousError, match="inject_hyperparams"):
        sgd.train_many(loss, params, (x, y), optax.sgd(0.1), 50, None, hyperparams={"learning_rate": rates})
    with pytest.raises(SpuriousError, match="one value per member"):
        sgd.train_many(loss, params, (x, y), optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), 50, None,
                       hyperparams={"learning_rate": rates[:2]})


def test_lbfgs_runs_through_train_many():
    loss, params, x, y, _ = _linear_problem()
    result = sgd.train_many(loss, params, (x, y), sgd.optimizer({"name": "lbfgs"}), 20, None)
    assert np.all(result.losses[:, -1] < 1e-20)


def test_bad_input_is_refused_and_results_are_strict_json():
    loss, params, x, y, _ = _linear_problem()
    with pytest.raises(SpuriousError):
        sgd.train_many(loss, params, (x, y), optax.sgd(0.1), 10, None, record_every=3)
    with pytest.raises(SpuriousError):
        sgd.train_many(loss, params, (x, y), optax.sgd(0.1), 10, 1000)
    with pytest.raises(SpuriousError):
        sgd.train_many(loss, params, (x, y[:5]), optax.sgd(0.1), 10, None)
    for spec in ({"name": "no_such_optimizer"}, {"name": "sgd"}, {"name": "sgd", "learning_rate": 0.1, "typo": 1},
                 {"name": "apply_updates"}, "sgd"):
        with pytest.raises(SpuriousError):
            sgd.optimizer(spec)
    assert sgd.jsonable([[1.0, np.nan], [np.inf, 2.0]]) == [[1.0, None], [None, 2.0]]
    assert sgd.jsonable(np.float64(3.0)) == 3.0


def test_log_slope_and_critical_width():
    n = np.array([32, 64, 128, 256])
    slope, intercept, (lo, hi) = width_scaling_2021.log_slope(n, 3 * n ** 1.5)
    assert slope == pytest.approx(1.5) and np.exp(intercept) == pytest.approx(3.0)
    assert lo <= slope <= hi
    assert width_scaling_2021.critical_width([8, 2, 4], [1.0, 0.5, 0.9], 0.9) == 4
    assert width_scaling_2021.critical_width([2, 4], [0.5, 0.8], 0.9) == np.inf


# -- the registered studies ----------------------------------------------------------------------------
def test_studies_are_registered_and_validate_their_settings():
    registered = load_all()
    for name in STUDIES:
        assert name in registered and registered[name] is EXPERIMENTS[name]
        exp = registered[name]
        assert exp.title and exp.claim
        for size in ("quick", "cpu", "gpu"):
            config = exp.default_config(size)
            cells = exp.cells(config)
            assert cells and all(json.loads(canonical_json(c)) == c for c in cells)
        with pytest.raises(SpuriousError, match="unknown size"):
            exp.default_config("huge")
        config = exp.default_config("quick")
        with pytest.raises(SpuriousError, match="seeds must be a positive integer"):
            exp.cells({**config, "seeds": 0})


def _sane_weight_sharing(config, results):
    by = {(c["architecture"], c["c"]): r for c, r in results}
    q = weight_sharing_2017.tanh_second_moment(config["filter_norm"])
    for (arch, c), r in by.items():
        curves = np.asarray(r["loss_curves"], dtype=float)
        assert np.all(np.isfinite(curves)) and curves.shape == (config["seeds"], config["epochs"] + 1)
        closed = (c ** 2 * q + q ** config["patches"]) / (c + 1) ** 2 / 2  # 1/2 Var(y) in closed form
        assert np.asarray(r["trivial_loss"]) == pytest.approx(closed, rel=0.15)
    # high only: both models stay at the trivial loss; with the low term the shared model is ahead
    for arch in weight_sharing_2017.ARCHITECTURES:
        assert np.all(np.asarray(by[(arch, 0.0)]["final_loss"]) >= 0.95 * np.asarray(by[(arch, 0.0)]["trivial_loss"]))
    assert max(by[("shared", 1.0)]["final_loss"]) < min(by[("separate", 1.0)]["final_loss"])
    assert min(min(v) for v in by[("shared", 1.0)]["filter_cosines"]) > 0.9  # it has found u0


def _sane_parity(config, results):
    sgd_part = {r["d"]: r for c, r in results if c["part"] == "sgd"}
    assert min(sgd_part[4]["test_accuracy"]) >= 0.99  # a 4-bit parity is learned
    assert all(0.4 <= a <= 0.6 for a in sgd_part[30]["test_accuracy"])
    exact = [r for c, r in results if c["part"] == "exact"]
    assert [r["d"] for r in exact] == config["exact_dims"]
    assert all(0.5 < r["ratio"] <= 1.0 for r in exact)
    variances = [r["variance"] for r in exact]
    assert all(b < a for a, b in zip(variances, variances[1:]))  # falls with d


def _sane_width_scaling(config, results):
    for cell, r in results:
        assert 0 < r["lr"] and len(r["success"]) == config["seeds"] and not any(r["diverged"])
        assert all(0 <= v < 1 for v in r["final_relative_loss"])  # gradient descent lowered every loss
        for ok, steps in zip(r["success"], r["steps_to_tol"]):
            assert (steps is not None) == ok and (steps is None or steps <= config["steps"])
    widest = {n: max((r for c, r in results if r["samples"] == n), key=lambda r: r["width"]) for n in config["samples"]}
    assert all(np.mean(r["success"]) >= 0.9 for r in widest.values())


def _sane_wide_cnn(config, results):
    for cell, r in results:
        assert r["rank"] == [min(r["n1"], config["samples"])] * config["seeds"]
        if r["n1"] >= config["samples"]:
            assert max(r["final_loss"]) <= config["loss_tol"]


SANE = {"weight-sharing-2017": _sane_weight_sharing, "parity-2017": _sane_parity,
        "width-scaling-2021": _sane_width_scaling, "wide-cnn-2018": _sane_wide_cnn}


@pytest.mark.parametrize("name", STUDIES)
def test_quick_study_runs_through_the_store_into_an_html_report(name, tmp_path, capsys):
    db, html = tmp_path / "s.db", tmp_path / "html"
    assert main(["study", "run", name, "--size", "quick", "--store", str(db), "--html", str(html), "-q"]) == 0
    out = capsys.readouterr().out
    assert "verdict: " in out and "HTML report: " in out
    exp = load_all()[name]
    config = exp.default_config("quick")
    with Store(db) as store:
        results = store.experiment_results(f"{name}@quick")
    assert [c for c, _ in results] == exp.cells(config)
    SANE[name](config, results)

    report = exp.evaluate(config, results)
    assert isinstance(report, ExperimentReport) and isinstance(report.verdict, Verdict)
    assert report.claim == exp.claim
    assert f"verdict: {report.verdict}: {report.summary}" in out  # the printed report is this evaluation
    assert report.table and all(set(row) == set(report.table[0]) for row in report.table)
    page = (html / f"{name}-quick.html").read_text()
    assert html_escape(report.summary) in page
    assert page.count("<svg") == len(report.figures) >= 1
    for figure in report.figures:  # plain data, drawn by spurious.report.figures
        assert isinstance(figure, Figure) and any(panel.has_data() for panel in figure.panels)
        assert (html / f"{name}-quick" / f"{figure.stem}.png").stat().st_size > 1000
    # a second run finds every cell stored and does nothing
    assert main(["study", "run", name, "--size", "quick", "--store", str(db), "--no-report", "-q"]) == 0


BAD_OVERRIDES = {
    "weight-sharing-2017": ("batch = 5000", "batch (5000) exceeds samples"),
    "parity-2017": ("steps = 1001", "record_every (500) must divide steps (1001)"),
    "width-scaling-2021": ('widths = {"16" = [2]}', "widths must map every N"),
    "wide-cnn-2018": ('optimizer = {name = "no_such_optimizer"}', "optax has no optimizer"),
}


@pytest.mark.parametrize("name", STUDIES)
def test_unknown_size_and_bad_config_are_one_line_exit_2(name, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["study", "run", name, "--size", "huge", "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spurious: error: ") and "has no size 'huge'" in err
    assert not db.exists()
    for text, message in ((BAD_OVERRIDES[name][0], BAD_OVERRIDES[name][1]),
                          ("seeds = 2.5", "must be a integer like the default"), ("no_such_setting = 1", "no_such_setting")):
        path = tmp_path / "bad.toml"
        path.write_text(f'[study]\nname = "bad"\nexperiment = "{name}"\n[experiment]\n{text}\n')
        assert main(["study", "run", str(path), "--size", "quick", "--store", str(db)]) == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and captured.err.startswith("spurious: error: "), captured.err
        assert message in captured.err, captured.err
        assert captured.out == ""


def test_a_diverging_run_is_stored_as_strict_json_and_named_in_the_report():
    exp = load_all()["width-scaling-2021"]
    config = {**exp.default_config("quick"), "lr_factor": 1e3, "samples": [16], "widths": {"16": [4]}}
    results = [(cell, exp.run_cell(cell)) for cell in exp.cells(config)]
    (_, result), = results
    assert all(result["diverged"]) and result["final_relative_loss"] == [None] * config["seeds"]
    json.loads(canonical_json(result))  # no NaN/inf: the store accepts it
    report = exp.evaluate(config, results)
    # one N: no slope to fit, so the claim is not tested (the diverged runs are named)
    assert report.verdict is Verdict.NOT_TESTED and "diverged runs: N=16: 3" in report.summary


# -- the parts the experiments compose: online averages, data-free losses, endpoints for the analysis ------
def test_online_average_is_the_mean_of_the_losses_before_each_update():
    """Full-batch GD recorded at every step: the online average at step t is the mean of the losses at
    steps 0..t-1 (each taken before its update), checked against an explicit NumPy loop."""
    A = np.diag([1.0, 3.0])
    loss = lambda p, x: 0.5 * jnp.sum((p @ A) * p) + 0.0 * jnp.sum(x)
    start = jnp.asarray([[1.0, -2.0], [0.5, 0.5]])
    training = sgd.train_many(loss, start, (jnp.zeros((1, 1)),), optax.sgd(0.1), 20, None, record_every=1)
    for member in range(2):
        p, seen = np.asarray(start[member]), []
        for _ in range(20):
            seen.append(0.5 * p @ A @ p)
            p = p - 0.1 * (A @ p)
        np.testing.assert_allclose(training.losses[member, 1:-1], np.array(seen[1:]), rtol=1e-13)
        np.testing.assert_allclose(training.online[member, 1:], np.cumsum(seen) / np.arange(1, 21), rtol=1e-13)
    assert np.isnan(training.online[:, 0]).all()


def test_a_loss_without_data_trains_like_one_with_data():
    target = jnp.asarray([1.0, -1.0, 2.0])
    with_data = sgd.train_many(lambda p, t: 0.5 * jnp.sum((p - t[0]) ** 2), jnp.zeros((2, 3)), (target[None],),
                               optax.sgd(0.3), 10, None, record_every=5)
    alone = sgd.train_many(lambda p: 0.5 * jnp.sum((p - target) ** 2), jnp.zeros((2, 3)), (), optax.sgd(0.3), 10,
                           None, record_every=5)
    np.testing.assert_allclose(alone.losses, with_data.losses, rtol=1e-15)
    # p_t = target (1 - 0.7^t): each step removes 30% of the distance to the target
    np.testing.assert_allclose(alone.params, np.tile((1 - 0.7 ** 10) * np.asarray(target), (2, 1)), rtol=1e-12)
    with pytest.raises(SpuriousError, match="mini-batches need data"):
        sgd.train_many(lambda p: jnp.sum(p), jnp.zeros((2, 3)), (), optax.sgd(0.3), 10, 2)


def test_endpoints_of_training_are_classified_by_the_analysis():
    from spurious.analyze import analyze
    from spurious.problems import QuadraticNetwork

    p = QuadraticNetwork(dim=2, hidden=1, samples=6, signs="positive", targets="planted", planted=1, data_seed=0)
    points = np.stack([p.planted, p.planted + 0.3, np.full(p.shape, np.nan)])
    ends = sgd.endpoints(p, points, seed=0, grad_tol=1e-9, steps=[5, 7, 9])
    assert list(ends.status) == ["converged", "not_converged", "diverged"]
    assert ends.loss[0] < 1e-28 and list(ends.steps) == [5, 7, 9] and list(ends.run) == [0, 1, 2]
    np.testing.assert_allclose(ends.grad_norm[1], np.linalg.norm(np.asarray(p.grad(jnp.asarray(points[1])))), rtol=1e-12)
    analysis = analyze(p, ends)
    assert list(analysis.cls) == ["global_minimum", "not_converged", "diverged"]
