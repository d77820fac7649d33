#include "proxy/http1_writer.hpp"

#include <cstdio>

#include "core/uv_write.hpp"

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

std::string write_request_head(const RequestHead& head) {
  std::string out;
  out.reserve(512);
  out += head.method;
  out += ' ';
  out += head.target;
  out += " HTTP/1.1\r\nHost: ";
  out += head.authority;
  out += "\r\n";
  head.headers.serialize(out);
  if (head.chunked) {  // the client's codings go on as sent ("gzip, chunked" stays so)
    out += "Transfer-Encoding: ";
    if (!head.transfer_codings.empty()) out += head.transfer_codings + ", ";
    out += "chunked\r\n";
  }
  out += "\r\n";
  return out;
}

Slice chunk_size_line(std::size_t n) {
  char b[24];
  int len = std::snprintf(b, sizeof b, "%zx\r\n", n);
  return slice_of(std::string_view(b, static_cast<std::size_t>(len)));
}

Slice chunk_end() { return slice_of("\r\n"); }
Slice last_chunk() { return slice_of("0\r\n\r\n"); }

void append_via(HeaderList& h, int major, int minor, const std::string& name) {
  // Ours goes last, in one field with any earlier ones (RFC 9110 §7.6.3).
  std::string via;
  if (h.has("Via")) {
    via = h.joined("Via");
    h.remove("Via");
    via.append(", ");
  }
  via.reserve(via.size() + 5 + name.size());
  via.push_back(static_cast<char>('0' + major % 10));
  via.push_back('.');
  via.push_back(static_cast<char>('0' + minor % 10));
  via.push_back(' ');
  via.append(name);
  h.add("Via", std::move(via));
}

}  // namespace outpost::http
