/* bench.c: `make bench`. Prints performance figures; asserts nothing.
 * `build/bench lmrun` prints the lmrun end-to-end part alone (`build/bench
 * lmrun all`: every model file and config, not one per model_type).
 *
 * Each figure is the median of several timed batches, in-process, with
 * CLOCK_MONOTONIC, on whatever machine runs it.
 */
#define _DEFAULT_SOURCE /* wait4 */
#include "common.h"
#include "gen.h"
#include "lmpredict.h"
#include "calib.h"
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
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

typedef struct ApiBenchSweep {
  lmp_data *data;
  lmp_model *model;
  lmp_options *opts;
} ApiBenchSweep;

typedef struct EvalBench {
  Plan *plan;
  Values *vals;
  double run[V_COUNT];
  const Gpu *gpu;
  PredictOpts opts;
  Prediction pred; /* reused: its buffers are kept between calls */
  Values *scratch[2];
} EvalBench;

static void bench_eval(void *arg) {
  EvalBench *b = arg;
  if (plan_eval(b->plan, b->run, b->vals, NULL) < 0)
    abort();
}

static void bench_eval_interp(void *arg) {
  EvalBench *b = arg;
  if (plan_eval_interp(b->plan, b->run, b->vals, NULL) < 0)
    abort();
}

/* One configuration of a sweep's phase: evaluate at the next batch size
 * (1..256 round and round) and price every row on the roofline. */
typedef struct ConfBench {
  EvalBench *e;
  PhaseResult ph;
  Peaks peaks;
  double run[V_COUNT];
  double b;
} ConfBench;

static void bench_conf(void *arg) {
  ConfBench *c = arg;
  c->run[V_B] = c->b = c->b >= 256 ? 1 : c->b + 1;
  if (plan_eval(c->e->plan, c->run, c->e->vals, NULL) < 0)
    abort();
  phase_roofline(&c->ph, &c->peaks, c->e->gpu->bandwidth);
}

static void bench_roofline(void *arg) {
  ConfBench *c = arg;
  phase_roofline(&c->ph, &c->peaks, c->e->gpu->bandwidth);
}

/* Like time_it, in this thread's CPU time: the machine may be shared, and
 * a configurations-per-second figure is about one core's work. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_time_it(void (*fn)(void *), void *arg, int batches,
                          int iters) {
  double t[64];
  if (batches > 64)
    batches = 64;
  for (int b = 0; b < batches; b++) {
    double t0 = cpu_now();
    for (int i = 0; i < iters; i++)
      fn(arg);
    t[b] = (cpu_now() - t0) / iters;
  }
  qsort(t, (size_t)batches, sizeof(double), cmp_double);
  return t[0]; /* the least disturbed batch */
}

static void print_rate(const char *what, double s) {
  printf("  %-52s %10.0f configurations/s\n", what, 1 / s);
}

/* A whole sweep through the public API (what lmrun runs): the options
 * in order (the last varies fastest), each row's summary written as
 * format (NULL: evaluated only, as lmrun --slo does). */
typedef struct SweepSpec {
  ApiBenchSweep *a;
  const char *dim[2][2]; /* {option, values} */
  const char *format;
  double configs;
} SweepSpec;

static void bench_sweep_spec(void *arg) {
  SweepSpec *w = arg;
  lmp_sweep *s = lmp_sweep_new(w->a->data, w->a->model, w->a->opts);
  lmp_error err;
  for (int i = 0; i < 2; i++)
    if (lmp_sweep_values(s, w->dim[i][0], w->dim[i][1], &err) < 0) {
      fprintf(stderr, "bench: %s\n", err.message);
      abort();
    }
  w->configs = lmp_sweep_size(s);
  const lmp_result *r;
  size_t sink = 0;
  while (lmp_sweep_next(s, &r, NULL) == 1)
    if (w->format) {
      char *row = lmp_result_summary_row(r, w->format);
      sink += strlen(row);
      lmp_free(row);
    }
  if (w->format && sink == 0)
    abort();
  lmp_sweep_free(s);
}

/* Peak memory (max RSS) of a whole lmrun process. */
static long child_max_rss_kb(char **argv) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout) ||
        !freopen("/dev/null", "w", stderr))
      _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    abort();
  return ru.ru_maxrss;
}

/* What lmrun does per analysis: predict() evaluates prefill and decode,
 * the roofline time and bound of every row, the summary and the footprint
 * at this batch (opts.max_batch off here; timed separately below). */
static void bench_predict(void *arg) {
  EvalBench *b = arg;
  if (predict(b->plan, b->gpu, &b->opts, &b->pred, NULL) < 0)
    abort();
}

/* The same at the next batch size each call (1..64 round and round): a
 * whole new prediction, nothing of the last one reusable. */
static void bench_predict_vary(void *arg) {
  EvalBench *b = arg;
  b->opts.batch = b->opts.batch >= 64 ? 1 : b->opts.batch + 1;
  if (predict(b->plan, b->gpu, &b->opts, &b->pred, NULL) < 0)
    abort();
}

/* The calibrated times alone (both phases), on values already there. */
static void bench_calib(void *arg) {
  EvalBench *b = arg;
  Prediction *p = &b->pred;
  for (int i = 0; i < 2; i++)
    p->phase[i].pred_total =
        calib_predict(p->cplan, b->opts.calib, b->opts.engine_data, b->gpu,
                      &p->peaks, p->vals[i], p->run[i], p->phase[i].time,
                      p->phase[i].pred);
}

typedef struct ApiBench {
  lmp_data *data;
  lmp_model *model;
  lmp_options *opts;
} ApiBench;

/* The public API: a new result each call. */
static void bench_lmp_predict(void *arg) {
  ApiBench *b = arg;
  lmp_result *r = lmp_predict(b->data, b->model, b->opts, NULL);
  if (!r)
    abort();
  lmp_result_free(r);
}

/* The report formats on one result: the HTML page (every row's
 * explanation included) and one --explain. */
typedef struct TextBench {
  const lmp_result *r;
} TextBench;

static void bench_html(void *arg) {
  TextBench *b = arg;
  lmp_free(lmp_result_text(b->r));
}

static void bench_explain(void *arg) {
  TextBench *b = arg;
  lmp_free(lmp_explain(b->r, "q_proj", NULL));
}

static void bench_max_batch(void *arg) {
  EvalBench *b = arg;
  Footprint f = {0};
  roof_max_batch(b->plan, b->pred.run[0], b->pred.run[1], b->gpu->memory,
                 b->scratch[0], b->scratch[1], &f);
}

static void bench_db_open(void *arg) {
  (void)arg;
  Db *db = db_open("module_db.json", "generated_modules", NULL);
  if (!db || db->root) /* not from the index: run make first */
    abort();
  db_free(db);
}

/* ----- lmrun end to end, per family ----- */

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof(double), cmp_double);
  return t[n / 2];
}

/* One lmrun input's in-process phases, each the median over `reps` fresh
 * runs of what lmrun does: lmp_open (hardware.json, the database index,
 * the registry), lmp_model_load (the model file, or the config and its
 * template; the JIT of the model's modules), lmp_predict (plan, engine and
 * calibration, both phases, the largest batch), lmp_result_text. The JIT
 * is the first load's time minus a second load of the same model in the
 * same lmp_data, whose modules are compiled already. */
typedef struct Phases {
  double open, db, model, jit, predict, output;
} Phases;

static int phases(const char *input, int reps, Phases *out) {
  double t[6][32];
  if (reps > 32)
    reps = 32;
  for (int r = 0; r < reps; r++) {
    /* the database part of lmp_open alone: db_open and reg_open */
    double d0 = cpu_now();
    Db *db = db_open_stamped("module_db.json", "generated_modules", NULL);
    Registry *reg = db ? reg_open(db, "generated_modules", NULL) : NULL;
    double d1 = cpu_now();
    if (!reg || db->root) { /* not from the index: run make first */
      fprintf(stderr, "bench: no index: run make\n");
      return -1;
    }
    reg_free(reg);
    db_free(db);
    t[5][r] = d1 - d0;
    lmp_error e;
    double t0 = cpu_now();
    lmp_data *d = lmp_open(NULL, NULL, NULL, &e);
    double t1 = cpu_now();
    lmp_model *m = d ? lmp_model_load(d, input, &e) : NULL;
    double t2 = cpu_now();
    lmp_model *m2 = m ? lmp_model_load(d, input, &e) : NULL;
    double t3 = cpu_now();
    lmp_options *o = lmp_options_new();
    lmp_result *res = m2 ? lmp_predict(d, m, o, &e) : NULL;
    double t4 = cpu_now();
    char *text = res ? lmp_result_text(res) : NULL;
    double t5 = cpu_now();
    if (!text) {
      fprintf(stderr, "bench: %s: %s", input, e.text);
      return -1;
    }
    t[0][r] = t1 - t0;
    t[1][r] = t3 - t2;
    t[2][r] = (t2 - t1) - (t3 - t2);
    t[3][r] = t4 - t3;
    t[4][r] = t5 - t4;
    lmp_free(text);
    lmp_result_free(res);
    lmp_options_free(o);
    lmp_model_free(m2);
    lmp_model_free(m);
    lmp_close(d);
  }
  out->open = median(t[0], reps);
  out->model = median(t[1], reps);
  out->jit = median(t[2], reps);
  out->predict = median(t[3], reps);
  out->output = median(t[4], reps);
  out->db = median(t[5], reps);
  return 0;
}

/* `argv` run `reps` times (output and warnings to /dev/null): the median
 * wall time and the median CPU time (user + system, from wait4) of one
 * process. On an idle machine the two agree; on a busy one (this 2-core
 * machine is shared) the wall time includes waiting for a core. */
extern char **environ;

static void process_time_env(char **argv, char **envp, int reps, double *wall,
                             double *cpu) {
  double w[64], c[64];
  if (reps > 64)
    reps = 64;
  for (int r = 0; r < reps; r++) {
    fflush(stdout);
    /* posix_spawn (vfork and exec): the child does not copy this large
     * process's page tables, as fork would, into its own time */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    double t0 = now_seconds();
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, envp) != 0)
      abort();
    posix_spawn_file_actions_destroy(&fa);
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    w[r] = now_seconds() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      abort();
    c[r] = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  }
  *wall = median(w, reps);
  *cpu = median(c, reps);
}

static void process_time(char **argv, int reps, double *wall, double *cpu) {
  process_time_env(argv, environ, reps, wall, cpu);
}

/* This environment with the cache of compiled code off. New array. */
static char **env_without_cache(void) {
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = xcalloc(n + 2, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LM_PREDICTOR_CACHE=", 19) != 0)
      env[k++] = environ[i];
  env[k] = "LM_PREDICTOR_CACHE=off";
  return env;
}


/* A model file and one config.json per model_type of test/data/configs
 * (the first in name order), as lmrun runs them; with all, every model
 * file and every config. */
static void bench_end_to_end(bool all) {
  Buf list;
  buf_init(&list);
  buf_puts(&list, all ? "" : "models/llama-2-7b-hf.json\n");
  FILE *ls = popen(all ? "ls models/*.json test/data/configs/*.json"
                       : "ls test/data/configs/*.json",
                   "r");
  char line[512], seen[64][64];
  int nseen = 0;
  while (ls && fgets(line, sizeof(line), ls)) {
    line[strcspn(line, "\n")] = '\0';
    json_t *j = json_load_file(line, 0, NULL);
    const char *mt = json_string_value(json_object_get(j, "model_type"));
    bool dup = !mt && !all;
    for (int i = 0; i < nseen && !dup && !all; i++)
      dup = strcmp(seen[i], mt) == 0;
    if (all ? j != NULL : !dup && nseen < 64) {
      if (!all)
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", mt);
      buf_printf(&list, "%s\n", line);
    }
    json_decref(j);
  }
  if (ls)
    pclose(ls);
  char *ver[] = {"./lmrun", "--version", NULL};
  char *nop[] = {"/bin/true", NULL};
  double start, start_wall, empty, empty_wall;
  process_time(ver, 21, &start_wall, &start);
  process_time(nop, 21, &empty_wall, &empty);
  printf("lmrun end to end (default options: H100, vLLM calibration, table), "
         "CPU time\n(user + system: the wall time on an idle machine; the "
         "wall time on this one is shown too), medians, ms\n");
  printf("  %-30s %6s %6s %6s | %6s %6s %6s %6s %6s %6s %6s %6s\n", "input",
         "wall", "CPU", "cold", "start", "db", "hw", "model", "JIT", "predict",
         "output", "sum");
  printf("  %-30s %6.2f %6.2f %6s |\n", "(/bin/true: any process)",
         empty_wall * 1e3, empty * 1e3, "");
  printf("  %-30s %6.2f %6.2f %6s | %6.2f\n", "(lmrun --version)",
         start_wall * 1e3, start * 1e3, "", start * 1e3);
  char **nocache = env_without_cache();
  Phases warm; /* the first input would pay the process's first uses */
  phases("models/llama-2-7b-hf.json", 3, &warm);
  double worst = 0;
  char worst_in[256] = "";
  int over = 0, n = 0;
  char *inputs = buf_steal(&list);
  for (char *save = NULL, *in = strtok_r(inputs, "\n", &save); in;
       in = strtok_r(NULL, "\n", &save)) {
    Phases ph;
    if (phases(in, 9, &ph) < 0)
      continue;
    char *argv[] = {"./lmrun", in, NULL};
    double wall, cpu, cold_wall, cold;
    process_time(argv, 11, &wall, &cpu);
    process_time_env(argv, nocache, 11, &cold_wall, &cold);
    double sum = start + ph.open + ph.model + ph.jit + ph.predict + ph.output;
    const char *shown = strncmp(in, "test/data/configs/", 18) == 0 ? in + 18 : in;
    printf("  %-30s %6.2f %6.2f %6.2f | %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f "
           "%6.2f %6.2f\n",
           shown, wall * 1e3, cpu * 1e3, cold * 1e3, start * 1e3, ph.db * 1e3,
           (ph.open - ph.db) * 1e3, ph.model * 1e3, ph.jit * 1e3,
           ph.predict * 1e3, ph.output * 1e3, sum * 1e3);
    n++;
    over += cpu > 5e-3;
    if (cpu > worst) {
      worst = cpu;
      snprintf(worst_in, sizeof(worst_in), "%s", shown);
    }
  }
  printf("  start: lmrun --version's whole process (exec, dynamic linking, "
         "exit); db: the\n  module database (db_open_stamped: its index read, "
         "both files hashed\n  unless the cache's stamp vouches for them) and "
         "the registry; hw: the rest of lmp_open "
         "(hardware.json); model: the model file or\n  config and template; "
         "JIT: the model's modules (first load minus a second\n  one); "
         "predict: lmp_predict (plan, engine, calibration, both phases, "
         "largest\n  batch); output: the table; sum: start plus the phases "
         "(in-process, warm: a\n  process also pays its page faults and cold "
         "caches, the difference to CPU).\n  CPU, JIT and sum are repeat runs, "
         "the model's compiled code loaded from\n  the cache, found by its stamp "
         "(DESIGN.md 7.10; the first runs of a model\n  fill it); cold: CPU\n  with "
         "LM_PREDICTOR_CACHE=off, libtcc compiling on every run\n");
  printf("  slowest: %s, %.2f ms CPU; %d of %d inputs over the 5 ms target\n",
         worst_in, worst * 1e3, over, n);
  free(inputs);
  free(nocache);
}

/* The sweep rates through lmp_sweep (Llama-2-7B, calibrated, then the
 * roofline); with memory, lmrun's peak RSS over long sweeps too.
 * `build/bench sweep` prints this part alone. */
static void bench_sweeps(ApiBench *ab, bool memory) {
  /* whole predictions (prefill, decode, roofline, calibration,
   * footprint, summary) through lmp_sweep, calibrated (the default) */
  ApiBenchSweep sb = {ab->data, ab->model, ab->opts};
  static const struct {
    const char *what, *dim[2][2], *format;
  } sw[] = {
      {"-B 1..64 -S 128..4096x2", {{"batch", "1..64"},
                                   {"seq-len", "128..4096x2"}}, NULL},
      {"-B 1..16 -S 1..4096 (S fastest)", {{"batch", "1..16"},
                                           {"seq-len", "1..4096"}}, NULL},
      {"-S 1..4096 -B 1..16 (B fastest)", {{"seq-len", "1..4096"},
                                           {"batch", "1..16"}}, NULL},
      {"-B 1..16 -S 1..4096, every row as CSV", {{"batch", "1..16"},
                                                {"seq-len", "1..4096"}},
       "csv"},
      {"-B 1..16 -S 1..4096, every row as JSON", {{"batch", "1..16"},
                                                 {"seq-len", "1..4096"}},
       "json"},
      {"-B 1..16 -S 1..4096, every row as a table", {{"batch", "1..16"},
                                                    {"seq-len", "1..4096"}},
       "table"},
  };
  printf("sweeps: whole predictions through lmp_sweep (calibrated, vLLM), "
         "one core\n");
  for (size_t i = 0; i < LM_ARRAY_LEN(sw); i++) {
    SweepSpec w = {&sb, {{sw[i].dim[0][0], sw[i].dim[0][1]},
                         {sw[i].dim[1][0], sw[i].dim[1][1]}},
                   sw[i].format, 0};
    bench_sweep_spec(&w); /* sizes it (and warms the caches) */
    double t = cpu_time_it(bench_sweep_spec, &w, w.configs > 1000 ? 5 : 9,
                           w.configs > 1000 ? 1 : 3);
    char what[96];
    snprintf(what, sizeof(what), "%s%s", sw[i].format ? "" : "evaluate: ",
             sw[i].what);
    print_rate(what, t / w.configs);
  }
  /* the modes of issue 13 section 5, each over -B 1..16 -S 1..4096 with S
   * fastest and -S 1..4096 -B 1..16 with B fastest */
  static const struct {
    const char *what, *key, *value;
  } modes[] = {{"--phase prefill", "phase", "prefill"},
               {"--phase decode", "phase", "decode"},
               {"--roofline", "roofline", "yes"}};
  for (size_t i = 0; i < LM_ARRAY_LEN(modes); i++) {
    lmp_options_set(ab->opts, modes[i].key, modes[i].value, NULL);
    for (int order = 0; order < 2; order++) {
      SweepSpec wr = {&sb, {{"batch", "1..16"}, {"seq-len", "1..4096"}},
                      NULL, 0};
      if (order) {
        wr.dim[0][0] = "seq-len", wr.dim[0][1] = "1..4096";
        wr.dim[1][0] = "batch", wr.dim[1][1] = "1..16";
      }
      bench_sweep_spec(&wr);
      char what[96];
      snprintf(what, sizeof(what), "evaluate: %s (%s fastest)", modes[i].what,
               order ? "B" : "S");
      print_rate(what, cpu_time_it(bench_sweep_spec, &wr, 5, 1) / wr.configs);
    }
  }
  lmp_options_set(ab->opts, "phase", "all", NULL);
  lmp_options_set(ab->opts, "roofline", "no", NULL);
  if (!memory)
    return;
  /* constant memory: lmrun's peak RSS, 10^7 configurations against 10 */
  char *big[] = {"./lmrun", "models/llama-2-7b-hf.json", "-B", "1..10000",
                 "-S", "1..1000", "--slo", "tpot=30ms", NULL};
  char *small[] = {"./lmrun", "models/llama-2-7b-hf.json", "-B", "1..10",
                   "-S", "1", "--slo", "tpot=30ms", NULL};
  char *bigcsv[] = {"./lmrun", "models/llama-2-7b-hf.json", "-B",
                    "1..1000", "-S", "1..1000", "--format", "csv", NULL};
  char *smallcsv[] = {"./lmrun", "models/llama-2-7b-hf.json", "-B", "1..10",
                      "-S", "1", "--format", "csv", NULL};
  double t0 = now_seconds();
  long kb_big = child_max_rss_kb(big);
  double tb = now_seconds() - t0;
  long kb_small = child_max_rss_kb(small);
  printf("  lmrun --slo, 10^7 configurations: peak RSS %ld kB (%.1f s); "
         "10 configurations: %ld kB\n",
         kb_big, tb, kb_small);
  t0 = now_seconds();
  kb_big = child_max_rss_kb(bigcsv);
  tb = now_seconds() - t0;
  kb_small = child_max_rss_kb(smallcsv);
  printf("  lmrun --format csv, 10^6 rows: peak RSS %ld kB (%.1f s); "
         "10 rows: %ld kB\n",
         kb_big, tb, kb_small);
}

/* `build/bench predict`: one calibrated prediction and its parts alone
 * (Llama-2-7B, H100, vLLM's kernels, FlashAttention), CPU time. */
static int bench_predict_only(void) {
  Error e;
  err_clear(&e);
  Db *db = db_open("module_db.json", "generated_modules", &e);
  Registry *reg = db ? reg_open(db, "generated_modules", &e) : NULL;
  ModelOpenOpts mo = {.arch_dir = "models/arch"};
  Model *model = reg ? model_open("models/llama-2-7b-hf.json", &mo, reg, &e)
                     : NULL;
  GpuDb *gpus = model ? gpudb_load("hardware.json", &e) : NULL;
  Calib *cal = gpus ? calib_for_gpu("calibration", "h100-sxm", &e) : NULL;
  Engine *eng = cal ? engine_load("engines/vllm.json", &e) : NULL;
  if (!eng) {
    err_print(stderr, &e);
    return 1;
  }
  EvalBench fb = {.plan = plan_build(model, ATTN_FLASH, NULL),
                  .gpu = gpudb_find(gpus, "h100-sxm")};
  predict_defaults(&fb.opts);
  fb.opts.max_batch = false;
  fb.opts.attn = ATTN_FLASH;
  fb.opts.calib = cal;
  fb.opts.engine_data = eng;
  plan_fuse(fb.plan);
  printf("one calibrated predict (Llama-2-7B, H100, vLLM, FlashAttention), "
         "CPU time, least disturbed batch\n");
  print_time("one predict, calibrated, the same configuration",
             cpu_time_it(bench_predict, &fb, 25, 20000));
  print_time("  B 1..64 in turn (nothing carried over)",
             cpu_time_it(bench_predict_vary, &fb, 25, 20000));
  print_time("  of which calib_predict, both phases",
             cpu_time_it(bench_calib, &fb, 25, 20000));
  prediction_free(&fb.pred);
  plan_free(fb.plan);
  calib_free(cal);
  engine_free(eng);
  gpudb_free(gpus);
  model_free(model);
  reg_free(reg);
  db_free(db);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "lmrun") == 0) { /* this part alone */
    bench_end_to_end(argc > 2 && strcmp(argv[2], "all") == 0);
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "predict") == 0)
    return bench_predict_only();
  if (argc > 1 && strcmp(argv[1], "sweep") == 0) { /* this part alone */
    ApiBench ab = {.data = lmp_open("module_db.json", "generated_modules",
                                    "hardware.json", NULL)};
    ab.model = ab.data ? lmp_model_load(ab.data, "models/llama-2-7b-hf.json",
                                        NULL)
                       : NULL;
    ab.opts = lmp_options_new();
    if (!ab.model || lmp_options_set(ab.opts, "max-batch", "no", NULL) < 0)
      abort();
    bench_sweeps(&ab, false);
    lmp_options_free(ab.opts);
    lmp_model_free(ab.model);
    lmp_close(ab.data);
    return 0;
  }
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
  print_time("db_open: the checked index (what lmrun reads)",
             time_it(bench_db_open, NULL, 15, 50));

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
                  .run = {1, 2048, 2048, 2048, 2, 2, 2, 233472, 2},
                  .gpu = gpudb_find(gpus, "h100-sxm")};
  predict_defaults(&eb.opts);
  eb.opts.max_batch = false;
  eb.vals = values_new(eb.plan);
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
  print_time("the same, interpretive (no fused function)",
             time_it(bench_eval_interp, &eb, 25, 20000));
  print_time("one predict: prefill + decode + roofline + footprint",
             time_it(bench_predict, &eb, 25, 20000));
  {
    ConfBench cb = {.e = &eb};
    if (roof_peaks(eb.gpu, 16, 16, 16, FMT8_AUTO, &cb.peaks, NULL) < 0)
      abort();
    for (int ph = 0; ph < 2; ph++) {
      memcpy(cb.run, eb.run, sizeof(cb.run));
      if (ph == 1)
        cb.run[V_T] = 1;
      cb.ph = (PhaseResult){.name = ph ? "decode" : "prefill",
                            .plan = eb.plan, .vals = eb.vals};
      print_rate(ph ? "sweep, decode: evaluate + roofline, one core"
                    : "sweep, prefill: evaluate + roofline, one core",
                 cpu_time_it(bench_conf, &cb, 25, 20000));
      print_rate(ph ? "  of which the roofline of the decode rows"
                    : "  of which the roofline of the prefill rows",
                 cpu_time_it(bench_roofline, &cb, 25, 20000));
      phase_free_times(&cb.ph);
    }
  }
  EvalBench fb = eb;
  fb.plan = plan_build(model, ATTN_FLASH, NULL);
  fb.opts.attn = ATTN_FLASH;
  memset(&fb.pred, 0, sizeof(fb.pred));
  print_time("the same with FlashAttention-2",
             time_it(bench_predict, &fb, 25, 20000));
  /* calibrated: vLLM's kernels on the H100 calibration (lmrun's default) */
  Calib *cal = calib_for_gpu("calibration", "h100-sxm", &e);
  Engine *eng = engine_load("engines/vllm.json", &e);
  if (!cal || !eng) {
    err_print(stderr, &e);
    return 1;
  }
  prediction_free(&fb.pred);
  memset(&fb.pred, 0, sizeof(fb.pred));
  fb.opts.calib = cal;
  fb.opts.engine_data = eng;
  print_time("one predict, calibrated (vLLM kernels, FlashAttention)",
             time_it(bench_predict, &fb, 25, 20000));
  print_time("  the same, B 1..64 in turn (nothing carried over)",
             time_it(bench_predict_vary, &fb, 25, 20000));
  print_time("  of which calib_predict, both phases",
             time_it(bench_calib, &fb, 25, 20000));
  print_rate("sweep, calibration: calib_predict of one phase, one core",
             cpu_time_it(bench_calib, &fb, 25, 20000) / 2);
  int kernels = 0;
  for (int r = 0; r < fb.plan->nrows; r++)
    kernels += fb.pred.cplan->lead[r] == r;
  printf("  (%d rows run as %d kernels; the calibrated time adds one pass "
         "over them per phase)\n",
         fb.plan->nrows, kernels);
  prediction_free(&fb.pred);
  calib_free(cal);
  engine_free(eng);
  plan_free(fb.plan);
  eb.scratch[0] = values_new(eb.plan);
  eb.scratch[1] = values_new(eb.plan);
  print_time("largest-batch search (bisection, ~40 evaluations)",
             time_it(bench_max_batch, &eb, 15, 500));
  values_free(eb.scratch[0]);
  values_free(eb.scratch[1]);
  ApiBench ab = {.data = lmp_open("module_db.json", "generated_modules",
                                  "hardware.json", NULL)};
  ab.model = ab.data ? lmp_model_load(ab.data, "models/llama-2-7b-hf.json",
                                      NULL)
                     : NULL;
  ab.opts = lmp_options_new();
  if (!ab.model || lmp_options_set(ab.opts, "max-batch", "no", NULL) < 0)
    abort();
  print_time("public API: lmp_predict + lmp_result_free",
             time_it(bench_lmp_predict, &ab, 25, 5000));
  lmp_options_set(ab.opts, "output-len", "256", NULL);
  print_time("lmp_predict with -O 256 (255 decode steps summed)",
             cpu_time_it(bench_lmp_predict, &ab, 9, 50));
  lmp_options_set(ab.opts, "output-len", "1", NULL);
  bench_sweeps(&ab, true);
  lmp_options_set(ab.opts, "max-batch", "yes", NULL);
  print_time("the same with the largest-batch search",
             time_it(bench_lmp_predict, &ab, 15, 500));
  lmp_options_set(ab.opts, "format", "html", NULL);
  lmp_result *hr = lmp_predict(ab.data, ab.model, ab.opts, NULL);
  if (!hr)
    abort();
  TextBench tb = {hr};
  print_time("--format html: the page, both phases' explanations",
             time_it(bench_html, &tb, 11, 20));
  print_time("--explain q_proj (both phases)",
             time_it(bench_explain, &tb, 15, 200));
  lmp_result_free(hr);
  lmp_options_free(ab.opts);
  lmp_model_free(ab.model);
  lmp_close(ab.data);
  bench_end_to_end(false);
  values_free(eb.vals);
  prediction_free(&eb.pred);
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
