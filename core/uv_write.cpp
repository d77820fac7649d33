#include "core/uv_write.hpp"

namespace outpost {
namespace {
struct WriteReq {
  uv_write_t req;
  std::vector<Slice> slices;
  WriteDone done;
  void* owner;
};
constexpr std::size_t kInlineBufs = 16;
}  // namespace

int write_slices(uv_stream_t* stream, std::vector<Slice> slices, WriteDone done, void* owner) {
  auto* w = new WriteReq{{}, std::move(slices), done, owner};
  uv_buf_t inline_bufs[kInlineBufs];
  std::vector<uv_buf_t> heap_bufs;
  uv_buf_t* bufs = inline_bufs;
  if (w->slices.size() > kInlineBufs) {
    heap_bufs.resize(w->slices.size());
    bufs = heap_bufs.data();
  }
  for (std::size_t i = 0; i < w->slices.size(); ++i)
    bufs[i] = uv_buf_init(const_cast<char*>(w->slices[i].data), static_cast<unsigned>(w->slices[i].size));
  w->req.data = w;
  int rc = uv_write(&w->req, stream, bufs, static_cast<unsigned>(w->slices.size()), [](uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    if (w->done) w->done(w->owner, status);
    delete w;
  });
  if (rc != 0) delete w;
  return rc;
}

int write_slices_now(uv_stream_t* stream, std::vector<Slice> slices, WriteDone done, void* owner) {
  if (uv_stream_get_write_queue_size(stream) != 0 || slices.empty())
    return write_slices(stream, std::move(slices), done, owner);
  uv_buf_t inline_bufs[kInlineBufs];
  std::vector<uv_buf_t> heap_bufs;
  uv_buf_t* bufs = inline_bufs;
  if (slices.size() > kInlineBufs) {
    heap_bufs.resize(slices.size());
    bufs = heap_bufs.data();
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < slices.size(); ++i) {
    bufs[i] = uv_buf_init(const_cast<char*>(slices[i].data), static_cast<unsigned>(slices[i].size));
    total += slices[i].size;
  }
  int n = uv_try_write(stream, bufs, static_cast<unsigned>(slices.size()));
  if (n == UV_EAGAIN || n == UV_ENOSYS) return write_slices(stream, std::move(slices), done, owner);
  if (n < 0) return n;
  if (static_cast<std::size_t>(n) == total) return 1;
  // Partly written: queue the rest.
  std::size_t skip = static_cast<std::size_t>(n), first = 0;
  while (skip >= slices[first].size) skip -= slices[first++].size;
  slices.erase(slices.begin(), slices.begin() + static_cast<std::ptrdiff_t>(first));
  slices.front().data += skip;
  slices.front().size -= skip;
  return write_slices(stream, std::move(slices), done, owner);
}

Slice slice_of(std::string_view text) {
  Slice s;
  s.chunk = ChunkRef::copy_of(text);
  s.data = s.chunk->data();
  s.size = text.size();
  return s;
}

}  // namespace outpost
