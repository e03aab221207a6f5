"""A study's declarative configuration: TOML in, a validated plain-data `StudyConfig` out.

Landscape study (a sweep of multistart runs over a grid of problems):

    default_size = "cpu"            # optional: size used when none is asked for

    [study]
    name = "my-sweep"               # required; letters, digits, '-', '_', '.'
    title = "ReLU teacher-student, n = k and n = k + 1"
    problem = "relu-teacher-student"   # any registered problem (`spurious problems`), or your own:
                                    # "path/to/file.py:NAME" (relative to this file) or "package.module:NAME"
    runs = 1000                     # runs per problem and seed
    runs_per_cell = 100             # runs committed together (one cell); default min(runs, 100)
    seeds = [0]                     # run r of seed s starts from fold_in(PRNGKey(s), r)
    published = "safran-shamir-2018"   # optional: numbers to compare with (spurious.studies.published)
    device = "auto"                 # cpu, gpu or auto (where the runs go; not part of the results)

    [grid]                          # any of the problem's parameters: the cartesian product of these
    teacher = { from = 6, to = 20 } # axes; lists, a single value, or an inclusive range {from, to, step}
    extra = [0, 1]                  # a shorthand of the ReLU problems: student = teacher + extra
                                    # (or several blocks, [[grid]] tables or grid = [{...}, {...}]: the union
                                    # of their products, in order; every block sweeps the same parameters)

    [params]                        # optional: parameters fixed for every problem of the grid
    dim = 20

    [optimizer]                     # GradientDescent settings
    protocol = "2018"               # one of the problem's protocols (default: its default_protocol;
                                    # relu-teacher-student: "2018", "2021" = step 5/k, Frobenius 1e-12)
    max_steps = 100000              # any GradientDescent field overrides the protocol;
    newton_switch = false           # false turns the Newton switch off (pure gradient descent)

    [tolerances]                    # analysis Tolerances (defaults documented in spurious.analyze)
    family = 1e-5

    [sizes.quick]                   # named variants: tables merged over the ones above
    study = { runs = 100, runs_per_cell = 50 }
    grid = { teacher = { from = 6, to = 9 } }

Experiment study (one of spurious.experiments, with its own config):

    [study]
    name = "my-du-lee"
    experiment = "du-lee-2018"      # a registered Experiment
    [experiment]                    # overrides of experiment.default_config(size), each within the
    samples = 100                   # experiment's limits; the largest cell's memory estimate must fit

Every error is a one-line SpuriousError naming the file, the table and the key.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from ..analyze import Tolerances
from ..core.errors import SpuriousError
from ..core.jsonable import canonical_json, digest
from ..core.resources import require_memory
from ..experiments.base import MAX_CELLS
from ..optimize import MAX_RUNS, GradientDescent, protocol
from ..problems import absolute_spec, build_shared, entry
from .experiment_catalogue import experiment_studies, find_experiment

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TOP_LEVEL = ("study", "grid", "params", "optimizer", "tolerances", "experiment", "sizes", "default_size")
STUDY_KEYS = ("name", "title", "description", "problem", "experiment", "runs", "runs_per_cell", "seeds",
              "published", "device")
DEVICES = ("auto", "cpu", "gpu")
#: a study's name names its report and export files, with a size and a suffix added
MAX_NAME = 100
#: a study's grid: problems are built, compiled and stored one by one, so more is a mistake, not a plan
MAX_PROBLEMS = 100_000
#: what one planned cell holds in memory (its spec and key), for refusing a plan that cannot be held
PLANNED_CELL_BYTES = 2048
#: sizes of experiments that mean the same thing under another name
SIZE_ALIASES = {"full": "gpu", "gpu": "full"}


def _optimizer_fields() -> dict[str, type]:
    kinds = {"float": float, "int": int, "str": str, "float | None": float, "int | None": int, "str | None": str}
    return {f.name: kinds[str(f.type)] for f in dataclasses.fields(GradientDescent)}


def _tolerance_fields() -> dict[str, type]:
    kinds = {"float": float, "int": int}
    return {f.name: kinds[str(f.type)] for f in dataclasses.fields(Tolerances)}


_AXIS_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "data": object}


class ConfigError(SpuriousError):
    """A bad study configuration (the message is one line)."""


def _type_name(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, message: str):
        prefix = f"{self.source}: " if self.source else ""
        raise ConfigError(f"{prefix}{where}{' ' if where else ''}{message}")

    def table(self, value, where: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {_type_name(value)}")
        return value

    def keys(self, table: dict, allowed, where: str):
        for key in table:
            if key not in allowed:
                self.fail(where, f"unknown key {key!r} (allowed: {', '.join(allowed)})")

    def scalar(self, value, kind: type, where: str):
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(where, f"must be an integer, got {_type_name(value)} {value!r}")
            return value
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(where, f"must be a number, got {_type_name(value)} {value!r}")
            if not math.isfinite(value):
                self.fail(where, f"must be finite, got {value!r}")
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                self.fail(where, f"must be a string, got {_type_name(value)} {value!r}")
            return value
        if kind is bool:
            if not isinstance(value, bool):
                self.fail(where, f"must be true or false, got {_type_name(value)} {value!r}")
            return value
        if kind is object:  # plain data: anything TOML can say
            return value
        raise TypeError(kind)

    def positive_int(self, value, where: str) -> int:
        value = self.scalar(value, int, where)
        if value < 1:
            self.fail(where, f"must be a positive integer, got {value}")
        return value

    def axis(self, value, kind: type, where: str) -> list:
        """A grid axis: a list, a single value, or an inclusive integer range {from, to, step}."""
        if isinstance(value, dict):
            self.keys(value, ("from", "to", "step"), where)
            if "from" not in value or "to" not in value:
                self.fail(where, "range needs both 'from' and 'to'")
            if kind is not int:
                self.fail(where, "ranges {from, to, step} are for integer axes only")
            start = self.scalar(value["from"], int, f"{where}.from")
            stop = self.scalar(value["to"], int, f"{where}.to")
            step = self.positive_int(value.get("step", 1), f"{where}.step")
            count = len(range(start, stop + 1, step))
            if count > MAX_PROBLEMS:
                self.fail(where, f"has {count:,} values; a study's grid holds at most {MAX_PROBLEMS:,} problems "
                                 f"(each is built, compiled and stored on its own)")
            values = list(range(start, stop + 1, step))
        elif isinstance(value, list):
            values = [self.scalar(v, kind, f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            values = [self.scalar(value, kind, where)]
        if not values:
            self.fail(where, "is empty: the grid needs at least one value on every axis")
        texts = [canonical_json(v) for v in values]
        if len(set(texts)) != len(texts):
            self.fail(where, f"has repeated values {values}")
        return values


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "grid":
            out[key] = _merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):  # grid: axes replace axes
            out[key] = {**out[key], **copy.deepcopy(value)}
        elif key == "grid" and isinstance(value, dict) and isinstance(out.get(key), list):
            raise ConfigError("a size's grid table cannot change a grid of several blocks; give the size its own "
                              "list of blocks")
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class StudyConfig:
    """A validated study. Plain data only: `to_dict()` is what the store keeps, `from_dict` reads it."""

    name: str
    kind: str  # "landscape" | "experiment"
    size: str | None = None
    title: str = ""
    description: str = ""
    source: str = ""
    # landscape studies
    problem: str | None = None  # a registered name, or a user's spec (file paths made absolute)
    grid: dict[str, list] | list[dict[str, list]] = field(default_factory=dict)  # one block, or several
    params: dict[str, Any] = field(default_factory=dict)  # fixed for every problem of the grid
    runs: int = 0
    runs_per_cell: int = 0
    seeds: tuple[int, ...] = (0,)
    optimizer: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, Any] = field(default_factory=dict)
    published: dict | None = None
    device: str = "auto"
    # experiment studies
    experiment: str | None = None
    experiment_config: dict | None = None

    @property
    def key(self) -> str:
        """The study's name in the store: name, or name@size for a sized variant."""
        return f"{self.name}@{self.size}" if self.size else self.name

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)
        return out

    @staticmethod
    def from_dict(data: dict) -> "StudyConfig":
        known = {f.name for f in dataclasses.fields(StudyConfig)}
        data = {k: v for k, v in data.items() if k in known}
        data["seeds"] = tuple(data.get("seeds", (0,)))
        return StudyConfig(**data)

    def work(self) -> dict:
        """The part of the configuration that determines the results (hashed to detect changes)."""
        if self.kind == "experiment":
            return {"kind": self.kind, "experiment": self.experiment, "config": self.experiment_config}
        work = {"kind": self.kind, "problem": self.problem, "grid": self.grid, "runs": self.runs,
                "runs_per_cell": self.runs_per_cell, "seeds": list(self.seeds), "optimizer": self.optimizer,
                "tolerances": self.tolerances}
        if self.params:  # absent when empty, so studies stored before [params] existed keep their hash
            work["params"] = self.params
        return work

    def work_hash(self) -> str:
        return digest(self.work())

    def record(self) -> dict:
        """What the store keeps of a study (plain data)."""
        return {"key": self.key, "name": self.name, "size": self.size, "kind": self.kind, "title": self.title,
                "config": self.to_dict(), "work_hash": self.work_hash()}

    # -- landscape plan -------------------------------------------------------------------------
    def problems(self) -> list[dict]:
        """The grid's problems in order, each {"key", "name", "params", "optimizer", "tolerances"}
        (plain data; the optimizer is the problem's protocol with the study's overrides)."""
        if self.kind != "landscape":
            return []
        found = entry(self.problem)
        label = self.problem if found.builtin else found.name.rpartition(os.sep)[2]
        out = []
        for point in grid_points(self.grid):
            params = found.check({**self.params, **point})
            problem = build_shared(self.problem, params)
            out.append({"key": problem_key(label, params), "name": self.problem, "params": params,
                        "optimizer": resolve_optimizer(problem, self.optimizer),
                        "tolerances": Tolerances(**self.tolerances).to_dict()})
        keys = [p["key"] for p in out]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"{self.source or self.name}: [grid] gives the same problem twice")
        return out


def grid_blocks(grid) -> list[dict[str, list]]:
    """A grid as its list of blocks (one table is one block)."""
    return list(grid) if isinstance(grid, list) else [grid]


def grid_points(grid) -> list[dict]:
    """The grid's points (swept values by axis), block after block, each block's cartesian product in
    the order of its axes."""
    return [dict(zip(block, values)) for block in grid_blocks(grid)
            for values in itertools.product(*block.values())]


def problem_key(name: str, params: dict) -> str:
    return f"{name}(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")"


def resolve_optimizer(problem, settings: dict) -> dict:
    """The full GradientDescent settings (plain dict) of the study's [optimizer] for one problem."""
    overrides = {k: v for k, v in settings.items() if k != "protocol"}
    return protocol(problem, settings.get("protocol"), **overrides).to_dict()


# -- parsing ------------------------------------------------------------------------------------
def parse(raw: dict, source: str = "", size: str | None = None, builtin: bool = False,
          base_dir: str | None = None) -> StudyConfig:
    """Validate a TOML document (as a dict) and pick the size; raise ConfigError on any problem.
    base_dir: the folder a problem's file spec is relative to (the TOML file's; default the
    working directory)."""
    c = _Checker(source)
    c.table(raw, "")
    c.keys(raw, TOP_LEVEL, "")
    sizes = c.table(raw.get("sizes", {}), "[sizes]")
    default_size = raw.get("default_size")
    if default_size is not None:
        c.scalar(default_size, str, "default_size")
        if default_size not in sizes:
            c.fail("default_size", f"{default_size!r} is not one of the [sizes] ({', '.join(sizes) or 'none defined'})")
    study = c.table(raw.get("study", None) if "study" in raw else c.fail("", "has no [study] table"), "[study]")
    experiment = study.get("experiment")
    if experiment is not None:
        return _parse_experiment(c, raw, size, builtin)
    for name, table in sizes.items():
        c.table(table, f"[sizes.{name}]")
        c.keys(table, ("study", "grid", "params", "optimizer", "tolerances"), f"[sizes.{name}]")
        if not NAME_PATTERN.match(name):
            c.fail(f"[sizes.{name}]", "size names use letters, digits, '-', '_' and '.'")
    chosen = size if size is not None else default_size
    merged = {k: v for k, v in raw.items() if k not in ("sizes", "default_size")}
    if chosen is not None:
        if chosen not in sizes:
            if not sizes:
                c.fail("", f"defines no sizes, so --size {chosen} does not apply")
            c.fail("", f"has no size {chosen!r} (sizes: {', '.join(sizes)})")
        merged = _merge(merged, sizes[chosen])
    return _parse_landscape(c, merged, chosen, source, base_dir)


def _parse_common(c: _Checker, study: dict) -> dict:
    c.keys(study, STUDY_KEYS, "[study]")
    if "name" not in study:
        c.fail("[study]", "needs a name")
    name = c.scalar(study["name"], str, "[study] name")
    if not NAME_PATTERN.match(name) or "@" in name:
        c.fail("[study] name", f"{name!r} must use letters, digits, '-', '_' and '.' only")
    if len(name) > MAX_NAME:  # it names files (reports, exports): keep it well inside a file name's limit
        c.fail("[study] name", f"is {len(name)} characters long; at most {MAX_NAME}")
    out = {"name": name, "title": c.scalar(study.get("title", ""), str, "[study] title"),
           "description": c.scalar(study.get("description", ""), str, "[study] description")}
    device = c.scalar(study.get("device", "auto"), str, "[study] device")
    if device not in DEVICES:
        c.fail("[study] device", f"must be one of {', '.join(DEVICES)}, got {device!r}")
    out["device"] = device
    return out


def _parse_landscape(c: _Checker, raw: dict, size: str | None, source: str, base_dir: str | None) -> StudyConfig:
    study = c.table(raw["study"], "[study]")
    common = _parse_common(c, study)
    if "experiment" in raw:
        c.fail("[experiment]", "is only for experiment studies (set [study] experiment = NAME)")
    if "problem" not in study:
        c.fail("[study]", "needs a problem (a registered name: `spurious problems`; or path/to/file.py:NAME) "
               "or an experiment")
    spec = absolute_spec(c.scalar(study["problem"], str, "[study] problem"), base_dir)
    try:
        found = entry(spec)
    except SpuriousError as error:
        c.fail("[study] problem", str(error))
    if "runs" not in study:
        c.fail("[study]", "needs runs (random starts per problem and seed)")
    runs = c.positive_int(study["runs"], "[study] runs")
    per_cell = c.positive_int(study.get("runs_per_cell", min(runs, 100)), "[study] runs_per_cell")
    seeds_raw = study.get("seeds", [0])
    if not isinstance(seeds_raw, list):
        c.fail("[study] seeds", f"must be an array of integers, got {_type_name(seeds_raw)} {seeds_raw!r}")
    if not seeds_raw:
        c.fail("[study] seeds", "is empty")
    seeds = [c.scalar(s, int, f"[study] seeds[{i}]") for i, s in enumerate(seeds_raw)]
    if any(not 0 <= s < 2**63 for s in seeds):
        c.fail("[study] seeds", f"must lie in 0..2^63-1, got {seeds}")
    if len(set(seeds)) != len(seeds):
        c.fail("[study] seeds", f"has repeated values {seeds}")
    published = None
    if "published" in study:
        from .published import PUBLISHED, published as load_published

        key = c.scalar(study["published"], str, "[study] published")
        if key not in PUBLISHED:
            c.fail("[study] published", f"unknown published data {key!r} (choose one of {', '.join(PUBLISHED)})")
        published = {"name": key, **load_published(key)}

    allowed = tuple(p.name for p in found.parameters + found.shorthands)
    fixed = dict(c.table(raw.get("params", {}), "[params]"))
    c.keys(fixed, allowed, "[params]")
    for key, value in fixed.items():
        fixed[key] = c.scalar(value, _AXIS_TYPES[found.parameter(key).type], f"[params] {key}")
    grid_value = raw.get("grid", {})
    several = isinstance(grid_value, list)
    if several and not grid_value:
        c.fail("[grid]", "is an empty list of blocks")
    blocks_raw = [c.table(b, f"[grid] block {i}") for i, b in enumerate(grid_value)] if several else \
        [c.table(grid_value, "[grid]")]
    if not blocks_raw[0] and not fixed:
        c.fail("[grid]", f"is empty: give the parameters of {found.name!r} to sweep under [grid] (or fixed ones "
               f"under [params]): {', '.join(allowed)}")
    blocks = []
    for i, block_raw in enumerate(blocks_raw):
        where = f"[grid] block {i}" if several else "[grid]"
        c.keys(block_raw, allowed, where)
        block = {a: c.axis(v, _AXIS_TYPES[found.parameter(a).type], f"{where} {a}") for a, v in block_raw.items()}
        for a in block:
            if a in fixed:
                c.fail(f"{where} {a}", "is also fixed under [params]")
        if blocks and list(block) != list(blocks[0]):
            c.fail(where, f"sweeps {', '.join(block) or 'nothing'}; every block must sweep the same parameters, "
                   f"in the same order, as block 0 ({', '.join(blocks[0])})")
        blocks.append(block)
    grid = blocks if several else blocks[0]
    points = sum(math.prod(len(v) for v in block.values()) for block in blocks)
    if points > MAX_PROBLEMS:
        c.fail("[grid]", f"has {points:,} points; a study's grid holds at most {MAX_PROBLEMS:,} problems "
               f"(each is built, compiled and stored on its own)")
    cells = points * len(seeds) * -(-runs // min(per_cell, runs))
    try:
        require_memory(cells * PLANNED_CELL_BYTES, f"the plan of {cells:,} cells")
    except SpuriousError as error:
        c.fail("[study] runs", f"= {runs:,}: {error}")
    if runs > MAX_RUNS:
        c.fail("[study] runs", f"is {runs:,}; run indices are 32-bit, so at most {MAX_RUNS:,} runs per problem and seed")

    optimizer = dict(c.table(raw.get("optimizer", {}), "[optimizer]"))
    fields = _optimizer_fields()
    c.keys(optimizer, ("protocol", *fields), "[optimizer]")
    if "protocol" in optimizer:
        c.scalar(optimizer["protocol"], str, "[optimizer] protocol")
    for key, value in optimizer.items():
        if key == "protocol":
            continue
        if key == "newton_switch" and value is False:
            continue
        optimizer[key] = c.scalar(value, fields[key], f"[optimizer] {key}")
    tolerances = dict(c.table(raw.get("tolerances", {}), "[tolerances]"))
    tol_fields = _tolerance_fields()
    c.keys(tolerances, tuple(tol_fields), "[tolerances]")
    for key, value in tolerances.items():
        tolerances[key] = c.scalar(value, tol_fields[key], f"[tolerances] {key}")

    config = StudyConfig(name=common["name"], kind="landscape", size=size, title=common["title"],
                         description=common["description"], source=source, problem=spec, grid=grid,
                         params=fixed, runs=runs, runs_per_cell=min(per_cell, runs), seeds=tuple(seeds),
                         optimizer=optimizer, tolerances=tolerances, published=published, device=common["device"])
    # Build every problem and its settings once, so bad values (a parameter of the wrong type, step <= 0,
    # a teacher larger than dim, an unknown protocol) fail here, before anything is written.
    try:
        config.problems()
    except ConfigError:
        raise
    except SpuriousError as error:
        c.fail("", str(error))
    return config


def _parse_experiment(c: _Checker, raw: dict, size: str | None, builtin: bool) -> StudyConfig:
    study = c.table(raw["study"], "[study]")
    common = _parse_common(c, study)
    c.keys(raw, ("study", "experiment"), "")
    for key in ("problem", "runs", "runs_per_cell", "seeds", "published"):
        if key in study:
            c.fail(f"[study] {key}", "does not apply to an experiment study")
    name = c.scalar(study["experiment"], str, "[study] experiment")
    experiment = find_experiment(name)
    if experiment is None:
        known = ", ".join(sorted(experiment_studies())) or "none"
        c.fail("[study] experiment", f"unknown experiment {name!r} (known: {known})")
    chosen = size or ("cpu" if "cpu" in experiment.sizes else experiment.sizes[0])
    if chosen not in experiment.sizes:
        alias = SIZE_ALIASES.get(chosen)
        if alias not in experiment.sizes:
            c.fail("", f"experiment {name!r} has no size {chosen!r} (sizes: {', '.join(experiment.sizes)})")
        chosen = alias
    try:
        config = experiment.default_config(chosen)
    except SpuriousError as error:
        c.fail("", str(error))
    overrides = c.table(raw.get("experiment", {}), "[experiment]")
    c.keys(overrides, tuple(config), "[experiment]")
    for key, value in overrides.items():
        old = config[key]
        if old is not None and not isinstance(value, type(old)) and not (
                isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool)):
            c.fail(f"[experiment] {key}", f"must be a {_type_name(old)} like the default {old!r}, got "
                   f"{_type_name(value)} {value!r}")
        config[key] = value
    try:
        canonical_json(config)
    except (TypeError, ValueError) as error:
        c.fail("", f"experiment {name!r} config is not plain JSON data: {error}")
    # Before any store is opened: every key in its range (a negative width, a probability above one),
    # the experiment's checks between keys (batch > samples), the number of cells, and what the
    # largest cell would hold in memory against what the machine (or the study's GPU) has.
    try:
        experiment.check_config(config)
        cells = experiment.cells(config)
        if len(cells) > MAX_CELLS:
            raise SpuriousError(f"the configuration plans {len(cells):,} cells; a study holds at most {MAX_CELLS:,} "
                                f"(each is run and stored on its own)")
        estimate = experiment.memory_need(config)
        if estimate is not None:
            need, detail = estimate
            require_memory(need, f"the largest cell of {name}@{chosen} ({detail})", _memory_device(common["device"]))
    except SpuriousError as error:
        c.fail("[experiment]", str(error))
    return StudyConfig(name=common["name"], kind="experiment", size=chosen, title=common["title"] or experiment.title,
                       description=common["description"], source=c.source,
                       device=common["device"], experiment=name, experiment_config=config)


def _memory_device(device: str):
    """The accelerator a study that asks for the GPU is held to (None: this machine's memory, also
    where JAX sees no GPU here, so that the study can still be planned and listed)."""
    if device != "gpu":
        return None
    from ..core.setup import resolve_device

    try:
        return resolve_device("gpu")
    except SpuriousError:
        return None


def load(path: str, size: str | None = None) -> StudyConfig:
    """Read and validate a study TOML file."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a study file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a study file (not UTF-8 text)") from None
    return parse(raw, source=os.path.basename(path), size=size, base_dir=os.path.dirname(os.path.abspath(path)))
