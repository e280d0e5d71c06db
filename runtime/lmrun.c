/* lmrun.c: the lmrun command.
 *
 *   lmrun MODEL [-B N] [-S N] [--phase prefill|decode|all]
 *         [--w-bits 16|8|4] [--a-bits 16|8|4] [--kv-bits 16|8|4]
 *         [--attention eager|flash] [--hardware ID] [--format F]
 *         [-O N] [--tp N] [--pp N] [--ep N] [--microbatches N]
 *         [--slo ttft=..,tpot=..] [--maximize throughput|throughput-per-gpu]
 *         [--engine vllm|trtllm|trtllm-xqa|hf-eager] [--roofline]
 *         [-o FILE] [--explain OP] [--tree]
 *         [--db PATH] [--modules DIR] [--hardware-db PATH]
 *         [--expert-balance F]
 *   lmrun --list-hardware
 *
 * MODEL is a model file, a Hugging Face config.json, a directory holding
 * one, or a Hub id (lmp_model_load -> model_open).
 * A sweep: options given lists or ranges ("1,2,4", "1..256", "1..256x2")
 * make lmrun evaluate the cross product and print one summary row per
 * configuration (lmp_sweep_*), streaming; with --slo it prints the best
 * (lmp_slo_*). Progress goes to stderr once a sweep runs over a second.
 *
 * Glue over the library (include/lmpredict.h): every prediction option
 * goes to lmp_options_set, which checks it and words its errors; then
 * lmp_open, lmp_model_load, lmp_predict, and the result in the chosen
 * format. Both phases are always computed (the summary needs both);
 * --phase chooses what is printed. --list-hardware reads only the GPU
 * database.
 */
#include "lmpredict.h"
#include "runtime.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out) {
  fputs(
      "usage: lmrun MODEL [-B N] [-S N] [--phase prefill|decode|all]\n"
      "             [--w-bits 16|8|4] [--a-bits 16|8|4] [--kv-bits 16|8|4]\n"
      "             [--embed-bits 16|8|4] [--8bit-format int8|fp8]\n"
      "             [--attention eager|flash] [--hardware ID]\n"
      "             [--engine vllm|trtllm|trtllm-xqa|hf-eager] [--roofline]\n"
      "             [-O N] [--tp N] [--pp N] [--ep N] [--microbatches N]\n"
      "             [--max-batch yes|no] [--slo TARGETS]\n"
      "             [--maximize throughput|throughput-per-gpu]\n"
      "             [--format table|json|csv|markdown|html] [-o FILE]\n"
      "             [--explain OP] [--tree]\n"
      "             [--db PATH] [--modules DIR] [--hardware-db PATH]\n"
      "             [--expert-balance F]\n"
      "       lmrun --list-hardware\n"
      "       lmrun --help | --version\n"
      "\n"
      "Per-operation cost of a model on a GPU: FLOPs, bytes of weights,\n"
      "activations and KV cache, arithmetic intensity, bound and time; time\n"
      "to first token, time per output token, memory footprint.\n"
      "MODEL is a model file (models/*.json), a Hugging Face config.json,\n"
      "a directory holding one, or a Hub id (org/name: cache first, see\n"
      "HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).\n"
      "\n"
      "  -B, --batch N        sequences in the batch (default 1)\n"
      "  -S, --seq-len N      tokens per sequence (default 2048)\n"
      "  --phase P            prefill, decode or all (default all)\n"
      "  --w-bits/--a-bits/--kv-bits N\n"
      "                       weight, activation and KV-cache precision:\n"
      "                       16, 8 or 4 (default 16; a config's\n"
      "                       quantization_config sets the weights')\n"
      "  --embed-bits N       embedding and lm_head precision (default 16:\n"
      "                       quantized checkpoints keep them 16-bit)\n"
      "  --8bit-format F      the 8-bit peak: int8 or fp8 (default: INT8 if\n"
      "                       the GPU has it, else FP8)\n"
      "  --attention A        eager or flash (FlashAttention-2); default:\n"
      "                       the engine's (vllm, trtllm[-xqa]: flash;\n"
      "                       hf-eager: eager), eager with --roofline\n"
      "  --engine E           serving engine whose kernels are timed:\n"
      "                       vllm (default), trtllm, trtllm-xqa (XQA in\n"
      "                       generation) or hf-eager\n"
      "                       (engines/E.json: fusions, attention kernel)\n"
      "  --roofline           times are the roofline bound max(FLOPs / peak,\n"
      "                       bytes / bandwidth), no engine or calibration\n"
      "  --expert-balance F   MoE routing balance, 0 < F <= 1 (default 1:\n"
      "                       uniform): tokens spread over F x E experts,\n"
      "                       e.g. F = exp(routing entropy) / E measured\n"
      "  --hardware ID        GPU from hardware.json (default h100-sxm)\n"
      "  --list-hardware      list the GPUs and exit\n"
      "  -O, --output-len N   tokens generated: end-to-end latency, mean TPOT\n"
      "  --tp N, --pp N       tensor / pipeline parallel GPUs (default 1)\n"
      "  --ep N               expert parallel GPUs (MoE models): E/N\n"
      "                       experts a GPU, attention data-parallel\n"
      "                       (B/N sequences a GPU), all-to-all rows;\n"
      "                       with --tp N (same N): attention\n"
      "                       tensor-parallel, experts E/N a GPU\n"
      "  --microbatches N     pipeline microbatches (divides -B; default 1)\n"
      "  --max-batch yes|no   search the largest batch that fits (default\n"
      "                       yes; no in sweeps)\n"
      "  --format F           table (default), json, csv, markdown (GitHub\n"
      "                       tables) or html (one self-contained page:\n"
      "                       roofline, time by kind, memory, sortable table)\n"
      "  -o, --output FILE    write the output to FILE (atomically) instead\n"
      "                       of stdout\n"
      "  --explain OP         where every number of one operation comes from:\n"
      "                       formulas, parameter values and their origin,\n"
      "                       roofline terms (OP: qk_matmul or a path such as\n"
      "                       model.layers.self_attn.qk_matmul)\n"
      "  --tree               the model's layers as the walk sees them\n"
      "Sweeps: -B -S -O --hardware --tp --pp --ep --w-bits --a-bits\n"
      "  --kv-bits --attention ... take lists and ranges: 1,2,4  1..256\n"
      "  (every integer)  1..256x2 (1, 2, 4, ... 256); one summary row per\n"
      "  configuration of the cross product (json: one object per line)\n"
      "  --slo T              targets ttft=200ms,tpot=30ms,e2e=10s: report\n"
      "                       the best configuration meeting them\n"
      "  --maximize M         throughput (default) or throughput-per-gpu\n"
      "  --db PATH            module database (default: the install's)\n"
      "  --modules DIR        generated modules (default: generated_modules/)\n"
      "  --hardware-db PATH   GPU database (default: the install's\n"
      "                       hardware.json)\n"
      "  -h, --help           this help\n"
      "  --version            print the version and exit\n",
      out);
}

/* --list-hardware reads only the GPU database. */
static int list_hardware(const char *hw_path) {
  Error err;
  err_clear(&err);
  GpuDb *g = gpudb_load(hw_path, &err);
  if (!g) {
    fputs("lmrun: ", stderr);
    err_print(stderr, &err);
    return 1;
  }
  char *text = report_hardware(g);
  fputs(text, stdout);
  free(text);
  gpudb_free(g);
  return 0;
}

/* The options the library checks (lmp_options_set), then lmrun's own. */
static const char *const lib_opts[] = {
    "batch",      "seq-len",     "phase",     "w-bits",     "a-bits",
    "kv-bits",    "embed-bits",  "8bit-format", "attention", "hardware",
    "format",     "output-len",  "tp",        "pp",         "ep",
    "microbatches", "max-batch", "engine", "expert-balance"};
enum {
  O_DB = 256,
  O_MODULES,
  O_HWDB,
  O_LIST,
  O_ROOF,
  O_EXPLAIN,
  O_TREE,
  O_VERSION,
  O_SLO,
  O_MAXIMIZE,
  O_LIB /* + lib_opts index */
};

/* Options that are not swept (one value each). */
static bool sweepable(const char *name) {
  return strcmp(name, "phase") != 0 && strcmp(name, "format") != 0 &&
         strcmp(name, "max-batch") != 0;
}

/* A list ("a,b") or a numeric range ("1..8"); "../x" is a value. */
static bool is_list(const char *v) {
  if (strchr(v, ','))
    return true;
  for (const char *p = strstr(v, ".."); p; p = strstr(p + 1, ".."))
    if (p > v && p[-1] >= '0' && p[-1] <= '9' && p[2] >= '0' && p[2] <= '9')
      return true;
  return false;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Progress on stderr: a bar on a terminal, else a line a second. The
 * clock is read every 1024 configurations (a configuration takes about a
 * microsecond; reading the clock and asking for a terminal cost as much). */
static void progress(double done, double total, double t0, double *last,
                     bool final) {
  static int tty = -1;
  if (!final && ((unsigned long long)done & 1023) != 0)
    return;
  double t = now_s();
  if (tty < 0)
    tty = isatty(2);
  if (t - t0 < 1 || (!final && t - *last < (tty ? 0.1 : 1)))
    return;
  *last = t;
  double f = total > 0 ? done / total : 1;
  if (tty) {
    char bar[41];
    int k = (int)(f * 40);
    for (int i = 0; i < 40; i++)
      bar[i] = i < k ? '#' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\r[%s] %5.1f%% %.0f/%.0f configurations, %.0f/s%s", bar,
            100 * f, done, total, done / (t - t0), final ? "\n" : "");
  } else {
    fprintf(stderr, "lmrun: %.0f/%.0f configurations (%.1f%%), %.0f/s\n",
            done, total, 100 * f, done / (t - t0));
  }
}

typedef struct SweepArg {
  const char *name, *value;
} SweepArg;

/* The sweep: rows, or with an SLO the best. */
/* Output: to stdout as it comes, or (-o FILE) collected and written
 * atomically at the end. */
static void emit(Buf *file, const char *text) {
  if (file)
    buf_puts(file, text);
  else
    fputs(text, stdout);
}

static int run_sweep(lmp_data *d, lmp_model *m, lmp_options *o,
                     const SweepArg *args, int nargs, const char *slo_spec,
                     const char *maximize, const char *format,
                     const char *out_path) {
  lmp_error err;
  int rc = 1;
  lmp_slo *slo = NULL;
  lmp_sweep_page *page = NULL;
  Buf file, *fb = out_path ? &file : NULL;
  buf_init(&file);
  bool html = strcmp(format, "html") == 0;
  lmp_sweep *s = lmp_sweep_new(d, m, o);
  for (int i = 0; i < nargs; i++)
    if (lmp_sweep_values(s, args[i].name, args[i].value, &err) < 0) {
      fprintf(stderr, "lmrun: %s", err.text);
      goto out;
    }
  if (slo_spec && !(slo = lmp_slo_new(slo_spec, maximize, &err))) {
    fprintf(stderr, "lmrun: %s", err.text);
    goto out;
  }
  if (html)
    page = lmp_sweep_page_new(s);
  else if (!slo) {
    char *h = lmp_row_header(format);
    emit(fb, h);
    lmp_free(h);
  }
  double total = lmp_sweep_size(s), done = 0, t0 = now_s(), last = 0;
  const lmp_result *r;
  int k;
  while ((k = lmp_sweep_next(s, &r, &err)) != 0) {
    done++;
    if (slo || page) {
      int v = -1;
      if (slo && k < 0)
        lmp_slo_offer_error(slo, &err);
      else if (slo)
        v = lmp_slo_offer(slo, r);
      if (page && k > 0)
        lmp_sweep_page_add(page, r, v);
    } else if (k < 0) {
      char *row = lmp_sweep_error_row(s, format, &err);
      emit(fb, row);
      lmp_free(row);
    } else {
      char *row = lmp_result_summary_row(r, format);
      emit(fb, row);
      lmp_free(row);
    }
    progress(done, total, t0, &last, false);
  }
  progress(done, total, t0, &last, true);
  if (page) {
    char *t = lmp_sweep_page_html(page, slo);
    emit(fb, t);
    lmp_free(t);
  } else if (slo) {
    char *t = lmp_slo_result(slo, format);
    emit(fb, t);
    lmp_free(t);
  }
  if (fb) {
    Error e;
    err_clear(&e);
    if (fs_write_atomic(out_path, buf_str(&file), file.len, &e) < 0) {
      fputs("lmrun: ", stderr);
      err_print(stderr, &e);
      goto out;
    }
  } else if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "lmrun: write error: %s\n", strerror(errno));
    goto out;
  }
  rc = 0;
out:
  lmp_sweep_page_free(page);
  lmp_slo_free(slo);
  lmp_sweep_free(s);
  buf_free(&file);
  return rc;
}

int main(int argc, char **argv) {
  const char *db_path = NULL, *mod_dir = NULL, *hw_path = NULL;
  const char *out_path = NULL, *explain = NULL;
  bool list = false, tree = false;
  static const struct option own[] = {
      {"db", required_argument, 0, O_DB},
      {"modules", required_argument, 0, O_MODULES},
      {"hardware-db", required_argument, 0, O_HWDB},
      {"list-hardware", no_argument, 0, O_LIST},
      {"output", required_argument, 0, 'o'},
      {"explain", required_argument, 0, O_EXPLAIN},
      {"tree", no_argument, 0, O_TREE},
      {"slo", required_argument, 0, O_SLO},
      {"maximize", required_argument, 0, O_MAXIMIZE},
      {"roofline", no_argument, 0, O_ROOF},
      {"help", no_argument, 0, 'h'},
      {"version", no_argument, 0, O_VERSION}};
  struct option opts[LM_ARRAY_LEN(own) + LM_ARRAY_LEN(lib_opts) + 1] = {0};
  size_t n = 0;
  for (size_t i = 0; i < LM_ARRAY_LEN(own); i++)
    opts[n++] = own[i];
  for (size_t i = 0; i < LM_ARRAY_LEN(lib_opts); i++)
    opts[n++] = (struct option){lib_opts[i], required_argument, 0,
                                O_LIB + (int)i};
  lmp_options *o = lmp_options_new();
  lmp_error err;
  int c, rc = 2;
  SweepArg sweep[LM_ARRAY_LEN(lib_opts)];
  int nsweep = 0;
  const char *slo = NULL, *maximize = NULL, *format = "table";
  bool max_batch_given = false;
  while ((c = getopt_long(argc, argv, "B:S:O:o:h", opts, NULL)) != -1) {
    const char *name = c == 'B' ? "batch" : c == 'S' ? "seq-len"
                     : c == 'O' ? "output-len"
                     : c >= O_LIB ? lib_opts[c - O_LIB] : NULL;
    if (name && sweepable(name) && is_list(optarg)) {
      int i = 0;
      while (i < nsweep && strcmp(sweep[i].name, name) != 0)
        i++;
      sweep[i] = (SweepArg){name, optarg};
      nsweep += i == nsweep;
      continue;
    }
    if (name) {
      if (strcmp(name, "format") == 0)
        format = optarg;
      if (strcmp(name, "max-batch") == 0)
        max_batch_given = true;
      for (int i = 0; i < nsweep; i++) /* a later single value wins */
        if (strcmp(sweep[i].name, name) == 0)
          sweep[i] = sweep[--nsweep];
      if (lmp_options_set(o, name, optarg, &err) < 0) {
        fprintf(stderr, "lmrun: %s", err.text);
        goto out_usage;
      }
      continue;
    }
    switch (c) {
    case O_DB:
      db_path = optarg;
      break;
    case O_MODULES:
      mod_dir = optarg;
      break;
    case O_HWDB:
      hw_path = optarg;
      break;
    case O_LIST:
      list = true;
      break;
    case 'o':
      out_path = optarg;
      break;
    case O_EXPLAIN:
      explain = optarg;
      break;
    case O_TREE:
      tree = true;
      break;
    case O_SLO:
      slo = optarg;
      break;
    case O_MAXIMIZE:
      maximize = optarg;
      break;
    case O_ROOF:
      lmp_options_set(o, "roofline", "yes", NULL);
      break;
    case 'h':
      usage(stdout);
      rc = 0;
      goto out_usage;
    case O_VERSION:
      printf("lmrun %s\n", lmp_version());
      rc = 0;
      goto out_usage;
    default:
      usage(stderr);
      goto out_usage;
    }
  }
  if (list) {
    char *path = hw_path ? xstrdup(hw_path) : path_join(lm_home(), "hardware.json");
    rc = list_hardware(path);
    free(path);
    goto out_usage;
  }
  if (optind != argc - 1) {
    fputs(optind == argc ? "lmrun: no model file given\n"
                         : "lmrun: give exactly one model file\n",
          stderr);
    usage(stderr);
    goto out_usage;
  }

  rc = 1;
  lmp_data *d = NULL;
  lmp_model *m = NULL;
  lmp_result *r = NULL;
  char *text = NULL;
  bool sweeping = nsweep > 0 || slo;
  if (maximize && !slo) {
    fputs("lmrun: --maximize needs --slo\n", stderr);
    rc = 2;
    goto out_usage;
  }
  if (sweeping && !max_batch_given)
    lmp_options_set(o, "max-batch", "no", NULL);
  if (!(d = lmp_open(db_path, mod_dir, hw_path, &err)) ||
      !(m = lmp_model_load(d, argv[optind], &err))) {
    fprintf(stderr, "lmrun: %s", err.text);
    goto out;
  }
  if (sweeping) {
    if (explain || tree) {
      fputs("lmrun: --explain and --tree take one configuration, not a "
            "sweep\n",
            stderr);
      rc = 2;
      goto out;
    }
    rc = run_sweep(d, m, o, sweep, nsweep, slo, maximize, format, out_path);
    goto out;
  }
  if (!(r = lmp_predict(d, m, o, &err))) {
    fprintf(stderr, "lmrun: %s", err.text);
    goto out;
  }
  const char *w = lmp_result_warnings(r);
  for (const char *nl; (nl = strchr(w, '\n')); w = nl + 1)
    fprintf(stderr, "lmrun: warning: %.*s\n", (int)(nl - w), w);
  text = explain ? lmp_explain(r, explain, &err)
         : tree  ? lmp_result_tree(r)
                 : lmp_result_text(r);
  if (!text) {
    fprintf(stderr, "lmrun: %s", err.text);
    goto out;
  }
  if (out_path) {
    Error e;
    err_clear(&e);
    if (fs_write_atomic(out_path, text, strlen(text), &e) < 0) {
      fputs("lmrun: ", stderr);
      err_print(stderr, &e);
      goto out;
    }
  } else if (fputs(text, stdout), fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "lmrun: write error: %s\n", strerror(errno));
    goto out;
  }
  rc = 0;
out:
  lmp_free(text);
  lmp_result_free(r);
  lmp_model_free(m);
  lmp_close(d);
out_usage:
  lmp_options_free(o);
  return rc;
}
