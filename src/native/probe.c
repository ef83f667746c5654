/*
 * The connect probe in C: a TCP check that only connects (ldirectord's checktype=connect,
 * keepalived's TCP_CHECK) made without a JavaScript handle. In node, each such check built
 * libuv's TCP handle, its connect request and their JavaScript objects, and entered JavaScript
 * once for the connect and again for the close: most of the bare probe's user CPU in the VM
 * (README, the native floor). Here a check is socket(2), connect(2) and one EPOLL_CTL_ADD; the
 * outcome is read (SO_ERROR), the socket reset (SO_LINGER 0, no TIME_WAIT on the director) and
 * closed in C, and JavaScript is called once per loop turn with every outcome of that turn as
 * (id, status) pairs in an Int32Array it owns. Loaded by src/health/native.ts (unless
 * IPVS_WARDEN_SOCKETS is `lean` or `node`) and by bench:peers' native floor; where this file was
 * not built (src/native/build.sh), connect checks use a handle of Node's.
 *
 * One epoll set per thread (each probe worker has its own engine), watched from that thread's
 * libuv loop by one uv_poll_t, referenced only while a connect is in flight: an idle engine
 * never keeps a thread alive, as a net.Socket that is not connecting would not.
 */
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
  int epfd;
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref results; /* keeps the Int32Array alive while `out` points into it */
  int32_t *out;
  size_t pairs;
  napi_async_context context;
  int closing;
  size_t pending; /* connects in flight: the poll is referenced while there are any */
} engine_t;

static void settled(engine_t *e, size_t n) {
  e->pending = n <= e->pending ? e->pending - n : 0;
  if (e->pending == 0) uv_unref((uv_handle_t *)&e->poll);
}

#define CHECK(call)                                                                     \
  do {                                                                                  \
    if ((call) != napi_ok) {                                                            \
      napi_throw_error(env, NULL, "native probe: " #call " failed");                    \
      return NULL;                                                                      \
    }                                                                                   \
  } while (0)

/* One loop turn's outcomes: every ready socket read, reset and closed, then one call into JS. */
static void on_ready(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  engine_t *e = poll->data;
  struct epoll_event ready[256];
  int max = e->pairs < 256 ? (int)e->pairs : 256;
  int k = epoll_wait(e->epfd, ready, max, 0);
  if (k <= 0) return;
  for (int i = 0; i < k; i++) {
    int fd = (int)(ready[i].data.u64 >> 32);
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      struct linger reset = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    close(fd); /* also leaves the epoll set: nothing else holds the socket */
    e->out[2 * i] = (int32_t)(ready[i].data.u64 & 0xffffffffu);
    e->out[2 * i + 1] = -err;
  }
  settled(e, (size_t)k);
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, count;
  if (napi_get_reference_value(env, e->callback, &callback) == napi_ok &&
      napi_get_global(env, &global) == napi_ok && napi_create_int32(env, k, &count) == napi_ok)
    /* make_callback, not call_function: the microtasks and ticks it queues run after it. */
    napi_make_callback(env, e->context, global, callback, 1, &count, NULL);
  napi_close_handle_scope(env, scope);
}

static void closed(uv_handle_t *handle) {
  engine_t *e = handle->data;
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

/* open(onBatch(count), results: Int32Array of (id, status) pairs) -> engine */
static napi_value open_(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (argc < 2 ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_int32_array || length < 2) {
    napi_throw_type_error(env, NULL, "native probe: results must be an Int32Array of pairs");
    return NULL;
  }
  engine_t *e = calloc(1, sizeof *e);
  if (!e) {
    napi_throw_error(env, "ENOMEM", "native probe: out of memory");
    return NULL;
  }
  e->env = env;
  e->out = data;
  e->pairs = length / 2;
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

/*
 * connect(engine, id, family, address, port, localAddress?) -> fd, or a negative errno (-EINVAL
 * for an address that is not one; bind's errno negated and offset by 1 << 20 when the bind
 * failed, so the caller can name the syscall).
 */
static napi_value connect_(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
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
  napi_valuetype local = napi_undefined;
  if (argc >= 6) napi_typeof(env, argv[5], &local);
  if (!e) {
    result = -EBADF;
  } else if ((result = address_of(env, argv[3], family, port, &to, &to_len)) != 0) {
  } else if (local == napi_string &&
             (result = address_of(env, argv[5], family, 0, &from, &from_len)) != 0) {
  } else {
    int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      result = -errno;
    } else {
      struct epoll_event ev;
      memset(&ev, 0, sizeof ev);
      ev.events = EPOLLOUT;
      ev.data.u64 = ((uint64_t)(uint32_t)fd << 32) | (uint32_t)id;
      if (from_len && bind(fd, (struct sockaddr *)&from, from_len) != 0) {
        result = -errno - (1 << 20);
        close(fd);
      } else if (connect(fd, (struct sockaddr *)&to, to_len) != 0 && errno != EINPROGRESS) {
        result = -errno;
        close(fd);
      } else if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        result = -errno;
        close(fd);
      } else {
        result = fd;
        if (e->pending++ == 0) uv_ref((uv_handle_t *)&e->poll);
      }
    }
  }
  napi_value out;
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

/* cancel(engine, fd): a connect given up on (its deadline, an abort): closed, never reported. */
static napi_value cancel_(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = argc >= 2 ? engine_of(env, argv[0]) : NULL;
  if (e && napi_get_value_int32(env, argv[1], &fd) == napi_ok && fd >= 0) {
    close(fd);
    settled(e, 1);
  }
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
