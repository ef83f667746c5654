/*
 * Probes in C: a TCP check that only connects (ldirectord's checktype=connect, keepalived's
 * TCP_CHECK), and the socket of a plain HTTP check (an exchange), made without a JavaScript
 * handle. In node, each such check built libuv's TCP handle, its requests and their JavaScript
 * objects, and entered JavaScript for the connect, the write, each read and the close: most of
 * the bare probe's user CPU in the VM (README, the native floor). Here a check is socket(2),
 * connect(2) and one EPOLL_CTL_ADD. A connect-only check's outcome is read (SO_ERROR), the socket
 * reset (SO_LINGER 0, no TIME_WAIT on the director) and closed in C. An exchange writes its
 * request from C once connected and reads the reply into a buffer JavaScript owns; JavaScript
 * parses and judges it, as for any other socket, and ends it (cancel) once it has its verdict.
 * JavaScript is called once per loop turn with every outcome of that turn as (id, status,
 * length) triples in an Int32Array it owns. Loaded by src/health/native.ts (unless
 * IPVS_WARDEN_SOCKETS is `lean` or `node`) and by bench:peers' native floor; where this file was
 * not built (src/native/build.sh), these checks use a handle of Node's.
 *
 * One epoll set per thread (each probe worker has its own engine), watched from that thread's
 * libuv loop by one uv_poll_t, referenced only while a socket is open: an idle engine never
 * keeps a thread alive, as a net.Socket that is not connecting would not.
 */
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* One socket in flight. A connect-only probe has no request; an exchange keeps what is left of
 * its request to write, then reads until JavaScript ends it (cancel) or the peer does. */
typedef struct {
  int32_t id;
  int exchange;
  int connected;
  char *out; /* the request not yet written (an exchange), freed once written */
  size_t out_len, out_sent;
} conn_t;

typedef struct {
  int epfd;
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref results; /* keeps the Int32Array alive while `out` points into it */
  napi_ref bytes;   /* and the Uint8Array that a turn's reads land in */
  int32_t *out;
  size_t triples;
  uint8_t *in;
  size_t in_size;
  napi_async_context context;
  int closing;
  size_t pending; /* sockets open: the poll is referenced while there are any */
  conn_t **conns; /* by fd; NULL where no socket of this engine is */
  size_t nconns;
} engine_t;

/* What a triple's status says, beside 0 (connected) and a negative errno (failed). */
enum { EV_DATA = 1, EV_END = 2 };
/* A failed syscall's errno is negated and offset by one of these, so JS can name the syscall. */
#define BIND_FAILED (1 << 20)
#define WRITE_FAILED (2 << 20)
#define READ_FAILED (3 << 20)

static void settled(engine_t *e) {
  if (e->pending > 0) e->pending--;
  if (e->pending == 0) uv_unref((uv_handle_t *)&e->poll);
}

/* The socket's end: reset (SO_LINGER 0: no TIME_WAIT on the director) if it connected, closed
 * (which also leaves the epoll set: nothing else holds it), and forgotten. */
static void finish(engine_t *e, int fd, int reset) {
  conn_t *c = (size_t)fd < e->nconns ? e->conns[fd] : NULL;
  if (reset) {
    struct linger zero = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &zero, sizeof zero);
  }
  close(fd);
  if (c) {
    free(c->out);
    free(c);
    e->conns[fd] = NULL;
  }
  settled(e);
}

#define CHECK(call)                                                                     \
  do {                                                                                  \
    if ((call) != napi_ok) {                                                            \
      napi_throw_error(env, NULL, "native probe: " #call " failed");                    \
      return NULL;                                                                      \
    }                                                                                   \
  } while (0)

/* Writes what is left of an exchange's request: 0 once all is written, 1 to wait for room, or a
 * negative errno. Then the socket waits to read. */
static int send_rest(engine_t *e, int fd, conn_t *c) {
  while (c->out_sent < c->out_len) {
    ssize_t n = send(fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
    c->out_sent += (size_t)n;
  }
  free(c->out);
  c->out = NULL;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)(uint32_t)fd << 32) | (uint32_t)c->id};
  return epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

/*
 * One loop turn's outcomes, then one call into JS with them as (id, status, length) triples:
 * status 0 connected, EV_DATA with `length` bytes (the next ones in `in`), EV_END (the peer
 * closed), or a negative errno (failed; ended). A connect-only socket is reset and closed in C
 * once connected; an exchange is closed in C only when it fails or the peer ends it.
 */
static void on_ready(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  engine_t *e = poll->data;
  struct epoll_event ready[256];
  /* Each ready socket gives at most three triples: connected, data, and an end. */
  size_t most = e->triples / 3;
  int max = most < 256 ? (int)most : 256;
  int k = epoll_wait(e->epfd, ready, max, 0);
  if (k <= 0) return;
  size_t t = 0, used = 0;
#define EMIT(id_, status_, length_)       \
  do {                                    \
    e->out[3 * t] = (id_);                \
    e->out[3 * t + 1] = (status_);        \
    e->out[3 * t + 2] = (int32_t)(length_); \
    t++;                                  \
  } while (0)
  for (int i = 0; i < k; i++) {
    int fd = (int)(ready[i].data.u64 >> 32);
    int32_t id = (int32_t)(ready[i].data.u64 & 0xffffffffu);
    conn_t *c = (size_t)fd < e->nconns ? e->conns[fd] : NULL;
    if (!c || c->id != id) continue; /* not ours (cheap insurance: a closed fd leaves the set) */
    if (!c->connected) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0 && (ready[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) continue;
      if (err != 0) {
        EMIT(id, -err, 0);
        finish(e, fd, 0);
        continue;
      }
      c->connected = 1;
      EMIT(id, 0, 0);
      if (!c->exchange) {
        finish(e, fd, 1);
        continue;
      }
    }
    if (c->out) {
      int sent = send_rest(e, fd, c);
      if (sent < 0) {
        EMIT(id, sent - WRITE_FAILED, 0);
        finish(e, fd, 1);
      }
      continue; /* the reply comes on a later turn */
    }
    /* Reading: to EAGAIN, the peer's end, or a full `in` (the rest on the next turn: epoll is
     * level-triggered). */
    size_t got = 0;
    int end = 0;
    while (used + got < e->in_size) {
      ssize_t n = recv(fd, e->in + used + got, e->in_size - used - got, 0);
      if (n > 0) {
        got += (size_t)n;
      } else if (n == 0) {
        end = EV_END;
        break;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) end = -errno - READ_FAILED;
        if (errno != EINTR) break;
      }
    }
    if (got > 0) EMIT(id, EV_DATA, got);
    used += got;
    if (end != 0) {
      EMIT(id, end, 0);
      finish(e, fd, 1);
    }
  }
#undef EMIT
  if (t == 0) return;
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, count;
  if (napi_get_reference_value(env, e->callback, &callback) == napi_ok &&
      napi_get_global(env, &global) == napi_ok && napi_create_int32(env, (int32_t)t, &count) == napi_ok)
    /* make_callback, not call_function: the microtasks and ticks it queues run after it. */
    napi_make_callback(env, e->context, global, callback, 1, &count, NULL);
  napi_close_handle_scope(env, scope);
}

static void closed(uv_handle_t *handle) {
  engine_t *e = handle->data;
  for (size_t fd = 0; fd < e->nconns; fd++)
    if (e->conns[fd]) {
      close((int)fd);
      free(e->conns[fd]->out);
      free(e->conns[fd]);
    }
  free(e->conns);
  close(e->epfd);
  free(e);
}

/* The thread's environment is going (a worker ends, the process exits). */
static void cleanup(void *data) {
  engine_t *e = data;
  if (e->closing) return;
  e->closing = 1;
  uv_close((uv_handle_t *)&e->poll, closed);
}

/* open(onBatch(count), results: Int32Array of (id, status, length) triples, bytes: Uint8Array
 * that each turn's reads land in) -> engine */
static napi_value open_(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type, btype;
  size_t length, blength;
  void *data, *bdata;
  if (argc < 3 ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_int32_array || length < 3 ||
      napi_get_typedarray_info(env, argv[2], &btype, &blength, &bdata, NULL, NULL) != napi_ok ||
      btype != napi_uint8_array || blength < 1) {
    napi_throw_type_error(env, NULL,
                          "native probe: open(onBatch, Int32Array of triples, Uint8Array)");
    return NULL;
  }
  engine_t *e = calloc(1, sizeof *e);
  if (!e) {
    napi_throw_error(env, "ENOMEM", "native probe: out of memory");
    return NULL;
  }
  e->env = env;
  e->out = data;
  e->triples = length / 3;
  e->in = bdata;
  e->in_size = blength;
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  uv_loop_t *loop;
  if (e->epfd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      uv_poll_init(loop, &e->poll, e->epfd) != 0) {
    if (e->epfd >= 0) close(e->epfd);
    free(e);
    napi_throw_error(env, NULL, "native probe: no epoll set");
    return NULL;
  }
  e->poll.data = e;
  napi_value name, engine;
  CHECK(napi_create_reference(env, argv[0], 1, &e->callback));
  CHECK(napi_create_reference(env, argv[1], 1, &e->results));
  CHECK(napi_create_reference(env, argv[2], 1, &e->bytes));
  CHECK(napi_create_string_utf8(env, "ipvs-warden-probe", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &e->context));
  uv_poll_start(&e->poll, UV_READABLE, on_ready);
  uv_unref((uv_handle_t *)&e->poll);
  CHECK(napi_add_env_cleanup_hook(env, cleanup, e));
  CHECK(napi_create_external(env, e, NULL, NULL, &engine));
  return engine;
}

static engine_t *engine_of(napi_env env, napi_value value) {
  void *e = NULL;
  if (napi_get_value_external(env, value, &e) != napi_ok) return NULL;
  return ((engine_t *)e)->closing ? NULL : e;
}

/* An address string of `family` (4 or 6) and a port into `to`; 0, or -EINVAL. */
static int address_of(napi_env env, napi_value text, int family, int port,
                      struct sockaddr_storage *to, socklen_t *len) {
  char s[INET6_ADDRSTRLEN];
  size_t n;
  if (napi_get_value_string_utf8(env, text, s, sizeof s, &n) != napi_ok) return -EINVAL;
  memset(to, 0, sizeof *to);
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)to;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof *a;
    return inet_pton(AF_INET6, s, &a->sin6_addr) == 1 ? 0 : -EINVAL;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)to;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *len = sizeof *a;
  return inet_pton(AF_INET, s, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

/* An exchange's request: the Latin-1 string `text` then the bytes of `body` (a Buffer, or
 * undefined), in one block; NULL (and -ENOMEM or -EINVAL in *err) if it cannot be had. */
static char *request_of(napi_env env, napi_value text, napi_value body, size_t *len, int *err) {
  size_t n = 0, m = 0;
  void *b = NULL;
  napi_valuetype kind = napi_undefined;
  napi_typeof(env, body, &kind);
  *err = -EINVAL;
  if (napi_get_value_string_latin1(env, text, NULL, 0, &n) != napi_ok) return NULL;
  if (kind != napi_undefined && napi_get_buffer_info(env, body, &b, &m) != napi_ok) return NULL;
  char *out = malloc(n + m + 1);
  *err = -ENOMEM;
  if (!out) return NULL;
  size_t copied = 0;
  napi_get_value_string_latin1(env, text, out, n + 1, &copied);
  if (m) memcpy(out + copied, b, m);
  *len = copied + m;
  return out;
}

/* The socket's record, by fd: the table grows to hold it. */
static int remember(engine_t *e, int fd, conn_t *c) {
  if ((size_t)fd >= e->nconns) {
    size_t n = e->nconns ? e->nconns : 256;
    while (n <= (size_t)fd) n *= 2;
    conn_t **grown = realloc(e->conns, n * sizeof *grown);
    if (!grown) return -ENOMEM;
    memset(grown + e->nconns, 0, (n - e->nconns) * sizeof *grown);
    e->conns = grown;
    e->nconns = n;
  }
  e->conns[fd] = c;
  return 0;
}

/*
 * connect(engine, id, family, address, port, localAddress?, request?, body?) -> fd, or a
 * negative errno (-EINVAL for an address that is not one; bind's errno offset by BIND_FAILED,
 * so the caller can name the syscall). Without `request` the socket only connects (then is reset
 * and closed in C); with it, it is an exchange: the request (a Latin-1 string, then `body`'s
 * bytes) is written once connected, and what comes back is read until the caller cancels.
 */
static napi_value connect_(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = argc >= 5 ? engine_of(env, argv[0]) : NULL;
  int32_t id = 0, family = 4, port = 0;
  if (e && (napi_get_value_int32(env, argv[1], &id) != napi_ok ||
            napi_get_value_int32(env, argv[2], &family) != napi_ok ||
            napi_get_value_int32(env, argv[4], &port) != napi_ok))
    e = NULL;
  int result;
  struct sockaddr_storage to, from;
  socklen_t to_len = 0, from_len = 0;
  napi_valuetype local = napi_undefined, request = napi_undefined;
  if (argc >= 6) napi_typeof(env, argv[5], &local);
  if (argc >= 7) napi_typeof(env, argv[6], &request);
  conn_t *c = NULL;
  if (!e) {
    result = -EBADF;
  } else if ((result = address_of(env, argv[3], family, port, &to, &to_len)) != 0) {
  } else if (local == napi_string &&
             (result = address_of(env, argv[5], family, 0, &from, &from_len)) != 0) {
  } else if (!(c = calloc(1, sizeof *c))) {
    result = -ENOMEM;
  } else if (request == napi_string &&
             !(c->out = request_of(env, argv[6], argv[7], &c->out_len, &result))) {
  } else {
    c->id = id;
    c->exchange = request == napi_string;
    int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      result = -errno;
    } else {
      struct epoll_event ev;
      memset(&ev, 0, sizeof ev);
      ev.events = EPOLLOUT;
      ev.data.u64 = ((uint64_t)(uint32_t)fd << 32) | (uint32_t)id;
      if (from_len && bind(fd, (struct sockaddr *)&from, from_len) != 0) {
        result = -errno - BIND_FAILED;
        close(fd);
      } else if (connect(fd, (struct sockaddr *)&to, to_len) != 0 && errno != EINPROGRESS) {
        result = -errno;
        close(fd);
      } else if ((result = remember(e, fd, c)) != 0) {
        close(fd);
      } else if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        result = -errno;
        e->conns[fd] = NULL;
        close(fd);
      } else {
        result = fd;
        c = NULL; /* the table holds it */
        if (e->pending++ == 0) uv_ref((uv_handle_t *)&e->poll);
      }
    }
  }
  if (c) {
    free(c->out);
    free(c);
  }
  napi_value out;
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

/* cancel(engine, fd, close?): a socket given up on (its deadline, an abort) or done with (an
 * exchange's reply read): reset if connected, unless `close` is true (a FIN: what was written may
 * not have been read yet, and a reset can discard it); closed, never reported again. */
static napi_value cancel_(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  bool fin = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = argc >= 2 ? engine_of(env, argv[0]) : NULL;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &fin);
  if (e && napi_get_value_int32(env, argv[1], &fd) == napi_ok && fd >= 0 &&
      (size_t)fd < e->nconns && e->conns[fd])
    finish(e, fd, e->conns[fd]->connected && !fin);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor members[] = {
      {"open", NULL, open_, NULL, NULL, NULL, napi_default, NULL},
      {"connect", NULL, connect_, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, cancel_, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 3, members) != napi_ok) return NULL;
  return exports;
}
