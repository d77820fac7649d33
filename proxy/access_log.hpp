// The access log: one line per request in Squid's native format
//   time.ms elapsed client code/status bytes method URL user hierarchy/peer type
// Each worker buffers its lines and writes them in batches (at 32 KiB, every second, and
// at shutdown) to one shared file descriptor; reopen() swaps the file underneath (dup2),
// so workers never see a closed descriptor.
#pragma once
#include <uv.h>

#include <string>
#include <string_view>

namespace outpost {

class AccessLogFile {
 public:
  // path: "-" = standard output, "" = disabled. Returns false (with errno text) on failure.
  bool open(const std::string& path, std::string* error);
  bool reopen(std::string* error);
  int fd() const { return fd_; }
  bool enabled() const { return fd_ >= 0; }

 private:
  std::string path_;
  int fd_ = -1;
};

struct AccessLogEntry {
  double start_time = 0;  // seconds since the epoch
  long long elapsed_ms = 0;
  std::string_view client;
  std::string_view code;  // TCP_MISS, TCP_DENIED, TCP_TUNNEL, NONE_NONE ...
  int status = 0;
  unsigned long long bytes = 0;
  std::string_view method;
  std::string_view url;
  std::string_view user;       // the authenticated user, or empty ("-")
  std::string_view hierarchy;  // HIER_DIRECT, HIER_NONE
  std::string_view peer;       // address or "-"
  std::string_view content_type;
};

class AccessLogBuffer {
 public:
  AccessLogBuffer(AccessLogFile& file, uv_loop_t* loop);
  ~AccessLogBuffer();
  void add(const AccessLogEntry& e);
  bool enabled() const { return file_.enabled(); }
  void flush();
  void close();  // flushes and stops the timer

 private:
  AccessLogFile& file_;
  std::string buf_;
  uv_timer_t* timer_ = nullptr;
};

}  // namespace outpost
