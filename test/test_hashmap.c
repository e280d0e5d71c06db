/* test_hashmap.c: thousands of keys, forced collisions, iteration. */
#include "testutil.h"

static uint64_t constant_hash(const char *k, size_t n) {
  (void)k;
  (void)n;
  return 7; /* every key collides */
}

static void fill_and_check(HashMap *m, int n) {
  char key[32];
  for (int i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "key%d", i);
    assert_int_equal(hashmap_add(m, key, (void *)(intptr_t)(i + 1)), 0);
  }
  for (int i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "key%d", i);
    assert_int_equal((intptr_t)hashmap_get(m, key), i + 1);
    assert_int_equal(hashmap_add(m, key, (void *)1), -1); /* no overwrite */
  }
  assert_null(hashmap_get(m, "nope"));
  assert_null(hashmap_get(m, "key"));
  assert_int_equal(m->used, (size_t)n);
  assert_true(m->used * 10 < m->cap * 7 + 10);
}

static void test_hashmap_many_keys(void **state) {
  (void)state;
  HashMap m;
  hashmap_init(&m);
  fill_and_check(&m, 20000);
  hashmap_free(&m);
}

static void test_hashmap_collisions(void **state) {
  (void)state;
  HashMap m;
  hashmap_init_with_hash(&m, constant_hash);
  fill_and_check(&m, 500);
  hashmap_free(&m);
}

static void test_hashmap_iterate_and_lengths(void **state) {
  (void)state;
  HashMap m;
  hashmap_init(&m);
  assert_null(hashmap_get(&m, "x")); /* empty map */
  hashmap_addn(&m, "abcdef", 3, (void *)1); /* key "abc" */
  assert_non_null(hashmap_get(&m, "abc"));
  assert_null(hashmap_get(&m, "abcdef"));
  assert_non_null(hashmap_getn(&m, "abcXYZ", 3));
  hashmap_add(&m, "", (void *)2); /* empty key is a key */
  assert_int_equal((intptr_t)hashmap_get(&m, ""), 2);
  size_t it = 0, n = 0;
  const char *k;
  void *v;
  while (hashmap_next(&m, &it, &k, &v))
    n++;
  assert_int_equal(n, 2);
  hashmap_free(&m);
}

static void test_hashmap_fnv1a(void **state) {
  (void)state;
  /* published FNV-1a 64 test vectors */
  assert_true(fnv1a64("", 0) == 0xcbf29ce484222325ULL);
  assert_true(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
  assert_true(fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hashmap_many_keys),
      cmocka_unit_test(test_hashmap_collisions),
      cmocka_unit_test(test_hashmap_iterate_and_lengths),
      cmocka_unit_test(test_hashmap_fnv1a),
  };
  return cmocka_run_group_tests_name("hashmap", tests, NULL, NULL);
}
