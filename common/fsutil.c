/* fsutil.c: file reads, atomic writes, locks and paths.
 *
 * Every file the tools write goes through fs_write_atomic: a temp file in
 * the target's directory, fsync, rename over the target, fsync of the
 * directory. A crash or failure at any point leaves the old file intact.
 */
#define _GNU_SOURCE
#include "common.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *file_kind(mode_t m) {
  return S_ISDIR(m)    ? "a directory"
         : S_ISFIFO(m) ? "a FIFO"
         : S_ISCHR(m)  ? "a character device"
         : S_ISBLK(m)  ? "a block device"
         : S_ISSOCK(m) ? "a socket"
                       : "not a regular file";
}

char *fs_read(const char *path, size_t *len, Error *err) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    err_file(err, path, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    err_file(err, path, "cannot stat: %s", strerror(errno));
    close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    err_file(err, path, "cannot read: %s, not a regular file",
             file_kind(st.st_mode));
    close(fd);
    return NULL;
  }
  if ((unsigned long long)st.st_size > FS_MAX_READ) {
    err_file(err, path,
             "cannot read: %lld bytes is over the limit of %d MiB for an "
             "input file",
             (long long)st.st_size, FS_MAX_READ >> 20);
    close(fd);
    return NULL;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  /* read straight into a buffer of the file's size (one allocation, no
   * copy: lmrun reads ~1 MB of data files per run); grown if the file
   * grows while being read */
  size_t cap = (size_t)st.st_size + 1, used = 0;
  char *data = xmalloc(cap);
  for (;;) {
    ssize_t n;
    if (used + 1 == cap) {
      /* full: one byte more says whether the file grew (it almost never
       * does, so the buffer is not doubled, and copied, to find its end) */
      char probe;
      n = read(fd, &probe, 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n > 0) { /* up to one byte past the limit */
        cap = cap * 2 > FS_MAX_READ + 2 ? FS_MAX_READ + 2 : cap * 2;
        data = xrealloc(data, cap);
        data[used] = probe;
      }
    } else {
      n = read(fd, data + used, cap - 1 - used);
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err_file(err, path, "read error: %s", strerror(errno));
      close(fd);
      free(data);
      return NULL;
    }
    if (n == 0)
      break;
    used += (size_t)n;
    if (used > FS_MAX_READ) { /* it grew while being read */
      err_file(err, path,
               "cannot read: over the limit of %d MiB for an input file",
               FS_MAX_READ >> 20);
      close(fd);
      free(data);
      return NULL;
    }
  }
  close(fd);
  data[used] = '\0';
  if (len)
    *len = used;
  return data;
}

static char *map_file(const char *path, size_t *len, size_t *mapped,
                      int flags, Error *err) {
  *mapped = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  long page = sysconf(_SC_PAGESIZE);
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      st.st_size > 0 && (unsigned long long)st.st_size <= FS_MAX_READ &&
      page > 0 && st.st_size % page != 0) {
    /* the rest of the last page reads as zeros: the NUL terminator */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | flags,
                   fd, 0);
    if (p != MAP_FAILED) {
      close(fd);
      *mapped = (size_t)st.st_size;
      if (len)
        *len = (size_t)st.st_size;
      return p;
    }
  }
  if (fd >= 0)
    close(fd);
  return fs_read(path, len, err); /* its checks and messages */
}

char *fs_map(const char *path, size_t *len, size_t *mapped, Error *err) {
  return map_file(path, len, mapped, MAP_POPULATE, err);
}

char *fs_map_lazy(const char *path, size_t *len, size_t *mapped, Error *err) {
  return map_file(path, len, mapped, 0, err);
}

void fs_unmap(char *p, size_t mapped) {
  if (mapped)
    munmap(p, mapped);
  else
    free(p);
}

bool fs_same_content(const char *path, const void *data, size_t len) {
  size_t n;
  char *old = fs_read(path, &n, NULL);
  bool same = old && n == len && memcmp(old, data, len) == 0;
  free(old);
  return same;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return xstrdup(".");
  if (slash == path)
    return xstrdup("/");
  return xstrndup(path, (size_t)(slash - path));
}

int fs_write_atomic(const char *path, const void *data, size_t len,
                    Error *err) {
  /* A symbolic link is written through: the file it points to is
   * replaced (in its own directory), and the link stays a link. */
  const char *given = path;
  char *real = NULL;
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
    real = realpath(path, NULL);
    if (!real) {
      err_file(err, given, "cannot follow the symbolic link: %s",
               strerror(errno));
      return -1;
    }
    path = real;
  }
  /* keep an existing file's mode; a new file gets 0666 less the umask */
  mode_t mask = umask(0);
  umask(mask);
  mode_t mode = 0666 & ~mask;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
    mode = st.st_mode & 07777;
  char *dir = dir_of(path);
  Buf tmp;
  buf_init(&tmp);
  buf_printf(&tmp, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp.data);
  if (fd < 0) {
    err_file(err, given, "cannot create temporary file: %s", strerror(errno));
    goto out_free;
  }
  fchmod(fd, mode); /* mkstemp creates 0600 */
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      err_file(err, given, "write failed: %s", strerror(errno));
      goto out_unlink;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0) {
    err_file(err, given, "fsync failed: %s", strerror(errno));
    goto out_unlink;
  }
  if (close(fd) != 0) {
    fd = -1;
    err_file(err, given, "close failed: %s", strerror(errno));
    goto out_unlink;
  }
  fd = -1;
  if (rename(tmp.data, path) != 0) {
    err_file(err, given, "rename failed: %s", strerror(errno));
    goto out_unlink;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd); /* make the rename durable; best effort */
    close(dfd);
  }
  buf_free(&tmp);
  free(dir);
  free(real);
  return 0;

out_unlink:
  if (fd >= 0)
    close(fd);
  unlink(tmp.data);
out_free:
  buf_free(&tmp);
  free(dir);
  free(real);
  return -1;
}

int fs_lock(const char *path, Error *err) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    err_file(err, path, "cannot open lock file: %s", strerror(errno));
    return -1;
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR)
      continue;
    err_file(err, path, "cannot lock: %s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

void fs_unlock(int fd) {
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
}

char *path_join(const char *dir, const char *name) {
  if (!dir || !*dir || name[0] == '/')
    return xstrdup(name);
  Buf b;
  buf_init(&b);
  buf_puts(&b, dir);
  if (dir[strlen(dir) - 1] != '/')
    buf_putc(&b, '/');
  buf_puts(&b, name);
  return buf_steal(&b);
}

static bool has_db(const char *dir) {
  char *p = path_join(dir, "module_db.json");
  bool ok = access(p, R_OK) == 0;
  free(p);
  return ok;
}

/* The data directory for a program or library found at anchor (a
 * directory): anchor itself if it holds module_db.json (the build tree),
 * then anchor/../share/lm-predictor (an install: bin/ or lib/ next to
 * share/), then anchor's parents up to three levels (build/ and the like
 * inside the build tree). */
static bool find_home(const char *anchor, char *out, size_t outsz) {
  char *share = path_join(anchor, "../share/lm-predictor");
  char *dir = xstrdup(anchor);
  bool found = false;
  if (has_db(dir)) {
    found = true;
  } else if (has_db(share)) {
    free(dir);
    dir = realpath(share, NULL);
    found = dir != NULL;
    if (!dir)
      dir = xstrdup(share);
  } else {
    for (int up = 0; up < 3 && !found; up++) {
      char *parent = dir_of(dir);
      free(dir);
      dir = parent;
      found = has_db(dir);
    }
  }
  if (found)
    snprintf(out, outsz, "%s", dir);
  free(dir);
  free(share);
  return found;
}

const char *lm_home(void) {
  static char home[PATH_MAX];
  if (home[0])
    return home;
  const char *env = getenv("LM_PREDICTOR_HOME");
  if (env && *env) {
    snprintf(home, sizeof(home), "%s", env);
    return home;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  /* The object this function lives in: liblmpredict.so when a program
   * (python3, say) loaded the shared library, else the executable, whose
   * name dladdr gives as argv[0] (possibly relative: not used). */
  Dl_info info;
  if (dladdr((void *)lm_home, &info) && info.dli_fname &&
      info.dli_fname[0] == '/' && strcmp(info.dli_fname, exe) != 0) {
    char *dir = dir_of(info.dli_fname);
    bool found = find_home(dir, home, sizeof(home));
    free(dir);
    if (found)
      return home;
  }
  if (!exe[0]) {
    snprintf(home, sizeof(home), ".");
    return home;
  }
  char *dir = dir_of(exe);
  if (!find_home(dir, home, sizeof(home)))
    snprintf(home, sizeof(home), "%s", dir);
  free(dir);
  return home;
}

const char *path_display(const char *path) {
  static char cwd[PATH_MAX];
  if (!cwd[0] && !getcwd(cwd, sizeof(cwd)))
    return path;
  size_t n = strlen(cwd);
  if (path[0] == '/' && strncmp(path, cwd, n) == 0 && path[n] == '/')
    return path + n + 1;
  return path;
}

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
