/* lmrun.c: the lmrun command.
 *
 *   lmrun MODEL [-B N] [-S N] [--phase prefill|decode|all]
 *         [--w-bits 16|8|4] [--a-bits 16|8|4] [--kv-bits 16|8|4]
 *         [--attention eager|flash] [--hardware ID] [--format F]
 *         [--engine vllm|trtllm|hf-eager] [--roofline]
 *         [--db PATH] [--modules DIR] [--hardware-db PATH]
 *   lmrun --list-hardware
 *
 * MODEL is a model file, a Hugging Face config.json, a directory holding
 * one, or a Hub id (lmp_model_load -> model_open).
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

static void usage(FILE *out) {
  fputs(
      "usage: lmrun MODEL [-B N] [-S N] [--phase prefill|decode|all]\n"
      "             [--w-bits 16|8|4] [--a-bits 16|8|4] [--kv-bits 16|8|4]\n"
      "             [--embed-bits 16|8|4] [--8bit-format int8|fp8]\n"
      "             [--attention eager|flash] [--hardware ID]\n"
      "             [--engine vllm|trtllm|hf-eager] [--roofline]\n"
      "             [--format table|json|csv] [--db PATH] [--modules DIR]\n"
      "             [--hardware-db PATH]\n"
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
      "                       16, 8 or 4 (default 16)\n"
      "  --embed-bits N       embedding and lm_head precision (default 16:\n"
      "                       quantized checkpoints keep them 16-bit)\n"
      "  --8bit-format F      the 8-bit peak: int8 or fp8 (default: INT8 if\n"
      "                       the GPU has it, else FP8)\n"
      "  --attention A        eager or flash (FlashAttention-2); default:\n"
      "                       the engine's (vllm, trtllm: flash; hf-eager:\n"
      "                       eager), eager with --roofline\n"
      "  --engine E           serving engine whose kernels are timed:\n"
      "                       vllm (default), trtllm or hf-eager\n"
      "                       (engines/E.json: fusions, attention kernel)\n"
      "  --roofline           times are the roofline bound max(FLOPs / peak,\n"
      "                       bytes / bandwidth), no engine or calibration\n"
      "  --hardware ID        GPU from hardware.json (default h100-sxm)\n"
      "  --list-hardware      list the GPUs and exit\n"
      "  --format F           table (default), json or csv\n"
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
    "batch",      "seq-len",     "phase",     "w-bits",   "a-bits", "kv-bits",
    "embed-bits", "8bit-format", "attention", "hardware", "format",
    "engine"};
enum {
  O_DB = 256,
  O_MODULES,
  O_HWDB,
  O_LIST,
  O_ROOF,
  O_VERSION,
  O_LIB /* + lib_opts index */
};

int main(int argc, char **argv) {
  const char *db_path = NULL, *mod_dir = NULL, *hw_path = NULL;
  bool list = false;
  static const struct option own[] = {
      {"db", required_argument, 0, O_DB},
      {"modules", required_argument, 0, O_MODULES},
      {"hardware-db", required_argument, 0, O_HWDB},
      {"list-hardware", no_argument, 0, O_LIST},
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
  while ((c = getopt_long(argc, argv, "B:S:h", opts, NULL)) != -1) {
    const char *name = c == 'B' ? "batch" : c == 'S' ? "seq-len"
                     : c >= O_LIB ? lib_opts[c - O_LIB] : NULL;
    if (name) {
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
  if (!(d = lmp_open(db_path, mod_dir, hw_path, &err)) ||
      !(m = lmp_model_load(d, argv[optind], &err)) ||
      !(r = lmp_predict(d, m, o, &err))) {
    fprintf(stderr, "lmrun: %s", err.text);
    goto out;
  }
  const char *w = lmp_result_warnings(r);
  for (const char *nl; (nl = strchr(w, '\n')); w = nl + 1)
    fprintf(stderr, "lmrun: warning: %.*s\n", (int)(nl - w), w);
  text = lmp_result_text(r);
  fputs(text, stdout);
  if (fflush(stdout) != 0 || ferror(stdout)) {
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
