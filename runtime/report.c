/* report.c: evaluated plans -> a table, JSON or CSV.
 *
 * Rows are per ONE instance (count says how many the model has); totals
 * sum count x value. bytes = weight + act read + act write + KV read + KV
 * write; arithmetic intensity = flops / bytes (null in JSON when bytes is
 * 0). Numbers in JSON and CSV are exact integers when they are integers
 * below 2^53, otherwise the shortest decimal that reads back to the same
 * double; the table rounds to three significant digits with SI prefixes.
 */
#include "calib.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- report_number without printf (a sweep prints millions) ----
 *
 * The spec is the loop at the end of report_number: the first of %.15g,
 * %.16g, %.17g that strtod reads back to v. For 1e-4 <= |v| < 1e15 that
 * is computed here exactly in 128-bit integers: |v| = m * 2^e (m < 2^53,
 * e < 0), so N = m * 10^k / 2^-e is |v| * 10^k with its remainder exact;
 * k makes the quotient Q a 17-digit integer. A d-digit rounding of v is Q
 * without its last 17 - d digits, rounded to nearest with ties to even
 * (glibc's printf on an exact tie) using the exact remainder; it reads
 * back to v iff it lies inside v's rounding interval (half an ulp each
 * side, half that below a power of two; ends included when m is even,
 * strtod's ties to even), all compared at the common scale 4 * 10^k *
 * 2^-e. The digits are then laid out as %g does for that precision. Any
 * other value takes the printf path; test_report checks both against
 * printf and strtod on millions of values. */
typedef unsigned __int128 U128;

static U128 pow10_u128(int n) {
  U128 p = 1;
  while (n-- > 0)
    p *= 10;
  return p;
}

static char *put_uint(char *o, unsigned long long x) {
  char t[24];
  int n = 0;
  do {
    t[n++] = (char)('0' + x % 10);
    x /= 10;
  } while (x);
  while (n)
    *o++ = t[--n];
  return o;
}

static bool fast_number(double v, char *out, size_t outsz) {
  static U128 p10[21];
  static bool init;
  if (!init) { /* idempotent: racing threads write the same values */
    for (int i = 0; i <= 20; i++)
      p10[i] = pow10_u128(i);
    init = true;
  }
  double a = v < 0 ? -v : v;
  if (outsz < 32 || !(a >= 1e-4 && a < 1e15))
    return false;
  uint64_t bits;
  memcpy(&bits, &a, sizeof(bits));
  uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
  int e = (int)((bits >> 52) & 0x7ff) - 1075;
  if (e >= 0)
    return false; /* an integer (not here: report_number took those) */
  int sh = -e;
  int X = (int)floor((e + 52) * 0.30102999566398120); /* ~log10(a) */
  U128 num = 0, Q = 0;
  for (int tries = 0;; tries++) {
    int k = 16 - X;
    if (tries > 3 || k < 0 || k > 20)
      return false;
    num = (U128)m * p10[k];
    Q = num >> sh;
    if (Q < p10[16])
      X--;
    else if (Q >= p10[17])
      X++;
    else
      break;
  }
  int k = 16 - X;
  U128 R = num & ((((U128)1) << sh) - 1);
  U128 v4 = num * 4, hhi = 2 * p10[k],
       hlo = m == (1ULL << 52) ? p10[k] : 2 * p10[k];
  bool even = (m & 1) == 0;
  uint64_t q17 = (uint64_t)Q; /* below 10^17 */
  for (int d = 15; d <= 17; d++) {
    int j = 17 - d;
    U128 p = p10[j];
    uint64_t D = j == 2 ? q17 / 100 : j == 1 ? q17 / 10 : q17,
             Qm = q17 - D * (uint64_t)p;
    U128 rest2 = (((U128)Qm << sh) + R) * 2, half = p << sh;
    if (rest2 > half || (rest2 == half && (D & 1)))
      D++;
    U128 c4 = (((U128)D * p) << sh) * 4;
    bool ok = (c4 > v4 - hlo || (even && c4 == v4 - hlo)) &&
              (c4 < v4 + hhi || (even && c4 == v4 + hhi));
    if (!ok && d < 17)
      continue;
    int Xd = X;
    if (D == p10[d]) { /* rounded up to the next power of ten */
      D = p10[d - 1];
      Xd++;
    }
    if (Xd >= d)
      return false; /* %g would switch to an exponent */
    char dig[24];
    char *q = put_uint(dig, (unsigned long long)D);
    int nd = (int)(q - dig); /* d */
    while (nd > 0 && dig[nd - 1] == '0' && nd > Xd + 1)
      nd--; /* trailing zeros of the fraction */
    char *o = out;
    if (v < 0)
      *o++ = '-';
    if (Xd >= 0) {
      for (int i = 0; i <= Xd; i++)
        *o++ = i < nd ? dig[i] : '0';
      if (nd > Xd + 1) {
        *o++ = '.';
        for (int i = Xd + 1; i < nd; i++)
          *o++ = dig[i];
      }
    } else {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -Xd - 1; i++)
        *o++ = '0';
      for (int i = 0; i < nd; i++)
        *o++ = dig[i];
    }
    *o = 0;
    return true;
  }
  return false;
}

void report_number(double v, char *out, size_t outsz) {
  if (!isfinite(v)) {
    snprintf(out, outsz, "null");
    return;
  }
  if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
      v == (double)(long long)v) {
    long long i = (long long)v;
    if (outsz >= 24) { /* "%lld" */
      char *o = out;
      if (i < 0)
        *o++ = '-';
      *put_uint(o, i < 0 ? 0ULL - (unsigned long long)i
                         : (unsigned long long)i) = 0;
    } else {
      snprintf(out, outsz, "%lld", i);
    }
    return;
  }
  if (fast_number(v, out, outsz))
    return;
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, outsz, "%.*g", prec, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

/* "%.*f" of x with 0 to 2 decimals, without printf (a table formats a few
 * hundred cells, each once through snprintf cost 1 to 2 thousand
 * instructions): |x| = m * 2^e exactly, so N = m * 10^dec is |x| * 10^dec
 * times 2^-e, its quotient Q the digits and its remainder exact; Q is
 * rounded to nearest, ties to even, as glibc's printf rounds an exact tie.
 * Returns the end of what it wrote, or NULL (nothing written) for what it
 * leaves to printf: a subnormal, |x| >= 2^53, an exponent past the 128
 * bits, a buffer under 32 bytes. test_report checks it against snprintf. */
static char *fixed_number(double x, int dec, char *out, size_t outsz) {
  static const uint64_t p10[] = {1, 10, 100};
  double a = x < 0 ? -x : x;
  if (outsz < 32 || dec < 0 || dec > 2 || !(a < 9007199254740992.0))
    return NULL;
  uint64_t bits;
  memcpy(&bits, &a, sizeof(bits));
  int be = (int)((bits >> 52) & 0x7ff);
  if (be == 0)
    return NULL; /* zero, subnormal */
  uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
  int e = be - 1075;
  uint64_t q;
  if (e >= 0) {
    q = (m << e) * p10[dec]; /* below 2^53 * 100 */
  } else {
    int sh = -e;
    if (sh > 120)
      return NULL;
    U128 n = (U128)m * p10[dec];
    U128 r = n & ((((U128)1) << sh) - 1), half = ((U128)1) << (sh - 1);
    q = (uint64_t)(n >> sh);
    if (r > half || (r == half && (q & 1)))
      q++;
  }
  char *o = out;
  if (x < 0)
    *o++ = '-';
  o = put_uint(o, q / p10[dec]);
  if (dec) {
    uint64_t f = q % p10[dec];
    *o++ = '.';
    if (dec == 2)
      *o++ = (char)('0' + f / 10);
    *o++ = (char)('0' + f % 10);
  }
  *o = 0;
  return o;
}

/* "%.*f %s%s" (or "%.*f" with no prefix and unit), through fixed_number */
static void fixed_unit(double x, int dec, const char *pre, const char *unit,
                       char *out, size_t outsz) {
  char *o = fixed_number(x, dec, out, outsz);
  size_t lp = strlen(pre), lu = strlen(unit);
  if (!o || (size_t)(o - out) + 1 + lp + lu >= outsz) {
    if (!*pre && !*unit)
      snprintf(out, outsz, "%.*f", dec, x);
    else
      snprintf(out, outsz, "%.*f %s%s", dec, x, pre, unit);
    return;
  }
  if (!*pre && !*unit)
    return;
  *o++ = ' ';
  memcpy(o, pre, lp);
  memcpy(o + lp, unit, lu + 1);
}

void si_format(double v, const char *unit, char *out, size_t outsz) {
  static const char *prefix[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
  if (v == 0) {
    snprintf(out, outsz, "0");
    return;
  }
  if (!isfinite(v)) {
    snprintf(out, outsz, "-");
    return;
  }
  int p = 0;
  double x = v;
  while (fabs(x) >= 999.5 && p < 8) {
    x /= 1000;
    p++;
  }
  if (fabs(x) >= 999.5) { /* past Y (1e27 and more): a short exponent */
    snprintf(out, outsz, "%.2e%s%s", v, unit[0] ? " " : "", unit);
    return;
  }
  int decimals = fabs(x) < 9.995 ? 2 : fabs(x) < 99.95 ? 1 : 0;
  fixed_unit(x, decimals, prefix[p], unit, out, outsz);
}

void time_format(double s, char *out, size_t n) {
  if (s == 0) {
    snprintf(out, n, "0");
    return;
  }
  static const struct {
    double scale;
    const char *unit;
  } u[] = {{1e-9, "ns"}, {1e-6, "us"}, {1e-3, "ms"}, {1, "s"}};
  int k = 0;
  while (k < 3 && s >= u[k + 1].scale * 0.9995)
    k++;
  double x = s / u[k].scale;
  int decimals = x < 9.995 ? 2 : x < 99.95 ? 1 : 0;
  fixed_unit(x, decimals, "", u[k].unit, out, n);
}

static const char *bound_name(Bound b) {
  return b == BOUND_COMPUTE ? "compute" : "memory";
}

static double intensity(double flops, double bytes) {
  if (bytes == 0)
    return flops == 0 ? 0 : INFINITY;
  return flops / bytes;
}

/* Sum count x value over the phase's rows. */
static void phase_totals(const PhaseResult *ph, double *tot) {
  for (int k = 0; k < M_TRAFFIC; k++)
    tot[k] = 0;
  for (int r = 0; r < ph->plan->nrows; r++)
    for (int k = 0; k < M_TRAFFIC; k++)
      tot[k] += ph->plan->rows[r].count * ph->vals->row[r][k];
}

#define CELL_W 9

/* Communication rows after row k: the collectives that follow it, and the
 * pipeline send after the repeated block. Their traffic is bytes over the
 * interconnect (no FLOPs, no HBM metrics); "bound" is "network". In JSON a
 * calibrated row names the measured kernel its time is from
 * ("collective_kernel": "nccl", "vllm_custom"; absent: the bound). */
static void comm_one(const char *phase, const char *path, const char *op,
                     const char *group, double count, double bytes, double time,
                     double roof, bool calibrated, const char *kernel, Buf *b,
                     Format fmt, int w) {
  char n1[64], n2[64], n3[64], n4[64];
  report_number(count, n1, sizeof(n1));
  report_number(bytes, n2, sizeof(n2));
  report_number(time, n3, sizeof(n3));
  report_number(roof, n4, sizeof(n4));
  if (fmt == FMT_JSON) {
    buf_printf(b, ",\n        {\"path\": \"%s\", \"op\": \"%s\", \"module\": "
                  "\"comm.%s\", \"count\": %s, \"group\": \"%s\", "
                  "\"comm_bytes\": %s, \"bound\": \"network\", \"time_s\": %s",
               path, op, op, n1, group, n2, n3);
    if (calibrated) /* the datasheet bound */
      buf_printf(b, ", \"roofline_time_s\": %s", n4);
    if (calibrated && kernel)
      buf_printf(b, ", \"collective_kernel\": \"%s\"", kernel);
    buf_putc(b, '}');
  } else if (fmt == FMT_CSV) {
    buf_printf(b, "%s,%s,%s,comm.%s,%s", phase, path, op, op, n1);
    for (int m = 0; m < M_TRAFFIC; m++)
      buf_puts(b, ",0");
    buf_printf(b, ",%s,,network,interconnect,%s", n2, n3);
    if (calibrated)
      buf_printf(b, ",%s,comm.%s", n4, op);
    buf_putc(b, '\n');
  } else if (fmt == FMT_MARKDOWN) {
    char by[32], t[32], rt[32];
    si_format(bytes, "B", by, sizeof(by));
    time_format(time, t, sizeof(t));
    time_format(roof, rt, sizeof(rt));
    buf_printf(b, "| %s | %g |", path, count);
    for (int k = 0; k < M_TRAFFIC; k++)
      buf_puts(b, " |");
    buf_printf(b, " %s |  | network | %s |", by, t);
    if (calibrated)
      buf_printf(b, " %s |", rt);
    buf_putc(b, '\n');
  } else {
    char cnt[32], by[32], t[32], rt[32];
    snprintf(cnt, sizeof(cnt), "%g", count);
    si_format(bytes, "B", by, sizeof(by));
    time_format(time, t, sizeof(t));
    time_format(roof, rt, sizeof(rt));
    buf_printf(b, "%-*s %6s", w, path, cnt);
    for (int k = 0; k < M_TRAFFIC; k++)
      buf_printf(b, " %*s", CELL_W, "");
    buf_printf(b, " %*s %7s %-7s %9s", CELL_W, by, "", "network", t);
    if (calibrated)
      buf_printf(b, " %9s", rt);
    buf_putc(b, '\n');
  }
}

static void comm_rows(const PhaseResult *ph, int k, Buf *b, Format fmt, int w) {
  for (int c = 0; c < ph->ncomm; c++)
    if (ph->comm[c].after == k)
      comm_one(ph->name, ph->comm[c].path, coll_name[ph->comm[c].kind],
               group_name[ph->comm[c].group], ph->comm[c].count,
               ph->comm_bytes[c], ph->comm_time[c], ph->comm_roof[c],
               ph->pred != NULL, ph->comm_kernel[c], b, fmt, w);
  if (ph->sends > 0 && ph->send_after == k)
    comm_one(ph->name, "pipeline.send", "send", "pp", ph->sends, ph->send_bytes,
             ph->send_time, ph->send_time_roof, ph->pred != NULL, NULL, b, fmt,
             w);
}

/* ---------------------------------------------------------------- JSON */

void report_json_string(Buf *b, const char *s) {
  buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      buf_printf(b, "\\%c", *p);
    else if (*p < 0x20)
      buf_printf(b, "\\u%04x", *p);
    else
      buf_putc(b, (char)*p);
  }
  buf_putc(b, '"');
}

static void jnum(Buf *b, double v) {
  char n[64];
  report_number(v, n, sizeof(n));
  buf_puts(b, n);
}

/* ", "key": number" and ", "key": "string"" (null for NULL). */
static void jfnum(Buf *b, const char *key, double v) {
  buf_printf(b, ", \"%s\": ", key);
  jnum(b, v);
}

static void jfstr(Buf *b, const char *key, const char *s) {
  buf_printf(b, ", \"%s\": ", key);
  if (s)
    report_json_string(b, s);
  else
    buf_puts(b, "null");
}

static void jmetrics(Buf *b, const double *v) {
  for (int k = 0; k < M_TRAFFIC; k++)
    jfnum(b, metric_name[k], v[k]);
  double bytes = metric_bytes(v);
  jfnum(b, "bytes", bytes);
  jfnum(b, "arithmetic_intensity", intensity(v[M_FLOPS], bytes));
}

static void render_json(const Report *r, Buf *b) {
  buf_puts(b, "{\n  \"model\": ");
  report_json_string(b, r->model);
  if (r->family) {
    buf_puts(b, ",\n  \"family\": ");
    report_json_string(b, r->family);
    buf_puts(b, ",\n  \"parameters\": {\"total\": ");
    jnum(b, r->parameters);
    buf_puts(b, ", \"active\": ");
    jnum(b, r->active);
    buf_putc(b, '}');
    if (r->quant && r->quant->method) {
      buf_puts(b, ",\n  \"quantization\": {\"method\": ");
      report_json_string(b, r->quant->method);
      buf_puts(b, ", \"modelled\": ");
      buf_puts(b, r->quant->known ? "true" : "false");
      buf_puts(b, ", \"weight_bits\": ");
      jnum(b, r->quant->w_bits > 0 ? r->quant->w_bits : 0);
      buf_puts(b, ", \"expert_bits\": ");
      jnum(b, r->quant->x_bits > 0 ? r->quant->x_bits : 0);
      if (!r->quant->known && r->quant->why) {
        buf_puts(b, ", \"why\": ");
        report_json_string(b, r->quant->why);
      }
      buf_putc(b, '}');
    }
    if (r->note) {
      buf_puts(b, ",\n  \"note\": ");
      report_json_string(b, r->note);
    }
  }
  buf_puts(b, ",\n  \"batch_size\": ");
  jnum(b, r->batch);
  buf_puts(b, ",\n  \"seq_len\": ");
  jnum(b, r->seq_len);
  buf_printf(b, ",\n  \"w_bits\": %d,\n  \"a_bits\": %d,\n  \"kv_bits\": %d",
             r->w_bits, r->a_bits, r->kv_bits);
  buf_puts(b, ",\n  \"attention\": ");
  report_json_string(b, r->attention);
  if (r->gpu) {
    buf_puts(b, ",\n  \"hardware\": {\"id\": ");
    report_json_string(b, r->gpu->id);
    jfstr(b, "name", r->gpu->name);
    const char *pname;
    double pw = roof_weight_peak(&r->peaks, &pname);
    jfnum(b, "peak_flops", pw);
    jfstr(b, "peak", pname);
    jfnum(b, "peak_16bit_flops", r->peaks.p16);
    jfnum(b, "peak_8bit_flops", r->peaks.p8);
    jfstr(b, "peak_8bit", r->peaks.p8_name);
    if (r->peaks.p6 > 0) /* Blackwell only: other GPUs' output unchanged */
      jfnum(b, "peak_fp6_flops", r->peaks.p6);
    if (r->peaks.p4 > 0)
      jfnum(b, "peak_fp4_flops", r->peaks.p4);
    jfnum(b, "bandwidth_bytes_per_s", r->gpu->bandwidth);
    jfnum(b, "memory_bytes", r->gpu->memory);
    jfnum(b, "sram_bytes_per_sm", r->gpu->smem_per_sm);
    buf_putc(b, '}');
  }
  buf_puts(b, ",\n  \"phases\": [");
  for (int i = 0; i < r->nphases; i++) {
    const PhaseResult *ph = &r->phases[i];
    buf_puts(b, i ? ",\n    {\n      \"phase\": " : "\n    {\n      \"phase\": ");
    report_json_string(b, ph->name);
    buf_puts(b, ",\n      \"tokens\": ");
    jnum(b, ph->tokens);
    buf_puts(b, ",\n      \"kv_len\": ");
    jnum(b, ph->kv_len);
    buf_puts(b, ",\n      \"ops\": [");
    bool first = true;
    for (int k = 0; k < ph->plan->nrows; k++) {
      const Row *row = &ph->plan->rows[k];
      if (ph->vals->off && ph->vals->off[k])
        continue; /* runs in the other phase */
      buf_puts(b, !first ? ",\n        {\"path\": " : "\n        {\"path\": ");
      first = false;
      report_json_string(b, row->path);
      buf_puts(b, ", \"op\": ");
      report_json_string(b, row->op);
      buf_puts(b, ", \"module\": ");
      report_json_string(b, row->module);
      buf_puts(b, ", \"count\": ");
      jnum(b, row->count);
      jmetrics(b, ph->vals->row[k]);
      if (ph->time) {
        buf_printf(b, ", \"bound\": \"%s\", \"peak\": \"%s\", \"time_s\": ",
                   bound_name(ph->bound[k]), ph->peak[k]);
        jnum(b, ph->pred ? ph->pred[k] : ph->time[k]);
        if (ph->pred) {
          jfnum(b, "roofline_time_s", ph->time[k]);
          jfstr(b, "kernel", ph->kernel[k]);
        }
      }
      buf_putc(b, '}');
      comm_rows(ph, k, b, FMT_JSON, 0);
    }
    buf_puts(b, "\n      ],\n      \"totals\": {");
    double tot[M_TRAFFIC];
    phase_totals(ph, tot);
    Buf t;
    buf_init(&t);
    jmetrics(&t, tot);
    buf_puts(b, buf_str(&t) + 2); /* drop the leading ", " */
    buf_free(&t);
    if (ph->time) {
      buf_puts(b, ", \"time_s\": ");
      jnum(b, ph->latency);
      if (ph->pred)
        jfnum(b, "roofline_time_s", ph->latency_roofline);
    }
    buf_puts(b, "}\n    }");
  }
  buf_puts(b, "\n  ]");
  if (r->summary) {
    const Summary *s = r->summary;
    buf_puts(b, ",\n  \"summary\": {\"ttft_s\": ");
    jnum(b, s->ttft);
    if (r->engine)
      jfnum(b, "ttft_roofline_s", s->ttft_roofline);
    jfnum(b, "tpot_s", s->tpot);
    if (r->engine)
      jfnum(b, "tpot_roofline_s", s->tpot_roofline);
    jfnum(b, "tokens_per_s", s->tokens_per_s);
    if (r->engine) {
      jfstr(b, "engine", r->engine->id);
      buf_puts(b, ",\n    \"calibration\": {\"measured_on\": ");
      report_json_string(b, r->calib->hw_id);
      buf_printf(b, ", \"fallback\": %s",
                 r->calib->fallback ? "true" : "false");
      jfstr(b, "note", r->calib->fallback ? r->calib->note : NULL);
      buf_putc(b, '}');
    }
    buf_puts(b, ",\n    \"memory\": {\"weight_bytes\": ");
    jnum(b, s->mem.weights);
    jfnum(b, "kv_cache_bytes", s->mem.kv_cache);
    if (r->nkinds > 1) {
      buf_puts(b, ", \"kv_cache_bytes_by_layer_kind\": {");
      for (int i = 0; i < r->nkinds; i++) {
        buf_puts(b, i ? ", " : "");
        report_json_string(b, r->kv_kinds[i][0] ? r->kv_kinds[i] : "(none)");
        buf_puts(b, ": ");
        jnum(b, r->kv_kind_bytes[i]);
      }
      buf_putc(b, '}');
    }
    jfnum(b, "activation_bytes", s->mem.act);
    jfnum(b, "total_bytes", s->mem.total);
    jfnum(b, "capacity_bytes", s->mem.capacity);
    buf_printf(b, ", \"fits\": %s, \"max_batch\": ",
               s->mem.fits ? "true" : "false");
    jnum(b, s->mem.max_batch);
    buf_printf(b, ", \"max_batch_capped\": %s}",
               s->mem.max_capped ? "true" : "false");
    if (r->serving) {
      buf_puts(b, ",\n    \"output_len\": ");
      jnum(b, s->output_len);
      jfnum(b, "e2e_latency_s", s->output_len > 0 ? s->e2e : NAN);
      jfnum(b, "tpot_mean_s", s->output_len > 0 ? s->tpot_mean : NAN);
      jfnum(b, "gpus", s->gpus);
      jfnum(b, "throughput_tokens_per_s", s->throughput);
      jfnum(b, "throughput_per_gpu_tokens_per_s", s->throughput_per_gpu);
    }
    buf_putc(b, '}');
  }
  buf_puts(b, "\n}\n");
}

/* ----------------------------------------------------------------- CSV */

static void csv_field(Buf *b, const char *s) {
  if (strpbrk(s, ",\"\n\r")) {
    buf_putc(b, '"');
    for (; *s; s++) {
      if (*s == '"')
        buf_putc(b, '"');
      buf_putc(b, *s);
    }
    buf_putc(b, '"');
  } else {
    buf_puts(b, s);
  }
}

static void render_csv(const Report *r, Buf *b) {
  buf_puts(b, "phase,path,op,module,count");
  for (int k = 0; k < M_TRAFFIC; k++)
    buf_printf(b, ",%s", metric_name[k]);
  buf_puts(b, ",bytes,arithmetic_intensity");
  if (r->gpu)
    buf_puts(b, ",bound,peak,time_s");
  if (r->engine)
    buf_puts(b, ",roofline_time_s,kernel");
  buf_putc(b, '\n');
  for (int i = 0; i < r->nphases; i++) {
    const PhaseResult *ph = &r->phases[i];
    for (int k = 0; k < ph->plan->nrows; k++) {
      const Row *row = &ph->plan->rows[k];
      const double *v = ph->vals->row[k];
      if (ph->vals->off && ph->vals->off[k])
        continue;
      csv_field(b, ph->name);
      buf_putc(b, ',');
      csv_field(b, row->path);
      buf_putc(b, ',');
      csv_field(b, row->op);
      buf_putc(b, ',');
      csv_field(b, row->module);
      char n[64];
      report_number(row->count, n, sizeof(n));
      buf_printf(b, ",%s", n);
      for (int m = 0; m < M_TRAFFIC; m++) {
        report_number(v[m], n, sizeof(n));
        buf_printf(b, ",%s", n);
      }
      double bytes = metric_bytes(v);
      report_number(bytes, n, sizeof(n));
      buf_printf(b, ",%s,", n);
      double ai = intensity(v[M_FLOPS], bytes);
      if (isfinite(ai)) {
        report_number(ai, n, sizeof(n));
        buf_puts(b, n);
      }
      if (ph->time) {
        report_number(ph->pred ? ph->pred[k] : ph->time[k], n, sizeof(n));
        buf_printf(b, ",%s,%s,%s", bound_name(ph->bound[k]), ph->peak[k], n);
      }
      if (ph->pred) {
        report_number(ph->time[k], n, sizeof(n));
        buf_printf(b, ",%s,", n);
        csv_field(b, ph->kernel[k]);
      }
      buf_putc(b, '\n');
      comm_rows(ph, k, b, FMT_CSV, 0);
    }
  }
}

/* --------------------------------------------------------------- table */

static void fmt_ai(double ai, char *out, size_t n) {
  if (!isfinite(ai))
    snprintf(out, n, "inf");
  else if (ai < 999999.5)
    fixed_unit(ai, ai < 10 ? 2 : ai < 100 ? 1 : 0, "", "", out, n);
  else
    snprintf(out, n, "%.2e", ai); /* not 28 digits */
}

/* A count, batch or length for the table: whole numbers in full (a batch
 * of 2^20 is 1048576, not %g's 1.04858e+06), others to 6 digits. */
const char *report_whole(double v, char *out, size_t n) {
  if (v == floor(v) && fabs(v) < 1e15) {
    /* "%.0f" of a whole number under 10^15 (exact in a long long) by
     * hand: every row's count goes through here */
    char d[24], *p = d;
    if (signbit(v))
      *p++ = '-'; /* -0 too, as printf */
    size_t len = (size_t)(put_uint(p, (unsigned long long)fabs(v)) - d);
    if (n) {
      if (len >= n)
        len = n - 1;
      memcpy(out, d, len);
      out[len] = '\0';
    }
  } else {
    snprintf(out, n, "%.6g", v);
  }
  return out;
}

/* Table columns: one per traffic metric (the metric table's heading and
 * unit), then bytes and FLOP/B. */
/* " " then s right-aligned in w columns (printf's " %*s"); with left, left-
 * aligned (" %-*s"); the first cell has no leading space */
static void put_blanks(Buf *b, size_t k) {
  static const char blanks[] = "                                ";
  while (k > 0) {
    size_t c = k < sizeof(blanks) - 1 ? k : sizeof(blanks) - 1;
    buf_append(b, blanks, c);
    k -= c;
  }
}

static void put_cell(Buf *b, bool space, const char *s, int w, bool left) {
  size_t n = strlen(s), pad = w > 0 && (size_t)w > n ? (size_t)w - n : 0;
  if (space)
    buf_putc(b, ' ');
  if (!left)
    put_blanks(b, pad);
  buf_append(b, s, n);
  if (left)
    put_blanks(b, pad);
}

static void table_line(Buf *b, int w, const char *name, const char *count,
                       const double *v, const char *bound, double time,
                       double roof) {
  char cell[32], ai[32];
  put_cell(b, false, name, w, true); /* "%-*s %6s" */
  put_cell(b, true, count, 6, false);
  for (int k = 0; k < M_TRAFFIC; k++) {
    si_format(v[k], metric_unit[k], cell, sizeof(cell));
    put_cell(b, true, cell, CELL_W, false);
  }
  double bytes = metric_bytes(v);
  si_format(bytes, "B", cell, sizeof(cell));
  fmt_ai(intensity(v[M_FLOPS], bytes), ai, sizeof(ai));
  put_cell(b, true, cell, CELL_W, false); /* " %*s %7s" */
  put_cell(b, true, ai, 7, false);
  if (bound) {
    char t[32];
    time_format(time, t, sizeof(t));
    put_cell(b, true, bound, 7, true); /* " %-7s %9s" */
    put_cell(b, true, t, 9, false);
    if (roof >= 0) {
      time_format(roof, t, sizeof(t));
      put_cell(b, true, t, 9, false);
    }
  }
  buf_putc(b, '\n');
}

static void render_summary(const Report *r, Buf *b) {
  const Gpu *g = r->gpu;
  char cap[32], bw[32], peak[32], peak8[32];
  si_format(g->memory, "B", cap, sizeof(cap));
  si_format(g->bandwidth, "B/s", bw, sizeof(bw));
  si_format(r->peaks.p16, "FLOP/s", peak, sizeof(peak));
  buf_printf(b, "\nhardware: %s (%s): %s FP16/BF16 dense", g->id, g->name,
             peak);
  if (r->peaks.p8 > 0) {
    si_format(r->peaks.p8, "OP/s", peak8, sizeof(peak8));
    buf_printf(b, ", %s %s", peak8, r->peaks.p8_name);
  }
  if (r->peaks.p4 > 0) {
    si_format(r->peaks.p4, "FLOP/s", peak8, sizeof(peak8));
    buf_printf(b, ", %s FP4", peak8);
  }
  buf_printf(b, ", %s, %s (%g GiB) memory\n", bw, cap,
             g->memory / 1073741824.0);
  const char *pname;
  roof_weight_peak(&r->peaks, &pname);
  buf_printf(b, "compute peak: %s for the projections at these precisions; "
                "each op's peak is in --format json\n",
             pname);
  const Summary *s = r->summary;
  if (!s)
    return;
  char t1[32], t2[32], r1[64] = "", r2[64] = "";
  time_format(s->ttft, t1, sizeof(t1));
  time_format(s->tpot, t2, sizeof(t2));
  char nb[32], ns[32];
  report_whole(r->batch, nb, sizeof(nb));
  report_whole(r->seq_len, ns, sizeof(ns));
  if (r->engine) {
    char x[32];
    time_format(s->ttft_roofline, x, sizeof(x));
    snprintf(r1, sizeof(r1), " (roofline %s)", x);
    time_format(s->tpot_roofline, x, sizeof(x));
    snprintf(r2, sizeof(r2), " (roofline %s)", x);
  }
  buf_printf(b, "time to first token (prefill of %s x %s tokens): %s%s\n", nb,
             ns, t1, r1);
  buf_printf(b, "time per output token (decode step, KV length %s): %s%s\n",
             ns, t2, r2);
  buf_printf(b, "decode throughput: %.4g tokens/s (%.4g per sequence)\n",
             s->tokens_per_s, s->tokens_per_s / r->batch);
  if (s->output_len == 1) {
    char e[32];
    time_format(s->e2e, e, sizeof(e));
    buf_printf(b, "request of %g + 1 token: end to end %s (TTFT only: no "
                  "decode step)\n",
               r->seq_len, e);
  } else if (s->output_len > 1) {
    char e[32], tm[32];
    time_format(s->e2e, e, sizeof(e));
    time_format(s->tpot_mean, tm, sizeof(tm));
    buf_printf(b, "request of %g + %g tokens: end to end %s (TTFT + %g decode "
                  "steps at KV lengths %g..%g, mean TPOT %s)\n",
               r->seq_len, s->output_len, e, s->output_len - 1,
               r->seq_len + 1, r->seq_len + s->output_len - 1, tm);
  }
  if (r->serving)
    buf_printf(b, "throughput: %.4g tokens/s in total, %.4g per GPU (%g GPU%s)\n",
               s->throughput, s->throughput_per_gpu, s->gpus,
               s->gpus == 1 ? "" : "s");
  char w[32], kv[32], act[32], tot[32];
  si_format(s->mem.weights, "B", w, sizeof(w));
  si_format(s->mem.kv_cache, "B", kv, sizeof(kv));
  si_format(s->mem.act, "B", act, sizeof(act));
  si_format(s->mem.total, "B", tot, sizeof(tot));
  buf_printf(b, "memory%s: weights %s + KV cache %s + peak activations %s = "
                "%s of %s: %s\n",
             r->serving && r->pp > 1 ? " per GPU (the fullest pipeline stage)"
             : r->serving && (r->tp > 1 || r->ep > 1) ? " per GPU"
                                                      : "",
             w, kv, act, tot, cap, s->mem.fits ? "fits" : "does NOT fit");
  if (r->nkinds > 1) {
    buf_puts(b, "KV cache by layer kind:");
    for (int i = 0; i < r->nkinds; i++) {
      char x[32];
      si_format(r->kv_kind_bytes[i], "B", x, sizeof(x));
      buf_printf(b, "%s %s %s", i ? "," : "",
                 r->kv_kinds[i][0] ? r->kv_kinds[i] : "(none)", x);
    }
    buf_putc(b, '\n');
  }
  if (s->mem.max_batch == 0)
    buf_printf(b, "largest batch at sequence %s: none (batch 1 does not fit)\n",
               ns);
  else
    buf_printf(b, "largest batch at sequence %s (the whole batch prefilled at "
                  "once): %s%.0f\n",
               ns, s->mem.max_capped ? "at least " : "", s->mem.max_batch);
}

/* The model's lines: name, family and parameter count, the
 * quantization_config read, the note (what is not counted). The table
 * prints them first; the HTML page under its title. */
void report_model_lines(const Report *r, Buf *b) {
  if (!r->family)
    return;
  char n[32];
  si_format(r->parameters, "", n, sizeof(n));
  buf_printf(b, "model %s: family %s, %.0f parameters (%s)", r->model,
             r->family, r->parameters, n);
  if (r->active != r->parameters) {
    si_format(r->active, "", n, sizeof(n));
    buf_printf(b, ", %.0f active per token (%s)", r->active, n);
  }
  buf_putc(b, '\n');
  if (r->quant && r->quant->method) {
    if (!r->quant->known)
      buf_printf(b, "quantization_config: method %s is not modelled%s%s%s: "
                    "weights at --w-bits\n", r->quant->method,
                 r->quant->why ? " (" : "", r->quant->why ? r->quant->why : "",
                 r->quant->why ? ")" : "");
    else {
      buf_printf(b, "quantization_config: %s", r->quant->method);
      if (r->quant->w_bits > 0)
        buf_printf(b, ", weights %.6g bits", r->quant->w_bits);
      if (r->quant->x_bits > 0)
        buf_printf(b, ", routed experts %.6g bits", r->quant->x_bits);
      buf_puts(b, " per weight with scales (--w-bits overrides)\n");
    }
  }
  if (r->note)
    buf_printf(b, "note: %s\n", r->note);
}

static void render_table(const Report *r, Buf *b) {
  report_model_lines(r, b);
  char nb[32], ns[32];
  buf_printf(b, "%s  batch %s, sequence %s  (weights %d-bit, activations "
                "%d-bit, KV cache %d-bit, %s attention)\n",
             r->model, report_whole(r->batch, nb, sizeof(nb)),
             report_whole(r->seq_len, ns, sizeof(ns)), r->w_bits, r->a_bits,
             r->kv_bits, r->attention);
  buf_puts(b, "Per instance; count = instances in the model; totals = sum of "
              "count x value. FLOPs count a multiply-add as 2.\n");
  if (r->gpu && r->engine) {
    buf_printf(b, "time = calibrated prediction for %s (%s kernels) on %s, "
                  "from %s measurements%s; roofline = max(FLOPs / peak, "
                  "bytes / bandwidth), the lower bound; bound = which "
                  "roofline term is larger.\n",
               r->engine->name, r->engine->id, r->gpu->id, r->calib->hw_id,
               r->calib->fallback ? " (borrowed: LESS CERTAIN)" : "");
  } else if (r->gpu)
    buf_puts(b, "time = max(FLOPs / peak, bytes / bandwidth); bound = which "
                "term is larger.\n");
  if (r->gpu && r->serving && (r->tp > 1 || r->pp > 1 || r->ep > 1))
    buf_printf(b,
               "Per GPU: tp %d, pp %d, ep %d; rows for one microbatch of "
               "%g sequences (of %d). Communication rows (bound network): "
               "%s = latency x steps + bytes x factor / link bandwidth.\n",
               r->tp, r->pp, r->ep, r->batch / r->microbatches, r->microbatches,
               r->calib ? "time = measured times (NCCL's, calibration/"
                          "collectives.json, or the engine's own all-reduce "
                          "kernel's, custom_all_reduce.json) where the GPU "
                          "has them, else the roofline; roofline"
                        : "time");
  for (int i = 0; i < r->nphases; i++) {
    const PhaseResult *ph = &r->phases[i];
    int w = 9;
    for (int k = 0; k < ph->plan->nrows; k++) {
      int n = (int)strlen(ph->plan->rows[k].path);
      if (n > w)
        w = n;
    }
    char nt[32], nl[32];
    buf_printf(b, "\n%s: %s token%s per sequence, KV length %s\n", ph->name,
               report_whole(ph->tokens, nt, sizeof(nt)), ph->tokens == 1 ? "" : "s",
               report_whole(ph->kv_len, nl, sizeof(nl)));
    buf_printf(b, "%-*s %6s", w, "operation", "count");
    for (int k = 0; k < M_TRAFFIC; k++)
      buf_printf(b, " %*s", CELL_W, metric_heading[k]);
    buf_printf(b, " %*s %7s", CELL_W, "bytes", "FLOP/B");
    buf_puts(b, !ph->time ? "\n"
                : ph->pred ? " bound        time  roofline\n"
                           : " bound        time\n");
    for (int k = 0; k < ph->plan->nrows; k++) {
      const Row *row = &ph->plan->rows[k];
      if (ph->vals->off && ph->vals->off[k])
        continue;
      char count[32];
      report_whole(row->count, count, sizeof(count));
      table_line(b, w, row->path, count, ph->vals->row[k],
                 ph->time ? bound_name(ph->bound[k]) : NULL,
                 ph->pred ? ph->pred[k] : ph->time ? ph->time[k] : 0,
                 ph->pred ? ph->time[k] : -1);
      comm_rows(ph, k, b, FMT_TABLE, w);
    }
    double tot[M_TRAFFIC];
    phase_totals(ph, tot);
    table_line(b, w, "total", "", tot, ph->time ? "" : NULL, ph->latency,
               ph->pred ? ph->latency_roofline : -1);
  }
  if (r->gpu)
    render_summary(r, b);
}

/* ------------------------------------------------------------ markdown */

/* A cell's text with the characters Markdown tables treat specially
 * escaped. */
static void md_text(Buf *b, const char *s) {
  for (; *s; s++) {
    if (strchr("|\\*`[]<>", *s))
      buf_putc(b, '\\');
    buf_putc(b, *s);
  }
}

static void md_cell(Buf *b, const char *s) {
  buf_puts(b, " ");
  md_text(b, s);
  buf_puts(b, " |");
}

static void md_line(Buf *b, const char *name, const char *count,
                    const double *v, const char *bound, double time,
                    double roof, bool strong) {
  char cell[48], ai[32];
  buf_putc(b, '|');
  if (strong) {
    buf_printf(b, " **%s** |", name);
  } else {
    md_cell(b, name);
  }
  buf_printf(b, " %s |", count);
  for (int k = 0; k < M_TRAFFIC; k++) {
    si_format(v[k], metric_unit[k], cell, sizeof(cell));
    buf_printf(b, " %s |", cell);
  }
  double bytes = metric_bytes(v);
  si_format(bytes, "B", cell, sizeof(cell));
  fmt_ai(intensity(v[M_FLOPS], bytes), ai, sizeof(ai));
  buf_printf(b, " %s | %s |", cell, strong ? "" : ai);
  if (bound) {
    time_format(time, cell, sizeof(cell));
    buf_printf(b, " %s | %s%s%s |", bound, strong ? "**" : "", cell,
               strong ? "**" : "");
    if (roof >= 0) {
      time_format(roof, cell, sizeof(cell));
      buf_printf(b, " %s |", cell);
    }
  }
  buf_putc(b, '\n');
}

static void render_markdown(const Report *r, Buf *b) {
  buf_puts(b, "**");
  md_text(b, r->model);
  buf_printf(b, "**, batch %g, sequence %g (weights %d-bit, activations "
                "%d-bit, KV cache %d-bit, %s attention%s%s)\n",
             r->batch, r->seq_len, r->w_bits, r->a_bits, r->kv_bits,
             r->attention, r->gpu ? ", " : "", r->gpu ? r->gpu->id : "");
  /* the model lines, each a paragraph of its own */
  Buf ml;
  buf_init(&ml);
  report_model_lines(r, &ml);
  for (char *l = ml.data, *e; l && *l; l = e + 1) {
    e = strchr(l, '\n');
    *e = '\0'; /* every line ends in one */
    buf_putc(b, '\n');
    md_text(b, l);
    buf_putc(b, '\n');
  }
  buf_free(&ml);
  buf_puts(b, "\nPer instance; count = instances in the model; totals = sum "
              "of count x value. FLOPs count a multiply-add as 2.");
  if (r->gpu)
    buf_puts(b, r->engine ? " time: the calibrated prediction for the "
                            "engine's kernels; roofline = max(FLOPs / peak, "
                            "bytes / bandwidth)."
                          : " time = max(FLOPs / peak, bytes / bandwidth).");
  buf_putc(b, '\n');
  for (int i = 0; i < r->nphases; i++) {
    const PhaseResult *ph = &r->phases[i];
    buf_printf(b, "\n### %s: %g token%s per sequence, KV length %g\n\n",
               ph->name, ph->tokens, ph->tokens == 1 ? "" : "s", ph->kv_len);
    buf_puts(b, "| operation | count |");
    for (int k = 0; k < M_TRAFFIC; k++)
      buf_printf(b, " %s |", metric_heading[k]);
    buf_puts(b, " bytes | FLOP/B |");
    if (ph->time)
      buf_puts(b, ph->pred ? " bound | time | roofline |" : " bound | time |");
    buf_puts(b, "\n|:--|--:|");
    for (int k = 0; k < M_TRAFFIC + 2; k++)
      buf_puts(b, "--:|");
    if (ph->time)
      buf_puts(b, ph->pred ? ":--|--:|--:|" : ":--|--:|");
    buf_putc(b, '\n');
    for (int k = 0; k < ph->plan->nrows; k++) {
      const Row *row = &ph->plan->rows[k];
      if (ph->vals->off && ph->vals->off[k])
        continue; /* runs in the other phase (MLA, Mamba) */
      char count[32];
      snprintf(count, sizeof(count), "%g", row->count);
      md_line(b, row->path, count, ph->vals->row[k],
              ph->time ? bound_name(ph->bound[k]) : NULL,
              ph->pred ? ph->pred[k] : ph->time ? ph->time[k] : 0,
              ph->pred ? ph->time[k] : -1, false);
      if (ph->time)
        comm_rows(ph, k, b, FMT_MARKDOWN, 0);
    }
    double tot[M_TRAFFIC];
    phase_totals(ph, tot);
    /* the phase's latency: the rows, the collectives and the pipeline */
    md_line(b, "total", "", tot, ph->time ? "" : NULL, ph->latency,
            ph->pred ? ph->latency_roofline : -1, true);
  }
  if (!r->gpu || !r->summary)
    return;
  const Summary *s = r->summary;
  char t1[32], t2[32], w[32], kv[32], act[32], tot[32], cap[32];
  time_format(s->ttft, t1, sizeof(t1));
  time_format(s->tpot, t2, sizeof(t2));
  si_format(s->mem.weights, "B", w, sizeof(w));
  si_format(s->mem.kv_cache, "B", kv, sizeof(kv));
  si_format(s->mem.act, "B", act, sizeof(act));
  si_format(s->mem.total, "B", tot, sizeof(tot));
  si_format(s->mem.capacity, "B", cap, sizeof(cap));
  buf_printf(b, "\n- hardware: %s (%s)\n", r->gpu->id, r->gpu->name);
  buf_printf(b, "- time to first token: %s\n- time per output token: %s\n",
             t1, t2);
  if (r->engine && r->calib) {
    time_format(s->ttft_roofline, t1, sizeof(t1));
    time_format(s->tpot_roofline, t2, sizeof(t2));
    buf_printf(b, "- times: %s kernels calibrated on %s%s (roofline bounds: "
                  "TTFT %s, TPOT %s)\n",
               r->engine->name, r->calib->hw_id,
               r->calib->fallback ? ", borrowed: less certain" : "", t1, t2);
  }
  buf_printf(b, "- decode throughput: %.4g tokens/s\n", s->tokens_per_s);
  buf_printf(b, "- memory: weights %s + KV cache %s + activations %s = %s of "
                "%s (%s)\n",
             w, kv, act, tot, cap, s->mem.fits ? "fits" : "does not fit");
  if (s->mem.max_batch > 0)
    buf_printf(b, "- largest batch at sequence %g: %s%.0f\n", r->seq_len,
               s->mem.max_capped ? "at least " : "", s->mem.max_batch);
}

char *report_render(const Report *r, Format fmt) {
  Buf b;
  buf_init(&b);
  switch (fmt) {
  case FMT_JSON:
    render_json(r, &b);
    break;
  case FMT_CSV:
    render_csv(r, &b);
    break;
  case FMT_MARKDOWN:
    render_markdown(r, &b);
    break;
  case FMT_HTML:
    render_html(r, &b);
    break;
  default:
    render_table(r, &b);
  }
  return buf_steal(&b);
}

/* ------------------------------------------------------------ hardware */

char *report_hardware(const GpuDb *g) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%-14s %-28s %9s %9s %9s %9s %8s %6s %9s %5s\n", "id", "name",
             "FP16", "FP8", "INT8", "HBM", "memory", "L2", "smem/SM", "SMs");
  for (int i = 0; i < g->n; i++) {
    const Gpu *x = &g->gpus[i];
    char f16[32], f8[32], i8[32], bw[32], mem[32];
    si_format(x->fp16_flops, "F", f16, sizeof(f16));
    if (x->fp8_flops > 0)
      si_format(x->fp8_flops, "F", f8, sizeof(f8));
    else
      snprintf(f8, sizeof(f8), "-");
    if (x->int8_ops > 0)
      si_format(x->int8_ops, "OP", i8, sizeof(i8));
    else
      snprintf(i8, sizeof(i8), "-");
    si_format(x->bandwidth, "B/s", bw, sizeof(bw));
    snprintf(mem, sizeof(mem), "%g GiB", x->memory / 1073741824.0);
    buf_printf(&b, "%-14s %-28.28s %9s %9s %9s %9s %8s %3g MiB %5g KiB %5g\n",
               x->id, x->name, f16, f8, i8, bw, mem, x->l2 / 1048576.0,
               x->smem_per_sm / 1024.0, x->sm_count);
  }
  buf_puts(&b, "Dense peaks per second; figures and sources in hardware.json.\n");
  return buf_steal(&b);
}
