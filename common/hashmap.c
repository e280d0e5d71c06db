/* hashmap.c: string-keyed hash table (chibicc hashmap.c, redis dict API).
 *
 * Open addressing with linear probing over a power-of-two table; FNV-1a 64
 * hashes; grows (rehashing everything) when 70% full. Keys are copied and
 * owned by the map; values are borrowed. No deletion: nothing needs it.
 * Lookups are O(1) expected.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

uint64_t fnv1a64(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

void hashmap_init_with_hash(HashMap *m, HashFn fn) {
  memset(m, 0, sizeof(*m));
  m->hash = fn;
}

void hashmap_init(HashMap *m) { hashmap_init_with_hash(m, fnv1a64); }

void hashmap_free(HashMap *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->buckets[i].key);
  free(m->buckets);
  m->buckets = NULL;
  m->cap = m->used = 0;
}

static HashEntry *find_slot(HashEntry *b, size_t cap, const char *key,
                            size_t len, uint64_t h) {
  for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
    HashEntry *e = &b[i];
    if (!e->key)
      return e;
    if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
      return e;
  }
}

static void grow(HashMap *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  HashEntry *b = xcalloc(cap, sizeof(HashEntry));
  for (size_t i = 0; i < m->cap; i++) {
    HashEntry *e = &m->buckets[i];
    if (e->key)
      *find_slot(b, cap, e->key, e->keylen, e->hash) = *e;
  }
  free(m->buckets);
  m->buckets = b;
  m->cap = cap;
}

int hashmap_addn(HashMap *m, const char *key, size_t len, void *val) {
  if ((m->used + 1) * 10 >= m->cap * 7)
    grow(m);
  uint64_t h = m->hash(key, len);
  HashEntry *e = find_slot(m->buckets, m->cap, key, len, h);
  if (e->key)
    return -1;
  e->key = xstrndup(key, len);
  e->keylen = len;
  e->hash = h;
  e->val = val;
  m->used++;
  return 0;
}

int hashmap_add(HashMap *m, const char *key, void *val) {
  return hashmap_addn(m, key, strlen(key), val);
}

void *hashmap_getn(const HashMap *m, const char *key, size_t len) {
  if (!m->cap)
    return NULL;
  HashEntry *e =
      find_slot(m->buckets, m->cap, key, len, m->hash(key, len));
  return e->key ? e->val : NULL;
}

void *hashmap_get(const HashMap *m, const char *key) {
  return hashmap_getn(m, key, strlen(key));
}

bool hashmap_next(const HashMap *m, size_t *i, const char **key, void **val) {
  for (; *i < m->cap; (*i)++) {
    HashEntry *e = &m->buckets[*i];
    if (e->key) {
      if (key)
        *key = e->key;
      if (val)
        *val = e->val;
      (*i)++;
      return true;
    }
  }
  return false;
}
