"""Built-in studies, runnable by name: the landscape sweeps defined by the TOML files next to this
module (their published numbers in spurious.studies.published), and every registered experiment
(spurious.experiments.load_all())."""
from __future__ import annotations

import os
import tomllib
from importlib import resources

from .config import ConfigError, StudyConfig, load, parse
from .experiment_catalogue import experiment_studies

_PACKAGE = "spurious.studies"


def landscape_studies() -> dict[str, str]:
    """{name: TOML text} of the built-in landscape studies."""
    out = {}
    for entry in sorted(resources.files(_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            out[entry.name[: -len(".toml")]] = entry.read_text()
    return out


def catalogue() -> list[dict]:
    """One entry per built-in study: name, kind, title, sizes, default size."""
    out = []
    for name, text in landscape_studies().items():
        raw = tomllib.loads(text)
        out.append({"name": name, "kind": "landscape", "title": raw["study"].get("title", ""),
                    "sizes": list(raw.get("sizes", {})), "default_size": raw.get("default_size")})
    for name, experiment in experiment_studies().items():
        sizes = list(experiment.sizes)
        out.append({"name": name, "kind": "experiment", "title": experiment.title, "sizes": sizes,
                    "default_size": "cpu" if "cpu" in sizes else sizes[0]})
    return out


def _looks_like_path(target: str) -> bool:
    return target.endswith(".toml") or os.sep in target or os.path.exists(target)


def load_study(target: str, size: str | None = None) -> StudyConfig:
    """A study from a TOML file path or a built-in name; ConfigError (one line) if neither."""
    if _looks_like_path(target):
        if not os.path.exists(target):
            raise ConfigError(f"no such study file: {target}")
        return load(target, size=size)
    landscape = landscape_studies()
    if target in landscape:
        return parse(tomllib.loads(landscape[target]), source=f"{target} (built-in)", size=size, builtin=True)
    experiments = experiment_studies()
    if target in experiments:
        return parse({"study": {"name": target, "experiment": target}}, source=f"{target} (built-in)", size=size,
                     builtin=True)
    names = list(landscape) + list(experiments)
    raise ConfigError(f"unknown study {target!r}: not a file and not a built-in study "
                      f"(built-in: {', '.join(names)}; `spurious study list` describes them)")
