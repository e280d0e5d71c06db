/* hub.c: a Hub id ("org/name") -> its config.json, cache first.
 *
 * The cache is huggingface_hub's, so a cache filled by Python is reused
 * and the other way round:
 *
 *   $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 *   else ~/.cache/huggingface/hub
 *     models--org--name/refs/main                 the commit, no newline
 *     models--org--name/blobs/<etag>              the file's bytes
 *     models--org--name/snapshots/<commit>/config.json -> ../../blobs/<etag>
 *
 * Otherwise GET $HF_ENDPOINT/org/name/resolve/main/config.json (default
 * https://huggingface.co) with "Authorization: Bearer $HF_TOKEN" when set,
 * over agents/http.c (include/http.h: timeouts, retries, size cap). The reply
 * is checked (parsed, template filled, model loaded) BEFORE anything is
 * written, then stored atomically: blob (temp file + rename), snapshot link
 * (temp link + rename), refs/main last, so a reader never sees a ref to a
 * missing file. HF_HUB_OFFLINE=1 never touches the network. The token travels
 * in one header only: never in a message, a file or the cache.
 */
#include "http.h"
#include "runtime.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* huggingface_hub's validate_repo_id: [org/]name, each of letters, digits,
 * '-', '_', '.', at most 96 characters, no "--" or "..", not starting or
 * ending with '-' or '.'. */
bool hub_valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 96 * 2 + 1)
    return false;
  const char *slash = strchr(id, '/');
  if (slash && strchr(slash + 1, '/'))
    return false;
  if (strstr(id, "--") || strstr(id, ".."))
    return false;
  const char *part = id;
  for (int k = 0; k < 2 && part; k++) {
    const char *end = k == 0 && slash ? slash : id + n;
    size_t pl = (size_t)(end - part);
    if (pl == 0 || pl > 96)
      return false;
    for (const char *p = part; p < end; p++)
      if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
        return false;
    if (part[0] == '-' || part[0] == '.' || end[-1] == '-' || end[-1] == '.')
      return false;
    part = k == 0 && slash ? slash + 1 : NULL;
  }
  return true;
}

char *hub_cache_dir(void) {
  const char *e = getenv("HF_HUB_CACHE");
  if (e && *e)
    return xstrdup(e);
  e = getenv("HUGGINGFACE_HUB_CACHE"); /* the older name */
  if (e && *e)
    return xstrdup(e);
  e = getenv("HF_HOME");
  if (e && *e)
    return path_join(e, "hub");
  e = getenv("XDG_CACHE_HOME");
  if (e && *e)
    return path_join(e, "huggingface/hub");
  e = getenv("HOME");
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/.cache/huggingface/hub", e && *e ? e : ".");
  return buf_steal(&b);
}

/* models--org--name */
static char *repo_dir(const char *cache, const char *id) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/models--", cache);
  for (const char *p = id; *p; p++)
    if (*p == '/')
      buf_puts(&b, "--");
    else
      buf_putc(&b, *p);
  return buf_steal(&b);
}

static bool env_true(const char *name) {
  const char *v = getenv(name);
  return v && (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 ||
               strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0);
}

static bool all_of(const char *s, const char *set, size_t min, size_t max) {
  size_t n = strlen(s);
  return n >= min && n <= max && strspn(s, set) == n;
}

#define HEX "0123456789abcdef"
#define ALNUM "0123456789abcdefABCDEFghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ"

/* The commit refs/main names, or NULL. */
static char *read_ref(const char *rdir) {
  char *p = path_join(rdir, "refs/main");
  char *t = fs_read(p, NULL, NULL);
  free(p);
  if (!t)
    return NULL;
  size_t n = strlen(t);
  while (n && isspace((unsigned char)t[n - 1]))
    t[--n] = '\0';
  if (!all_of(t, HEX, 40, 40)) {
    free(t);
    return NULL;
  }
  return t;
}

/* Compare the checkpoint's size with what the model predicts: the index
 * next to the config (model.safetensors.index.json) holds
 * metadata.total_size. Sets m->ckpt_bytes (-1 when there is none). */
void hub_read_index(Model *m, const char *dir) {
  m->ckpt_bytes = -1;
  char *p = path_join(dir, "model.safetensors.index.json");
  char *t = fs_read(p, NULL, NULL);
  free(p);
  if (!t)
    return;
  json_t *r = json_loads(t, 0, NULL);
  free(t);
  json_t *ts = json_object_get(json_object_get(r, "metadata"), "total_size");
  if (json_is_number(ts) && json_number_value(ts) > 0)
    m->ckpt_bytes = json_number_value(ts);
  json_decref(r);
}

static int mkdirs(const char *path, Error *err) {
  char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      err_file(err, p, "cannot create directory: %s", strerror(errno));
      free(p);
      return -1;
    }
    *s = '/';
  }
  int rc = 0;
  if (mkdir(p, 0777) != 0 && errno != EEXIST) {
    err_file(err, p, "cannot create directory: %s", strerror(errno));
    rc = -1;
  }
  free(p);
  return rc;
}

/* Store config.json in the cache: blob, snapshot link, ref. */
static int store(const char *rdir, const char *commit, const char *etag,
                 const char *data, size_t len, Error *err) {
  int rc = -1;
  char *blobs = path_join(rdir, "blobs");
  char *snap = NULL, *blob = NULL, *link = NULL, *tmp = NULL, *refs = NULL,
       *ref = NULL;
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/snapshots/%s", rdir, commit);
  snap = buf_steal(&b);
  refs = path_join(rdir, "refs");
  if (mkdirs(blobs, err) < 0 || mkdirs(snap, err) < 0 || mkdirs(refs, err) < 0)
    goto out;
  blob = path_join(blobs, etag);
  if (!fs_same_content(blob, data, len) &&
      fs_write_atomic(blob, data, len, err) < 0)
    goto out;
  link = path_join(snap, "config.json");
  buf_printf(&b, "%s.tmp.%ld", link, (long)getpid());
  tmp = buf_steal(&b);
  buf_printf(&b, "../../blobs/%s", etag);
  char *target = buf_steal(&b);
  unlink(tmp);
  if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
    err_file(err, link, "cannot link the snapshot to its blob: %s",
             strerror(errno));
    unlink(tmp);
    free(target);
    goto out;
  }
  free(target);
  ref = path_join(refs, "main");
  if (fs_write_atomic(ref, commit, strlen(commit), err) < 0)
    goto out;
  rc = 0;
out:
  free(blobs);
  free(snap);
  free(blob);
  free(link);
  free(tmp);
  free(refs);
  free(ref);
  return rc;
}

/* The ETag as huggingface_hub keeps it: X-Linked-Etag (LFS files) else
 * ETag, without W/ and quotes. */
static bool etag_of(const HttpResponse *r, char *out, size_t outsz) {
  char raw[256];
  if (!http_header(r, "X-Linked-Etag", raw, sizeof(raw)) &&
      !http_header(r, "ETag", raw, sizeof(raw)))
    return false;
  char *s = raw;
  if (strncmp(s, "W/", 2) == 0)
    s += 2;
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s[n - 1] = '\0';
    s++;
  }
  snprintf(out, outsz, "%s", s);
  return all_of(out, ALNUM, 1, 128);
}

/* GET $HF_ENDPOINT/<id>/resolve/main/<file> into resp (status 200), with
 * HF_TOKEN, retries and the redirects below; retries announced into notes.
 * ep/el: the endpoint, for messages. -1 with err otherwise. */
static int hub_get(const char *id, const char *file, HttpResponse *resp,
                   Buf *notes, Error *err) {
  const char *ep = getenv("HF_ENDPOINT");
  if (!ep || !*ep)
    ep = "https://huggingface.co";
  size_t el = strlen(ep);
  while (el > 1 && ep[el - 1] == '/')
    el--;
  Buf url;
  buf_init(&url);
  buf_printf(&url, "%.*s/%s/resolve/main/%s", (int)el, ep, id, file);
  const char *tok = getenv("HF_TOKEN");
  bool has_tok = tok && *tok;
  if (has_tok && strpbrk(tok, "\r\n")) {
    err_set(err, "HF_TOKEN contains a line break");
    buf_free(&url);
    return -1;
  }
  Buf auth;
  buf_init(&auth);
  const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
  if (has_tok) {
    buf_printf(&auth, "Authorization: Bearer %s", tok);
    hdrs[1] = buf_str(&auth);
  }
  HttpOptions opt;
  int rc = -1;
  if (http_options_from_env(&opt, err) < 0)
    goto out;
  /* libcurl, loaded, and its global state (TLS libraries) only when the
   * network is used: lmrun is one thread, and a model file or a cached id
   * never pays */
  if (http_global_init(err) < 0) {
    err_prefix(err, "cannot fetch %s's %s from %.*s: ", id, file, (int)el, ep);
    goto out;
  }
  /* A renamed repository answers with a relative redirect to its new
   * name (gpt2 -> /openai-community/gpt2/...): followed on the same
   * endpoint, at most 3 times, as huggingface_hub does; the token goes to
   * that endpoint only, never to another host. */
  for (int hops = 0;; hops++) {
    /* retries are announced as the model's warnings: the library prints
     * nothing */
    char *logtext = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logtext, &loglen);
    int got = http_get(http_curl(), buf_str(&url), hdrs, &opt, resp, log,
                       err);
    if (log)
      fclose(log);
    for (char *l = logtext, *nl; l && (nl = strchr(l, '\n')); l = nl + 1) {
      *nl = '\0';
      buf_printf(notes, "%s\n", strncmp(l, "lmgen: ", 7) ? l : l + 7);
    }
    free(logtext);
    if (got < 0) {
      err_prefix(err, "cannot fetch %s's %s from %.*s: ", id, file, (int)el,
                 ep);
      goto out;
    }
    char loc[1024];
    if (hops < 3 && resp->status >= 301 && resp->status <= 308 &&
        http_header(resp, "Location", loc, sizeof(loc)) && loc[0] == '/' &&
        loc[1] != '/' && !strpbrk(loc, " \t\r\n")) {
      buf_reset(&url);
      buf_printf(&url, "%.*s%s", (int)el, ep, loc);
      continue;
    }
    break;
  }
  char code[64] = "";
  http_header(resp, "X-Error-Code", code, sizeof(code));
  long st = resp->status;
  if (strcmp(code, "RepoNotFound") == 0 || st == 404) {
    if (strcmp(code, "EntryNotFound") == 0)
      err_set(err, "%s on the Hub has no %s (HTTP %ld)", id, file, st);
    else
      err_set(err,
              "no model '%s' on the Hub (HTTP %ld from %.*s): check the "
              "id%s",
              id, st, (int)el, ep,
              has_tok ? "" : "; a private repository also needs HF_TOKEN");
    goto out;
  }
  if (st == 401 || st == 403) {
    if (has_tok)
      err_set(err,
              "%s is gated or private and the Hub refused HF_TOKEN (HTTP "
              "%ld): accept the model's licence on its page "
              "(%.*s/%s) with the account the token belongs to, or check "
              "the token",
              id, st, (int)el, ep, id);
    else
      err_set(err,
              "%s is gated or private (HTTP %ld): set HF_TOKEN to a token of "
              "an account that has accepted the model's licence on its page "
              "(%.*s/%s)",
              id, st, (int)el, ep, id);
    goto out;
  }
  if (st != 200) {
    err_set(err, "fetching %s's %s from %.*s failed: HTTP %ld%s", id, file,
            (int)el, ep, st,
            st >= 300 && st < 400
                ? " (a redirect lmrun does not follow: only relative ones, "
                  "3 at most)"
                : "");
    goto out;
  }
  rc = 0;
out:
  if (auth.data) /* the token: wiped before it is freed */
    memset(auth.data, 0, auth.cap);
  buf_free(&auth);
  buf_free(&url);
  return rc;
}

static Model *fetch(const char *id, const char *rdir, const ModelOpenOpts *o,
                    const Registry *reg, Error *err) {
  HttpResponse resp;
  http_response_init(&resp);
  Model *m = NULL;
  Buf notes; /* warnings for the model */
  buf_init(&notes);
  if (hub_get(id, "config.json", &resp, &notes, err) < 0)
    goto out;
  const char *ep = getenv("HF_ENDPOINT");
  if (!ep || !*ep)
    ep = "https://huggingface.co";
  size_t el = strlen(ep);
  while (el > 1 && ep[el - 1] == '/')
    el--;
  char shown[300];
  snprintf(shown, sizeof(shown), "%s:config.json", id);
  m = model_from_config(shown, buf_str(&resp.body), resp.body.len, id,
                        o->arch_dir, reg, err);
  if (!m)
    goto out; /* nothing cached: a bad config is not stored */
  m->ckpt_bytes = -1;
  char commit[128], etag[160];
  if (!http_header(&resp, "X-Repo-Commit", commit, sizeof(commit)) ||
      !all_of(commit, HEX, 40, 40) || !etag_of(&resp, etag, sizeof(etag))) {
    buf_printf(&notes,
               "%.*s answered without a valid X-Repo-Commit and ETag: %s's "
               "config.json is not cached\n",
               (int)el, ep, id);
    goto out;
  }
  Error serr;
  err_clear(&serr);
  if (store(rdir, commit, etag, resp.body.data, resp.body.len, &serr) < 0)
    buf_printf(&notes, "%s's config.json is not cached: %s%s%s\n", id,
               serr.file, serr.file[0] ? ": " : "", serr.msg);
out:
  if (m && notes.len)
    m->warnings = arena_strdup(&m->arena, buf_str(&notes));
  buf_free(&notes);
  http_response_free(&resp);
  return m;
}

/* The cached snapshot directory of id (refs/main), or NULL. */
static char *cached_snapshot(const char *rdir) {
  char *commit = read_ref(rdir);
  if (!commit)
    return NULL;
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/snapshots/%s", rdir, commit);
  free(commit);
  return buf_steal(&b);
}

int hub_config_text(const char *id, ConfigText *out, Error *err) {
  memset(out, 0, sizeof(*out));
  if (!hub_valid_id(id)) {
    char *t = fs_read(id, NULL, err); /* "cannot open", as lmrun says */
    free(t);
    return -1;
  }
  char *cache = hub_cache_dir();
  char *rdir = repo_dir(cache, id);
  int rc = -1;
  char *snap = cached_snapshot(rdir);
  if (snap) {
    char *cfg = path_join(snap, "config.json");
    size_t len;
    char *text = fs_read(cfg, &len, NULL);
    if (text) {
      out->path = cfg;
      out->text = text;
      out->len = len;
      out->id = xstrdup(id);
      out->dir = snap;
      rc = 0;
      goto out;
    }
    free(cfg);
    free(snap);
  }
  if (env_true("HF_HUB_OFFLINE")) {
    err_set(err,
            "HF_HUB_OFFLINE is set and %s's config.json is not in the cache "
            "(%s)",
            id, path_display(rdir));
    goto out;
  }
  HttpResponse resp;
  http_response_init(&resp);
  Buf notes;
  buf_init(&notes);
  if (hub_get(id, "config.json", &resp, &notes, err) == 0) {
    Buf b;
    buf_init(&b);
    buf_printf(&b, "%s:config.json", id);
    out->path = buf_steal(&b);
    out->len = resp.body.len;
    out->text = buf_steal(&resp.body);
    out->id = xstrdup(id);
    rc = 0;
  }
  buf_free(&notes);
  http_response_free(&resp);
out:
  free(rdir);
  free(cache);
  return rc;
}

double hub_index_total(const char *id, Error *err) {
  if (env_true("HF_HUB_OFFLINE"))
    return -1;
  HttpResponse resp;
  http_response_init(&resp);
  Buf notes;
  buf_init(&notes);
  double total = -1;
  Error e;
  err_clear(&e);
  if (hub_get(id, "model.safetensors.index.json", &resp, &notes, &e) == 0) {
    json_t *r = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    json_t *ts = json_object_get(json_object_get(r, "metadata"), "total_size");
    if (json_is_number(ts) && json_number_value(ts) > 0)
      total = json_number_value(ts);
    json_decref(r);
  } else if (!strstr(e.msg, "has no model.safetensors.index.json") && err) {
    *err = e; /* a single-file checkpoint has no index: not an error */
  }
  buf_free(&notes);
  http_response_free(&resp);
  return total;
}

Model *hub_open_model(const char *id, const ModelOpenOpts *o,
                      const Registry *reg, Error *err) {
  if (!hub_valid_id(id)) {
    /* not an id: report the file as any reader would ("cannot open") */
    char *t = fs_read(id, NULL, err);
    free(t);
    return NULL;
  }
  char *cache = hub_cache_dir();
  char *rdir = repo_dir(cache, id);
  Model *m = NULL;
  char *commit = read_ref(rdir);
  if (commit) {
    Buf b;
    buf_init(&b);
    buf_printf(&b, "%s/snapshots/%s", rdir, commit);
    char *snap = buf_steal(&b);
    char *cfg = path_join(snap, "config.json");
    size_t len;
    Error ferr;
    err_clear(&ferr);
    char *text = fs_read(cfg, &len, &ferr);
    if (text) {
      m = model_from_config(cfg, text, len, id, o->arch_dir, reg, err);
      if (m)
        hub_read_index(m, snap);
      free(text);
      free(snap);
      free(cfg);
      free(commit);
      goto out;
    }
    free(snap);
    free(cfg);
    free(commit);
  }
  if (env_true("HF_HUB_OFFLINE")) {
    err_set(err,
            "HF_HUB_OFFLINE is set and %s's config.json is not in the cache "
            "(%s)",
            id, path_display(rdir));
    goto out;
  }
  m = fetch(id, rdir, o, reg, err);
out:
  free(rdir);
  free(cache);
  return m;
}
