#include "proxy/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace outpost {

bool AccessLogFile::open(const std::string& path, std::string* error) {
  path_ = path;
  if (path.empty()) {
    fd_ = -1;
    return true;
  }
  if (path == "-") {
    fd_ = ::dup(STDOUT_FILENO);
    return fd_ >= 0;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = path + ": " + std::strerror(errno);
    return false;
  }
  fd_ = fd;
  return true;
}

bool AccessLogFile::reopen(std::string* error) {
  if (fd_ < 0 || path_ == "-" || path_.empty()) return true;
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = path_ + ": " + std::strerror(errno);
    return false;
  }
  ::dup3(fd, fd_, O_CLOEXEC);  // atomically replaces the file behind fd_
  ::close(fd);
  return true;
}

AccessLogBuffer::AccessLogBuffer(AccessLogFile& file, uv_loop_t* loop) : file_(file) {
  if (!file_.enabled()) return;
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<AccessLogBuffer*>(t->data)->flush(); }, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

AccessLogBuffer::~AccessLogBuffer() { close(); }

void AccessLogBuffer::close() {
  flush();
  if (timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
}

void AccessLogBuffer::add(const AccessLogEntry& e) {
  if (!file_.enabled()) return;
  char head[128];
  long long secs = static_cast<long long>(e.start_time);
  int ms = static_cast<int>((e.start_time - static_cast<double>(secs)) * 1000);
  int n = std::snprintf(head, sizeof head, "%lld.%03d %6lld ", secs, ms, e.elapsed_ms);
  buf_.append(head, static_cast<std::size_t>(n));
  buf_ += e.client;
  buf_ += ' ';
  buf_ += e.code;
  n = std::snprintf(head, sizeof head, "/%03d %llu ", e.status, e.bytes);
  buf_.append(head, static_cast<std::size_t>(n));
  buf_ += e.method.empty() ? "NONE" : e.method;
  buf_ += ' ';
  // URLs come from the network: never let them break the one-line-per-request format.
  for (char c : e.url.empty() ? std::string_view("error:invalid-request") : e.url)
    buf_ += (c == ' ' || c == '\n' || c == '\r' || c == '\t') ? '+' : c;
  buf_ += ' ';
  // The user as Squid writes it: URL-encoded (a name may hold spaces or any byte).
  if (e.user.empty()) buf_ += '-';
  for (unsigned char c : e.user) {
    if (c > 0x20 && c < 0x7f && c != '%') {
      buf_ += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      buf_ += '%';
      buf_ += kHex[c >> 4];
      buf_ += kHex[c & 15];
    }
  }
  buf_ += ' ';
  buf_ += e.hierarchy;
  buf_ += '/';
  buf_ += e.peer.empty() ? "-" : e.peer;
  buf_ += ' ';
  if (e.content_type.empty()) buf_ += '-';
  for (char c : e.content_type)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') buf_ += c;
  buf_ += '\n';
  if (buf_.size() >= 32 * 1024) flush();
}

void AccessLogBuffer::flush() {
  if (buf_.empty() || !file_.enabled()) return;
  const char* p = buf_.data();
  std::size_t left = buf_.size();
  while (left > 0) {
    ssize_t w = ::write(file_.fd(), p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;  // a full disk or closed pipe loses log lines, never requests
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  buf_.clear();
}

}  // namespace outpost
