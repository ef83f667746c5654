/*
 * bench:peers:host (BENCH_HOST=1) runs keepalived's checker on a host whose kernel has no IPVS.
 * keepalived finds no IPVS generic netlink family there and falls back to IPVS's socket options,
 * which fail with ENOPROTOOPT, and its checker exits. Loaded with LD_PRELOAD, this answers those
 * options alone: IP_VS_SO_GET_* with a version and an empty table, IP_VS_SO_SET_* with success.
 * The checks themselves run as they always do. The numbers are <linux/ip_vs.h>'s. With
 * IPVS_SHIM_LOG set, each real server deleted (IPv4) is appended to that file as
 * "UNIX-MS ADDRESS:PORT", the moment the kernel's table would have changed: detection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define IP_VS_BASE_CTL (64 + 1024 + 64) /* IP_VS_BASE_CTL */
#define IP_VS_SO_SET_MAX (IP_VS_BASE_CTL + 15) /* IP_VS_SO_SET_ZERO */
#define IP_VS_SO_SET_DELDEST (IP_VS_BASE_CTL + 8)
#define IP_VS_SO_GET_VERSION IP_VS_BASE_CTL
#define IP_VS_SO_GET_INFO (IP_VS_BASE_CTL + 1)
#define IP_VS_SO_GET_MAX (IP_VS_BASE_CTL + 8) /* IP_VS_SO_GET_DAEMON */
#define IP_VS_VERSION_CODE 0x010201 /* 1.2.1, as the kernel reports it */
#define IP_VS_CONN_TAB_SIZE 4096

/* IP_VS_SO_SET_*DEST's argument: struct ip_vs_service_user, then struct ip_vs_dest_user. */
struct svc_user {
  uint16_t protocol;
  uint32_t addr;
  uint16_t port;
  uint32_t fwmark;
  char sched_name[16];
  unsigned flags, timeout;
  uint32_t netmask;
};
struct dest_user {
  uint32_t addr;
  uint16_t port;
  unsigned conn_flags;
  int weight;
  uint32_t u_threshold, l_threshold;
};

static void log_deleted(const void *val, socklen_t len) {
  static int fd = -2;
  if (fd == -2) {
    const char *path = getenv("IPVS_SHIM_LOG");
    fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
  }
  if (fd < 0 || len < sizeof(struct svc_user) + sizeof(struct dest_user)) return;
  struct dest_user dest;
  memcpy(&dest, (const char *)val + sizeof(struct svc_user), sizeof dest);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &dest.addr, ip, sizeof ip);
  dprintf(fd, "%lld %s:%u\n", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, ip,
          ntohs(dest.port));
}

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
  if (level == SOL_IP && name >= IP_VS_BASE_CTL && name <= IP_VS_SO_SET_MAX) {
    if (name == IP_VS_SO_SET_DELDEST && val) log_deleted(val, len);
    return 0;
  }
  if (!real) real = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
  return real(fd, level, name, val, len);
}
