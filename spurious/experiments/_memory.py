"""What an experiment's cell holds in memory, estimated from the sizes in the cell (for
`Experiment.cell_memory`), so that a configuration that cannot fit is refused before anything runs.

Upper estimates within a small factor: they count the dominant arrays (each trained member's data,
parameters and optimizer state, the loss's intermediate arrays kept for the gradient, the recorded
curves, the dense Hessians of the analysis) in float64, not the few hundred megabytes JAX itself
takes. Sizes are Python integers, so an absurd override gives an absurd estimate, not an overflow.
"""
from __future__ import annotations

from ..optimize import HESSIAN_CHUNK

#: bytes of a float64 (spurious.core.setup turns 64-bit floats on)
FLOAT = 8
#: endpoints spurious.analyze Newton-polishes at once (optimize.chunked's chunk)
POLISH_CHUNK = 32
#: bytes one recorded number costs in a cell's result: a Python float in a list, and its JSON text
RESULT_NUMBER = 64


def training_bytes(members: int, parameters: int, data: int, activations: int, records: int, block: int,
                   state: int = 0, evaluation: int = 0, kept: int | None = None) -> int:
    """sgd.train_many on `members` members at once. Per member: its data set (`data` floats), held
    up to four times (the per-seed arrays, their stack, and the copies XLA makes in the layout its
    products want); the intermediate arrays of the loss on what a step sees (`activations` floats:
    the full data set, or a mini-batch) kept for the gradient and by the loss evaluations of a step
    (three copies); those of a forward pass over the full data set where that is more
    (`evaluation`: the recorded loss, the accuracy of mini-batch training); the parameters with
    their gradient, update and new value (four copies) and `state` more parameter-sized arrays of
    optimizer state; the loss curve and the online averages (`records` long, three copies each on
    their way out of the program), and the `kept` numbers of them the cell's result keeps (default:
    all records). Once: the step indices of one block of the scan (`block` = record_every integers)."""
    kept = records if kept is None else kept
    per_member = (4 * data + 3 * activations + evaluation + (4 + state) * parameters + 6 * records) * FLOAT \
        + kept * RESULT_NUMBER
    return members * per_member + block * FLOAT


def lbfgs_state(memory_size: int) -> int:
    """Parameter-sized arrays of optax.lbfgs's state: two per memory pair, and the line search's."""
    return 2 * memory_size + 4


def analysis_bytes(parameters: int, points: int, activations: int = 0) -> int:
    """spurious.analyze on `points` endpoints: Newton polish of up to POLISH_CHUNK of them at once,
    each with its dense Hessian and the solver's copy (2 P^2) and the tangents forward-over-reverse
    autodiff carries through the loss's intermediates, one set per parameter (measured: one to
    three times P x the hidden layer's `activations` floats; two counted); then, one point at a
    time, the spectrum on the complement of the zero modes (the modes, the complement from a full
    SVD, the Hessian and its projection: about six P^2)."""
    at_once = min(points, POLISH_CHUNK)
    return FLOAT * (at_once * (2 * parameters ** 2 + 2 * parameters * activations) + 6 * parameters ** 2)


def multistart_bytes(parameters: int, activations: int = 0) -> int:
    """One run of the engine's multistart: what its own check (optimize.check_fits) reserves, the
    dense Hessians of a chunk, and the loss's intermediates of its gradient steps."""
    return FLOAT * (3 * HESSIAN_CHUNK * parameters ** 2 + 16 * parameters + 3 * activations)


def count(value: int) -> str:
    """A size for a description: 1,234,567."""
    return f"{value:,}"
