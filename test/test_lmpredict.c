/* test_lmpredict.c: the public C library (include/lmpredict.h): its
 * results against lmrun and hand-derived values, its errors (every field
 * filled), examples/predict.c against lmrun, and the shared library's
 * exports. */
#include "testutil.h"
#include "lmpredict.h"
#include "http.h"

static const char *MODEL = "models/llama-2-7b-hf.json";
static lmp_data *data;
static lmp_model *llama;

static int group_setup(void **state) {
  (void)state;
  data = lmp_open(NULL, NULL, NULL, NULL); /* the defaults: lm_home() */
  llama = data ? lmp_model_load(data, MODEL, NULL) : NULL;
  return llama ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  lmp_model_free(llama);
  lmp_close(data);
  return 0;
}

static void test_lmpredict_version(void **state) {
  (void)state;
  assert_string_equal(lmp_version(), "0.2.0"); /* the Makefile's VERSION */
}

/* lmp_result_json is lmrun's --format json document, byte for byte, with
 * the same options (and lmp_result_text the table). */
static void test_lmpredict_same_as_lmrun(void **state) {
  (void)state;
  static const struct {
    const char *args;
    const char *opts[8][2];
  } cases[] = {
      {"-B 4 -S 1024", {{"batch", "4"}, {"seq-len", "1024"}}},
      {"--attention flash --w-bits 4 --kv-bits 8 --hardware a100-sxm-80gb "
       "--phase decode",
       {{"attention", "flash"}, {"w_bits", "4"}, {"kv-bits", "8"},
        {"hardware", "a100-sxm-80gb"}, {"phase", "decode"}}},
      {"-B 8 --a-bits 8 --w-bits 8 --8bit-format fp8 --embed-bits 8",
       {{"batch", "8"}, {"a-bits", "8"}, {"w-bits", "8"},
        {"8bit-format", "fp8"}, {"embed_bits", "8"}}},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    lmp_options *o = lmp_options_new();
    lmp_error e;
    for (int k = 0; cases[i].opts[k][0]; k++)
      assert_int_equal(lmp_options_set(o, cases[i].opts[k][0],
                                       cases[i].opts[k][1], &e), 0);
    lmp_result *r = lmp_predict(data, llama, o, &e);
    assert_non_null(r);
    char *json = lmp_result_json(r), *out = NULL;
    assert_int_equal(tu_run(&out, "%s %s %s --format json 2>/dev/null",
                            tu_bin("lmrun"), MODEL, cases[i].args), 0);
    assert_string_equal(json, out);
    lmp_free(json);
    free(out);
    char *table = lmp_result_text(r);
    assert_int_equal(tu_run(&out, "%s %s %s 2>/dev/null", tu_bin("lmrun"),
                            MODEL, cases[i].args), 0);
    assert_string_equal(table, out);
    lmp_free(table);
    free(out);
    lmp_result_free(r);
    lmp_options_free(o);
  }
}

/* Rows and summary without JSON, against published or hand figures:
 * q_proj in prefill at B 1, S 2048 is 2 x 2048 x 4096 x 4096 FLOPs and
 * reads its 4096 x 4096 x 2-byte weight; the weights held are Llama-2-7B's
 * 6,738,415,616 parameters at 2 bytes plus the rotary embedding's inv_freq
 * buffer, head_dim / 2 = 64 values in FP32 (256 bytes). */
static void test_lmpredict_rows_and_summary(void **state) {
  (void)state;
  lmp_options *o = lmp_options_new();
  /* the roofline bound first (lmrun --roofline): eager attention, 21 rows */
  assert_int_equal(lmp_options_set(o, "roofline", "yes", NULL), 0);
  lmp_result *r = lmp_predict(data, llama, o, NULL);
  assert_non_null(r);
  /* a model file and a prediction never load libcurl (only a fetch does) */
  assert_false(http_curl_loaded());
  int n = lmp_result_rows(r, "prefill");
  assert_int_equal(n, 21);
  assert_int_equal(lmp_result_rows(r, "decode"), n);
  assert_int_equal(lmp_result_rows(r, "both"), -1);
  int q = -1;
  for (int i = 0; i < n; i++)
    if (strcmp(lmp_result_row_name(r, i, "op"), "q_proj") == 0)
      q = i;
  assert_true(q >= 0);
  assert_string_equal(lmp_result_row_name(r, q, "path"),
                      "model.layers.self_attn.q_proj");
  assert_string_equal(lmp_result_row_name(r, q, "module"),
                      "torch.nn.modules.linear.Linear");
  assert_null(lmp_result_row_name(r, q, "nope"));
  assert_null(lmp_result_row_name(r, n, "op"));
  assert_double_exact(lmp_result_row(r, "prefill", q, "count"), 32);
  assert_double_exact(lmp_result_row(r, "prefill", q, "flops"),
                      2.0 * 2048 * 4096 * 4096);
  assert_double_exact(lmp_result_row(r, "prefill", q, "weight_bytes"),
                      4096.0 * 4096 * 2);
  assert_double_exact(lmp_result_row(r, "decode", q, "flops"), 2.0 * 4096 * 4096);
  /* compute bound on h100-sxm's 989.4 TFLOP/s */
  assert_double_exact(lmp_result_row(r, "prefill", q, "time_s"),
                      2.0 * 2048 * 4096 * 4096 / 989.4e12);
  assert_true(isnan(lmp_result_row(r, "prefill", q, "nope")));
  assert_true(isnan(lmp_result_row(r, "prefill", -1, "flops")));
  assert_double_exact(lmp_result_summary(r, "weight_bytes"), 6738415616.0 * 2 + 64 * 4);
  assert_double_exact(lmp_result_summary(r, "capacity_bytes"), 80.0 * 1073741824);
  assert_double_exact(lmp_result_summary(r, "fits"), 1);
  assert_double_exact(lmp_result_summary(r, "tokens_per_s"),
                      1 / lmp_result_summary(r, "tpot_s"));
  assert_true(lmp_result_summary(r, "max_batch") > 1);
  assert_true(isnan(lmp_result_summary(r, "nope")));
  assert_string_equal(lmp_result_warnings(r), "");
  double bound = lmp_result_row(r, "prefill", q, "time_s");
  assert_double_exact(lmp_result_row(r, "prefill", q, "roofline_time_s"), bound);
  assert_double_exact(lmp_result_summary(r, "ttft_roofline_s"),
                      lmp_result_summary(r, "ttft_s"));
  lmp_result_free(r);
  /* the calibrated default (engine vllm, flash attention: 19 rows): the
   * bound is unchanged for the projections, the prediction above it */
  lmp_options *c = lmp_options_new();
  lmp_result *rc = lmp_predict(data, llama, c, NULL);
  assert_non_null(rc);
  assert_int_equal(lmp_result_rows(rc, "prefill"), 19);
  for (int i = 0; i < 19; i++)
    if (strcmp(lmp_result_row_name(rc, i, "op"), "q_proj") == 0)
      q = i;
  assert_double_exact(lmp_result_row(rc, "prefill", q, "roofline_time_s"), bound);
  assert_true(lmp_result_row(rc, "prefill", q, "time_s") > bound);
  assert_true(lmp_result_summary(rc, "ttft_s") > lmp_result_summary(rc, "ttft_roofline_s"));
  lmp_result_free(rc);
  assert_int_equal(lmp_options_set(c, "engine", "bogus", NULL), 0);
  lmp_error err;
  assert_null(lmp_predict(data, llama, c, &err));
  assert_non_null(strstr(err.message, "no serving engine 'bogus'"));
  assert_int_equal(lmp_options_set(c, "engine", "a/b", &err), -1);
  assert_non_null(strstr(err.message, "--engine is an engine id"));
  lmp_options_free(c);
  /* max-batch no: the summary's max_batch is 0, everything else equal */
  assert_int_equal(lmp_options_set(o, "max_batch", "no", NULL), 0);
  r = lmp_predict(data, llama, o, NULL);
  assert_double_exact(lmp_result_summary(r, "max_batch"), 0);
  assert_double_exact(lmp_result_summary(r, "weight_bytes"), 6738415616.0 * 2 + 64 * 4);
  lmp_result_free(r);
  /* a sequence past max_position_embeddings (4096) warns, as lmrun does */
  assert_int_equal(lmp_options_set(o, "seq-len", "5000", NULL), 0);
  r = lmp_predict(data, llama, o, NULL);
  assert_string_equal(lmp_result_warnings(r),
                      "-S 5000 exceeds the model's max_position_embeddings (4096)\n");
  lmp_result_free(r);
  lmp_options_free(o);
}

/* Every option error gives lmrun's own message (test_lmrun_cli.c checks
 * lmrun prints these) and leaves the options unchanged. */
static void test_lmpredict_option_errors(void **state) {
  (void)state;
  static const struct {
    const char *name, *value, *msg;
  } cases[] = {
      {"batch", "0", "-B must be at least 1"},
      {"seq-len", "0", "-S must be at least 1"},
      {"batch", "abc", "-B expects a whole number, not 'abc'"},
      {"batch", "", "-B expects a whole number, not ''"},
      {"batch", "1.5", "-B expects a whole number, not '1.5'"},
      {"batch", "-1", "-B expects a whole number, not '-1'"},
      {"batch", "1048577", "-B 1048577 is too large (at most 1048576)"},
      {"batch", "99999999999999999999999",
       "-B 99999999999999999999999 is too large (at most 1048576)"},
      {"seq_len", "16777217", "-S 16777217 is too large (at most 16777216)"},
      {"format", "xml", "--format is table, json, csv, markdown or html, not 'xml'"},
      {"w-bits", "3", "--w-bits is 16, 8 or 4, not '3'"},
      {"kv-bits", "32", "--kv-bits is 16, 8 or 4, not '32'"},
      {"embed-bits", "2", "--embed-bits is 16, 8 or 4, not '2'"},
      {"attention", "sdpa", "--attention is eager or flash, not 'sdpa'"},
      {"phase", "both", "--phase is prefill, decode or all, not 'both'"},
      {"8bit-format", "fp4", "--8bit-format is int8 or fp8, not 'fp4'"},
      {"8bit-format", "auto", "--8bit-format is int8 or fp8, not 'auto'"},
      {"max-batch", "maybe", "max-batch is no or yes, not 'maybe'"},
      {"bogus", "1", "unknown option 'bogus'"},
      {"batch-", "1", "unknown option 'batch-'"},
      {"hardware", NULL, "--hardware needs a value"},
  };
  lmp_options *o = lmp_options_new();
  lmp_result *before = lmp_predict(data, llama, o, NULL);
  char *want = lmp_result_json(before);
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    lmp_error e;
    memset(&e, 0, sizeof(e));
    int rc = lmp_options_set(o, cases[i].name, cases[i].value, &e);
    if (rc != -1 || strcmp(e.message, cases[i].msg) != 0)
      print_error("case %zu: rc %d, '%s'\n", i, rc, e.message);
    assert_int_equal(rc, -1);
    assert_int_equal(e.set, 1);
    assert_string_equal(e.message, cases[i].msg);
    char text[1200];
    snprintf(text, sizeof(text), "%s\n", cases[i].msg);
    assert_string_equal(e.text, text);
    assert_string_equal(e.file, "");
    assert_int_equal(e.line, 0);
    assert_int_equal(lmp_options_set(o, cases[i].name, cases[i].value, NULL), -1);
  }
  lmp_result *after = lmp_predict(data, llama, o, NULL);
  char *got = lmp_result_json(after);
  assert_string_equal(got, want);
  lmp_free(want);
  lmp_free(got);
  lmp_result_free(before);
  lmp_result_free(after);
  lmp_options_free(o);
}

/* Errors from files: the file, the JSON path, line and column, and the
 * text lmrun prints after "lmrun: " (with the caret). */
static void test_lmpredict_file_errors(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  lmp_error e;
  /* a model that does not exist */
  assert_null(lmp_model_load(data, "/nonexistent/model.json", &e));
  assert_int_equal(e.set, 1);
  assert_string_equal(e.file, "/nonexistent/model.json");
  assert_contains(e.message, "cannot open");
  assert_contains(e.text, "/nonexistent/model.json: error: cannot open");
  /* a JSON syntax error: line 3, column 2, with its caret */
  char *bad = path_join(dir, "bad.json");
  tu_write(bad, "{\"model\": \"x\",\n \"config\": {}\n \"class\": 1}\n");
  assert_null(lmp_model_load(data, bad, &e));
  assert_int_equal(e.line, 3);
  assert_int_equal(e.column, 2);
  assert_string_equal(e.message, "invalid JSON: '}' expected near '\"class\"'");
  char *want = NULL;
  assert_int_equal(tu_run(&want, "%s %s 2>&1", tu_bin("lmrun"), bad), 1);
  assert_true(strncmp(want, "lmrun: ", 7) == 0);
  assert_string_equal(e.text, want + 7); /* exactly what lmrun prints */
  assert_contains(e.text, "\n       |  ^");
  free(want);
  /* a located error inside a valid document: the JSON path too */
  char *m = tu_read(MODEL);
  char *u = tu_replace(m, "\"num_hidden_layers\": 32", "\"num_hidden_layers\": -1");
  char *neg = path_join(dir, "neg.json");
  tu_write(neg, u);
  lmp_model *nm = lmp_model_load(data, neg, &e);
  lmp_options *o = lmp_options_new();
  lmp_result *r = NULL;
  if (nm) /* checked when the template is evaluated */
    r = lmp_predict(data, nm, o, &e);
  assert_null(r);
  lmp_options_free(o);
  assert_int_equal(e.set, 1);
  assert_contains(e.file, "neg.json");
  assert_true(e.where[0] != '\0');
  assert_true(e.line > 0 && e.column > 0);
  assert_contains(e.text, "^");
  lmp_model_free(nm);
  /* a module database that does not exist; err may be NULL */
  assert_null(lmp_open("/nonexistent/db.json", NULL, NULL, &e));
  assert_string_equal(e.file, "/nonexistent/db.json");
  assert_contains(e.text, "/nonexistent/db.json: error: cannot open");
  assert_null(lmp_open("/nonexistent/db.json", NULL, NULL, NULL));
  assert_null(lmp_open(NULL, NULL, bad, &e));
  assert_int_equal(e.line, 3);
  tu_rm_rf(dir);
  free(dir);
  free(bad);
  free(m);
  free(u);
  free(neg);
}

/* An unknown GPU and a GPU without the 8-bit format asked for. */
static void test_lmpredict_hardware_errors(void **state) {
  (void)state;
  lmp_options *o = lmp_options_new();
  lmp_error e;
  assert_int_equal(lmp_options_set(o, "hardware", "h100", &e), 0);
  assert_null(lmp_predict(data, llama, o, &e));
  assert_string_equal(e.file, "hardware.json");
  assert_contains(e.message, "no GPU 'h100' (known: a100-sxm-40gb, ");
  assert_contains(e.text, "hardware.json: error: no GPU 'h100'");
  assert_int_equal(lmp_options_set(o, "hardware", "a100-sxm-40gb", &e), 0);
  assert_int_equal(lmp_options_set(o, "8bit-format", "fp8", &e), 0);
  assert_null(lmp_predict(data, llama, o, &e));
  assert_string_equal(e.message,
                      "a100-sxm-40gb has no FP8 peak in the hardware database");
  assert_null(lmp_predict(data, llama, o, NULL));
  lmp_options_free(o);
  /* the GPU list */
  char *hw = lmp_hardware_json(data);
  json_error_t je;
  json_t *j = json_loads(hw, 0, &je);
  assert_true(json_is_array(j));
  json_t *h = tu_json_find(j, "id", "h100-sxm");
  assert_non_null(h);
  assert_double_exact(json_number_value(json_object_get(h, "fp16_tflops")), 989.4);
  assert_non_null(json_object_get(h, "sources"));
  json_decref(j);
  lmp_free(hw);
  char *text = lmp_hardware_text(data), *out = NULL;
  assert_int_equal(tu_run(&out, "%s --list-hardware", tu_bin("lmrun")), 0);
  assert_string_equal(text, out);
  lmp_free(text);
  free(out);
}

/* examples/predict.c, linked to liblmpredict.so and to liblmpredict.a,
 * prints lmrun's JSON document. */
static void test_lmpredict_example(void **state) {
  (void)state;
  static const char *const progs[] = {"build/predict", "build/predict-static"};
  char *want = NULL;
  assert_int_equal(tu_run(&want, "%s %s -B 4 -S 1024 --format json 2>/dev/null",
                          tu_bin("lmrun"), MODEL), 0);
  for (size_t i = 0; i < LM_ARRAY_LEN(progs); i++) {
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s %s 4 1024", progs[i], MODEL), 0);
    assert_string_equal(out, want);
    free(out);
    assert_int_equal(tu_run(&out, "%s %s 0 1024", progs[i], MODEL), 1);
    assert_string_equal(out, "predict: -B must be at least 1\n");
    free(out);
  }
  free(want);
}

/* The .so exports lmp_* only and needs no text relocations. */
static void test_lmpredict_shared_library(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(tu_run(&out, "readelf -d build/liblmpredict.so"), 0);
  assert_contains(out, "(SONAME)");
  assert_not_contains(out, "TEXTREL");
  /* libcurl is loaded when the network is used, never linked: its
   * dynamic linking cost every process ~5 ms (DESIGN.md, start-up) */
  assert_contains(out, "libjansson.so");
  assert_not_contains(out, "libcurl");
  free(out);
  int rc = tu_run(&out, "test -f \"$(pkg-config --variable=libdir "
                        "jansson)/libjansson.a\" && echo yes");
  bool static_jansson = rc == 0 && out && strcmp(out, "yes\n") == 0;
  free(out);
  const char *progs[] = {"lmrun", "lmgen", "lmcalib"};
  for (size_t i = 0; i < LM_ARRAY_LEN(progs); i++) {
    assert_int_equal(tu_run(&out, "readelf -d %s", progs[i]), 0);
    assert_contains(out, "(NEEDED)");
    assert_not_contains(out, "libcurl");
    /* Jansson is linked in where its archive exists (the Makefile's
     * PROG_LIBS): one library fewer to load at start */
    if (static_jansson)
      assert_not_contains(out, "libjansson");
    free(out);
  }
  assert_int_equal(tu_run(&out, "nm -D --defined-only build/liblmpredict.so"), 0);
  int n = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    const char *name = strrchr(line, ' ');
    assert_non_null(name);
    if (strncmp(name + 1, "lmp_", 4) != 0)
      print_error("exported: %s\n", line);
    assert_true(strncmp(name + 1, "lmp_", 4) == 0);
    n++;
  }
  assert_true(n >= 17); /* the functions of lmpredict.h */
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lmpredict_version),
      cmocka_unit_test(test_lmpredict_same_as_lmrun),
      cmocka_unit_test(test_lmpredict_rows_and_summary),
      cmocka_unit_test(test_lmpredict_option_errors),
      cmocka_unit_test(test_lmpredict_file_errors),
      cmocka_unit_test(test_lmpredict_hardware_errors),
      cmocka_unit_test(test_lmpredict_example),
      cmocka_unit_test(test_lmpredict_shared_library),
  };
  return cmocka_run_group_tests_name("lmpredict", tests, group_setup,
                                     group_teardown);
}
