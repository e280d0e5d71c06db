/* lmgen.c: the lmgen command, glue over the generator and the agent.
 *
 *   lmgen [--db PATH] [--out DIR] [--check] [--dry-run] [--all | NAME...]
 *   lmgen [--db PATH] [--out DIR] --index
 *   lmgen [--force] [--analysis FILE] [--source PATH] [--dry-run] NAME
 *   lmgen --arch X [--force] [--analysis FILE] [--source PATH] [--dry-run]
 *         [--expect-params N | --no-param-check] [--arch-dir DIR]
 *
 * Parses the arguments, then runs the generator (gen_run, gen/generate.c)
 * or the agent (agent_run, agents/agent.c), or the architecture agent
 * (arch_run, agents/arch.c). A full class name the database
 * does not know is the agent's case: gen_run says so and the agent runs.
 * The command lives in agents/ because it is the one program that links
 * both parts; gen/ is a library that never sees the network.
 */
#include "agents.h"
#include "lmpredict.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out) {
  fputs("usage: lmgen [--db PATH] [--out DIR] [--check] [--dry-run] "
        "[--all | NAME...]\n"
        "       lmgen [--db PATH] [--out DIR] --index\n"
        "       lmgen [--force] [--analysis FILE] [--source PATH] [--dry-run] "
        "NAME\n"
        "       lmgen --arch X [--force] [--analysis FILE] [--source PATH]\n"
        "             [--dry-run] [--expect-params N | --no-param-check]\n"
        "       lmgen --help | --version\n"
        "\n"
        "Generate C calculator modules from the module database; analyse a\n"
        "module the database does not know with an LLM agent.\n"
        "\n"
        "  NAME           full class name (torch.nn.modules.activation.SiLU)\n"
        "                 or short name (SiLU); its callees are generated too.\n"
        "                 A full name the database does not know is analysed\n"
        "                 by the agent, then generated\n"
        "  --all          every entry; removes generated files no entry claims\n"
        "  --db PATH      module database (default: module_db.json of the\n"
        "                 install, found next to the lmgen executable)\n"
        "  --out DIR      output directory (default: generated_modules/)\n"
        "  --check        write nothing; exit 1 if any file or stored name\n"
        "                 differs from what generation would produce\n"
        "  --index        write only DIR/module_db.index, the checked\n"
        "                 database lmrun reads instead of checking\n"
        "                 module_db.json whole (every write also does)\n"
        "  --dry-run      write nothing; show what would change (for an\n"
        "                 analysis: old and new formulas)\n"
        "  --force        analyse NAME again although it is known; replaces\n"
        "                 its formulas, keeps its parameters and stored names\n"
        "  --analysis FILE  take the answer from FILE (an entry as JSON, or a\n"
        "                 whole LLM reply) instead of the network; same checks\n"
        "  --source PATH  the Python file defining NAME (default: found under\n"
        "                 $LMGEN_SOURCE_ROOT); with --arch, the family's\n"
        "                 modeling_<model_type>.py\n"
        "  --arch X       write the template of X's model_type with the agent:\n"
        "                 X is a config.json, a directory holding one or a Hub\n"
        "                 id, as lmrun takes them; classes the template names\n"
        "                 that the database lacks are analysed in the same run\n"
        "  --arch-dir DIR templates (default: models/arch of the install)\n"
        "  --expect-params N  with --arch: the model's parameter count, when\n"
        "                 the checkpoint has no model.safetensors.index.json\n"
        "  --no-param-check   with --arch: accept a template without any\n"
        "                 parameter count to compare with (said in the output)\n"
        "  -h, --help     this help\n"
        "  --version      print the version and exit\n"
        "\n"
        "The agent reads LMGEN_API_URL, LMGEN_API_KEY, LMGEN_MODEL and\n"
        "LMGEN_API_STYLE (anthropic or openai); see README.md.\n",
        out);
}

/* A run that may write needs the database's directory (module_db.json and
 * its lock are replaced/created there) and the output directory writable.
 * On an install owned by root they are not: say so before any network
 * request or write, and how to work on a copy (DESIGN.md §13). --arch
 * also writes the templates' directory (arch_dir, or NULL). */
static bool denied(int e) {
  return e == EACCES || e == EPERM || e == EROFS;
}

static bool writable(const char *db_path, const char *out_dir,
                     const char *arch_dir) {
  const char *slash = strrchr(db_path, '/');
  char *db_dir = !slash ? xstrdup(".")
                 : slash == db_path
                     ? xstrdup("/")
                     : xstrndup(db_path, (size_t)(slash - db_path));
  /* only permissions: a missing directory is the loader's or writer's
   * error, reported with its own message */
  const char *bad = NULL;
  int e = 0;
  if (access(db_dir, W_OK) != 0 && denied(errno))
    bad = db_dir, e = errno;
  else if (access(out_dir, W_OK) != 0 && denied(errno))
    bad = out_dir, e = errno;
  else if (arch_dir && access(arch_dir, W_OK) != 0 && denied(errno))
    bad = arch_dir, e = errno;
  if (bad)
    fprintf(stderr,
            "lmgen: cannot write to %s: %s\n"
            "lmgen: to change an installed database, work on a copy:\n"
            "  cp -r %s DIR && lmgen --db DIR/module_db.json "
            "--out DIR/generated_modules%s ...\n"
            "lmgen: (--check and --dry-run write nothing and work here)\n",
            path_display(bad), strerror(e), db_dir,
            arch_dir ? " --arch-dir DIR/models/arch" : "");
  free(db_dir);
  return bad == NULL;
}

int main(int argc, char **argv) {
  const char *home = lm_home();
  char *db_path = path_join(home, "module_db.json");
  char *out_dir = path_join(home, "generated_modules");
  bool all = false, check = false, dry_run = false, force = false;
  bool index = false;
  const char *analysis = NULL, *source = NULL, *arch = NULL, *arch_dir = NULL;
  bool no_param_check = false;
  double expect_params = 0;
  static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                       {"out", required_argument, 0, 'o'},
                                       {"all", no_argument, 0, 'a'},
                                       {"check", no_argument, 0, 'c'},
                                       {"index", no_argument, 0, 'I'},
                                       {"dry-run", no_argument, 0, 'n'},
                                       {"force", no_argument, 0, 'f'},
                                       {"analysis", required_argument, 0, 'A'},
                                       {"source", required_argument, 0, 's'},
                                       {"arch", required_argument, 0, 'R'},
                                       {"arch-dir", required_argument, 0, 'D'},
                                       {"expect-params", required_argument, 0,
                                        'E'},
                                       {"no-param-check", no_argument, 0, 'P'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'd':
      free(db_path);
      db_path = xstrdup(optarg);
      break;
    case 'o':
      free(out_dir);
      out_dir = xstrdup(optarg);
      break;
    case 'a':
      all = true;
      break;
    case 'c':
      check = true;
      break;
    case 'I':
      index = true;
      break;
    case 'n':
      dry_run = true;
      break;
    case 'f':
      force = true;
      break;
    case 'A':
      analysis = optarg;
      break;
    case 's':
      source = optarg;
      break;
    case 'R':
      arch = optarg;
      break;
    case 'D':
      arch_dir = optarg;
      break;
    case 'P':
      no_param_check = true;
      break;
    case 'E': {
      char *end;
      expect_params = strtod(optarg, &end);
      if (end == optarg || *end || !(expect_params >= 1) ||
          expect_params > 1e15) {
        fprintf(stderr, "lmgen: --expect-params takes a parameter count "
                        "(a number from 1 to 1e15), not '%s'\n",
                optarg);
        free(db_path);
        free(out_dir);
        return 2;
      }
      break;
    }
    case 'h':
      usage(stdout);
      free(db_path);
      free(out_dir);
      return 0;
    case 'V':
      printf("lmgen %s\n", lmp_version());
      free(db_path);
      free(out_dir);
      return 0;
    default:
      usage(stderr);
      free(db_path);
      free(out_dir);
      return 2;
    }
  }
  const char *bad = NULL;
  bool agent = force || analysis || source;
  if (arch) {
    if (all || check || optind < argc)
      bad = "--arch takes no NAME, --all or --check";
    else if (index)
      bad = "--index takes only --db and --out";
    else if (no_param_check && expect_params > 0)
      bad = "give --expect-params or --no-param-check, not both";
    char *adir = arch_dir ? xstrdup(arch_dir) : arch_dir_default();
    if (!bad && !dry_run && !writable(db_path, out_dir, adir)) {
      free(adir);
      free(db_path);
      free(out_dir);
      return 1;
    }
    free(adir);
    if (!bad) {
      ArchArgs ra = {.db_path = db_path,
                     .out_dir = out_dir,
                     .arch_dir = arch_dir,
                     .arg = arch,
                     .force = force,
                     .dry_run = dry_run,
                     .no_param_check = no_param_check,
                     .expect_params = expect_params,
                     .analysis = analysis,
                     .source = source};
      int rc = arch_run(&ra);
      free(db_path);
      free(out_dir);
      return rc;
    }
  } else if (arch_dir || no_param_check || expect_params > 0)
    bad = "--arch-dir, --expect-params and --no-param-check go with --arch";
  else if (index && (all || check || dry_run || agent || optind < argc))
    bad = "--index takes only --db and --out";
  else if (index)
    ; /* the index alone */
  else if (all == (optind < argc))
    bad = all ? "give --all or names, not both"
              : "nothing to generate: give NAME... or --all";
  else if (check && dry_run)
    bad = "give --check or --dry-run, not both";
  else if (agent && (all || check))
    bad = "--force, --analysis and --source take one NAME, without --all or "
          "--check";
  else if (agent && argc - optind != 1)
    bad = "--force, --analysis and --source analyse one NAME at a time";
  if (bad) {
    fprintf(stderr, "lmgen: %s\n", bad);
    usage(stderr);
    free(db_path);
    free(out_dir);
    return 2;
  }
  if (!check && !dry_run && !writable(db_path, out_dir, NULL)) {
    free(db_path);
    free(out_dir);
    return 1;
  }
  AgentArgs aa = {.db_path = db_path,
                  .out_dir = out_dir,
                  .name = optind < argc ? argv[optind] : NULL,
                  .force = force,
                  .dry_run = dry_run,
                  .analysis = analysis,
                  .source = source};
  GenArgs ga = {.db_path = db_path,
                .out_dir = out_dir,
                .names = argv + optind,
                .nnames = argc - optind,
                .all = all,
                .check = check,
                .dry_run = dry_run,
                .index = index};
  int rc = agent ? agent_run(&aa) : gen_run(&ga);
  if (rc == GEN_RUN_ANALYSE)
    rc = agent_run(&aa);
  free(db_path);
  free(out_dir);
  return rc;
}
