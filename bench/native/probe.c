/*
 * bench:peers' native floor: a TCP connect check with its connect in C, for the one question the
 * JavaScript floor cannot answer: how much of a check's CPU in node is the probe's JavaScript
 * (the handle, its request, the call into JS for each event), and how much the kernel's. Not
 * part of ipvs-warden; built only by bench/peers.sh when BENCH_PEERS names it.
 *
 * One epoll set of its own, watched by one uv_poll_t in node's loop: a connect is socket(2),
 * connect(2) and one EPOLL_CTL_ADD; when the set is ready, every finished connect is read
 * (getsockopt SO_ERROR), reset (SO_LINGER 0, as ipvs-warden's checks end) and closed in C, and
 * JavaScript is called once for all of them with (id, status) pairs in a shared Int32Array.
 */
#define NAPI_VERSION 8
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
} engine_t;

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, NULL, "native probe: " #call " failed");             \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

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
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, count;
  if (napi_get_reference_value(env, e->callback, &callback) == napi_ok &&
      napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, k, &count) == napi_ok)
    /* make_callback, not call_function: the microtasks and ticks it queues run after it. */
    napi_make_callback(env, e->context, global, callback, 1, &count, NULL);
  napi_close_handle_scope(env, scope);
}

/* open(onBatch(count), results: Int32Array of pairs) -> engine */
static napi_value open_(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  size_t length;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_int32_array || length < 2) {
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
  CHECK(napi_create_string_utf8(env, "native-probe", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &e->context));
  uv_poll_start(&e->poll, UV_READABLE, on_ready);
  CHECK(napi_create_external(env, e, NULL, NULL, &engine));
  return engine;
}

static engine_t *engine_of(napi_env env, napi_value value) {
  void *e = NULL;
  if (napi_get_value_external(env, value, &e) != napi_ok) return NULL;
  return e;
}

/* connect(engine, id, IPv4 address as a uint32 in host order, port) -> fd, or -errno */
static napi_value connect_(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = engine_of(env, argv[0]);
  int32_t id, port;
  uint32_t address;
  CHECK(napi_get_value_int32(env, argv[1], &id));
  CHECK(napi_get_value_uint32(env, argv[2], &address));
  CHECK(napi_get_value_int32(env, argv[3], &port));
  int result;
  int fd = e ? socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
  if (fd < 0) {
    result = e ? -errno : -EBADF;
  } else {
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(address);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT;
    ev.data.u64 = ((uint64_t)(uint32_t)fd << 32) | (uint32_t)id;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0 && errno != EINPROGRESS) {
      result = -errno;
      close(fd);
    } else if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      result = -errno;
      close(fd);
    } else {
      result = fd;
    }
  }
  napi_value out;
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

/* cancel(fd): a connect given up on (its deadline): closed, and never reported. */
static napi_value cancel_(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (fd >= 0) close(fd);
  return NULL;
}

static void closed(uv_handle_t *handle) {
  engine_t *e = handle->data;
  close(e->epfd);
  free(e);
}

/* close(engine): the loop no longer waits on it. */
static napi_value close_(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = engine_of(env, argv[0]);
  if (!e || uv_is_closing((uv_handle_t *)&e->poll)) return NULL;
  napi_delete_reference(env, e->callback);
  napi_delete_reference(env, e->results);
  napi_async_destroy(env, e->context);
  uv_close((uv_handle_t *)&e->poll, closed);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor members[] = {
      {"open", NULL, open_, NULL, NULL, NULL, napi_default, NULL},
      {"connect", NULL, connect_, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, cancel_, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 4, members) != napi_ok) return NULL;
  return exports;
}
