"""The problem options every command shares: `--problem SPEC --param KEY=VALUE ...`, with
`--teacher/--student/--dim` as shorthand for those parameters (of the ReLU problem by default)."""
from __future__ import annotations

from ..core.errors import SpuriousError

DEFAULT_PROBLEM = "relu-teacher-student"
#: parameters with a flag of their own
SHORTHANDS = ("teacher", "student", "dim")


def add_problem_args(p):
    g = p.add_argument_group("the landscape (`spurious problems` lists them and their parameters)")
    g.add_argument("--problem", "-p", metavar="SPEC", default=None,
                   help=f"a registered problem name or your own as path/to/file.py:NAME or package.module:NAME "
                        f"(default {DEFAULT_PROBLEM})")
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the problem (repeatable), typed by the problem's signature")
    g.add_argument("--teacher", "-k", type=int, default=None, help="shorthand for --param teacher=K")
    g.add_argument("--student", "-n", type=int, default=None, help="shorthand for --param student=N")
    g.add_argument("--dim", "-d", type=int, default=None, help="shorthand for --param dim=D")


def problem_from_args(args):
    """(spec, params, problem) from the parsed options; SpuriousError (one line) on any bad value.
    Parameters are checked by name and type before the problem is built."""
    from ..problems import entry

    spec = args.problem or DEFAULT_PROBLEM
    found = entry(spec)
    params: dict = {}
    for item in args.param:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpuriousError(f"--param {item!r}: expected KEY=VALUE")
        parameter = found.parameter(key)
        if parameter is None:
            known = ", ".join(p.name for p in found.parameters + found.shorthands) or "none"
            raise SpuriousError(f"problem {spec!r} takes no parameter {key!r} (parameters: {known})")
        if key in params or (key in SHORTHANDS and getattr(args, key, None) is not None):
            raise SpuriousError(f"--param {key}: given twice" + ("" if key in params else f" (also as --{key})"))
        params[key] = parameter.parse(text.strip(), f"--param {key}")
    for key in SHORTHANDS:
        value = getattr(args, key, None)
        if value is None:
            continue
        if found.parameter(key) is None:
            raise SpuriousError(f"--{key}: problem {spec!r} takes no parameter {key!r} "
                                f"(--{key} is shorthand for --param {key}=VALUE)")
        params[key] = value
    return spec, params, found.build(params)
