/* test_report.c: number formatting and the three renderings. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include "runtime.h"

static void test_report_si_format(void **state) {
  (void)state;
  struct {
    double v;
    const char *unit, *want;
  } cases[] = {{0, "B", "0"},
               {1, "B", "1.00 B"},
               {999, "", "999"},
               {5, "", "5.00"},
               {999.6, "", "1.00 k"},
               {16777216, "B", "16.8 MB"},
               {68719476736.0, "", "68.7 G"},
               {28751179022336.0, "", "28.8 T"},
               {268435456, "B", "268 MB"},
               {8192, "B", "8.19 kB"},
               {999e24, "B", "999 YB"},
               /* past Y: an exponent, not 1000000 Y (issue 9) */
               {1e27, "B", "1.00e+27 B"},
               {1e30, "", "1.00e+30"}};
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char buf[64];
    si_format(cases[i].v, cases[i].unit, buf, sizeof(buf));
    assert_string_equal(buf, cases[i].want);
  }
}

static void test_report_number(void **state) {
  (void)state;
  struct {
    double v;
    const char *want;
  } cases[] = {{0, "0"},
               {68719476736.0, "68719476736"},
               {9007199254740991.0, "9007199254740991"},
               {9007199254740992.0, "9007199254740992"},
               {1e20, "1e+20"},
               {0.1, "0.1"},
               {113.77777777777777, "113.77777777777777"},
               {1.0 / 3, "0.333333333333333"},
               {INFINITY, "null"},
               {NAN, "null"}};
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char buf[64];
    report_number(cases[i].v, buf, sizeof(buf));
    if (strcmp(cases[i].want, "0.333333333333333") == 0) {
      assert_true(strtod(buf, NULL) == cases[i].v); /* round-trips */
      continue;
    }
    assert_string_equal(buf, cases[i].want);
  }
}

/* The spec of report_number, by printf and strtod: an integer below 2^53
 * in full, else the first of %.15g, %.16g, %.17g that reads back. */
static void spec_number(double v, char *out, size_t outsz) {
  if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
      v == (double)(long long)v) {
    snprintf(out, outsz, "%lld", (long long)v);
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, outsz, "%.*g", prec, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

/* report_number computes that without printf for most values (exact
 * integer arithmetic): compare on millions of doubles of every
 * magnitude a report prints, on neighbours of powers of two and ten, on
 * decimal ties and on the short decimals sweeps produce. */
/* The spec of si_format and time_format, by printf: the code they had
 * before their digits were written without it. */
static void spec_si(double v, const char *unit, char *out, size_t outsz) {
  static const char *prefix[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
  if (v == 0 || !isfinite(v)) {
    snprintf(out, outsz, v == 0 ? "0" : "-");
    return;
  }
  int p = 0;
  double x = v;
  while (fabs(x) >= 999.5 && p < 8) {
    x /= 1000;
    p++;
  }
  if (fabs(x) >= 999.5) {
    snprintf(out, outsz, "%.2e%s%s", v, unit[0] ? " " : "", unit);
    return;
  }
  int decimals = fabs(x) < 9.995 ? 2 : fabs(x) < 99.95 ? 1 : 0;
  if (p == 0 && !unit[0])
    snprintf(out, outsz, "%.*f", decimals, x);
  else
    snprintf(out, outsz, "%.*f %s%s", decimals, x, prefix[p], unit);
}

static void spec_time(double s, char *out, size_t n) {
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
  snprintf(out, n, "%.*f %s", decimals, x, u[k].unit);
}

/* si_format and time_format (digits without printf) against printf: random
 * bits over 1e-12 to 1e30, short decimals, exact ties of every kind
 * (k/8, k/4, k/2: x.125, x.5 at 0, 1 and 2 decimals, which printf rounds
 * to even), values at the 9.995 / 99.95 / 999.5 switches, negatives, and
 * buffers too small for the whole text. */
static void test_report_si_matches_printf(void **state) {
  (void)state;
  static const char *units[] = {"", "B", "FLOP/s", "B/s"};
  uint64_t x = 0x2545F4914F6CDD1DULL;
  char got[64], want[64];
  for (int i = 0; i < 600000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double v;
    switch (i % 4) {
    case 0: {
      uint64_t bits = (x & ((1ULL << 52) - 1)) |
                      ((uint64_t)(1023 - 40 + (int)((x >> 52) % 140)) << 52);
      memcpy(&v, &bits, sizeof(v));
      break;
    }
    case 1:
      v = (double)(x % 100000000) / pow(10, (double)((x >> 40) % 12));
      break;
    case 2: /* exact binary ties: k / 8 times a power of 1000 */
      v = (double)(x % 1000000) / 8 * pow(1000, (double)((x >> 30) % 5));
      break;
    default: { /* neighbours of the switches */
      static const double sw[] = {9.995, 99.95, 999.5, 0.9995, 0.005,
                                  0.125, 2.5, 0.5};
      v = sw[(x >> 8) % LM_ARRAY_LEN(sw)] *
          pow(1000, (double)((x >> 16) % 7) - 3);
      int steps = (int)((x >> 24) % 7) - 3;
      for (int s2 = 0; s2 < steps; s2++)
        v = nextafter(v, INFINITY);
      for (int s2 = 0; s2 > steps; s2--)
        v = nextafter(v, 0);
      break;
    }
    }
    if (x & 0x100000)
      v = -v;
    const char *u = units[(x >> 33) % 4];
    size_t sz = (x >> 36) % 16 == 0 ? (size_t)((x >> 40) % 12 + 1)
                                     : sizeof(got);
    si_format(v, u, got, sz);
    spec_si(v, u, want, sz);
    if (strcmp(got, want) != 0)
      fail_msg("si_format(%.17g, \"%s\", %zu) = \"%s\", printf gives \"%s\"",
               v, u, sz, got, want);
    double t = fabs(v) * 1e-9;
    time_format(t, got, sz);
    spec_time(t, want, sz);
    if (strcmp(got, want) != 0)
      fail_msg("time_format(%.17g, %zu) = \"%s\", printf gives \"%s\"", t,
               sz, got, want);
  }
  /* by hand: ties to even at each precision, glibc's printf on exact ties */
  si_format(2.5, "", got, sizeof(got));
  assert_string_equal(got, "2.50");
  si_format(0.125, "", got, sizeof(got));
  assert_string_equal(got, "0.12"); /* 0.125 is exact: even 2 */
  si_format(0.375, "", got, sizeof(got));
  assert_string_equal(got, "0.38");
  si_format(-0.001, "", got, sizeof(got));
  assert_string_equal(got, "-0.00");
  si_format(1250, "B", got, sizeof(got));
  assert_string_equal(got, "1.25 kB"); /* 1.25 exact: 2 decimals */
  si_format(12.25, "B", got, sizeof(got));
  assert_string_equal(got, "12.2 B"); /* 12.25 exact: tie, even 2 */
  si_format(12.75, "B", got, sizeof(got));
  assert_string_equal(got, "12.8 B");
  si_format(998.5, "B", got, sizeof(got));
  assert_string_equal(got, "998 B"); /* tie at 0 decimals: even 998 */
  time_format(4.5e-6, got, sizeof(got));
  assert_string_equal(got, "4.50 us");
}

static void test_report_number_matches_printf(void **state) {
  (void)state;
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  char got[64], want[64];
  long n = 0;
  for (int i = 0; i < 1000000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double v;
    switch (i % 4) {
    case 0: { /* any bits with an exponent from 1e-7 to 1e17 */
      uint64_t bits = (x & ((1ULL << 52) - 1)) |
                      ((uint64_t)(1023 - 24 + (int)((x >> 52) % 82)) << 52);
      memcpy(&v, &bits, sizeof(v));
      break;
    }
    case 1: /* short decimals: k / 10^j */
      v = (double)(x % 100000000) / pow(10, (double)((x >> 40) % 12));
      break;
    case 2: /* ratios like times and rates */
      v = (double)(x % 1000003 + 1) / (double)((x >> 30) % 99991 + 1);
      break;
    default: { /* neighbours of powers of two and ten */
      double b = (x & 1) ? ldexp(1, (int)((x >> 8) % 80) - 30)
                         : pow(10, (double)((x >> 8) % 22) - 6);
      int steps = (int)((x >> 20) % 5) - 2;
      v = b;
      for (int s2 = 0; s2 < steps; s2++)
        v = nextafter(v, INFINITY);
      for (int s2 = 0; s2 > steps; s2--)
        v = nextafter(v, 0);
      break;
    }
    }
    if (x & 0x100000)
      v = -v;
    report_number(v, got, sizeof(got));
    spec_number(v, want, sizeof(want));
    if (strcmp(got, want) != 0)
      fail_msg("report_number(%.17g) = %s, printf and strtod give %s", v,
               got, want);
    n++;
  }
  /* exact decimal ties at 15 and 16 digits: x.5 in the last place */
  static const double ties[] = {0.1000000000000005, 1.0000000000000005,
                                123456789012.3455, 0.0001234567890123455,
                                2.5e-4, 9.9999999999999995e14};
  for (size_t i = 0; i < LM_ARRAY_LEN(ties); i++) {
    report_number(ties[i], got, sizeof(got));
    spec_number(ties[i], want, sizeof(want));
    assert_string_equal(got, want);
  }
  assert_true(n == 1000000);
}

typedef struct Fake {
  Model model;
  Plan plan;
  Row rows[2];
  Values vals;
  double row[2][M_TRAFFIC];
} Fake;

/* Two hand-made rows: totals and intensities are sums by hand. */
static void fake(Fake *f, Report *r, PhaseResult *ph) {
  memset(f, 0, sizeof(*f));
  f->rows[0] = (Row){.path = "a.b", .op = "b", .module = "m.B", .count = 2};
  f->rows[1] = (Row){.path = "c", .op = "c", .module = "m.\"C\"", .count = 1};
  double r0[M_TRAFFIC] = {100, 10, 20, 30, 0, 0};   /* bytes 60 */
  double r1[M_TRAFFIC] = {0, 0, 0, 0, 0, 0};        /* bytes 0 */
  memcpy(f->row[0], r0, sizeof(r0));
  memcpy(f->row[1], r1, sizeof(r1));
  f->plan.rows = f->rows;
  f->plan.nrows = 2;
  f->vals.row = f->row;
  f->vals.nrows = 2;
  *ph = (PhaseResult){.name = "prefill", .tokens = 4, .kv_len = 4,
                      .plan = &f->plan, .vals = &f->vals};
  *r = (Report){.model = "org/\"quoted\"", .batch = 1, .seq_len = 4,
                .w_bits = 16, .a_bits = 16, .kv_bits = 8,
                .attention = "eager", .phases = ph, .nphases = 1};
}

static void test_report_json(void **state) {
  (void)state;
  Fake f;
  Report r;
  PhaseResult ph;
  fake(&f, &r, &ph);
  char *s = report_render(&r, FMT_JSON);
  json_error_t je;
  json_t *j = json_loads(s, 0, &je);
  if (!j)
    print_error("%s\n%s\n", je.text, s);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "model")),
                      "org/\"quoted\"");
  assert_int_equal(json_integer_value(json_object_get(j, "kv_bits")), 8);
  json_t *p0 = json_array_get(json_object_get(j, "phases"), 0);
  assert_string_equal(json_string_value(json_object_get(p0, "phase")), "prefill");
  json_t *op0 = json_array_get(json_object_get(p0, "ops"), 0);
  assert_int_equal(json_integer_value(json_object_get(op0, "count")), 2);
  assert_int_equal(json_integer_value(json_object_get(op0, "bytes")), 60);
  assert_double_exact(json_number_value(json_object_get(op0, "arithmetic_intensity")),
                      100.0 / 60);
  json_t *op1 = json_array_get(json_object_get(p0, "ops"), 1);
  json_t *ai1 = json_object_get(op1, "arithmetic_intensity");
  assert_true(json_is_integer(ai1)); /* 0 FLOPs / 0 bytes is 0, not null */
  assert_int_equal(json_integer_value(ai1), 0);
  json_t *tot = json_object_get(p0, "totals");
  /* 2 x row 0 + 1 x row 1 */
  assert_int_equal(json_integer_value(json_object_get(tot, "flops")), 200);
  assert_int_equal(json_integer_value(json_object_get(tot, "bytes")), 120);
  assert_int_equal(json_integer_value(json_object_get(tot, "act_write_bytes")), 60);
  assert_null(json_object_get(tot, "count"));
  json_decref(j);
  free(s);
}

static void test_report_csv_and_table(void **state) {
  (void)state;
  Fake f;
  Report r;
  PhaseResult ph;
  fake(&f, &r, &ph);
  char *s = report_render(&r, FMT_CSV);
  assert_string_equal(
      s, "phase,path,op,module,count,flops,weight_bytes,act_read_bytes,"
         "act_write_bytes,kv_read_bytes,kv_write_bytes,bytes,"
         "arithmetic_intensity\n"
         "prefill,a.b,b,m.B,2,100,10,20,30,0,0,60,1.6666666666666667\n"
         "prefill,c,c,\"m.\"\"C\"\"\",1,0,0,0,0,0,0,0,0\n");
  free(s);
  s = report_render(&r, FMT_TABLE);
  assert_contains(s, "prefill: 4 tokens per sequence, KV length 4\n");
  assert_contains(s, "a.b            2       100    10.0 B    20.0 B    30.0 B"
                     "         0         0    60.0 B    1.67\n");
  assert_contains(s, "c              1         0         0         0         0"
                     "         0         0         0    0.00\n");
  assert_contains(s, "total                  200    20.0 B    40.0 B    60.0 B"
                     "         0         0     120 B    1.67\n");
  free(s);
}

/* Large runs read well in the table (issue 9): a batch of 2^20 is
 * 1048576, not 1.04858e+06; counts likewise; cells of 1e27 or more and
 * intensities of a million or more get an exponent, not 28 digits. */
static void test_report_table_large_numbers(void **state) {
  (void)state;
  Fake f;
  Report r;
  PhaseResult ph;
  fake(&f, &r, &ph);
  r.batch = 1048576;
  r.seq_len = 1048576;
  ph.tokens = 1048576;
  ph.kv_len = 2097152;
  f.rows[0].count = 1048576;
  double big[M_TRAFFIC] = {1e27, 1, 0, 0, 0, 0};
  memcpy(f.row[0], big, sizeof(big));
  char *s = report_render(&r, FMT_TABLE);
  assert_contains(s, "batch 1048576, sequence 1048576  (");
  assert_contains(s, "prefill: 1048576 tokens per sequence, KV length 2097152");
  assert_contains(s, "a.b       1048576  1.00e+27    1.00 B");
  assert_contains(s, "1.00 B 1.00e+27\n");
  assert_not_contains(s, "e+06");
  assert_not_contains(s, "000000000000");
  free(s);
}

/* GitHub-flavoured Markdown: a header row, the alignment row, one row
 * per operation and the totals, numbers as in the table; '|' and '*' in
 * names escaped. */
static void test_report_markdown(void **state) {
  (void)state;
  Fake f;
  Report r;
  PhaseResult ph;
  fake(&f, &r, &ph);
  f.rows[1].path = "c|*d";
  char *s = report_render(&r, FMT_MARKDOWN);
  assert_contains(s, "**org/\"quoted\"**, batch 1, sequence 4 (weights "
                     "16-bit, activations 16-bit, KV cache 8-bit, eager "
                     "attention)\n");
  assert_contains(s, "\n### prefill: 4 tokens per sequence, KV length 4\n\n"
                     "| operation | count | FLOPs | weights | act read | "
                     "act write | KV read | KV write | bytes | FLOP/B |\n"
                     "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
                     "| a.b | 2 | 100 | 10.0 B | 20.0 B | 30.0 B | 0 | 0 | "
                     "60.0 B | 1.67 |\n"
                     "| c\\|\\*d | 1 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0.00 |\n"
                     "| **total** |  | 200 | 20.0 B | 40.0 B | 60.0 B | 0 | "
                     "0 | 120 B |  |\n");
  free(s);
}

/* report_whole against the snprintf it replaced: "%.0f" for whole numbers
 * under 10^15, "%.6g" otherwise, for counts, batches and lengths, their
 * negatives, -0, the 10^15 edge, fractions, and every buffer size from 0
 * to 24 (snprintf's cut). */
static void test_report_whole_matches_printf(void **state) {
  (void)state;
  double vals[] = {0, -0.0, 1, 2, 9, 10, 12, 26, 99, 100, 1048576,
                   123456789, 999999999999999.0, 1e15, 1e15 - 1, -1e15 + 1,
                   -7, -0.5, 0.5, 1.5, 2.25, 1e20, 3.0e-7, 1.0 / 3,
                   4503599627370496.0, 562949953421312.0};
  int n = 0;
  for (size_t i = 0; i < LM_ARRAY_LEN(vals); i++)
    for (size_t sz = 0; sz <= 24; sz++) {
      double v = vals[i];
      char got[32], want[32];
      memset(got, 'x', sizeof(got));
      memset(want, 'x', sizeof(want));
      if (v == floor(v) && fabs(v) < 1e15)
        snprintf(want, sz, "%.0f", v);
      else
        snprintf(want, sz, "%.6g", v);
      report_whole(v, got, sz);
      assert_memory_equal(got, want, sizeof(got));
      n++;
    }
  /* random whole numbers of every size */
  uint64_t x = 88172645463325252u;
  for (int k = 0; k < 100000; k++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double v = (double)(x % 1000000000000000u) / (double)(1u << (x % 20));
    v = (x & 1) ? floor(v) : v;
    char got[40], want[40];
    snprintf(want, sizeof(want), v == floor(v) && fabs(v) < 1e15 ? "%.0f" : "%.6g", v);
    report_whole(v, got, sizeof(got));
    assert_string_equal(got, want);
    n++;
  }
  assert_true(n > 100000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_report_whole_matches_printf),
      cmocka_unit_test(test_report_si_format),
      cmocka_unit_test(test_report_number),
      cmocka_unit_test(test_report_number_matches_printf),
      cmocka_unit_test(test_report_si_matches_printf),
      cmocka_unit_test(test_report_json),
      cmocka_unit_test(test_report_csv_and_table),
      cmocka_unit_test(test_report_table_large_numbers),
      cmocka_unit_test(test_report_markdown),
  };
  return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
