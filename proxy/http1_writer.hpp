// The one place that writes HTTP/1 messages' framing: response heads (status line, header
// fields, and the fields that belong to this hop: Transfer-Encoding, Connection), request
// heads to origins (request line, Host first, Transfer-Encoding) and chunked framing.
// Everything that answers a client (forwarded responses, cache hits, interim responses,
// local pages) builds a ResponseHead and a framing and calls write_response_head(); every
// request to an origin (forwarded, revalidation, background refresh) builds a RequestHead.
// So per-hop rules such as Via or keep-alive for HTTP/1.0 clients cannot drift between code
// paths.
#pragma once
#include <string>
#include <string_view>

#include "core/chunk.hpp"
#include "proxy/http_headers.hpp"

namespace outpost::http {

struct ResponseHead {
  int status = 200;
  std::string reason;  // empty: the standard phrase
  HeaderList headers;  // end-to-end fields; Content-Length here if the body has one
};

struct Http1Framing {
  bool chunked = false;          // Transfer-Encoding: [transfer_codings, ]chunked
  std::string transfer_codings;  // codings the body still carries, before chunked
  bool close = false;            // Connection: close
  bool client_http10 = false;    // a 1.0 client is told keep-alive explicitly
  bool interim = false;          // a 1xx: no framing fields; a 101 gets "Connection: Upgrade"
};

std::string write_response_head(const ResponseHead& head, const Http1Framing& framing);
// The same, appended to `out` (a caller's reused buffer: no allocation per head).
void append_response_head(std::string& out, const ResponseHead& head, const Http1Framing& framing);

// A request to an origin: always HTTP/1.1, origin-form target, Host first.
struct RequestHead {
  std::string method;
  std::string target;     // origin-form: path and query
  std::string authority;  // the Host field
  HeaderList headers;     // end-to-end fields (no Host, no framing fields)
  bool chunked = false;   // the body goes chunked: Transfer-Encoding: [codings, ]chunked
  std::string transfer_codings;  // codings the body carries, before chunked
};
std::string write_request_head(const RequestHead& head);
// The same in two halves around the caller's own field loop (a forwarded request filters
// the client's fields as it writes them instead of copying the list): the request line and
// Host, then the framing fields and the empty line.
// One field, "Name: value\r\n", for callers that write a head's fields themselves.
void append_field(std::string& out, std::string_view name, std::string_view value);
void begin_request_head(std::string& out, std::string_view method, std::string_view target, std::string_view authority);
void end_request_head(std::string& out, bool chunked, std::string_view transfer_codings);

// Chunked framing (RFC 9112 §7.1): the size line before `n` bytes of data, the CRLF after
// them, and the last chunk (no trailers).
Slice chunk_size_line(std::size_t n);
Slice chunk_end();
Slice last_chunk();

// Via (RFC 9110 §7.6.3): this proxy's entry for a message received as HTTP/major.minor,
// appended to the Via the message carries. Callers skip it when proxy.via is off.
void append_via(HeaderList& h, int major, int minor, const std::string& name);
// This proxy's own Via entry ("1.1 name"), appended to `out`.
void append_via_entry(std::string& out, int major, int minor, std::string_view name);

}  // namespace outpost::http
