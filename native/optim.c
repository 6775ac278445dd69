/*
 * The optimizer update applied in place to parameter and state Float32Arrays (src/optim/native.ts).
 *
 * The arithmetic is the graph's (src/optim/optimizer.ts applyUpdate), operation by operation in
 * float32 and in the same order — products with float32 constants, variadic Sums added left to
 * right, no fused multiply-add (built with -ffp-contract=off) — so that parameters and state come
 * out bit-identical to the update graph run by ONNX Runtime. ONNX Runtime's sessions flush
 * denormals to zero (session.set_denormal_as_zero), and so does this code while it runs.
 *
 * Also: detach(typedArray) frees an ArrayBuffer's memory now instead of at the next garbage
 * collection (the gradients a step returns), and retainFreedMemory() keeps what a step frees in the
 * C heap for the next step (see there).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* Hyper-parameters of one call, already in the types the graph uses (float32 constants and inputs). */
typedef struct {
  int kind; /* 0 sgd (pytorch), 1 nesterov, 2 sgd (caffe), 3 adamw */
  float lr, momentum, wd;
  int decay; /* weight decay applies (λ > 0, tested in double as the graph builder does) */
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2;
  float *w;
  const float *g;
  float *s0, *s1;
  size_t begin, end;
} Job;

static unsigned flush_denormals(void) {
#if defined(__SSE__)
  unsigned old = _mm_getcsr();
  _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
  return old;
#else
  return 0;
#endif
}

static void restore_denormals(unsigned old) {
#if defined(__SSE__)
  _mm_setcsr(old);
#else
  (void)old;
#endif
}

static void sgd_pytorch(const Job *j) {
  float *restrict w = j->w, *restrict v = j->s0;
  const float *restrict g = j->g;
  const float lr = j->lr, mu = j->momentum, wd = j->wd;
  const int nesterov = j->kind == 1;
  if (!v) {
    /* No momentum: w − (g + w·λ)·lr */
    if (j->decay)
      for (size_t i = j->begin; i < j->end; i++) w[i] = w[i] - (g[i] + w[i] * wd) * lr;
    else
      for (size_t i = j->begin; i < j->end; i++) w[i] = w[i] - g[i] * lr;
    return;
  }
  if (j->decay) {
    for (size_t i = j->begin; i < j->end; i++) {
      const float decay = w[i] * wd;
      const float vn = (v[i] * mu + g[i]) + decay; /* Sum(μv, g, λw) */
      const float dir = nesterov ? (g[i] + decay) + vn * mu : vn;
      v[i] = vn;
      w[i] = w[i] - dir * lr;
    }
  } else {
    for (size_t i = j->begin; i < j->end; i++) {
      const float vn = v[i] * mu + g[i];
      const float dir = nesterov ? g[i] + vn * mu : vn;
      v[i] = vn;
      w[i] = w[i] - dir * lr;
    }
  }
}

static void sgd_caffe(const Job *j) {
  float *restrict w = j->w, *restrict v = j->s0;
  const float *restrict g = j->g;
  const float lr = j->lr, mu = j->momentum, wd = j->wd;
  if (!v) {
    if (j->decay)
      for (size_t i = j->begin; i < j->end; i++) w[i] = w[i] - (g[i] + w[i] * wd) * lr;
    else
      for (size_t i = j->begin; i < j->end; i++) w[i] = w[i] - g[i] * lr;
    return;
  }
  for (size_t i = j->begin; i < j->end; i++) {
    const float gi = j->decay ? g[i] + w[i] * wd : g[i];
    const float vn = v[i] * mu + gi * lr;
    v[i] = vn;
    w[i] = w[i] - vn;
  }
}

static void adamw(const Job *j) {
  float *restrict w = j->w, *restrict m = j->s0, *restrict v = j->s1;
  const float *restrict g = j->g;
  const float lr = j->lr, wd = j->wd, b1 = j->beta1, c1 = j->one_minus_beta1, b2 = j->beta2, c2 = j->one_minus_beta2;
  const float eps = j->eps, bc1 = j->bc1, bc2 = j->bc2;
  for (size_t i = j->begin; i < j->end; i++) {
    const float mn = m[i] * b1 + g[i] * c1;
    const float vn = v[i] * b2 + (g[i] * g[i]) * c2;
    const float denom = sqrtf(vn * bc2) + eps;
    float step = (mn * bc1) / denom;
    if (j->decay) step = step + w[i] * wd;
    m[i] = mn;
    v[i] = vn;
    w[i] = w[i] - step * lr;
  }
}

static void apply(const Job *j) {
  if (j->kind == 3) adamw(j);
  else if (j->kind == 2) sgd_caffe(j);
  else sgd_pytorch(j);
}

static void *run_job(void *arg) {
  const unsigned csr = flush_denormals();
  apply(arg);
  restore_denormals(csr);
  return NULL;
}

/*
 * A fully connected weight W (rows × cols) whose gradient is dYᵀ·X, dY (n × rows), X (n × cols):
 * each row's gradient is summed over the batch (in batch order, float32) into a scratch row and
 * applied at once, so the whole gradient never exists.
 */
typedef struct {
  Job base; /* hyper-parameters and the whole W, s0, s1 */
  const float *dy, *x;
  size_t rows, cols, n, row_begin, row_end;
  int failed;
} OuterJob;

/* Wider vectors where the CPU has them (chosen at load time); still no fused multiply-add. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDE
#endif

/* len columns of row o of dYᵀ·X: grow[i] = Σ_b dy[b, o]·x[b, i] in batch order (x's rows `stride` apart). */
WIDE static void outer_row(float *restrict grow, const float *restrict dy, const float *restrict x, size_t rows, size_t stride, size_t len, size_t n, size_t o) {
  const float d0 = dy[o];
  for (size_t i = 0; i < len; i++) grow[i] = d0 * x[i];
  for (size_t b = 1; b < n; b++) {
    const float d = dy[b * rows + o];
    const float *restrict xb = x + b * stride;
    for (size_t i = 0; i < len; i++) grow[i] = grow[i] + d * xb[i];
  }
}

static void *run_outer(void *arg) {
  OuterJob *j = arg;
  float *grow = malloc(j->cols * sizeof(float));
  if (!grow) {
    j->failed = 1;
    return NULL;
  }
  const unsigned csr = flush_denormals();
  const size_t cols = j->cols;
  /* Row by row: W and its state stream through once; X (n × cols) is re-read from the cache. */
  for (size_t o = j->row_begin; o < j->row_end; o++) {
    outer_row(grow, j->dy, j->x, j->rows, cols, cols, j->n, o);
    Job r = j->base;
    r.w = j->base.w + o * cols;
    r.g = grow;
    r.s0 = j->base.s0 ? j->base.s0 + o * cols : NULL;
    r.s1 = j->base.s1 ? j->base.s1 + o * cols : NULL;
    r.begin = 0;
    r.end = cols;
    apply(&r);
  }
  restore_denormals(csr);
  free(grow);
  return NULL;
}

#define MAX_THREADS 64
/* Below this many elements one thread does it all: a thread's start costs more than the work. */
#define PARALLEL_MIN (1u << 16)
static int threads = 1;

static void run_parallel(const Job *base, size_t n) {
  int t = threads;
  if (n < PARALLEL_MIN || t < 2) t = 1;
  Job jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  /* Chunks of whole cache lines (16 floats) so no two threads write the same line. */
  const size_t per = ((n + (size_t)t - 1) / (size_t)t + 15) & ~(size_t)15;
  for (int k = 0; k < t; k++) {
    jobs[k] = *base;
    jobs[k].begin = per * (size_t)k < n ? per * (size_t)k : n;
    jobs[k].end = per * (size_t)(k + 1) < n ? per * (size_t)(k + 1) : n;
  }
  for (int k = 1; k < t; k++) started[k] = pthread_create(&ids[k], NULL, run_job, &jobs[k]) == 0;
  run_job(&jobs[0]);
  for (int k = 1; k < t; k++) {
    if (started[k]) pthread_join(ids[k], NULL);
    else run_job(&jobs[k]); /* no thread to spare: do that chunk here */
  }
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Rows split between the threads; returns 0 when a scratch row could not be allocated. */
static int run_outer_parallel(const OuterJob *base) {
  int t = threads;
  if (base->rows * base->cols < PARALLEL_MIN || t < 2) t = 1;
  if ((size_t)t > base->rows) t = (int)base->rows;
  OuterJob jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  const size_t per = (base->rows + (size_t)t - 1) / (size_t)t;
  for (int k = 0; k < t; k++) {
    jobs[k] = *base;
    jobs[k].row_begin = per * (size_t)k < base->rows ? per * (size_t)k : base->rows;
    jobs[k].row_end = per * (size_t)(k + 1) < base->rows ? per * (size_t)(k + 1) : base->rows;
  }
  for (int k = 1; k < t; k++) started[k] = pthread_create(&ids[k], NULL, run_outer, &jobs[k]) == 0;
  run_outer(&jobs[0]);
  int ok = !jobs[0].failed;
  for (int k = 1; k < t; k++) {
    if (started[k]) pthread_join(ids[k], NULL);
    else run_outer(&jobs[k]);
    ok = ok && !jobs[k].failed;
  }
  return ok;
}

/* A Float32Array argument's data and length; null/undefined gives NULL when allowed. */
static int f32(napi_env env, napi_value v, float **data, size_t *len, int nullable) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (nullable && (t == napi_null || t == napi_undefined)) {
    *data = NULL;
    *len = 0;
    return 1;
  }
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_float32_array) return 0;
  *data = p;
  return 1;
}

static int job(napi_env env, napi_value hyper, int32_t kind, float *w, float *g, float *s0, float *s1, size_t n, Job *out);

/*
 * update(kind, w, g, s0, s1, hyper): kind 0 SGD, 1 Nesterov, 2 SGD (Caffe), 3 AdamW; s0/s1 the
 * state arrays (null where the optimizer keeps none); hyper a Float64Array of lr, momentum, weight
 * decay, beta1, 1 − beta1, beta2, 1 − beta2, eps, bias correction 1, bias correction 2.
 */
static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 6) return throw_type(env, "update(kind, w, g, s0, s1, hyper) takes 6 arguments");
  int32_t kind;
  if (napi_get_value_int32(env, argv[0], &kind) != napi_ok || kind < 0 || kind > 3) return throw_type(env, "kind must be 0..3");
  float *w, *g, *s0, *s1;
  size_t nw, ng, n0, n1;
  if (!f32(env, argv[1], &w, &nw, 0) || !f32(env, argv[2], &g, &ng, 0)) return throw_type(env, "w and g must be Float32Arrays");
  if (!f32(env, argv[3], &s0, &n0, 1) || !f32(env, argv[4], &s1, &n1, 1)) return throw_type(env, "s0 and s1 must be Float32Arrays or null");
  if (ng != nw || (s0 && n0 != nw) || (s1 && n1 != nw)) return throw_type(env, "w, g and the state arrays must have one length");
  if (kind == 3 && (!s0 || !s1)) return throw_type(env, "AdamW needs both moment arrays");
  Job j;
  if (!job(env, argv[5], kind, w, g, s0, s1, nw, &j)) return throw_type(env, "hyper must be a Float64Array of 10 values");
  run_parallel(&j, nw);
  return NULL;
}

/* The hyper-parameter array into a Job over the whole of w (0 when it is not 10 float64 values). */
static int job(napi_env env, napi_value hyper, int32_t kind, float *w, float *g, float *s0, float *s1, size_t n, Job *out) {
  bool is;
  napi_typedarray_type type;
  size_t nh;
  void *hp;
  if (napi_is_typedarray(env, hyper, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, hyper, &type, &nh, &hp, NULL, NULL) != napi_ok || type != napi_float64_array || nh != 10)
    return 0;
  const double *h = hp;
  Job j = {
      .kind = kind,
      .lr = (float)h[0],
      .momentum = (float)h[1],
      .wd = (float)h[2],
      .decay = h[2] > 0,
      .beta1 = (float)h[3],
      .one_minus_beta1 = (float)h[4],
      .beta2 = (float)h[5],
      .one_minus_beta2 = (float)h[6],
      .eps = (float)h[7],
      .bc1 = (float)h[8],
      .bc2 = (float)h[9],
      .w = w,
      .g = g,
      .s0 = s0,
      .s1 = s1,
      .begin = 0,
      .end = n,
  };
  *out = j;
  return 1;
}

/*
 * updateOuter(kind, w, dy, x, s0, s1, hyper): as update, for a fully connected weight w (rows ×
 * cols) whose gradient is dyᵀ·x, dy (n × rows) and x (n × cols) being the layer's output gradient
 * and input over the batch.
 */
static napi_value update_outer(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) return throw_type(env, "updateOuter(kind, w, dy, x, s0, s1, hyper) takes 7 arguments");
  int32_t kind;
  if (napi_get_value_int32(env, argv[0], &kind) != napi_ok || kind < 0 || kind > 3) return throw_type(env, "kind must be 0..3");
  float *w, *dy, *x, *s0, *s1;
  size_t nw, ndy, nx, n0, n1;
  if (!f32(env, argv[1], &w, &nw, 0) || !f32(env, argv[2], &dy, &ndy, 0) || !f32(env, argv[3], &x, &nx, 0))
    return throw_type(env, "w, dy and x must be Float32Arrays");
  if (!f32(env, argv[4], &s0, &n0, 1) || !f32(env, argv[5], &s1, &n1, 1)) return throw_type(env, "s0 and s1 must be Float32Arrays or null");
  if ((s0 && n0 != nw) || (s1 && n1 != nw)) return throw_type(env, "the state arrays must have w's length");
  if (kind == 3 && (!s0 || !s1)) return throw_type(env, "AdamW needs both moment arrays");
  /* n × rows = |dy|, n × cols = |x|, rows × cols = |w|: n = sqrt(|dy|·|x| / |w|). */
  if (nw == 0 || ndy == 0 || nx == 0) return throw_type(env, "w, dy and x must not be empty");
  size_t n = 1;
  while (n <= ndy && !(ndy % n == 0 && nx % n == 0 && (ndy / n) * (nx / n) == nw)) n++;
  if (n > ndy) return throw_type(env, "dy (n × rows) and x (n × cols) do not match w (rows × cols)");
  OuterJob j = {.dy = dy, .x = x, .rows = ndy / n, .cols = nx / n, .n = n, .row_begin = 0, .row_end = ndy / n, .failed = 0};
  if (!job(env, argv[6], kind, w, NULL, s0, s1, nw, &j.base)) return throw_type(env, "hyper must be a Float64Array of 10 values");
  if (!run_outer_parallel(&j)) {
    napi_throw_error(env, NULL, "updateOuter: out of memory for a scratch row");
    return NULL;
  }
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t n;
  if (argc != 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) return throw_type(env, "setThreads takes a positive integer");
  threads = n > MAX_THREADS ? MAX_THREADS : n;
  return NULL;
}

/* Frees a typed array's ArrayBuffer now; the array reads as empty afterwards. */
static napi_value detach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], buffer;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is;
  if (argc != 1 || napi_is_typedarray(env, argv[0], &is) != napi_ok || !is) return throw_type(env, "detach takes a typed array");
  napi_get_typedarray_info(env, argv[0], NULL, NULL, NULL, &buffer, NULL);
  bool ok = napi_detach_arraybuffer(env, buffer) == napi_ok;
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

/*
 * Freed blocks stay in the C heap for the next step instead of going back to the system: no block
 * gets a mapping of its own (M_MMAP_MAX 0) and the heap's top is not given back (M_TRIM_THRESHOLD).
 * A step frees and allocates the same sizes again, and on a virtual machine every page faulted
 * back in is expensive (VGG-A batch 8 ran at half speed returning them). glibc only.
 */
static napi_value retain_freed_memory(napi_env env, napi_callback_info info) {
  int ok = 0;
#if defined(__GLIBC__)
  ok = mallopt(M_MMAP_MAX, 0) && mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
  napi_value r;
  napi_get_boolean(env, ok != 0, &r);
  return r;
}

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"update", update}, {"updateOuter", update_outer}, {"setThreads", set_threads}, {"detach", detach}, {"retainFreedMemory", retain_freed_memory}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
