/* test_fit.c: the kernel CSV reader and the calibration fit
 * (runtime/fit.c): located errors, recovery of known constants, and the
 * per-row prediction of a measurement. */
#include "testutil.h"

#include "calib.h"

static Gpu a100(void) {
  return (Gpu){.id = "a100-sxm-80gb",
               .name = "A100",
               .fp16_flops = 312e12,
               .bandwidth = 2039e9,
               .memory = 80 * 1073741824.0,
               .l2 = 40 * 1048576.0,
               .smem_per_sm = 164 * 1024.0,
               .sm_count = 108};
}

#define HDR                                                                    \
  "hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,overhead_us,"         \
  "measured_us\n"

static void expect_csv_error(const char *text, const char *msg, int line,
                             int col) {
  Error err;
  err_clear(&err);
  MeasSet *s = meas_load_text("k.csv", text, strlen(text), &err);
  assert_null(s);
  if (!strstr(err.msg, msg))
    print_error("message '%s' lacks '%s'\n", err.msg, msg);
  assert_non_null(strstr(err.msg, msg));
  assert_int_equal(err.line, line);
  assert_int_equal(err.col, col);
  assert_int_equal(err.context_line, line);
}

static void test_fit_csv(void **state) {
  (void)state;
  const char *ok = "# comment\n" HDR
                   "a100-sxm-80gb,me,kernel,mm,gemm,1,64,4096,4096,1,2,0,10.5\n"
                   "a100-sxm-80gb,me,wall-clock,n,norm,2,0,0,0,0,1e6,13,40\r\n";
  Error err;
  err_clear(&err);
  MeasSet *s = meas_load_text("k.csv", ok, strlen(ok), &err);
  assert_non_null(s);
  assert_int_equal(s->n, 2);
  assert_int_equal(s->rows[0].kind, KK_GEMM);
  assert_double_exact(s->rows[0].measured, 10.5e-6);
  assert_int_equal(s->rows[0].line, 3);
  assert_true(s->rows[1].wall);
  assert_double_exact(s->rows[1].kernels, 2);
  assert_double_exact(s->rows[1].overhead, 13e-6);
  meas_free(s);
  expect_csv_error(HDR "a,b,kernel,op,tensor,1,0,0,0,0,0,0,1\n",
                   "unknown kernel kind 'tensor'", 2, 15);
  expect_csv_error(HDR "a,b,kernel,op,norm,1,0,0,0,0,x,0,1\n",
                   "bytes must be a number of at least 0, not 'x'", 2, 30);
  expect_csv_error(HDR "a,b,kernel,op,norm,1,0,0,0,0,1,0,0\n",
                   "measured_us must be positive", 2, 34);
  expect_csv_error(HDR "a,b,kernel,op,gemm,1,0,5,5,1,1,0,1\n",
                   "a gemm row needs its m, n and k", 2, 22);
  expect_csv_error(HDR "a,b,gpu,op,norm,1,0,0,0,0,1,0,1\n",
                   "timing is kernel or wall-clock, not 'gpu'", 2, 5);
  expect_csv_error(HDR "a,b,kernel,op,norm,1,0,0\n",
                   "8 fields where the "
                   "format has 13",
                   2, 1);
  expect_csv_error("hw,source\n", "2 fields where the format has 13", 1, 1);
  expect_csv_error("hw_id,src,timing,op,kind,kernels,m,n,k,flops,bytes,"
                   "overhead_us,measured_us\n",
                   "column 2 must be 'source', not 'src'", 1, 7);
  err_clear(&err);
  assert_null(meas_load_text("k.csv", "# only\n", 7, &err));
  assert_non_null(strstr(err.msg, "no header line"));
}

/* Rows generated from known constants by the model itself: the fit must
 * find the constants again. */
static void test_fit_recovers(void **state) {
  (void)state;
  Gpu g = a100();
  KernelFit gemm = {
      .launch = 5e-6, .compute_eff = 0.75, .memory_eff = 0.8, .overlap = 0.15};
  KernelFit norm = {.launch = 3e-6, .compute_eff = 1, .memory_eff = 0.5};
  Meas rows[64];
  const Meas *ptr[64];
  int n = 0;
  for (int i = 0; i < 14; i++) {
    double m = (double)(1 << i), k = 4096, nn = 11008;
    Meas *x = &rows[n];
    *x = (Meas){.hw_id = "a100-sxm-80gb",
                .source = "synthetic",
                .op = "mm",
                .kind = KK_GEMM,
                .kernels = 1,
                .m = m,
                .n = nn,
                .k = k,
                .flops = 2 * m * nn * k,
                .bytes = 2 * (m * k + k * nn + m * nn)};
    x->measured =
        gemm.launch + calib_kernel_time(&gemm, KK_GEMM, x->flops, x->bytes, m,
                                        nn, k, 312e12, &g);
    ptr[n] = x;
    n++;
  }
  for (int i = 0; i < 14; i++) {
    double t = (double)(1 << i);
    Meas *x = &rows[n];
    *x = (Meas){.hw_id = "a100-sxm-80gb",
                .source = "synthetic",
                .op = "n",
                .kind = KK_NORM,
                .kernels = 1,
                .bytes = 2 * (2 * t * 4096 + 4096)};
    x->measured = norm.launch + x->bytes / (g.bandwidth * norm.memory_eff);
    ptr[n] = x;
    n++;
  }
  Calib c;
  memset(&c, 0, sizeof(c));
  calib_fit(ptr, n, &g, &c);
  assert_double_near(c.k[KK_GEMM].launch, 5e-6, 1e-3);
  assert_double_near(c.k[KK_GEMM].compute_eff, 0.75, 1e-3);
  assert_double_near(c.k[KK_GEMM].memory_eff, 0.8, 1e-3);
  assert_double_near(c.k[KK_GEMM].overlap, 0.15, 1e-2);
  assert_double_exact(c.k[KK_NORM].overlap, 0); /* memory kinds: none */
  assert_double_near(c.k[KK_NORM].launch, 3e-6, 1e-3);
  assert_double_near(c.k[KK_NORM].memory_eff, 0.5, 1e-3);
  /* kinds without rows borrow: attention from gemm, add from the pool */
  assert_double_exact(c.k[KK_ATTENTION].compute_eff, c.k[KK_GEMM].compute_eff);
  assert_non_null(c.k[KK_ATTENTION].from);
  assert_non_null(c.k[KK_ADD].from);
  /* a wall-clock row adds its harness overhead to the prediction; that
   * overhead (the sweep's floor) already holds the first kernel's launch
   * cost, so 2 kernels add 1 launch and 2 kernel times */
  Meas w = rows[20];
  w.wall = true;
  w.overhead = 13e-6;
  w.kernels = 2;
  assert_double_near(calib_meas_predict(&c, &g, &w),
                     c.k[KK_NORM].launch +
                         2 * w.bytes / (g.bandwidth * c.k[KK_NORM].memory_eff) +
                         13e-6,
                     1e-12);
  double med, p90;
  calib_errors(&c, &g, ptr, n, &med, &p90);
  assert_true(med < 1e-3);
}

/* Wall-clock rows cannot tell a kernel's launch cost from the host's: a
 * kind measured only on the wall clock takes the launch cost of the
 * kernel-timed memory-bound rows, and with none at all the prior. */
static void test_fit_wall_launch(void **state) {
  (void)state;
  Gpu g = a100();
  Meas rows[64];
  const Meas *ptr[64];
  int n = 0;
  for (int i = 0; i < 12; i++) {
    double t = (double)(1 << i);
    /* kernel-timed norms: launch 3 us, memory_eff 0.5 */
    Meas *x = &rows[n];
    *x = (Meas){.hw_id = "a100-sxm-80gb", .source = "k", .op = "n",
                .kind = KK_NORM, .kernels = 1,
                .bytes = 2 * (2 * t * 4096 + 4096)};
    x->measured = 3e-6 + x->bytes / (g.bandwidth * 0.5);
    ptr[n] = x;
    n++;
    /* wall-clock softmaxes: a 20 us floor (host + the kernel's own fixed
     * cost, whatever it is) plus bytes at memory_eff 0.6 */
    x = &rows[n];
    *x = (Meas){.hw_id = "a100-sxm-80gb", .source = "w", .op = "s",
                .kind = KK_SOFTMAX, .kernels = 1, .wall = true,
                .bytes = 1e6 * t, .overhead = 20e-6};
    x->measured = 20e-6 + x->bytes / (g.bandwidth * 0.6);
    ptr[n] = x;
    n++;
  }
  Calib c;
  memset(&c, 0, sizeof(c));
  calib_fit(ptr, n, &g, &c);
  assert_double_near(c.k[KK_NORM].launch, 3e-6, 1e-3 * 3e-6);
  assert_double_near(c.k[KK_SOFTMAX].memory_eff, 0.6, 1e-3);
  /* the pooled kernel-timed rows are the norms alone: launch 3 us */
  assert_double_near(c.k[KK_SOFTMAX].launch, 3e-6, 1e-3 * 3e-6);
  /* wall-clock rows only: the documented prior */
  Calib w;
  int wn = 0;
  const Meas *wall[32];
  for (int i = 0; i < n; i++)
    if (ptr[i]->wall)
      wall[wn++] = ptr[i];
  memset(&w, 0, sizeof(w));
  calib_fit(wall, wn, &g, &w);
  assert_double_exact(w.k[KK_SOFTMAX].launch, CALIB_LAUNCH_PRIOR_US * 1e-6);
  assert_double_exact(w.k[KK_GEMM].launch, CALIB_LAUNCH_PRIOR_US * 1e-6);
  assert_double_near(w.k[KK_SOFTMAX].memory_eff, 0.6, 1e-3);
}

/* A host-timed (wall-clock) sweep: the host's work after the launch hides
 * the GPU's first microseconds, so a kernel shorter than that slack leaves
 * the sweep at its floor. Rows made with a 20 us floor, a 6 us slack and
 * memory_eff 0.6: the fit finds both again. */
static void test_fit_wall_slack(void **state) {
  (void)state;
  Gpu g = a100();
  Meas rows[16];
  const Meas *ptr[16];
  for (int i = 0; i < 12; i++) {
    rows[i] = (Meas){.hw_id = "a100-sxm-80gb", .source = "w", .op = "s",
                     .kind = KK_SOFTMAX, .kernels = 1, .wall = true,
                     .bytes = 131072.0 * (1 << i), .overhead = 20e-6};
    double gpu = rows[i].bytes / (g.bandwidth * 0.6);
    rows[i].measured = 20e-6 + (gpu > 6e-6 ? gpu - 6e-6 : 0);
    ptr[i] = &rows[i];
  }
  Calib c;
  memset(&c, 0, sizeof(c));
  calib_fit(ptr, 12, &g, &c);
  assert_double_near(c.k[KK_SOFTMAX].wall_slack, 6e-6, 1e-2);
  assert_double_near(c.k[KK_SOFTMAX].memory_eff, 0.6, 1e-3);
  /* kernel-timed rows never see it */
  assert_double_exact(c.k[KK_GEMM].wall_slack, 0);
  /* By hand, with launch 3 us, memory_eff 0.5, slack 6 us, floor 20 us:
   * one kernel of 2,039,000 bytes runs 2,039,000 / (2039e9 * 0.5) = 2 us
   * < 6 us: the floor, 20 us. Two kernels of 20,390,000 bytes: GPU time
   * after the first launch (held in the floor) = 3 us + 2 * 20 us = 43 us,
   * less the slack: 20 + 37 = 57 us. Kernel-timed, the same two: 2 * (3 +
   * 20) = 46 us. */
  Calib h;
  memset(&h, 0, sizeof(h));
  h.k[KK_SOFTMAX] = (KernelFit){
      .launch = 3e-6, .memory_eff = 0.5, .wall_slack = 6e-6, .compute_eff = 1};
  Meas w = {.kind = KK_SOFTMAX, .kernels = 1, .wall = true, .bytes = 2039000,
            .overhead = 20e-6};
  assert_double_near(calib_meas_predict(&h, &g, &w), 20e-6, 1e-12);
  w.kernels = 2;
  w.bytes = 20390000;
  assert_double_near(calib_meas_predict(&h, &g, &w), 57e-6, 1e-12);
  w.wall = false;
  w.overhead = 0;
  assert_double_near(calib_meas_predict(&h, &g, &w), 46e-6, 1e-12);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fit_wall_slack),
      cmocka_unit_test(test_fit_csv),
      cmocka_unit_test(test_fit_recovers),
      cmocka_unit_test(test_fit_wall_launch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
