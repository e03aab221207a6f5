"""Re-check a certificate written by `spurious certify`, from the file alone.

This module is the whole trusted core of a certificate. It imports only the standard library,
numpy and python-flint (Arb ball arithmetic): no JAX, nothing else from `spurious`, so it can be
reviewed on its own and run as a script:  python spurious/verify.py CERT.json

What a certificate says
-----------------------
Problem: F(W) = 1/2 E[(sum_i [w_i.x]_+ - sum_j [v_j.x]_+)^2], x ~ N(0, I_d), with the student
W (n x d) as variable, the teacher V (k x d) fixed, and the point x0 = W0 (float64 numbers). Let
B = {x : ||x - x0||_2 <= r} (Euclidean norm on all n*d coordinates). The claim: F has exactly one
critical point x* in B; ||x* - x0||_2 <= `distance_upper`; every Hessian eigenvalue at every point of
B has absolute value >= `eigenvalue_abs_lower`, and the Hessian at x* has exactly `morse_index`
negative eigenvalues (a strict local minimum when it is 0, a saddle otherwise); F(x*) lies in
[`loss_lower`, `loss_upper`]. When n >= k, inf F = 0 (W = [V; 0] has F = 0), so a minimum with
`loss_lower` > 0 is a spurious (non-global) local minimum.

The theorem relied on (a Newton-Kantorovich / Krawczyk-type contraction argument)
--------------------------------------------------------------------------------
Let F be C^2 on an open set containing the closed ball B = B(x0, r). Suppose H_c is a symmetric
matrix whose eigenvalues all satisfy |lambda| >= mu0 > 0, that ||grad^2 F(y) - H_c||_2 <= delta < mu0
for every y in B, and that ||grad F(x0)||_2 <= (mu0 - delta) r. Put mu = mu0 - delta. Then
  (a) F has exactly one critical point x* in B, and ||x* - x0||_2 <= ||grad F(x0)||_2 / mu;
  (b) every eigenvalue of grad^2 F(y), y in B, has |lambda| >= mu, and grad^2 F(y) has as many
      negative eigenvalues as H_c (so x* is nondegenerate with that Morse index);
  (c) |F(x*) - F(x0)| <= 1/2 sup_B ||grad^2 F||_2 ||x* - x0||_2^2.
Proof. T(x) = x - H_c^{-1} grad F(x) satisfies T(x) - T(y) = H_c^{-1} int_0^1 (H_c - grad^2 F(y + t(x-y)))
dt (x - y), so T is a contraction on B with constant kappa = delta/mu0 < 1, and ||T(x) - x0|| <=
kappa r + ||grad F(x0)||/mu0 <= r: T maps B into itself. Its fixed points are the critical points of F;
Banach's theorem gives (a), and ||x* - x0|| <= kappa ||x* - x0|| + ||grad F(x0)||/mu0 the distance.
(b) is Weyl's inequality |lambda_i(H(y)) - lambda_i(H_c)| <= ||H(y) - H_c||_2. (c) is Taylor's formula
at x* (where the gradient vanishes) with integral remainder along the segment, which lies in B.

How each hypothesis is established (all in Arb ball arithmetic, outward rounded)
-------------------------------------------------------------------------------
Smoothness. Each term of F is |w||v| h(cos angle) with h analytic on (-1, 1), so F is C^infinity
wherever no student neuron is 0 and no student is parallel or antiparallel to another student or to a
teacher (F is not differentiable at w_i = 0 and only C^1 across parallel pairs; at antiparallel pairs
it is C^2 but not C^3, and the closed-form Hessian below divides by sin(angle)), so all are excluded.
All n*d coordinates are taken as balls [x0_p +- r]; this box contains B. Over the box we bound from
below min_i ||w_i||, 1 - cos and 1 + cos of every student-student and student-teacher angle; all
must be > 0 (compactness then gives an open neighbourhood where F is smooth).
Gradient. grad F(x0) is evaluated in Arb at the exact float64 point; its 2-norm is bounded above.
Hessian over the ball. The closed form (Safran & Shamir 2018), evaluated in Arb on the box, gives
one ball per entry containing that entry of grad^2 F(y) for every y in the box. H_c is the exact
midpoint matrix of the Hessian enclosure at x0 (symmetric by construction). Then delta bounds
||H(y) - H_c||_2 <= || |Hbox - H_c| ||_inf (max row sum of entrywise upper bounds; valid for the
symmetric difference since ||A||_2 <= sqrt(||A||_1 ||A||_inf)), and sup_B ||H||_2 likewise.
Eigenvalues of H_c. Q is a float64 eigenvector matrix of H_c from numpy (any matrix would do; its
accuracy only affects sharpness). In Arb: M = Q^T H_c Q, D = midpoints of diag(M), rho >= ||M - D||_2
and eps >= ||Q^T Q - I||_2 (row-sum bounds). If eps < 1, Q is nonsingular and, by Sylvester's law of
inertia, H_c has the inertia of M; by Weyl, if min|D_i| > rho, M has exactly #{D_i < 0} negative
eigenvalues and all |lambda(M)| >= min|D_i| - rho; by Ostrowski's theorem lambda_i(Q^T H_c Q) =
theta_i lambda_i(H_c) with theta_i in [sigma_min(Q)^2, sigma_max(Q)^2] subset [1 - eps, 1 + eps], so
mu0 = (min|D_i| - rho) / (1 + eps) bounds every |lambda(H_c)| from below.
Radius. r = radius_factor * ||grad F(x0)|| / mu0 (rounded up to 2 significant digits), which makes the
last hypothesis hold as soon as delta <= mu0 (1 - 1/radius_factor).

Annihilation certificates (one more student neuron)
---------------------------------------------------
An annihilation certificate carries a certificate of a critical point x* of width n as above, and a
split: a row index i, a ratio alpha in (0, 1) and a direction a in R^d. Its claim (ANNIHILATION_THEOREM):
x*_alpha, which is x* with row i replaced by alpha z and (1 - alpha) z appended (z = row i of x*), is a
critical point of the loss with n + 1 neurons, with the loss of x*, and is not a local minimum.
Proof. Write N(w) = [w.x]_+ in L^2(gaussian) and R = sum_m N(x*_m) - sum_j N(v_j) for the residual,
so F = 1/2 ||R||^2. N is positively homogeneous, so alpha N(z) + (1 - alpha) N(z) = N(z): x*_alpha
computes the same function as x*, has the same loss, and its gradient rows are those of x* (the rows
of the two copies both equal grad_i F(x*) = 0), so it is critical. Along D (a in row i, -a in the last
row) the two copies are alpha (z + t a / alpha) and (1 - alpha)(z - t a / (1 - alpha)); with phi(s) =
N(z + s a) the change of the network is Delta(t) = alpha phi(t/alpha) + (1 - alpha) phi(-t/(1 - alpha))
- phi(0), and F(t) - F(0) = <R, Delta(t)> + ||Delta(t)||^2 / 2. phi is differentiable at s = 0 (z != 0)
and its first-order terms cancel; ||phi(s) - phi(0) - s phi'(0)|| = O(|s|^{3/2}) (the sign of
(z + s a).x differs from that of z.x only on a wedge of measure O(|s|)), so ||Delta(t)||^2 = O(|t|^3).
k(s) = <R, phi(s)> = sum_{m != i} f(z + s a, x*_m) + f(z + s a, z) - sum_j f(z + s a, v_j) is C^2 near 0
when z is not zero, parallel or antiparallel to another row or a teacher (the certificate's margins on
the ball), the term f(z + s a, z) included: f(w, z) = |w||z| h(t)/2pi with h(t) = pi - pi t^2/2 + t^3/3
+ O(t^4), whose Hessian in w at w = z is 0. So <R, Delta(t)> = t^2 k''(0) / (2 alpha (1 - alpha)) + o(t^2)
with k''(0) = a^T S(x*) a, S = sum_{m != i} Hess_w f(z, x*_m) - sum_j Hess_w f(z, v_j) = Hess_ii F(x*) - I/2.
If a^T S a < 0, F(x*_alpha + t D) < F(x*_alpha) for all small t != 0. Since x* is only known to lie in
the ball, a^T S(y) a is bounded above over the ball's box (`splitting_curvature_upper`, the diagonal
block of the closed-form Hessian of row i, without 1/2 I, in ball arithmetic); the claim's
`curvature_upper` is that bound divided by alpha (1 - alpha), rounded up.
Safran, Yehudai & Shamir (2021) use the same block (their H'_ii) as the condition for one extra neuron
turning a spurious minimum into a saddle.

How the file is checked
-----------------------
Every number is a decimal string (points and teacher weights: shortest round-trip float64 form;
bounds: rounded to a few significant digits in the safe direction). `verify` re-derives every bound
from the problem and the point with the procedure above and requires the stored bounds to be exactly
the re-derived ones; it then applies the theorem to the stored bounds in exact rational arithmetic and
requires the stored claim to be exactly its conclusion. A SHA-256 digest of the content is checked
first, so any edit at all (even one that keeps the mathematics true) is reported. Bounds that depend on
the float64 eigendecomposition are kept to 3 significant digits so they reproduce across LAPACK builds
(a platform whose eigenvectors differ enough to move such a bound across a rounding boundary reports a
mismatch, never a false claim).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

FORMAT = "spurious-certificate"
VERSION = 1
PROBLEM_NAME = "relu-teacher-student"
THEOREM = (
    "Let B be the closed Euclidean ball of the given radius around the point. If F is C^2 near B, H_c is "
    "symmetric with all |eigenvalues| >= mu0, ||Hess F(y) - H_c||_2 <= delta < mu0 on B and "
    "||grad F(point)||_2 <= (mu0 - delta) radius, then F has exactly one critical point x* in B, "
    "||x* - point|| <= ||grad F(point)|| / (mu0 - delta), every Hessian eigenvalue on B has |lambda| >= "
    "mu0 - delta, the Morse index of x* is the number of negative eigenvalues of H_c, and |F(x*) - "
    "F(point)| <= sup_B ||Hess F||_2 ||x* - point||^2 / 2.")

#: significant digits kept for each kind of stored number
BOUND_DIGITS = 3       # bounds (rounded in the safe direction)
RADIUS_DIGITS = 2      # radius and distance (rounded up)
POINT_LOSS_DIGITS = 15  # enclosure of F at the point
LOSS_DIGITS = 12       # enclosure of F at the critical point
DEFAULT_PRECISION = 128
DEFAULT_RADIUS_FACTOR = 2

BOUND_KEYS = (
    "gradient_norm_upper", "center_hessian_negative_eigenvalues", "center_hessian_eigen_gap_lower",
    "radius", "hessian_variation_upper", "hessian_norm_upper", "student_norm_lower",
    "student_pairs_one_minus_cos_lower", "student_teacher_one_minus_cos_lower", "one_plus_cos_lower",
    "loss_at_point_lower", "loss_at_point_upper")
CLAIM_KEYS = ("kind", "morse_index", "eigenvalue_abs_lower", "distance_upper", "loss_lower", "loss_upper",
              "spurious")

ANNIHILATION_FORMAT = "spurious-annihilation-certificate"
ANNIHILATION_THEOREM = (
    "Let x* be the critical point of F (n student neurons) that the first theorem places in the ball, z its row "
    "`neuron`, and S(y) = Hess_zz F(y) - I/2 the diagonal Hessian block of that row without its Gauss-Newton term. "
    "For alpha in (0, 1) let x*_alpha (n + 1 neurons) be x* with row `neuron` replaced by alpha z and (1 - alpha) z "
    "appended as the last row. Then x*_alpha is a critical point of F with n + 1 neurons and the same loss, and "
    "along x*_alpha + t D, D = a in row `neuron` and -a in the last row, F = F(x*) + t^2 a^T S(x*) a / (2 alpha "
    "(1 - alpha)) + o(t^2). If a^T S(y) a <= c < 0 for every y in the ball, x*_alpha is not a local minimum, "
    "for every alpha in (0, 1): the second derivative along D is at most c / (alpha (1 - alpha)).")
SPLIT_BOUND_KEYS = ("splitting_curvature_upper",)
SPLIT_CLAIM_KEYS = ("embedded_student", "not_a_minimum", "curvature_upper")
SPLIT_KEYS = ("neuron", "alpha", "direction")
_ALPHA = re.compile(r"0\.[0-9]{1,30}")


#: memory of one Hessian entry in ball arithmetic (measured at 128 bits: 49 bytes in an arb_mat, 89 as
#: a Python arb; both exist while the Hessian is built), to refuse a check that cannot fit before it starts
BYTES_PER_ENTRY = 200


class TooLargeToCheck(Exception):
    """A certificate this machine cannot re-check: its Hessian in ball arithmetic would not fit."""


def check_fits(parameters: int, what: str):
    need = BYTES_PER_ENTRY * parameters * parameters
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > 0.8 * total:
        raise TooLargeToCheck(f"{what} of {parameters:,} parameters (its Hessian in ball arithmetic, about "
                              f"{BYTES_PER_ENTRY} bytes an entry) would need about {need / 2**30:,.1f} GiB of memory; "
                              f"this machine allows {0.8 * total / 2**30:.1f} GiB (80% of {total / 2**30:.1f} GiB)")


class InvalidCertificate(Exception):
    """The certificate does not verify; the message is one line saying why."""


class ProofFailed(Exception):
    """A hypothesis of the theorem could not be established.

    cause: 'nonsmooth_point' (the point itself is where F is not smooth), 'precision' (rounding in
    the working precision hides the answer), 'degenerate' (Hessian eigenvalues not separated from 0),
    'split' (a split that cannot be stated, e.g. alpha outside (0, 1)), 'not_annihilated' (the curvature of
    a split is not bounded below 0), 'nonsmooth_ball' (the ball the proof needs reaches the non-smooth set), 'not_critical' (the
    gradient is too large for the Hessian's variation over the ball).
    """

    def __init__(self, cause: str, message: str, **data):
        super().__init__(message)
        self.cause = cause
        self.data = data


# ---------------------------------------------------------------------------------------------
# Exact decimals


def _fraction(x: arb) -> Fraction:
    """The exact value of an exact arb (e.g. an endpoint from .upper() / .lower())."""
    man, exp = x.mid().man_exp()
    man, exp = int(man), int(exp)
    return Fraction(man * 2 ** exp) if exp >= 0 else Fraction(man, 2 ** -exp)


def upper_fraction(x: arb) -> Fraction:
    if not x.is_finite():
        raise ProofFailed("precision", "a bound came out infinite or NaN in ball arithmetic")
    return _fraction(x.upper())


def lower_fraction(x: arb) -> Fraction:
    if not x.is_finite():
        raise ProofFailed("precision", "a bound came out infinite or NaN in ball arithmetic")
    return _fraction(x.lower())


def round_decimal(q: Fraction, digits: int, up: bool) -> str:
    """q rounded to `digits` significant decimal digits, up (towards +inf) or down, as 'd.ddde-N'."""
    if q == 0:
        return "0"
    if q < 0:
        text = round_decimal(-q, digits, not up)
        return "-" + text
    exponent = len(str(q.numerator)) - len(str(q.denominator))
    while Fraction(10) ** exponent > q:
        exponent -= 1
    while Fraction(10) ** (exponent + 1) <= q:
        exponent += 1
    scale = Fraction(10) ** (exponent - digits + 1)
    scaled = q / scale
    mantissa = -((-scaled.numerator) // scaled.denominator) if up else scaled.numerator // scaled.denominator
    if mantissa == 10 ** digits:
        mantissa, exponent = 10 ** (digits - 1), exponent + 1
    text = str(mantissa)
    body = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{body}e{exponent}"


def decimal_up(x, digits: int) -> str:
    return round_decimal(x if isinstance(x, Fraction) else upper_fraction(x), digits, up=True)


def decimal_down(x, digits: int) -> str:
    return round_decimal(x if isinstance(x, Fraction) else lower_fraction(x), digits, up=False)


def float_text(value: float) -> str:
    """Canonical text of a float64: the shortest string that reads back as the same float."""
    return repr(float(value))


def parse_float_text(text) -> float:
    if not isinstance(text, str):
        raise InvalidCertificate(f"expected a number as a string, got {text!r}")
    try:
        value = float(text)
    except ValueError:
        raise InvalidCertificate(f"not a number: {text!r}") from None
    if not math.isfinite(value) or float_text(value) != text:
        raise InvalidCertificate(f"{text!r} is not a float64 in canonical shortest form ({float_text(value)!r})")
    return value


_DECIMAL = re.compile(r"0|-?[1-9](\.[0-9]{1,40})?e-?[0-9]{1,4}")


def parse_decimal(text, name: str) -> Fraction:
    """A stored bound: '0' or 'd.ddde-N' as written by round_decimal (anything else is refused)."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise InvalidCertificate(f"{name}: not a decimal in the certificate's form 'd.ddde-N': {text!r}")
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InvalidCertificate(f"{name}: not a decimal number: {text!r}") from None


# ---------------------------------------------------------------------------------------------
# The closed forms in ball arithmetic


def _exact_arb(value: float) -> arb:
    return arb(fmpq(*float(value).as_integer_ratio()))


def _positive(x: arb) -> bool:
    return x.is_finite() and x > 0


class Geometry:
    """Norms, unit vectors, cosines, sines and angles of the student rows against students and teachers.

    Entries are Arb balls; with ball inputs they enclose the values at every point of the input box.
    """

    def __init__(self, student_rows, teacher_rows, teacher_exact):
        self.n, self.k = len(student_rows), len(teacher_rows)
        self._angles = None
        self.d = len(student_rows[0])
        self.student_rows = student_rows
        self.teacher_rows = teacher_rows
        students = arb_mat(student_rows)
        teachers = arb_mat(teacher_rows)
        gram_ss = students * students.transpose()
        gram_st = students * teachers.transpose()
        # ||w_i||^2 = sum_p w_ip^2, formed from squares (tighter than the Gram diagonal on a box)
        squared = [sum((x * x for x in row), arb(0)) for row in student_rows]
        self.student_norm_squared = squared
        self.student_norms = [s.sqrt() if _positive(s) else arb("nan") for s in squared]
        self.teacher_norms = [arb(q).sqrt() for q in teacher_exact.norms_squared]
        self.student_units = [[x / nrm for x in row] for row, nrm in zip(student_rows, self.student_norms)]
        self.teacher_units = [[x / nrm for x in row] for row, nrm in zip(teacher_rows, self.teacher_norms)]
        n, k = self.n, self.k
        self.cos_ss = [[None if i == m else gram_ss[i, m] / (self.student_norms[i] * self.student_norms[m])
                        for m in range(n)] for i in range(n)]
        self.cos_st = [[gram_st[i, j] / (self.student_norms[i] * self.teacher_norms[j]) for j in range(k)]
                       for i in range(n)]

    def margins(self) -> dict:
        """Lower bounds of min ||w_i||, 1 - cos (student pairs; student-teacher) and 1 + cos (all pairs)."""
        one = arb(1)
        pairs_ss = [self.cos_ss[i][m] for i in range(self.n) for m in range(i + 1, self.n)]
        pairs_st = [c for row in self.cos_st for c in row]
        return {
            "student_norm_lower": [x for x in self.student_norms],
            "student_pairs_one_minus_cos_lower": [one - c for c in pairs_ss],
            "student_teacher_one_minus_cos_lower": [one - c for c in pairs_st],
            "one_plus_cos_lower": [one + c for c in pairs_ss + pairs_st],
        }

    def angles(self):
        """(sin, angle) of every student-student (diagonal None) and student-teacher pair."""
        if self._angles is None:
            self._angles = self._compute_angles()
        return self._angles

    def _compute_angles(self):
        def sin_angle(c):
            s = ((1 - c) * (1 + c)).sqrt()
            return s, arb.atan2(s, c)
        ss = [[None if c is None else sin_angle(c) for c in row] for row in self.cos_ss]
        st = [[sin_angle(c) for c in row] for row in self.cos_st]
        return ss, st


class ExactTeacher:
    """The teacher rows as exact rationals, with what the loss needs of them computed exactly."""

    def __init__(self, weights):
        self.rows = [[Fraction(x) for x in row] for row in weights]
        self.k, self.d = len(self.rows), len(self.rows[0])
        matrix = fmpq_mat(self.k, self.d, [fmpq(x.numerator, x.denominator) for row in self.rows for x in row])
        gram = matrix * matrix.transpose()
        self.gram = [[gram[i, j] for j in range(self.k)] for i in range(self.k)]
        self.norms_squared = [self.gram[j][j] for j in range(self.k)]
        if any(q == 0 for q in self.norms_squared):
            raise InvalidCertificate("a teacher neuron is identically zero")
        self.matrix = matrix

    def arb_rows(self):
        return [[arb(fmpq(x.numerator, x.denominator)) for x in row] for row in self.rows]

    def self_loss(self) -> arb:
        """1/2 sum_{j,j'} f(v_j, v_j'), with parallel and antiparallel teacher pairs decided exactly."""
        pi = arb.pi()
        total = arb(0)
        for j in range(self.k):
            total += arb(self.norms_squared[j]) / 4
            for l in range(j + 1, self.k):
                dot, nn = self.gram[j][l], self.norms_squared[j] * self.norms_squared[l]
                norm_product = arb(nn).sqrt()
                if dot * dot == nn:  # parallel (f = |v||v'|/2) or antiparallel (f = 0)
                    total += norm_product / 2 if dot > 0 else arb(0)
                    continue
                c = arb(dot) / norm_product
                s = arb(1 - dot * dot / nn).sqrt()
                t = arb.atan2(s, c)
                total += norm_product * (s + (pi - t) * c) / (2 * pi)
        return total


def exact_nonsmooth_reason(point, teacher: ExactTeacher) -> str | None:
    """Decide exactly (rational arithmetic) whether the float64 point is where F is not smooth."""
    n, d = len(point), len(point[0])
    matrix = fmpq_mat(n, d, [fmpq(*float(x).as_integer_ratio()) for row in point for x in row])
    gram_ss = matrix * matrix.transpose()
    gram_st = matrix * teacher.matrix.transpose()
    for i in range(n):
        if gram_ss[i, i] == 0:
            return f"student neuron {i} is zero (F is not differentiable there)"
    for i in range(n):
        for m in range(i + 1, n):
            dot = gram_ss[i, m]
            if dot * dot == gram_ss[i, i] * gram_ss[m, m]:
                kind = "parallel" if dot > 0 else "antiparallel"
                return f"student neurons {i} and {m} are {kind} (F is not twice differentiable there)"
        for j in range(teacher.k):
            dot = gram_st[i, j]
            if dot * dot == gram_ss[i, i] * teacher.norms_squared[j]:
                kind = "parallel" if dot > 0 else "antiparallel"
                return f"student neuron {i} is {kind} to teacher neuron {j} (F is not twice differentiable there)"
    return None


def loss_enclosure(geometry: Geometry, teacher: ExactTeacher) -> arb:
    pi = arb.pi()
    ss, st = geometry.angles()
    norms, tnorms = geometry.student_norms, geometry.teacher_norms
    total = teacher.self_loss()
    for i in range(geometry.n):
        total += geometry.student_norm_squared[i] / 4
        for m in range(i + 1, geometry.n):
            s, t = ss[i][m]
            total += norms[i] * norms[m] * (s + (pi - t) * geometry.cos_ss[i][m]) / (2 * pi)
        for j in range(geometry.k):
            s, t = st[i][j]
            total -= norms[i] * tnorms[j] * (s + (pi - t) * geometry.cos_st[i][j]) / (2 * pi)
    return total


def gradient_enclosure(geometry: Geometry) -> list:
    """grad_i = w_i/2 + sum_{m != i} g(w_i, w_m) - sum_j g(w_i, v_j),
    g(w, v) = (|v| sin t w/|w| + (pi - t) v) / (2 pi); returns the n*d entries, row-major."""
    pi = arb.pi()
    n, k, d = geometry.n, geometry.k, geometry.d
    ss, st = geometry.angles()
    pull_ss = arb_mat([[arb(0) if i == m else pi - ss[i][m][1] for m in range(n)] for i in range(n)])
    pull_st = arb_mat([[pi - st[i][j][1] for j in range(k)] for i in range(n)])
    pulled = pull_ss * arb_mat(geometry.student_rows) - pull_st * arb_mat(geometry.teacher_rows)
    out = []
    for i in range(n):
        radial = (sum((geometry.student_norms[m] * ss[i][m][0] for m in range(n) if m != i), arb(0))
                  - sum((geometry.teacher_norms[j] * st[i][j][0] for j in range(k)), arb(0)))
        for p in range(d):
            out.append(geometry.student_rows[i][p] / 2
                       + (radial * geometry.student_units[i][p] + pulled[i, p]) / (2 * pi))
    return out


def splitting_block(geometry: Geometry, i: int, outer_self=None, identity=None) -> arb_mat:
    """H_ii - 1/2 I = sum_{m != i} h(w_i, w_m) - sum_j h(w_i, v_j) (d x d): the diagonal Hessian block of
    student i without its Gauss-Newton term 1/2 I, i.e. the second variation of F along splits of neuron i
    (Safran, Yehudai & Shamir 2021's H'_ii; see the annihilation theorem), h(w, v) = |v| s / (2 pi |w|)
    (I - u u^T + nu nu^T), nu = (u_v - c u) / s."""
    pi = arb.pi()
    two_pi = 2 * pi
    n, k, d = geometry.n, geometry.k, geometry.d
    ss, st = geometry.angles()
    units = geometry.student_units
    if outer_self is None:
        column = arb_mat([[x] for x in units[i]])
        outer_self = column * column.transpose()
    if identity is None:
        identity = arb_mat([[arb(1) if p == q else arb(0) for q in range(d)] for p in range(d)])
    coefficients, normals = [], []
    for m in range(n):
        if m == i:
            continue
        s, _ = ss[i][m]
        c = geometry.cos_ss[i][m]
        coefficients.append(geometry.student_norms[m] * s / (two_pi * geometry.student_norms[i]))
        normals.append([(units[m][p] - c * units[i][p]) / s for p in range(d)])
    for j in range(k):
        s, _ = st[i][j]
        c = geometry.cos_st[i][j]
        coefficients.append(-geometry.teacher_norms[j] * s / (two_pi * geometry.student_norms[i]))
        normals.append([(geometry.teacher_units[j][p] - c * units[i][p]) / s for p in range(d)])
    total = sum(coefficients, arb(0))
    normal_matrix = arb_mat(normals)
    weighted = arb_mat([[coef * x for x in row] for coef, row in zip(coefficients, normals)])
    return identity * total - outer_self * total + normal_matrix.transpose() * weighted


def hessian_enclosure(geometry: Geometry) -> list:
    """The closed-form Hessian (n*d x n*d, nested lists of balls), symmetric by construction.

    Blocks (u = unit vectors, c/s/t = cos/sin/angle of the pair):
      diagonal  H_ii = 1/2 I + sum_{m != i} h(w_i, w_m) - sum_j h(w_i, v_j),
                h(w, v) = |v| s / (2 pi |w|) (I - u u^T + nu nu^T),  nu = (u_v - c u) / s;
      off-diag  H_im = ((pi - t) I + (u_i u_m^T + u_m u_i^T - c (u_i u_i^T + u_m u_m^T)) / s) / (2 pi).
    """
    pi = arb.pi()
    two_pi = 2 * pi
    n, d = geometry.n, geometry.d
    size = n * d
    ss, _ = geometry.angles()
    units = geometry.student_units
    unit_cols = [arb_mat([[x] for x in u]) for u in units]
    outer_self = [col * col.transpose() for col in unit_cols]
    identity = arb_mat([[arb(1) if p == q else arb(0) for q in range(d)] for p in range(d)])
    rows = [[None] * size for _ in range(size)]

    def place(i, m, block):
        entries = block.entries()
        for p in range(d):
            row = rows[i * d + p]
            offset = p * d
            for q in range(d):
                row[m * d + q] = entries[offset + q]

    for i in range(n):
        place(i, i, identity * (arb(1) / 2) + splitting_block(geometry, i, outer_self[i], identity))
        # off-diagonal blocks to the right
        for m in range(i + 1, n):
            s, t = ss[i][m]
            c = geometry.cos_ss[i][m]
            cross = unit_cols[i] * unit_cols[m].transpose()
            block = (identity * ((pi - t) / two_pi) + (cross + cross.transpose()) * (1 / (two_pi * s))
                     + (outer_self[i] + outer_self[m]) * (-c / (two_pi * s)))
            place(i, m, block)
    # mirror: the Hessian is symmetric, so one enclosure serves both (p, q) and (q, p)
    for p in range(size):
        for q in range(p):
            rows[p][q] = rows[q][p]
    return rows


# ---------------------------------------------------------------------------------------------
# Rigorous linear algebra


def max_row_sum_upper(abs_upper_rows) -> arb:
    """Upper bound of max_p sum_q a_pq for nonnegative exact entries (a bound on ||A||_inf)."""
    matrix = arb_mat(abs_upper_rows)
    ones = arb_mat([[arb(1)] for _ in range(matrix.ncols())])
    sums = matrix * ones
    return max((sums[p, 0].upper() for p in range(matrix.nrows())), key=_fraction)


def symmetric_norm_upper(abs_upper_rows) -> arb:
    """Upper bound of ||A||_2 for a matrix with |A_pq| <= a_pq: sqrt(||a||_1 ||a||_inf)."""
    row = max_row_sum_upper(abs_upper_rows)
    column = max_row_sum_upper([list(r) for r in zip(*abs_upper_rows)])
    return (row * column).sqrt().upper()


@dataclass(frozen=True)
class Spectrum:
    negative: int        # number of negative eigenvalues of H_c
    gap_lower: arb       # every |eigenvalue of H_c| >= gap_lower
    diagonal_min: arb    # min |D_i|
    offdiagonal: arb     # rho >= ||Q^T H_c Q - D||_2
    orthogonality: arb   # eps >= ||Q^T Q - I||_2


@contextlib.contextmanager
def _one_blas_thread():
    """Run LAPACK on one thread when threadpoolctl is installed (multithreaded BLAS on a busy machine
    can be 100x slower for a 400 x 400 eigendecomposition); the result's rigour does not depend on it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _abs_upper_rows(matrix: arb_mat) -> list:
    size = matrix.ncols()
    entries = [x.abs_upper() for x in matrix.entries()]
    return [entries[p * size:(p + 1) * size] for p in range(matrix.nrows())]


def center_spectrum(center: arb_mat, center_floats: np.ndarray) -> Spectrum:
    """Inertia and an eigenvalue gap of the exact symmetric matrix `center` (see the module docstring).

    center_floats: the same matrix as float64 (its entries are float64 numbers)."""
    size = center.nrows()
    with _one_blas_thread():
        _, vectors = np.linalg.eigh(center_floats)
    basis = arb_mat(vectors.tolist())
    basis_t = basis.transpose()
    rotated = basis_t * center * basis
    gram = basis_t * basis
    diagonal = [rotated[p, p].mid() for p in range(size)]
    identity = arb_mat([[arb(1) if p == q else arb(0) for q in range(size)] for p in range(size)])
    residual = _abs_upper_rows(rotated - arb_mat([[diagonal[p] if p == q else arb(0) for q in range(size)]
                                                   for p in range(size)]))
    drift = _abs_upper_rows(gram - identity)
    rho = symmetric_norm_upper(residual)
    eps = symmetric_norm_upper(drift)
    smallest = min((abs(x) for x in diagonal), key=_fraction)
    negative = sum(1 for x in diagonal if x < 0)
    if not eps < 1:
        raise ProofFailed("precision", f"the eigenvector matrix is not provably nonsingular (||Q^T Q - I|| <= {float(eps):.3g})")
    if not smallest > rho:
        raise ProofFailed(
            "degenerate", f"Hessian eigenvalues are not separated from 0: smallest |eigenvalue| is about "
            f"{float(smallest):.3g}, below the rigorous error bound {float(rho):.3g} of the float64 eigendecomposition",
            smallest=float(smallest), error=float(rho))
    gap = ((smallest - rho) / (1 + eps)).lower()
    return Spectrum(negative, gap, smallest, rho, eps)


# ---------------------------------------------------------------------------------------------
# Deriving the bounds, and the theorem


def _ball_rows(point, radius: Fraction | None):
    spread = None if not radius else arb(0, 1) * arb(fmpq(radius.numerator, radius.denominator))
    return [[_exact_arb(x) if spread is None else _exact_arb(x) + spread for x in row] for row in point]


MARGIN_WORDS = {
    "student_norm_lower": "the smallest student neuron norm",
    "student_pairs_one_minus_cos_lower": "1 - cos(angle) of some pair of student neurons (parallel students)",
    "student_teacher_one_minus_cos_lower": "1 - cos(angle) of some student and teacher neuron (student parallel to a teacher)",
    "one_plus_cos_lower": "1 + cos(angle) of some pair of neurons (antiparallel neurons)",
}


def _min_lower(balls, name: str, where: str, cause: str, **data):
    if not balls:
        return None
    worst = min(balls, key=lambda b: lower_fraction(b) if b.is_finite() else Fraction(-10 ** 9))
    if not _positive(worst):
        enclosure = f"enclosure {worst.str(3, radius=True)}" if worst.is_finite() else "no finite enclosure"
        raise ProofFailed(cause, f"{MARGIN_WORDS[name]} is not bounded away from 0 {where} ({enclosure})", **data)
    return decimal_down(worst, BOUND_DIGITS)


def derive_bounds(teacher_weights, point, precision: int = DEFAULT_PRECISION,
                  radius_factor: int = DEFAULT_RADIUS_FACTOR, split=None) -> dict:
    """Every bound of the certificate, as canonical decimal strings (the `bounds` section).

    teacher_weights: k x d rationals (Fraction or exact decimal strings); point: n x d float64.
    split: (neuron, direction) for an annihilation certificate: also the bound
    `splitting_curvature_upper` >= a^T (H_ii - 1/2 I) a over the ball (see ANNIHILATION_THEOREM).
    Raises ProofFailed when a hypothesis cannot be established.
    """
    teacher = ExactTeacher(teacher_weights)
    point = [[float(x) for x in row] for row in point]
    reason = exact_nonsmooth_reason(point, teacher)
    if reason:
        raise ProofFailed("nonsmooth_point", reason)
    with ctx.workprec(precision):
        teacher_rows = teacher.arb_rows()
        at_point = Geometry(_ball_rows(point, None), teacher_rows, teacher)
        for name, balls in at_point.margins().items():
            _min_lower(balls, name, "at the point (rounding)", "precision")
        gradient = gradient_enclosure(at_point)
        # upper bound of ||grad F(x0)||_2 from the entrywise upper bounds |g_p| <= a_p (exact, nonnegative)
        gradient_norm = sum((g.abs_upper() * g.abs_upper() for g in gradient), arb(0)).sqrt()
        loss = loss_enclosure(at_point, teacher)
        # H_c: the float64 matrix nearest the midpoints of the Hessian enclosure at the point (any exact
        # symmetric matrix is allowed; float64 entries keep the products below fast)
        center_floats = np.array([[float(x) for x in row] for row in hessian_enclosure(at_point)])
        center = arb_mat(center_floats.tolist())
        spectrum = center_spectrum(center, center_floats)
        bounds = {"gradient_norm_upper": decimal_up(gradient_norm, BOUND_DIGITS),
                  "center_hessian_negative_eigenvalues": spectrum.negative,
                  "center_hessian_eigen_gap_lower": decimal_down(spectrum.gap_lower, BOUND_DIGITS)}
        gap = Fraction(bounds["center_hessian_eigen_gap_lower"])
        if gap <= 0:
            raise ProofFailed("degenerate", f"the eigenvalue gap bound {bounds['center_hessian_eigen_gap_lower']} is not positive")
        radius_exact = radius_factor * Fraction(bounds["gradient_norm_upper"]) / gap
        bounds["radius"] = round_decimal(radius_exact, RADIUS_DIGITS, up=True)
        radius = Fraction(bounds["radius"])

        on_ball = Geometry(_ball_rows(point, radius), teacher_rows, teacher)
        for name, balls in on_ball.margins().items():
            bounds[name] = _min_lower(balls, name, f"on the ball of radius {bounds['radius']}", "nonsmooth_ball",
                                      radius=bounds["radius"])
        hessian_on_ball = hessian_enclosure(on_ball)
        hessian_on_ball = arb_mat(hessian_on_ball)
        variation = _abs_upper_rows(hessian_on_ball - center)
        magnitude = _abs_upper_rows(hessian_on_ball)
        bounds["hessian_variation_upper"] = decimal_up(symmetric_norm_upper(variation), BOUND_DIGITS)
        bounds["hessian_norm_upper"] = decimal_up(symmetric_norm_upper(magnitude), BOUND_DIGITS)
        bounds["loss_at_point_lower"] = decimal_down(loss, POINT_LOSS_DIGITS)
        bounds["loss_at_point_upper"] = decimal_up(loss, POINT_LOSS_DIGITS)
        if split is not None:
            neuron, direction = split
            curvature = splitting_curvature(on_ball, neuron, direction)
            bounds["splitting_curvature_upper"] = decimal_up(curvature, BOUND_DIGITS)
    keys = BOUND_KEYS + (SPLIT_BOUND_KEYS if split is not None else ())
    return {key: bounds[key] for key in keys}


def splitting_curvature(geometry: Geometry, neuron: int, direction) -> arb:
    """a^T (H_ii - 1/2 I) a for student `neuron`, a = direction (exact float64 numbers): one ball that
    holds its value at every point of the geometry's box."""
    a = arb_mat([[_exact_arb(x)] for x in direction])
    return (a.transpose() * splitting_block(geometry, neuron) * a)[0, 0]


def conclude(teacher: int, student: int, bounds: dict) -> dict:
    """Apply the theorem to the bounds in exact rational arithmetic: the `claim` section.

    Raises ProofFailed when a hypothesis does not hold.
    """
    def value(key):
        return Fraction(bounds[key])

    for key in ("student_norm_lower", "student_pairs_one_minus_cos_lower", "student_teacher_one_minus_cos_lower",
                "one_plus_cos_lower"):
        if bounds[key] is not None and not value(key) > 0:
            raise ProofFailed("nonsmooth_ball", f"{key} = {bounds[key]} is not positive")
    gradient, mu0, radius = value("gradient_norm_upper"), value("center_hessian_eigen_gap_lower"), value("radius")
    delta, hessian_norm = value("hessian_variation_upper"), value("hessian_norm_upper")
    if not mu0 > 0:
        raise ProofFailed("degenerate", f"eigenvalue gap {bounds['center_hessian_eigen_gap_lower']} is not positive")
    if not delta < mu0 or not gradient <= (mu0 - delta) * radius:
        raise ProofFailed(
            "not_critical", f"the Hessian varies by up to {bounds['hessian_variation_upper']} over the ball of radius "
            f"{bounds['radius']}, too much against the eigenvalue gap {bounds['center_hessian_eigen_gap_lower']} and the "
            f"gradient norm {bounds['gradient_norm_upper']} (need gradient <= (gap - variation) * radius)")
    mu = Fraction(round_decimal(mu0 - delta, BOUND_DIGITS, up=False))
    distance = Fraction(round_decimal(gradient / mu, RADIUS_DIGITS, up=True))
    slack = hessian_norm * distance * distance / 2
    loss_lower = round_decimal(value("loss_at_point_lower") - slack, LOSS_DIGITS, up=False)
    loss_upper = round_decimal(value("loss_at_point_upper") + slack, LOSS_DIGITS, up=True)
    index = int(bounds["center_hessian_negative_eigenvalues"])
    kind = "minimum" if index == 0 else "saddle"
    # inf F = 0 when student >= teacher (W = [V; 0]); otherwise the global value is unknown here.
    spurious = None if student < teacher else bool(kind == "minimum" and Fraction(loss_lower) > 0)
    return {"kind": kind, "morse_index": index, "eigenvalue_abs_lower": round_decimal(mu, BOUND_DIGITS, up=False),
            "distance_upper": round_decimal(distance, RADIUS_DIGITS, up=True), "loss_lower": loss_lower,
            "loss_upper": loss_upper, "spurious": spurious}


def conclude_annihilation(teacher: int, student: int, bounds: dict, alpha: Fraction) -> dict:
    """The annihilation theorem applied to the bounds (exact arithmetic): the first theorem's claim
    and the embedded point's. Raises ProofFailed when a hypothesis does not hold."""
    claim = conclude(teacher, student, bounds)
    curvature = Fraction(bounds["splitting_curvature_upper"])
    if not 0 < alpha < 1:
        raise ProofFailed("split", f"alpha must lie strictly between 0 and 1, got {alpha}")
    if not curvature < 0:
        raise ProofFailed("not_annihilated", f"the curvature of the split along the direction is bounded above by "
                          f"{bounds['splitting_curvature_upper']}, not by a negative number")
    return {**claim, "embedded_student": student + 1, "not_a_minimum": True,
            "curvature_upper": round_decimal(curvature / (alpha * (1 - alpha)), BOUND_DIGITS, up=True)}


def alpha_text(alpha: Fraction) -> str:
    """alpha in (0, 1) as the exact decimal the certificate stores ('0.5'); refused if it has none."""
    for digits in range(1, 31):
        scaled = alpha * 10 ** digits
        if scaled.denominator == 1:
            return f"0.{int(scaled):0{digits}d}"
    raise ProofFailed("split", f"alpha = {alpha} has no exact decimal form with at most 30 digits")


def parse_alpha(text) -> Fraction:
    _require(isinstance(text, str) and _ALPHA.fullmatch(text), f"split alpha must be a decimal '0.ddd', got {text!r}")
    alpha = Fraction(text)
    _require(0 < alpha < 1 and alpha_text(alpha) == text, f"split alpha {text!r} is not a canonical decimal in (0, 1)")
    return alpha


# ---------------------------------------------------------------------------------------------
# The certificate file


def digest(certificate: dict) -> str:
    body = {key: value for key, value in certificate.items() if key != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def build_certificate(teacher_weights, point, bounds: dict, claim: dict, precision: int, radius_factor: int) -> dict:
    """The certificate as a JSON-ready dict (numbers as canonical strings) with its digest."""
    weights = [[float_text(x) for x in row] for row in teacher_weights]
    certificate = {
        "format": FORMAT, "version": VERSION, "theorem": THEOREM,
        "problem": {"name": PROBLEM_NAME, "teacher": len(weights), "student": len(point), "dim": len(point[0]),
                    "teacher_weights": weights},
        "point": [[float_text(x) for x in row] for row in point],
        "settings": {"precision_bits": int(precision), "radius_factor": int(radius_factor)},
        "bounds": bounds,
        "claim": claim,
    }
    certificate["digest"] = digest(certificate)
    return certificate


def build_annihilation_certificate(teacher_weights, point, neuron: int, alpha: Fraction, direction, bounds: dict,
                                   claim: dict, precision: int, radius_factor: int) -> dict:
    """The annihilation certificate: the first certificate's sections, the split, and both theorems."""
    base = build_certificate(teacher_weights, point, bounds, claim, precision, radius_factor)
    del base["digest"]
    certificate = {**base, "format": ANNIHILATION_FORMAT, "annihilation_theorem": ANNIHILATION_THEOREM,
                   "split": {"neuron": int(neuron), "alpha": alpha_text(alpha),
                             "direction": [float_text(x) for x in direction]}}
    certificate["digest"] = digest(certificate)
    return certificate


@dataclass(frozen=True)
class VerifiedClaim:
    teacher: int
    student: int
    dim: int
    kind: str
    morse_index: int
    radius: str
    eigenvalue_abs_lower: str
    distance_upper: str
    loss_lower: str
    loss_upper: str
    spurious: bool | None

    def summary(self) -> str:
        what = {True: "spurious local minimum", False: "local minimum", None: "local minimum"}[self.spurious] \
            if self.kind == "minimum" else f"saddle of index {self.morse_index}"
        return (f"valid: a {what} of the ReLU teacher-student loss (k={self.teacher}, n={self.student}, "
                f"d={self.dim}) lies within {self.distance_upper} of the point, unique in the ball of radius "
                f"{self.radius}; |Hessian eigenvalues| >= {self.eigenvalue_abs_lower}; "
                f"loss in [{self.loss_lower}, {self.loss_upper}]")


def _require(condition, message):
    if not condition:
        raise InvalidCertificate(message)


def _integer(value, name, minimum=1):
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
             f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class VerifiedAnnihilation:
    base: VerifiedClaim
    neuron: int
    alpha: str
    curvature_upper: str
    splitting_curvature_upper: str

    def summary(self) -> str:
        b = self.base
        what = "spurious local minimum" if b.kind == "minimum" and b.spurious else (
            "local minimum" if b.kind == "minimum" else f"saddle of index {b.morse_index}")
        return (f"valid: the {what} of the ReLU teacher-student loss (k={b.teacher}, n={b.student}, d={b.dim}) within "
                f"{b.distance_upper} of the point, with neuron {self.neuron} split into alpha = {self.alpha} and "
                f"1 - alpha, is a critical point of n = {b.student + 1} with loss in [{b.loss_lower}, {b.loss_upper}] "
                f"and not a local minimum: the second derivative along the split direction is <= "
                f"{self.curvature_upper} (a^T S a <= {self.splitting_curvature_upper}, for every alpha in (0, 1))")


SECTIONS = ("format", "version", "theorem", "problem", "point", "settings", "bounds", "claim", "digest")
ANNIHILATION_SECTIONS = SECTIONS + ("annihilation_theorem", "split")


def verify_certificate(certificate):
    """Re-check a certificate (a dict as loaded from JSON): a critical point's (VerifiedClaim) or an
    annihilation certificate (VerifiedAnnihilation); raises InvalidCertificate with the reason."""
    _require(isinstance(certificate, dict), "not a certificate: the top level is not an object")
    if certificate.get("format") == ANNIHILATION_FORMAT:
        return _verify_annihilation(certificate)
    _require(certificate.get("format") == FORMAT, f"not a certificate: format is not {FORMAT!r}")
    k, n, d, teacher_weights, point_values, precision, radius_factor = _read(certificate, SECTIONS, BOUND_KEYS,
                                                                             CLAIM_KEYS)
    bounds, claim = certificate["bounds"], certificate["claim"]
    # 1. the claim must be exactly what the theorem concludes from the stated bounds (exact arithmetic)
    try:
        concluded = conclude(k, n, bounds)
    except ProofFailed as failure:
        raise InvalidCertificate(f"the theorem's hypotheses fail: {failure}") from None
    _same_claim(claim, concluded, CLAIM_KEYS)
    # 2. the bounds must be exactly what ball arithmetic gives at the point
    _same_bounds(bounds, teacher_weights, point_values, precision, radius_factor, None, BOUND_KEYS)
    return _verified(k, n, d, bounds, claim)


def _verify_annihilation(certificate) -> VerifiedAnnihilation:
    keys = BOUND_KEYS + SPLIT_BOUND_KEYS
    claim_keys = CLAIM_KEYS + SPLIT_CLAIM_KEYS
    k, n, d, teacher_weights, point_values, precision, radius_factor = _read(certificate, ANNIHILATION_SECTIONS,
                                                                             keys, claim_keys)
    _require(certificate["annihilation_theorem"] == ANNIHILATION_THEOREM,
             "the annihilation theorem is not the one this verifier checks")
    split = certificate["split"]
    _require(isinstance(split, dict) and set(split) == set(SPLIT_KEYS), "split must hold neuron, alpha and direction")
    neuron = _integer(split["neuron"], "split neuron", 0)
    _require(neuron < n, f"split neuron {neuron} is not a student neuron (0..{n - 1})")
    alpha = parse_alpha(split["alpha"])
    direction = split["direction"]
    _require(isinstance(direction, list) and len(direction) == d, f"split direction must be a vector of {d} numbers")
    direction = [parse_float_text(x) for x in direction]
    _require(any(x != 0 for x in direction), "split direction is zero")
    bounds, claim = certificate["bounds"], certificate["claim"]
    try:
        concluded = conclude_annihilation(k, n, bounds, alpha)
    except ProofFailed as failure:
        raise InvalidCertificate(f"the theorems' hypotheses fail: {failure}") from None
    _same_claim(claim, concluded, claim_keys)
    _same_bounds(bounds, teacher_weights, point_values, precision, radius_factor, (neuron, direction), keys)
    return VerifiedAnnihilation(_verified(k, n, d, bounds, claim), neuron, split["alpha"], claim["curvature_upper"],
                                bounds["splitting_curvature_upper"])


def _read(certificate, sections, bound_keys, claim_keys):
    """Check the sections every certificate has and read its problem, point and settings."""
    _require(certificate.get("version") == VERSION, f"unsupported certificate version {certificate.get('version')!r}")
    expected_keys = set(sections)
    _require(set(certificate) == expected_keys, f"unexpected or missing sections: {sorted(set(certificate) ^ expected_keys)}")
    _require(certificate["digest"] == digest(certificate), "digest mismatch: the certificate was altered after it was written")
    _require(certificate["theorem"] == THEOREM, "the theorem statement is not the one this verifier checks")

    problem = certificate["problem"]
    _require(isinstance(problem, dict) and problem.get("name") == PROBLEM_NAME, f"problem must be {PROBLEM_NAME!r}")
    k = _integer(problem.get("teacher"), "teacher")
    n = _integer(problem.get("student"), "student")
    d = _integer(problem.get("dim"), "dim")
    check_fits(n * d, "re-checking a certificate")
    weights, point = problem.get("teacher_weights"), certificate["point"]
    _require(isinstance(weights, list) and len(weights) == k and all(isinstance(r, list) and len(r) == d for r in weights),
             f"teacher_weights must be a {k} x {d} matrix")
    _require(isinstance(point, list) and len(point) == n and all(isinstance(r, list) and len(r) == d for r in point),
             f"point must be a {n} x {d} matrix")
    teacher_weights = [[Fraction(parse_float_text(x)) for x in row] for row in weights]
    point_values = [[parse_float_text(x) for x in row] for row in point]

    settings = certificate["settings"]
    _require(isinstance(settings, dict) and set(settings) == {"precision_bits", "radius_factor"},
             "settings must hold precision_bits and radius_factor")
    precision = _integer(settings["precision_bits"], "precision_bits", 53)
    _require(precision <= 4096, "precision_bits above 4096")
    radius_factor = _integer(settings["radius_factor"], "radius_factor", 2)

    bounds, claim = certificate["bounds"], certificate["claim"]
    _require(isinstance(bounds, dict) and set(bounds) == set(bound_keys), "bounds section has unexpected or missing keys")
    _require(isinstance(claim, dict) and set(claim) == set(claim_keys), "claim section has unexpected or missing keys")
    for key in bound_keys:
        expected = int if key == "center_hessian_negative_eigenvalues" else str
        nullable = key.endswith("one_minus_cos_lower") or key == "one_plus_cos_lower"
        _require(isinstance(bounds[key], expected) and not isinstance(bounds[key], bool)
                 or (nullable and bounds[key] is None), f"bound {key} has the wrong type")
        if expected is str and bounds[key] is not None:
            parse_decimal(bounds[key], key)
    return k, n, d, teacher_weights, point_values, precision, radius_factor


def _same_claim(claim, concluded, keys):
    for key in keys:
        _require(claim[key] == concluded[key] and type(claim[key]) is type(concluded[key]),
                 f"claim {key} = {claim[key]!r} is not what the theorem gives ({concluded[key]!r})")


def _same_bounds(bounds, teacher_weights, point_values, precision, radius_factor, split, keys):
    try:
        derived = derive_bounds(teacher_weights, point_values, precision, radius_factor, split)
    except ProofFailed as failure:
        raise InvalidCertificate(f"the proof does not go through: {failure}") from None
    for key in keys:
        _require(bounds[key] == derived[key],
                 f"bound {key} = {bounds[key]!r} is not what the point gives ({derived[key]!r})")


def _verified(k, n, d, bounds, claim) -> VerifiedClaim:
    return VerifiedClaim(k, n, d, claim["kind"], claim["morse_index"], bounds["radius"], claim["eigenvalue_abs_lower"],
                         claim["distance_upper"], claim["loss_lower"], claim["loss_upper"], claim["spurious"])


def load_certificate(path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise InvalidCertificate(f"not a certificate: not JSON ({error.msg} at line {error.lineno})") from None
    except UnicodeDecodeError:
        raise InvalidCertificate("not a certificate: not UTF-8 text") from None
    except RecursionError:
        raise InvalidCertificate("not a certificate: JSON nested too deeply") from None


def verify_file(path):
    return verify_certificate(load_certificate(path))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: python verify.py CERTIFICATE.json\n")
        return 2
    try:
        verified = verify_file(argv[0])
    except OSError as error:
        sys.stderr.write(f"verify: error: cannot read {argv[0]}: {error.strerror}\n")
        return 2
    except TooLargeToCheck as error:
        sys.stderr.write(f"verify: error: {error}\n")
        return 2
    except InvalidCertificate as error:
        sys.stderr.write(f"verify: invalid certificate: {error}\n")
        return 1
    print(verified.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
