#include "proxy/http1_writer.hpp"

namespace outpost::http {

std::string write_response_head(const ResponseHead& head, const Http1Framing& framing) {
  std::string out;
  out.reserve(512);
  out += "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += head.reason.empty() ? std::string(reason_phrase(head.status)) : head.reason;
  out += "\r\n";
  head.headers.serialize(out);
  if (!framing.interim) {
    if (framing.chunked) {
      out += "Transfer-Encoding: ";
      if (!framing.transfer_codings.empty()) out += framing.transfer_codings + ", ";
      out += "chunked\r\n";
    }
    if (framing.close) out += "Connection: close\r\n";
    else if (framing.client_http10) out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  return out;
}

void append_via(HeaderList& h, int major, int minor, const std::string& name) {
  std::string via = h.joined("Via");
  h.remove("Via");
  h.add("Via", (via.empty() ? "" : via + ", ") + std::to_string(major) + "." + std::to_string(minor) + " " + name);
}

}  // namespace outpost::http
