/* test_lmcalib_cli.c: end-to-end tests of lmcalib and the calibration
 * data: the shipped A100 and H100 calibrations are reproduced from the
 * committed measurements, tools/measure_gpu.py's CSV is what the fitter
 * reads, the validation table prints, bad input is reported. */
#include "testutil.h"

#define DATA "test/data/calibration"

/* The "kernels" objects of two calibration files are equal. */
static void same_kernels(const char *a, const char *b) {
  json_error_t je;
  json_t *x = json_load_file(a, 0, &je), *y = json_load_file(b, 0, &je);
  assert_non_null(x);
  assert_non_null(y);
  if (!json_equal(json_object_get(x, "kernels"),
                  json_object_get(y, "kernels"))) {
    char *s = json_dumps(json_object_get(x, "kernels"), JSON_INDENT(1));
    char *t = json_dumps(json_object_get(y, "kernels"), JSON_INDENT(1));
    print_error("%s and %s differ:\n%s\n%s\n", a, b, s, t);
    free(s);
    free(t);
  }
  assert_true(
      json_equal(json_object_get(x, "kernels"), json_object_get(y, "kernels")));
  json_decref(x);
  json_decref(y);
}

static void test_lmcalib_reproduces_shipped(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *out = NULL;
  /* the kernel CSV from the two measurement copies and models/ */
  assert_int_equal(tu_run(&out,
                          "python3 tools/convert_calibration.py %s/k.csv " DATA
                          "/vidur.csv " DATA "/llmcompass.csv",
                          dir),
                   0);
  free(out);
  char *k = path_join(dir, "k.csv");
  char *mine = tu_read(k), *shipped = tu_read(DATA "/kernels.csv");
  assert_string_equal(mine, shipped);
  free(mine);
  free(shipped);
  const char *gpus[] = {"a100-sxm-80gb", "h100-sxm"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(tu_run(&out,
                            "%s --fit " DATA "/kernels.csv --hardware "
                            "%s --out %s",
                            tu_bin("lmcalib"), gpus[i], dir),
                     0);
    assert_contains(out, "rows fitted, median |error|");
    free(out);
    char name[64], ship[128];
    snprintf(name, sizeof(name), "%s.json", gpus[i]);
    snprintf(ship, sizeof(ship), "calibration/%s.json", gpus[i]);
    char *p = path_join(dir, name);
    same_kernels(p, ship);
    free(p);
    snprintf(name, sizeof(name), "%s.residuals.csv", gpus[i]);
    snprintf(ship, sizeof(ship), "calibration/%s.residuals.csv", gpus[i]);
    p = path_join(dir, name);
    char *r1 = tu_read(p), *r2 = tu_read(ship);
    assert_string_equal(r1, r2);
    free(r1);
    free(r2);
    free(p);
  }
  free(k);
  tu_rm_rf(dir);
  free(dir);
}

/* tools/measure_gpu.py --dry-run writes the rows it would measure, with
 * times from a known model (a 4 us launch, 80% of 300 TFLOP/s and of
 * 2 TB/s): lmcalib reads that exact format and finds the constants. */
static void test_lmcalib_measure_script_format(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *out = NULL;
  assert_int_equal(tu_run(&out, "python3 -m py_compile tools/measure_gpu.py"),
                   0);
  free(out);
  assert_int_equal(tu_run(&out,
                          "python3 tools/measure_gpu.py --dry-run "
                          "--hw-id a100-sxm-80gb -o %s/m.csv",
                          dir),
                   0);
  free(out);
  assert_int_equal(tu_run(&out,
                          "%s --fit %s/m.csv --hardware a100-sxm-80gb "
                          "--out %s",
                          tu_bin("lmcalib"), dir, dir),
                   0);
  free(out);
  char *p = path_join(dir, "a100-sxm-80gb.json");
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
  assert_non_null(j);
  json_t *kern = json_object_get(j, "kernels");
  json_t *att = json_object_get(kern, "attention");
  json_t *norm = json_object_get(kern, "norm");
  /* attention: 0.8 * 300 / 312 of the A100's peak, 0.8 * 2e12 / 2039e9 of
   * its bandwidth, 4 us (rounded to 4 digits in the file) */
  assert_double_near(json_number_value(json_object_get(att, "compute_eff")),
                     0.8 * 300 / 312, 1e-3);
  assert_double_near(json_number_value(json_object_get(att, "memory_eff")),
                     0.8 * 2e12 / 2039e9, 1e-3);
  assert_double_near(json_number_value(json_object_get(att, "launch_us")), 4,
                     1e-3);
  assert_double_near(json_number_value(json_object_get(norm, "memory_eff")),
                     0.8 * 2e12 / 2039e9, 1e-3);
  assert_double_near(json_number_value(json_object_get(norm, "launch_us")), 4,
                     1e-3);
  json_decref(j);
  free(p);
  tu_rm_rf(dir);
  free(dir);
}

static void test_lmcalib_validate(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(
      tu_run(&out, "%s --validate " DATA "/kernels.csv", tu_bin("lmcalib")), 0);
  assert_contains(out, "leave one source out");
  assert_contains(out, "a100-sxm-80gb   source vidur                 GEMM");
  assert_contains(out,
                  "a100-sxm-80gb   source llmcompass            attention");
  assert_contains(out, "h100-sxm        model vidur/llama-2-70b-hf   GEMM");
  assert_not_contains(out, "h100-sxm        source");
  free(out);
}

static void test_lmcalib_bad_input(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *bad = path_join(dir, "bad.csv");
  tu_write(bad, "hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,"
                "overhead_us,measured_us\n"
                "a100-sxm-80gb,me,kernel,x,norm,1,0,0,0,0,100,0,abc\n");
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s --fit %s --hardware a100-sxm-80gb --out %s",
                          tu_bin("lmcalib"), bad, dir),
                   1);
  assert_contains(out, "bad.csv:2:");
  assert_contains(out, "measured_us must be a number of at least 0, not 'abc'");
  assert_contains(out, "^");
  free(out);
  /* nothing half-written */
  char *j = path_join(dir, "a100-sxm-80gb.json");
  assert_int_equal(access(j, F_OK), -1);
  free(j);
  assert_int_equal(tu_run(&out,
                          "%s --fit " DATA "/kernels.csv --hardware "
                          "nope --out %s",
                          tu_bin("lmcalib"), dir),
                   1);
  assert_contains(out, "no GPU 'nope'");
  free(out);
  assert_int_equal(tu_run(&out,
                          "%s --fit " DATA "/kernels.csv --hardware "
                          "h200 --out %s",
                          tu_bin("lmcalib"), dir),
                   1);
  assert_contains(out, "no rows measured on 'h200'");
  free(out);
  assert_int_equal(tu_run(&out, "%s --fit x.csv", tu_bin("lmcalib")), 2);
  assert_contains(out, "--fit needs --hardware ID");
  free(out);
  assert_int_equal(tu_run(&out, "%s", tu_bin("lmcalib")), 2);
  assert_contains(out, "give --fit or --validate");
  free(out);
  free(bad);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lmcalib_reproduces_shipped),
      cmocka_unit_test(test_lmcalib_measure_script_format),
      cmocka_unit_test(test_lmcalib_validate),
      cmocka_unit_test(test_lmcalib_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
