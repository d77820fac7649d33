#include "bench/loadgen/net.hpp"

#include <arpa/inet.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/net_address.hpp"
#include "core/worker_pool.hpp"

namespace loadgen {

std::uint64_t raise_fd_limit(std::uint64_t wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < wanted) {
    rlimit more{wanted, wanted};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) return wanted;  // allowed for root only
  }
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

void alloc_read_buffer(uv_handle_t*, std::size_t, uv_buf_t* buf) {
  static thread_local char buffer[256 * 1024];
  *buf = uv_buf_init(buffer, sizeof buffer);
}

int listen_reuseport(uv_loop_t* loop, uv_tcp_t* tcp, const sockaddr_in& addr, uv_connection_cb on_connection) {
  char ip[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  int fd = outpost::open_listen_socket(outpost::Endpoint{ip, ntohs(addr.sin_port)});
  if (fd < 0) return uv_translate_sys_error(-fd);
  uv_tcp_init(loop, tcp);
  if (int rc = uv_tcp_open(tcp, fd); rc != 0) {
    ::close(fd);
    return rc;
  }
  return uv_listen(as_stream(tcp), 4096, on_connection);  // on failure the caller exits
}

std::string to_text(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(addr.sin_port));
}

}  // namespace loadgen
