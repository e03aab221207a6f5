"""Independent oracles for the ReLU landscape, written from the 2018 paper's formulas only."""
import jax
import jax.numpy as jnp
import numpy as np


def naive_relu_loss(W, V):
    """F via arccos of the cosine, diagonal terms |w|^2/2 handled apart (autodiff-safe off parallels)."""
    def f(a, b):
        na, nb = jnp.linalg.norm(a), jnp.linalg.norm(b)
        c = jnp.dot(a, b) / (na * nb)
        t = jnp.arccos(c)
        return na * nb * (jnp.sin(t) + (jnp.pi - t) * c) / (2 * jnp.pi)

    total = 0.0
    for i in range(W.shape[0]):
        total += 0.25 * jnp.sum(W[i] ** 2)
        for j in range(W.shape[0]):
            if i != j:
                total += 0.5 * f(W[i], W[j])
        for j in range(V.shape[0]):
            total -= f(W[i], V[j])
    for i in range(V.shape[0]):
        for j in range(V.shape[0]):
            total += 0.5 * (f(V[i], V[j]) if i != j else 0.5 * jnp.sum(V[i] ** 2))
    return total


def monte_carlo_loss(W, V, samples, seed=0):
    """Sample mean and standard error of 1/2 (sum relu(Wx) - sum relu(Vx))^2, x ~ N(0, I)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, W.shape[1]))
    residual = np.maximum(x @ W.T, 0).sum(1) - np.maximum(x @ V.T, 0).sum(1)
    values = 0.5 * residual ** 2
    return values.mean(), values.std(ddof=1) / np.sqrt(samples)


def finite_difference_grad(fn, x, h=1e-6):
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        out[idx] = (float(fn(x + e)) - float(fn(x - e))) / (2 * h)
    return out
