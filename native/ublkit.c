/* ublkit native addon: the thinnest layer over the Linux syscalls Node cannot
 * make itself (io_uring_setup/enter/register, mmap, ioctl, statx, CPU affinity, eventfd
 * polling). It knows nothing of ublk and builds no SQE: TypeScript reads and
 * writes the mmapped rings through typed arrays. Plain Node-API, context-aware:
 * per-env instance data, and an env cleanup hook that stops pollers and closes
 * rings when a worker exits. Written from the kernel ABI, not from liburing. */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14)
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY (1U << 15)
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

typedef struct watch_s {
  uv_poll_t poll;                /* first member: handle pointer == watch pointer */
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  int fd;
  uint32_t id;
  struct watch_s *next;
} watch_t;

typedef struct map_s {           /* a mapping handed to JS as an external ArrayBuffer */
  void *p;
  size_t len;
  int ring;                      /* owning io_uring fd, or -1 for mmap() regions */
  napi_ref ab;                   /* weak ref (rings only): detached on closeRing */
  struct map_s *next;
} map_t;

typedef struct { napi_env env; watch_t *watches; map_t *maps; uint32_t next_id; } state_t;

/* ---------- errors and argument helpers ---------- */

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *msg) {
  char buf[256]; napi_value e, code, text, v;
  const char *name = uv_err_name(-err); /* libuv's UV_Exxx == -Exxx on Linux */
  snprintf(buf, sizeof buf, "%s: %s (%s)", syscall, msg ? msg : strerror(err), name);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &e);
  napi_set_named_property(env, e, "code", code);
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

/* Turn a failed napi_* call into a JS exception (unless one is pending). */
static napi_value throw_napi(napi_env env) {
  const napi_extended_error_info *info = NULL; char msg[128] = "Node-API call failed";
  bool pending = false;
  if (napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message)
    snprintf(msg, sizeof msg, "%s", info->error_message);
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, msg);
  return NULL;
}

#define CALL(x) do { if ((x) != napi_ok) return throw_napi(env); } while (0)
#define ARGS(n) napi_value argv[n]; size_t argc = n; \
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null;
}

/* Every integer from JS is checked against the C type it becomes: Node-API would turn NaN into 0
 * and cut 2**32 + 1 down to 1, i.e. another fd or a smaller count than the caller meant. */
#define U32 ((int64_t)UINT32_MAX)
#define I32 ((int64_t)INT_MAX)
#define SAFE_INT 9007199254740991LL

static bool range_error(napi_env env, const char *what, int64_t lo, int64_t hi) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s must be an integer in %lld..%lld", what, (long long)lo, (long long)hi);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return false;
}

/* Number (an integer) or BigInt in lo..hi -> int64; TypeError / RangeError otherwise. */
static bool get_int(napi_env env, napi_value v, int64_t lo, int64_t hi, const char *what, int64_t *out) {
  napi_valuetype t = napi_undefined; bool lossless = false; double d;
  napi_typeof(env, v, &t);
  if (t == napi_number) {
    if (napi_get_value_double(env, v, &d) != napi_ok) return false;
    if (!(d >= -SAFE_INT && d <= SAFE_INT) || d != (double)(int64_t)d) return range_error(env, what, lo, hi);
    *out = (int64_t)d;
  } else if (t == napi_bigint) {
    if (napi_get_value_bigint_int64(env, v, out, &lossless) != napi_ok) return false;
    if (!lossless) return range_error(env, what, lo, hi);
  } else {
    napi_throw_type_error(env, NULL, "expected a number or BigInt");
    return false;
  }
  return (*out >= lo && *out <= hi) || range_error(env, what, lo, hi);
}

static bool opt_int(napi_env env, napi_value v, int64_t def, int64_t lo, int64_t hi, const char *what, int64_t *out) {
  if (is_nullish(env, v)) { *out = def; return true; }
  return get_int(env, v, lo, hi, what, out);
}

#define get_fd(env, v, out) get_int(env, v, 0, I32, "fd", out)

/* Data pointer (byteOffset already applied by Node-API) and byte length of an
 * ArrayBuffer, TypedArray (incl. Buffer) or DataView. */
static bool get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  static const uint8_t esize[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8}; /* napi_typedarray_type */
  bool is; napi_typedarray_type tt; napi_value ab; size_t off, n;
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is)
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    if (napi_get_typedarray_info(env, v, &tt, &n, data, &ab, &off) != napi_ok) return false;
    *len = n * ((size_t)tt < sizeof esize ? esize[tt] : 1);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is)
    return napi_get_dataview_info(env, v, len, data, &ab, &off) == napi_ok;
  napi_throw_type_error(env, NULL, "expected an ArrayBuffer, TypedArray, DataView or Buffer");
  return false;
}

static napi_value num(napi_env env, double d) { napi_value v; napi_create_double(env, d, &v); return v; }
static napi_value boolean(napi_env env, bool b) { napi_value v; napi_get_boolean(env, b, &v); return v; }
static void set(napi_env env, napi_value o, const char *k, double d) { napi_set_named_property(env, o, k, num(env, d)); }
static state_t *state(napi_env env) { void *p = NULL; napi_get_instance_data(env, &p); return p; }

/* ---------- mapping records ---------- */

/* Wrap [p, p+len) in an external ArrayBuffer (no finalizer) and record it.
 * On failure the region is unmapped and NULL returned with an exception set. */
static napi_value track(napi_env env, void *p, size_t len, int ring) {
  state_t *st = state(env);
  map_t *m = calloc(1, sizeof *m);
  napi_value ab;
  if (!m) { munmap(p, len); return throw_errno(env, ENOMEM, "calloc", NULL); }
  if (napi_create_external_arraybuffer(env, p, len, NULL, NULL, &ab) != napi_ok ||
      (ring >= 0 && napi_create_reference(env, ab, 0, &m->ab) != napi_ok)) {
    free(m);
    munmap(p, len);
    return throw_napi(env);
  }
  *m = (map_t){ p, len, ring, m->ab, st->maps };
  st->maps = m;
  return ab;
}

/* Unmap every region of ring `fd` (detaching live ArrayBuffers), then close it. */
static int drop_ring(napi_env env, int fd, bool detach) {
  napi_value ab;
  for (map_t **pp = &state(env)->maps; *pp;) {
    map_t *m = *pp;
    if (m->ring != fd) { pp = &m->next; continue; }
    *pp = m->next;
    if (detach && napi_get_reference_value(env, m->ab, &ab) == napi_ok && ab)
      napi_detach_arraybuffer(env, ab);
    napi_delete_reference(env, m->ab);
    munmap(m->p, m->len);
    free(m);
  }
  return close(fd) < 0 ? -errno : 0;
}

/* ---------- io_uring ---------- */

static napi_value SetupRing(napi_env env, napi_callback_info info) {
  static const char *sqk[] = {"head", "tail", "ringMask", "ringEntries", "flags", "dropped", "array"};
  static const char *cqk[] = {"head", "tail", "ringMask", "ringEntries", "overflow", "cqes", "flags"};
  ARGS(3);
  int64_t entries, flags, cq_entries;
  struct io_uring_params p;
  napi_value res, sq, cq, ring_ab, sqes_ab; size_t sq_sz, cq_sz, ring_sz, sqes_sz;
  void *ring, *sqes;
  int fd, err;
  if (!get_int(env, argv[0], 0, U32, "entries", &entries) || !opt_int(env, argv[1], 0, 0, U32, "flags", &flags) ||
      !opt_int(env, argv[2], 0, 0, U32, "cqEntries", &cq_entries)) return NULL;
  /* The rings are mapped here from the kernel's offsets: flags that put them in caller memory,
   * or return something other than an fd, would leave JS views over nothing. */
  if (flags & (IORING_SETUP_NO_MMAP | IORING_SETUP_REGISTERED_FD_ONLY))
    return throw_errno(env, EINVAL, "io_uring_setup", "IORING_SETUP_NO_MMAP and REGISTERED_FD_ONLY are not supported");
  memset(&p, 0, sizeof p);
  p.flags = (uint32_t)flags;
  if (cq_entries > 0) {
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = (uint32_t)cq_entries;
  }
  fd = (int)syscall(__NR_io_uring_setup, (unsigned)entries, &p);
  if (fd < 0) {
    err = errno;
    return throw_errno(env, err, "io_uring_setup", err == ENOSYS || err == EPERM ?
      "io_uring is unavailable or disabled on this system (kernel without CONFIG_IO_URING, "
      "sysctl kernel.io_uring_disabled, or a seccomp/container policy)" : NULL);
  }
  if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
    close(fd);
    return throw_errno(env, ENOTSUP, "io_uring_setup", "kernel lacks IORING_FEAT_SINGLE_MMAP");
  }
  /* One mapping covers both rings (FEAT_SINGLE_MMAP): size it for the larger. */
  sq_sz = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
  cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe) *
          ((p.flags & IORING_SETUP_CQE32) ? 2 : 1);
  ring_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
  sqes_sz = p.sq_entries * ((p.flags & IORING_SETUP_SQE128) ? 128 : 64);
  ring = mmap(NULL, ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  sqes = ring == MAP_FAILED ? MAP_FAILED :
         mmap(NULL, sqes_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    err = errno;
    if (ring != MAP_FAILED) munmap(ring, ring_sz);
    close(fd);
    return throw_errno(env, err, "mmap", NULL);
  }
  if (!(ring_ab = track(env, ring, ring_sz, fd))) { munmap(sqes, sqes_sz); drop_ring(env, fd, false); return NULL; }
  if (!(sqes_ab = track(env, sqes, sqes_sz, fd))) { drop_ring(env, fd, false); return NULL; }

  uint32_t sqv[] = {p.sq_off.head, p.sq_off.tail, p.sq_off.ring_mask, p.sq_off.ring_entries,
                    p.sq_off.flags, p.sq_off.dropped, p.sq_off.array};
  uint32_t cqv[] = {p.cq_off.head, p.cq_off.tail, p.cq_off.ring_mask, p.cq_off.ring_entries,
                    p.cq_off.overflow, p.cq_off.cqes, p.cq_off.flags};
  CALL(napi_create_object(env, &res));
  CALL(napi_create_object(env, &sq));
  CALL(napi_create_object(env, &cq));
  for (int i = 0; i < 7; i++) {
    set(env, sq, sqk[i], sqv[i]);
    set(env, cq, cqk[i], cqv[i]);
  }
  set(env, res, "fd", fd);
  set(env, res, "flags", p.flags);
  set(env, res, "features", p.features);
  set(env, res, "sqEntries", p.sq_entries);
  set(env, res, "cqEntries", p.cq_entries);
  napi_set_named_property(env, res, "ring", ring_ab);
  napi_set_named_property(env, res, "sqes", sqes_ab);
  napi_set_named_property(env, res, "sqOff", sq);
  napi_set_named_property(env, res, "cqOff", cq);
  return res;
}

/* closeRing(fd) -> 0 | -errno (from close). Unknown fd: just close it. */
static napi_value CloseRing(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  return num(env, drop_ring(env, (int)fd, true));
}

/* enter(fd, toSubmit, minComplete, flags[, arg]) -> result | -errno. The
 * optional arg view is passed with argsz = its byteLength (IORING_ENTER_EXT_ARG). */
static napi_value Enter(napi_env env, napi_callback_info info) {
  ARGS(5);
  int64_t fd, sub, minc, flags;
  void *arg = NULL;
  size_t argsz = 0;
  if (!get_int(env, argv[0], 0, U32, "fd", &fd) || !opt_int(env, argv[1], 0, 0, U32, "toSubmit", &sub) ||
      !opt_int(env, argv[2], 0, 0, U32, "minComplete", &minc) || !opt_int(env, argv[3], 0, 0, U32, "flags", &flags)) return NULL;
  if (argc >= 5 && !is_nullish(env, argv[4]) && !get_bytes(env, argv[4], &arg, &argsz)) return NULL;
  long r = syscall(__NR_io_uring_enter, (unsigned)fd, (unsigned)sub, (unsigned)minc,
                   (unsigned)flags, arg, argsz);
  return num(env, r < 0 ? -errno : (double)r);
}

/* Bytes io_uring_register reads or writes at arg for opcode op and nr_args nr (layouts from the
 * kernel ABI), or -1 for an opcode the addon does not know (its arg could be any size) and for
 * RESIZE_RINGS (33), which moves the rings away from the mappings JS holds. Pointers inside the
 * argument (iovecs, fd arrays of the update structs) are the caller's, like the addresses in SQEs. */
static int64_t reg_arg_bytes(uint32_t op, int64_t nr) {
  switch (op & ~(1U << 31)) {     /* IORING_REGISTER_USE_REGISTERED_RING */
  case 1: case 3: case 5: case 9: case 10: case 12: case 18: return 0;   /* no argument */
  case 0: case 11: case 20: case 21: return nr * 16;  /* iovec, restriction, rsrc_update arrays */
  case 2: return nr * 4;                              /* fd array */
  case 4: case 7: return 4;                           /* eventfd */
  case 8: return 16 + nr * 8;                         /* probe: header + ops, written back */
  case 13: case 14: case 15: case 16: case 17: return nr; /* nr_args is the struct or mask size */
  case 19: return 8;                                  /* two u32 worker counts, written back */
  case 6: case 25: case 27: case 28: case 29: return 16;
  case 30: return 32;
  case 22: case 23: case 26: return 40;               /* buf_reg, buf_status */
  case 24: case 31: return 64;                        /* sync_cancel_reg, an SQE */
  default: return -1;
  }
}

/* register(fd, opcode, arg, nrArgs) -> result | -errno; -EINVAL without a syscall when arg is
 * shorter than what the kernel would read or write for nrArgs. */
static napi_value Register(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t fd, op, nr, need;
  void *arg = NULL;
  size_t len = 0;
  if (!get_fd(env, argv[0], &fd) || !get_int(env, argv[1], 0, U32, "opcode", &op) ||
      !opt_int(env, argv[3], 0, 0, U32, "nrArgs", &nr)) return NULL;
  if (!is_nullish(env, argv[2]) && !get_bytes(env, argv[2], &arg, &len)) return NULL;
  need = reg_arg_bytes((uint32_t)op, nr);
  if (need < 0 || (uint64_t)need > len) return num(env, -EINVAL);
  long r = syscall(__NR_io_uring_register, (unsigned)fd, (unsigned)op, arg, (unsigned)nr);
  return num(env, r < 0 ? -errno : (double)r);
}

/* ---------- memory ---------- */

static napi_value Mmap(napi_env env, napi_callback_info info) {
  ARGS(5);
  int64_t fd, len, prot, flags, off;
  struct stat st;
  if (!get_int(env, argv[0], -1, I32, "fd", &fd) || !get_int(env, argv[1], 1, INT64_MAX, "length", &len) ||
      !get_int(env, argv[2], 0, I32, "prot", &prot) || !get_int(env, argv[3], 0, I32, "flags", &flags) ||
      !opt_int(env, argv[4], 0, 0, INT64_MAX - len, "offset", &off)) return NULL;
  /* The address is always the kernel's choice: MAP_FIXED at NULL is never what JS meant. */
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) return throw_errno(env, EINVAL, "mmap", "MAP_FIXED is not supported");
  /* A page wholly past the end of a regular file is SIGBUS on first touch from JS. */
  if (fd >= 0 && !(flags & MAP_ANONYMOUS) && fstat((int)fd, &st) == 0 && S_ISREG(st.st_mode)) {
    int64_t page = sysconf(_SC_PAGESIZE);
    if (off >= st.st_size || len > (st.st_size - off + page - 1) / page * page)
      return throw_errno(env, EINVAL, "mmap", "the mapping runs past the end of the file");
  }
  void *p = mmap(NULL, (size_t)len, (int)prot, (int)flags, (int)fd, (off_t)off);
  if (p == MAP_FAILED) return throw_errno(env, errno, "mmap", NULL);
  return track(env, p, (size_t)len, -1);
}

/* munmap(arrayBuffer): only buffers from mmap() in this environment (never
 * alloc() memory or ring buffers). Detaches it so stale views read as empty
 * instead of faulting. */
static napi_value Munmap(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *p;
  size_t len; bool is;
  CALL(napi_is_arraybuffer(env, argv[0], &is));
  if (!is) { napi_throw_type_error(env, NULL, "munmap expects an ArrayBuffer from mmap()"); return NULL; }
  CALL(napi_get_arraybuffer_info(env, argv[0], &p, &len));
  if (!p || !len) return NULL; /* already detached */
  for (map_t **pp = &state(env)->maps; *pp; pp = &(*pp)->next) {
    map_t *m = *pp;
    if (m->ring >= 0 || m->p != p || m->len != len) continue;
    if (munmap(p, len) < 0) return throw_errno(env, errno, "munmap", NULL);
    *pp = m->next;
    free(m);
    napi_detach_arraybuffer(env, argv[0]);
    return NULL;
  }
  return throw_errno(env, EINVAL, "munmap", "not a buffer returned by mmap()");
}

static void free_aligned(napi_env env, void *data, void *hint) {
  int64_t total;
  free(data);
  napi_adjust_external_memory(env, -(int64_t)(uintptr_t)hint, &total);
}

/* alloc(size, align = 4096): zeroed posix_memalign memory, freed on GC. */
static napi_value Alloc(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t size, align, total;
  void *p = NULL;
  napi_value ab;
  if (!get_int(env, argv[0], 1, SAFE_INT, "size", &size) || !opt_int(env, argv[1], 4096, 1, 1LL << 30, "align", &align)) return NULL;
  if (align & (align - 1))
    return throw_errno(env, EINVAL, "posix_memalign", NULL);
  if (align < (int64_t)sizeof(void *)) align = sizeof(void *);
  int err = posix_memalign(&p, (size_t)align, (size_t)size);
  if (err) return throw_errno(env, err, "posix_memalign", NULL);
  memset(p, 0, (size_t)size);
  if (napi_create_external_arraybuffer(env, p, (size_t)size, free_aligned,
                                       (void *)(uintptr_t)size, &ab) != napi_ok) {
    free(p);
    return throw_napi(env);
  }
  napi_adjust_external_memory(env, size, &total); /* let the GC see the pressure */
  return ab;
}

static napi_value AddressOf(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *p;
  size_t len; napi_value v;
  if (!get_bytes(env, argv[0], &p, &len)) return NULL;
  CALL(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)p, &v));
  return v;
}

/* ---------- fd readiness on the current thread's libuv loop ---------- */

static void watch_closed(uv_handle_t *h) { free(h); }

static void watch_stop(napi_env env, watch_t *w) {
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->cb);
  napi_async_destroy(env, w->actx);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_fired(uv_poll_t *h, int status, int events) {
  watch_t *w = (watch_t *)h;
  napi_env env = w->env;     /* w may be unwatched (but not freed) by the callback */
  napi_handle_scope scope; napi_value cb, recv, result, exc; uint64_t cnt;
  (void)status; (void)events;
  if (read(w->fd, &cnt, sizeof cnt) < 0) { /* EAGAIN: already drained */ }
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  /* make_callback runs the microtask queue afterwards; a throw is left pending
   * and is rethrown as an uncaught exception. */
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb &&
      napi_get_global(env, &recv) == napi_ok &&
      napi_make_callback(env, w->actx, recv, cb, 0, NULL, &result) == napi_pending_exception &&
      napi_get_and_clear_last_exception(env, &exc) == napi_ok)
    napi_fatal_exception(env, exc);
  napi_close_handle_scope(env, scope);
}

static watch_t *watch_find(state_t *st, int64_t id, bool unlink) {
  for (watch_t **pp = &st->watches; *pp; pp = &(*pp)->next) {
    watch_t *w = *pp;
    if (w->id != id) continue;
    if (unlink) *pp = w->next;
    return w;
  }
  return NULL;
}

/* watch(fd, callback) -> handle id. Ref'ed by default. */
static napi_value Watch(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t fd; napi_valuetype t; uv_loop_t *loop; napi_value resource, name;
  state_t *st = state(env);
  watch_t *w;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  CALL(napi_typeof(env, argv[1], &t));
  if (t != napi_function) { napi_throw_type_error(env, NULL, "callback must be a function"); return NULL; }
  for (w = st->watches; w; w = w->next) /* libuv forbids two poll handles per fd */
    if (w->fd == fd) return throw_errno(env, EEXIST, "watch", "fd is already watched");
  CALL(napi_get_uv_event_loop(env, &loop));
  CALL(napi_create_object(env, &resource));
  CALL(napi_create_string_utf8(env, "ublkit.watch", NAPI_AUTO_LENGTH, &name));
  if (!(w = calloc(1, sizeof *w))) return throw_errno(env, ENOMEM, "calloc", NULL);
  int r = uv_poll_init(loop, &w->poll, (int)fd);
  if (r < 0) { free(w); return throw_errno(env, -r, "uv_poll_init", NULL); }
  if ((r = uv_poll_start(&w->poll, UV_READABLE, watch_fired)) < 0) {
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    return throw_errno(env, -r, "uv_poll_start", NULL);
  }
  if (napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok ||
      napi_async_init(env, resource, name, &w->actx) != napi_ok) {
    if (w->cb) napi_delete_reference(env, w->cb);
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    return throw_napi(env);
  }
  w->env = env;
  w->fd = (int)fd;
  w->id = ++st->next_id;
  w->next = st->watches;
  st->watches = w;
  return num(env, w->id);
}

/* watchRef(handle, bool) -> whether the handle exists */
static napi_value WatchRef(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t id; bool on = true;
  if (!get_int(env, argv[0], 0, U32, "handle", &id)) return NULL;
  napi_get_value_bool(env, argv[1], &on);
  watch_t *w = watch_find(state(env), id, false);
  if (w && on) uv_ref((uv_handle_t *)&w->poll);
  if (w && !on) uv_unref((uv_handle_t *)&w->poll);
  return boolean(env, w != NULL);
}

/* unwatch(handle) -> whether it was active; repeated calls are no-ops */
static napi_value Unwatch(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t id;
  if (!get_int(env, argv[0], 0, U32, "handle", &id)) return NULL;
  watch_t *w = watch_find(state(env), id, true);
  if (w) watch_stop(env, w);
  return boolean(env, w != NULL);
}

/* ---------- small syscalls ---------- */

static napi_value Eventfd(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t init, flags;
  if (!opt_int(env, argv[0], 0, 0, U32, "initval", &init) ||
      !opt_int(env, argv[1], EFD_CLOEXEC | EFD_NONBLOCK, 0, I32, "flags", &flags)) return NULL;
  int fd = eventfd((unsigned)init, (int)flags);
  if (fd < 0) return throw_errno(env, errno, "eventfd", NULL);
  return num(env, fd);
}

/* pinThread(cpu) -> 0 | -errno: binds the calling thread to one CPU (threads it starts later, such
 * as its io_uring's io-wq workers, inherit the mask). */
static napi_value PinThread(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t cpu;
  if (!get_int(env, argv[0], INT32_MIN, I32, "cpu", &cpu)) return NULL;
  if (cpu < 0 || cpu >= CPU_SETSIZE) return num(env, -EINVAL);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)cpu, &set);
  return num(env, sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0);
}

static napi_value Close(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  return num(env, close((int)fd) < 0 ? -errno : 0);
}

/* ioctl64 / ioctlInt: ioctls whose out-arg is a u64 / an unsigned int. A request that encodes its
 * argument size (_IOR/_IOW/_IOWR) must fit the result; legacy requests (BLKSSZGET and friends
 * encode none) write into a scratch area well above any int-sized result. */
static napi_value ioctl_out(napi_env env, napi_callback_info info, bool wide) {
  ARGS(2);
  int64_t fd, req; uint64_t scratch[32]; napi_value v;
  if (!get_fd(env, argv[0], &fd) || !get_int(env, argv[1], 0, U32, "request", &req)) return NULL;
  if (_IOC_DIR(req) != _IOC_NONE && _IOC_SIZE(req) > (wide ? 8U : 4U))
    return throw_errno(env, EINVAL, "ioctl", "the request's argument is wider than the result");
  memset(scratch, 0, sizeof scratch);
  if (ioctl((int)fd, (unsigned long)req, (void *)scratch) < 0)
    return throw_errno(env, errno, "ioctl", NULL);
  if (!wide) {
    unsigned int v32;
    memcpy(&v32, scratch, sizeof v32);
    return num(env, v32);
  }
  CALL(napi_create_bigint_uint64(env, scratch[0], &v));
  return v;
}
static napi_value Ioctl64(napi_env env, napi_callback_info info) { return ioctl_out(env, info, true); }
static napi_value IoctlInt(napi_env env, napi_callback_info info) { return ioctl_out(env, info, false); }

static napi_value StatxDio(napi_env env, napi_callback_info info) {
  ARGS(1);
  char path[4096]; size_t n;
  struct statx stx;   /* glibc 2.36 takes this from linux/stat.h: has stx_dio_* */
  napi_value res, size;
  CALL(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n));
  if (n >= sizeof path - 1) return throw_errno(env, ENAMETOOLONG, "statx", NULL);
  if (strlen(path) != n) return throw_errno(env, EINVAL, "statx", "the path contains a NUL byte");
  memset(&stx, 0, sizeof stx);
  if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS | STATX_DIOALIGN, &stx) < 0)
    return throw_errno(env, errno, "statx", NULL);
  bool dio = (stx.stx_mask & STATX_DIOALIGN) != 0;
  CALL(napi_create_object(env, &res));
  CALL(napi_create_bigint_uint64(env, stx.stx_size, &size));
  set(env, res, "memAlign", dio ? stx.stx_dio_mem_align : 0);
  set(env, res, "offsetAlign", dio ? stx.stx_dio_offset_align : 0);
  set(env, res, "blksize", stx.stx_blksize);
  napi_set_named_property(env, res, "size", size);
  set(env, res, "mode", stx.stx_mode);
  return res;
}

/* pcopy(fd, ops: Uint32Array, n) -> n. Runs n pread (dir 0) / pwrite (dir 1) calls on fd in one
 * native call: user copy on /dev/ublkcN, whose read/write io_uring cannot issue without blocking
 * (the char device is not FMODE_NOWAIT, so every such SQE would go through an io-wq thread).
 * Each op is 8 u32: dir, len, addr lo, addr hi, offset lo, offset hi, result (out: bytes or -errno), 0. */
static napi_value Pcopy(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t fd, n;
  void *data; size_t bytes;
  if (!get_fd(env, argv[0], &fd) || !get_bytes(env, argv[1], &data, &bytes) ||
      !get_int(env, argv[2], -SAFE_INT, SAFE_INT, "n", &n)) return NULL;
  /* Divide rather than multiply: n * 32 wrapped for n >= 2**59 and let the loop run off the array. */
  if (n < 0 || (uint64_t)n > bytes / 32) return throw_errno(env, EINVAL, "pcopy", "ops array too short");
  if ((uintptr_t)data % 4) return throw_errno(env, EINVAL, "pcopy", "ops array must be 4-byte aligned");
  uint32_t *op = data;
  for (int64_t i = 0; i < n; i++, op += 8) {
    void *addr = (void *)(uintptr_t)((uint64_t)op[2] | (uint64_t)op[3] << 32);
    off_t off = (off_t)((uint64_t)op[4] | (uint64_t)op[5] << 32);
    ssize_t r = op[0] ? pwrite((int)fd, addr, op[1], off) : pread((int)fd, addr, op[1], off);
    op[6] = (uint32_t)(int32_t)(r < 0 ? -errno : r);
  }
  return num(env, (double)n);
}

static napi_value Gettid(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, (double)syscall(SYS_gettid));
}

/* ---------- environment lifecycle ---------- */

static void env_cleanup(void *arg) {
  state_t *st = arg;
  while (st->watches) {
    watch_t *w = st->watches;
    st->watches = w->next;
    watch_stop(st->env, w);
  }
  /* Rings of this env are only reachable from its JS heap: unmap and close.
   * mmap() regions are left mapped (their address may have been shared). */
  while (st->maps) {
    map_t *m = st->maps;
    if (m->ring >= 0) { drop_ring(st->env, m->ring, false); continue; }
    st->maps = m->next;
    free(m);
  }
  free(st);
}

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    {"setupRing", SetupRing}, {"closeRing", CloseRing}, {"enter", Enter},
    {"register", Register}, {"mmap", Mmap}, {"munmap", Munmap},
    {"alloc", Alloc}, {"addressOf", AddressOf}, {"eventfd", Eventfd},
    {"watch", Watch}, {"watchRef", WatchRef}, {"unwatch", Unwatch},
    {"close", Close}, {"ioctl64", Ioctl64}, {"ioctlInt", IoctlInt},
    {"statxDio", StatxDio}, {"gettid", Gettid}, {"pcopy", Pcopy},
    {"pinThread", PinThread},
  };
  static const struct { const char *name; double v; } consts[] = {
    {"IORING_OFF_SQ_RING", (double)IORING_OFF_SQ_RING},
    {"IORING_OFF_CQ_RING", (double)IORING_OFF_CQ_RING},
    {"IORING_OFF_SQES", (double)IORING_OFF_SQES},
    {"PROT_READ", PROT_READ}, {"PROT_WRITE", PROT_WRITE},
    {"MAP_SHARED", MAP_SHARED}, {"MAP_PRIVATE", MAP_PRIVATE},
    {"MAP_ANONYMOUS", MAP_ANONYMOUS}, {"MAP_POPULATE", MAP_POPULATE},
    {"MAP_HUGETLB", MAP_HUGETLB}, {"O_DIRECT", O_DIRECT}, {"O_CLOEXEC", O_CLOEXEC},
  };
  napi_value fn, c;
  state_t *st = calloc(1, sizeof *st);
  if (!st) return throw_errno(env, ENOMEM, "calloc", NULL);
  st->env = env;
  CALL(napi_set_instance_data(env, st, NULL, NULL));
  CALL(napi_add_env_cleanup_hook(env, env_cleanup, st));
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    CALL(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn));
    CALL(napi_set_named_property(env, exports, fns[i].name, fn));
  }
  CALL(napi_create_object(env, &c));
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
    set(env, c, consts[i].name, consts[i].v);
  set(env, c, "PAGE_SIZE", (double)sysconf(_SC_PAGESIZE));
  CALL(napi_set_named_property(env, exports, "constants", c));
  return exports;
}
