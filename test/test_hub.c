/* test_hub.c: Hub ids end to end (hub.c through lmrun), against
 * test/fake_hub_server.py on 127.0.0.1: huggingface_hub's cache layout,
 * cache first, offline, 404, 401/403 with and without HF_TOKEN, the token
 * never printed or stored, a cache written the way huggingface_hub writes
 * it read back, nothing cached from a bad reply. */
#include "testutil.h"
#include "runtime.h"

#include <sys/stat.h>

#define TOKEN "hf_FAKEtokenFORtestsONLY0123456789"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

typedef struct Hub {
  pid_t pid;
  int port;
  char *dir;   /* the test's temporary directory */
  char *log;   /* the server's request log */
  char *cache; /* HF_HUB_CACHE */
} Hub;

static int setup(void **state) {
  Hub *h = xcalloc(1, sizeof(Hub));
  h->dir = tu_tmpdir();
  h->log = path_join(h->dir, "requests.log");
  h->cache = path_join(h->dir, "hub");
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  h->pid = fork();
  assert_true(h->pid >= 0);
  if (h->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("python3", "python3", "test/fake_hub_server.py", "test/data/configs",
           h->log, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[64] = "";
  bool ok = fgets(line, sizeof(line), f) != NULL;
  fclose(f);
  assert_true(ok);
  h->port = atoi(line);
  assert_true(h->port > 0);
  *state = h;
  return 0;
}

static int teardown(void **state) {
  Hub *h = *state;
  kill(h->pid, SIGTERM);
  waitpid(h->pid, NULL, 0);
  tu_rm_rf(h->dir);
  free(h->dir);
  free(h->log);
  free(h->cache);
  free(h);
  return 0;
}

static int requests(const Hub *h) {
  char *t = tu_read(h->log);
  int n = 0;
  for (char *p = t; p && *p; p++)
    n += *p == '\n';
  free(t);
  return n;
}

/* lmrun ID with the Hub's variables pointing at the fake server and the
 * test's cache; extra is more environment ("HF_TOKEN=..."). */
static int lmrun(const Hub *h, char **out, const char *extra, const char *id,
                 const char *args) {
  return tu_run(out,
                "env -u HF_TOKEN -u HF_HOME -u HF_HUB_OFFLINE "
                "HF_HUB_CACHE='%s' HF_ENDPOINT='http://127.0.0.1:%d' "
                "LMGEN_RETRY_BASE_MS=10 %s %s '%s' %s",
                h->cache, h->port, extra ? extra : "", tu_bin("lmrun"), id,
                args ? args : "-S 16 --format json");
}

static bool is_link_to(const char *path, const char *target) {
  char buf[512];
  ssize_t n = readlink(path, buf, sizeof(buf) - 1);
  if (n < 0)
    return false;
  buf[n] = '\0';
  return strcmp(buf, target) == 0;
}

/* git's blob id of the file: the ETag the server sends */
static char *blob_id(const char *file) {
  char *out = NULL;
  assert_int_equal(tu_run(&out,
                          "printf 'blob %%s\\0' $(wc -c < '%s') | cat "
                          "- '%s' | sha1sum | cut -c1-40",
                          file, file),
                   0);
  out[40] = '\0';
  return out;
}

static void test_hub_fetch_and_cache_layout(void **state) {
  Hub *h = *state;
  char *out = NULL;
  int rc = lmrun(h, &out, NULL, "meta-llama/Llama-3.2-1B", NULL);
  if (rc != 0)
    print_error("%s\n", out);
  assert_int_equal(rc, 0);
  assert_contains(out, "\"model\": \"meta-llama/Llama-3.2-1B\"");
  assert_contains(out, "\"family\": \"llama\"");
  assert_contains(out, "\"parameters\": {\"total\": 1235814400, \"active\": "
                       "1235814400}");
  free(out);
  assert_int_equal(requests(h), 1);
  char *log = tu_read(h->log);
  assert_contains(log, "\"path\": \"/meta-llama/Llama-3.2-1B/resolve/main/"
                       "config.json\"");
  assert_not_contains(log, "Authorization"); /* no token set: none sent */
  free(log);

  /* huggingface_hub's layout */
  char *repo = path_join(h->cache, "models--meta-llama--Llama-3.2-1B");
  char *ref = path_join(repo, "refs/main");
  char *r = tu_read(ref);
  assert_non_null(r);
  assert_string_equal(r, COMMIT); /* no newline, as huggingface_hub writes */
  free(r);
  char *etag = blob_id("test/data/configs/llama-3.2-1b.json");
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/snapshots/%s/config.json", repo, COMMIT);
  char *snap = buf_steal(&b);
  buf_printf(&b, "../../blobs/%s", etag);
  char *target = buf_steal(&b);
  assert_true(is_link_to(snap, target));
  buf_printf(&b, "%s/blobs/%s", repo, etag);
  char *blob = buf_steal(&b);
  char *got = tu_read(blob),
       *want = tu_read("test/data/configs/llama-3.2-1b.json");
  assert_string_equal(got, want);
  free(got);
  free(want);
  /* nothing else: no temporary files left behind */
  char *list = tu_list_files(repo);
  buf_printf(&b, "blobs/%s\nrefs/main\nsnapshots/%s/config.json\n", etag,
             COMMIT);
  assert_string_equal(list, buf_str(&b));
  buf_free(&b);
  free(list);

  /* second run: the cache answers, the server is not asked again */
  assert_int_equal(lmrun(h, &out, NULL, "meta-llama/Llama-3.2-1B", NULL), 0);
  assert_contains(out, "\"total\": 1235814400");
  free(out);
  assert_int_equal(requests(h), 1);
  /* and offline too */
  assert_int_equal(
      lmrun(h, &out, "HF_HUB_OFFLINE=1", "meta-llama/Llama-3.2-1B", NULL), 0);
  free(out);
  assert_int_equal(requests(h), 1);
  free(repo);
  free(ref);
  free(etag);
  free(snap);
  free(target);
  free(blob);
}

static void test_hub_offline_not_cached(void **state) {
  Hub *h = *state;
  char *out = NULL;
  assert_int_equal(
      lmrun(h, &out, "HF_HUB_OFFLINE=1", "Qwen/Qwen2.5-0.5B", NULL), 1);
  assert_contains(out, "HF_HUB_OFFLINE is set and Qwen/Qwen2.5-0.5B's "
                       "config.json is not in the cache");
  free(out);
  assert_int_equal(requests(h), 0);
}

/* libcurl is loaded only to reach the network: without it, a cached id
 * still works, and an id to fetch is a clear error naming the package. */
static void test_hub_without_libcurl(void **state) {
  Hub *h = *state;
  char *out = NULL;
  const char *none = "LM_LIBCURL=/nonexistent/libcurl.so.4";
  assert_int_equal(lmrun(h, &out, none, "Qwen/Qwen2.5-0.5B", NULL), 1);
  assert_contains(out, "cannot fetch Qwen/Qwen2.5-0.5B's config.json from "
                       "http://127.0.0.1:");
  assert_contains(out, "libcurl is needed to reach the network and cannot be "
                       "loaded (/nonexistent/libcurl.so.4");
  assert_contains(out, "install the Debian package libcurl4");
  free(out);
  assert_int_equal(requests(h), 0);
  struct stat st;
  assert_int_not_equal(stat(h->cache, &st), 0); /* nothing written */
  /* fetched once with it, the id is read from the cache without it */
  assert_int_equal(lmrun(h, &out, NULL, "meta-llama/Llama-3.2-1B", NULL), 0);
  free(out);
  assert_int_equal(lmrun(h, &out, none, "meta-llama/Llama-3.2-1B", NULL), 0);
  assert_contains(out, "\"total\": 1235814400");
  free(out);
  assert_int_equal(requests(h), 1);
  /* a model file never needs it */
  assert_int_equal(tu_run(&out, "env %s %s %s -S 16 --format json", none,
                          tu_bin("lmrun"), "models/llama-2-7b-hf.json"),
                   0);
  free(out);
}

static void test_hub_unknown_repo(void **state) {
  Hub *h = *state;
  char *out = NULL;
  assert_int_equal(lmrun(h, &out, NULL, "missing/repo", NULL), 1);
  assert_contains(out, "no model 'missing/repo' on the Hub (HTTP 404");
  free(out);
  /* the Hub answers an unknown repo 401 without a token: still "no model" */
  assert_int_equal(lmrun(h, &out, NULL, "nowhere/repo", NULL), 1);
  assert_contains(out, "no model 'nowhere/repo' on the Hub (HTTP 401");
  assert_contains(out, "a private repository also needs HF_TOKEN");
  free(out);
  struct stat st;
  assert_int_not_equal(stat(h->cache, &st), 0); /* nothing written */
}

static void test_hub_gated(void **state) {
  Hub *h = *state;
  char *out = NULL;
  /* no token */
  assert_int_equal(lmrun(h, &out, NULL, "gated/model", NULL), 1);
  assert_contains(out, "gated/model is gated or private (HTTP 401): set "
                       "HF_TOKEN");
  assert_contains(out, "accepted the model's licence");
  free(out);
  /* a token the Hub refuses (and echoes back) */
  assert_int_equal(
      lmrun(h, &out, "HF_TOKEN=hf_wrongTOKENvalue99", "gated/model", NULL), 1);
  assert_contains(out, "refused HF_TOKEN (HTTP 403)");
  assert_contains(out, "accept the model's licence");
  assert_not_contains(out, "hf_wrongTOKENvalue99");
  free(out);
  struct stat st;
  assert_int_not_equal(stat(h->cache, &st), 0);
  /* the right one */
  int rc = lmrun(h, &out, "HF_TOKEN=" TOKEN, "gated/model", "-S 16");
  if (rc)
    print_error("%s\n", out);
  assert_int_equal(rc, 0);
  assert_contains(out, "model gated/model: family llama, 1235814400 "
                       "parameters");
  assert_not_contains(out, TOKEN);
  free(out);
  char *log = tu_read(h->log);
  assert_contains(log, "\"Authorization\": \"Bearer " TOKEN "\"");
  free(log);
  /* the token is in no file lmrun wrote */
  tu_assert_tree_lacks(h->cache, TOKEN, NULL);
  /* JSON and CSV outputs from the cache do not carry it either */
  assert_int_equal(
      lmrun(h, &out, "HF_TOKEN=" TOKEN, "gated/model", "--format csv -S 16"),
      0);
  assert_not_contains(out, TOKEN);
  free(out);
}

static void test_hub_bad_replies_not_cached(void **state) {
  Hub *h = *state;
  char *out = NULL;
  /* a reply that is not JSON: located error, nothing cached */
  assert_int_equal(lmrun(h, &out, NULL, "broken/model", NULL), 1);
  assert_contains(out, "broken/model:config.json:1:");
  assert_contains(out, "invalid JSON");
  free(out);
  struct stat st;
  assert_int_not_equal(stat(h->cache, &st), 0);
  /* a reply without X-Repo-Commit/ETag: used, not cached, said so */
  assert_int_equal(lmrun(h, &out, NULL, "bare/model", NULL), 0);
  assert_contains(out, "is not cached");
  assert_contains(out, "\"total\": 494032768");
  free(out);
  assert_int_not_equal(stat(h->cache, &st), 0);

  /* 503 then 200: retried */
  assert_int_equal(lmrun(h, &out, NULL, "flaky/model", NULL), 0);
  assert_contains(out, "HTTP 503");
  assert_contains(out, "\"total\": 7241732096");
  free(out);
  /* a reply over the size cap is refused before it is read whole */
  assert_int_equal(lmrun(h, &out, "LMGEN_MAX_REPLY_BYTES=100000", "huge/model",
                         NULL),
                   1);
  assert_contains(out, "larger than 100000 bytes");
  free(out);
  char *huge = path_join(h->cache, "models--huge--model");
  assert_int_not_equal(stat(huge, &st), 0);
  free(huge);
  /* a renamed repository: the relative redirect is followed, the token
   * sent again to the same endpoint, the cache kept under the id asked */
  assert_int_equal(lmrun(h, &out, "HF_TOKEN=" TOKEN, "renamed/model", NULL), 0);
  assert_contains(out, "\"total\": 1235814400");
  free(out);
  char *renamed = path_join(h->cache, "models--renamed--model/refs/main");
  char *ref = tu_read(renamed);
  assert_non_null(ref);
  assert_string_equal(ref, COMMIT);
  free(ref);
  free(renamed);
  /* an absolute one (another host) is not */
  assert_int_equal(lmrun(h, &out, "HF_TOKEN=" TOKEN, "away/model", NULL), 1);
  assert_contains(out, "HTTP 307 (a redirect lmrun does not follow");
  assert_not_contains(out, TOKEN);
  free(out);
  /* an id with path characters is a file that does not exist */
  assert_int_equal(lmrun(h, &out, NULL, "a/b/c", NULL), 1);
  assert_contains(out, "a/b/c: error: cannot open");
  free(out);
  assert_int_equal(lmrun(h, &out, NULL, "../etc", NULL), 1);
  assert_contains(out, "cannot open");
  free(out);
}

/* A cache laid out by huggingface_hub (here by hand, as it writes it: blob
 * named by its ETag, snapshot file a relative link, refs/main without a
 * newline), under $HF_HOME/hub, read with no server at all. */
static void test_hub_reads_huggingface_hub_cache(void **state) {
  Hub *h = *state;
  char *home = path_join(h->dir, "hfhome");
  char *repo = path_join(home, "hub/models--Qwen--Qwen2.5-0.5B");
  char *out = NULL;
  const char *etag = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
  assert_int_equal(
      tu_run(NULL,
             "mkdir -p '%s/blobs' '%s/refs' '%s/snapshots/%s' && "
             "cp test/data/configs/qwen2.5-0.5b.json '%s/blobs/%s' && "
             "ln -s ../../blobs/%s '%s/snapshots/%s/config.json' && "
             "printf '%s' > '%s/refs/main'",
             repo, repo, repo, COMMIT, repo, etag, etag, repo, COMMIT, COMMIT,
             repo),
      0);
  int rc = tu_run(&out,
                  "env -u HF_HUB_CACHE -u HF_TOKEN HF_HOME='%s' "
                  "HF_ENDPOINT=http://127.0.0.1:1 %s Qwen/Qwen2.5-0.5B -S 16",
                  home, tu_bin("lmrun"));
  if (rc)
    print_error("%s\n", out);
  assert_int_equal(rc, 0);
  assert_contains(out, "model Qwen/Qwen2.5-0.5B: family qwen2, 494032768 "
                       "parameters");
  assert_not_contains(out, "warning");
  free(out);
  /* the checkpoint index next to it: 2 bytes x 494,032,768 = 988,065,536;
   * one 10% larger draws a warning, the right one none */
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/snapshots/%s/model.safetensors.index.json", repo, COMMIT);
  char *idx = buf_steal(&b);
  tu_write(idx, "{\"metadata\": {\"total_size\": 1086872090}, "
                "\"weight_map\": {}}");
  assert_int_equal(tu_run(&out,
                          "env -u HF_HUB_CACHE HF_HOME='%s' HF_HUB_OFFLINE=1 "
                          "%s Qwen/Qwen2.5-0.5B -S 16",
                          home, tu_bin("lmrun")),
                   0);
  assert_contains(out, "warning: predicted weights (494032768 parameters x 2 "
                       "bytes = 988065536) differ from the checkpoint's "
                       "model.safetensors.index.json total_size (1086872090) "
                       "by -9.09%");
  free(out);
  tu_write(idx, "{\"metadata\": {\"total_size\": 988065536}}");
  assert_int_equal(tu_run(&out,
                          "env -u HF_HUB_CACHE HF_HOME='%s' HF_HUB_OFFLINE=1 "
                          "%s Qwen/Qwen2.5-0.5B -S 16",
                          home, tu_bin("lmrun")),
                   0);
  assert_not_contains(out, "warning");
  free(out);
  assert_int_equal(requests(h), 0);
  free(idx);
  free(home);
  free(repo);
}

static void test_hub_ids(void **state) {
  (void)state;
  assert_true(hub_valid_id("gpt2"));
  assert_true(hub_valid_id("Qwen/Qwen2.5-7B-Instruct"));
  assert_true(hub_valid_id("meta-llama/Llama-3.2-1B"));
  assert_false(hub_valid_id("a/b/c"));
  assert_false(hub_valid_id("../x"));
  assert_false(hub_valid_id("org/.."));
  assert_false(hub_valid_id("org--x/y"));
  assert_false(hub_valid_id("/abs"));
  assert_false(hub_valid_id("org/na me"));
  assert_false(hub_valid_id("-org/x"));
  assert_false(hub_valid_id(""));
}

/* What lmgen --arch reads of a Hub id: the config (the cache's, else
 * fetched and not stored) and the checkpoint's index on the Hub. */
static void test_hub_config_text(void **state) {
  Hub *h = *state;
  char ep[64];
  snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", h->port);
  setenv("HF_ENDPOINT", ep, 1);
  setenv("HF_HUB_CACHE", h->cache, 1);
  setenv("LMGEN_RETRY_BASE_MS", "10", 1);
  unsetenv("HF_TOKEN");
  unsetenv("HF_HUB_OFFLINE");
  ConfigText ct;
  Error e;
  err_clear(&e);
  assert_int_equal(hub_config_text("test-org/minillama", &ct, &e), 0);
  assert_string_equal(ct.path, "test-org/minillama:config.json");
  assert_string_equal(ct.id, "test-org/minillama");
  assert_null(ct.dir);
  char *want = tu_read("test/data/agent/arch/minillama/config.json");
  assert_string_equal(ct.text, want);
  assert_int_equal((int)ct.len, (int)strlen(want));
  free(want);
  config_text_free(&ct);
  struct stat st;
  assert_int_equal(stat(h->cache, &st), -1); /* nothing stored */
  /* the index: total_size, or none (a single-file checkpoint) */
  assert_double_exact(hub_index_total("test-org/minillama", &e), 2471628800.0);
  assert_double_exact(hub_index_total("meta-llama/Llama-3.2-1B", &e), -1);
  assert_false(e.set);
  assert_double_exact(hub_index_total("missing/x", &e), -1);
  assert_contains(e.msg, "no model 'missing/x' on the Hub");
  err_clear(&e);
  assert_int_equal(hub_config_text("missing/x", &ct, &e), -1);
  assert_contains(e.msg, "no model 'missing/x' on the Hub (HTTP 404");
  err_clear(&e);
  assert_int_equal(hub_config_text("not an id", &ct, &e), -1);
  assert_contains(e.msg, "cannot open");
  /* offline: the cache or nothing */
  setenv("HF_HUB_OFFLINE", "1", 1);
  err_clear(&e);
  assert_int_equal(hub_config_text("test-org/minillama", &ct, &e), -1);
  assert_contains(e.msg, "HF_HUB_OFFLINE is set");
  assert_double_exact(hub_index_total("test-org/minillama", &e), -1);
  /* from the cache: the snapshot is where the index is looked for */
  char *p = path_join(h->cache, "models--test-org--minillama/refs");
  assert_int_equal(tu_run(NULL, "mkdir -p %s %s/../snapshots/" COMMIT, p, p),
                   0);
  char *ref = path_join(p, "main");
  tu_write(ref, COMMIT);
  char *snap = path_join(h->cache, "models--test-org--minillama/snapshots/"
                                   COMMIT);
  char *cfg = path_join(snap, "config.json");
  tu_copy("test/data/agent/arch/minillama/config.json", cfg);
  err_clear(&e);
  assert_int_equal(hub_config_text("test-org/minillama", &ct, &e), 0);
  assert_string_equal(ct.dir, snap);
  assert_string_equal(ct.path, cfg);
  config_text_free(&ct);
  unsetenv("HF_HUB_OFFLINE");
  unsetenv("HF_ENDPOINT");
  unsetenv("HF_HUB_CACHE");
  free(p);
  free(ref);
  free(snap);
  free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hub_config_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hub_fetch_and_cache_layout, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hub_offline_not_cached, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hub_without_libcurl, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hub_unknown_repo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hub_gated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hub_bad_replies_not_cached, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hub_reads_huggingface_hub_cache,
                                      setup, teardown),
      cmocka_unit_test(test_hub_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
