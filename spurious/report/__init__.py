"""Reports: readable summaries, machine-readable JSON, tables and plots."""
from .summary import run_summary, format_run_summary

__all__ = ["run_summary", "format_run_summary"]
