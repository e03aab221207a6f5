"""Problems by name: the shipped landscapes (registered in spurious.problems.catalogue), and a user's
own by a spec `file.py:NAME` or `module:NAME`.

    build("relu-teacher-student", {"teacher": 6, "student": 7})
    build("examples/erf_network.py:ErfNetwork", {"width": 4})
    build("mypackage.landscapes:make_problem", {"scale": 2.0})

A user's NAME is a Problem subclass or a function returning a Problem; it is called with the
parameters as keyword arguments, and its signature (annotations and defaults) types them, exactly as
for a registered problem. `entry(spec)` gives the parameters a problem takes, so every front end
(CLI, study files) checks a parameter's name and type before anything is built or run.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.errors import SpuriousError
from .base import Problem

REQUIRED = object()  # default of a parameter that has none
TYPES = ("int", "float", "str", "bool", "data")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # one of TYPES; "data" is any plain JSON value (a list, a table)
    default: Any = REQUIRED
    optional: bool = False  # None is accepted (and means the problem's own default)
    doc: str = ""
    symbol: str = ""  # the papers' letter for it (k, n, d), used in report labels

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value, where: str):
        """The value converted to this parameter's type; SpuriousError naming `where` otherwise."""
        if value is None and (self.optional or self.default is None):
            return None
        kind = self.type
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpuriousError(f"{where} must be an integer, got {_type_name(value)} {value!r}")
            return int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpuriousError(f"{where} must be a number, got {_type_name(value)} {value!r}")
            if not math.isfinite(value):
                raise SpuriousError(f"{where} must be finite, got {value!r}")
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise SpuriousError(f"{where} must be a string, got {_type_name(value)} {value!r}")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise SpuriousError(f"{where} must be true or false, got {_type_name(value)} {value!r}")
            return value
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise SpuriousError(f"{where} must be plain data (numbers, strings, lists, tables), got {value!r}") from None
        return value

    def parse(self, text: str, where: str):
        """A value given as text on the command line (`--param name=text`)."""
        if text.lower() in ("none", "null") and (self.optional or self.default is None):
            return None
        try:
            if self.type == "int":
                value: Any = int(text)
            elif self.type == "float":
                value = float(text)
            elif self.type == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                value = text.lower() == "true"
            elif self.type == "str":
                value = text
            else:
                value = json.loads(text)
        except ValueError:
            expected = {"int": "an integer", "float": "a number", "bool": "true or false",
                        "data": "JSON data"}[self.type]
            raise SpuriousError(f"{where} must be {expected}, got {text!r}") from None
        return self.check(value, where)

    def describe(self) -> str:
        default = "required" if self.required else f"default {self.default!r}"
        return f"{self.name} ({self.type}{' or none' if self.optional else ''}, {default})"


@dataclass(frozen=True)
class Entry:
    """A problem constructor with typed parameters. `shorthands` are extra parameters a study grid
    may sweep instead of a real one (e.g. `extra`: student = teacher + extra); `expand` turns them
    into real parameters."""

    name: str
    factory: Callable[..., Problem]
    parameters: tuple[Parameter, ...]
    doc: str = ""
    shorthands: tuple[Parameter, ...] = ()
    expand: Callable[[dict], dict] | None = None
    builtin: bool = True
    #: small parameters for tests and docs (the contract test builds every entry with these)
    example: dict = field(default_factory=dict)

    def parameter(self, name: str) -> Parameter | None:
        for p in self.parameters + self.shorthands:
            if p.name == name:
                return p
        return None

    def check(self, params: dict, where: str = "") -> dict:
        """Parameters checked by name and type (shorthands expanded); required ones present."""
        if not isinstance(params, dict):
            raise SpuriousError(f"{where or self.name}: parameters must be a table, got {params!r}")
        prefix = f"{where}: " if where else ""
        out = {}
        for key, value in params.items():
            p = self.parameter(key)
            if p is None:
                known = ", ".join(q.name for q in self.parameters + self.shorthands) or "none"
                raise SpuriousError(f"{prefix}problem {self.name!r} takes no parameter {key!r} (parameters: {known})")
            out[key] = p.check(value, f"{prefix}parameter {key!r} of {self.name!r}")
        if self.expand is not None and any(s.name in out for s in self.shorthands):
            out = self.expand(out)
        missing = [p.name for p in self.parameters if p.required and p.name not in out]
        if missing:
            raise SpuriousError(f"{prefix}problem {self.name!r} needs parameter{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)}")
        return out

    def build(self, params: dict | None = None, where: str = "") -> Problem:
        params = self.check(dict(params or {}), where)
        try:
            problem = self.factory(**params)
        except SpuriousError as error:
            raise SpuriousError(f"{where + ': ' if where else ''}{error}") from None
        except TypeError as error:  # the factory's own signature refused them
            raise SpuriousError(f"{where + ': ' if where else ''}problem {self.name!r}: {error}") from None
        except MemoryError as error:  # a size this machine cannot hold (numpy says how much it asked)
            from ..core.resources import format_bytes, machine_memory

            raise SpuriousError(f"{where + ': ' if where else ''}problem {self.name!r} with {_shown(params)} does "
                                f"not fit: {error}; this machine has {format_bytes(machine_memory())}") from None
        except (OverflowError, ValueError) as error:  # sizes or values its arrays cannot represent
            raise SpuriousError(f"{where + ': ' if where else ''}problem {self.name!r} with {_shown(params)}: "
                                f"{error}") from None
        if not isinstance(problem, Problem):
            raise SpuriousError(f"{self.name!r} returned {type(problem).__name__}, not a spurious.Problem")
        return problem


def _shown(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "its defaults"


def _type_name(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table", type(None): "none"}.get(type(value), type(value).__name__)


_ANNOTATIONS = {"int": "int", "float": "float", "str": "str", "bool": "bool"}


def parameters_of(factory: Callable, docs: dict[str, str] | None = None,
                  symbols: dict[str, str] | None = None) -> tuple[Parameter, ...]:
    """Typed parameters from a signature: annotations int/float/str/bool (`| None` for optional);
    unannotated ones take their default's type, or plain data."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    docs = docs or {}
    out = []
    for name, p in inspect.signature(target).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = p.annotation
        if annotation is inspect.Parameter.empty:
            text = ""
        else:
            text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        text = text.replace(" ", "")
        optional = text.endswith("|None") or text.startswith("None|") or text.startswith("Optional[")
        core = text.replace("|None", "").replace("None|", "").removeprefix("Optional[").removesuffix("]")
        default = REQUIRED if p.default is inspect.Parameter.empty else p.default
        if core in _ANNOTATIONS:
            kind = _ANNOTATIONS[core]
        elif default is not REQUIRED and default is not None and type(default) in (int, float, str, bool):
            kind = type(default).__name__
        else:
            kind = "data"
        out.append(Parameter(name, kind, default, optional or default is None, docs.get(name, ""),
                             (symbols or {}).get(name, "")))
    return tuple(out)


_REGISTRY: dict[str, Entry] = {}


def register(name: str, factory: Callable[..., Problem], *, doc: str = "", docs: dict[str, str] | None = None,
             symbols: dict[str, str] | None = None,
             shorthands: tuple[Parameter, ...] = (), expand: Callable[[dict], dict] | None = None,
             example: dict | None = None) -> Entry:
    """Register a problem constructor under `name` (its parameters typed from its signature).
    `example`: small parameters that build it quickly (the contract test uses them)."""
    entry = Entry(name, factory, parameters_of(factory, docs, symbols), doc or _first_line(factory), shorthands, expand,
                  example=dict(example or {}))
    _REGISTRY[name] = entry
    return entry


def _first_line(obj) -> str:
    return (inspect.getdoc(obj) or "").strip().split("\n")[0]


def names() -> list[str]:
    return sorted(_REGISTRY)


def entries() -> list[Entry]:
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def is_spec(text: str) -> bool:
    """A user's spec (file.py:NAME or module:NAME) rather than a registered name."""
    return ":" in text


def entry(spec: str) -> Entry:
    """The Entry for a registered name or a user spec; SpuriousError (one line) when there is none."""
    if not isinstance(spec, str) or not spec:
        raise SpuriousError(f"a problem is named by a string, got {spec!r}")
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if not is_spec(spec):
        raise SpuriousError(f"unknown problem {spec!r} (registered: {', '.join(sorted(_REGISTRY))}; or give "
                            f"your own as path/to/file.py:NAME or package.module:NAME)")
    return _user_entry(spec)


def build(spec: str, params: dict | None = None, where: str = "") -> Problem:
    """The problem `spec` with these parameters (checked by name and type first)."""
    return entry(spec).build(params, where)


def absolute_spec(spec: str, base: str | None = None) -> str:
    """A file spec with its path made absolute (relative to `base`, default the working directory),
    so it names the same file from any process; registered names and module specs are unchanged."""
    if not is_spec(spec):
        return spec
    where, _, name = spec.rpartition(":")
    if not _is_file_spec(where):
        return spec
    path = where if os.path.isabs(where) else os.path.join(base or os.getcwd(), where)
    return f"{os.path.normpath(path)}:{name}"


def _is_file_spec(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where


_USER: dict[str, Entry] = {}


def _user_entry(spec: str) -> Entry:
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise SpuriousError(f"problem spec {spec!r} must be path/to/file.py:NAME or package.module:NAME")
    key = absolute_spec(spec)
    if key in _USER:
        return _USER[key]
    if _is_file_spec(where):
        path = key.rpartition(":")[0]
        if not os.path.isfile(path):
            raise SpuriousError(f"problem spec {spec!r}: no such file {where}")
        module_name = "spurious_user_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        module = sys.modules.get(module_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise SpuriousError(f"problem spec {spec!r}: {where} is not a Python file (.py)")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            try:
                loader_spec.loader.exec_module(module)
            except Exception as error:  # noqa: BLE001  (a user's file: any error is theirs, in one line)
                sys.modules.pop(module_name, None)
                raise SpuriousError(f"problem spec {spec!r}: {where} failed to load: "
                                    f"{type(error).__name__}: {error}") from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise SpuriousError(f"problem spec {spec!r}: cannot import module {where!r} ({error})") from None
    factory = getattr(module, name, None)
    if factory is None:
        raise SpuriousError(f"problem spec {spec!r}: {where} defines no {name!r}")
    if not callable(factory) or (inspect.isclass(factory) and not issubclass(factory, Problem)):
        raise SpuriousError(f"problem spec {spec!r}: {name!r} is not a Problem subclass or a function returning one")
    _USER[key] = Entry(key, factory, parameters_of(factory), _first_line(factory), builtin=False)
    return _USER[key]


_BUILT: dict[str, Problem] = {}


def build_shared(spec: str, params: dict | None = None, where: str = "") -> Problem:
    """`build`, but one object per (spec, params) in this process (the last 64 kept), so the cells of
    one problem share its compiled kernels; problems are never changed after construction."""
    from ..core.jsonable import canonical_json

    key = canonical_json({"spec": absolute_spec(spec), "params": params or {}})
    if key not in _BUILT:
        _BUILT[key] = build(spec, params, where)
        if len(_BUILT) > 64:
            _BUILT.pop(next(iter(_BUILT)))
    return _BUILT[key]
