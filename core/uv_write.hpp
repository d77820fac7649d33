// Writing chunk slices to a libuv stream without copying: the write request keeps every
// chunk alive until libuv is done with it.
#pragma once
#include <uv.h>

#include <functional>
#include <vector>

#include "core/chunk.hpp"

namespace outpost {

using WriteDone = void (*)(void* owner, int status);

// Queues slices on the stream; `done(owner, status)` runs when libuv completes the write
// (status < 0 on error or UV_ECANCELED when the stream is closed first). Returns the
// uv_write() result; on failure `done` is not called.
int write_slices(uv_stream_t* stream, std::vector<Slice> slices, WriteDone done, void* owner);

// Like write_slices(), but first writes what the socket takes at once when nothing is queued
// (uv_try_write) and queues only the rest. Returns 1 when everything went out at once: then
// no request was queued and `done` is never called. libuv re-arms the descriptor in epoll
// after every queued write it completes (uv__drain stops POLLOUT even when it was never
// started): two epoll_ctl calls per proxied request that a write the kernel takes at once
// does not need. `slices` is left empty (with its capacity, when nothing was queued).
int write_slices_now(uv_stream_t* stream, std::vector<Slice>& slices, WriteDone done, void* owner);

// Convenience: a slice that owns a copy of `text`.
Slice slice_of(std::string_view text);

}  // namespace outpost
