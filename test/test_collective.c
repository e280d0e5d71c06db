/* test_collective.c: runtime/collective.c, the measured collective times of
 * calibration/collectives.json (NCCL) and calibration/custom_all_reduce.json
 * (vLLM's own all-reduce), the engines' choice between them
 * (engines/<id>.json all_reduce), and their use in a calibrated prediction
 * (parallel.c's phase_latency). Every expected time is worked out by hand
 * from the points of the table it reads (quoted in the comments). */
#include "testutil.h"

#include "calib.h"
#include "lmpredict.h"
#include "runtime.h"

static CollCal *shipped;

static int group_setup(void **state) {
  (void)state;
  shipped = collcal_load("calibration/collectives.json", NULL);
  if (!shipped || collcal_extend(shipped, "calibration/custom_all_reduce.json",
                                 NULL, 0, NULL) < 0)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  collcal_free(shipped);
  return 0;
}

/* An all-reduce over the 8 GPUs of an H100 SXM node at two sizes. The
 * table's points around them (bytes, us): [784384, 33.3], [1556480, 35.5];
 * [25034752, 157.0], [50266112, 271.0].
 *   1 MiB  = 1048576:  33.3 + (1048576 - 784384) x (35.5 - 33.3) /
 *            (1556480 - 784384) = 33.3 + 264192 x 2.2 / 772096
 *            = 33.3 + 0.75279 = 34.053 us
 *   32 MiB = 33554432: 157 + (33554432 - 25034752) x (271 - 157) /
 *            (50266112 - 25034752) = 157 + 8519680 x 114 / 25231360
 *            = 157 + 38.494 = 195.49 us
 * (the datasheet bound at 1 MiB: 0.6 us x 14 steps + 1048576 x 14/8 /
 * 450 GB/s = 8.4 + 4.08 = 12.5 us: NCCL takes 2.7 times as long). */
static void test_all_reduce_two_sizes(void **state) {
  (void)state;
  double t1 = collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 8, false,
                           1048576);
  assert_double_near(t1, 34.053e-6, 1e-4);
  assert_double_near(t1, (33.3 + 264192.0 * 2.2 / 772096) * 1e-6, 1e-12);
  double t2 = collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 8, false,
                           33554432);
  assert_double_near(t2, 195.49e-6, 1e-4);
  assert_double_near(t2, (157 + 8519680.0 * 114 / 25231360) * 1e-6, 1e-12);
  /* H200 is on the same table (the same NVLink 4 and NVSwitch board) */
  assert_double_exact(
      collcal_time(shipped, "h200", NULL, COLL_ALL_REDUCE, 8, false, 1048576),
      t1);
}

/* Outside the points: below the first (2048 B, 26.9 us) the first time;
 * above the last (67108864 B, 322 us) its bandwidth: 2 x 67108864 B takes
 * 2 x 322 = 644 us. all_gather, reduce_scatter and all_to_all of b bytes
 * read the all-reduce table at b / 2: all_to_all of 2 MiB = the all-reduce
 * of 1 MiB above. */
static void test_outside_and_other_collectives(void **state) {
  (void)state;
  assert_double_near(
      collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 8, false, 1000),
      26.9e-6, 1e-12);
  assert_double_near(collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 8,
                                  false, 134217728),
                     644e-6, 1e-12);
  assert_double_near(collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_TO_ALL, 8,
                                  false, 2097152),
                     (33.3 + 264192.0 * 2.2 / 772096) * 1e-6, 1e-12);
  /* all_gather of 1 MiB = all-reduce of 524288, between [391168, 33.3] and
   * [784384, 33.3]: 33.3 us */
  assert_double_near(collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_GATHER, 8,
                                  false, 1048576),
                     33.3e-6, 1e-12);
  /* a send of 1 MiB between two H100 nodes: [784384, 44.0], [1556480,
   * 75.0]: 44 + 264192 x 31 / 772096 = 44 + 10.607 = 54.607 us */
  assert_double_near(
      collcal_time(shipped, "h100-sxm", NULL, COLL_SEND, 2, true, 1048576),
      (44 + 264192.0 * 31 / 772096) * 1e-6, 1e-12);
  /* no table: another board, a group size or span not measured */
  assert_true(
      collcal_time(shipped, "b200", NULL, COLL_ALL_REDUCE, 8, false, 1e6) < 0);
  assert_true(collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 16, true,
                           1e6) < 0);
  assert_true(collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 1, false,
                           1e6) < 0);
  assert_true(
      collcal_time(NULL, "h100-sxm", NULL, COLL_ALL_REDUCE, 8, false, 1e6) < 0);
}

/* vLLM's own all-reduce on 8 H100s (calibration/custom_all_reduce.json,
 * from SGLang PR #2904's 'vllm' column: 10.1, 9.3, 11.8, 24.1, 30.4, 45.0
 * us at 512 ... 1048576 float32 elements; the first two pooled to their
 * mean (10.1 + 9.3) / 2 = 9.7 to keep the times non-decreasing). Points
 * (bytes = 4 x elements, us): [16384, 9.7], [131072, 11.8], [1048576,
 * 24.1].
 *   64 KiB = 65536:   9.7 + (65536 - 16384) x (11.8 - 9.7) / (131072 -
 *            16384) = 9.7 + 49152 x 2.1 / 114688 = 9.7 + 0.9 = 10.6 us
 *   512 KiB = 524288: 11.8 + (524288 - 131072) x (24.1 - 11.8) / (1048576
 *            - 131072) = 11.8 + 393216 x 12.3 / 917504 = 11.8 + 5.27143
 *            = 17.07143 us
 * NCCL's table at 64 KiB: 26.9 us (its flat first points); the custom
 * kernel is 2.5 times faster there. H200 shares the table. */
static void test_custom_all_reduce_two_sizes(void **state) {
  (void)state;
  assert_double_near(collcal_time(shipped, "h100-sxm", "vllm_custom",
                                  COLL_ALL_REDUCE, 8, false, 65536),
                     10.6e-6, 1e-12);
  assert_double_near(collcal_time(shipped, "h100-sxm", "vllm_custom",
                                  COLL_ALL_REDUCE, 8, false, 524288),
                     (11.8 + 393216.0 * 12.3 / 917504) * 1e-6, 1e-12);
  assert_double_near(collcal_time(shipped, "h200", "vllm_custom",
                                  COLL_ALL_REDUCE, 8, false, 65536),
                     10.6e-6, 1e-12);
  assert_double_near(
      collcal_time(shipped, "h100-sxm", NULL, COLL_ALL_REDUCE, 8, false, 65536),
      26.9e-6, 1e-12);
  /* no custom table over nodes, for 6 GPUs, or for the sends */
  assert_true(collcal_time(shipped, "h100-sxm", "vllm_custom", COLL_ALL_REDUCE,
                           8, true, 65536) < 0);
  assert_true(collcal_time(shipped, "h100-sxm", "vllm_custom", COLL_ALL_REDUCE,
                           6, false, 65536) < 0);
  assert_true(collcal_time(shipped, "h100-sxm", "vllm_custom", COLL_SEND, 2,
                           false, 65536) < 0);
}

/* The shipped engines' choice (engines/<id>.json all_reduce). vLLM
 * (custom_all_reduce.py): its kernel for 2, 4, 6 or 8 GPUs in one node,
 * below 8192 x 1024 = 8388608 bytes, above 2 GPUs only with NVLink between
 * every pair; else NCCL. TensorRT-LLM v0.5/v0.6 as published (built
 * without --use_custom_all_reduce) and transformers: NCCL always. */
static void test_engine_choice(void **state) {
  (void)state;
  Engine *v = engine_load("engines/vllm.json", NULL);
  Engine *t = engine_load("engines/trtllm.json", NULL);
  Engine *h = engine_load("engines/hf-eager.json", NULL);
  assert_non_null(v);
  assert_non_null(t);
  assert_non_null(h);
  const char *c = "vllm_custom";
  assert_string_equal(engine_all_reduce_kernel(v, 8, 8388607, true, true), c);
  assert_string_equal(engine_all_reduce_kernel(v, 8, 8388608, true, true),
                      "nccl");
  assert_string_equal(engine_all_reduce_kernel(v, 6, 1000, true, true), c);
  assert_string_equal(engine_all_reduce_kernel(v, 4, 1000, true, false),
                      "nccl"); /* 4 PCIe GPUs */
  assert_string_equal(engine_all_reduce_kernel(v, 2, 1000, true, false), c);
  assert_string_equal(engine_all_reduce_kernel(v, 3, 1000, true, true), "nccl");
  assert_string_equal(engine_all_reduce_kernel(v, 16, 1000, false, true),
                      "nccl"); /* two nodes */
  assert_string_equal(engine_all_reduce_kernel(t, 8, 1000, true, true), "nccl");
  assert_string_equal(engine_all_reduce_kernel(h, 2, 1000, true, true), "nccl");
  assert_string_equal(engine_all_reduce_kernel(NULL, 2, 1000, true, true),
                      "nccl");
  engine_free(v);
  engine_free(t);
  engine_free(h);
}

static void want_error(const char *text, const char *msg, int line) {
  Error e;
  err_clear(&e);
  CollCal *c = collcal_load_text("c.json", text, strlen(text), &e);
  assert_null(c);
  assert_contains(e.msg, msg);
  assert_int_equal(e.line, line);
}

#define HEAD                                                                   \
  "{\"format\": \"lm-predictor-collectives\", \"description\": \"d\",\n"       \
  " \"source\": \"s\", \"tables\": [\n"
#define TABLE(coll, gpus, pts)                                                 \
  "{\"hardware\": [\"x\"], \"collective\": \"" coll "\", \"gpus\": " gpus      \
  ", \"span\": \"node\", \"from\": \"f\", \"points\": " pts "}"

/* Bad files are refused with the place of the fault. */
static void test_bad_files(void **state) {
  (void)state;
  want_error(HEAD TABLE("all_reduce", "2", "[[10, 1], [10, 2]]") "]}",
             "message sizes must increase", 3);
  want_error(HEAD TABLE("all_reduce", "2", "[[10, 2], [20, 1]]") "]}",
             "must not take less time", 3);
  want_error(HEAD "\n" TABLE("all_to_all", "2", "[[10, 1]]") "]}",
             "collective is \"all_reduce\" or \"send\"", 4);
  want_error(HEAD TABLE("send", "4", "[[10, 1]]") "]}",
             "a send is between 2 GPUs", 3);
  want_error(HEAD TABLE("all_reduce", "2", "[[10, 1]]") ",\n" TABLE(
                 "all_reduce", "2", "[[10, 1]]") "]}",
             "a second nccl all_reduce table over 2 GPUs", 4);
  want_error(HEAD TABLE("all_reduce", "2", "[[0, 1]]") "]}",
             "a point is [bytes, microseconds]", 3);
  want_error("{\"format\": \"lm-predictor-collectives\", \"description\": "
             "\"d\", \"source\": \"s\", \"tables\": [], \"x\": 1}",
             "unknown member 'x'", 1);
  /* a good one: 1 us at 1000 B, 3 us at 3000 B: 2000 B takes 2 us */
  const char *ok = HEAD TABLE("all_reduce", "2", "[[1000, 1], [3000, 3]]") "]}";
  CollCal *c = collcal_load_text("c.json", ok, strlen(ok), NULL);
  assert_non_null(c);
  assert_double_near(
      collcal_time(c, "x", NULL, COLL_ALL_REDUCE, 2, false, 2000), 2e-6, 1e-12);
  /* a second file: another kernel's table over the same GPUs is added (5
   * us from 10 to 4000 B), the same kernel's again is refused at its place and
   * the set keeps what it had */
  const char *more =
      HEAD "{\"hardware\": [\"x\"], \"kernel\": \"k\", "
           "\"collective\": \"all_reduce\", \"gpus\": 2, \"span\": "
           "\"node\", \"from\": \"f\", \"points\": [[10, 5], [4000, 5]]}]}";
  assert_int_equal(collcal_extend(c, "m.json", more, strlen(more), NULL), 0);
  assert_double_near(collcal_time(c, "x", "k", COLL_ALL_REDUCE, 2, false, 2000),
                     5e-6, 1e-12);
  Error e;
  err_clear(&e);
  assert_int_equal(collcal_extend(c, "m.json", ok, strlen(ok), &e), -1);
  assert_contains(e.msg, "a second nccl all_reduce table over 2 GPUs (node) "
                         "for a GPU of a file loaded before");
  assert_int_equal(e.line, 3);
  assert_double_near(collcal_time(c, "x", "k", COLL_ALL_REDUCE, 2, false, 2000),
                     5e-6, 1e-12);
  collcal_free(c);
}

/* Found in review for fuzz_collective's oracle (every time finite):
 * points were only positive, so [1e-310, 1] (a denormal size) and [1000,
 * 1e308] loaded, and above the last point the time t_last x bytes /
 * bytes_last of 1 GB was 1e-6 x 1e9 / 1e-310 = 1e313 s = inf, and
 * 1e302 x 1e9 / 1000 = 1e308 s. Sizes are from 1 to 1e15 bytes, times at
 * most 1e9 us; the bounds themselves load: [1, 1e9] at 1 GB takes
 * 1e3 s x 1e9 / 1 = 1e12 s (finite). */
static void test_points_bounded(void **state) {
  (void)state;
  want_error(HEAD TABLE("all_reduce", "2", "[[1e-310, 1]]") "]}",
             "bytes from 1 to 1e15", 3);
  want_error(HEAD TABLE("all_reduce", "2", "[[1000, 1e308]]") "]}",
             "microseconds above 0 and at most 1e9", 3);
  want_error(HEAD TABLE("all_reduce", "2", "[[1e16, 1]]") "]}",
             "bytes from 1 to 1e15", 3);
  const char *ok = HEAD TABLE("all_reduce", "2", "[[1, 1e9]]") "]}";
  CollCal *c = collcal_load_text("c.json", ok, strlen(ok), NULL);
  assert_non_null(c);
  assert_double_near(collcal_time(c, "x", NULL, COLL_ALL_REDUCE, 2, false,
                                  1e9) / 1e12, 1.0, 1e-12);
  collcal_free(c);
}

/* Through the library: the tiny Mixtral of test/data/tiny_mixtral (hidden
 * 8, vocabulary 10) at --tp 2 on A100 SXM, B 2, S 4, calibrated (vLLM).
 * Decode's collectives: the embedding's, 2 x o_proj's and 2 x the
 * experts' all-reduces of B T hidden a_bytes = 2 x 1 x 8 x 2 = 32 B, the
 * logits' all-gather of B vocab a_bytes = 2 x 10 x 2 = 40 B (read at
 * 20 B). vLLM runs the 5 all-reduces on its own kernel (2 GPUs, 32 B <
 * 8 MiB): the A100 2-GPU vllm_custom table starts at [2048, 12.13] (SGLang
 * PR #2688: 13.0, 11.3, 12.1 us pooled, (13.0 + 11.3 + 12.1) / 3 =
 * 12.133); the all-gather stays NCCL's, whose table starts at [2048,
 * 10.0]: the step is its rows plus 5 x 12.13 + 10 us. The roofline keeps the
 * datasheet bound (0.6 us a step, 300 GB/s): an all-reduce 2 steps + 32 x
 * (2 x 1/2) / 300e9, the all-gather 1 step + 40 x 1/2 / 300e9. */
static void test_calibrated_step(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  assert_non_null(d);
  lmp_model *m = lmp_model_load(d, "test/data/tiny_mixtral/config.json", &err);
  assert_non_null(m);
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "max-batch", "no", &err), 0);
  assert_int_equal(lmp_options_set(o, "batch", "2", &err), 0);
  assert_int_equal(lmp_options_set(o, "seq-len", "4", &err), 0);
  assert_int_equal(lmp_options_set(o, "tp", "2", &err), 0);
  assert_int_equal(lmp_options_set(o, "hardware", "a100-sxm-80gb", &err), 0);
  lmp_result *r = lmp_predict(d, m, o, &err);
  assert_non_null(r);
  double rows = 0, roof = 0;
  for (int i = 0; i < lmp_result_rows(r, "decode"); i++) {
    double n = lmp_result_row(r, "decode", i, "count");
    rows += n * lmp_result_row(r, "decode", i, "time_s");
    roof += n * lmp_result_row(r, "decode", i, "roofline_time_s");
  }
  assert_double_near(lmp_result_summary(r, "tpot_s") - rows,
                     5 * 12.13e-6 + 10e-6, 1e-9);
  double ar = 2 * 0.6e-6 + 32.0 / 300e9, ag = 0.6e-6 + 20.0 / 300e9;
  assert_double_near(lmp_result_summary(r, "tpot_roofline_s") - roof,
                     5 * ar + ag, 1e-9);
  char *json = lmp_result_json(r);
  assert_contains(json, "\"path\": \"lm_head.all_gather\"");
  assert_contains(json, "\"collective_kernel\": \"vllm_custom\"");
  assert_contains(json, "\"collective_kernel\": \"nccl\"");
  lmp_free(json);
  lmp_result_free(r);
  lmp_options_free(o);
  lmp_model_free(m);
  lmp_close(d);
}

/* The switch at vLLM's size limit, through the library: the tiny Mixtral
 * at --tp 2 on H100 SXM, B 1, prefill of T tokens. Its 5 all-reduces
 * (embedding, 2 x o_proj, 2 x experts) carry T x hidden 8 x 2 = 16 T
 * bytes; the logits' all-gather 1 x 10 x 2 = 20 B, read at 10 B from
 * NCCL's H100 2-GPU table: its first point, 7.0 us.
 *   T = 524287: 8388592 B < 8388608: vLLM's kernel; its H100 2-GPU table
 *     ends at [4194304, 26.6], above which the time grows at that
 *     bandwidth: 26.6 x 8388592 / 4194304 = 53.19990 us
 *   T = 524288: 8388608 B: NCCL; its table's points [6275072, 43.0],
 *     [12566528, 60.0]: 43 + 2113536 x 17 / 6291456 = 43 + 5.7109375 =
 *     48.7109375 us
 * TTFT = the prefill rows + 5 x that + 7.0 us. */
static double comm_total(lmp_data *d, lmp_model *m, const char *T) {
  lmp_error err;
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "max-batch", "no", &err), 0);
  assert_int_equal(lmp_options_set(o, "batch", "1", &err), 0);
  assert_int_equal(lmp_options_set(o, "seq-len", T, &err), 0);
  assert_int_equal(lmp_options_set(o, "tp", "2", &err), 0);
  assert_int_equal(lmp_options_set(o, "hardware", "h100-sxm", &err), 0);
  lmp_result *r = lmp_predict(d, m, o, &err);
  assert_non_null(r);
  double rows = 0;
  for (int i = 0; i < lmp_result_rows(r, "prefill"); i++)
    rows += lmp_result_row(r, "prefill", i, "count") *
            lmp_result_row(r, "prefill", i, "time_s");
  double c = lmp_result_summary(r, "ttft_s") - rows;
  lmp_result_free(r);
  lmp_options_free(o);
  return c;
}

static void test_calibrated_switch(void **state) {
  (void)state;
  lmp_error err;
  lmp_data *d = lmp_open(NULL, NULL, NULL, &err);
  assert_non_null(d);
  lmp_model *m = lmp_model_load(d, "test/data/tiny_mixtral/config.json", &err);
  assert_non_null(m);
  assert_double_near(comm_total(d, m, "524287"),
                     (5 * 26.6 * 8388592 / 4194304 + 7.0) * 1e-6, 1e-9);
  assert_double_near(comm_total(d, m, "524288"),
                     (5 * (43 + 2113536.0 * 17 / 6291456) + 7.0) * 1e-6, 1e-9);
  lmp_model_free(m);
  lmp_close(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_reduce_two_sizes),
      cmocka_unit_test(test_custom_all_reduce_two_sizes),
      cmocka_unit_test(test_engine_choice),
      cmocka_unit_test(test_calibrated_switch),
      cmocka_unit_test(test_outside_and_other_collectives),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_points_bounded),
      cmocka_unit_test(test_calibrated_step),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
