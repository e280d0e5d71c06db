/* fit.c: measured kernel times (a kernel CSV) and the calibration fit.
 *
 * The fit minimises the sum over measurements of log(predicted/measured)^2
 * (relative errors: a 2 us norm counts as much as a 20 ms GEMM) with a
 * Nelder-Mead simplex over the logarithms of the constants, from fixed
 * starting points, for a fixed number of iterations: the same data gives
 * the same calibration to the last bit on any machine with IEEE doubles.
 */
#include "calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ===== the CSV ===== */

static const char *const meas_cols[] = {
    "hw_id", "source", "timing", "op",    "kind",        "kernels",    "m",
    "n",     "k",      "flops",  "bytes", "overhead_us", "measured_us"};
#define NCOLS 13

static int cerr(Error *err, const char *path, const char *line, int lineno,
                int off, int len, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static int cerr(Error *err, const char *path, const char *line, int lineno,
                int off, int len, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  err_file(err, path_display(path), "%s", msg);
  if (err) {
    err->line = lineno;
    err->col = off + 1;
  }
  err_context(err, line, off, len, lineno);
  return -1;
}

static int parse_num(const char *s, double lo, double *out) {
  if (!*s)
    return -1;
  char *end;
  double x = strtod(s, &end);
  if (*end || !isfinite(x) || x < lo)
    return -1;
  *out = x;
  return 0;
}

MeasSet *meas_load_text(const char *path, const char *text, size_t len,
                        Error *err) {
  MeasSet *s = xcalloc(1, sizeof(MeasSet));
  arena_init(&s->arena);
  int cap = 64, lineno = 0;
  s->rows = xcalloc((size_t)cap, sizeof(Meas));
  bool header = false;
  const char *p = text, *endt = text + len;
  while (p < endt) {
    const char *nl = memchr(p, '\n', (size_t)(endt - p));
    size_t ll = nl ? (size_t)(nl - p) : (size_t)(endt - p);
    lineno++;
    char *line = arena_strndup(&s->arena, p, ll);
    const char *start = p;
    if (ll && line[ll - 1] == '\r')
      line[--ll] = '\0';
    p = nl ? nl + 1 : endt;
    if (ll == 0 || line[0] == '#')
      continue;
    /* split on commas (no quoting: no field holds a comma) */
    char *f[NCOLS + 1];
    int off[NCOLS + 1], nf = 0;
    char *cur = line;
    for (;;) {
      if (nf <= NCOLS) {
        f[nf] = cur;
        off[nf] = (int)(cur - line);
      }
      nf++;
      char *c = strchr(cur, ',');
      if (!c)
        break;
      *c = '\0';
      cur = c + 1;
    }
    if (nf != NCOLS) {
      cerr(err, path, arena_strndup(&s->arena, start, ll), lineno, 0, (int)ll,
           "%d fields where the format has %d (%s)", nf, NCOLS,
           "hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,"
           "overhead_us,measured_us");
      goto fail;
    }
    const char *raw = arena_strndup(&s->arena, start, ll);
    if (!header) {
      for (int i = 0; i < NCOLS; i++)
        if (strcmp(f[i], meas_cols[i]) != 0) {
          cerr(err, path, raw, lineno, off[i], (int)strlen(f[i]),
               "column %d must be '%s', not '%s'", i + 1, meas_cols[i], f[i]);
          goto fail;
        }
      header = true;
      continue;
    }
    if (s->n == cap) {
      cap *= 2;
      s->rows = xrealloc(s->rows, sizeof(Meas) * (size_t)cap);
    }
    Meas *m = &s->rows[s->n];
    memset(m, 0, sizeof(*m));
    m->line = lineno;
    for (int i = 0; i < 4; i++)
      if (!*f[i] && i != 2) {
        cerr(err, path, raw, lineno, off[i], 1, "%s is empty", meas_cols[i]);
        goto fail;
      }
    m->hw_id = f[0];
    m->source = f[1];
    m->op = f[3];
    if (strcmp(f[2], "kernel") == 0)
      m->wall = false;
    else if (strcmp(f[2], "wall-clock") == 0)
      m->wall = true;
    else {
      cerr(err, path, raw, lineno, off[2], (int)strlen(f[2]) + !*f[2],
           "timing is kernel or wall-clock, not '%s'", f[2]);
      goto fail;
    }
    int k = kernel_kind_find(f[4]);
    if (k < 0) {
      cerr(err, path, raw, lineno, off[4], (int)strlen(f[4]) + !*f[4],
           "unknown kernel kind '%s'", f[4]);
      goto fail;
    }
    m->kind = (KernelKind)k;
    double *num[] = {&m->kernels, &m->m,     &m->n,        &m->k,
                     &m->flops,   &m->bytes, &m->overhead, &m->measured};
    for (int i = 5; i < NCOLS; i++) {
      double lo = i == 5 ? 1 : 0;
      if (parse_num(f[i], lo, num[i - 5]) < 0) {
        cerr(err, path, raw, lineno, off[i], (int)strlen(f[i]) + !*f[i],
             "%s must be a number %s, not '%s'", meas_cols[i],
             lo > 0 ? "of at least 1" : "of at least 0", f[i]);
        goto fail;
      }
    }
    if (!(m->measured > 0)) {
      cerr(err, path, raw, lineno, off[12], (int)strlen(f[12]),
           "measured_us must be positive");
      goto fail;
    }
    if (m->kind == KK_GEMM && (m->m < 1 || m->n < 1 || m->k < 1)) {
      cerr(err, path, raw, lineno, off[6], 1,
           "a gemm row needs its m, n and k (at least 1)");
      goto fail;
    }
    m->overhead *= 1e-6;
    m->measured *= 1e-6;
    s->n++;
  }
  if (!header) {
    err_file(err, path_display(path), "no header line (%s)",
             "hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,"
             "overhead_us,measured_us");
    goto fail;
  }
  return s;
fail:
  meas_free(s);
  return NULL;
}

MeasSet *meas_load(const char *path, Error *err) {
  size_t len;
  char *text = fs_read(path, &len, err);
  if (!text)
    return NULL;
  MeasSet *s = meas_load_text(path, text, len, err);
  free(text);
  return s;
}

void meas_free(MeasSet *s) {
  if (!s)
    return;
  free(s->rows);
  arena_free(&s->arena);
  free(s);
}

/* ===== prediction of a measured row ===== */

/* A wall-clock row's overhead is its sweep's floor, which holds the host's
 * launch and synchronise AND the first kernel's own fixed cost: the host
 * clock cannot tell them apart (DESIGN.md section 12). So a wall-clock row
 * of n kernels adds n - 1 launch costs to its overhead, a kernel-timed row
 * n: wall-clock rows carry no information on the launch cost. And the host
 * clock does not see the GPU's first microseconds: after issuing the launch
 * the host still returns through the framework and calls the synchronise
 * while the kernel runs, so only GPU time beyond that slack (fitted per
 * group of wall-clock rows, the source's timing offset) adds to the floor. */
static double meas_time(const KernelFit *f, const Gpu *g, const Meas *m) {
  double launches = m->wall ? m->kernels - 1 : m->kernels;
  double gpu = launches * f->launch +
         m->kernels * calib_kernel_time(f, m->kind, m->flops, m->bytes, m->m,
                                        m->n, m->k, g->fp16_flops, g);
  if (m->wall)
    gpu = gpu > f->wall_slack ? gpu - f->wall_slack : 0;
  return gpu + m->overhead;
}

double calib_meas_predict(const Calib *c, const Gpu *g, const Meas *m) {
  return meas_time(&c->k[m->kind], g, m);
}

/* ===== the fit ===== */

typedef struct FitCtx {
  const Meas *const *rows;
  int n;
  const Gpu *g;
  bool computes;       /* compute_eff and overlap are fitted */
  bool slack;          /* wall_slack is fitted (3 or more wall-clock rows) */
  double max_slack;    /* s: the smallest overhead of its wall-clock rows */
  double fixed_launch; /* s; >= 0: the launch cost is not fitted */
} FitCtx;

/* x: [log(launch_us),] log(memory_eff)[, log(compute_eff), log(overlap)]
 * [, log(wall_slack_us)]: the launch is absent when fixed, compute_eff and
 * overlap for memory kinds, the slack without wall-clock rows */
static void unpack(const FitCtx *c, const double *x, KernelFit *f) {
  memset(f, 0, sizeof(*f));
  int i = 0;
  f->launch = c->fixed_launch >= 0 ? c->fixed_launch : exp(x[i++]) * 1e-6;
  f->memory_eff = exp(x[i++]);
  f->compute_eff = c->computes ? exp(x[i++]) : 1;
  f->overlap = c->computes ? exp(x[i++]) : 0;
  f->wall_slack = c->slack ? exp(x[i]) * 1e-6 : 0;
}

static double loss(const FitCtx *c, const double *x) {
  KernelFit f;
  unpack(c, x, &f);
  double s = 0;
  for (int i = 0; i < c->n; i++) {
    double e = log(meas_time(&f, c->g, c->rows[i]) / c->rows[i]->measured);
    s += e * e;
  }
  /* efficiencies above 1.2 are not physical, nor an overlap fraction above
   * 1 (less overlap than none), nor a slack longer than the host's whole
   * part of the measurement (the floor): a wall keeps the simplex out */
  if (f.memory_eff > 1.2 || f.compute_eff > 1.2 || f.overlap > 1 ||
      f.wall_slack > c->max_slack)
    s += 1e6;
  return s;
}

/* Nelder-Mead, standard coefficients, fixed iteration count. */
static void simplex(const FitCtx *c, double *x, int dim) {
  double p[6][5], v[6];
  for (int i = 0; i <= dim; i++) {
    for (int j = 0; j < dim; j++)
      p[i][j] = x[j] + (i == j + 1 ? 0.5 : 0);
    v[i] = loss(c, p[i]);
  }
  for (int it = 0; it < 600 * dim; it++) {
    /* order: best first */
    for (int i = 1; i <= dim; i++)
      for (int k = i; k > 0 && v[k] < v[k - 1]; k--) {
        double t = v[k];
        v[k] = v[k - 1];
        v[k - 1] = t;
        for (int j = 0; j < dim; j++) {
          t = p[k][j];
          p[k][j] = p[k - 1][j];
          p[k - 1][j] = t;
        }
      }
    double cen[5] = {0}, xr[5], xe[5], xc[5];
    for (int i = 0; i < dim; i++)
      for (int j = 0; j < dim; j++)
        cen[j] += p[i][j] / dim;
    for (int j = 0; j < dim; j++)
      xr[j] = cen[j] + (cen[j] - p[dim][j]);
    double fr = loss(c, xr);
    if (fr < v[0]) {
      for (int j = 0; j < dim; j++)
        xe[j] = cen[j] + 2 * (cen[j] - p[dim][j]);
      double fe = loss(c, xe);
      memcpy(p[dim], fe < fr ? xe : xr, sizeof(double) * (size_t)dim);
      v[dim] = fe < fr ? fe : fr;
    } else if (fr < v[dim - 1]) {
      memcpy(p[dim], xr, sizeof(double) * (size_t)dim);
      v[dim] = fr;
    } else {
      for (int j = 0; j < dim; j++)
        xc[j] = cen[j] + 0.5 * (p[dim][j] - cen[j]);
      double fc = loss(c, xc);
      if (fc < v[dim]) {
        memcpy(p[dim], xc, sizeof(double) * (size_t)dim);
        v[dim] = fc;
      } else
        for (int i = 1; i <= dim; i++) {
          for (int j = 0; j < dim; j++)
            p[i][j] = p[0][j] + 0.5 * (p[i][j] - p[0][j]);
          v[i] = loss(c, p[i]);
        }
    }
  }
  int best = 0;
  for (int i = 1; i <= dim; i++)
    if (v[i] < v[best])
      best = i;
  memcpy(x, p[best], sizeof(double) * (size_t)dim);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void errors_of(const KernelFit *f, const Gpu *g, const Meas *const *rows,
                      int n, double *median, double *p90) {
  *median = *p90 = 0;
  if (n == 0)
    return;
  double *e = xcalloc((size_t)n, sizeof(double));
  for (int i = 0; i < n; i++)
    e[i] = fabs(meas_time(f, g, rows[i]) / rows[i]->measured - 1);
  qsort(e, (size_t)n, sizeof(double), cmp_double);
  *median = n % 2 ? e[n / 2] : (e[n / 2 - 1] + e[n / 2]) / 2;
  *p90 = e[(int)(0.9 * (n - 1) + 0.5)];
  free(e);
}

void calib_errors(const Calib *c, const Gpu *g, const Meas *const *rows, int n,
                  double *median, double *p90) {
  *median = *p90 = 0;
  if (n == 0)
    return;
  double *e = xcalloc((size_t)n, sizeof(double));
  for (int i = 0; i < n; i++)
    e[i] = fabs(calib_meas_predict(c, g, rows[i]) / rows[i]->measured - 1);
  qsort(e, (size_t)n, sizeof(double), cmp_double);
  *median = n % 2 ? e[n / 2] : (e[n / 2 - 1] + e[n / 2]) / 2;
  *p90 = e[(int)(0.9 * (n - 1) + 0.5)];
  free(e);
}

/* Rows whose timing separates the kernel's own launch cost (kernel
 * timing, or several kernels in one wall-clock measurement). */
static int launch_rows(const Meas *const *rows, int n) {
  int c = 0;
  for (int i = 0; i < n; i++)
    c += !rows[i]->wall;
  return c;
}

/* Fit one group of rows; returns the number fitted. The launch cost is
 * fitted when 3 or more rows are kernel-timed, else fixed at prior (s); the
 * wall slack when 3 or more are wall-clock, else 0. */
static int fit_group(const Meas *const *rows, int n, const Gpu *g,
                     bool computes, double prior, KernelFit *out) {
  FitCtx c = {.rows = rows, .n = n, .g = g, .computes = computes,
              .fixed_launch = launch_rows(rows, n) >= 3 ? -1 : prior};
  c.slack = n - launch_rows(rows, n) >= 3;
  c.max_slack = HUGE_VAL;
  for (int i = 0; i < n; i++)
    if (rows[i]->wall && rows[i]->overhead < c.max_slack)
      c.max_slack = rows[i]->overhead;
  /* launch 3 us, efficiencies 0.7, overlap 0.2, wall slack 5 us */
  double x0[5] = {log(3.0), log(0.7), log(0.7), log(0.2), log(5.0)};
  if (!computes)
    x0[2] = x0[4];
  const double *x = c.fixed_launch >= 0 ? x0 + 1 : x0;
  int dim = (c.fixed_launch >= 0 ? 1 : 2) + 2 * computes + c.slack;
  double xs[5];
  memcpy(xs, x, sizeof(double) * (size_t)dim);
  if (n > 0)
    simplex(&c, xs, dim);
  unpack(&c, xs, out);
  out->rows = n;
  double p90;
  errors_of(out, g, rows, n, &out->median_err, &p90);
  return n;
}

void calib_fit(const Meas *const *rows, int n, const Gpu *g, Calib *out) {
  const Meas **sel = xcalloc((size_t)n + 1, sizeof(Meas *));
  int ns = 0;
  /* the launch prior of kinds measured on the wall clock only: the launch
   * cost fitted on all kernel-timed memory-bound rows, or
   * CALIB_LAUNCH_PRIOR_US when fewer than 3 rows are kernel-timed */
  for (int i = 0; i < n; i++)
    if (!kernel_kind_computes(rows[i]->kind) && !rows[i]->wall)
      sel[ns++] = rows[i];
  KernelFit pooled;
  fit_group(sel, ns, g, false, CALIB_LAUNCH_PRIOR_US * 1e-6, &pooled);
  double prior = pooled.launch;
  /* pooled memory kinds, for kinds without rows */
  ns = 0;
  for (int i = 0; i < n; i++)
    if (!kernel_kind_computes(rows[i]->kind))
      sel[ns++] = rows[i];
  fit_group(sel, ns, g, false, prior, &pooled);
  pooled.from = "all memory-bound kinds pooled (no rows of this kind)";
  /* computing kinds together */
  ns = 0;
  for (int i = 0; i < n; i++)
    if (rows[i]->kind == KK_GEMM || rows[i]->kind == KK_BGEMM)
      sel[ns++] = rows[i];
  fit_group(sel, ns, g, true, prior, &out->k[KK_GEMM]);
  out->k[KK_BGEMM] = out->k[KK_GEMM];
  out->k[KK_BGEMM].from = "gemm (fitted together)";
  out->k[KK_BGEMM].rows = 0;
  ns = 0;
  for (int i = 0; i < n; i++)
    if (rows[i]->kind == KK_ATTENTION)
      sel[ns++] = rows[i];
  if (ns >= 3)
    fit_group(sel, ns, g, true, prior, &out->k[KK_ATTENTION]);
  else {
    out->k[KK_ATTENTION] = out->k[KK_GEMM];
    out->k[KK_ATTENTION].from =
        "gemm (no fused-attention measurements: the GEMM's efficiencies)";
    out->k[KK_ATTENTION].rows = 0;
  }
  for (int k = 0; k < KK_COUNT; k++) {
    if (kernel_kind_computes((KernelKind)k))
      continue;
    ns = 0;
    for (int i = 0; i < n; i++)
      if ((int)rows[i]->kind == k)
        sel[ns++] = rows[i];
    if (ns >= 3)
      fit_group(sel, ns, g, false, prior, &out->k[k]);
    else {
      out->k[k] = pooled;
      out->k[k].rows = 0;
    }
  }
  free(sel);
}

/* ===== writing ===== */

static void jnum(Buf *b, double v) {
  char n[40];
  report_number(v, n, sizeof(n));
  buf_puts(b, n);
}

static void jstr(Buf *b, const char *s) {
  json_t *j = json_string(s);
  char *t = json_dumps(j, JSON_ENCODE_ANY);
  buf_puts(b, t);
  free(t);
  json_decref(j);
}

/* Round to 4 significant digits: the file stays readable, and a re-fit
 * that differs in the last bits of a double writes the same text. */
static double r4(double x) {
  if (x == 0 || !isfinite(x))
    return x;
  char s[40];
  snprintf(s, sizeof(s), "%.4g", x);
  return strtod(s, NULL);
}

char *calib_to_json(const Calib *c, const Gpu *g, const char *data_path,
                    const char *const *sources, int nsources,
                    const Meas *const *rows, int n, const char *residuals) {
  Buf b;
  buf_init(&b);
  buf_puts(&b, "{\n  \"format\": \"lm-predictor-calibration\",\n"
               "  \"hardware\": ");
  jstr(&b, g->id);
  buf_puts(&b, ",\n  \"description\": ");
  jstr(&b, "Calibrated kernel time constants per kernel kind: time = "
           "launches x launch + max(tc, tm) + overlap x min(tc, tm), tc = "
           "flops / (peak x compute_eff x waves), tm = bytes / (bandwidth x "
           "memory_eff); memory-bound kinds tm only (DESIGN.md section 12). Made "
           "by lmcalib --fit; do not edit by hand: change the data and run "
           "make calibration.");
  buf_puts(&b, ",\n  \"made_by\": ");
  Buf cmd;
  buf_init(&cmd);
  buf_printf(&cmd, "lmcalib --fit %s --hardware %s", data_path, g->id);
  jstr(&b, buf_str(&cmd));
  buf_free(&cmd);
  buf_puts(&b, ",\n  \"data\": ");
  jstr(&b, data_path);
  buf_puts(&b, ",\n  \"sources\": [");
  for (int i = 0; i < nsources; i++) {
    buf_puts(&b, i ? ",\n    " : "\n    ");
    jstr(&b, sources[i]);
  }
  buf_puts(&b, "\n  ],\n  \"kernels\": {");
  for (int k = 0; k < KK_COUNT; k++) {
    const KernelFit *f = &c->k[k];
    const Meas **sel = xcalloc((size_t)n + 1, sizeof(Meas *));
    int ns = 0;
    for (int i = 0; i < n; i++)
      if ((int)rows[i]->kind == k)
        sel[ns++] = rows[i];
    double med, p90;
    calib_errors(c, g, sel, ns, &med, &p90);
    free(sel);
    buf_printf(&b, "%s\n    \"%s\": {\"launch_us\": ", k ? "," : "",
               kernel_kind_name[k]);
    /* below a nanosecond is zero (the simplex walks log(launch) down) */
    jnum(&b, f->launch < 1e-9 ? 0 : r4(f->launch * 1e6));
    if (kernel_kind_computes((KernelKind)k)) {
      buf_puts(&b, ", \"compute_eff\": ");
      jnum(&b, r4(f->compute_eff));
      buf_puts(&b, ", \"overlap\": ");
      jnum(&b, r4(f->overlap));
    }
    buf_puts(&b, ", \"memory_eff\": ");
    jnum(&b, r4(f->memory_eff));
    if (ns && f->wall_slack >= 1e-9) {
      buf_puts(&b, ", \"wall_slack_us\": ");
      jnum(&b, r4(f->wall_slack * 1e6));
    }
    buf_printf(&b, ", \"rows\": %d", ns);
    if (ns) {
      buf_puts(&b, ", \"median_abs_error\": ");
      jnum(&b, r4(med));
      buf_puts(&b, ", \"p90_abs_error\": ");
      jnum(&b, r4(p90));
    }
    if (f->from) {
      buf_puts(&b, ", \"from\": ");
      jstr(&b, f->from);
    }
    buf_puts(&b, "}");
  }
  buf_puts(&b, "\n  }");
  if (residuals) {
    buf_puts(&b, ",\n  \"residuals\": ");
    jstr(&b, residuals);
  }
  buf_puts(&b, "\n}\n");
  return buf_steal(&b);
}

char *calib_residuals_csv(const Calib *c, const Gpu *g, const Meas *const *rows,
                          int n) {
  Buf b;
  buf_init(&b);
  buf_printf(&b,
             "# residuals of the %s calibration (lmcalib --fit)\n"
             "line,source,op,kind,m,n,k,measured_us,predicted_us,error\n",
             g->id);
  for (int i = 0; i < n; i++) {
    const Meas *m = rows[i];
    double p = calib_meas_predict(c, g, m);
    buf_printf(&b, "%d,%s,%s,%s,%g,%g,%g,%.4g,%.4g,%.4f\n", m->line, m->source,
               m->op, kernel_kind_name[m->kind], m->m, m->n, m->k,
               m->measured * 1e6, p * 1e6, p / m->measured - 1);
  }
  return buf_steal(&b);
}
