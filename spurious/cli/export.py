"""`spurious export STUDY --format csv|json|parquet`: a stored study's runs and families as files any
tool reads (the columns of `Store.runs_frame` / `Store.families_frame`, from the same rows).

Files: DIR/<study>-runs.csv and DIR/<study>-families.csv (parquet likewise), or one DIR/<study>.json
holding {"study", "columns", "runs", "families"}; <study> is the key with "@" as "-" (the report's
names). Every path is checked before the store is read, existing files are replaced, and each file is
written to a temporary file beside it and renamed into place, so an interrupt leaves no partial file.
Values: floats in full precision (shortest round-trip repr); in CSV, missing values are empty fields,
bools true/false and lists (spectrum, representative, list parameters) JSON text; in JSON, lists are
arrays and missing or non-finite numbers null; in Parquet, lists are list columns and missing values
null (a column mixing types that Arrow cannot hold in one type is written as JSON text)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys

from ..core.errors import SpuriousError
from ..core.files import check_output_folder, write_atomic
from .study import _store_arg, _store_path

FORMATS = ("csv", "json", "parquet")
TABLES = ("runs", "families")


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="write a stored study's runs and families as CSV, JSON or Parquet",
        description="Write the runs and families of a study in the store (the columns of the notebook data "
                    "frames Store.runs_frame / families_frame) so they can be read without spurious: "
                    "csv and parquet give DIR/<study>-runs.<ext> and DIR/<study>-families.<ext>, json one "
                    "DIR/<study>.json with both tables (<study>: the key, '@' written as '-'). Existing files "
                    "are replaced, each atomically; the store is only read.")
    p.add_argument("study", help="study name or name@size")
    _store_arg(p)
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="csv (lists as JSON text, missing values empty), json (one file, both tables), or "
                        "parquet (needs pyarrow: pip install 'spurious[parquet]')")
    p.add_argument("--out", metavar="DIR|-", default=".",
                   help="the folder to write into, created if its parent exists (default: the current folder); - writes to standard "
                        "output (json, or csv with --table)")
    p.add_argument("--table", choices=TABLES + ("both",), default="both",
                   help="which tables to write (default both)")
    p.set_defaults(handler=handle_export)


def file_stem(key: str) -> str:
    """The study key as a file-name stem: '@' (and anything else unsafe in a name) as '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", key)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise SpuriousError("--format parquet needs pyarrow: pip install 'spurious[parquet]' "
                            "(or pip install pyarrow)") from None
    return pyarrow


def check_out(out: str, fmt: str, tables: tuple[str, ...]):
    """Refuse --out (and stdout) combinations that cannot work, before the store is opened."""
    if out == "-":
        if fmt == "parquet":
            raise SpuriousError("--format parquet cannot go to standard output: give --out DIR")
        if fmt == "csv" and len(tables) > 1:
            raise SpuriousError("--out - writes one CSV table: add --table runs or --table families")
        return
    check_output_folder(out, "--out")


def output_files(out: str, fmt: str, stem: str, tables: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """{path: the tables it holds}, every path checked (before the tables are read)."""
    from ..core.files import check_output_file

    if out == "-":
        return {}
    if fmt == "json":
        files = {os.path.join(out, f"{stem}.json"): tables}
    else:
        files = {os.path.join(out, f"{stem}-{t}.{fmt}"): (t,) for t in tables}
    for path in files:
        if os.path.isdir(out):  # a new folder holds nothing yet; its parent was checked
            check_output_file(path, "--out")
    return files


NOUNS = {"runs": ("run", "runs"), "families": ("family", "families")}


def handle_export(args) -> int:
    from ..store import Store

    fmt = args.format
    if fmt == "parquet":
        _pyarrow()  # refused in one line before any work
    tables = TABLES if args.table == "both" else (args.table,)
    check_out(args.out, fmt, tables)
    with Store(_store_path(args), create=False, read_only=True) as store, store.snapshot():
        key = store.resolve(args.study)
        files = output_files(args.out, fmt, file_stem(key), tables)
        if not store.problems(key):
            raise SpuriousError(f"study {key!r} stores no runs or families (its cells hold one result each): "
                                f"see `spurious report {key}`")
        data = {t: store.runs_rows(key) if t == "runs" else store.families_rows(key) for t in tables}
        info = store.study(key)

    def render(held: tuple[str, ...]) -> bytes:
        if fmt == "json":
            return json_text(key, {t: data[t] for t in held}).encode("utf-8")
        if fmt == "csv":
            return csv_text(*data[held[0]]).encode("utf-8")
        return parquet_bytes(key, held[0], *data[held[0]])

    if args.out == "-":
        sys.stdout.write(render(tables).decode("utf-8"))
        sys.stdout.flush()
    else:
        # render every file first, then rename each into place: a failure while rendering writes nothing
        blobs = {path: render(held) for path, held in files.items()}
        if not os.path.isdir(args.out):
            os.mkdir(args.out)
        for path, blob in blobs.items():
            write_atomic(path, blob)
        for path, held in files.items():
            counts = ", ".join(f"{len(data[t][1])} {NOUNS[t][len(data[t][1]) != 1]}" for t in held)
            print(f"{path}: {counts}")
    if not info["complete"]:
        sys.stderr.write(f"note: study {key} is not complete ({info['cells_done']} of {info['cells_total']} "
                         f"cells): families are listed only for its finished problems\n")
    return 0


# -- values ---------------------------------------------------------------------------------------
def _json_safe(value):
    """Lists stay lists; NaN and infinities become None (as everywhere in the store's JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _csv_field(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_json_safe(value), allow_nan=False)
    return str(value)


def csv_text(columns: list[str], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_field(v) for v in row] for row in rows)
    return buffer.getvalue()


def json_text(key: str, tables: dict[str, tuple[list[str], list[tuple]]]) -> str:
    doc = {"study": key, "columns": {t: columns for t, (columns, _) in tables.items()}}
    for t, (columns, rows) in tables.items():
        doc[t] = [dict(zip(columns, (_json_safe(v) for v in row))) for row in rows]
    return json.dumps(doc, allow_nan=False) + "\n"


def parquet_bytes(key: str, table: str, columns: list[str], rows: list[tuple]) -> bytes:
    pa = _pyarrow()
    import pyarrow.parquet as pq

    arrays = []
    for i in range(len(columns)):
        values = [row[i] for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            arrays.append(pa.array([None if v is None else json.dumps(_json_safe(v)) for v in values],
                                   type=pa.string()))
    out = pa.table(arrays, names=columns).replace_schema_metadata(
        {"spurious.study": key, "spurious.table": table})
    sink = pa.BufferOutputStream()
    pq.write_table(out, sink)
    return sink.getvalue().to_pybytes()
