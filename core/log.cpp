#include "core/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace outpost::log {
namespace {
std::mutex mu;
std::string cur_level = "info", cur_file;
}

bool init(const std::string& level, const std::string& file, std::string* error) {
  std::lock_guard lk(mu);
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (file.empty()) {
      logger = std::make_shared<spdlog::logger>("outpost", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>("outpost", std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
    }
  } catch (const spdlog::spdlog_ex& e) {
    if (error) *error = e.what();
    return false;
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  cur_level = level;
  cur_file = file;
  return true;
}

bool reopen(std::string* error) {
  std::string level, file;
  {
    std::lock_guard lk(mu);
    level = cur_level;
    file = cur_file;
  }
  return init(level, file, error);
}

}  // namespace outpost::log
