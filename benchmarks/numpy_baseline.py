"""What a researcher would write: one run at a time, plain NumPy gradient descent on the exact loss.

Independent of the package's JAX code (written from the formulas in the 2018 paper), so it doubles
as an oracle for the engine's endpoints on shared starts.
"""
from __future__ import annotations

import numpy as np


def relu_loss(W: np.ndarray, V: np.ndarray) -> float:
    def kernel(A, B):
        na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        cos = np.clip((A @ B.T) / np.outer(na, nb), -1.0, 1.0)
        theta = np.arccos(cos)
        return np.outer(na, nb) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)

    ww, wv, vv = kernel(W, W), kernel(W, V), kernel(V, V)
    np.fill_diagonal(ww, np.sum(W * W, axis=1) / 2)
    np.fill_diagonal(vv, np.sum(V * V, axis=1) / 2)
    return 0.5 * ww.sum() - wv.sum() + 0.5 * vv.sum()


def relu_grad(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    nw, nv = np.linalg.norm(W, axis=1), np.linalg.norm(V, axis=1)
    Wu = W / nw[:, None]

    def angles(A_unit, B_unit):
        # accurate near parallel pairs: theta = 2 atan2(|a - b|, |a + b|)
        diff = np.linalg.norm(A_unit[:, None, :] - B_unit[None, :, :], axis=-1)
        total = np.linalg.norm(A_unit[:, None, :] + B_unit[None, :, :], axis=-1)
        return 2 * np.arctan2(diff, total)

    t_ww = angles(Wu, Wu)
    t_wv = angles(Wu, V / nv[:, None])
    off = 1.0 - np.eye(len(W))
    radial = (off * nw[None, :] * np.sin(t_ww)).sum(1) - (nv[None, :] * np.sin(t_wv)).sum(1)
    return 0.5 * W + (radial[:, None] * Wu + (off * (np.pi - t_ww)) @ W - (np.pi - t_wv) @ V) / (2 * np.pi)


def gradient_descent(W0: np.ndarray, V: np.ndarray, step=0.1, tol=1e-9, max_steps=1_000_000,
                     blow_up=1e4):
    """The 2018 protocol for one run: stop at max_i ||2 pi grad_i|| <= tol, restart with half the step."""
    W = W0.copy()
    steps = 0
    while steps < max_steps:
        g = relu_grad(W, V)
        norm = 2 * np.pi * np.max(np.linalg.norm(g, axis=1))
        if norm <= tol:
            break
        if not np.isfinite(norm) or norm > blow_up:
            W, step = W0.copy(), step / 2
            continue
        W = W - step * g
        steps += 1
    return W, relu_loss(W, V), steps


def nudged_elastic_band(start: np.ndarray, end: np.ndarray, V: np.ndarray, images: int = 16, step: float = 0.05,
                        spring: float = 1.0, climb_after: int = 200, iterations: int = 1000) -> np.ndarray:
    """One pair at a time, one image at a time: climbing-image NEB with the upwind tangent, plain
    steepest-descent updates, a fixed number of iterations. Returns the images (M, n, d)."""
    path = np.linspace(0.0, 1.0, images)[:, None, None] * (end - start)[None] + start[None]
    for iteration in range(iterations):
        losses = np.array([relu_loss(x, V) for x in path])
        grads = [relu_grad(x, V) for x in path]
        top = 1 + int(np.argmax(losses[1:-1]))
        new = path.copy()
        for m in range(1, images - 1):
            plus, minus = path[m + 1] - path[m], path[m] - path[m - 1]
            after, here, before = losses[m + 1], losses[m], losses[m - 1]
            if after > here > before:
                tangent = plus
            elif after < here < before:
                tangent = minus
            else:
                larger = max(abs(after - here), abs(before - here))
                smaller = min(abs(after - here), abs(before - here))
                tangent = plus * larger + minus * smaller if after > before else plus * smaller + minus * larger
            tangent = tangent / np.linalg.norm(tangent)
            along = np.sum(grads[m] * tangent)
            if iteration >= climb_after and m == top:
                force = -grads[m] + 2 * along * tangent
            else:
                force = -(grads[m] - along * tangent) + spring * (np.linalg.norm(plus) - np.linalg.norm(minus)) * tangent
            new[m] = path[m] + step * force
        path = new
    return path
