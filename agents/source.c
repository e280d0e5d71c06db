/* source.c: cut one class out of a Python file.
 *
 * A small scanner walks the file once and marks which lines start a
 * logical line (not inside a string, brackets or a backslash
 * continuation). The class is its decorators, its `class Name...:` header
 * and every following line up to the first logical line, other than a
 * blank or comment-only one, indented no deeper than the header. So a
 * docstring or argument list that runs back to column 0 does not end it.
 *
 * Full class names map to files the way Python imports them, under a
 * transformers checkout (src/ layout) or a torch checkout (flat layout).
 */
#include "agents.h"

#include <string.h>
#include <unistd.h>

#define SOURCE_MAX_BYTES (256 * 1024)

typedef struct Line {
  const char *p; /* first byte */
  size_t len;    /* without the newline */
  bool logical;  /* starts a logical line */
  int indent;    /* leading spaces and tabs */
  bool blank;    /* only whitespace, or only a comment */
} Line;

/* Split into lines and mark logical starts. New array; free(). */
static Line *scan_lines(const char *text, size_t len, int *nlines) {
  int cap = 64, n = 0;
  Line *v = xmalloc(sizeof(Line) * (size_t)cap);
  char quote = 0; /* inside a string opened by this quote */
  bool triple = false;
  int depth = 0; /* open brackets */
  bool cont = false;
  size_t i = 0;
  while (i < len) {
    if (n == cap) {
      cap *= 2;
      v = xrealloc(v, sizeof(Line) * (size_t)cap);
    }
    Line *l = &v[n++];
    l->p = text + i;
    l->logical = !quote && depth == 0 && !cont;
    const char *nl = memchr(text + i, '\n', len - i);
    l->len = nl ? (size_t)(nl - (text + i)) : len - i;
    l->indent = 0;
    while ((size_t)l->indent < l->len &&
           (l->p[l->indent] == ' ' || l->p[l->indent] == '\t'))
      l->indent++;
    l->blank = (size_t)l->indent == l->len || l->p[l->indent] == '#' ||
               l->p[l->indent] == '\r';
    if (quote)
      l->blank = false;
    cont = false;
    size_t end = i + l->len;
    for (size_t k = i; k < end; k++) {
      char c = text[k];
      if (quote) {
        if (c == '\\') {
          k++;
        } else if (c == quote) {
          if (!triple) {
            quote = 0;
          } else if (k + 2 < end && text[k + 1] == quote &&
                     text[k + 2] == quote) {
            quote = 0;
            k += 2;
          }
        }
        continue;
      }
      if (c == '#')
        break;
      if (c == '"' || c == '\'') {
        quote = c;
        triple = k + 2 < end && text[k + 1] == c && text[k + 2] == c;
        if (triple)
          k += 2;
      } else if (c == '(' || c == '[' || c == '{') {
        depth++;
      } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
        depth--;
      } else if (c == '\\' && k + 1 == end) {
        cont = true;
      }
    }
    if (quote && !triple && !(end > i && text[end - 1] == '\\'))
      quote = 0; /* an unterminated one-line string ends with its line */
    i = end + 1;
  }
  *nlines = n;
  return v;
}

/* Does line l hold `class <name>` followed by '(', ':' or space? */
static bool is_class_header(const Line *l, const char *name) {
  const char *s = l->p + l->indent;
  size_t left = l->len - (size_t)l->indent, nlen = strlen(name);
  if (left < 6 + nlen + 1 || strncmp(s, "class", 5) != 0)
    return false;
  size_t k = 5;
  if (s[k] != ' ' && s[k] != '\t')
    return false;
  while (k < left && (s[k] == ' ' || s[k] == '\t'))
    k++;
  if (left - k < nlen + 1 || strncmp(s + k, name, nlen) != 0)
    return false;
  char after = s[k + nlen];
  return after == '(' || after == ':' || after == ' ' || after == '\t';
}

int source_extract(const char *text, size_t len, const char *class_name,
                   ClassSource *out, Error *err) {
  memset(out, 0, sizeof(*out));
  int n;
  Line *v = scan_lines(text, len, &n);
  int hdr = -1;
  for (int i = 0; i < n; i++)
    if (v[i].logical && is_class_header(&v[i], class_name) &&
        (hdr < 0 || v[i].indent < v[hdr].indent))
      hdr = i;
  if (hdr < 0) {
    err_set(err, "class %s is not defined in it", class_name);
    free(v);
    return -1;
  }
  int indent = v[hdr].indent, start = hdr;
  /* decorators: logical lines starting with '@' at the class's indent */
  for (int j = hdr - 1; j >= 0; j--) {
    int k = j;
    while (k > 0 && !v[k].logical)
      k--;
    if (v[k].indent != indent || v[k].len <= (size_t)indent ||
        v[k].p[indent] != '@')
      break;
    start = k;
    j = k;
  }
  int end = hdr;
  for (int i = hdr + 1; i < n; i++) {
    if (v[i].logical && !v[i].blank && v[i].indent <= indent)
      break;
    end = i;
  }
  /* trailing blank lines, and comments that belong to what follows */
  while (end > hdr && v[end].logical && v[end].blank &&
         ((size_t)v[end].indent == v[end].len || v[end].indent <= indent))
    end--;
  const char *from = v[start].p, *to = v[end].p + v[end].len;
  if ((size_t)(to - from) > SOURCE_MAX_BYTES) {
    err_set(err, "class %s spans %zu bytes, more than the %d kB lmgen sends",
            class_name, (size_t)(to - from), SOURCE_MAX_BYTES / 1024);
    free(v);
    return -1;
  }
  out->text = xstrndup(from, (size_t)(to - from));
  out->line_start = start + 1;
  out->line_end = end + 1;
  free(v);
  return 0;
}

int source_from_file(const char *path, const char *class_name, ClassSource *out,
                     Error *err) {
  size_t len;
  memset(out, 0, sizeof(*out));
  char *text = fs_read(path, &len, err);
  if (!text)
    return -1;
  int rc = source_extract(text, len, class_name, out, err);
  free(text);
  if (rc < 0) {
    if (err && err->set && !err->file[0])
      snprintf(err->file, sizeof(err->file), "%s", path);
    return -1;
  }
  out->file = xstrdup(path);
  return 0;
}

int source_from_roots(const char *roots, const char *full_name,
                      ClassSource *out, Error *err) {
  memset(out, 0, sizeof(*out));
  const char *dot = strrchr(full_name, '.');
  if (!dot) {
    err_set(err, "'%s' is not a full class name (package.module.Class)",
            full_name);
    return -1;
  }
  const char *cls = dot + 1;
  /* a.b.c -> a/b/c */
  char *mod = xstrndup(full_name, (size_t)(dot - full_name));
  for (char *p = mod; *p; p++)
    if (*p == '.')
      *p = '/';
  static const char *const layouts[] = {"src/%s.py", "%s.py",
                                        "src/%s/__init__.py", "%s/__init__.py"};
  Buf tried;
  buf_init(&tried);
  char *list = xstrdup(roots);
  int rc = -1;
  Error found_err;
  err_clear(&found_err);
  for (char *save = NULL, *root = strtok_r(list, ":", &save); root && rc < 0;
       root = strtok_r(NULL, ":", &save)) {
    for (size_t k = 0; k < LM_ARRAY_LEN(layouts) && rc < 0; k++) {
      char rel[1024];
      snprintf(rel, sizeof(rel), layouts[k], mod);
      char *path = path_join(root, rel);
      buf_printf(&tried, "\n  %s", path);
      if (access(path, R_OK) == 0) {
        Error e;
        err_clear(&e);
        if (source_from_file(path, cls, out, &e) == 0) {
          free(out->file);
          out->file = xstrdup(rel);
          rc = 0;
        } else if (!found_err.set) {
          found_err = e;
        }
      }
      free(path);
    }
  }
  if (rc < 0) {
    if (found_err.set && err && !err->set)
      *err = found_err;
    else
      err_set(err,
              "no source file for %s under LMGEN_SOURCE_ROOT; tried:%s\n"
              "(give the file with --source PATH)",
              full_name, buf_str(&tried));
  }
  free(list);
  free(mod);
  buf_free(&tried);
  return rc;
}

void source_free(ClassSource *s) {
  if (!s)
    return;
  free(s->file);
  free(s->text);
  memset(s, 0, sizeof(*s));
}

int source_whole_file(const char *path, ClassSource *out, Error *err) {
  memset(out, 0, sizeof(*out));
  size_t len;
  char *text = fs_read(path, &len, err);
  if (!text)
    return -1;
  if (len > SOURCE_MAX_BYTES) {
    err_file(err, path, "%zu bytes, more than the %d kB lmgen sends", len,
             SOURCE_MAX_BYTES / 1024);
    free(text);
    return -1;
  }
  int lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  out->text = text;
  out->file = xstrdup(path);
  out->line_start = 1;
  out->line_end = lines + (len && text[len - 1] != '\n');
  return 0;
}

int source_module_from_roots(const char *roots, const char *module,
                             ClassSource *out, Error *err) {
  memset(out, 0, sizeof(*out));
  char *mod = xstrdup(module);
  for (char *p = mod; *p; p++)
    if (*p == '.')
      *p = '/';
  static const char *const layouts[] = {"src/%s.py", "%s.py"};
  Buf tried;
  buf_init(&tried);
  char *list = xstrdup(roots);
  int rc = -1;
  for (char *save = NULL, *root = strtok_r(list, ":", &save); root && rc < 0;
       root = strtok_r(NULL, ":", &save)) {
    for (size_t k = 0; k < LM_ARRAY_LEN(layouts) && rc < 0; k++) {
      char rel[1024];
      snprintf(rel, sizeof(rel), layouts[k], mod);
      char *path = path_join(root, rel);
      buf_printf(&tried, "\n  %s", path);
      if (access(path, R_OK) == 0) {
        rc = source_whole_file(path, out, err);
        if (rc == 0) {
          free(out->file);
          out->file = xstrdup(rel);
        }
        free(path);
        goto out;
      }
      free(path);
    }
  }
  err_set(err,
          "no source file for %s under LMGEN_SOURCE_ROOT; tried:%s\n"
          "(give the file with --source PATH)",
          module, buf_str(&tried));
out:
  free(list);
  free(mod);
  buf_free(&tried);
  return rc;
}
