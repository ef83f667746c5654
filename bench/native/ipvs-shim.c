/*
 * bench:peers:host (BENCH_HOST=1) runs keepalived's checker on a host whose kernel has no IPVS.
 * keepalived finds no IPVS generic netlink family there and falls back to IPVS's socket options,
 * which fail with ENOPROTOOPT, and its checker exits. Loaded with LD_PRELOAD, this answers those
 * options alone: IP_VS_SO_GET_* with a version and an empty table, IP_VS_SO_SET_* with success.
 * The checks themselves run as they always do. The numbers are <linux/ip_vs.h>'s.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define IP_VS_BASE_CTL (64 + 1024 + 64) /* IP_VS_BASE_CTL */
#define IP_VS_SO_SET_MAX (IP_VS_BASE_CTL + 15) /* IP_VS_SO_SET_ZERO */
#define IP_VS_SO_GET_VERSION IP_VS_BASE_CTL
#define IP_VS_SO_GET_INFO (IP_VS_BASE_CTL + 1)
#define IP_VS_SO_GET_MAX (IP_VS_BASE_CTL + 8) /* IP_VS_SO_GET_DAEMON */
#define IP_VS_VERSION_CODE 0x010201 /* 1.2.1, as the kernel reports it */
#define IP_VS_CONN_TAB_SIZE 4096

typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);

int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  static getsockopt_fn real;
  if (level == SOL_IP && name >= IP_VS_BASE_CTL && name <= IP_VS_SO_GET_MAX && val && len) {
    memset(val, 0, *len);
    if (name == IP_VS_SO_GET_VERSION)
      snprintf(val, *len, "IP Virtual Server version 1.2.1 (size=%d)", IP_VS_CONN_TAB_SIZE);
    else if (name == IP_VS_SO_GET_INFO && *len >= 3 * sizeof(unsigned)) {
      /* struct ip_vs_getinfo: version, size, num_services */
      unsigned *info = val;
      info[0] = IP_VS_VERSION_CODE;
      info[1] = IP_VS_CONN_TAB_SIZE;
    }
    return 0;
  }
  if (!real) real = (getsockopt_fn)dlsym(RTLD_NEXT, "getsockopt");
  return real(fd, level, name, val, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  static setsockopt_fn real;
  if (level == SOL_IP && name >= IP_VS_BASE_CTL && name <= IP_VS_SO_SET_MAX) return 0;
  if (!real) real = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
  return real(fd, level, name, val, len);
}
