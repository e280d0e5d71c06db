/* test_arena.c: the bump allocator. */
#include "testutil.h"

static void test_arena_alloc(void **state) {
  (void)state;
  Arena a;
  arena_init(&a);
  char *prev = NULL;
  for (int i = 0; i < 5000; i++) {
    char *p = arena_alloc(&a, (size_t)(i % 50 + 1));
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_int_equal(p[0], 0);
    memset(p, 0xAB, (size_t)(i % 50 + 1));
    assert_ptr_not_equal(p, prev);
    prev = p;
  }
  char *big = arena_alloc(&a, 100000); /* larger than a chunk */
  memset(big, 1, 100000);
  assert_string_equal(arena_strdup(&a, "xyz"), "xyz");
  assert_string_equal(arena_strndup(&a, "xyz", 2), "xy");
  arena_free(&a);
  arena_free(&a); /* idempotent */
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_arena_alloc)};
  return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
