/*
 * @msgbricks/dirq's native binding: QueueSimple's per-element system-call sequences, each in one call.
 *
 * Why: the python-dirq format fixes the system calls (an add is open + write + close + link + unlink, a
 * consume link + utime + open + read + close + unlink + unlink), and each of them costs Node about as much
 * in argument checks, path conversion and error objects as in the kernel. Here a whole sequence is one
 * call, and an add publishes with renameat2(RENAME_NOREPLACE), one call instead of link + unlink, with the
 * same guarantee: an existing element is never overwritten (EEXIST, as link gives). File systems without
 * it (EINVAL) get link + unlink.
 *
 * Errors are not thrown: a failed sequence returns -(stage * 1000 + errno), the stage naming the system
 * call (the STAGE_* values, mirrored in src/native.ts), so the caller branches on the errno and builds
 * the error it would have built for the same failure from JavaScript. Only bad arguments throw.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

enum {
  STAGE_OPEN = 1,
  STAGE_FCHMOD = 2,
  STAGE_WRITE = 3,
  STAGE_FDATASYNC = 4,
  STAGE_CLOSE = 5,
  STAGE_RENAME = 6,
  STAGE_LINK = 7,
  STAGE_UNLINK = 8,
  STAGE_UTIME = 9,
  STAGE_READ = 10,
  STAGE_LSTAT = 11,
  STAGE_SYNCFS = 13,
  STAGE_FSYNC = 14,
  STAGE_UNLINK_LOCK = 15,
};

#define FAIL(stage) (-((stage) * 1000 + (errno ? errno : EIO)))
#define MAX_PATH 4096
#define LOCK_SUFFIX ".lck"

#define CHECK(call)                                                                                        \
  do {                                                                                                     \
    if ((call) != napi_ok) {                                                                               \
      napi_throw_error(env, "ERR_DIRQ_NATIVE", "dirq native binding: bad arguments");                     \
      return NULL;                                                                                         \
    }                                                                                                      \
  } while (0)

/* A JavaScript string as a NUL-terminated path; false if it is not a string or too long. */
static int get_path(napi_env env, napi_value v, char *buf, size_t size, size_t *len) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &n) != napi_ok) return 0;
  if (n >= size - 8) return 0; /* room for ".lck" */
  if (len) *len = n;
  return 1;
}

/* An element's path and its lock file's (path + ".lck"); false on a bad or too long path. */
static int get_element(napi_env env, napi_value v, char *path, char *lck) {
  size_t n;
  if (!get_path(env, v, path, MAX_PATH, &n)) return 0;
  memcpy(lck, path, n);
  memcpy(lck + n, LOCK_SUFFIX, sizeof LOCK_SUFFIX);
  return 1;
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

static int write_all(int fd, const char *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    off += (size_t)w;
  }
  return 0;
}

/* Publishes tmp as fin without ever replacing fin: renameat2(RENAME_NOREPLACE), or link + unlink. */
static int publish(const char *tmp, const char *fin) {
  if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, fin, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return FAIL(STAGE_RENAME);
  if (link(tmp, fin) != 0) return FAIL(STAGE_LINK);
  if (unlink(tmp) != 0) return FAIL(STAGE_UNLINK);
  return 0;
}

/* Creates tmp exclusively with data (fchmod'd when fix_mode, fdatasync'd when sync) and closes it. */
static int write_temp(const char *tmp, const char *data, size_t len, int mode, int fix_mode, int sync) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return FAIL(STAGE_OPEN);
  int stage = 0;
  if (fix_mode && fchmod(fd, mode) != 0) stage = STAGE_FCHMOD;
  else if (write_all(fd, data, len) != 0) stage = STAGE_WRITE;
  else if (sync && fdatasync(fd) != 0) stage = STAGE_FDATASYNC;
  if (stage != 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    errno = e;
    return FAIL(stage);
  }
  if (close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return FAIL(STAGE_CLOSE);
  }
  return 0;
}

/* writeTemp(tmp, data, mode, fixMode, fdatasync): 0, or the failure (nothing is left behind). */
static napi_value js_write_temp(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  char tmp[MAX_PATH];
  void *data;
  size_t len;
  int32_t mode;
  bool fix, sync;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || !get_path(env, argv[0], tmp, sizeof tmp, NULL)) CHECK(napi_invalid_arg);
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  CHECK(napi_get_value_int32(env, argv[2], &mode));
  CHECK(napi_get_value_bool(env, argv[3], &fix));
  CHECK(napi_get_value_bool(env, argv[4], &sync));
  errno = 0;
  return int_value(env, write_temp(tmp, data, len, mode, fix, sync));
}

/*
 * writeNew(tmp, final, data, mode, fixMode, fdatasync): writeTemp then publish. 0, or the failure: a
 * failure to publish with EEXIST leaves tmp in place for publish() under another name; any other failure
 * leaves nothing behind, except one to unlink tmp after link (the element is then published).
 */
static napi_value js_write_new(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  char tmp[MAX_PATH], fin[MAX_PATH];
  void *data;
  size_t len;
  int32_t mode;
  bool fix, sync;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || !get_path(env, argv[0], tmp, sizeof tmp, NULL) || !get_path(env, argv[1], fin, sizeof fin, NULL))
    CHECK(napi_invalid_arg);
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  CHECK(napi_get_value_int32(env, argv[3], &mode));
  CHECK(napi_get_value_bool(env, argv[4], &fix));
  CHECK(napi_get_value_bool(env, argv[5], &sync));
  errno = 0;
  int r = write_temp(tmp, data, len, mode, fix, sync);
  if (r != 0) return int_value(env, r);
  r = publish(tmp, fin);
  if (r != 0 && -r % 1000 != EEXIST && (-r / 1000) != STAGE_UNLINK) {
    int e = errno;
    unlink(tmp);
    errno = e;
  }
  return int_value(env, r);
}

/* publish(tmp, final): 0, or the failure (EEXIST: tmp is still there). */
static napi_value js_publish(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char tmp[MAX_PATH], fin[MAX_PATH];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_path(env, argv[0], tmp, sizeof tmp, NULL) || !get_path(env, argv[1], fin, sizeof fin, NULL))
    CHECK(napi_invalid_arg);
  errno = 0;
  return int_value(env, publish(tmp, fin));
}

/*
 * QueueSimple's lock: link path -> path.lck, then utime(path). On a utime failure the link is undone. link() never
 * follows a symbolic link (Linux), and utime does not either: a link planted in the spool is not touched through.
 */
static int lock_element(const char *path, const char *lck) {
  if (link(path, lck) != 0) return FAIL(STAGE_LINK);
  if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) != 0) {
    int e = errno;
    unlink(lck);
    errno = e;
    return FAIL(STAGE_UTIME);
  }
  return 0;
}

/*
 * The whole content of a file as a new Buffer, or the failure. No fstat: elements are small, so the first read
 * into a stack buffer usually gets it all (a short read, then end of file); a bigger one is read on into a heap
 * buffer that doubles.
 */
static int read_file(napi_env env, const char *path, napi_value *out) {
  /* O_NOFOLLOW: an element that is a symbolic link is refused (ELOOP), its target never read. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return FAIL(STAGE_OPEN);
  char stackbuf[16384];
  char *buf = stackbuf;
  size_t cap = sizeof stackbuf, len = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap * 2;
      char *nbuf = buf == stackbuf ? malloc(ncap) : realloc(buf, ncap);
      if (nbuf == NULL) {
        if (buf != stackbuf) free(buf);
        close(fd);
        errno = ENOMEM;
        return FAIL(STAGE_READ);
      }
      if (buf == stackbuf) memcpy(nbuf, stackbuf, len);
      buf = nbuf;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      if (buf != stackbuf) free(buf);
      close(fd);
      errno = e;
      return FAIL(STAGE_READ);
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  void *data;
  napi_status s = napi_create_buffer_copy(env, len, buf, &data, out);
  if (buf != stackbuf) free(buf);
  if (s != napi_ok) {
    errno = ENOMEM;
    return FAIL(STAGE_READ);
  }
  return 0;
}

/* lock + read through the lock file; on a read failure the lock is undone. A Buffer, or the failure. */
static napi_value lock_read(napi_env env, const char *path, const char *lck) {
  errno = 0;
  int r = lock_element(path, lck);
  if (r != 0) return int_value(env, r);
  napi_value buf;
  r = read_file(env, lck, &buf);
  if (r != 0) {
    int e = errno;
    unlink(lck);
    errno = e;
    return int_value(env, r);
  }
  return buf;
}

/* lock(path): 0, or the failure. */
static napi_value js_lock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[MAX_PATH], lck[MAX_PATH];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_element(env, argv[0], path, lck)) CHECK(napi_invalid_arg);
  errno = 0;
  return int_value(env, lock_element(path, lck));
}

/* readFile(path): a Buffer, or the failure. */
static napi_value js_read_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  char path[MAX_PATH];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_path(env, argv[0], path, sizeof path, NULL)) CHECK(napi_invalid_arg);
  errno = 0;
  int r = read_file(env, path, &out);
  return r == 0 ? out : int_value(env, r);
}

/* lockReadMany(paths): per path, the bytes (now locked by us) or the failure (then not locked by us). */
static napi_value js_lock_read_many(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  uint32_t count;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) CHECK(napi_invalid_arg);
  CHECK(napi_get_array_length(env, argv[0], &count));
  CHECK(napi_create_array_with_length(env, count, &out));
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    char path[MAX_PATH], lck[MAX_PATH];
    CHECK(napi_get_element(env, argv[0], i, &v));
    if (!get_element(env, v, path, lck)) CHECK(napi_invalid_arg);
    CHECK(napi_set_element(env, out, i, lock_read(env, path, lck)));
  }
  return out;
}

/* QueueSimple's remove: [check that path.lck exists], unlink the data (gone already is fine), then the lock. */
static int remove_element(const char *path, const char *lck, int check) {
  struct stat st;
  if (check && lstat(lck, &st) != 0) return FAIL(STAGE_LSTAT);
  if (unlink(path) != 0 && errno != ENOENT) return FAIL(STAGE_UNLINK);
  if (unlink(lck) != 0) return FAIL(STAGE_UNLINK_LOCK);
  return 0;
}

/* removeMany(paths, checks: Uint8Array): Int32Array of 0 or the failure, per path. */
static napi_value js_remove_many(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ab, out;
  uint32_t count;
  void *checks_data;
  size_t checks_len;
  napi_typedarray_type type;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) CHECK(napi_invalid_arg);
  CHECK(napi_get_array_length(env, argv[0], &count));
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &checks_len, &checks_data, NULL, NULL));
  if (type != napi_uint8_array || checks_len < count) CHECK(napi_invalid_arg);
  int32_t *results;
  CHECK(napi_create_arraybuffer(env, count * sizeof(int32_t), (void **)&results, &ab));
  CHECK(napi_create_typedarray(env, napi_int32_array, count, ab, 0, &out));
  const uint8_t *checks = checks_data;
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    char path[MAX_PATH], lck[MAX_PATH];
    CHECK(napi_get_element(env, argv[0], i, &v));
    if (!get_element(env, v, path, lck)) CHECK(napi_invalid_arg);
    errno = 0;
    results[i] = remove_element(path, lck, checks[i]);
  }
  return out;
}

/* remove(path, check): 0, or the failure. */
static napi_value js_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[MAX_PATH], lck[MAX_PATH];
  bool check;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_element(env, argv[0], path, lck)) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_bool(env, argv[1], &check));
  errno = 0;
  return int_value(env, remove_element(path, lck, check));
}

/* unlockedMany(paths): Uint8Array, 1 where path.lck does not exist. */
static napi_value js_unlocked_many(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab, out;
  uint32_t count;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) CHECK(napi_invalid_arg);
  CHECK(napi_get_array_length(env, argv[0], &count));
  uint8_t *results;
  CHECK(napi_create_arraybuffer(env, count, (void **)&results, &ab));
  CHECK(napi_create_typedarray(env, napi_uint8_array, count, ab, 0, &out));
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    char lck[MAX_PATH];
    size_t n;
    CHECK(napi_get_element(env, argv[0], i, &v));
    if (!get_path(env, v, lck, sizeof lck, &n)) CHECK(napi_invalid_arg);
    memcpy(lck + n, LOCK_SUFFIX, sizeof LOCK_SUFFIX);
    struct stat st;
    results[i] = lstat(lck, &st) != 0 && errno == ENOENT;
  }
  return out;
}

/* open(path) then syncfs (the whole file system holding path, in one call) or fsync (path itself). */
static napi_value sync_path(napi_env env, napi_callback_info info, int whole_fs) {
  size_t argc = 1;
  napi_value argv[1];
  char path[MAX_PATH];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_path(env, argv[0], path, sizeof path, NULL)) CHECK(napi_invalid_arg);
  errno = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return int_value(env, FAIL(STAGE_OPEN));
  int r = whole_fs ? (syncfs(fd) == 0 ? 0 : FAIL(STAGE_SYNCFS)) : (fsync(fd) == 0 ? 0 : FAIL(STAGE_FSYNC));
  close(fd);
  return int_value(env, r);
}

/* syncfs(path): 0, or the failure. */
static napi_value js_syncfs(napi_env env, napi_callback_info info) { return sync_path(env, info, 1); }

/* fsync(path): a directory's entries (or a file) made durable. 0, or the failure. */
static napi_value js_fsync(napi_env env, napi_callback_info info) { return sync_path(env, info, 0); }

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"writeTemp", NULL, js_write_temp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeNew", NULL, js_write_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"publish", NULL, js_publish, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lock", NULL, js_lock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readFile", NULL, js_read_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lockReadMany", NULL, js_lock_read_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"remove", NULL, js_remove, NULL, NULL, NULL, napi_enumerable, NULL},
      {"removeMany", NULL, js_remove_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unlockedMany", NULL, js_unlocked_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fsync", NULL, js_fsync, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
