#include "services/control/control_config.hpp"

#include "core/config_section.hpp"
#include "tls/tls_context.hpp"

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
  c.tls_listen = s.endpoints("tls_listen", {});
  c.tls_certificate = s.string("tls_certificate", "");
  c.tls_key = s.string("tls_key", "");
  c.tls_ca = s.string("tls_ca", "");
  c.ctl_certificate = s.string("ctl_certificate", "");
  c.ctl_key = s.string("ctl_key", "");
  c.tls_server_name = s.string("tls_server_name", "outpost-control");
  if (c.tls_server_name.empty()) s.fail("tls_server_name", "expected the name in the server's certificate");
  if (c.ctl_certificate.empty() != c.ctl_key.empty())
    s.fail(c.ctl_key.empty() ? "ctl_key" : "ctl_certificate", "ctl_certificate and ctl_key go together");
  if (!c.tls_listen.empty()) {
    if (c.tls_certificate.empty()) s.fail("tls_certificate", "tls_listen needs the server's certificate (PEM file)");
    if (c.tls_key.empty()) s.fail("tls_key", "tls_listen needs the server's private key (PEM file)");
    if (c.tls_ca.empty())
      s.fail("tls_ca", "tls_listen needs the CA that signs the clients' certificates (mutual TLS is not optional)");
    std::string why;
    if (!tls::ServerContext::create({c.tls_certificate, c.tls_key, {}, c.tls_ca}, &why))
      s.fail("tls_certificate", "cannot use " + c.tls_certificate + " with " + c.tls_key + " and CA " + c.tls_ca +
                                    ": " + why);
  }
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("control", &parse_section); }

}  // namespace outpost::control
