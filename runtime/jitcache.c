/* jitcache.c: the cache of compiled modules (DESIGN.md §7.10).
 *
 * One file per compiled source: <dir>/<key>.jit, where the key is a
 * 128-bit hash of everything the machine code depends on (this format's
 * version, LM_ABI_VERSION, the identity of the libtcc linked in, the
 * compiler options, the caller's salt and every part of the source given
 * to libtcc: the modabi.h prelude, each file's name and text). The file is
 *
 *     lm-predictor-jit 1\n
 *     key <32 hex digits>\n
 *     body <16 hex digits: hash of the body> <body length>\n
 *     <body: the ELF object libtcc wrote>
 *
 * written atomically (fs_write_atomic: temp, fsync, rename), so a reader
 * sees a whole file or none, and concurrent writers of one key write the
 * same bytes. A file that does not match in every part (another key, a
 * short or damaged body) is a miss, never an error: the caller compiles.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "runtime.h"

#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_FORMAT 1

extern const char lm_tcc_id[];

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

/* Two independent 64-bit lanes over 8-byte words (a multiply-rotate
 * hash, about ten times as fast as byte-wise FNV-1a: the key is computed
 * on every run over up to a few hundred KB of source). */
void jitcache_hash(const void *data, size_t len, uint64_t seed,
                   uint64_t out[2]) {
  const unsigned char *p = data;
  uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL, b = rotl(seed, 32) ^ 0x6a09e667f3bcc909ULL;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    a = rotl((a ^ w) * 0x87c37b91114253d5ULL, 31);
    b = rotl((b ^ w) * 0x4cf5ad432745937fULL, 29);
  }
  uint64_t tail = 0;
  memcpy(&tail, p + i, len - i);
  a = rotl((a ^ tail) * 0x87c37b91114253d5ULL, 31);
  b = rotl((b ^ tail) * 0x4cf5ad432745937fULL, 29);
  a ^= (uint64_t)len;
  b ^= (uint64_t)len;
  a += b;
  b += a;
  out[0] = fmix(a) ^ fmix(b + 0x2545f4914f6cdd1dULL);
  out[1] = fmix(b) ^ out[0];
}

extern const char lm_modabi_text[];

/* Over what decides the source libtcc compiles (jit.c builds it from the
 * prelude, each path and each text, always the same way) without
 * building it: the hashes and lengths of its parts, then a hash of those. */
void jitcache_key(const char *options, const char *const *paths,
                  const char *const *texts, int n, char key[33]) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "lm-predictor-jit %d\nabi %d\ntcc %s\noptions %s\nfiles %d\n",
             CACHE_FORMAT, LM_ABI_VERSION, lm_tcc_id, options, n);
  uint64_t h[2];
  for (int i = -1; i < n; i++) {
    const char *part[2] = {i < 0 ? "prelude" : paths[i],
                           i < 0 ? lm_modabi_text : texts[i]};
    for (int k = 0; k < 2; k++) {
      size_t len = strlen(part[k]);
      jitcache_hash(part[k], len, 0, h);
      buf_printf(&b, "%zu %016llx%016llx\n", len, (unsigned long long)h[0],
                 (unsigned long long)h[1]);
    }
  }
  jitcache_hash(b.data, b.len, 0, h);
  buf_free(&b);
  snprintf(key, 33, "%016llx%016llx", (unsigned long long)h[0],
           (unsigned long long)h[1]);
}

/* $LM_PREDICTOR_CACHE (a directory; empty or "off": no cache), else
 * $XDG_CACHE_HOME/lm-predictor, else $HOME/.cache/lm-predictor; the
 * compiled code goes in its jit/ subdirectory. */
char *cache_dir(const char *sub) {
  const char *e = getenv("LM_PREDICTOR_CACHE");
  Buf b;
  buf_init(&b);
  if (e) {
    if (!*e || strcmp(e, "off") == 0) {
      buf_free(&b);
      return NULL;
    }
    buf_printf(&b, "%s/%s", e, sub);
  } else if ((e = getenv("XDG_CACHE_HOME")) && e[0] == '/') {
    buf_printf(&b, "%s/lm-predictor/%s", e, sub);
  } else if ((e = getenv("HOME")) && e[0] == '/') {
    buf_printf(&b, "%s/.cache/lm-predictor/%s", e, sub);
  } else {
    buf_free(&b);
    return NULL;
  }
  return b.data;
}

char *jitcache_dir(void) { return cache_dir("jit"); }

/* mkdir -p, private to the user (0700) for the directories it creates. */
int jitcache_mkdir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0)
    return S_ISDIR(st.st_mode) ? 0 : -1;
  char *d = xstrdup(dir);
  for (char *p = d + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
      free(d);
      return -1;
    }
    *p = '/';
  }
  int rc = mkdir(d, 0700) != 0 && errno != EEXIST ? -1 : 0;
  free(d);
  return rc == 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

char *jitcache_path(const char *dir, const char *key) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/%s.jit", dir, key);
  return b.data;
}

/* The header for a body. */
static void header(Buf *b, const char *magic, const char *key,
                   const void *body, size_t len) {
  uint64_t h[2];
  jitcache_hash(body, len, 0, h);
  buf_printf(b, "%s %d\nkey %s\nbody %016llx %zu\n", magic, CACHE_FORMAT,
             key, (unsigned long long)h[0], len);
}

/* The whole file at path, NUL-terminated, if it is a regular file (not a
 * link) owned by this user: a cache directory shared with others (say
 * LM_PREDICTOR_CACHE=/tmp/x) cannot hand this process code it did not
 * write. The checks and the read use one descriptor. */
static char *read_own(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return NULL;
  struct stat st;
  char *text = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      st.st_size <= 0 || st.st_size > FS_MAX_READ)
    goto out;
  size_t n = (size_t)st.st_size, got = 0;
  text = xmalloc(n + 1);
  while (got < n) {
    ssize_t r = read(fd, text + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  text[got] = '\0';
  *len = got;
out:
  close(fd);
  return text;
}

char *cache_get(const char *path, const char *magic, const char *key,
                size_t *off, size_t *blen, Error *why) {
  size_t len = 0;
  char *text = read_own(path, &len);
  if (!text) {
    err_set(why, "not cached (or not a file of this user's)");
    return NULL;
  }
  /* the header is fixed but for the body's hash and length: rebuild it
   * from what the body would have to be, and compare */
  const char *nl = NULL;
  int lines = 0;
  for (size_t i = 0; i < len && lines < 3; i++)
    if (text[i] == '\n') {
      lines++;
      nl = text + i;
    }
  if (lines < 3) {
    err_set(why, "a damaged header");
    free(text);
    return NULL;
  }
  size_t hlen = (size_t)(nl + 1 - text);
  Buf want;
  buf_init(&want);
  header(&want, magic, key, text + hlen, len - hlen);
  bool same = want.len == hlen && memcmp(want.data, text, hlen) == 0;
  buf_free(&want);
  if (!same) {
    err_set(why, "another key, or a damaged or short body");
    free(text);
    return NULL;
  }
  *off = hlen;
  *blen = len - hlen;
  return text;
}

int cache_put(const char *path, const char *magic, const char *key,
              const void *body, size_t len, Error *err) {
  Buf b;
  buf_init(&b);
  header(&b, magic, key, body, len);
  buf_append(&b, body, len);
  /* a link in the cache is replaced, not written through */
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
    unlink(path);
  int rc = fs_write_atomic(path, b.data, b.len, err);
  buf_free(&b);
  return rc;
}

ObjImage *jitcache_load(const char *dir, const char *key, Error *why) {
  char *path = jitcache_path(dir, key);
  size_t off = 0, len = 0;
  char *text = cache_get(path, "lm-predictor-jit", key, &off, &len, why);
  free(path);
  ObjImage *o = text ? obj_load(text + off, len, why) : NULL;
  free(text);
  return o;
}

int jitcache_store(const char *dir, const char *key, const void *body,
                   size_t len, Error *err) {
  char *path = jitcache_path(dir, key);
  int rc = cache_put(path, "lm-predictor-jit", key, body, len, err);
  free(path);
  return rc;
}

/* The GNU build ID of the object (executable or shared library) that
 * holds this code, as hex: it changes whenever any of its code does. */
typedef struct BuildId {
  uintptr_t addr;
  char hex[2 * 64 + 1];
} BuildId;

static int find_build_id(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  BuildId *b = ctx;
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    mine = ph->p_type == PT_LOAD && b->addr >= lo && b->addr - lo < ph->p_memsz;
  }
  if (!mine)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
    size_t left = ph->p_memsz;
    while (left >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) nh;
      memcpy(&nh, p, sizeof(nh));
      size_t name = (nh.n_namesz + 3) & ~(size_t)3;
      size_t desc = (nh.n_descsz + 3) & ~(size_t)3;
      if (sizeof(nh) + name + desc > left)
        break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          memcmp(p + sizeof(nh), "GNU", 4) == 0 && nh.n_descsz <= 64) {
        const unsigned char *d = p + sizeof(nh) + name;
        for (size_t k = 0; k < nh.n_descsz; k++)
          snprintf(b->hex + 2 * k, 3, "%02x", d[k]);
        return 1;
      }
      p += sizeof(nh) + name + desc;
      left -= sizeof(nh) + name + desc;
    }
  }
  return 1; /* the object, without a build ID */
}

const char *cache_build_id(void) {
  static BuildId b;
  if (!b.hex[0]) {
    b.addr = (uintptr_t)(void *)&b;
    dl_iterate_phdr(find_build_id, &b);
    if (!b.hex[0])
      snprintf(b.hex, sizeof(b.hex), "none %s %s", __DATE__, __TIME__);
  }
  return b.hex;
}

/* ----- stamps: a hit without reading the sources ----- */

/* A file changed this recently (by its change or modification time) is
 * not stamped: a write in the same tick of the file system's clock as the
 * stat could leave both times as they were ("racy" files, as git calls
 * them). 2 s is far above any kernel's timestamp granularity. */
#define STAMP_SETTLED_NS 2000000000LL

static long long ns_of(struct timespec t) {
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int jitcache_stamp_key(const char *options, const char *const *paths,
                       const char *const *shown, int n, char key[33],
                       bool *settled) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long limit = ns_of(now) - STAMP_SETTLED_NS;
  *settled = true;
  Buf b;
  buf_init(&b);
  uint64_t h[2];
  size_t plen = strlen(lm_modabi_text);
  jitcache_hash(lm_modabi_text, plen, 0, h);
  buf_printf(&b, "lm-predictor-stamp %d\nabi %d\ntcc %s\noptions %s\n"
             "prelude %zu %016llx%016llx\nfiles %d\n",
             CACHE_FORMAT, LM_ABI_VERSION, lm_tcc_id, options, plen,
             (unsigned long long)h[0], (unsigned long long)h[1], n);
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (stat(paths[i], &st) != 0 || !S_ISREG(st.st_mode)) {
      buf_free(&b);
      return -1;
    }
    long long m = ns_of(st.st_mtim), c = ns_of(st.st_ctim);
    if (m > limit || c > limit)
      *settled = false;
    /* the shown name goes into the source (#line), the rest identifies
     * the bytes: the same inode, size and times */
    buf_printf(&b, "%zu %s\n%llu %llu %lld %lld %lld\n", strlen(shown[i]),
               shown[i], (unsigned long long)st.st_dev,
               (unsigned long long)st.st_ino, (long long)st.st_size, m, c);
  }
  jitcache_hash(b.data, b.len, 0, h);
  buf_free(&b);
  snprintf(key, 33, "%016llx%016llx", (unsigned long long)h[0],
           (unsigned long long)h[1]);
  return 0;
}

static char *stamp_path(const char *dir, const char *skey) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s/%s.stamp", dir, skey);
  return b.data;
}

/* The body: "jit <key>\n", then one line per file, its recorded word. */
int jitcache_stamp_get(const char *dir, const char *skey, int n,
                       char jitkey[33], char (*words)[17]) {
  char *path = stamp_path(dir, skey);
  size_t off = 0, len = 0;
  Error why;
  err_clear(&why);
  char *text = cache_get(path, "lm-predictor-stamp", skey, &off, &len, &why);
  free(path);
  if (!text)
    return -1;
  const char *p = text + off, *end = p + len;
  bool ok = len >= 37 && strncmp(p, "jit ", 4) == 0 && p[36] == '\n';
  if (ok) {
    memcpy(jitkey, p + 4, 32);
    jitkey[32] = '\0';
    p += 37;
  }
  for (int i = 0; ok && i < n; i++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    ok = nl && nl - p <= 16;
    if (ok) {
      memcpy(words[i], p, (size_t)(nl - p));
      words[i][nl - p] = '\0';
      p = nl + 1;
    }
  }
  ok = ok && p == end;
  free(text);
  return ok ? 0 : -1;
}

int jitcache_stamp_put(const char *dir, const char *skey, const char *jitkey,
                       const char (*words)[17], int n) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "jit %s\n", jitkey);
  for (int i = 0; i < n; i++)
    buf_printf(&b, "%s\n", words[i]);
  char *path = stamp_path(dir, skey);
  Error err;
  err_clear(&err);
  int rc = jitcache_mkdir(dir) < 0 ? -1
           : cache_put(path, "lm-predictor-stamp", skey, b.data, b.len, &err);
  free(path);
  buf_free(&b);
  return rc;
}

/* ----- the database's stamp ----- */

/* The stamp key of module_db.json and its index (jitcache_stamp_key: each
 * file's device, inode, size and times, and the build ID of this code), or
 * false (no cache, a file missing). */
static bool db_stamp_key(const char *db_path, const char *mod_dir,
                         char skey[33], bool *settled) {
  char *ip = path_join(mod_dir, DBINDEX_FILE);
  const char *paths[2] = {db_path, ip};
  Buf opts;
  buf_init(&opts);
  buf_printf(&opts, "module database and index; build %s", cache_build_id());
  bool ok = jitcache_stamp_key(opts.data, paths, paths, 2, skey, settled) == 0;
  buf_free(&opts);
  free(ip);
  return ok;
}

/* db_open through the cache's stamp of the two files: hashing
 * module_db.json (500 KB) and the index (250 KB) on every run cost about
 * 0.15 ms and the read-ahead of module_db.json's pages. A run whose index
 * db_open took, both files settled (unchanged for 2 s, and the same after
 * the read as before), leaves a stamp, db/<key>.stamp, whose key covers
 * both files' identity and times; a run that finds the stamp of the files
 * as they are now opens them verified (db_open_verified). An edit, a
 * touch, a replaced file, another build: another key, the full check. */
Db *db_open_stamped(const char *db_path, const char *mod_dir, Error *e) {
  char skey[33], got[33];
  bool settled = false;
  char *dir = cache_dir("db");
  bool stamped = dir && db_stamp_key(db_path, mod_dir, skey, &settled);
  bool verified = stamped && jitcache_stamp_get(dir, skey, 0, got, NULL) == 0 &&
                  strcmp(got, skey) == 0;
  Db *db = db_open_verified(db_path, mod_dir, verified, e);
  char again[33];
  bool still = false;
  if (db && db->index_text && stamped && settled && !verified &&
      db_stamp_key(db_path, mod_dir, again, &still) && still &&
      strcmp(again, skey) == 0)
    jitcache_stamp_put(dir, skey, skey, NULL, 0);
  free(dir);
  return db;
}
