"""`spurious problems [SPEC]`: the registered landscapes with their parameters and defaults."""
from __future__ import annotations


def register(subparsers):
    p = subparsers.add_parser(
        "problems", help="list the registered problems and their parameters",
        description="The landscapes `run`, `certify` and study files can name, each with its typed parameters "
                    "and defaults. Give a SPEC (a name, or your own path/to/file.py:NAME) to see one.")
    p.add_argument("spec", nargs="?", default=None, help="one problem: a registered name or a file/module spec")
    p.set_defaults(handler=handle)


def _describe(entry) -> list[str]:
    lines = [f"{entry.name}" + (f"  -  {entry.doc}" if entry.doc else "")]
    for p in entry.parameters + entry.shorthands:
        default = ("shorthand" if p in entry.shorthands else "required" if p.required
                   else f"default {p.default!r}")
        kind = p.type + (" or none" if p.optional and p.type != "data" else "")
        lines.append(f"    {p.name:<16} {kind:<14} {default:<22} {p.doc}".rstrip())
    return lines


def handle(args) -> int:
    from ..problems import entry, registry

    entries = [entry(args.spec)] if args.spec else registry.entries()
    out = []
    for e in entries:
        out.extend(_describe(e))
        out.append("")
    if not args.spec:
        out.append("your own: --problem path/to/file.py:NAME (a Problem subclass or a function returning one; "
                   "see docs/your-landscape.md)")
    print("\n".join(out).rstrip())
    return 0
