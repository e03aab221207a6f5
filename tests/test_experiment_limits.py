"""Experiment studies refuse what cannot run before any work: every key of an experiment's config
outside its range (a negative width, a probability above one, a seed too large for a PRNG key), and
a config whose largest cell cannot be held in memory (the estimate and the limit), each in one line
with exit code 2, before the store exists or a cell runs. Every shipped size passes the same checks."""
import pytest

from spurious.cli import main
from spurious.core.errors import SpuriousError
from spurious.core.resources import MEMORY_SHARE, machine_memory
from spurious.experiments import load_all
from spurious.experiments.base import (MAX_SEED, Band, Between, Count, ListOf, MapOf, OrNone, Positive, Seed, Table,
                                       Text)
from spurious.studies import ConfigError, load_study, parse

EXPERIMENTS = dict(load_all())  # the built-in ones (tests elsewhere register more)
NAMES = sorted(EXPERIMENTS)
GIB = 2 ** 30

#: per experiment: a size key made negative or zero, and its main size made absurd (one that today
#: would start and be killed for memory)
BAD_SIZES = {
    "arjevani-field-families": (("runs", -2), ("runs", 10 ** 9)),
    "bartlett-2018": (("main_depth", -2), ("main_dim", 10 ** 9)),
    "du-lee-2018": (("hidden", [-2]), ("hidden", [10 ** 9])),
    "parity-2017": (("width_factor", 0), ("train_samples", 10 ** 9)),
    "shamir-2018": (("width", -3), ("width", 10 ** 9)),
    "soltanolkotabi-2019": (("arbitrary_dim", 0), ("arbitrary_samples", 10 ** 9)),
    "weight-sharing-2017": (("samples", -5), ("samples", 10 ** 9)),
    "wide-cnn-2018": (("channels", [0]), ("channels", [10 ** 9])),
    "width-scaling-2021": (("dim", 0), ("dim", 10 ** 9)),
}


def toml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def study_file(tmp_path, name, key, value, device=None) -> str:
    path = tmp_path / "study.toml"
    path.write_text(f'[study]\nname = "mine"\nexperiment = "{name}"\n'
                    + (f'device = "{device}"\n' if device else "")
                    + f"[experiment]\n{key} = {toml_value(value)}\n")
    return str(path)


@pytest.fixture
def no_work(monkeypatch):
    """Any cell run or study started fails the test: a refusal must come before all work."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the configuration was refused")

    monkeypatch.setattr("spurious.studies.runner.run_study", refuse)
    for experiment in EXPERIMENTS.values():
        monkeypatch.setattr(type(experiment), "run_cell", refuse)


def refused(tmp_path, capsys, argv) -> str:
    """Run the command; it must exit 2 with one line on stderr, nothing on stdout, and no store."""
    store = tmp_path / "s.db"
    assert main([*argv, "--store", str(store)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("spurious: error: "), err
    assert not store.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]
    return err


# -- the limits cover every key ------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_key_of_every_size_has_a_limit_and_the_shipped_values_are_within_it(name):
    experiment = EXPERIMENTS[name]
    assert set(BAD_SIZES) == set(EXPERIMENTS)
    for size in experiment.sizes:
        config = experiment.default_config(size)
        assert set(config) <= set(experiment.limits), (size, set(config) - set(experiment.limits))
        experiment.check_config(config)
        need, detail = experiment.memory_need(config)
        assert isinstance(need, int) and need > 0 and detail


@pytest.mark.parametrize("name", NAMES)
def test_the_quick_and_cpu_sizes_load_and_fit(name):
    limit = MEMORY_SHARE * machine_memory()
    for size in ("quick", "cpu"):
        config = load_study(name, size=size)
        need, _ = EXPERIMENTS[name].memory_need(config.experiment_config)
        # they fit this machine and any with 8 GiB to spare: the sizes meant for a laptop stay small
        assert need < min(limit, 8 * GIB), (size, need)


@pytest.mark.parametrize("name", NAMES)
def test_a_gpu_size_loads_exactly_when_its_estimate_fits(name):
    experiment = EXPERIMENTS[name]
    need, _ = experiment.memory_need(experiment.default_config("gpu"))
    if need <= MEMORY_SHARE * machine_memory():
        assert load_study(name, size="gpu").size == "gpu"
    else:
        with pytest.raises(ConfigError, match="would need about .* of memory; this machine allows"):
            load_study(name, size="gpu")


# -- refusals through the command line -----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_a_negative_or_zero_size_is_refused_in_one_line_naming_the_key(name, tmp_path, capsys, no_work):
    (key, value), _ = BAD_SIZES[name]
    err = refused(tmp_path, capsys, ["study", "run", study_file(tmp_path, name, key, value)])
    shown = value[0] if isinstance(value, list) else value
    assert f"[experiment] {key}" in err and f"got {shown}" in err and "must be a positive" in err, err


@pytest.mark.parametrize("name", NAMES)
def test_an_absurd_size_is_refused_with_the_estimate_and_the_limit(name, tmp_path, capsys, no_work):
    _, (key, value) = BAD_SIZES[name]
    err = refused(tmp_path, capsys, ["study", "run", study_file(tmp_path, name, key, value)])
    assert "[experiment] the largest cell of" in err and f"{name}@cpu" in err, err
    assert "would need about" in err and "of memory; this machine allows" in err and "(80% of" in err, err


def test_a_study_on_the_gpu_is_held_to_the_gpu_or_else_this_machine(tmp_path, capsys, no_work):
    err = refused(tmp_path, capsys, ["study", "run", study_file(tmp_path, "du-lee-2018", "hidden", [10 ** 9], "gpu")])
    assert "would need about" in err and "allows" in err, err


def test_a_size_that_fits_is_not_refused(tmp_path):
    config = load_study(study_file(tmp_path, "shamir-2018", "width", 64))
    assert config.experiment_config["width"] == 64 and config.size == "cpu"


# -- ranges of other kinds of keys ---------------------------------------------------------------
BAD_VALUES = [
    ("du-lee-2018", "hidden", [3], "hidden[0] must be a positive even integer, got 3"),
    ("du-lee-2018", "hidden", ["a"], "hidden[0] must be a positive even integer, got 'a'"),
    ("du-lee-2018", "hidden", [], "hidden must not be empty"),
    ("du-lee-2018", "hidden", [4, 4], "hidden has repeated values [4, 4]"),
    ("du-lee-2018", "weight_decay", 0.0, "weight_decay must be a positive finite number, got 0.0"),
    ("du-lee-2018", "data_seeds", [2 ** 32], "data_seeds[0] must be a seed, an integer in 0..2^32-1"),
    ("du-lee-2018", "seed", -1, "seed must be a seed, an integer in 0..2^63-1, got -1"),
    ("bartlett-2018", "seeds", [MAX_SEED + 1], "seeds[0] must be a seed, an integer in 0..2^63-1"),
    ("bartlett-2018", "sweep_conditions", [0.5], "sweep_conditions[0] must be a finite number >= 1"),
    ("bartlett-2018", "main_record_every", 10 ** 6, "main_record_every (1000000) exceeds main_steps (5000)"),
    ("bartlett-2018", "sweep_depths", list(range(1, 100_001)), "plans 500,000 cells; a study holds at most 100,000"),
    ("shamir-2018", "gd_step", -0.1, "gd_step must be a positive finite number, got -0.1"),
    ("shamir-2018", "noise_std", -1.0, "noise_std must be a finite number >= 0, got -1.0"),
    ("shamir-2018", "sgd_batch", 5000, "sgd_batch (5000) exceeds samples (2000)"),
    ("shamir-2018", "sgd_record_every", 300, "sgd_record_every (300) must divide sgd_steps (20000)"),
    ("soltanolkotabi-2019", "arbitrary_hidden", 41, "arbitrary_hidden must be a positive even integer, got 41"),
    ("soltanolkotabi-2019", "smooth_teacher", 12, "smooth_teacher must be an integer in 1..8, got 12 (the recovery"),
    ("soltanolkotabi-2019", "smooth_activation", "cosh", "smooth_activation must be one of"),
    ("soltanolkotabi-2019", "planted_record_every", 7, "planted_record_every (7) must divide planted_steps (20000)"),
    ("parity-2017", "easy_min_accuracy", 1.5, "easy_min_accuracy must be a number in [0, 1], got 1.5"),
    ("parity-2017", "chance_band", [0.6, 0.4], "chance_band must be [low, high] with low <= high, got [0.6, 0.4]"),
    ("parity-2017", "chance_band", [0.4], "chance_band must be a pair [low, high], got [0.4]"),
    ("parity-2017", "exact_dims", [4, 25], "exact_dims[1] must be an integer in 1..24, got 25 (the exact enumeration"),
    ("parity-2017", "seed", MAX_SEED, "seed + seeds - 1 = 9223372036854775809 exceeds the largest seed 2^63-1"),
    ("parity-2017", "lr", 0, "lr must be a positive finite number, got 0"),
    ("weight-sharing-2017", "c_values", [-1.0], "c_values[0] must be a finite number >= 0, got -1.0"),
    ("weight-sharing-2017", "trivial_min_fraction", -0.5, "trivial_min_fraction must be a number in [0, 1]"),
    ("weight-sharing-2017", "sensitivity_init_scale", -1.0, "sensitivity_init_scale must be a positive finite number"),
    ("wide-cnn-2018", "rank_rtol", 0.0, "rank_rtol must be a number in (0, 1], got 0.0"),
    ("wide-cnn-2018", "optimizer", {"name": "lbfgs", "memory_size": 0},
     "optimizer.memory_size must be a positive integer, got 0"),
    ("wide-cnn-2018", "optimizer", {"memory_size": 5}, "optimizer needs 'name'"),
    ("wide-cnn-2018", "kernel", 9, "kernel (9) is larger than the image side (8)"),
    ("width-scaling-2021", "success_fraction", 1.5, "success_fraction must be a number in (0, 1], got 1.5"),
    ("width-scaling-2021", "widths", {"32": [0]}, "widths.32[0] must be a positive integer, got 0"),
    ("width-scaling-2021", "widths", {"32": [1]}, "widths must map every N in samples"),
]


@pytest.mark.parametrize("name, key, value, message", BAD_VALUES, ids=[f"{n}-{k}" for n, k, *_ in BAD_VALUES])
def test_a_value_out_of_range_is_refused_naming_the_key(name, key, value, message):
    raw = {"study": {"name": "mine", "experiment": name}, "experiment": {key: value}}
    with pytest.raises(ConfigError) as caught:
        parse(raw, source="mine.toml")
    text = str(caught.value)
    assert text.startswith("mine.toml: [experiment] ") and message in text and "\n" not in text, text


def test_cells_check_the_limits_for_direct_callers_too():
    experiment = EXPERIMENTS["du-lee-2018"]
    with pytest.raises(SpuriousError, match=r"hidden\[1\] must be a positive even integer, got -4"):
        experiment.cells({**experiment.default_config("quick"), "hidden": [2, -4]})


def test_limit_messages():
    assert Count().fault("k", 3) is None and Count().fault("k", True) == "k must be a positive integer, got True"
    assert Count(minimum=0).fault("k", -1) == "k must be an integer >= 0, got -1"
    assert Count(maximum=8, why="k! permutations").fault("k", 9) == "k must be an integer in 1..8, got 9 (k! permutations)"
    assert Count(multiple_of=2).fault("k", 2.0) == "k must be a positive even integer, got 2.0"
    assert Seed().fault("s", MAX_SEED) is None and "0..2^63-1" in Seed().fault("s", MAX_SEED + 1)
    assert Positive().fault("x", float("inf")) == "x must be a positive finite number, got inf"
    assert Between(0, 1).fault("p", 1) is None and Between(0, 1, low_open=True).fault("p", 0) is not None
    assert ListOf(Count(), empty=True).fault("l", []) is None and ListOf(Count()).fault("l", 3) == "l must be a list, got 3"
    assert Band(Positive()).fault("b", [1, 2]) is None and "b[0] must be a positive" in Band(Positive()).fault("b", [0, 2])
    assert MapOf(ListOf(Count())).fault("m", {"4": [1, 2]}) is None and MapOf(Count()).fault("m", []) is not None
    assert OrNone(Positive()).fault("o", None) is None and Text().fault("t", "") is not None
    assert Table((("name", Text()),), required=("name",)).fault("t", {"name": "sgd", "learning_rate": 1}) is None


def test_the_estimate_grows_with_the_size_it_is_made_of():
    experiment = EXPERIMENTS["du-lee-2018"]
    config = experiment.default_config("cpu")
    small, _ = experiment.memory_need({**config, "hidden": [8]})
    large, detail = experiment.memory_need({**config, "hidden": [800]})
    assert large > 1000 * small and "k = 800" in detail
