#include "proxy/http1_writer.hpp"

#include <charconv>
#include <cstdio>

#include "core/uv_write.hpp"

namespace outpost::http {
namespace {
// "Transfer-Encoding: [codings, ]chunked" (the codings the body still carries come first).
void append_chunked_coding(std::string& out, std::string_view codings) {
  out += "Transfer-Encoding: ";
  if (!codings.empty()) out.append(codings).append(", ", 2);
  out += "chunked\r\n";
}
}  // namespace

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ", 2).append(value).append("\r\n", 2);
}

std::string write_response_head(const ResponseHead& head, const Http1Framing& framing) {
  std::string out;
  append_response_head(out, head, framing);
  return out;
}

void append_response_head(std::string& out, const ResponseHead& head, const Http1Framing& framing) {
  out.reserve(out.size() + 512);
  char status[16];
  auto [end, ec] = std::to_chars(status, status + sizeof status, head.status);
  out.append("HTTP/1.1 ", 9).append(status, end).push_back(' ');
  if (head.reason.empty()) out.append(reason_phrase(head.status));
  else out.append(head.reason);
  out.append("\r\n", 2);
  head.headers.serialize(out);
  if (framing.interim && head.status == 101) out += "Connection: Upgrade\r\n";  // RFC 9110 §7.8
  if (!framing.interim) {
    if (framing.chunked) append_chunked_coding(out, framing.transfer_codings);
    if (framing.close) out += "Connection: close\r\n";
    else if (framing.client_http10) out += "Connection: keep-alive\r\n";
  }
  out.append("\r\n", 2);
}

void begin_request_head(std::string& out, std::string_view method, std::string_view target, std::string_view authority) {
  out.reserve(out.size() + 512);
  out.append(method).push_back(' ');
  out.append(target).append(" HTTP/1.1\r\nHost: ").append(authority).append("\r\n", 2);
}

void end_request_head(std::string& out, bool chunked, std::string_view transfer_codings) {
  if (chunked) append_chunked_coding(out, transfer_codings);  // the client's codings go on as sent
  out.append("\r\n", 2);
}

std::string write_request_head(const RequestHead& head) {
  std::string out;
  begin_request_head(out, head.method, head.target, head.authority);
  head.headers.serialize(out);
  end_request_head(out, head.chunked, head.transfer_codings);
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
  append_via_entry(via, major, minor, name);
  h.add("Via", std::move(via));
}

void append_via_entry(std::string& out, int major, int minor, std::string_view name) {
  out.reserve(out.size() + 5 + name.size());
  out.push_back(static_cast<char>('0' + major % 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + minor % 10));
  out.push_back(' ');
  out.append(name);
}

}  // namespace outpost::http
