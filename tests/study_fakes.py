"""Plain-data cell results made up for store and report tests (no optimization needed: a cell's
result is plain data, so a store can be filled with any results, exactly as an executor returns them),
plus a tiny registered Experiment."""
from __future__ import annotations

import numpy as np

from spurious.experiments import EXPERIMENTS, Experiment, ExperimentReport, Figure, Panel, Series, Verdict


def slow_cells_study(name: str, runs: int) -> str:
    """A study TOML whose cells (3 runs of k = n = 3) each take about a second: the small step makes
    every run take 110 000 to 160 000 steps, so kills and second writers land inside cells."""
    return f"""
[study]
name = "{name}"
problem = "relu-teacher-student"
runs = {runs}
runs_per_cell = 3
seeds = [0]
[grid]
teacher = [3]
extra = [0]
[optimizer]
step = 0.002
max_steps = 400000
newton_switch = false
"""


def representative(n: int, d: int, salt: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + 37 * n + d + salt)
    return rng.normal(size=(n, d)) / np.sqrt(d)


def landscape_result(cell: dict, spurious: int, spurious_loss: float = 0.02, saddles: int = 0,
                     saddle_loss: float = 0.05) -> dict:
    """A cell whose first `spurious` runs end at one spurious minimum (a symmetric image of one fixed
    point per problem, differently permuted in each cell), the next `saddles` runs at a saddle, the
    rest at global minima."""
    runs, first = cell["runs"], cell["first_run"]
    k, n = cell["params"]["teacher"], cell["params"]["student"]
    ids = list(range(first, first + runs))
    cls = ["spurious_minimum"] * spurious + ["saddle"] * saddles + ["global_minimum"] * (runs - spurious - saddles)
    cls = cls[:runs]
    loss = [spurious_loss if c == "spurious_minimum" else saddle_loss if c == "saddle" else 1e-16 for c in cls]
    families, fam_of = [], []
    next_id = 0
    order = {}
    for c in ("global_minimum", "spurious_minimum", "saddle"):
        if c in cls:
            order[c] = next_id
            next_id += 1
    perm = np.random.default_rng(cell["index"]).permutation(n)
    for c, fid in order.items():
        members = [i for i, x in enumerate(cls) if x == c]
        if c == "global_minimum":
            rep = np.eye(n, k)
        else:
            base = representative(n, k, 0 if c == "spurious_minimum" else 1)
            rep = base[perm]  # a symmetric image: same family across cells
        spectrum = ([-0.01] if c == "saddle" else [0.02]) + list(np.linspace(0.05, 2.0, n * k - 1))
        families.append({"id": fid, "run": ids[members[0]], "loss": loss[members[0]], "class": c,
                         "morse_index": 1 if c == "saddle" else 0, "lambda_min": spectrum[0], "lambda_max": spectrum[-1],
                         "count": len(members), "spectrum": spectrum, "representative": rep.tolist()})
    fam_of = [order[c] for c in cls]
    return {
        "runs": {"run": ids, "status": ["converged"] * runs, "class": cls, "loss": loss,
                 "grad_norm": [1e-10] * runs, "polished_grad_norm": [1e-14] * runs, "polished": [True] * runs,
                 "steps": [1000 + i for i in range(runs)], "halvings": [0] * runs, "newton": [True] * runs,
                 "morse_index": [1 if c == "saddle" else 0 for c in cls],
                 "lambda_min": [-0.01 if c == "saddle" else 0.02 for c in cls],
                 "lambda_max": [2.0] * runs, "family": fam_of},
        "families": sorted(families, key=lambda f: f["id"]),
        "device": "cpu", "version": "test",
        "seconds": {"optimize": 0.1, "analyze": 0.1, "total": 0.2},
    }


class TinyExperiment(Experiment):
    """Squares numbers; the claim 'every square is below a limit' passes or fails on the config."""

    name = "tiny-experiment-test"
    title = "A tiny experiment (tests only)"
    claim = "Every square of the configured values stays below the limit."
    sizes = ("quick", "cpu", "gpu")

    def default_config(self, size: str = "cpu") -> dict:
        return {"values": [1, 2, 3] if size == "quick" else [1, 2, 3, 4], "limit": 10.0, "seed": 0}

    def cells(self, config: dict) -> list[dict]:
        return [{"value": v, "seed": config["seed"] + i} for i, v in enumerate(config["values"])]

    def run_cell(self, cell: dict) -> dict:
        rng = np.random.default_rng(cell["seed"])
        return {"value": cell["value"], "square": cell["value"] ** 2, "noise": float(rng.normal())}

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        squares = [r["square"] for _, r in results]
        fig = Figure("squares", [Panel([Series([c["value"] for c, _ in results], squares, "squares", marker="o")],
                                       title="squares")], panel_width=4, height=3)
        verdict = Verdict.REPRODUCED if max(squares) < config["limit"] else Verdict.NOT_REPRODUCED
        return ExperimentReport(claim=self.claim, verdict=verdict,
                                summary=f"largest square {max(squares)} vs limit {config['limit']}",
                                table=[{"value": c["value"], "square": r["square"]} for c, r in results],
                                figures=[fig])


def register_tiny_experiment():
    EXPERIMENTS[TinyExperiment.name] = TinyExperiment()
    return EXPERIMENTS[TinyExperiment.name]
