// Memory shared by the proxy's worker processes (--concurrency N), so cluster circuit breakers
// count requests and retries across all workers as Envoy's do across its worker threads.
// createSharedFd(bytes) -> fd of a zero-filled anonymous file (memfd, close-on-exec; the primary
// hands it to each worker as an inherited stdio slot); mapShared(fd, bytes) -> an ArrayBuffer over
// a MAP_SHARED mapping of it, unmapped when the buffer is collected.
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "ERR_SHARED_MEMORY", msg);
  return NULL;
}

static int int_args(napi_env env, napi_callback_info info, size_t want, int64_t* out) {
  size_t argc = want;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return 0;
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_int64(env, argv[i], &out[i]) != napi_ok || out[i] < 0) return 0;
  }
  return 1;
}

static napi_value CreateSharedFd(napi_env env, napi_callback_info info) {
  int64_t a[1];
  if (!int_args(env, info, 1, a) || a[0] == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "createSharedFd(bytes): bytes must be a positive integer");
    return NULL;
  }
  int fd = memfd_create("trellis-shared", MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)a[0]) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ftruncate", err);
  }
  napi_value v;
  napi_create_int32(env, fd, &v);
  return v;
}

static void unmap(napi_env env, void* data, void* hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value MapShared(napi_env env, napi_callback_info info) {
  int64_t a[2];
  if (!int_args(env, info, 2, a) || a[1] == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "mapShared(fd, bytes): fd and bytes must be non-negative integers, bytes > 0");
    return NULL;
  }
  size_t bytes = (size_t)a[1];
  void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, (int)a[0], 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  napi_value buf;
  napi_status st = napi_create_external_arraybuffer(env, p, bytes, unmap, (void*)(uintptr_t)bytes, &buf);
  if (st != napi_ok) {
    munmap(p, bytes);
    napi_throw_error(env, "ERR_SHARED_MEMORY", "this Node.js build does not allow external ArrayBuffers");
    return NULL;
  }
  return buf;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "createSharedFd", NAPI_AUTO_LENGTH, CreateSharedFd, NULL, &fn);
  napi_set_named_property(env, exports, "createSharedFd", fn);
  napi_create_function(env, "mapShared", NAPI_AUTO_LENGTH, MapShared, NULL, &fn);
  napi_set_named_property(env, exports, "mapShared", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
