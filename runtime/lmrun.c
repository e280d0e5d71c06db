/* lmrun.c: the lmrun command.
 *
 *   lmrun MODEL.json [-B N] [-S N] [--format table|json|csv]
 *         [--db PATH] [--modules DIR]
 *
 * Loads module_db.json, JIT-compiles generated_modules/ into the registry,
 * loads the model file against it, builds the plan and evaluates it for
 * the prefill phase (T = S tokens per sequence, KV length L = S).
 */
#include "runtime.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 1048576.0   /* 2^20 sequences */
#define MAX_SEQ 16777216.0    /* 2^24 tokens */

static void usage(FILE *out) {
  fputs("usage: lmrun MODEL.json [-B N] [-S N] [--format table|json|csv]\n"
        "             [--db PATH] [--modules DIR]\n"
        "\n"
        "Per-operation cost of a model: FLOPs, bytes of weights, activations\n"
        "and KV cache read and written, arithmetic intensity.\n"
        "\n"
        "  -B, --batch N     sequences in the batch (default 1)\n"
        "  -S, --seq-len N   tokens per sequence (default 2048)\n"
        "  --format F        table (default), json or csv\n"
        "  --db PATH         module database (default: the install's\n"
        "                    module_db.json)\n"
        "  --modules DIR     generated modules (default: generated_modules/)\n"
        "  -h, --help        this help\n",
        out);
}

/* A whole number in [1, max], digits only. */
static int parse_count(const char *opt, const char *s, double max,
                       double *out) {
  if (!*s || strspn(s, "0123456789") != strlen(s)) {
    fprintf(stderr, "lmrun: %s expects a whole number, not '%s'\n", opt, s);
    return -1;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE || (double)v > max) {
    fprintf(stderr, "lmrun: %s %s is too large (at most %.0f)\n", opt, s, max);
    return -1;
  }
  if (v == 0) {
    fprintf(stderr, "lmrun: %s must be at least 1\n", opt);
    return -1;
  }
  *out = (double)v;
  return 0;
}

int main(int argc, char **argv) {
  const char *home = lm_home();
  char *db_path = path_join(home, "module_db.json");
  char *mod_dir = path_join(home, "generated_modules");
  double batch = 1, seq = 2048;
  Format fmt = FMT_TABLE;
  static const struct option opts[] = {
      {"batch", required_argument, 0, 'B'},
      {"seq-len", required_argument, 0, 'S'},
      {"format", required_argument, 0, 'f'},
      {"db", required_argument, 0, 'd'},
      {"modules", required_argument, 0, 'm'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c, rc = 2;
  while ((c = getopt_long(argc, argv, "B:S:h", opts, NULL)) != -1) {
    switch (c) {
    case 'B':
      if (parse_count("-B", optarg, MAX_BATCH, &batch) < 0)
        goto out_usage;
      break;
    case 'S':
      if (parse_count("-S", optarg, MAX_SEQ, &seq) < 0)
        goto out_usage;
      break;
    case 'f':
      if (strcmp(optarg, "table") == 0)
        fmt = FMT_TABLE;
      else if (strcmp(optarg, "json") == 0)
        fmt = FMT_JSON;
      else if (strcmp(optarg, "csv") == 0)
        fmt = FMT_CSV;
      else {
        fprintf(stderr, "lmrun: --format is table, json or csv, not '%s'\n",
                optarg);
        goto out_usage;
      }
      break;
    case 'd':
      free(db_path);
      db_path = xstrdup(optarg);
      break;
    case 'm':
      free(mod_dir);
      mod_dir = xstrdup(optarg);
      break;
    case 'h':
      usage(stdout);
      rc = 0;
      goto out_usage;
    default:
      usage(stderr);
      goto out_usage;
    }
  }
  if (optind != argc - 1) {
    fputs(optind == argc ? "lmrun: no model file given\n"
                         : "lmrun: give exactly one model file\n",
          stderr);
    usage(stderr);
    goto out_usage;
  }

  Error err;
  err_clear(&err);
  rc = 1;
  Db *db = NULL;
  Registry *reg = NULL;
  Model *model = NULL;
  Plan *plan = NULL;
  Values *vals = NULL;
  char *text = NULL;
  if (!(db = db_load(db_path, &err)) || !(reg = reg_load(db, mod_dir, &err)) ||
      !(model = model_load(argv[optind], reg, &err)) ||
      !(plan = plan_build(model, ATTN_EAGER, &err)))
    goto out;
  vals = values_new(plan);
  double run[V_COUNT] = {[V_B] = batch, [V_S] = seq, [V_T] = seq,
                         [V_L] = seq,   [V_W_BYTES] = 2, [V_A_BYTES] = 2,
                         [V_KV_BYTES] = 2};
  if (plan_eval(plan, run, vals, &err) < 0)
    goto out;
  PhaseResult ph = {.name = "prefill", .tokens = seq, .kv_len = seq,
                    .plan = plan, .vals = vals};
  Report r = {.model = model->id, .batch = batch, .seq_len = seq,
              .w_bits = 16, .a_bits = 16, .kv_bits = 16,
              .attention = "eager", .phases = &ph, .nphases = 1};
  text = report_render(&r, fmt);
  fputs(text, stdout);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "lmrun: write error: %s\n", strerror(errno));
    goto out;
  }
  rc = 0;
out:
  if (err.set) {
    fputs("lmrun: ", stderr);
    err_print(stderr, &err);
  }
  free(text);
  values_free(vals);
  plan_free(plan);
  model_free(model);
  reg_free(reg);
  db_free(db);
out_usage:
  free(db_path);
  free(mod_dir);
  return rc;
}
