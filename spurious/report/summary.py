"""Summary of one multistart run, as a dict (the documented --json format) and as text.

JSON format (schema "spurious.run/2"; /2 renamed a family's "index" to "morse_index"):
  schema, version, problem{...}, optimizer{...}, tolerances{...}, seed, runs, device, seconds
  counts:    {class: number of runs}
  spurious_loss_1e-3: {count, fraction, ci_low, ci_high}: runs ending with loss >= 1e-3 (the 2018 criterion)
  spurious_minima:    {count, fraction, ci_low, ci_high}: runs ending at a spurious local minimum
  saddles:            {count, fraction, ci_low, ci_high}
  ended:     {status: number of runs}: 'converged' (the gradient criterion), 'global' (stopped at the known
             global value, descent monotone: a global minimum decided early), 'not_converged' (max_steps),
             'diverged'
  by_rule:   runs stopped at max_steps whose polish reached a critical point: classified by its spectrum
  monotone:  runs whose loss never rose by more than optimizer.monotone_tol * max(1, F(start)) in a step;
             loss_rise_max: the largest such relative rise over all runs (negative: every step lowered it)
  families: [{id, loss, class, morse_index, lambda_min, lambda_max, count, fraction, ci_low, ci_high,
              representative_run, representative, zero_modes, isotropy, isotropy_type}]   (fraction and
             interval over all runs; Wilson 95%; isotropy: the subgroup fixing the representative, e.g.
             "Δ(S_19 × S_1)", and its type with k symbolic, "" where the problem's group names none)
"""
from __future__ import annotations

import numpy as np

from ..optimize import AT_GLOBAL, CONVERGED, DIVERGED, NOT_CONVERGED
from ..stats import share
from .numbers import format_loss

ENDINGS = (CONVERGED, AT_GLOBAL, NOT_CONVERGED, DIVERGED)
#: how each ending reads in the text summary
ENDING_WORDS = {CONVERGED: "gradient criterion met", AT_GLOBAL: "stopped at the global value",
                NOT_CONVERGED: "stopped at max_steps", DIVERGED: "diverged"}

SCHEMA = "spurious.run/2"


def run_summary(result, with_params: bool = True) -> dict:
    from ..core.version import __version__

    analysis, endpoints, problem = result.analysis, result.endpoints, result.problem
    total = len(endpoints)
    return {
        "schema": SCHEMA,
        "version": __version__,
        "problem": problem.describe(),
        "optimizer": endpoints.optimizer.to_dict(),
        "tolerances": analysis.tolerances.to_dict(),
        "seed": endpoints.seed,
        "runs": total,
        "first_run": int(endpoints.run[0]) if total else 0,
        "device": endpoints.device,
        "seconds": {"optimize": endpoints.seconds, "analyze": analysis.seconds},
        "steps": {"mean": float(np.mean(endpoints.steps)), "max": int(np.max(endpoints.steps))},
        "counts": analysis.counts(),
        "ended": {status: int(np.sum(endpoints.status == status)) for status in ENDINGS
                  if np.any(endpoints.status == status)},
        "by_rule": int(np.sum(analysis.by_rule)) if analysis.by_rule is not None else 0,
        "monotone": int(np.sum(endpoints.monotone)),
        "loss_rise_max": _finite_max(endpoints.loss_rise),
        "spurious_loss_1e-3": share(int(np.sum(analysis.loss >= 1e-3)), total),
        "spurious_minima": share(int(np.sum(analysis.cls == "spurious_minimum")), total),
        "saddles": share(int(np.sum(analysis.cls == "saddle")), total),
        "families": [f.to_dict(with_params) for f in analysis.families],
    }


def _finite_max(values) -> float | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.max(values)) if len(values) else None


def _pct(share: dict) -> str:
    return f"{100 * share['fraction']:.1f}% [{100 * share['ci_low']:.1f}, {100 * share['ci_high']:.1f}]"


def format_run_summary(summary: dict, max_families: int = 20) -> str:
    p = summary["problem"]
    head = ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("name", "global_min_value", "teacher_weights"))
    lines = [
        f"{p['name']} ({head})",
        f"{summary['runs']} runs, seed {summary['seed']}, {summary['device']}: "
        f"optimize {summary['seconds']['optimize']:.1f} s, analyze {summary['seconds']['analyze']:.1f} s, "
        f"mean {summary['steps']['mean']:.0f} GD steps",
        "",
        "runs per class:",
    ]
    for cls, count in summary["counts"].items():
        lines.append(f"  {cls:<17} {count:>7}  ({100 * count / summary['runs']:.1f}%)")
    ended = summary.get("ended", {})
    if ended:
        optimizer = summary["optimizer"]
        parts = [f"{ENDING_WORDS[s]} {n}" for s, n in ended.items()]
        lines += ["", "how runs ended: " + ", ".join(parts)]
        if ended.get(AT_GLOBAL):
            lines.append(f"  stopped at the global value: loss within {optimizer['global_stop']:g} of it with monotone "
                         f"descent, so a global minimum and a final loss below it are decided without the gradient "
                         f"criterion (--no-global-stop turns this off)")
        if summary.get("by_rule"):
            lines.append(f"  {summary['by_rule']} of the runs stopped at max_steps are classified by the rule: Newton "
                         f"(pseudo-inverse) from the endpoint reached a critical point, whose spectrum gives the class")
        rise = summary.get("loss_rise_max")
        lines.append(f"  monotone descent (no step raised the loss by more than {optimizer['monotone_tol']:g} x "
                     f"max(1, F(start))): {summary['monotone']} of {summary['runs']} runs"
                     + (f"; largest relative rise {rise:.1e}" if rise is not None and rise > 0 else ""))
    lines += [
        "",
        f"spurious local minima: {_pct(summary['spurious_minima'])}   saddles: {_pct(summary['saddles'])}",
        f"final loss >= 1e-3 (2018 criterion): {_pct(summary['spurious_loss_1e-3'])}   (95% Wilson intervals)",
        "",
        f"{'family':>6} {'class':<17} {'index':>5} {'loss':>12} {'lambda_min':>11} {'lambda_max':>10} {'count':>6}  fraction [95% CI]"
        + ("   isotropy" if any(f.get("isotropy") for f in summary["families"]) else ""),
    ]
    for f in summary["families"][:max_families]:
        loss = f"{format_loss(f['loss']):>12}"  # round-off of a zero loss (-8.9e-16) shows as 0
        lines.append(
            f"{f['id']:>6} {f['class']:<17} {f['morse_index']:>5} {loss} {f['lambda_min']:>11.3e} "
            f"{f['lambda_max']:>10.3e} {f['count']:>6}  {100 * f['fraction']:.1f}% "
            f"[{100 * f['ci_low']:.1f}, {100 * f['ci_high']:.1f}]" + (f"   {f['isotropy']}" if f.get("isotropy") else ""))
    if len(summary["families"]) > max_families:
        lines.append(f"  ... {len(summary['families']) - max_families} more families (see --json)")
    return "\n".join(lines)
