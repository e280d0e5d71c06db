/* test_metric.c: the metric table (include/gen.h LM_METRICS, gen/metric.c). */
#include "testutil.h"

/* The eight metrics of DESIGN.md §3, in order: six per-step traffic
 * metrics of an operation, then two resident-state metrics. */
static void test_metric_names_and_split(void **state) {
  (void)state;
  static const char *const want[] = {
      "flops",         "weight_bytes",   "act_read_bytes", "act_write_bytes",
      "kv_read_bytes", "kv_write_bytes", "param_bytes",    "kv_cache_bytes"};
  assert_int_equal(M_COUNT, LM_ARRAY_LEN(want));
  assert_int_equal(M_TRAFFIC, 6);
  for (int m = 0; m < M_COUNT; m++) {
    assert_string_equal(metric_name[m], want[m]);
    assert_int_equal(metric_lookup(want[m]), m);
    /* traffic metrics have a table heading, state metrics none */
    if (m < M_TRAFFIC)
      assert_non_null(metric_heading[m]);
    else
      assert_null(metric_heading[m]);
  }
  assert_int_equal(metric_lookup("bytes"), -1);
  assert_int_equal(metric_lookup(""), -1);
  assert_string_equal(metric_heading[M_FLOPS], "FLOPs");
  assert_string_equal(metric_unit[M_FLOPS], "");
  assert_string_equal(metric_unit[M_KV_WRITE_BYTES], "B");
}

/* bytes = weight + act read + act write + KV read + KV write: FLOPs and
 * the state metrics are not traffic bytes. */
static void test_metric_bytes(void **state) {
  (void)state;
  double v[M_COUNT] = {[M_FLOPS] = 1000, [M_WEIGHT_BYTES] = 1,
                       [M_ACT_READ_BYTES] = 20, [M_ACT_WRITE_BYTES] = 300,
                       [M_KV_READ_BYTES] = 4000, [M_KV_WRITE_BYTES] = 50000,
                       [M_PARAM_BYTES] = 7e9, [M_KV_CACHE_BYTES] = 8e9};
  assert_double_exact(metric_bytes(v), 54321);
  double z[M_TRAFFIC] = {0};
  assert_double_exact(metric_bytes(z), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metric_names_and_split),
      cmocka_unit_test(test_metric_bytes),
  };
  return cmocka_run_group_tests_name("metric", tests, NULL, NULL);
}
