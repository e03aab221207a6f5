"""`spurious study ...` (run, resume, status, list) and `spurious report`: sweeps stored in the
embedded database, and their reports (terminal tables, PNG/SVG plots, one HTML page per study)."""
from __future__ import annotations

import os
import sys
import time

from ..core.errors import SpuriousError
from ..core.files import check_output_folder

SIZES_HELP = ("size variant: quick (minutes, for a first look), cpu (the default), full (the paper's budget); "
              "a study may define more (safran-shamir-2018: table, the n = k table at full budget)")


def _store_arg(p):
    p.add_argument("--store", metavar="PATH", default=None,
                   help="the study database (default $SPURIOUS_STORE or ./spurious.db)")


def _run_args(p):
    _store_arg(p)
    p.add_argument("--html", metavar="DIR", default=None,
                   help="where to write the HTML report, created if its parent exists (default: <store>-reports/ next "
                        "to the store)")
    p.add_argument("--no-report", action="store_true", help="do not print or write the report at the end")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--break-lock", action="store_true",
                   help="take over a study whose lock is held by a process that is gone (e.g. on another host)")
    g = p.add_argument_group("where cells run (see docs/ray.md)")
    g.add_argument("--executor", choices=("in-process", "ray"), default="in-process",
                   help="in-process (default): cells one after the other here; ray: each cell a Ray task")
    g.add_argument("--address", metavar="ADDR", default=None,
                   help="with --executor ray: the Ray cluster (HOST:PORT of its head, ray://HOST:PORT, or auto for "
                        "the one `ray start` runs on this machine); default $RAY_ADDRESS, else a local Ray instance")
    g.add_argument("--workers", type=int, metavar="N", default=None,
                   help="with --executor ray and no address: cells at once in the local Ray instance (default: cores)")
    g.add_argument("--cpus-per-cell", type=float, metavar="C", default=1.0,
                   help="with --executor ray: CPUs each cell's task asks for (default 1)")
    g.add_argument("--gpus-per-cell", type=float, metavar="G", default=None,
                   help="with --executor ray: GPUs each cell's task asks for (default: 1 when --device gpu, or auto "
                        "and the cluster has GPUs, else 0; fractions share a GPU)")
    g.add_argument("--max-retries", type=int, metavar="R", default=3,
                   help="with --executor ray: how often a cell whose worker died is run again (default 3)")


def register(subparsers):
    study = subparsers.add_parser(
        "study", help="run, resume and inspect declarative sweeps stored in a database",
        description="A study is a declarative sweep (a TOML file or a built-in name) whose cells are "
                    "committed to an embedded SQLite database one by one; it can be killed at any time and "
                    "resumed. `spurious study list` shows the built-in studies.")
    from . import OneLineParser

    sub = study.add_subparsers(dest="study_command", metavar="SUBCOMMAND", parser_class=OneLineParser)
    sub.required = True

    p = sub.add_parser("run", help="run a study (only its cells not yet in the store)",
                       description="Run a study from a TOML file or by built-in name; cells already in the "
                                   "store are skipped, so this also resumes, and does nothing for a finished study.")
    p.add_argument("target", metavar="CONFIG|NAME", help="a study TOML file or a built-in study name")
    p.add_argument("--size", default=None, help=SIZES_HELP)
    p.add_argument("--device", default=None, help="cpu, gpu or auto (default: the study's, normally auto)")
    _run_args(p)
    p.set_defaults(handler=handle_run)

    p = sub.add_parser("resume", help="finish an interrupted study from the configuration stored with it")
    p.add_argument("study", nargs="?", default=None, help="study (default: the one unfinished study in the store)")
    p.add_argument("--device", default=None, help="cpu, gpu or auto")
    _run_args(p)
    p.set_defaults(handler=handle_resume)

    p = sub.add_parser("status", help="progress of the studies in a store (works while they run)")
    p.add_argument("study", nargs="?", default=None, help="one study (default: all)")
    _store_arg(p)
    p.set_defaults(handler=handle_status)

    p = sub.add_parser("certify", help="certify a stored study's families in ball arithmetic (resumable)",
                       description="Prove, for each selected family of the study's finished problems that can be "
                                   "certified (those with a rigorous evaluation, today relu-teacher-student; others "
                                   "are skipped and counted), that a critical point of the stated kind exists near "
                                   "its representative (see docs/certify.md); outcomes are committed to the store "
                                   "one family at a time and the report marks them. Families already done are skipped.")
    p.add_argument("study", help="study name or name@size")
    _store_arg(p)
    p.add_argument("--classes", default="spurious_minimum,saddle",
                   help="comma-separated family classes to certify (default spurious_minimum,saddle)")
    p.add_argument("--lowest", action="store_true", help="only the lowest-loss family of each class per problem")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write every stored certificate to DIR, created if its parent exists (re-check each with `spurious verify`)")
    p.set_defaults(handler=handle_certify)

    p = sub.add_parser("annihilate", help="split a neuron of each spurious minimum family (one more neuron) and "
                                         "certify that it is no longer a minimum (resumable)",
                       description="For each spurious minimum family of the study's finished problems with n >= k "
                                   "that can be certified: split the neuron whose splitting block (H_ww - I/2, the "
                                   "2021 criterion) has the most negative eigenvalue into alpha w and (1 - alpha) w, "
                                   "certify that this critical point of n + 1 neurons is not a local minimum, and "
                                   "run gradient descent of n + 1 from just off it (see `spurious annihilate`). "
                                   "Outcomes are committed to the store one family at a time; the report shows them.")
    p.add_argument("study", help="study name or name@size")
    _store_arg(p)
    p.add_argument("--alpha", default="0.5", help="the split ratio, strictly between 0 and 1 (default 0.5)")
    p.add_argument("--lowest", action="store_true", help="only the lowest-loss spurious minimum family per problem")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write every stored annihilation certificate to DIR (re-check with `spurious verify`)")
    p.add_argument("--device", default="auto", help="cpu, gpu or auto (for the descents)")
    p.set_defaults(handler=handle_annihilate)

    p = sub.add_parser("list", help="the built-in studies, runnable by name")
    p.set_defaults(handler=handle_list)

    p = subparsers.add_parser(
        "report", help="report a stored study: tables, plots, HTML page",
        description="Print a study's report from the store alone (measured vs published, minima and saddles, "
                    "families); with --html also write PNG/SVG figures and one self-contained HTML page.")
    p.add_argument("study", nargs="?", default=None, help="study name or name@size (default: every study)")
    _store_arg(p)
    p.add_argument("--html", metavar="DIR", default=None, help="write DIR/<study>.html and DIR/<study>/*.png|svg (DIR is created if its parent exists)")
    p.add_argument("--open", action="store_true", help="open the HTML page in a browser (implies --html)")
    p.set_defaults(handler=handle_report)


def _store_path(args) -> str:
    from ..store import default_path

    if args.store is not None and not args.store:
        raise SpuriousError("--store: empty path")
    if args.store and args.store.endswith(("/", os.sep)):
        raise SpuriousError(f"--store {args.store}: names a folder (ends with /); give the store file's path")
    return args.store or default_path()


def default_html_dir(store_path: str) -> str:
    stem = os.path.splitext(os.path.basename(store_path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(store_path)), f"{stem}-reports")


RAY_ONLY = ("address", "workers", "gpus_per_cell")


def _executor(args, device: str):
    """The executor the options ask for; bad options are refused before anything is written."""
    from ..studies.executors import InProcessExecutor, RayExecutor

    if args.executor == "in-process":
        given = [f"--{name.replace('_', '-')}" for name in RAY_ONLY if getattr(args, name) is not None]
        given += ["--cpus-per-cell"] if args.cpus_per_cell != 1.0 else []
        given += ["--max-retries"] if args.max_retries != 3 else []
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise SpuriousError(f"{', '.join(given)} {verb} only with --executor ray")
        from ..core.setup import resolve_device

        resolve_device(device)
        return InProcessExecutor(device=device)
    return RayExecutor(device=device, address=args.address, cpus_per_cell=args.cpus_per_cell,
                       gpus_per_cell=args.gpus_per_cell, workers=args.workers, max_retries=args.max_retries)


def _execute(config, args, command: str) -> int:
    from ..store import check_store_path

    device = args.device or config.device
    check_store_path(_store_path(args), create=True)
    if not args.no_report:
        html = args.html or default_html_dir(_store_path(args))
        if os.path.abspath(html) == os.path.abspath(_store_path(args)):
            raise SpuriousError(f"--html {html}: is the store's own path")
        check_output_folder(html, "--html")
    executor = _executor(args, device)  # a clear error before anything is written
    if args.executor == "in-process":  # (a Ray worker checks on its own machine)
        _check_cells_fit(config, device)
    try:
        return _execute_with(config, args, command, executor)
    finally:
        executor.close()


def _check_cells_fit(config, device: str):
    """Every problem's cell fits in this machine's (or accelerator's) memory, before anything runs."""
    from ..core.setup import resolve_device
    from ..optimize import check_fits
    from ..problems import build_shared

    jax_device = resolve_device(device)
    for problem in config.problems():
        check_fits(build_shared(problem["name"], problem["params"]), config.runs_per_cell, device=jax_device)


def _execute_with(config, args, command: str, executor) -> int:
    from ..studies.kinds import kind_of
    from ..studies.runner import run_study
    from ..store import Store
    from .progress import Progress

    store = Store(_store_path(args))
    try:
        log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
        existing = store.study(config.key)
        if existing is not None and existing["complete"]:
            log(f"study {config.key}: all {existing['cells_total']} cells are already in {store.path}; nothing to run")
        kind = kind_of(config)
        # off a terminal a line per cell, and a count of runs when a cell takes long
        bar = None if args.quiet else Progress(kind.unit, interval=30.0)
        on_cell = None
        if not args.quiet and not bar.terminal:
            on_cell = lambda cell, result, done, total: log(f"cell {done}/{total}: {kind.describe(cell, result)}")
        started = time.perf_counter()
        outcome = run_study(config, store, executor, progress=bar, on_cell=on_cell,
                            break_lock=args.break_lock, command=command)
        if outcome.cells_run:
            log(f"study {outcome.key}: ran {outcome.cells_run} cells ({executor.name}) in "
                f"{time.perf_counter() - started:.1f} s"
                + (f" ({outcome.cells_before} were already stored)" if outcome.cells_before else "")
                + f"; store {store.path}")
        if not args.no_report:
            _print_report(store, outcome.key, args.html or default_html_dir(store.path))
        return 0
    finally:
        store.close()


def _print_report(store, key: str, html_dir: str | None) -> str | None:
    from ..report.html import write_report
    from ..report.study import build_report
    from ..report.tables import format_report

    report = build_report(store, key)
    print(format_report(report))
    if html_dir is None:
        return None
    path = write_report(report, html_dir)
    print(f"\nHTML report: {os.path.abspath(path)}")
    return path


def handle_run(args) -> int:
    from ..studies.builtin import load_study

    config = load_study(args.target, size=args.size)  # validated before the store is opened
    return _execute(config, args, command=" ".join(["spurious", "study", "run", args.target]))


def handle_resume(args) -> int:
    from ..store import Store
    from ..studies.config import StudyConfig

    path = _store_path(args)
    with Store(path, create=False, read_only=True) as store:
        if args.study is not None:
            key = store.resolve(args.study)
        else:
            unfinished = [s["key"] for s in store.studies() if not s["complete"]]
            if not unfinished:
                print(f"{path}: every study is complete; nothing to resume")
                return 0
            if len(unfinished) > 1:
                raise SpuriousError(f"{path} holds several unfinished studies ({', '.join(unfinished)}); name one")
            key = unfinished[0]
        config = StudyConfig.from_dict(store.config(key))
    return _execute(config, args, command=f"spurious study resume {key}")


def handle_status(args) -> int:
    from ..report.tables import format_status
    from ..store import Store

    with Store(_store_path(args), create=False, read_only=True) as store:
        studies = [store.study(store.resolve(args.study))] if args.study else store.studies()
        print(format_status(studies, store.path))
    return 0


def handle_certify(args) -> int:
    from ..store import Store
    from ..studies.certification import certify_study

    def line(problem_key, family, status, summary):
        if status == "certified":
            what = "minimum" if summary["kind"] == "minimum" else f"saddle, index {summary['morse_index']}"
            detail = f"{what}, radius {float(summary['radius']):.1e}, {summary['seconds']:.1f} s"
        else:
            detail = f"{summary['refusal']}: {summary['reason']}"
        print(f"{problem_key} family {family['id']} ({family['class']}, loss {family['loss']:.6g}): {status} ({detail})",
              flush=True)

    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    if args.out is not None:
        check_output_folder(args.out, "--out")
    with Store(_store_path(args), create=False) as store:
        key = store.resolve(args.study)
        result = certify_study(store, key, classes, lowest_only=args.lowest, out_dir=args.out,
                               command=f"spurious study certify {key}", on_family=line)
    skipped = ""
    if result.uncertifiable:
        reasons = "; ".join(sorted(set(result.uncertifiable.values())))
        count = len(result.uncertifiable)
        skipped = f"; skipped {count} problem{'s' if count > 1 else ''} that cannot be certified ({reasons})"
    print(f"{key}: {result.certified} certified, {result.refused} refused, {result.skipped} already in the store "
          f"({result.seconds:.1f} s)" + (f"; certificates in {args.out}" if args.out else "") + skipped)
    return 0


def handle_annihilate(args) -> int:
    from ..certify import exact_alpha
    from ..core.setup import resolve_device
    from ..store import Store
    from ..studies.certification import annihilate_study

    def line(problem_key, family, status, summary):
        if status == "certified":
            detail = (f"neuron {summary['neuron']}, criterion {summary['criterion']:.4g}, curvature <= "
                      f"{summary['curvature_upper']}")
        else:
            detail = summary["refusal"]
        where = ", ".join(f"{c} {n}" for c, n in summary.get("descent", {}).get("counts", {}).items())
        print(f"{problem_key} family {family['id']} (loss {family['loss']:.6g}): {status} ({detail}); descent from the "
              f"split: {where}", flush=True)

    exact_alpha(args.alpha)
    resolve_device(args.device)
    if args.out is not None:
        check_output_folder(args.out, "--out")
    with Store(_store_path(args), create=False) as store:
        key = store.resolve(args.study)
        result = annihilate_study(store, key, args.alpha, lowest_only=args.lowest, out_dir=args.out,
                                  command=f"spurious study annihilate {key}", on_family=line, device=args.device)
    skipped = ""
    if result.untried:
        skipped = f"; not tried: {len(result.untried)} problems ({'; '.join(sorted(set(result.untried.values())))})"
    print(f"{key}: {result.certified} certified, {result.refused} refused, {result.skipped} already in the store "
          f"({result.seconds:.1f} s, alpha = {result.alpha})" + (f"; certificates in {args.out}" if args.out else "")
          + skipped)
    return 0


def handle_list(args) -> int:
    from ..report.tables import format_table
    from ..studies.builtin import catalogue
    from ..studies.experiment_catalogue import experiment_load_errors

    rows = []
    for entry in catalogue():
        sizes = ", ".join(s + ("*" if s == entry["default_size"] else "") for s in entry["sizes"])
        rows.append({"name": entry["name"], "kind": entry["kind"], "sizes": sizes or "-", "title": entry["title"]})
    print("\n".join(format_table(rows, [("name", "study", "<"), ("kind", "kind", "<"), ("sizes", "sizes (*default)", "<"),
                                        ("title", "title", "<")])))
    print("\nrun one: spurious study run NAME [--size SIZE]   (or a TOML file: see spurious.studies.config)")
    for name, error in experiment_load_errors().items():
        print(f"warning: experiment module {name} failed to load: {error}", file=sys.stderr)
    return 0


def handle_report(args) -> int:
    from ..store import Store

    html_dir = args.html
    if args.open and html_dir is None:
        html_dir = default_html_dir(_store_path(args))
    if html_dir is not None:
        check_output_folder(html_dir, "--html")
    with Store(_store_path(args), create=False, read_only=True) as store:
        keys = [store.resolve(args.study)] if args.study else [s["key"] for s in store.studies()]
        if not keys:
            print(f"{store.path}: no studies yet")
            return 0
        paths = []
        for i, key in enumerate(keys):
            if i:
                print("\n" + "=" * 100 + "\n")
            paths.append(_print_report(store, key, html_dir))
    if args.open:
        import webbrowser

        for path in paths:
            if path:
                webbrowser.open("file://" + os.path.abspath(path))
    return 0
