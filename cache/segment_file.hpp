// Internal: one fixed-budget, append-only log segment file ("<dir>/<16 hex digits>.seg").
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace outpost::cache::detail {

class SegmentFile {
 public:
  static std::string path_for(const std::string& dir, std::uint64_t id);
  // Segment ids found in `dir`, ascending; false + *error if the directory cannot be read.
  static bool list(const std::string& dir, std::vector<std::uint64_t>* ids, std::string* error);
  static std::unique_ptr<SegmentFile> create(const std::string& dir, std::uint64_t id, int* err);
  static std::unique_ptr<SegmentFile> open(const std::string& dir, std::uint64_t id, int* err);
  // Opens an existing segment for appending after its first `size` bytes (cutting the rest).
  static std::unique_ptr<SegmentFile> resume(const std::string& dir, std::uint64_t id, std::uint64_t size, int* err);
  static bool remove(const std::string& dir, std::uint64_t id);
  SegmentFile(const SegmentFile&) = delete;
  ~SegmentFile();

  // Appends the buffers at the end; *offset = where they start. On failure the file is cut
  // back to its previous size and errno is returned (ENOSPC, EIO, ...); 0 on success.
  int append(const iovec* iov, int count, std::uint64_t* offset);
  bool read(std::uint64_t offset, void* buf, std::size_t n) const;
  bool read_all(std::vector<unsigned char>* out) const;
  void sync() const;
  std::uint64_t id() const { return id_; }
  std::uint64_t size() const { return size_; }

 private:
  SegmentFile(int fd, std::uint64_t id, std::uint64_t size) : fd_(fd), id_(id), size_(size) {}
  int fd_;
  std::uint64_t id_;
  std::uint64_t size_;
};

}  // namespace outpost::cache::detail
