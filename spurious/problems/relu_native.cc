// Loss and gradient of the two-layer ReLU population loss for a batch of students, as one XLA FFI
// call on the CPU (built and loaded by spurious/core/native.py).
//
// Why: XLA:CPU splits the batched JAX step into dozens of small loops, each a pass over memory,
// and vectorizes them over inner dimensions of k (poorly for small k). Here eight runs sit in the
// eight lanes of a vector and every formula of relu.py's difference form is evaluated lane-wise,
// so each operation is a full-width vector operation whatever k is, and a block of eight runs
// stays in cache from the first norm to the last gradient entry.
//
// The formulas are those of relu.py (_units, _angles, _identity_teacher_angles, _loss_and_grad,
// atan2_upper) term by term; only the order of some sums differs, so results agree with the JAX
// path to rounding (tests/test_native.py checks it).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr double kPi = 3.141592653589793;
constexpr double kTwoPi = 6.283185307179586;
constexpr double kTanPiOver8 = 0.41421356237309503;
// relu.py's _ATAN_COEFFS
constexpr double kAtan[11] = {-0.3333333333333333,   0.19999999999996226,  -0.1428571428477097,
                              0.11111111021692283,   -0.09090904792335651, 0.07692187444123813,
                              -0.06664564143554898,  0.058585599466550994, -0.05087411111317858,
                              0.03928395012800903,   -0.019236554484123612};

#define LANES _Pragma("omp simd") for (int q = 0; q < kLanes; q++)
// Runs per block: eight fill an AVX-512 vector; small batches (the tail of a shrinking pool) take
// fewer lanes so that no lane computes a padding run and both cores get a block.
constexpr int kMaxLanes = 8;

#pragma omp declare simd
static inline double atan2_upper(double y, double x) {
  double ax = std::fabs(x);
  double big = y > ax ? y : ax, small = y < ax ? y : ax;
  bool upper = small > kTanPiOver8 * big;
  double numerator = upper ? small - big : small;
  double denominator = upper ? small + big : (big > 0 ? big : 1.0);
  double z = numerator * (1.0 / denominator);
  double s = z * z;
  double poly = kAtan[10];
  for (int c = 9; c >= 0; c--) poly = poly * s + kAtan[c];
  double angle = z + z * s * poly;
  angle = upper ? 0.25 * kPi + angle : angle;
  angle = y > ax ? 0.5 * kPi - angle : angle;
  return x < 0 ? kPi - angle : angle;
}

#pragma omp declare simd
static inline double safe_sqrt(double x) { return x > 0 ? std::sqrt(x) : 0.0; }

struct Shape {
  int64_t students, dim, teachers;
  bool identity;
};

// Doubles of scratch one block of kMaxLanes runs needs (fewer lanes need less).
int64_t scratch_size(const Shape& s) {
  constexpr int kLanes = kMaxLanes;
  int64_t n = s.students, d = s.dim, k = s.teachers;
  int64_t pairs = n * (n - 1) / 2;
  return kLanes * (2 * n * d          // w, u
                   + 2 * n * n        // t, s (student pairs, both triangles)
                   + 3 * pairs        // squared distances, angles, sines of the upper triangle
                   + 2 * n * std::max(d, k)  // teacher angles and sines
                   + n * d            // teacher pull
                   + 3 * n            // norms, teacher radial, pull weights
                   + d);              // gradient row
}

// Loss and gradient of `live` (<= kLanes) runs starting at `students` (each n x d, row major).
template <int kLanes>
void block(const Shape& shape, const double* students, int live, const double* teacher,
           const double* teacher_units, const double* teacher_norms, double teacher_self_loss, double* loss, double* grad,
           double* scratch) {
  const int n = shape.students, d = shape.dim, k = shape.teachers;
  const int pairs = n * (n - 1) / 2;
  double* w = scratch;
  double* u = w + n * d * kLanes;
  double* t = u + n * d * kLanes;
  double* s = t + n * n * kLanes;
  double* dist = s + n * n * kLanes;
  double* pair_angle = dist + pairs * kLanes;
  double* pair_sine = pair_angle + pairs * kLanes;
  double* teacher_angle = pair_sine + pairs * kLanes;
  double* teacher_sine = teacher_angle + n * std::max(d, k) * kLanes;
  double* teacher_pull = teacher_sine + n * std::max(d, k) * kLanes;
  double* norms = teacher_pull + n * d * kLanes;
  double* teacher_radial = norms + n * kLanes;
  double* weights = teacher_radial + n * kLanes;
  double* row = weights + n * kLanes;

  // lane q holds run q; lanes past `live` repeat run 0 and are never written back (stored lane by
  // lane, contiguously: a strided scatter of each run is several times slower)
  const double* source[kLanes];
  for (int q = 0; q < kLanes; q++) source[q] = students + static_cast<int64_t>(q < live ? q : 0) * n * d;
  for (int e = 0; e < n * d; e++)
    for (int q = 0; q < kLanes; q++) w[e * kLanes + q] = source[q][e];
  // _units
  for (int i = 0; i < n; i++) {
    double squares[kLanes] = {0}, inverse[kLanes];
    for (int l = 0; l < d; l++) {
      const double* x = w + (i * d + l) * kLanes;
      LANES squares[q] += x[q] * x[q];
    }
    LANES {
      double norm = safe_sqrt(squares[q]);
      norms[i * kLanes + q] = norm;
      inverse[q] = 1.0 / (norm > 0 ? norm : 1.0);
    }
    for (int l = 0; l < d; l++) {
      const double* x = w + (i * d + l) * kLanes;
      double* unit = u + (i * d + l) * kLanes;
      LANES unit[q] = x[q] * inverse[q];
    }
  }
  // _angles(u, u) over the upper triangle: squared distances, then every angle in one flat pass
  // (independent lanes keep atan2's long dependency chains overlapped)
  for (int i = 0, first = 0; i < n; first += n - 1 - i, i++) {
    double* row_dist = dist + first * kLanes;
    int j = i + 1;
    // four partners at a time keep the sums in registers
    for (; j + 4 <= n; j += 4) {
      double s0[kLanes] = {0}, s1[kLanes] = {0}, s2[kLanes] = {0}, s3[kLanes] = {0};
      for (int l = 0; l < d; l++) {
        const double* a = u + (i * d + l) * kLanes;
        const double *b0 = u + (j * d + l) * kLanes, *b1 = b0 + d * kLanes, *b2 = b1 + d * kLanes,
                     *b3 = b2 + d * kLanes;
        LANES {
          double e0 = a[q] - b0[q], e1 = a[q] - b1[q], e2 = a[q] - b2[q], e3 = a[q] - b3[q];
          s0[q] += e0 * e0;
          s1[q] += e1 * e1;
          s2[q] += e2 * e2;
          s3[q] += e3 * e3;
        }
      }
      double* sum = row_dist + (j - i - 1) * kLanes;
      LANES {
        sum[q] = s0[q];
        sum[kLanes + q] = s1[q];
        sum[2 * kLanes + q] = s2[q];
        sum[3 * kLanes + q] = s3[q];
      }
    }
    for (; j < n; j++) {
      double s0[kLanes] = {0};
      for (int l = 0; l < d; l++) {
        const double *a = u + (i * d + l) * kLanes, *b = u + (j * d + l) * kLanes;
        LANES {
          double e = a[q] - b[q];
          s0[q] += e * e;
        }
      }
      double* sum = row_dist + (j - i - 1) * kLanes;
      LANES sum[q] = s0[q];
    }
  }
#pragma omp simd
  for (int e = 0; e < pairs * kLanes; e++) {
    double diff_norm = safe_sqrt(dist[e]), sum_norm = safe_sqrt(4.0 - dist[e]);
    pair_angle[e] = 2.0 * atan2_upper(diff_norm, sum_norm);
    pair_sine[e] = 0.5 * diff_norm * sum_norm;
  }
  for (int i = 0, pair = 0; i < n; i++) {
    LANES t[(i * n + i) * kLanes + q] = s[(i * n + i) * kLanes + q] = 0.0;
    for (int j = i + 1; j < n; j++, pair++) LANES {
        t[(i * n + j) * kLanes + q] = t[(j * n + i) * kLanes + q] = pair_angle[pair * kLanes + q];
        s[(i * n + j) * kLanes + q] = s[(j * n + i) * kLanes + q] = pair_sine[pair * kLanes + q];
      }
  }
  // student-teacher angles, then the teacher's pull sum_j (pi - t_ij) v_j and radial sum_j |v_j| sin t_ij
  if (shape.identity) {
    // _identity_teacher_angles: sin^2 t_ij from the other coordinates of u_i
    for (int i = 0; i < n; i++) {
      double total[kLanes] = {0}, rest[kLanes] = {0};
      for (int l = 0; l < d; l++) {
        const double* x = u + (i * d + l) * kLanes;
        LANES total[q] += x[q] * x[q];
      }
      for (int l = 0; l < d; l++) {
        const double* x = u + (i * d + l) * kLanes;
        LANES {
          double square = x[q] * x[q];
          rest[q] += square > 0.5 * total[q] ? 0.0 : square;
        }
      }
      for (int l = 0; l < k; l++) {
        const double* x = u + (i * d + l) * kLanes;
        double* sine = teacher_sine + (i * k + l) * kLanes;
        LANES {
          double square = x[q] * x[q];
          sine[q] = square > 0.5 * total[q] ? rest[q] : std::max(total[q] - square, 0.0);
        }
      }
    }
    for (int i = 0; i < n; i++) {
      double* sine = teacher_sine + i * k * kLanes;
      double* angle = teacher_angle + i * k * kLanes;
      const double* x = u + i * d * kLanes;  // u_ij for j < k
#pragma omp simd
      for (int e = 0; e < k * kLanes; e++) {
        sine[e] = safe_sqrt(sine[e]);
        angle[e] = atan2_upper(sine[e], x[e]);
      }
    }
    for (int i = 0; i < n; i++) {
      double radial[kLanes] = {0};
      for (int l = 0; l < d; l++) {
        double* pull = teacher_pull + (i * d + l) * kLanes;
        const double* angle = teacher_angle + (i * k + l) * kLanes;
        const double* sine = teacher_sine + (i * k + l) * kLanes;
        if (l < k) {
          LANES {
            pull[q] = kPi - angle[q];
            radial[q] += sine[q];
          }
        } else {
          LANES pull[q] = 0.0;
        }
      }
      LANES teacher_radial[i * kLanes + q] = radial[q];
    }
  } else {
    // _angles(u, teacher units) in the difference form; teacher rows are the same in every lane
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < k; j++) {
        double sum[kLanes] = {0};
        const double* v = teacher_units + j * d;
        for (int l = 0; l < d; l++) {
          const double* a = u + (i * d + l) * kLanes;
          const double b = v[l];
          LANES {
            double e = a[q] - b;
            sum[q] += e * e;
          }
        }
        LANES teacher_sine[(i * k + j) * kLanes + q] = sum[q];
      }
    }
#pragma omp simd
    for (int e = 0; e < n * k * kLanes; e++) {
      double diff_norm = safe_sqrt(teacher_sine[e]), sum_norm = safe_sqrt(4.0 - teacher_sine[e]);
      teacher_angle[e] = 2.0 * atan2_upper(diff_norm, sum_norm);
      teacher_sine[e] = 0.5 * diff_norm * sum_norm;
    }
    for (int i = 0; i < n; i++) {
      double radial[kLanes] = {0};
      for (int l = 0; l < d; l++) LANES teacher_pull[(i * d + l) * kLanes + q] = 0.0;
      for (int j = 0; j < k; j++) {
        const double* angle = teacher_angle + (i * k + j) * kLanes;
        const double* sine = teacher_sine + (i * k + j) * kLanes;
        const double norm = teacher_norms[j];
        LANES radial[q] += norm * sine[q];
        for (int l = 0; l < d; l++) {
          double* pull = teacher_pull + (i * d + l) * kLanes;
          const double v = teacher[j * d + l];
          LANES pull[q] += (kPi - angle[q]) * v;
        }
      }
      LANES teacher_radial[i * kLanes + q] = radial[q];
    }
  }
  // _loss_and_grad: grad_i = w_i / 2 + (radial_i u_i + sum_j (pi - t_ij) w_j - pull_i) / 2 pi,
  // F = (W . grad F - B) / 2 + C with B = sum_i (|w_i| teacher_radial_i + w_i . pull_i) / 2 pi
  double student_teacher[kLanes] = {0}, w_dot_grad[kLanes] = {0};
  for (int i = 0; i < n; i++) {
    double radial[kLanes] = {0};
    for (int j = 0; j < n; j++) {
      const double* angle = t + (i * n + j) * kLanes;
      const double* sine = s + (i * n + j) * kLanes;
      const double* norm = norms + j * kLanes;
      double* weight = weights + j * kLanes;
      LANES {
        weight[q] = j == i ? 0.0 : kPi - angle[q];
        radial[q] += norm[q] * sine[q];  // sine is 0 on the diagonal
      }
    }
    LANES radial[q] -= teacher_radial[i * kLanes + q];
    int l = 0;
    // four columns at a time keep the accumulators in registers
    for (; l + 4 <= d; l += 4) {
      double a0[kLanes] = {0}, a1[kLanes] = {0}, a2[kLanes] = {0}, a3[kLanes] = {0};
      for (int j = 0; j < n; j++) {
        const double* x = w + (j * d + l) * kLanes;
        const double* weight = weights + j * kLanes;
        LANES {
          a0[q] += weight[q] * x[q];
          a1[q] += weight[q] * x[kLanes + q];
          a2[q] += weight[q] * x[2 * kLanes + q];
          a3[q] += weight[q] * x[3 * kLanes + q];
        }
      }
      LANES {
        row[l * kLanes + q] = a0[q];
        row[(l + 1) * kLanes + q] = a1[q];
        row[(l + 2) * kLanes + q] = a2[q];
        row[(l + 3) * kLanes + q] = a3[q];
      }
    }
    for (; l < d; l++) {
      double a0[kLanes] = {0};
      for (int j = 0; j < n; j++) {
        const double* x = w + (j * d + l) * kLanes;
        const double* weight = weights + j * kLanes;
        LANES a0[q] += weight[q] * x[q];
      }
      LANES row[l * kLanes + q] = a0[q];
    }
    for (l = 0; l < d; l++) {
      const double* x = w + (i * d + l) * kLanes;
      const double* unit = u + (i * d + l) * kLanes;
      const double* pull = teacher_pull + (i * d + l) * kLanes;
      double* g = row + l * kLanes;
      LANES {
        g[q] = 0.5 * x[q] + (radial[q] * unit[q] + g[q] - pull[q]) / kTwoPi;
        w_dot_grad[q] += x[q] * g[q];
        student_teacher[q] += x[q] * pull[q];
      }
    }
    LANES student_teacher[q] += norms[i * kLanes + q] * teacher_radial[i * kLanes + q];
    for (int q = 0; q < live; q++)
      for (l = 0; l < d; l++) grad[static_cast<int64_t>(q) * n * d + i * d + l] = row[l * kLanes + q];
  }
  for (int q = 0; q < live; q++)
    loss[q] = 0.5 * (w_dot_grad[q] - student_teacher[q] / kTwoPi) + teacher_self_loss;
}

// Blocks of eight runs are handed out in chunks to the caller and to XLA's intra-op threads. Every
// thread takes chunks until none is left, and the caller waits only for chunks already taken, so
// the call finishes even if no scheduled task ever starts; a task that starts late finds nothing
// to do and never touches the buffers (its state is shared, not on the caller's stack).
struct Work {
  Shape shape;
  const double *students, *teacher, *teacher_units, *teacher_norms;
  double teacher_self_loss;
  double *loss, *grad;
  int64_t runs, chunks, runs_per_chunk;
  int lanes;
  std::atomic<int64_t> next{0}, finished{0};

  template <int kLanes>
  void run_blocks(int64_t first, int64_t last, double* scratch) {
    const int64_t size = shape.students * shape.dim;
    for (int64_t r = first; r < last; r += kLanes) {
      int live = static_cast<int>(std::min<int64_t>(kLanes, last - r));
      block<kLanes>(shape, students + r * size, live, teacher, teacher_units, teacher_norms,
                    teacher_self_loss, loss + r, grad + r * size, scratch);
    }
  }

  void run_chunks() {
    thread_local std::vector<double> scratch;
    scratch.resize(scratch_size(shape));
    for (int64_t chunk; (chunk = next.fetch_add(1)) < chunks;) {
      int64_t first = chunk * runs_per_chunk, last = std::min(runs, first + runs_per_chunk);
      if (lanes == 8) run_blocks<8>(first, last, scratch.data());
      else if (lanes == 4) run_blocks<4>(first, last, scratch.data());
      else run_blocks<2>(first, last, scratch.data());
      finished.fetch_add(1, std::memory_order_release);
    }
  }
};

ffi::Error LossAndGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F64> students,
                       ffi::Buffer<ffi::F64> teacher, ffi::ResultBuffer<ffi::F64> loss,
                       ffi::ResultBuffer<ffi::F64> grad, int64_t identity, double teacher_self_loss) {
  auto dims = students.dimensions();
  auto teacher_dims = teacher.dimensions();
  if (dims.size() != 3 || teacher_dims.size() != 2 || teacher_dims[1] != dims[2])
    return ffi::Error::InvalidArgument("students must be (runs, n, d) and the teacher (k, d)");
  auto work = std::make_shared<Work>();
  work->shape = Shape{dims[1], dims[2], teacher_dims[0], identity != 0};
  if (work->shape.identity && work->shape.teachers > work->shape.dim)
    return ffi::Error::InvalidArgument("the identity teacher needs k <= d");
  // relu.py's _units(teacher); the problem refuses zero rows
  const int64_t k = teacher_dims[0], d = dims[2];
  const double* v = teacher.typed_data();
  std::vector<double> teacher_norms(k), teacher_units(k * d);
  for (int64_t j = 0; j < k; j++) {
    double sum = 0;
    for (int64_t l = 0; l < d; l++) sum += v[j * d + l] * v[j * d + l];
    teacher_norms[j] = std::sqrt(sum);
    for (int64_t l = 0; l < d; l++) teacher_units[j * d + l] = v[j * d + l] / teacher_norms[j];
  }
  work->students = students.typed_data();
  work->teacher = teacher.typed_data();
  work->teacher_norms = teacher_norms.data();
  work->teacher_units = teacher_units.data();
  work->teacher_self_loss = teacher_self_loss;
  work->loss = loss->typed_data();
  work->grad = grad->typed_data();
  work->runs = dims[0];
  const int64_t threads = std::max<int64_t>(1, pool.num_threads());
  work->lanes = work->runs >= 8 * threads ? 8 : work->runs >= 4 * threads ? 4 : 2;
  const int64_t blocks = (work->runs + work->lanes - 1) / work->lanes;
  // a few chunks per thread balance uneven progress without many hand-offs
  work->runs_per_chunk = std::max<int64_t>(1, blocks / (4 * threads)) * work->lanes;
  work->chunks = (work->runs + work->runs_per_chunk - 1) / work->runs_per_chunk;
  for (int64_t i = 1; i < std::min(threads, work->chunks); i++) pool.Schedule([work] { work->run_chunks(); });
  work->run_chunks();
  while (work->finished.load(std::memory_order_acquire) < work->chunks) std::this_thread::yield();
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(SpuriousReluLossAndGrad, LossAndGrad,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Attr<int64_t>("identity")
                                  .Attr<double>("teacher_self_loss"));
