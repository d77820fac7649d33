#include "services/control/control_config.hpp"

#include "core/config_section.hpp"

namespace outpost::control {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Control& c = config.control;
  c.socket = s.string("socket", "");
  if (!c.socket.empty() && c.socket.front() != '/') s.fail("socket", "expected an absolute path");
  // sun_path holds 108 bytes with the terminating NUL.
  if (c.socket.size() > 107) s.fail("socket", "path longer than 107 bytes (a Unix socket's limit)");
  std::string mode = s.string("mode", "0600");
  std::size_t used = 0;
  unsigned long m = 0;
  try {
    m = std::stoul(mode, &used, 8);
  } catch (const std::exception&) {
    used = 0;
  }
  if (mode.empty() || used != mode.size() || m > 0777) s.fail("mode", "expected octal permissions such as \"0600\"");
  if ((m & 0600) != 0600) s.fail("mode", "the owner needs read and write permission (0600 at least)");
  if (m & 0007) s.fail("mode", "other users must get no access: whoever can open the socket controls Outpost");
  c.mode = static_cast<unsigned>(m);
  c.timeout = s.number("timeout", 30, 0.01, 3600);
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("control", &parse_section); }

}  // namespace outpost::control
