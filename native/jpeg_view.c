/*
 * jpeg_view: one view of a JPEG straight into a batch, off the main thread.
 *
 * renderJpegView(jpeg, out, params, callback) decodes only what the view needs and writes it as
 * planar float32 into `out`:
 *   - DCT-domain scaling: libjpeg decodes at n/8 of full size (n = 1..8), the smallest n whose
 *     image is still at least the view's resized size, so what follows only ever shrinks;
 *   - a partial decode: columns outside the view are cropped (jpeg_crop_scanline, at iMCU
 *     granularity), rows above are skipped (jpeg_skip_scanlines) and decoding stops after the
 *     last row the view reads;
 *   - the resize, mirror and normalisation in one separable pass with PIL's bilinear filter (a
 *     triangle whose support widens when shrinking), the same taps as src/data/pixels.ts.
 *
 * params (Float64Array): [offset, channels, sw, sh, left, top, w, h, flip, scale0, scale1, scale2,
 *   bias0, bias1, bias2]: the image is resized to sw×sh and the w×h window at (left, top) is taken;
 *   out[offset + c*w*h + y*w + x] = value * scale[c] + bias[c], value on the 0–255 scale (0 outside
 *   the image). channels is 1 or 3; a gray JPEG feeding 3 channels is replicated.
 *
 * callback(status, message, dctNumerator): status 0 = written; 1 = not handled here (CMYK/YCCK, or
 *   an RGB JPEG for a 1-channel batch): the caller decodes another way; 2 = libjpeg reported an
 *   error or a warning (corrupt or truncated data), with its message. Nothing is written unless
 *   the status is 0.
 */
#define NAPI_VERSION 6
#include <node_api.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define N_PARAMS 15

typedef float v4 __attribute__((vector_size(16)));

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} ErrorMgr;

static void on_error(j_common_ptr c) {
  ErrorMgr* e = (ErrorMgr*)c->err;
  c->err->format_message(c, e->message);
  longjmp(e->jump, 1);
}

/* Warnings (corrupt or truncated entropy data) count as errors: a damaged file is reported, not
 * decoded into grey. Trace messages (level > 0) are ignored. */
static void on_message(j_common_ptr c, int level) {
  if (level < 0) on_error(c);
}

typedef struct {
  int n;
  int max_taps;
  int* start;   /* first source index of each output, or -1 where the output has no source */
  int* count;
  float* weight; /* n × max_taps */
} Taps;

static void taps_free(Taps* t) {
  free(t->start);
  free(t->count);
  free(t->weight);
}

/* Output o shows resized-image position u = first + o (mirrored when flip); its centre in the
 * source is (u + 0.5) * k. Positions outside [0, scaled_len) get no taps. */
static int taps_build(Taps* t, int n, int first, int flip, int scaled_len, double k, int src_len) {
  double support = k > 1 ? k : 1;
  t->n = n;
  t->max_taps = (int)support * 2 + 3;
  t->start = malloc(sizeof(int) * n);
  t->count = malloc(sizeof(int) * n);
  t->weight = calloc((size_t)n * t->max_taps, sizeof(float));
  if (!t->start || !t->count || !t->weight) return 0;
  for (int o = 0; o < n; o++) {
    int u = first + (flip ? n - 1 - o : o);
    t->start[o] = -1;
    t->count[o] = 0;
    if (u < 0 || u >= scaled_len) continue;
    double centre = (u + 0.5) * k;
    int lo = (int)(centre - support);
    if (lo < 0) lo = 0;
    int hi = (int)(centre + support) + 1;
    if (hi > src_len) hi = src_len;
    double total = 0;
    int first_tap = -1, m = 0;
    float* w = t->weight + (size_t)o * t->max_taps;
    for (int i = lo; i < hi; i++) {
      double d = i + 0.5 - centre;
      double wt = 1 - (d < 0 ? -d : d) / support;
      if (wt <= 1e-6) continue;
      if (first_tap < 0) first_tap = i;
      if (i - first_tap >= t->max_taps) break;
      w[i - first_tap] = (float)wt;
      m = i - first_tap + 1;
      total += wt;
    }
    if (first_tap < 0) {
      /* A sliver at the edge: the nearest pixel. */
      int near = (int)(centre - 0.5 + 0.5);
      if (near >= src_len) near = src_len - 1;
      if (near < 0) near = 0;
      t->start[o] = near;
      t->count[o] = 1;
      w[0] = 1;
      continue;
    }
    t->start[o] = first_tap;
    t->count[o] = m;
    for (int j = 0; j < m; j++) w[j] = (float)(w[j] / total);
  }
  return 1;
}

typedef struct {
  /* inputs */
  const unsigned char* src;
  size_t src_len;
  float* out;
  int channels, sw, sh, left, top, w, h, flip;
  float scale[3], bias[3];
  /* JS references kept alive while the work runs */
  napi_ref src_ref, out_ref, callback_ref;
  napi_async_work work;
  /* resampling taps, on the heap with the job so that they survive a longjmp from libjpeg */
  Taps xt, yt;
  /* result */
  int status;
  int dct_num;
  char message[JMSG_LENGTH_MAX];
} Job;

static void fill_bias(Job* j) {
  size_t plane = (size_t)j->w * j->h;
  for (int c = 0; c < j->channels; c++)
    for (size_t i = 0; i < plane; i++) j->out[c * plane + i] = j->bias[c];
}

/* The resize's two orders. Vertical first when the view reads more rows than it writes (a
 * shrink): each output row blends its source rows across the cropped width (contiguous, so the
 * compiler vectorises it), and the horizontal taps then run on h rows instead of nrows.
 * Horizontal first otherwise (an enlargement): the taps run on the fewer source rows. Both are
 * compiled for AVX2 and for the baseline, chosen at load time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

HOT static void vertical_first(Job* j, const Taps* xt, const Taps* yt, const unsigned char* rows, size_t row_len, int xoff, int ya,
                               int colour, float* vrow) {
  int w = j->w, h = j->h;
  size_t plane = (size_t)w * h;
  for (int oy = 0; oy < h; oy++) {
    int cnt = yt->count[oy];
    if (cnt == 0) {
      for (int c = 0; c < j->channels; c++)
        for (int x = 0; x < w; x++) j->out[c * plane + (size_t)oy * w + x] = j->bias[c];
      continue;
    }
    const float* wt = yt->weight + (size_t)oy * yt->max_taps;
    const unsigned char* r0 = rows + (size_t)(yt->start[oy] - ya) * row_len;
    for (size_t i = 0; i < row_len; i++) vrow[i] = r0[i] * wt[0];
    for (int k = 1; k < cnt; k++) {
      const unsigned char* rk = r0 + (size_t)k * row_len;
      float wk = wt[k];
      for (size_t i = 0; i < row_len; i++) vrow[i] += rk[i] * wk;
    }
    float* d0 = j->out + (size_t)oy * w;
    for (int o = 0; o < w; o++) {
      int n = xt->count[o];
      const float* xw = xt->weight + (size_t)o * xt->max_taps;
      if (colour == 3) {
        /* One 4-lane multiply-add per tap: R, G, B and the next pixel's R (ignored); vrow has
         * one float of slack at its end for the last pixel's fourth lane. */
        v4 acc = {0, 0, 0, 0};
        const float* p = vrow + (size_t)(n ? xt->start[o] - xoff : 0) * 3;
        for (int k = 0; k < n; k++, p += 3) {
          v4 px;
          memcpy(&px, p, sizeof px);
          acc += px * xw[k];
        }
        d0[o] = acc[0] * j->scale[0] + j->bias[0];
        d0[plane + o] = acc[1] * j->scale[1] + j->bias[1];
        d0[2 * plane + o] = acc[2] * j->scale[2] + j->bias[2];
      } else {
        float a = 0;
        const float* p = vrow + (n ? xt->start[o] - xoff : 0);
        for (int k = 0; k < n; k++) a += p[k] * xw[k];
        for (int c = 0; c < j->channels; c++) d0[c * plane + o] = a * j->scale[c] + j->bias[c];
      }
    }
  }
}

HOT static void horizontal_first(Job* j, const Taps* xt_, const Taps* yt_, const unsigned char* rows, size_t row_len, int xoff_, int ya,
                                 int nrows, int colour, float* tmp) {
  const Taps xt = *xt_, yt = *yt_;
  size_t xoff = (size_t)xoff_;
  /* Horizontal pass: tmp is channel-planar, colour × nrows × w. */
  int w = j->w, h = j->h;
  size_t tplane = (size_t)nrows * w;
  for (int r = 0; r < nrows; r++) {
    const unsigned char* src = rows + row_len * r;
    for (int o = 0; o < w; o++) {
      int cnt = xt.count[o];
      const float* wt = xt.weight + (size_t)o * xt.max_taps;
      size_t t = (size_t)r * w + o;
      if (cnt == 0) {
        for (int c = 0; c < colour; c++) tmp[c * tplane + t] = 0;
      } else if (colour == 3) {
        float a = 0, b = 0, g = 0;
        const unsigned char* p = src + (size_t)(xt.start[o] - (int)xoff) * 3;
        for (int k = 0; k < cnt; k++, p += 3) {
          a += p[0] * wt[k];
          b += p[1] * wt[k];
          g += p[2] * wt[k];
        }
        tmp[t] = a;
        tmp[tplane + t] = b;
        tmp[2 * tplane + t] = g;
      } else {
        float a = 0;
        const unsigned char* p = src + (xt.start[o] - (int)xoff);
        for (int k = 0; k < cnt; k++) a += p[k] * wt[k];
        tmp[t] = a;
      }
    }
  }
  /* Vertical pass into the batch, normalised. */
  size_t plane = (size_t)w * h;
  for (int c = 0; c < j->channels; c++) {
    const float* tc = tmp + (colour == 3 ? c : 0) * tplane;
    float s = j->scale[c], bias = j->bias[c];
    for (int oy = 0; oy < h; oy++) {
      float* dst = j->out + c * plane + (size_t)oy * w;
      int cnt = yt.count[oy];
      if (cnt == 0) {
        for (int x = 0; x < w; x++) dst[x] = bias;
        continue;
      }
      const float* wt = yt.weight + (size_t)oy * yt.max_taps;
      const float* r0 = tc + (size_t)(yt.start[oy] - ya) * w;
      for (int x = 0; x < w; x++) dst[x] = r0[x] * wt[0];
      for (int k = 1; k < cnt; k++) {
        const float* rk = r0 + (size_t)k * w;
        float wk = wt[k];
        for (int x = 0; x < w; x++) dst[x] += rk[x] * wk;
      }
      for (int x = 0; x < w; x++) dst[x] = dst[x] * s + bias;
    }
  }
}

static void execute(napi_env env, void* data) {
  (void)env;
  Job* j = (Job*)data;
  struct jpeg_decompress_struct ci;
  ErrorMgr em;
  /* volatile: assigned after setjmp and read after a longjmp */
  unsigned char* volatile rows = NULL;
  float* volatile tmp = NULL;
  Taps* xt = &j->xt;
  Taps* yt = &j->yt;
  memset(&ci, 0, sizeof ci);
  ci.err = jpeg_std_error(&em.pub);
  em.pub.error_exit = on_error;
  em.pub.emit_message = on_message;
  em.message[0] = 0;
  if (setjmp(em.jump)) {
    jpeg_destroy_decompress(&ci);
    free(rows);
    free(tmp);
    taps_free(xt);
    taps_free(yt);
    j->status = 2;
    snprintf(j->message, sizeof j->message, "%s", em.message);
    return;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, j->src, (unsigned long)j->src_len);
  jpeg_read_header(&ci, TRUE);
  int colour;
  if (ci.jpeg_color_space == JCS_GRAYSCALE) {
    ci.out_color_space = JCS_GRAYSCALE;
    colour = 1;
  } else if ((ci.jpeg_color_space == JCS_YCbCr || ci.jpeg_color_space == JCS_RGB) && j->channels == 3) {
    ci.out_color_space = JCS_RGB;
    colour = 3;
  } else {
    jpeg_destroy_decompress(&ci);
    j->status = 1;
    snprintf(j->message, sizeof j->message, "colour space %d for %d channels", (int)ci.jpeg_color_space, j->channels);
    return;
  }
  long W = ci.image_width, H = ci.image_height;
  int n = 8;
  for (int m = 1; m <= 8; m *= 2) {
    if (W * m >= 8L * j->sw && H * m >= 8L * j->sh) {
      n = m;
      break;
    }
  }
  ci.scale_num = n;
  ci.scale_denom = 8;
  j->dct_num = n;
  jpeg_start_decompress(&ci);
  int SW = (int)ci.output_width, SH = (int)ci.output_height;
  if (!taps_build(xt, j->w, j->left, j->flip, j->sw, (double)SW / j->sw, SW) ||
      !taps_build(yt, j->h, j->top, 0, j->sh, (double)SH / j->sh, SH)) {
    snprintf(em.message, sizeof em.message, "out of memory");
    longjmp(em.jump, 1);
  }
  int xa = SW, xb = 0, ya = SH, yb = 0;
  for (int o = 0; o < j->w; o++) {
    if (xt->count[o] == 0) continue;
    if (xt->start[o] < xa) xa = xt->start[o];
    if (xt->start[o] + xt->count[o] > xb) xb = xt->start[o] + xt->count[o];
  }
  for (int o = 0; o < j->h; o++) {
    if (yt->count[o] == 0) continue;
    if (yt->start[o] < ya) ya = yt->start[o];
    if (yt->start[o] + yt->count[o] > yb) yb = yt->start[o] + yt->count[o];
  }
  if (xb <= xa || yb <= ya) {
    /* The window lies wholly outside the image: padding only. */
    jpeg_abort_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    taps_free(xt);
    taps_free(yt);
    fill_bias(j);
    j->status = 0;
    return;
  }
  JDIMENSION xoff = (JDIMENSION)xa, cw = (JDIMENSION)(xb - xa);
  if (xoff > 0 || (int)cw < SW) jpeg_crop_scanline(&ci, &xoff, &cw); /* widens to iMCU bounds */
  int nrows = yb - ya;
  size_t row_len = (size_t)cw * colour;
  rows = malloc(row_len * nrows);
  tmp = malloc(sizeof(float) * (nrows > j->h ? row_len + 1 : (size_t)nrows * j->w * colour));
  if (!rows || !tmp) {
    snprintf(em.message, sizeof em.message, "out of memory");
    longjmp(em.jump, 1);
  }
  if (ya > 0) jpeg_skip_scanlines(&ci, (JDIMENSION)ya);
  for (int r = 0; r < nrows;) {
    JSAMPROW row = rows + row_len * r;
    r += (int)jpeg_read_scanlines(&ci, &row, 1);
  }
  jpeg_abort_decompress(&ci); /* the rows below the view are never decoded */
  jpeg_destroy_decompress(&ci);

  if (nrows > j->h) vertical_first(j, xt, yt, rows, row_len, (int)xoff, ya, colour, tmp);
  else horizontal_first(j, xt, yt, rows, row_len, (int)xoff, ya, nrows, colour, tmp);
  free(rows);
  free(tmp);
  taps_free(xt);
  taps_free(yt);
  j->status = 0;
}

static void complete(napi_env env, napi_status st, void* data) {
  Job* j = (Job*)data;
  napi_value cb, undef, argv[3];
  napi_get_reference_value(env, j->callback_ref, &cb);
  napi_get_undefined(env, &undef);
  int status = st == napi_ok ? j->status : 2;
  napi_create_int32(env, status, &argv[0]);
  napi_create_string_utf8(env, st == napi_ok ? j->message : "cancelled", NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_int32(env, j->dct_num, &argv[2]);
  napi_delete_reference(env, j->src_ref);
  napi_delete_reference(env, j->out_ref);
  napi_delete_reference(env, j->callback_ref);
  napi_delete_async_work(env, j->work);
  free(j);
  napi_call_function(env, undef, cb, 3, argv, NULL);
}

static napi_value throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value render_jpeg_view(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4)
    return throw_type(env, "renderJpegView(jpeg, out, params, callback)");
  napi_typedarray_type type;
  size_t length, byte_offset;
  void* data;
  napi_value ab;
  bool is_ta;
  napi_is_typedarray(env, argv[0], &is_ta);
  if (!is_ta) return throw_type(env, "jpeg: expected a Uint8Array");
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &byte_offset);
  if (type != napi_uint8_array) return throw_type(env, "jpeg: expected a Uint8Array");
  const unsigned char* src = (const unsigned char*)data;
  size_t src_len = length;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_type(env, "out: expected a Float32Array");
  napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &byte_offset);
  if (type != napi_float32_array) return throw_type(env, "out: expected a Float32Array");
  float* out = (float*)data;
  size_t out_len = length;
  napi_is_typedarray(env, argv[2], &is_ta);
  if (!is_ta) return throw_type(env, "params: expected a Float64Array");
  napi_get_typedarray_info(env, argv[2], &type, &length, &data, &ab, &byte_offset);
  if (type != napi_float64_array || length < N_PARAMS) return throw_type(env, "params: expected a Float64Array of 15");
  const double* p = (const double*)data;
  napi_valuetype cbt;
  napi_typeof(env, argv[3], &cbt);
  if (cbt != napi_function) return throw_type(env, "callback: expected a function");

  Job* j = calloc(1, sizeof(Job));
  if (!j) return throw_type(env, "out of memory");
  size_t offset = (size_t)p[0];
  j->channels = (int)p[1];
  j->sw = (int)p[2];
  j->sh = (int)p[3];
  j->left = (int)p[4];
  j->top = (int)p[5];
  j->w = (int)p[6];
  j->h = (int)p[7];
  j->flip = p[8] != 0;
  for (int c = 0; c < 3; c++) {
    j->scale[c] = (float)p[9 + c];
    j->bias[c] = (float)p[12 + c];
  }
  if ((j->channels != 1 && j->channels != 3) || j->sw < 1 || j->sh < 1 || j->w < 1 || j->h < 1 ||
      offset + (size_t)j->channels * j->w * j->h > out_len) {
    free(j);
    return throw_type(env, "params: channels must be 1 or 3, sizes positive, and the view inside out");
  }
  j->src = src;
  j->src_len = src_len;
  j->out = out + offset;
  napi_create_reference(env, argv[0], 1, &j->src_ref);
  napi_create_reference(env, argv[1], 1, &j->out_ref);
  napi_create_reference(env, argv[3], 1, &j->callback_ref);
  napi_value name;
  napi_create_string_utf8(env, "ilsvrc:jpeg-view", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn, version;
  napi_create_function(env, "renderJpegView", NAPI_AUTO_LENGTH, render_jpeg_view, NULL, &fn);
  napi_set_named_property(env, exports, "renderJpegView", fn);
  napi_create_int32(env, JPEG_LIB_VERSION, &version);
  napi_set_named_property(env, exports, "jpegLibVersion", version);
  return exports;
}
