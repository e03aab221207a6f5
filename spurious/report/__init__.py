"""Reports: readable summaries, machine-readable JSON, tables and plots.

    summary   one multistart run (`spurious run`), as a dict and as text
    study     a study's report, from the store alone (plain data)
    tables    terminal tables;  plots: matplotlib figures (PNG, SVG);  html: one self-contained page
"""
from .summary import format_run_summary, run_summary

__all__ = ["run_summary", "format_run_summary", "build_report", "format_report", "render_html", "write_report"]


def __getattr__(name):  # study reports import matplotlib: load them on first use
    if name == "build_report":
        from .study import build_report
        return build_report
    if name == "format_report":
        from .tables import format_report
        return format_report
    if name in ("render_html", "write_report"):
        from . import html
        return getattr(html, name)
    raise AttributeError(name)
