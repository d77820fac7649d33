#include "app/ca_command.hpp"

#include <iostream>

#include "tls/ca.hpp"

namespace outpost {

void add_ca_command(CLI::App& cli, CaCommand& c) {
  auto* ca = cli.add_subcommand("ca", "The local CA for HTTPS interception");
  ca->require_subcommand(1);
  c.init = ca->add_subcommand("init", "Create the CA: a certificate and a private key (mode 0600)");
  c.init->add_option("--cert", c.cert_file, "CA certificate file to write (PEM)")->capture_default_str();
  c.init->add_option("--key", c.key_file, "CA private key file to write (PEM)")->capture_default_str();
  c.init->add_flag("--rsa", c.rsa, "RSA 2048 instead of EC P-256");
  c.init->add_option("--name", c.name, "Common name (default: Outpost interception CA (<host name>))");
  c.init->add_flag("--force", c.force, "Replace existing files");
  c.show = ca->add_subcommand("show", "Print the CA's fingerprint and how to trust it");
  c.show->add_option("--cert", c.cert_file, "CA certificate file (PEM)")->capture_default_str();
}

int run_ca_command(const CaCommand& c) {
  std::string error;
  if (c.init && c.init->parsed()) {
    tls::CaOptions o{c.cert_file, c.key_file, c.rsa ? tls::KeyType::kRsa2048 : tls::KeyType::kEcP256, c.name, 3650,
                     c.force};
    if (!tls::create_ca(o, &error)) {
      std::cerr << "outpost ca init: " << error << "\n";
      return 1;
    }
    std::cout << "outpost ca init: wrote " << c.cert_file << " and " << c.key_file << " (keep the key secret)\n";
  } else if (!(c.show && c.show->parsed())) {
    return -1;
  }
  auto info = tls::describe_certificate(c.cert_file, &error);
  if (!info) {
    std::cerr << "outpost ca show: " << error << "\n";
    return 1;
  }
  const std::string& f = c.cert_file;
  std::cout << "CA certificate: " << f << (info->is_ca ? "" : "  (WARNING: not a CA certificate)") << "\n"
            << "subject:        " << info->subject << "\n"
            << "valid:          " << info->not_before << " to " << info->not_after << "\n"
            << "SHA-256:        " << info->sha256_fingerprint << "\n\n"
            << "Clients that should accept Outpost's intercepted HTTPS must trust this certificate:\n"
            << "  curl:              curl --cacert " << f << " (and --proxy-cacert for Outpost's TLS listener)\n"
            << "  Chromium, Firefox: certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n outpost-ca -i " << f << "\n"
            << "                     (libnss3-tools; the profile's own database for Firefox)\n"
            << "  Debian system:     cp " << f << " /usr/local/share/ca-certificates/outpost-ca.crt && "
            << "update-ca-certificates\n";
  return 0;
}

}  // namespace outpost
