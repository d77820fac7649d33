// Small libuv and socket helpers shared by the load generator's modes.
#pragma once
#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <string>

namespace loadgen {

// Raises RLIMIT_NOFILE's soft limit to the hard limit, and both to at least `wanted` when
// the process may (root). Returns the soft limit in force afterwards.
std::uint64_t raise_fd_limit(std::uint64_t wanted);

// libuv alloc callback handing out one read buffer per thread (256 KiB): every read is
// consumed inside its read callback, so a loop thread never needs two at once.
void alloc_read_buffer(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);

// Binds and listens on `addr` with SO_REUSEPORT (one socket per loop thread, the kernel
// spreads connections) and adopts the socket into `tcp`. Returns 0 or a libuv error.
int listen_reuseport(uv_loop_t* loop, uv_tcp_t* tcp, const sockaddr_in& addr, uv_connection_cb on_connection);

std::string to_text(const sockaddr_in& addr);

inline uv_handle_t* as_handle(void* h) { return static_cast<uv_handle_t*>(h); }
inline uv_stream_t* as_stream(void* h) { return static_cast<uv_stream_t*>(h); }

}  // namespace loadgen
