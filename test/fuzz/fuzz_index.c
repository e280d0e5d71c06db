/* fuzz_index.c: libFuzzer target for the database index reader
 * (gen/dbindex.c). The input is an index body; the header is made to
 * match it (the database's hash, the code's, the body's own), as a hand
 * made index could, so every input reaches the record parser, then
 * db_ensure parses and checks every entry's formulas and their callees.
 * A crash, a leak or an endless recursion is a finding; a refusal is not. */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *db_text, *head; /* test/data/mini_db.json; the header's
                                first three lines for it */
static size_t db_len;

static void setup(void) {
  db_text = fs_read("test/data/mini_db.json", &db_len, NULL);
  Db *db = db_text ? db_load_text("db.json", db_text, db_len, NULL) : NULL;
  if (!db)
    abort(); /* run from the repository root */
  char *idx = dbindex_text(db, db_text, db_len);
  char *p = idx;
  for (int i = 0; i < 3; i++)
    p = strchr(p, '\n') + 1;
  head = xstrndup(idx, (size_t)(p - idx));
  free(idx);
  db_free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!head)
    setup();
  Buf b;
  buf_init(&b);
  buf_puts(&b, head);
  buf_printf(&b, "body %016llx %zu\n",
             (unsigned long long)dbindex_hash((const char *)data, size), size);
  buf_append(&b, data, size);
  size_t ilen = b.len;
  char *itext = buf_steal(&b);
  char *text = xstrndup(db_text, db_len);
  Db *db = dbindex_load("db.json", text, db_len, itext, ilen, NULL);
  if (!db) {
    free(text);
    free(itext);
    return 0;
  }
  for (int i = 0; i < db->nmods; i++) {
    Error e;
    err_clear(&e);
    db_ensure(db, db->mods[i], &e);
    db_find(db, db->mods[i]->short_name, NULL);
  }
  db_free(db);
  return 0;
}
