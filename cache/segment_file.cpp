#include "cache/segment_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace outpost::cache::detail {

std::string SegmentFile::path_for(const std::string& dir, std::uint64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "/%016llx.seg", static_cast<unsigned long long>(id));
  return dir + name;
}

bool SegmentFile::list(const std::string& dir, std::vector<std::uint64_t>* ids, std::string* error) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (error) *error = dir + ": " + std::strerror(errno);
    return false;
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() != 20 || n.substr(16) != ".seg" || n.find_first_not_of("0123456789abcdef") != 16) continue;
    ids->push_back(std::stoull(n.substr(0, 16), nullptr, 16));
  }
  ::closedir(d);
  std::sort(ids->begin(), ids->end());
  return true;
}

std::unique_ptr<SegmentFile> SegmentFile::create(const std::string& dir, std::uint64_t id, int* err) {
  int fd = ::open(path_for(dir, id).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = errno;
    return nullptr;
  }
  return std::unique_ptr<SegmentFile>(new SegmentFile(fd, id, 0));
}

std::unique_ptr<SegmentFile> SegmentFile::open(const std::string& dir, std::uint64_t id, int* err) {
  int fd = ::open(path_for(dir, id).c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    *err = errno;
    if (fd >= 0) ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<SegmentFile>(new SegmentFile(fd, id, static_cast<std::uint64_t>(st.st_size)));
}

std::unique_ptr<SegmentFile> SegmentFile::resume(const std::string& dir, std::uint64_t id, std::uint64_t size, int* err) {
  int fd = ::open(path_for(dir, id).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    *err = errno;
    if (fd >= 0) ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<SegmentFile>(new SegmentFile(fd, id, size));
}

bool SegmentFile::remove(const std::string& dir, std::uint64_t id) { return ::unlink(path_for(dir, id).c_str()) == 0; }

SegmentFile::~SegmentFile() { ::close(fd_); }

int SegmentFile::append(const iovec* iov, int count, std::uint64_t* offset) {
  std::vector<iovec> rest(iov, iov + count);
  std::uint64_t at = size_;
  std::size_t i = 0;
  while (i < rest.size()) {
    int n = static_cast<int>(std::min<std::size_t>(rest.size() - i, IOV_MAX));
    ssize_t w = ::pwritev(fd_, rest.data() + i, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : ENOSPC;
      if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        // The torn tail stays; recovery skips it (checksums).
      }
      return e;
    }
    at += static_cast<std::uint64_t>(w);
    auto left = static_cast<std::size_t>(w);
    while (i < rest.size() && left >= rest[i].iov_len) left -= rest[i++].iov_len;
    if (left) {
      rest[i].iov_base = static_cast<char*>(rest[i].iov_base) + left;
      rest[i].iov_len -= left;
    }
  }
  *offset = size_;
  size_ = at;
  return 0;
}

bool SegmentFile::read(std::uint64_t offset, void* buf, std::size_t n) const {
  auto* p = static_cast<char*>(buf);
  while (n) {
    ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

bool SegmentFile::read_all(std::vector<unsigned char>* out) const {
  out->resize(size_);
  return read(0, out->data(), size_);
}

void SegmentFile::sync() const { ::fdatasync(fd_); }

}  // namespace outpost::cache::detail
