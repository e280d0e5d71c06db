/* dbindex.c: the database index, what lmrun reads instead of checking
 * module_db.json whole on every run.
 *
 * Loading module_db.json as db_load does (Jansson, the JSON Schema, every
 * formula parsed and checked, call cycles, stored names, fingerprints)
 * takes about 20 ms, four times lmrun's whole budget. So every lmgen run
 * that writes, and `make` (`lmgen --index`), also writes
 * <generated_modules>/module_db.index: the entries of a database that
 * passed all of db_load's checks, in a line format read without a JSON
 * parser, keyed by a hash of module_db.json's bytes. db_open (lmrun, the
 * library) reads module_db.json, hashes it, and uses the index only when
 * the index was written from exactly those bytes by this code (format
 * version, ABI version and the embedded schema hashed too) and its own
 * body is intact; otherwise (no index, an edited database, a damaged or
 * older index) it loads the database with db_load, checks and all: the
 * index can make a run faster, never give a stale answer. Formulas are
 * parsed per entry on first use (db_ensure), so a run parses the ~60
 * formulas its model uses, not the ~1,100 of the database.
 *
 * The format (DESIGN.md §3, "The index"): a header of four lines
 *
 *   lm-predictor-module-index 1
 *   db <hash of module_db.json, 16 hex> <its length in bytes>
 *   code <hash of this format's version, LM_ABI_VERSION and the schema>
 *   body <hash of the rest> <its length>
 *
 * then one line per record, fields separated by tabs: an entry
 *
 *   M name short kind fingerprint file class status source version
 *     line_start line_end nparams nops
 *   P name min max integer description      (nparams of them)
 *   F metric formula                        (the entry's formulas)
 *   O name attention phase description      (nops of them, each followed
 *   F metric formula                         by its formulas)
 *
 * Strings escape backslash, tab, newline and the other control characters
 * (\\ \t \n \r \xHH); an absent string is \N. Numbers are %.17g (inf,
 * -inf for an open range), exact both ways.
 */
#include "gen.h"
#include "modabi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_MAGIC "lm-predictor-module-index"
#define INDEX_VERSION 1

extern const char lm_schema_text[];

/* 64-bit hash of bytes, eight at a time (little-endian words, so the same
 * on any machine), murmur3's finaliser at the end. Not cryptographic: it
 * tells an edited database from the one the index was written from. */
uint64_t dbindex_hash(const char *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
  size_t i = 0;
  /* four independent lanes (the multiplies overlap), merged at the end */
  uint64_t l[4] = {h, h ^ 0x6a09e667f3bcc908ULL, h ^ 0xbb67ae8584caa73bULL,
                   h ^ 0x3c6ef372fe94f82bULL};
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; k++) {
      uint64_t w;
      memcpy(&w, s + i + 8 * k, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
      w = __builtin_bswap64(w);
#endif
      l[k] ^= w * 0x87c37b91114253d5ULL;
      l[k] = ((l[k] << 31) | (l[k] >> 33)) * 0x4cf5ad432745937fULL;
    }
  for (int k = 0; k < 4; k++)
    h = (h ^ l[k]) * 0x9e3779b97f4a7c15ULL + (uint64_t)k;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = (uint64_t)s[i] | (uint64_t)s[i + 1] << 8 |
                 (uint64_t)s[i + 2] << 16 | (uint64_t)s[i + 3] << 24 |
                 (uint64_t)s[i + 4] << 32 | (uint64_t)s[i + 5] << 40 |
                 (uint64_t)s[i + 6] << 48 | (uint64_t)s[i + 7] << 56;
    h ^= w * 0x87c37b91114253d5ULL;
    h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937fULL;
  }
  uint64_t w = 0;
  for (size_t k = 0; i + k < n; k++)
    w |= (uint64_t)s[i + k] << (8 * k);
  h ^= w * 0x87c37b91114253d5ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/* What else decides whether an index is valid: the format, the ABI of
 * the generated code and the schema db_load checked against. */
static uint64_t code_hash(void) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s %d abi %d\n", INDEX_MAGIC, INDEX_VERSION, LM_ABI_VERSION);
  buf_puts(&b, lm_schema_text);
  uint64_t h = dbindex_hash(b.data, b.len);
  buf_free(&b);
  return h;
}

/* ----- writing ----- */

static void put_str(Buf *b, const char *s) {
  buf_putc(b, '\t');
  if (!s) {
    buf_puts(b, "\\N");
    return;
  }
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\\')
      buf_puts(b, "\\\\");
    else if (c == '\t')
      buf_puts(b, "\\t");
    else if (c == '\n')
      buf_puts(b, "\\n");
    else if (c == '\r')
      buf_puts(b, "\\r");
    else if (c < 0x20 || c == 0x7f)
      buf_printf(b, "\\x%02x", c);
    else
      buf_putc(b, (char)c);
  }
}

static void put_num(Buf *b, double v) {
  if (isinf(v))
    buf_puts(b, v > 0 ? "\tinf" : "\t-inf");
  else
    buf_printf(b, "\t%.17g", v);
}

static const char *const kind_word[] = {"basic", "composite"};
static const char *const mode_word[] = {"any", "eager", "flash"};
static const char *const phase_word[] = {"any", "prefill", "decode"};

static void put_formulas(Buf *b, const char *const *formula, int nmetrics) {
  for (int m = 0; m < nmetrics; m++)
    if (formula[m]) {
      buf_putc(b, 'F');
      put_str(b, metric_name[m]);
      put_str(b, formula[m]);
      buf_putc(b, '\n');
    }
}

char *dbindex_text(const Db *db, const char *text, size_t len) {
  Buf body;
  buf_init(&body);
  for (int i = 0; i < db->nmods; i++) {
    const ModuleDef *md = db->mods[i];
    char fp[17];
    db_fingerprint_hex(md, fp);
    buf_putc(&body, 'M');
    put_str(&body, md->full_name);
    put_str(&body, md->short_name);
    put_str(&body, kind_word[md->kind]);
    put_str(&body, fp);
    put_str(&body, md->file_name);
    put_str(&body, md->class_name);
    put_str(&body, md->status);
    put_str(&body, md->source_file);
    put_str(&body, md->source_version);
    buf_printf(&body, "\t%d\t%d\t%d\t%d\n", md->line_start, md->line_end,
               md->nparams, md->nops);
    for (int k = 0; k < md->nparams; k++) {
      buf_putc(&body, 'P');
      put_str(&body, md->params[k]);
      put_num(&body, md->pmin[k]);
      put_num(&body, md->pmax[k]);
      buf_printf(&body, "\t%d", md->pint[k] ? 1 : 0);
      put_str(&body, md->pdesc[k]);
      buf_putc(&body, '\n');
    }
    put_formulas(&body, md->formula, M_COUNT);
    for (int k = 0; k < md->nops; k++) {
      const AtomicOp *op = &md->ops[k];
      buf_putc(&body, 'O');
      put_str(&body, op->name);
      put_str(&body, mode_word[op->mode]);
      put_str(&body, phase_word[op->phase]);
      put_str(&body, op->description);
      buf_putc(&body, '\n');
      put_formulas(&body, op->formula, M_TRAFFIC);
    }
  }
  Buf out;
  buf_init(&out);
  buf_printf(&out, "%s %d\ndb %016llx %zu\ncode %016llx\nbody %016llx %zu\n",
             INDEX_MAGIC, INDEX_VERSION,
             (unsigned long long)dbindex_hash(text, len), len,
             (unsigned long long)code_hash(),
             (unsigned long long)dbindex_hash(body.data, body.len), body.len);
  buf_append(&out, body.data, body.len);
  buf_free(&body);
  return buf_steal(&out);
}

char *dbindex_build(const char *db_path, Error *err) {
  size_t len;
  char *text = fs_read(db_path, &len, err);
  if (!text)
    return NULL;
  Db *db = db_load_text(db_path, text, len, err);
  char *idx = db ? dbindex_text(db, text, len) : NULL;
  db_free(db);
  free(text);
  return idx;
}

int dbindex_write(const char *db_path, const char *out_dir, bool dry_run,
                  bool *changed, Error *err) {
  char *idx = dbindex_build(db_path, err);
  if (!idx)
    return -1;
  char *path = path_join(out_dir, DBINDEX_FILE);
  size_t n = strlen(idx);
  int rc = 0;
  bool same = fs_same_content(path, idx, n);
  if (changed)
    *changed = !same;
  if (!same && !dry_run)
    rc = fs_write_atomic(path, idx, n, err);
  free(path);
  free(idx);
  return rc;
}

/* ----- reading ----- */

/* Split a line (NUL-terminated, no newline) at tabs: up to max fields. */
static int split(char *line, char **f, int max) {
  int n = 0;
  for (char *p = line;; p++) {
    if (n == max)
      return max + 1; /* too many */
    f[n++] = p;
    p = strchr(p, '\t');
    if (!p)
      return n;
    *p = '\0';
  }
}

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : -1;
}

/* Undo put_str in place; *ok false on a bad escape. NULL for \N. */
static char *unesc(char *s, bool *ok) {
  if (!strchr(s, '\\'))
    return s;
  if (strcmp(s, "\\N") == 0)
    return NULL;
  char *w = s;
  for (const char *r = s; *r; r++) {
    if (*r != '\\') {
      *w++ = *r;
      continue;
    }
    r++;
    switch (*r) {
    case '\\': *w++ = '\\'; break;
    case 't': *w++ = '\t'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 'x':
      if (hexval(r[1]) < 0 || hexval(r[2]) < 0) {
        *ok = false;
        return s;
      }
      *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
      r += 2;
      break;
    default:
      *ok = false;
      return s;
    }
  }
  *w = '\0';
  return s;
}

static bool to_int(const char *s, int *out) {
  char *end;
  if (!s)
    return false;
  /* what the writer writes (%d of 0..100000) without strtol; anything
   * else strtol decides, as before */
  size_t nd = strspn(s, "0123456789");
  if (nd > 0 && nd <= 6 && s[nd] == '\0') {
    int v = 0;
    for (size_t i = 0; i < nd; i++)
      v = v * 10 + (s[i] - '0');
    if (v <= 100000) {
      *out = v;
      return true;
    }
    return false;
  }
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > 100000)
    return false;
  *out = (int)v;
  return true;
}

static bool to_num(const char *s, double *out) {
  char *end;
  if (!s)
    return false;
  /* the common values without strtod: an open end, a small whole number
   * (exact as a double) */
  if (strcmp(s, "inf") == 0 || strcmp(s, "-inf") == 0) {
    *out = s[0] == '-' ? -INFINITY : INFINITY;
    return true;
  }
  const char *d = s + (s[0] == '-');
  size_t nd = strspn(d, "0123456789");
  if (nd > 0 && nd <= 15 && d[nd] == '\0' && (nd == 1 || d[0] != '0')) {
    long long v = 0;
    for (size_t i = 0; i < nd; i++)
      v = v * 10 + (d[i] - '0');
    *out = s[0] == '-' ? -(double)v : (double)v;
    return true;
  }
  *out = strtod(s, &end);
  return *s && !*end && !isnan(*out);
}

static int word(const char *s, const char *const *words, int n) {
  for (int i = 0; s && i < n; i++)
    if (strcmp(s, words[i]) == 0)
      return i;
  return -1;
}

typedef struct Reader {
  char *p, *end; /* the body, lines not yet read */
  Db *db;
  bool ok;
} Reader;

/* The next line split into fields, or 0 at the end of the body. */
static int next_line(Reader *R, char **f, int max) {
  if (R->p >= R->end)
    return 0;
  char *nl = memchr(R->p, '\n', (size_t)(R->end - R->p));
  if (!nl) {
    R->ok = false;
    return 0;
  }
  *nl = '\0';
  char *line = R->p;
  /* most lines escape nothing: one look for a backslash spares every
   * field its own */
  bool escaped = memchr(line, '\\', (size_t)(nl - line)) != NULL;
  R->p = nl + 1;
  int n = split(line, f, max);
  if (n > max) {
    R->ok = false;
    return 0;
  }
  for (int i = 1; i < n && escaped; i++)
    f[i] = unesc(f[i], &R->ok);
  return n;
}

/* strtoull(s, NULL, 16) of a 16-byte field: by hand when it is 16
 * lowercase hex digits (what the writer writes), else strtoull. */
static uint64_t hex64(const char *s) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    int d = hexval(s[i]);
    if (d < 0)
      return strtoull(s, NULL, 16);
    v = v << 4 | (uint64_t)d;
  }
  return s[16] == '\0' ? v : strtoull(s, NULL, 16);
}

static char peek(const Reader *R) { return R->p < R->end ? *R->p : '\0'; }

/* F lines into formula[] (metrics below nmetrics). */
static void read_formulas(Reader *R, const char **formula, int nmetrics) {
  char *f[4];
  while (R->ok && peek(R) == 'F') {
    int n = next_line(R, f, 3);
    int m = n == 3 && f[1] && f[2] ? metric_lookup(f[1]) : -1;
    if (m < 0 || m >= nmetrics || formula[m] || strcmp(f[0], "F") != 0) {
      R->ok = false;
      return;
    }
    formula[m] = f[2];
  }
}

static ModuleDef *read_entry(Reader *R, int index) {
  Db *db = R->db;
  char *f[16];
  int n = next_line(R, f, 14);
  ModuleDef *md = arena_alloc(&db->arena, sizeof(ModuleDef));
  int kind = n == 14 ? word(f[3], kind_word, 2) : -1;
  if (kind < 0 || strcmp(f[0], "M") != 0 || !f[1] || !f[2] || !f[4] ||
      !f[7] ||
      !to_int(f[10], &md->line_start) || !to_int(f[11], &md->line_end) ||
      !to_int(f[12], &md->nparams) || !to_int(f[13], &md->nops) ||
      strlen(f[4]) != 16) {
    R->ok = false;
    return NULL;
  }
  md->index = index;
  md->full_name = f[1];
  md->short_name = f[2];
  md->kind = (ModuleKind)kind;
  md->fingerprint = hex64(f[4]);
  md->file_name = f[5];
  md->class_name = f[6];
  md->status = f[7];
  md->source_file = f[8];
  md->source_version = f[9];
  md->doc = &db->doc;
  md->parsed = DB_UNPARSED;
  size_t np = (size_t)md->nparams + 1;
  md->params = arena_alloc(&db->arena, sizeof(char *) * np);
  md->pmin = arena_alloc(&db->arena, sizeof(double) * np);
  md->pmax = arena_alloc(&db->arena, sizeof(double) * np);
  md->pint = arena_alloc(&db->arena, sizeof(bool) * np);
  md->pdesc = arena_alloc(&db->arena, sizeof(char *) * np);
  for (int k = 0; k < md->nparams && R->ok; k++) {
    int integer = 0;
    if (next_line(R, f, 6) != 6 || strcmp(f[0], "P") != 0 || !f[1] ||
        !to_num(f[2], &md->pmin[k]) || !to_num(f[3], &md->pmax[k]) ||
        !to_int(f[4], &integer) || integer > 1) {
      R->ok = false;
      return NULL;
    }
    md->params[k] = f[1];
    md->pint[k] = integer == 1;
    md->pdesc[k] = f[5];
  }
  read_formulas(R, md->formula, M_COUNT);
  md->ops = arena_alloc(&db->arena,
                        sizeof(AtomicOp) * (size_t)(md->nops ? md->nops : 1));
  for (int k = 0; k < md->nops && R->ok; k++) {
    AtomicOp *op = &md->ops[k];
    int mode, phase;
    if (next_line(R, f, 5) != 5 || strcmp(f[0], "O") != 0 || !f[1] ||
        (mode = word(f[2], mode_word, 3)) < 0 ||
        (phase = word(f[3], phase_word, 3)) < 0) {
      R->ok = false;
      return NULL;
    }
    op->name = f[1];
    op->mode = (AttnMode)mode;
    op->phase = (PhaseMode)phase;
    op->description = f[4];
    read_formulas(R, op->formula, M_TRAFFIC);
  }
  return R->ok ? md : NULL;
}

/* "<word> <16 hex> [<length>]\n" at *p: the values; advances *p. */
static bool header_line(char **p, const char *end, const char *name,
                        uint64_t *h, size_t *len) {
  char *nl = memchr(*p, '\n', (size_t)(end - *p));
  size_t n = strlen(name);
  if (!nl || (size_t)(nl - *p) < n + 17 || strncmp(*p, name, n) != 0 ||
      (*p)[n] != ' ')
    return false;
  *nl = '\0';
  char *q = *p + n + 1, *e;
  *h = strtoull(q, &e, 16);
  bool ok = e == q + 16;
  if (ok && len) {
    ok = *e == ' ';
    if (ok) {
      q = e + 1;
      unsigned long long v = strtoull(q, &e, 10);
      *len = (size_t)v;
      ok = e > q && *e == '\0';
    }
  } else if (ok) {
    ok = *e == '\0';
  }
  *p = nl + 1;
  return ok;
}

static Db *load_index(const char *path, char *text, size_t len, char *itext,
                      size_t ilen, bool verified, const char **why);

Db *dbindex_load(const char *path, char *text, size_t len, char *itext,
                 size_t ilen, const char **why) {
  return load_index(path, text, len, itext, ilen, false, why);
}

/* verified: the caller knows (a stamp, db_open_verified) that these are
 * the bytes the hashes were checked against before: not hashed again. */
static Db *load_index(const char *path, char *text, size_t len, char *itext,
                      size_t ilen, bool verified, const char **why) {
  const char *dummy;
  if (!why)
    why = &dummy;
  char *p = itext, *end = itext + ilen;
  char first[64];
  snprintf(first, sizeof(first), "%s %d\n", INDEX_MAGIC, INDEX_VERSION);
  uint64_t dh, ch, bh;
  size_t dlen, blen;
  if (ilen < strlen(first) || strncmp(itext, first, strlen(first)) != 0) {
    *why = "not an index of this version";
    return NULL;
  }
  p += strlen(first);
  if (!header_line(&p, end, "db", &dh, &dlen) ||
      !header_line(&p, end, "code", &ch, NULL) ||
      !header_line(&p, end, "body", &bh, &blen)) {
    *why = "malformed header";
    return NULL;
  }
  if (dlen != len || (!verified && dh != dbindex_hash(text, len))) {
    *why = "written from another module_db.json";
    return NULL;
  }
  if (ch != code_hash()) {
    *why = "written by another version";
    return NULL;
  }
  if (blen != (size_t)(end - p) || (!verified && bh != dbindex_hash(p, blen))) {
    *why = "damaged";
    return NULL;
  }
  Db *db = xcalloc(1, sizeof(Db));
  arena_init(&db->arena);
  hashmap_init(&db->by_full);
  hashmap_init(&db->by_short);
  /* count the entries first: db->mods is an array */
  int n = 0;
  for (const char *q = p; q < end;) {
    n += *q == 'M';
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    q = nl ? nl + 1 : end;
  }
  db->mods = xcalloc((size_t)n + 1, sizeof(ModuleDef *));
  Reader R = {.p = p, .end = end, .db = db, .ok = true};
  while (R.ok && R.p < R.end && db->nmods < n) {
    ModuleDef *md = read_entry(&R, db->nmods);
    if (!md || db_register(db, md) < 0)
      R.ok = false;
    else
      db->mods[db->nmods++] = md;
  }
  if (!R.ok || R.p != R.end || db->nmods != n) {
    *why = "malformed body";
    db_free(db);
    return NULL;
  }
  /* the Db owns both texts from here */
  db->doc = (JsonDoc){.file = xstrdup(path), .text = text, .len = len};
  db->index_text = itext;
  db->verified = verified;
  *why = NULL;
  return db;
}

Db *db_open(const char *path, const char *index_dir, Error *err) {
  return db_open_verified(path, index_dir, false, err);
}

Db *db_open_verified(const char *path, const char *index_dir, bool verified,
                     Error *err) {
  size_t len, mapped;
  /* mapped, not read: the page cache's pages, no copy (it is read whole,
   * to be hashed, on every run; verified, only where an error or
   * --explain shows a part of it) */
  char *text = verified && index_dir ? fs_map_lazy(path, &len, &mapped, err)
                                     : fs_map(path, &len, &mapped, err);
  if (!text)
    return NULL;
  if (index_dir) {
    char *ip = path_join(index_dir, DBINDEX_FILE);
    size_t ilen;
    char *itext = fs_read(ip, &ilen, NULL);
    free(ip);
    if (itext) {
      Db *db = load_index(path, text, len, itext, ilen, verified, NULL);
      if (db) {
        db->text_mapped = mapped;
        return db;
      }
      free(itext);
    }
  }
  Db *db = db_load_text(path, text, len, err);
  fs_unmap(text, mapped);
  return db;
}
