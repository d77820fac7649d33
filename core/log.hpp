// Diagnostic logging (spdlog). Call sites use the spdlog macros / functions directly
// through these thin helpers so the sink can be swapped on SIGHUP.
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace outpost::log {

// Installs the default logger: file (empty = stderr) at the given level name.
// Returns false and leaves the previous logger if the file cannot be opened.
bool init(const std::string& level, const std::string& file, std::string* error = nullptr);
// Reopens the log file (after rotation); same settings as the last init().
bool reopen(std::string* error = nullptr);

}  // namespace outpost::log
