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
  assert_contains(out, "give --fit, --validate or --score");
  free(out);
  free(bad);
  tu_rm_rf(dir);
  free(dir);
}

/* tools/aic_kernels.py: AIConfigurator's table layout (three made-up rows
 * per table, columns as its collectors write them) into the kernel CSV,
 * every number by hand (A100: 108 SMs, 40 MiB L2); lmcalib reads it. */
static void test_lmcalib_aic_tables(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *g = path_join(dir, "gemm.csv"), *c = path_join(dir, "ctx.csv"),
       *d = path_join(dir, "gen.csv"), *o = path_join(dir, "k.csv");
  tu_write(g, "framework,version,device,op_name,kernel_source,gemm_dtype,m,n,"
              "k,latency\n"
              "VLLM,0,A100,gemm,x,bfloat16,4096,4096,4096,0.5\n"
              "VLLM,0,A100,gemm,x,fp8,4096,4096,4096,0.3\n");
  const char *attn_head =
      "framework,version,device,op_name,kernel_source,batch_size,isl,"
      "num_heads,num_key_value_heads,head_dim,beam_width,attn_dtype,"
      "kv_cache_dtype,step,latency\n";
  char *ctx = NULL, *gen = NULL;
  ctx = tu_replace(attn_head, "latency\n",
                   "latency\nVLLM,0,A100,context_attention,x,1,2048,32,8,128,"
                   "1,bfloat16,bfloat16,0,1.0\n");
  gen = tu_replace(attn_head, "latency\n",
                   "latency\nVLLM,0,A100,generation_attention,x,8,1,32,8,128,"
                   "1,bfloat16,fp8,2047,0.1\n");
  tu_write(c, ctx);
  tu_write(d, gen);
  char *out = NULL;
  assert_int_equal(tu_run(&out,
                          "python3 tools/aic_kernels.py --hw-id a100-sxm-80gb "
                          "--source aic/test --gemm %s --context-attention %s "
                          "--generation-attention %s -o %s",
                          g, c, d, o),
                   0);
  assert_contains(out, "skipped 1 rows of dtype fp8");
  free(out);
  char *k = tu_read(o);
  /* GEMM: 2 * 4096^3 FLOPs, 2 * 3 * 4096^2 bytes, 0.5 ms */
  assert_contains(k, "a100-sxm-80gb,aic/test,kernel,gemm,gemm,1,4096,4096,"
                     "4096,137438953472,100663296,0,500\n");
  /* prefill, causal, Br = 128: (2048 + 128) / 2 of 2048 keys = 0.53125;
   * E = 32 * 2048^2 * 0.53125 = 71,303,168, FLOPs E * 517 = 36,863,737,856;
   * 64 query tiles per KV head (4 query heads packed), ceil(108 / 64) = 2
   * heads in flight, 2 MB of K/V in L2: K and V once, 2 * 8 * 2048 * 128 *
   * 2 = 8,388,608; Q and O 2 * 32 * 2048 * 128 * 2 = 33,554,432, LSE 32 *
   * 2048 * 4 = 262,144; the cache write 2 * 8 * 2048 * 128 * (2 + 2) =
   * 16,777,216: 58,982,400 bytes; k = head size 128 */
  assert_contains(k, "a100-sxm-80gb,aic/test,kernel,prefill_attention,"
                     "attention,1,0,0,128,36863737856,58982400,0,1000\n");
  /* decode, L = 2048, FP8 K/V: FLOPs 4 * 8 * 32 * 2048 * 128 + 5 * 8 * 32
   * * 2048 = 271,056,896; K/V 2 * 8 * 8 * 2048 * 128 * 1 = 33,554,432,
   * Q and O 2 * 8 * 32 * 128 * 2 = 131,072, LSE 1,024, cache 2 * 8 * 8 *
   * 128 * 3 = 49,152: 33,735,680 bytes */
  assert_contains(k, "a100-sxm-80gb,aic/test,kernel,decode_attention,"
                     "attention,1,0,0,128,271056896,33735680,0,100\n");
  free(k);
  assert_int_equal(tu_run(&out, "%s --fit %s --hardware a100-sxm-80gb --out %s",
                          tu_bin("lmcalib"), o, dir),
                   0);
  free(out);
  /* a table without the collector's columns is refused by name */
  tu_write(c, "a,b\n1,2\n");
  assert_int_not_equal(tu_run(&out,
                              "python3 tools/aic_kernels.py --hw-id "
                              "a100-sxm-80gb --context-attention %s",
                              c),
                       0);
  assert_contains(out, "lacks column 'batch_size'");
  free(out);
  assert_int_not_equal(tu_run(&out,
                              "python3 tools/aic_kernels.py --hw-id "
                              "a100-sxm-80gb --gemm %s/none.csv",
                              dir),
                       0);
  assert_contains(out, "none.csv: cannot read: No such file or directory");
  assert_null(strstr(out, "Traceback"));
  free(out);
  free(ctx);
  free(gen);
  free(g);
  free(c);
  free(d);
  free(o);
  tu_rm_rf(dir);
  free(dir);
}

/* lmcalib --score: rows predicted with the calibration lmrun uses, by
 * hand. A100: the small GEMM of test_calib (m = 1, k = n = 4096: 3.892 +
 * 21.0676 + 0.1388 x 0.14816 = 24.980 us), measured 25.0 us: error
 * -0.0008. H200 has no measurements: H100's norm constants (4.08 us,
 * memory_eff 0.4603) at H200's 4,800 GB/s: 4.08 + 33,562,624 / (4800e9 x
 * 0.4603) = 19.271 us, measured 20 us: error -0.0365. */
static void test_lmcalib_score(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *csv = path_join(dir, "k.csv"), *res = path_join(dir, "r.csv");
  tu_write(csv, "hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,"
                "overhead_us,measured_us\n"
                "a100-sxm-80gb,me/a,kernel,q,gemm,1,1,4096,4096,33554432,"
                "33570816,0,25.0\n"
                "h200,me/b,kernel,rms,norm,1,0,0,0,0,33562624,0,20\n");
  char *out = NULL;
  assert_int_equal(tu_run(&out, "%s --score %s --residuals %s",
                          tu_bin("lmcalib"), csv, res),
                   0);
  assert_contains(out, "h100-sxm (fallback)");
  free(out);
  char *r = tu_read(res);
  assert_contains(r, "a100-sxm-80gb,a100-sxm-80gb,2,me/a,q,gemm,1,4096,4096,"
                     "33554432,33570816,25,24.9802,-0.0008\n");
  assert_contains(r, "h200,h100-sxm,3,me/b,rms,norm,0,0,0,0,33562624,20,"
                     "19.2706,-0.0365\n");
  free(r);
  /* tools/score_bands.py: the GEMM (n, k = 4096, m = 1) is an LLM shape
   * of the m <= 64 band, -0.08%; the norm is -3.65% */
  assert_int_equal(tu_run(&out, "python3 tools/score_bands.py %s", res), 0);
  assert_contains(out, "a100-sxm-80gb (calibration a100-sxm-80gb), gemm");
  assert_contains(out, "LLM shapes (n, k >= 1024)");
  assert_contains(out, "    m <= 64 ");
  assert_contains(out, "1      0.1%     -0.1%\n");
  assert_contains(out, "h200 (calibration h100-sxm), norm");
  assert_contains(out, "3.6%     -3.6%");
  free(out);
  /* not a residuals file (the kernel CSV itself): one line, exit 1 */
  assert_int_equal(tu_run(&out, "python3 tools/score_bands.py %s", csv), 1);
  assert_contains(out, "not an lmcalib --score --residuals file (missing "
                       "columns: calibration, error)");
  assert_null(strstr(out, "Traceback"));
  free(out);
  /* a residuals file that cannot be written: exit 1, and no table
   * printed for the failed run */
  assert_int_equal(tu_run(&out, "%s --score %s --residuals %s/no/such/r.csv",
                          tu_bin("lmcalib"), csv, dir),
                   1);
  assert_contains(out, "cannot create temporary file");
  assert_null(strstr(out, "median"));
  free(out);
  /* a GPU hardware.json lacks; options that need --score */
  tu_write(csv, "hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,"
                "overhead_us,measured_us\n"
                "nope,me,kernel,rms,norm,1,0,0,0,0,100,0,20\n");
  assert_int_equal(tu_run(&out, "%s --score %s", tu_bin("lmcalib"), csv), 1);
  assert_contains(out, "k.csv: error: line 2: no GPU 'nope' in ");
  assert_contains(out, "hardware.json (lmrun --list-hardware)");
  assert_null(strstr(out, "median")); /* nothing printed before the error */
  free(out);
  assert_int_equal(tu_run(&out, "%s --validate %s --residuals %s",
                          tu_bin("lmcalib"), csv, res),
                   2);
  assert_contains(out, "--calibration and --residuals go with --score");
  free(out);
  free(csv);
  free(res);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lmcalib_reproduces_shipped),
      cmocka_unit_test(test_lmcalib_measure_script_format),
      cmocka_unit_test(test_lmcalib_validate),
      cmocka_unit_test(test_lmcalib_aic_tables),
      cmocka_unit_test(test_lmcalib_score),
      cmocka_unit_test(test_lmcalib_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
