/* bench.c: `make bench`. Prints performance figures; asserts nothing.
 *
 * Each figure is the median of several timed batches, in-process, with
 * CLOCK_MONOTONIC, on whatever machine runs it.
 */
#include "common.h"
#include "gen.h"
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median over `batches` of the mean time per call of fn over `iters`. */
static double time_it(void (*fn)(void *), void *arg, int batches, int iters) {
  double t[64];
  if (batches > 64)
    batches = 64;
  for (int b = 0; b < batches; b++) {
    double t0 = now_seconds();
    for (int i = 0; i < iters; i++)
      fn(arg);
    t[b] = (now_seconds() - t0) / iters;
  }
  qsort(t, (size_t)batches, sizeof(double), cmp_double);
  return t[batches / 2];
}

static void print_time(const char *what, double s) {
  if (s < 1e-6)
    printf("  %-52s %10.1f ns\n", what, s * 1e9);
  else if (s < 1e-3)
    printf("  %-52s %10.2f us\n", what, s * 1e6);
  else
    printf("  %-52s %10.3f ms\n", what, s * 1e3);
}

typedef struct DbBench {
  char *text;
  size_t len;
  Db *db;
} DbBench;

static void bench_load(void *arg) {
  DbBench *b = arg;
  Db *db = db_load_text("module_db.json", b->text, b->len, NULL);
  if (!db)
    abort();
  db_free(db);
}

static void bench_emit(void *arg) {
  DbBench *b = arg;
  for (int i = 0; i < b->db->nmods; i++)
    free(emit_module(b->db->mods[i], "module_db.json", NULL));
}

static void bench_load_emit(void *arg) {
  DbBench *b = arg;
  Db *db = db_load_text("module_db.json", b->text, b->len, NULL);
  for (int i = 0; i < db->nmods; i++)
    free(emit_module(db->mods[i], "module_db.json", NULL));
  db_free(db);
}

typedef struct JitBench {
  const char **paths;
  char **texts;
  int n;
} JitBench;

/* reg_open + loading one model: compiles that model's modules only */
typedef struct LazyBench {
  const Db *db;
  const char *model;
} LazyBench;

static void bench_lazy_model(void *arg) {
  LazyBench *lb = arg;
  Registry *r = reg_open(lb->db, "generated_modules", NULL);
  Error e;
  err_clear(&e);
  ModelOpenOpts o = {.arch_dir = "models/arch"};
  Model *m = model_open(lb->model, &o, r, &e);
  if (!m)
    abort();
  model_free(m);
  reg_free(r);
}

static void bench_jit(void *arg) {
  JitBench *b = arg;
  Jit *j = jit_compile(b->paths, (const char *const *)b->texts, b->n, NULL);
  if (!j)
    abort();
  jit_free(j);
}

static void bench_reg_load(void *arg) {
  Registry *r = reg_load(arg, "generated_modules", NULL);
  if (!r)
    abort();
  reg_free(r);
}

typedef struct EvalBench {
  Plan *plan;
  Values *vals, *dvals;
  double run[V_COUNT], drun[V_COUNT];
  const Gpu *gpu;
  Peaks peaks;
  double sink;
} EvalBench;

static void bench_eval(void *arg) {
  EvalBench *b = arg;
  if (plan_eval(b->plan, b->run, b->vals, NULL) < 0)
    abort();
}

/* What lmrun does per analysis: prefill and decode evaluated, the
 * roofline time and bound of every row, the footprint at this batch. */
static void bench_full(void *arg) {
  EvalBench *b = arg;
  if (plan_eval(b->plan, b->run, b->vals, NULL) < 0 ||
      plan_eval(b->plan, b->drun, b->dvals, NULL) < 0)
    abort();
  const Values *vs[2] = {b->vals, b->dvals};
  double total = 0, act = 0;
  for (int p = 0; p < 2; p++)
    for (int r = 0; r < b->plan->nrows; r++) {
      const double *v = vs[p]->row[r];
      double bytes = metric_bytes(v);
      total += b->plan->rows[r].count *
               roof_time(v[M_FLOPS], bytes, roof_row_peak(&b->peaks, v, NULL),
                         b->gpu->bandwidth, NULL);
      double a = v[M_ACT_READ_BYTES] + v[M_ACT_WRITE_BYTES];
      if (a > act)
        act = a;
    }
  b->sink = total + act + b->dvals->state[0] + b->dvals->state[1];
}

static void bench_max_batch(void *arg) {
  EvalBench *b = arg;
  Footprint f;
  Values *x = values_new(b->plan), *y = values_new(b->plan);
  if (roof_footprint(b->plan, b->run, b->drun, b->gpu->memory, true, x, y, &f,
                     NULL) < 0)
    abort();
  values_free(x);
  values_free(y);
}

/* Wall time of whole lmrun processes, output to /dev/null. */
static void bench_process(void *arg) {
  char **argv = arg;
  fflush(stdout); /* or the child would repeat our buffered output */
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout))
      _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    abort();
}

int main(void) {
  DbBench b = {0};
  Error e;
  err_clear(&e);
  b.text = fs_read("module_db.json", &b.len, &e);
  b.db = b.text ? db_load_text("module_db.json", b.text, b.len, &e) : NULL;
  if (!b.db) {
    err_print(stderr, &e);
    return 1;
  }
  int formulas = 0;
  for (int i = 0; i < b.db->nmods; i++) {
    for (int m = 0; m < M_COUNT; m++)
      formulas += b.db->mods[i]->formula[m] != NULL;
    for (int k = 0; k < b.db->mods[i]->nops; k++)
      for (int m = 0; m < M_TRAFFIC; m++)
        formulas += b.db->mods[i]->ops[k].formula[m] != NULL;
  }
  printf("generator (module_db.json: %d modules, %d formulas, %zu bytes)\n",
         b.db->nmods, formulas, b.len);
  print_time("load: JSON + schema + parse + check + cycles",
             time_it(bench_load, &b, 15, 200));
  print_time("emit C for every module", time_it(bench_emit, &b, 15, 200));
  print_time("parse, check and emit the whole database",
             time_it(bench_load_emit, &b, 15, 200));

  /* runtime */
  JitBench jb = {.n = b.db->nmods};
  jb.paths = calloc((size_t)jb.n, sizeof(char *));
  jb.texts = calloc((size_t)jb.n, sizeof(char *));
  for (int i = 0; i < jb.n; i++) {
    char *p = path_join("generated_modules", b.db->mods[i]->file_name);
    jb.paths[i] = p;
    jb.texts[i] = fs_read(p, NULL, NULL);
  }
  Registry *reg = reg_load(b.db, "generated_modules", &e);
  Model *model = reg ? model_load("models/llama-2-7b-hf.json", reg, &e) : NULL;
  if (!model) {
    err_print(stderr, &e);
    return 1;
  }
  GpuDb *gpus = gpudb_load("hardware.json", &e);
  if (!gpus) {
    err_print(stderr, &e);
    return 1;
  }
  EvalBench eb = {.plan = plan_build(model, ATTN_EAGER, NULL),
                  .run = {1, 2048, 2048, 2048, 2, 2, 2, 233472},
                  .drun = {1, 2048, 1, 2048, 2, 2, 2, 233472},
                  .gpu = gpudb_find(gpus, "h100-sxm")};
  roof_peaks(eb.gpu, 16, 16, 16, FMT8_AUTO, &eb.peaks, NULL);
  eb.vals = values_new(eb.plan);
  eb.dvals = values_new(eb.plan);
  int calls = 0;
  for (int r = 0; r < eb.plan->nrows; r++)
    for (int k = 0; k < M_TRAFFIC; k++)
      calls += eb.plan->rows[r].fn[k] != NULL;
  printf("runtime (Llama-2-7B: %d operation rows, %d JIT calls per analysis)\n",
         eb.plan->nrows, calls);
  print_time("JIT: compile all generated modules (libtcc)",
             time_it(bench_jit, &jb, 15, 20));
  print_time("registry load: read, fingerprint check, JIT, symbols",
             time_it(bench_reg_load, b.db, 15, 20));
  printf("  (the whole database: %d modules)\n", b.db->nmods);
  LazyBench lb = {b.db, "models/llama-2-7b-hf.json"};
  print_time("lazy registry + Llama-2-7B's modules only (JIT)",
             time_it(bench_lazy_model, &lb, 15, 20));
  LazyBench lq = {b.db, "test/data/configs/qwen3-8b.json"};
  print_time("lazy registry + Qwen3-8B from config.json + template",
             time_it(bench_lazy_model, &lq, 15, 20));
  print_time("one phase evaluated (prefill), in-process",
             time_it(bench_eval, &eb, 25, 20000));
  print_time("one full-model analysis: prefill + decode + roofline",
             time_it(bench_full, &eb, 25, 20000));
  EvalBench fb = eb;
  fb.plan = plan_build(model, ATTN_FLASH, NULL);
  fb.vals = values_new(fb.plan);
  fb.dvals = values_new(fb.plan);
  print_time("the same with FlashAttention-2",
             time_it(bench_full, &fb, 25, 20000));
  values_free(fb.vals);
  values_free(fb.dvals);
  plan_free(fb.plan);
  print_time("largest-batch search (bisection, ~40 evaluations)",
             time_it(bench_max_batch, &eb, 15, 500));
  char *argv[] = {"./lmrun", "models/llama-2-7b-hf.json", "-B", "1", "-S",
                  "2048", NULL};
  print_time("end to end: lmrun process, Llama-2-7B table",
             time_it(bench_process, argv, 21, 5));
  char *argv2[] = {"./lmrun", "test/data/configs/qwen3-8b.json", "-B", "1",
                   "-S", "2048", NULL};
  print_time("end to end: lmrun process, Qwen3-8B config.json",
             time_it(bench_process, argv2, 21, 5));
  char *argv3[] = {"./lmrun", "test/data/configs/mistral-7b-v0.1.json", "-B",
                   "1", "-S", "2048", NULL};
  print_time("end to end: lmrun process, Mistral-7B config.json",
             time_it(bench_process, argv3, 21, 5));
  values_free(eb.vals);
  values_free(eb.dvals);
  gpudb_free(gpus);
  plan_free(eb.plan);
  model_free(model);
  reg_free(reg);
  for (int i = 0; i < jb.n; i++) {
    free((char *)jb.paths[i]);
    free(jb.texts[i]);
  }
  free(jb.paths);
  free(jb.texts);
  db_free(b.db);
  free(b.text);
  return 0;
}
