"""Run-for-run comparison of two engines' classifications (issue 20: classes must stay identical).

    python benchmarks/compare_classes.py save OUT.npz [--ks 8,12,14,16,20] [--runs 1000] [--seed 0]
    PYTHONPATH=/path/to/other/checkout python benchmarks/compare_classes.py save OTHER.npz ...
    python benchmarks/compare_classes.py compare OUT.npz OTHER.npz

save: the 2018 protocol (sp.run) at n = k for each k, the class, Morse index and loss of every run.
compare: per k, how many runs have the same class and the same index in both files, and the largest
difference of their losses.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def save(args):
    import spurious as sp

    arrays = {}
    for k in (int(x) for x in args.ks.split(",")):
        started = time.perf_counter()
        analysis = sp.run(sp.ReLUTeacherStudent(k, k), args.runs, seed=args.seed).analysis
        arrays[f"cls{k}"] = np.asarray(analysis.cls).astype(str)
        arrays[f"index{k}"] = np.asarray(analysis.morse_index)
        arrays[f"loss{k}"] = np.asarray(analysis.loss)
        print(f"k = {k}: {args.runs} runs in {time.perf_counter() - started:.1f} s", flush=True)
    np.savez(args.out, **arrays)


def compare(args):
    first, second = np.load(args.first), np.load(args.second)
    for name in sorted((n for n in first.files if n.startswith("cls")), key=lambda n: int(n[3:])):
        k = name[3:]
        same = first[name] == second[name]
        index = first[f"index{k}"] == second[f"index{k}"]
        loss = np.max(np.abs(first[f"loss{k}"] - second[f"loss{k}"]))
        print(f"k = {k}: class identical in {same.sum()} of {len(same)} runs, Morse index in {index.sum()}, "
              f"largest loss difference {loss:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    saving = sub.add_parser("save")
    saving.add_argument("out")
    saving.add_argument("--ks", default="8,12,14,16,20")
    saving.add_argument("--runs", type=int, default=1000)
    saving.add_argument("--seed", type=int, default=0)
    comparing = sub.add_parser("compare")
    comparing.add_argument("first")
    comparing.add_argument("second")
    args = parser.parse_args()
    save(args) if args.what == "save" else compare(args)


if __name__ == "__main__":
    main()
