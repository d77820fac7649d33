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

Slice slice_of(std::string_view text) {
  Slice s;
  s.chunk = ChunkRef::copy_of(text);
  s.data = s.chunk->data();
  s.size = text.size();
  return s;
}

}  // namespace outpost
