/* fuzz_reply.c: libFuzzer target for the agent's reply handling: the API
 * body (both styles) to reply text, and a reply text through every
 * acceptance check against the repository's module database (as an answer
 * about a known entry and about a new one). */
#include "agents.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Db *db;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  Error e;
  err_clear(&e);
  db = db_load("module_db.json", &e);
  if (!db) {
    err_print(stderr, &e);
    abort();
  }
  return 0;
}

static void sink(const Error *e) {
  if (!e->set)
    return;
  FILE *f = fopen("/dev/null", "w");
  if (f) {
    err_print(f, e);
    fclose(f);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  for (int style = 0; style < 2; style++) {
    Buf out;
    buf_init(&out);
    Error e;
    err_clear(&e);
    (void)llm_reply_text(style ? LLM_OPENAI : LLM_ANTHROPIC, text, size, &out,
                         &e);
    sink(&e);
    buf_free(&out);
    err_clear(&e);
    llm_api_error(500, text, size, &e);
  }
  static const char *const asked[] = {
      "torch.nn.modules.activation.SiLU",
      "transformers.models.toy.modeling_toy.ToyGatedMLP"};
  for (size_t k = 0; k < LM_ARRAY_LEN(asked); k++) {
    AcceptOpts o = {.full_name = asked[k],
                    .by = "agent:fuzz",
                    .date = "2026-01-01",
                    .reply_name = "reply.txt"};
    Accepted a = {0};
    Error e;
    err_clear(&e);
    if (accept_answer(db, text, size, &o, &a, &e) == 0) {
      Buf d;
      buf_init(&d);
      accept_diff(db_find(db, asked[k], NULL), a.md, &d);
      buf_free(&d);
      accepted_free(&a);
    }
    sink(&e);
  }
  return 0;
}
