/* test_html.c: runtime/html.c, the --format html page.
 *
 * The page's structure and numbers from lmrun's output (both builds), and
 * the page in a real browser: headless Chromium (Debian's chromium, which
 * `make test` installs: make deps-browser) loads it, takes a screenshot
 * and dumps the DOM after the script ran; the test wants no console
 * message at all, the script's end marker, every operation of both phases
 * in the DOM and a screenshot that is not blank (test/png_stats.py reads
 * the PNG). The browser part runs in the normal build only: the page's
 * bytes are the same in the sanitizer build, whose run checks the C that
 * writes them.
 */
#include "testutil.h"
#include "lmpredict.h"
#include "runtime.h"

#include <jansson.h>

static const char *MODEL = "models/llama-2-7b-hf.json";
static lmp_data *data;
static lmp_model *llama;

static int group_setup(void **state) {
  (void)state;
  data = lmp_open(NULL, NULL, NULL, NULL);
  llama = data ? lmp_model_load(data, MODEL, NULL) : NULL;
  return llama ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  lmp_model_free(llama);
  lmp_close(data);
  return 0;
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

/* The explanations embedded in the page, parsed. */
static json_t *explanations(const char *page) {
  const char *open = "<script type=\"application/json\" id=\"explain-data\">";
  const char *a = strstr(page, open);
  assert_non_null(a);
  a += strlen(open);
  const char *e = strstr(a, "</script>");
  assert_non_null(e);
  json_error_t je;
  json_t *j = json_loadb(a, (size_t)(e - a), 0, &je);
  if (!j)
    print_error("%s at %d\n", je.text, je.position);
  assert_non_null(j);
  return j;
}

/* The page lmrun writes: self-contained, every row in the table of each
 * phase with its explanation, labelled axes, the hand-derivable numbers. */
static void test_html_page(void **state) {
  (void)state;
  char *page = NULL;
  assert_int_equal(tu_run(&page, "%s %s --roofline --format html 2>/dev/null",
                          tu_bin("lmrun"), MODEL),
                   0);
  assert_true(strncmp(page, "<!DOCTYPE html>\n<html lang=\"en\">", 32) == 0);
  assert_contains(page, "</html>\n");
  /* nothing fetched: no external reference of any kind */
  assert_not_contains(page, "src=");
  assert_not_contains(page, "href=");
  assert_not_contains(page, "@import");
  assert_not_contains(page, "url(http");
  assert_not_contains(page, "http://");
  assert_not_contains(page, "https://");
  /* every operation: a table row and an explanation in both phases */
  lmp_options *o = lmp_options_new();
  assert_int_equal(lmp_options_set(o, "roofline", "yes", NULL), 0);
  lmp_result *r = lmp_predict(data, llama, o, NULL);
  assert_non_null(r);
  int n = lmp_result_rows(r, "prefill");
  assert_int_equal(n, 21);
  json_t *x = explanations(page);
  assert_int_equal(json_object_size(x), 2 * (size_t)n);
  for (int i = 0; i < n; i++) {
    const char *path = lmp_result_row_name(r, i, "path");
    char want[512];
    snprintf(want, sizeof(want), "<tr tabindex=\"0\" data-path=\"%s\" ", path);
    assert_int_equal(count_of(page, want), 2);
    for (int ph = 0; ph < 2; ph++) {
      snprintf(want, sizeof(want), "%s/%s", ph ? "decode" : "prefill", path);
      json_t *t = json_object_get(x, want);
      if (!t)
        print_error("no explanation %s\n", want);
      assert_true(json_is_string(t));
      snprintf(want, sizeof(want), "%s, %s: ", path, ph ? "decode" : "prefill");
      assert_contains(json_string_value(t), want);
    }
  }
  /* q_proj's explanation: 2 * 2048 * 4096 * 4096 FLOPs in prefill */
  assert_contains(json_string_value(json_object_get(
                      x, "prefill/model.layers.self_attn.q_proj")),
                  "        = 68719476736 (68.7 G)\n");
  json_decref(x);
  lmp_result_free(r);
  lmp_options_free(o);
  /* charts: axes with units, the ridge 989.4e12 / 3.35e12 = 295 FLOP/B,
   * the capacity 80 GiB = 85.9 GB; every section */
  assert_contains(page, ">arithmetic intensity (FLOP/byte, log scale)<");
  assert_contains(page, ">achieved performance (FLOP/s, log scale)<");
  assert_contains(page, ">ridge 295 FLOP/B<");
  assert_contains(page, ">FP16/BF16 peak 989 TFLOP/s<");
  assert_contains(page, ">INT8 peak 1.98 POP/s<");
  assert_contains(page, ">capacity 85.9 GB (80 GiB)<");
  assert_contains(page, ">time in the phase (count x time per instance)<");
  assert_contains(page, ">memory (bytes; 1 GB = 10^9 B)<");
  assert_int_equal(count_of(page, "<h3>Roofline</h3>"), 2);
  assert_int_equal(count_of(page, "<h3>Time by kind of operation</h3>"), 2);
  assert_contains(page, "<h2>Memory footprint</h2>");
  assert_contains(page, "@media print{");
  /* embed_tokens does 0 FLOPs: listed, not plotted */
  assert_contains(page, "Not plotted (no FLOPs or no bytes): "
                        "model.embed_tokens.");
  /* a roofline point per plotted operation, one per phase */
  assert_int_equal(count_of(page, "<circle class=\"pt\""), 2 * (n - 1));
  free(page);

  /* --phase decode: one phase only */
  assert_int_equal(tu_run(&page,
                          "%s %s --roofline --format html --phase decode "
                          "2>/dev/null",
                          tu_bin("lmrun"), MODEL),
                   0);
  assert_int_equal(count_of(page, "<h3>Roofline</h3>"), 1);
  assert_contains(page, "<h2>Decode: 1 token per sequence, KV length 2048, ");
  assert_not_contains(page, "\"prefill/");
  free(page);
}

/* Names from the model file are escaped in the page and in the script
 * data; -o writes the same bytes as stdout, atomically, nothing on
 * stdout. */
static void test_html_escaping_and_output(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *model = path_join(dir, "m.json");
  char *src = tu_read(MODEL);
  char *t = tu_replace(src, "\"model\": \"meta-llama/Llama-2-7b-hf\"",
                       "\"model\": \"<b>&\\\"x\\\"</script>\"");
  tu_write(model, t);
  char *page = NULL;
  assert_int_equal(
      tu_run(&page, "%s %s --format html 2>/dev/null", tu_bin("lmrun"), model),
      0);
  assert_contains(page, "<h1>&lt;b&gt;&amp;&quot;x&quot;&lt;/script&gt;</h1>");
  assert_not_contains(page, "<b>&");
  /* the one </script> per script element: none from the data */
  assert_int_equal(count_of(page, "</script>"), 2);
  char *file = path_join(dir, "r.html"), *out = NULL;
  assert_int_equal(
      tu_run(&out, "%s %s --format html -o %s", tu_bin("lmrun"), model, file),
      0);
  assert_string_equal(out, "");
  char *got = tu_read(file);
  assert_non_null(got);
  assert_string_equal(got, page);
  free(got);
  free(out);
  free(page);
  free(file);
  free(t);
  free(src);
  free(model);
  tu_rm_rf(dir);
  free(dir);
}

/* A model from a config.json: the page (and the markdown) says what the
 * table says above its rows: the family and parameter count (LLaVA-1.5-7B's language
 * model, 6,738,939,904, derived in test_config), the quantization read and
 * the note that the vision tower is not counted (the issue asks the
 * output to say it); escaped like every text. */
static void test_html_model_lines(void **state) {
  (void)state;
  char *page = NULL;
  assert_int_equal(tu_run(&page, "%s test/data/configs/llava-1.5-7b-hf.json "
                                 "--format html 2>/dev/null",
                          tu_bin("lmrun")),
                   0);
  assert_contains(page, "<p class=\"sub\">model "
                        "test/data/configs/llava-1.5-7b-hf.json: family "
                        "llava, 6738939904 parameters (6.74 G)</p>");
  assert_contains(page, "<p class=\"sub\">note: the vision tower (CLIP) and "
                        "the multi-modal projector are not counted: the cost "
                        "is the language model&#39;s (text_config)");
  free(page);
  /* markdown: the same lines, each a paragraph */
  assert_int_equal(tu_run(&page, "%s test/data/configs/llava-1.5-7b-hf.json "
                                 "--format markdown 2>/dev/null",
                          tu_bin("lmrun")),
                   0);
  assert_contains(page, "\n\nmodel test/data/configs/llava-1.5-7b-hf.json: "
                        "family llava, 6738939904 parameters (6.74 G)\n\n"
                        "note: the vision tower (CLIP) and the multi-modal "
                        "projector are not counted");
  free(page);
  char *dir = tu_tmpdir();
  char *cfg = path_join(dir, "config.json");
  char *src = tu_read("test/data/configs/mistral-7b-v0.1.json");
  char *t = tu_replace(src, "\"model_type\": \"mistral\",",
                       "\"model_type\": \"mistral\", \"quantization_config\": "
                       "{\"bits\": 4, \"group_size\": 128, \"quant_method\": "
                       "\"awq\"},");
  tu_write(cfg, t);
  assert_int_equal(
      tu_run(&page, "%s %s --format html 2>/dev/null", tu_bin("lmrun"), cfg),
      0);
  /* 4 + (16 + 4) / 128 = 4.15625 bits per weight */
  assert_contains(page, "<p class=\"sub\">quantization_config: awq, weights "
                        "4.15625 bits per weight with scales (--w-bits "
                        "overrides)</p>");
  free(page);
  free(t);
  free(src);
  free(cfg);
  tu_rm_rf(dir);
  free(dir);
}

/* The page in headless Chromium. */
static void test_html_browser(void **state) {
  (void)state;
  const char *bin = getenv("LM_BIN");
  if (bin && strstr(bin, "asan")) {
    /* the same page; the sanitizer build's run checks the C above */
    skip();
  }
  char *out = NULL;
  if (tu_run(&out, "command -v chromium") != 0)
    fail_msg("chromium is not installed: `make test` (make deps-browser) "
             "installs it");
  free(out);
  char *dir = tu_tmpdir();
  char *page = path_join(dir, "report.html");
  assert_int_equal(tu_run(NULL, "%s %s -B 4 --format html -o %s",
                          tu_bin("lmrun"), MODEL, page),
                   0);
  /* A user's clicks, played by a script appended to a copy of the page
   * (the default: calibrated times, vLLM, flash attention): sort the
   * prefill table by FLOPs twice (ascending, then descending), then click
   * the first row. At B 4, S 2048 the MLP projections do the most work per
   * instance: 2 x 8192 x 4096 x 11008 = 7.39e11 FLOPs (flash attention:
   * 4 x 4 x 32 x 2048 x 2048 x 128 + 5 x 4 x 32 x 2048 x 2048 = 2.78e11;
   * q_proj 2 x 8192 x 4096 x 4096 = 2.75e11); gate_proj, up_proj and
   * down_proj tie exactly and the sort is stable, so gate_proj, the first
   * in model order, comes first. */
  char *html = tu_read(page);
  assert_non_null(html);
  char *played = tu_replace(
      html, "</body>",
      "<script>(function(){var t=document.querySelector("
      "'#phase-prefill table.ops'),h=t.querySelectorAll('th'),c=null;"
      "h.forEach(function(x){if(x.textContent==='FLOPs')c=x;});"
      "c.click();c.click();var r=t.tBodies[0].rows[0];r.click();"
      "document.body.setAttribute('data-played',r.getAttribute('data-path')"
      "+'|'+c.getAttribute('aria-sort')+'|'+document.getElementById("
      "'explain').hidden+'|'+document.getElementById('explain-text')."
      "textContent.split('\\n')[0]+'|'+(document.getElementById("
      "'explain-text').textContent.indexOf('\\n  generated: "
      "generated_modules/torch_linear.c (C functions TorchLinear_<metric>)"
      "\\n')>=0));})();</script></body>");
  tu_write(page, played);
  free(played);
  free(html);
  /* a laptop-sized window (1280 x 900 CSS pixels), the screenshot at half
   * scale to keep png_stats.py quick */
  int rc = tu_run(NULL,
                  "cd %s && timeout 120 chromium --headless --no-sandbox "
                  "--disable-gpu --hide-scrollbars --no-first-run "
                  "--user-data-dir=%s/profile --enable-logging=stderr --v=0 "
                  "--window-size=1280,900 --force-device-scale-factor=0.5 "
                  "--screenshot=%s/shot.png --dump-dom file://%s "
                  ">%s/dom.html 2>%s/log.txt",
                  dir, dir, dir, page, dir, dir);
  char *p = path_join(dir, "log.txt");
  char *log = tu_read(p);
  free(p);
  if (rc != 0)
    print_error("chromium exited %d:\n%s\n", rc, log ? log : "");
  assert_int_equal(rc, 0);
  /* console messages (errors, uncaught exceptions) are logged as CONSOLE */
  assert_non_null(log);
  assert_not_contains(log, ":CONSOLE");
  free(log);
  p = path_join(dir, "dom.html");
  char *dom = tu_read(p);
  free(p);
  assert_non_null(dom);
  /* the script ran to its end */
  assert_contains(dom, "data-ready=\"1\"");
  /* sorted, descending, the panel open on the row's explanation, which
   * cites the generated C of the row's module (Linear) */
  assert_contains(dom, "data-played=\"model.layers.mlp.gate_proj|descending|"
                       "false|model.layers.mlp.gate_proj, prefill: 2048 "
                       "tokens per sequence, KV length 2048, batch 4|"
                       "true\"");
  /* every operation of both phases is in the DOM, table and roofline */
  lmp_options *o = lmp_options_new();
  lmp_result *r = lmp_predict(data, llama, o, NULL);
  assert_non_null(r);
  int n = lmp_result_rows(r, "decode");
  for (int i = 0; i < n; i++) {
    char want[512];
    snprintf(want, sizeof(want), "data-path=\"%s\"",
             lmp_result_row_name(r, i, "path"));
    /* two table rows; two points but for embed_tokens (0 FLOPs) */
    int k = count_of(dom, want);
    if (k < 2)
      print_error("%s: %d\n", want, k);
    assert_true(k >= 2);
  }
  lmp_result_free(r);
  lmp_options_free(o);
  free(dom);
  /* the screenshot is not blank: width height variance nonwhite colours */
  assert_int_equal(tu_run(&out, "python3 test/png_stats.py %s/shot.png", dir),
                   0);
  int w = 0, h = 0, colors = 0;
  double var = 0, nonwhite = 0;
  assert_int_equal(
      sscanf(out, "%d %d %lf %lf %d", &w, &h, &var, &nonwhite, &colors), 5);
  print_message("screenshot %dx%d: luminance variance %.0f, %.1f%% not "
                "white, %d colours\n",
                w, h, var, nonwhite * 100, colors);
  assert_int_equal(w, 640);
  assert_int_equal(h, 450);
  assert_true(var > 200);
  assert_true(nonwhite > 0.03);
  assert_true(colors > 50);
  free(out);
  free(page);
  tu_rm_rf(dir);
  free(dir);
}

/* A sweep's page from hand-made points: three charts with the swept
 * variable on a log axis (1 to 64 spans more than 8x), one line per
 * series, the SLO's targets and frontier, a table row per configuration;
 * names escaped. */
static void test_html_sweep(void **state) {
  (void)state;
  SweepPoint p[] = {
      {"h100-sxm", 1, 0.05, 0.005, 200, true, 0, false},
      {"h100-sxm", 8, 0.4, 0.006, 1333, true, 0, true},
      {"h100-sxm", 64, 3.2, 0.01, 6400, true, 1, false},
      {"a<100>", 1, 0.12, 0.009, 111, true, 0, false},
      {"a<100>", 8, 0.96, 0.011, 727, true, 0, false},
      {"a<100>", 64, 7.7, 0.03, 2133, false, 1, false},
  };
  SweepPage pg = {"m/x",
                  "sequence 2048",
                  "batch (-B)",
                  p,
                  6,
                  "ttft=1s,tpot=20ms",
                  1,
                  0.02,
                  "best: h100-sxm, batch 8"};
  Buf b;
  buf_init(&b);
  render_sweep_html(&pg, &b);
  const char *s = buf_str(&b);
  assert_true(strncmp(s, "<!DOCTYPE html>", 15) == 0);
  assert_not_contains(s, "src=");
  assert_not_contains(s, "href=");
  assert_int_equal(count_of(s, "<h3>Time to first token</h3>"), 1);
  assert_int_equal(count_of(s, "<h3>Time per output token</h3>"), 1);
  assert_int_equal(count_of(s, "<h3>Throughput</h3>"), 1);
  /* 6 points on each of the three charts */
  assert_int_equal(count_of(s, "<circle class=\"pt\""), 18);
  assert_contains(s, ">batch (-B) (log scale)<");
  assert_contains(s, ">throughput (tokens/s), log scale<");
  /* targets on the TTFT and TPOT charts, the frontier on throughput */
  assert_contains(s, ">SLO 1.00 s<");
  assert_contains(s, ">SLO 20.0 ms<");
  assert_int_equal(count_of(s, "class=\"frontier\""), 1);
  /* the frontier: the best meeting point at x = 1 (200 tok/s, h100) and
   * at x = 8 (1333 tok/s, h100); x = 64 has none */
  const char *f = strstr(s, "class=\"frontier\"");
  const char *pts = strstr(f, "points=\"");
  assert_non_null(pts);
  int commas = 0;
  for (const char *q = pts + 8; *q != '"'; q++)
    commas += *q == ',';
  assert_int_equal(commas, 2);
  assert_contains(s, "a&lt;100&gt;");
  assert_not_contains(s, "a<100>");
  assert_int_equal(count_of(s, "<tr><td>"), 6);
  assert_contains(s, "<td>meets (best)</td>");
  assert_contains(s, "<pre>best: h100-sxm, batch 8</pre>");
  buf_free(&b);
}

/* lmrun's sweep as one page: -B over 4 values on two GPUs with -O and an
 * SLO: three charts of 8 points, one line per GPU, the targets, the
 * frontier and the best; -o writes it, nothing on stdout. */
static void test_html_lmrun_sweep(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *file = path_join(dir, "sweep.html"), *out = NULL;
  assert_int_equal(
      tu_run(&out,
             "%s %s -B 1,4,16,64 --hardware h100-sxm,a100-sxm-80gb "
             "-O 128 --slo ttft=2s,tpot=30ms --format html -o %s",
             tu_bin("lmrun"), MODEL, file),
      0);
  assert_string_equal(out, "");
  free(out);
  char *s = tu_read(file);
  assert_non_null(s);
  assert_contains(s,
                  "<h1>meta-llama/Llama-2-7b-hf: sweep over batch (-B)</h1>");
  assert_int_equal(count_of(s, "<circle class=\"pt\""), 24);
  assert_contains(s, ">batch (-B) (log scale)<");
  assert_contains(s, ">SLO 2.00 s<");
  assert_contains(s, ">SLO 30.0 ms<");
  assert_int_equal(count_of(s, "class=\"frontier\""), 1);
  assert_int_equal(count_of(s, "<tr><td>h100-sxm</td>"), 4);
  assert_int_equal(count_of(s, "<tr><td>a100-sxm-80gb</td>"), 4);
  assert_int_equal(count_of(s, " (best)</td>"), 1);
  assert_contains(s, "<h2>Best configuration</h2><pre>8 configurations; ");
  assert_not_contains(s, "src=");
  free(s);
  /* --explain takes one configuration */
  assert_int_equal(
      tu_run(&out, "%s %s -B 1,2 --explain q_proj", tu_bin("lmrun"), MODEL), 2);
  assert_contains(out, "not a sweep");
  free(out);
  unlink(file);
  free(file);
  tu_rm_rf(dir);
  free(dir);
}

/* With parallelism the collectives and the pipeline send are rows of the
 * HTML and Markdown tables, as of lmrun's table: Llama-2-70B at --tp 2
 * --pp 2 all-reduces after o_proj and down_proj of each of its 80 layers
 * and sends between the two stages. */
static void test_html_parallel_rows(void **state) {
  (void)state;
  char *s = NULL;
  assert_int_equal(tu_run(&s,
                          "%s models/llama-2-70b-hf.json --tp 2 --pp 2 "
                          "--phase decode --format html 2>/dev/null",
                          tu_bin("lmrun")),
                   0);
  assert_contains(s, "<tr data-path=\"model.layers.self_attn.o_proj.all_reduce"
                     "\"><td>model.layers.self_attn.o_proj.all_reduce</td>"
                     "<td>comm.all_reduce</td><td class=\"n\" data-v=\"80\">"
                     "80</td>");
  assert_contains(s,
                  "<tr data-path=\"model.layers.mlp.down_proj.all_reduce\">");
  assert_contains(s, "<tr data-path=\"pipeline.send\">");
  free(s);
  assert_int_equal(tu_run(&s,
                          "%s models/llama-2-70b-hf.json --tp 2 --pp 2 "
                          "--phase decode --format markdown 2>/dev/null",
                          tu_bin("lmrun")),
                   0);
  assert_contains(s, "\n| model.layers.self_attn.o_proj.all_reduce | 80 | | |");
  assert_contains(s, "\n| pipeline.send | 1 | | |");
  free(s);
}

/* The charts count the communication too (issue 14): Llama-2-7B at --tp 2
 * --pp 2, decode, B 1. Every collective moves one token's hidden state or
 * logits shard at 16 bits over NVLink (h100-sxm: 450 GB/s each way;
 * parallel.json: 0.6 us per step; both stages in one 8-GPU node):
 *   all-reduce of 1 x 4096 x 2 = 8192 B over 2 GPUs, ring: 2 steps,
 *     factor 2(2-1)/2 = 1: 2 x 0.6 us + 8192 / 450e9 = 1.21820 us; after
 *     embed_tokens (1), o_proj (32) and down_proj (32): 65 x 1.21820 =
 *     79.18 us
 *   all-gather of lm_head's 32000 / 2 logits x 2 B = 32000 B each, 64000 B
 *     in all: 1 step, factor 1/2: 0.6 us + 64000 / 2 / 450e9 = 0.6711 us
 *   send between the 2 stages, 8192 B: 1 step, factor 1: 0.6 us + 8192 /
 *     450e9 = 0.6182 us
 * in all 79.18 + 0.671 + 0.618 = 80.47 us. The footprint is per GPU.
 * With --roofline: the calibrated times take the collectives' measured
 * times instead (test_collective.c checks those). */
static void test_html_parallel_charts(void **state) {
  (void)state;
  char *s = NULL;
  assert_int_equal(tu_run(&s,
                          "%s models/llama-2-7b-hf.json --tp 2 --pp 2 "
                          "--phase decode --format html --roofline "
                          "2>/dev/null",
                          tu_bin("lmrun")),
                   0);
  assert_contains(s, "data-kind=\"comm.all_reduce\" "
                     "data-tip=\"comm.all_reduce, interconnect: 79.2 us\"");
  assert_contains(s, "data-tip=\"comm.all_gather, interconnect: 671 ns\"");
  assert_contains(s, "data-tip=\"comm.send, interconnect: 618 ns\"");
  assert_contains(s, " + communication 80.5 us,");
  assert_contains(s, "interconnect (communication)</span>");
  assert_contains(s, "Communication (collectives, pipeline sends) does no "
                     "FLOPs");
  assert_contains(s, "<h2>Memory footprint per GPU (the fullest pipeline "
                     "stage)</h2>");
  assert_contains(s, "per GPU (4 GPUs)");
  free(s);
  /* on one GPU: no communication anywhere in the charts */
  assert_int_equal(tu_run(&s,
                          "%s models/llama-2-7b-hf.json --phase decode "
                          "--format html 2>/dev/null",
                          tu_bin("lmrun")),
                   0);
  assert_not_contains(s, "comm.");
  assert_not_contains(s, "interconnect");
  assert_contains(s, "<h2>Memory footprint</h2>");
  free(s);
}

/* A multi-hardware sweep's page with an SLO in the browser: Llama-2-7B at
 * B 1, 4, 16, 64, tp 1 and 2, on h100-sxm and a100-sxm-80gb (16
 * configurations, four series of four points on each of the three
 * charts), -O 128, ttft 2 s and tpot 30 ms. No console message, the script
 * ran, every configuration is a row of the table and a point of each
 * chart, the screenshot is not blank. */
static void test_html_browser_sweep(void **state) {
  (void)state;
  const char *bin = getenv("LM_BIN");
  if (bin && strstr(bin, "asan"))
    skip(); /* the same page; test_html_lmrun_sweep checks the C */
  char *out = NULL;
  if (tu_run(&out, "command -v chromium") != 0)
    fail_msg("chromium is not installed: `make test` (make deps-browser) "
             "installs it");
  free(out);
  char *dir = tu_tmpdir();
  char *page = path_join(dir, "sweep.html");
  assert_int_equal(tu_run(NULL,
                          "%s %s -B 1,4,16,64 --tp 1,2 --hardware "
                          "h100-sxm,a100-sxm-80gb -O 128 --slo "
                          "ttft=2s,tpot=30ms --format html -o %s",
                          tu_bin("lmrun"), MODEL, page),
                   0);
  int rc = tu_run(NULL,
                  "cd %s && timeout 120 chromium --headless --no-sandbox "
                  "--disable-gpu --hide-scrollbars --no-first-run "
                  "--user-data-dir=%s/profile --enable-logging=stderr --v=0 "
                  "--window-size=1280,900 --force-device-scale-factor=0.5 "
                  "--screenshot=%s/shot.png --dump-dom file://%s "
                  ">%s/dom.html 2>%s/log.txt",
                  dir, dir, dir, page, dir, dir);
  char *p = path_join(dir, "log.txt");
  char *log = tu_read(p);
  free(p);
  if (rc != 0)
    print_error("chromium exited %d:\n%s\n", rc, log ? log : "");
  assert_int_equal(rc, 0);
  assert_non_null(log);
  assert_not_contains(log, ":CONSOLE");
  free(log);
  p = path_join(dir, "dom.html");
  char *dom = tu_read(p);
  free(p);
  assert_non_null(dom);
  assert_contains(dom, "data-ready=\"1\"");
  /* 16 configurations: 16 rows, 16 points on each of the 3 charts */
  assert_int_equal(count_of(dom, "<tr><td>--tp 1, h100-sxm</td>") +
                       count_of(dom, "<tr><td>--tp 2, h100-sxm</td>") +
                       count_of(dom, "<tr><td>--tp 1, a100-sxm-80gb</td>") +
                       count_of(dom, "<tr><td>--tp 2, a100-sxm-80gb</td>"),
                   16);
  assert_int_equal(count_of(dom, "<circle class=\"pt\""), 48);
  assert_contains(dom, ">SLO 2.00 s<");
  assert_contains(dom, ">SLO 30.0 ms<");
  free(dom);
  assert_int_equal(tu_run(&out, "python3 test/png_stats.py %s/shot.png", dir),
                   0);
  int w = 0, h = 0, colors = 0;
  double var = 0, nonwhite = 0;
  assert_int_equal(
      sscanf(out, "%d %d %lf %lf %d", &w, &h, &var, &nonwhite, &colors), 5);
  print_message("sweep screenshot %dx%d: luminance variance %.0f, %.1f%% not "
                "white, %d colours\n",
                w, h, var, nonwhite * 100, colors);
  assert_true(var > 200);
  assert_true(nonwhite > 0.03);
  assert_true(colors > 50);
  free(out);
  free(page);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_html_page),
      cmocka_unit_test(test_html_escaping_and_output),
      cmocka_unit_test(test_html_model_lines),
      cmocka_unit_test(test_html_sweep),
      cmocka_unit_test(test_html_lmrun_sweep),
      cmocka_unit_test(test_html_parallel_rows),
      cmocka_unit_test(test_html_parallel_charts),
      cmocka_unit_test(test_html_browser),
      cmocka_unit_test(test_html_browser_sweep),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
