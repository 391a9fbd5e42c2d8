// SO_ORIGINAL_DST for transparent capture: after iptables REDIRECT sends a connection to the
// proxy's capture port, the kernel still knows where the client meant to go; this reads it.
// The whole addon is this one N-API function: getOriginalDst(fd) -> { address, port, family }.
#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "ERR_ORIGINAL_DST", msg);
  return NULL;
}

static napi_value GetOriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "getOriginalDst(fd): fd must be a non-negative integer");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  char host[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  int family = 4;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len) == 0 && ss.ss_family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)&ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else {
    int err4 = errno;
    len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len) != 0 || ss.ss_family != AF_INET6) {
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", err4 ? err4 : errno);
    }
    struct sockaddr_in6* a = (struct sockaddr_in6*)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    family = 6;
  }
  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, result, "address", v);
  napi_create_int32(env, port, &v);
  napi_set_named_property(env, result, "port", v);
  napi_create_int32(env, family, &v);
  napi_set_named_property(env, result, "family", v);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "getOriginalDst", NAPI_AUTO_LENGTH, GetOriginalDst, NULL, &fn);
  napi_set_named_property(env, exports, "getOriginalDst", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
