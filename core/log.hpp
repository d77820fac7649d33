// Diagnostic logging (spdlog). Call sites use the spdlog macros / functions directly
// through these thin helpers so the sink can be swapped on SIGHUP.
#pragma once
#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

namespace outpost::log {

// Installs the default logger: file (empty = stderr) at the given level name.
// Returns false and leaves the previous logger if the file cannot be opened.
bool init(const std::string& level, const std::string& file, std::string* error = nullptr);
// Reopens the log file (after rotation); same settings as the last init().
bool reopen(std::string* error = nullptr);

// At most one line per interval for one kind of event (a flood of bad datagrams must not
// flood the log): allow() says whether a line may be written now and, if so, how many were
// held back since the last one (for "N more since the last line"). One thread's object.
class Limiter {
 public:
  Limiter() = default;  // a line per 10 s
  explicit Limiter(std::uint64_t interval_ms) : interval_ms_(interval_ms) {}
  bool allow(std::uint64_t now_ms, std::uint64_t* held_back) {
    if (written_ && now_ms - last_ms_ < interval_ms_) {
      ++held_;
      return false;
    }
    *held_back = held_;
    held_ = 0;
    last_ms_ = now_ms;
    written_ = true;
    return true;
  }

 private:
  std::uint64_t interval_ms_ = 10000;
  std::uint64_t last_ms_ = 0;
  std::uint64_t held_ = 0;
  bool written_ = false;
};

}  // namespace outpost::log
