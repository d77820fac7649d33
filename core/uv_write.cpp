#include "core/uv_write.hpp"

namespace outpost {
namespace {
struct WriteReq {
  uv_write_t req;
  std::vector<Slice> slices;
  WriteDone done;
  void* owner;
};

// uv_buf_t views of slices: on the stack for the usual few, on the heap beyond.
class BufList {
 public:
  explicit BufList(const std::vector<Slice>& slices) {
    if (slices.size() > kInline) {
      heap_.resize(slices.size());
      bufs_ = heap_.data();
    }
    for (std::size_t i = 0; i < slices.size(); ++i) {
      bufs_[i] = uv_buf_init(const_cast<char*>(slices[i].data), static_cast<unsigned>(slices[i].size));
      bytes_ += slices[i].size;
    }
    count_ = static_cast<unsigned>(slices.size());
  }
  BufList(const BufList&) = delete;
  BufList& operator=(const BufList&) = delete;
  const uv_buf_t* bufs() const { return bufs_; }
  unsigned count() const { return count_; }
  std::size_t bytes() const { return bytes_; }

 private:
  static constexpr std::size_t kInline = 16;
  uv_buf_t inline_[kInline];
  std::vector<uv_buf_t> heap_;
  uv_buf_t* bufs_ = inline_;
  unsigned count_ = 0;
  std::size_t bytes_ = 0;
};
}  // namespace

int write_slices(uv_stream_t* stream, std::vector<Slice> slices, WriteDone done, void* owner) {
  auto* w = new WriteReq{{}, std::move(slices), done, owner};
  BufList bufs(w->slices);
  w->req.data = w;
  int rc = uv_write(&w->req, stream, bufs.bufs(), bufs.count(), [](uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    if (w->done) w->done(w->owner, status);
    delete w;
  });
  if (rc != 0) delete w;
  return rc;
}

int write_slices_now(uv_stream_t* stream, std::vector<Slice>& slices, WriteDone done, void* owner) {
  if (uv_stream_get_write_queue_size(stream) != 0 || slices.empty())
    return write_slices(stream, std::move(slices), done, owner);
  int n;
  std::size_t total;
  {
    BufList bufs(slices);
    total = bufs.bytes();
    n = uv_try_write(stream, bufs.bufs(), bufs.count());
  }
  if (n == UV_EAGAIN || n == UV_ENOSYS) return write_slices(stream, std::move(slices), done, owner);
  if (n < 0) {
    slices.clear();
    return n;
  }
  if (static_cast<std::size_t>(n) == total) {
    slices.clear();  // the chunks go, the capacity stays with the caller
    return 1;
  }
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
