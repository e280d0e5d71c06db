/* naming.c: the stored-name rule and name validation.
 *
 * A generated file is <library>_<snake_case(Class)>.c and its C prefix is
 * <Library><Class>, decided once by this rule and stored in module_db.json;
 * nothing downstream ever derives a name again (the prototype's failure).
 *
 * Snake case is acronym-aware: a run of capitals is one word (RMSNorm ->
 * rms_norm, GELUActivation -> gelu_activation), and mixed-case acronyms
 * that the capital-run rule would split are kept whole by a short list
 * (SiLU -> silu, not si_lu).
 */
#include "gen.h"

#include <ctype.h>
#include <string.h>

/* Mixed-case words that must not be split at their inner capitals. */
static const char *const mixed_words[] = {
    "PReLU", "ReLU", "SiLU", "GeLU", "SwiGLU", "GeGLU", "ReGLU",
    "NeoX",  "LoRA", "RoPE", "MoE",  "QLoRA",  "GPTQ",
};

static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Length of a mixed-case word starting at s that ends on a word boundary,
 * 0 if none. */
static size_t mixed_word_at(const char *s) {
  size_t best = 0;
  for (size_t i = 0; i < LM_ARRAY_LEN(mixed_words); i++) {
    size_t n = strlen(mixed_words[i]);
    if (n > best && strncmp(s, mixed_words[i], n) == 0) {
      char next = s[n];
      if (!is_lower(next)) /* end, capital, digit or '_' */
        best = n;
    }
  }
  return best;
}

char *naming_snake(const char *name) {
  Buf b;
  buf_init(&b);
  size_t n = strlen(name);
  for (size_t i = 0; i < n;) {
    char c = name[i];
    if (c == '_') {
      i++;
      continue;
    }
    size_t m = mixed_word_at(name + i);
    if (m == 0) {
      /* one ordinary word: a capital run (acronym) or Capitalized word */
      size_t j = i + 1;
      if (is_upper(c)) {
        while (j < n && is_upper(name[j]))
          j++;
        if (j - i > 1 && j < n && is_lower(name[j]))
          j--; /* the last capital starts the next word: RMSNorm */
      }
      while (j < n && (is_lower(name[j]) || is_digit(name[j])))
        j++;
      m = j - i;
    } else {
      while (i + m < n && is_digit(name[i + m]))
        m++; /* ReLU6 -> relu6 */
    }
    if (b.len)
      buf_putc(&b, '_');
    for (size_t k = 0; k < m; k++)
      buf_putc(&b, (char)tolower((unsigned char)name[i + k]));
    i += m;
  }
  return buf_steal(&b);
}

/* Library: the first dotted component; class: the last. */
static void split_full(const char *full, const char **lib, size_t *liblen,
                       const char **cls) {
  const char *dot = strchr(full, '.');
  *lib = full;
  *liblen = dot ? (size_t)(dot - full) : strlen(full);
  const char *last = strrchr(full, '.');
  *cls = last ? last + 1 : full;
}

char *naming_file(const char *full_name) {
  const char *lib, *cls;
  size_t liblen;
  split_full(full_name, &lib, &liblen, &cls);
  Buf b;
  buf_init(&b);
  for (size_t i = 0; i < liblen; i++)
    buf_putc(&b, (char)tolower((unsigned char)lib[i]));
  char *snake = naming_snake(cls);
  buf_printf(&b, "_%s.c", snake);
  free(snake);
  return buf_steal(&b);
}

char *naming_class(const char *full_name) {
  const char *lib, *cls;
  size_t liblen;
  split_full(full_name, &lib, &liblen, &cls);
  Buf b;
  buf_init(&b);
  bool cap = true;
  for (size_t i = 0; i < liblen; i++) {
    if (lib[i] == '_') {
      cap = true;
      continue;
    }
    buf_putc(&b, cap ? (char)toupper((unsigned char)lib[i]) : lib[i]);
    cap = false;
  }
  buf_puts(&b, cls);
  return buf_steal(&b);
}

static const char *const c_keywords[] = {
    "auto",       "break",     "case",           "char",
    "const",      "continue",  "default",        "do",
    "double",     "else",      "enum",           "extern",
    "float",      "for",       "goto",           "if",
    "inline",     "int",       "long",           "register",
    "restrict",   "return",    "short",          "signed",
    "sizeof",     "static",    "struct",         "switch",
    "typedef",    "union",     "unsigned",       "void",
    "volatile",   "while",     "_Alignas",       "_Alignof",
    "_Atomic",    "_Bool",     "_Complex",       "_Generic",
    "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
    "asm",        "typeof",    "__asm__",        "__typeof__",
};

bool naming_is_c_keyword(const char *s) {
  for (size_t i = 0; i < LM_ARRAY_LEN(c_keywords); i++)
    if (strcmp(s, c_keywords[i]) == 0)
      return true;
  return false;
}

bool naming_is_identifier(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
    return false;
  for (const char *p = s + 1; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '_'))
      return false;
  return true;
}

bool naming_valid_file(const char *name, const char **why) {
  size_t n = name ? strlen(name) : 0;
  const char *w = NULL;
  if (n > 0 && (strchr(name, '/') || strchr(name, '\\')))
    w = "must be a bare file name, with no directory part";
  else if (n < 3 || strcmp(name + n - 2, ".c") != 0)
    w = "must end in .c";
  else if (n > 128)
    w = "is longer than 128 characters";
  else {
    for (size_t i = 0; i + 2 < n && !w; i++) {
      char c = name[i];
      if (c == '.')
        w = "must contain no '.' other than the final .c";
      else if (!(is_lower(c) || is_digit(c) || c == '_'))
        w = "may contain only a-z, 0-9 and '_' before .c";
    }
  }
  if (why)
    *why = w;
  return w == NULL;
}

bool naming_valid_class(const char *name, const char **why) {
  const char *w = NULL;
  if (!naming_is_identifier(name))
    w = "is not a C identifier";
  else if (naming_is_c_keyword(name))
    w = "is a C keyword";
  else if (strncmp(name, "lm_", 3) == 0 || strncmp(name, "LM_", 3) == 0)
    w = "uses the reserved prefix lm_/LM_";
  else if (name[0] == '_')
    w = "starts with '_' (reserved in C)";
  else if (strlen(name) > 96)
    w = "is longer than 96 characters";
  if (why)
    *why = w;
  return w == NULL;
}
