"""Bulk certification of a stored study's families (the certify stage, run over a study).

    spurious study certify safran-shamir-2018@quick --classes spurious_minimum,saddle --out certs/

Each stored problem is rebuilt from its name and parameters (spurious.problems.build) and asked
whether it can be certified (`problem.certifiable`: it has a rigorous evaluation). Every family of a
certifiable problem whose class is selected has its representative certified by spurious.certify
(ball arithmetic); the outcome (certified with its claim and bounds, or refused with the reason) and
the certificate itself are committed to the store one family at a time, under the study's writer
lock. Problems that cannot be certified are skipped and counted; a study none of whose problems can
be certified is refused before the lock is taken or anything is written. Re-running skips families
already done, so it resumes like a study. The report marks each family's outcome; `--out` also writes
the certificate files for `spurious verify`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..certify import CERTIFIABLE_CLASSES, RIGOROUS_LANDSCAPES, CertificationRefused, certify, rigorous_data
from ..core.errors import SpuriousError
from ..core.files import check_output_folder
from ..problems import build
from ..store import Store


@dataclass(frozen=True)
class StudyCertification:
    key: str
    certified: int  # by this invocation
    refused: int  # by this invocation
    skipped: int  # already recorded in the store
    seconds: float
    #: stored problems that cannot be certified (not tried): problem key -> why, in one line
    uncertifiable: dict = field(default_factory=dict)


def summary_of(certificate, seconds: float) -> dict:
    claim, bounds = certificate.data["claim"], certificate.data["bounds"]
    return {"kind": claim["kind"], "morse_index": claim["morse_index"], "spurious": claim["spurious"],
            "radius": bounds["radius"], "eigenvalue_abs_lower": claim["eigenvalue_abs_lower"],
            "loss_lower": claim["loss_lower"], "loss_upper": claim["loss_upper"], "seconds": seconds}


def certificate_name(problem_key: str, family_id: int) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_=," else "_" for ch in problem_key)
    return f"{safe}-family{family_id}.json"


def certify_study(store: Store, key: str, classes=CERTIFIABLE_CLASSES, lowest_only: bool = False,
                  out_dir: str | None = None, command: str = "",
                  on_family: Callable[[str, dict, str, dict], None] | None = None) -> StudyCertification:
    """Certify the selected families of every finished certifiable problem of study `key`.

    classes: family classes to try (default: spurious minima and saddles); lowest_only: only the
    lowest-loss family of each selected class per problem; out_dir: also write certificate files.
    on_family(problem_key, family, status, summary) is called after each commit."""
    classes = (classes,) if isinstance(classes, str) else tuple(classes)
    unknown = [c for c in classes if c not in CERTIFIABLE_CLASSES]
    if unknown or not classes:
        raise SpuriousError(f"cannot certify class {', '.join(unknown) or '(none)'}: choose from "
                            f"{', '.join(CERTIFIABLE_CLASSES)}")
    if out_dir is not None:
        check_output_folder(out_dir, "--out")
    started = time.perf_counter()
    problems, uncertifiable = _certifiable_problems(store, key)
    if not problems:
        reasons = "; ".join(sorted(set(uncertifiable.values()))) or "it stores no landscape problems"
        raise SpuriousError(f"study {key!r} has no problem that can be certified: {reasons} "
                            f"(certificates exist for: {', '.join(RIGOROUS_LANDSCAPES)})")
    done = store.certifications(key)
    work = []
    for p, _ in problems:
        families = [f for f in store.families(key, p["key"]) if f["class"] in classes]
        if lowest_only:
            families = [min((f for f in families if f["class"] == c), key=lambda f: f["loss"])
                        for c in classes if any(f["class"] == c for f in families)]
        work += [(p, f) for f in families]
    pending = [(p, f) for p, f in work if (p["key"], f["id"]) not in done]
    built = {p["key"]: problem for p, problem in problems}
    outcomes = {"certified": 0, "refused": 0}

    def act(token, p, family):
        begun = time.perf_counter()
        try:
            certificate = certify(built[p["key"]], np.asarray(family["representative"], dtype=float))
        except CertificationRefused as refusal:
            status, text = "refused", None
            summary = {"refusal": type(refusal).__name__, "reason": str(refusal), "seconds": time.perf_counter() - begun}
        else:
            status, text = "certified", certificate.to_json()
            summary = summary_of(certificate, time.perf_counter() - begun)
        outcomes[status] += 1
        store.write_certification(key, token, p["key"], family, status, summary, text)
        if on_family is not None:
            on_family(p["key"], family, status, summary)

    _under_lock(store, key, command, pending, act)
    if out_dir is not None:
        _write_certificates(out_dir, store.certifications(key), certificate_name)
    return StudyCertification(key, outcomes["certified"], outcomes["refused"], len(work) - len(pending),
                              time.perf_counter() - started, uncertifiable)


def _under_lock(store: Store, key: str, command: str, pending: list, act: Callable):
    """act(token, problem row, family) for each pending family, under the study's writer lock (taken only
    when there is work; released whatever happens)."""
    if not pending:
        return
    token = store.acquire(key, command=command)
    try:
        for p, family in pending:
            act(token, p, family)
    finally:
        try:
            store.release(key, token)
        except Exception:  # the run's own error matters more
            pass


def _write_certificates(out_dir: str, records: dict, name: Callable) -> None:
    """Every stored certificate of `records` ({key tuple: record}) to out_dir, named name(*key)."""
    os.makedirs(out_dir, exist_ok=True)
    for ident, record in records.items():
        if record["certificate"]:
            with open(os.path.join(out_dir, name(*ident)), "w") as handle:
                handle.write(record["certificate"])


@dataclass(frozen=True)
class StudyAnnihilation:
    key: str
    alpha: str
    certified: int  # by this invocation
    refused: int
    skipped: int  # already recorded in the store
    seconds: float
    #: stored problems not tried: problem key -> why, in one line
    untried: dict = field(default_factory=dict)


def annihilation_name(problem_key: str, family_id: int, alpha: str) -> str:
    return certificate_name(problem_key, family_id).replace(".json", f"-split-alpha{alpha}.json")


def annihilate_study(store: Store, key: str, alpha="0.5", lowest_only: bool = False, out_dir: str | None = None,
                     command: str = "", on_family: Callable[[str, dict, str, dict], None] | None = None,
                     device: str = "auto") -> StudyAnnihilation:
    """Split a neuron of every spurious minimum family (or the lowest one with lowest_only) of every
    finished problem whose student is at least as wide as the teacher and that can be certified
    (spurious.annihilation.annihilate: the 2021 criterion, the certificate that the split is no
    minimum, descent from just off it). Resumable like certify_study; the outcome of each family is
    committed under the study's writer lock; out_dir: also write the certificate files."""
    from ..annihilation import annihilate
    from ..certify import exact_alpha
    from ..verify import alpha_text

    text = alpha_text(exact_alpha(alpha))
    if out_dir is not None:
        check_output_folder(out_dir, "--out")
    started = time.perf_counter()
    problems, untried = _certifiable_problems(store, key)
    for row, problem in list(problems):
        if problem.global_min_value is None:
            untried[row["key"]] = "its global value is unknown (a student narrower than the teacher)"
            problems.remove((row, problem))
    if not problems:
        reasons = "; ".join(sorted(set(untried.values()))) or "it stores no landscape problems"
        raise SpuriousError(f"study {key!r} has no problem whose minima can be split and certified: {reasons}")
    done = store.annihilations(key, text)
    work = []
    for p, _ in problems:
        families = [f for f in store.families(key, p["key"]) if f["class"] == "spurious_minimum"]
        if lowest_only and families:
            families = [min(families, key=lambda f: f["loss"])]
        work += [(p, f) for f in families]
    pending = [(p, f) for p, f in work if (p["key"], f["id"], text) not in done]
    built = {p["key"]: problem for p, problem in problems}
    outcomes = {"certified": 0, "refused": 0}

    def act(token, p, family):
        result = annihilate(built[p["key"]], np.asarray(family["representative"], dtype=float), text, device=device)
        summary = result.to_dict()
        status = "certified" if result.certified else "refused"
        outcomes[status] += 1
        store.write_annihilation(key, token, p["key"], family, text, status, summary,
                                 result.certificate.to_json() if result.certified else None)
        if on_family is not None:
            on_family(p["key"], family, status, summary)

    _under_lock(store, key, command, pending, act)
    if out_dir is not None:
        _write_certificates(out_dir, store.annihilations(key, text), annihilation_name)
    return StudyAnnihilation(key, text, outcomes["certified"], outcomes["refused"], len(work) - len(pending),
                             time.perf_counter() - started, untried)


def _certifiable_problems(store: Store, key: str) -> tuple[list, dict]:
    """([(stored row, built problem)] of the study's certifiable problems in the study's order,
    {problem key: why not} of the others). Building a problem only checks its parameters (and makes
    its data); nothing is optimized or written."""
    certifiable, not_certifiable = [], {}
    for row in store.problems(key):
        try:
            problem = build(row["name"], row["params"], where=f"problem {row['key']}")
        except SpuriousError as error:  # e.g. a user's file that is gone: it cannot be certified from here
            not_certifiable[row["key"]] = str(error)
            continue
        if problem.certifiable:
            rigorous_data(problem)  # malformed rigorous data is an error, raised before the lock
            certifiable.append((row, problem))
        else:
            not_certifiable[row["key"]] = f"{row['name']} has no rigorous (ball-arithmetic) evaluation"
    return certifiable, not_certifiable
