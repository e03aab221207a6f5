"""Shamir (NeurIPS 2018): are ResNets provably better than linear predictors?

Residual unit x -> w.(x + V relu(Ux + c)) with squared loss: every local minimum is at least as good
as the best linear predictor (F_lin, by least squares). Experiment (ours): x ~ N(0, I_10),
y = sin(2 a.x) + 0.5 b.x + 0.1 eps, N = 2000, branch width 32; full-batch gradient descent from the
standard init and from a "dead branch" init (c = -5 and U scaled by 0.1, so relu(Ux + c) = 0 on all
data); control: the
plain network x -> v.relu(Ux + c) with the same starts. Every run's final loss is compared with its
own data set's F_lin. Variant: readout decoupled from the skip, x -> w.x + u.relu(Ux + c), trained
by SGD (optax, one fresh sample per step): the running average of the online losses should come
within O(1/sqrt(T)) of F_lin (or below). Seeds (data and init) run as one vmapped program.
"""
from __future__ import annotations

import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..problems import residual as res
from . import register
from ._curves import figure, flat, section, num, nums
from ..errors import SpuriousError
from .base import Experiment, ExperimentReport


def _setup(seed, architecture, dim, width, samples, noise_std, dead_bias):
    key = jax.random.PRNGKey(seed)
    kd, ki, ks = jax.random.split(key, 3)
    X, y = res.make_data(kd, dim, samples, noise_std)
    _, f_lin = res.linear_optimum(X, y)
    blocks = res.layout(architecture, dim, width)
    theta = res.init_params(ki, architecture, dim, width, "standard")
    parts = res.unpack(theta, blocks)
    dead = dead_bias > 0  # dead_bias = 0: standard init
    parts["c"] = jnp.full_like(parts["c"], -dead_bias)
    parts["U"] = jnp.where(dead, res.DEAD_U_SCALE, 1.0) * parts["U"]
    theta = res.pack(parts, blocks)
    active = jnp.mean(res.branch(parts, X) > 0)
    loss = lambda th: res.squared_loss(res.predict(res.unpack(th, blocks), X, architecture), y)
    return X, y, f_lin, theta, active, loss, blocks, ks


@partial(jax.jit, static_argnames=("architecture", "dim", "width", "samples", "steps", "record_every"))
def _gd_kernel(seeds, step, noise_std, dead_bias, *, architecture, dim, width, samples, steps, record_every):
    def one(seed):
        X, y, f_lin, theta0, active, loss, _, _ = _setup(seed, architecture, dim, width, samples, noise_std, dead_bias)
        grad = jax.value_and_grad(loss)

        def inner(th, _):
            f, g = grad(th)
            return th - step * g, f

        def outer(th, _):
            th, fs = jax.lax.scan(inner, th, None, length=record_every)
            return th, jnp.min(fs)

        theta, lows = jax.lax.scan(outer, theta0, None, length=steps // record_every)
        f, g = grad(theta)
        return f_lin, f, jnp.sqrt(jnp.sum(g * g)), jnp.minimum(jnp.min(lows), f), active, lows

    return jax.vmap(one)(seeds)


@partial(jax.jit, static_argnames=("dim", "width", "samples", "steps", "batch", "checkpoints"))
def _sgd_kernel(seeds, learning_rate, noise_std, dead_bias, *, dim, width, samples, steps, batch, checkpoints):
    optimizer = optax.sgd(learning_rate)

    def one(seed):
        X, y, f_lin, theta0, active, loss, blocks, ks = _setup(seed, "decoupled", dim, width, samples, noise_std,
                                                               dead_bias)
        online = lambda th, xb, yb: res.squared_loss(res.predict(res.unpack(th, blocks), xb, "decoupled"), yb)
        idx = jax.random.randint(ks, (steps, batch), 0, samples)

        def step(carry, ib):
            th, state = carry
            f, g = jax.value_and_grad(online)(th, X[ib], y[ib])  # loss on the fresh sample, before the update
            updates, state = optimizer.update(g, state, th)
            return (optax.apply_updates(th, updates), state), f

        (theta, _), fs = jax.lax.scan(step, (theta0, optimizer.init(theta0)), idx)
        running = jnp.cumsum(fs) / jnp.arange(1, steps + 1)
        marks = jnp.unique(jnp.geomspace(10, steps, checkpoints).astype(jnp.int32), size=checkpoints,
                           fill_value=steps) - 1
        return f_lin, loss(theta), running[-1], running[marks], marks + 1, active

    return jax.vmap(one)(seeds)


class Shamir2018(Experiment):
    name = "shamir-2018"
    title = "Shamir, Are ResNets provably better than linear predictors? (NeurIPS 2018)"
    claim = ("For residual units x -> w.(x + V f_theta(x)) with a convex loss, every local minimum is at least as "
             "good as the best linear predictor; with a small change of the architecture (readout decoupled from "
             "the skip), SGD provably gets within O(1/sqrt(T)) of (or below) the best linear predictor's loss. "
             "Predictions tested (ours): on x ~ N(0, I_10), y = sin(2a.x) + 0.5 b.x + 0.1 eps, N = 2000, ReLU "
             "branch of width 32, every full-batch GD run of the residual net (standard and dead-branch inits) "
             "ends at <= F_lin + 1e-3; the plain net from the dead start can stall above F_lin; the decoupled net "
             "trained by SGD has running-average loss <= F_lin + 1/sqrt(T).")

    def default_config(self, size: str = "cpu") -> dict:
        base = dict(dim=10, width=32, samples=2000, noise_std=0.1, dead_bias=5.0, tolerance=1e-3, bound_constant=1.0)
        if size == "quick":
            return dict(base, size=size, width=8, samples=200, seeds=[0, 1],
                        **flat("gd", dict(step=0.2, steps=600, record_every=20)),
                        **flat("sgd", dict(learning_rate=0.05, steps=2000, batch=8, checkpoints=12)))
        if size == "cpu":
            return dict(base, size=size, seeds=list(range(6)),
                        **flat("gd", dict(step=0.2, steps=3000, record_every=50)),
                        **flat("sgd", dict(learning_rate=0.02, steps=20000, batch=1, checkpoints=24)))
        if size == "gpu":
            return dict(base, size=size, seeds=list(range(64)),
                        **flat("gd", dict(step=0.2, steps=20000, record_every=100)),
                        **flat("sgd", dict(learning_rate=0.02, steps=200000, batch=1, checkpoints=40)))
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    def cells(self, config: dict) -> list[dict]:
        common = {k: config[k] for k in ("dim", "width", "samples", "noise_std")}
        out = []
        for architecture in ("residual", "plain"):
            for init in ("standard", "dead"):
                out.append(dict(part="gd", architecture=architecture, init=init, seeds=list(config["seeds"]),
                                dead_bias=config["dead_bias"] if init == "dead" else 0.0, **section(config, "gd"), **common))
        out.append(dict(part="sgd", architecture="decoupled", init="standard", seeds=list(config["seeds"]),
                        dead_bias=0.0, **section(config, "sgd"), **common))
        return out

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        seeds = jnp.asarray(cell["seeds"])
        if cell["part"] == "gd":
            f_lin, f, gnorm, low, active, lows = _gd_kernel(
                seeds, cell["step"], cell["noise_std"], cell["dead_bias"], architecture=cell["architecture"],
                dim=cell["dim"], width=cell["width"], samples=cell["samples"], steps=cell["steps"],
                record_every=cell["record_every"])
            return dict(linear_loss=nums(f_lin), final_loss=nums(f), final_grad_norm=nums(gnorm), min_loss=nums(low),
                        active_at_init=nums(active), curves=[nums(c) for c in np.asarray(lows)],
                        seconds=time.perf_counter() - started)
        f_lin, f, avg, marks_avg, marks, active = _sgd_kernel(
            seeds, cell["learning_rate"], cell["noise_std"], cell["dead_bias"], dim=cell["dim"], width=cell["width"],
            samples=cell["samples"], steps=cell["steps"], batch=cell["batch"], checkpoints=cell["checkpoints"])
        return dict(linear_loss=nums(f_lin), final_loss=nums(f), running_average=nums(avg),
                    checkpoint_average=[nums(a) for a in np.asarray(marks_avg)],
                    checkpoint_steps=np.asarray(marks)[0].tolist(), active_at_init=nums(active),
                    seconds=time.perf_counter() - started)

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        tol, const = config["tolerance"], config["bound_constant"]
        rows = []
        gd = {(c["architecture"], c["init"]): (c, r) for c, r in results if c["part"] == "gd"}
        sgd = [(c, r) for c, r in results if c["part"] == "sgd"]
        inf = lambda v: math.inf if v is None else v
        for (arch, init), (c, r) in sorted(gd.items()):
            for i, seed in enumerate(c["seeds"]):
                rows.append(dict(architecture=arch, init=init, optimizer=f"GD step {c['step']}, {c['steps']} steps",
                                 seed=seed, linear_loss=r["linear_loss"][i], final_loss=r["final_loss"][i],
                                 excess=num(inf(r["final_loss"][i]) - r["linear_loss"][i]),
                                 running_average_excess=None, bound=None, final_grad_norm=r["final_grad_norm"][i],
                                 active_at_init=r["active_at_init"][i]))
        for c, r in sgd:
            bound = const / math.sqrt(c["steps"])
            for i, seed in enumerate(c["seeds"]):
                rows.append(dict(architecture=c["architecture"], init=c["init"],
                                 optimizer=f"SGD lr {c['learning_rate']}, batch {c['batch']}, T={c['steps']}",
                                 seed=seed, linear_loss=r["linear_loss"][i], final_loss=r["final_loss"][i],
                                 excess=num(inf(r["final_loss"][i]) - r["linear_loss"][i]),
                                 running_average_excess=num(inf(r["running_average"][i]) - r["linear_loss"][i]),
                                 bound=bound, final_grad_norm=None, active_at_init=r["active_at_init"][i]))
        residual = [r for r in rows if r["architecture"] == "residual"]
        plain_dead = [r for r in rows if r["architecture"] == "plain" and r["init"] == "dead"]
        decoupled = [r for r in rows if r["architecture"] == "decoupled"]
        res_ok = bool(residual) and all(inf(r["excess"]) <= tol for r in residual)
        sgd_ok = bool(decoupled) and all(inf(r["running_average_excess"]) <= r["bound"] for r in decoupled)
        stalled = sum(inf(r["excess"]) > tol for r in plain_dead)
        passed = res_ok and sgd_ok

        def span(rs, key):
            vals = [r[key] for r in rs if r[key] is not None]
            return (min(vals), max(vals)) if vals else (float("nan"), float("nan"))

        groups = "; ".join(
            f"{a}/{i}: final - F_lin in [{span([r for r in rows if r['architecture'] == a and r['init'] == i], 'excess')[0]:+.2e}, "
            f"{span([r for r in rows if r['architecture'] == a and r['init'] == i], 'excess')[1]:+.2e}]"
            for a, i in sorted({(r["architecture"], r["init"]) for r in rows}))
        sgd_span = span(decoupled, "running_average_excess")
        T = sgd[0][0]["steps"] if sgd else 0
        summary = (
            f"{'PASS' if passed else 'FAIL'}: {sum(inf(r['excess']) <= tol for r in residual)}/{len(residual)} residual "
            f"GD runs end at <= F_lin + {tol:g} (worst excess {span(residual, 'excess')[1]:+.2e}); "
            f"SGD on the decoupled net: running-average loss - F_lin in [{sgd_span[0]:+.3e}, {sgd_span[1]:+.3e}] at "
            f"T = {T} against the bound {const:g}/sqrt(T) = {const / math.sqrt(T) if T else float('nan'):.2e} "
            f"({'ok' if sgd_ok else 'EXCEEDED'}). Control: {stalled}/{len(plain_dead)} plain nets from the dead start "
            f"stall above F_lin + {tol:g}. Per group: {groups}. F_lin per data set in "
            f"[{span(rows, 'linear_loss')[0]:.4f}, {span(rows, 'linear_loss')[1]:.4f}].")

        figs = []
        fig, ax = figure()
        styles = {("residual", "standard"): ("C0", "-"), ("residual", "dead"): ("C0", "--"),
                  ("plain", "standard"): ("C3", "-"), ("plain", "dead"): ("C3", "--")}
        for (arch, init), (c, r) in sorted(gd.items()):
            color, ls = styles[(arch, init)]
            steps = c["record_every"] * np.arange(1, len(r["curves"][0]) + 1)
            for i, curve in enumerate(r["curves"]):
                ax.plot(steps, np.array([np.nan if v is None else v for v in curve]) - r["linear_loss"][i], color=color,
                        ls=ls, lw=1, alpha=0.7, label=f"{arch}, {init} init" if i == 0 else None)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.axhline(tol, color="k", ls=":", lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_xlabel("gradient step (full batch)")
        ax.set_ylabel("loss - F_lin (best linear predictor)")
        ax.set_title("Residual unit vs plain net vs linear predictor")
        ax.legend(fontsize=8)
        figs.append(("gd_loss_minus_linear", fig))

        fig, ax = figure()
        labels = sorted({(r["architecture"], r["init"]) for r in rows})
        for j, lab in enumerate(labels):
            vals = [inf(r["excess"]) for r in rows if (r["architecture"], r["init"]) == lab]
            ax.scatter(np.full(len(vals), j) + (np.random.default_rng(j).random(len(vals)) - 0.5) * 0.3, vals, s=14)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.axhline(tol, color="k", ls=":", lw=0.8, label=f"F_lin + {tol:g}")
        ax.set_xticks(range(len(labels)), [f"{a}\n{i}" for a, i in labels], fontsize=8)
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_ylabel("final loss - F_lin (every run)")
        ax.legend(fontsize=8)
        figs.append(("final_excess_per_run", fig))

        if sgd:
            c, r = sgd[0]
            fig, ax = figure()
            steps = np.array(r["checkpoint_steps"])
            for i, avg in enumerate(r["checkpoint_average"]):
                ax.plot(steps, np.array([np.nan if v is None else v for v in avg]) - r["linear_loss"][i], lw=1, alpha=0.8,
                        label=f"seed {c['seeds'][i]}")
            ax.plot(steps, const / np.sqrt(steps), "k--", lw=1, label=f"{const:g}/sqrt(T)")
            ax.axhline(0.0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_xlabel("SGD steps T")
            ax.set_ylabel("running-average online loss - F_lin")
            ax.set_title("Decoupled readout x -> w.x + u.relu(Ux+c), SGD")
            ax.legend(fontsize=7)
            figs.append(("sgd_running_average", fig))
        return ExperimentReport(claim=self.claim, passed=passed, summary=summary, table=rows, figures=figs)


EXPERIMENT = register(Shamir2018())
