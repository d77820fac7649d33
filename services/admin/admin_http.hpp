// The admin endpoint's HTTP/1.1, as small and strict as its two pages allow: one request per
// connection, GET or HEAD of /metrics or /health, no body, answered with Connection: close.
// Services may not use proxy/'s parser (docs/DESIGN.md), and they need none of it.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace outpost::admin {

enum class Page { kNone, kMetrics, kHealth };

struct Request {
  int status = 0;  // 0: a good request for `page`; else the error to answer (400, 404, 405, 505)
  Page page = Page::kNone;
  bool head = false;   // HEAD: answer without a body
  std::string reason;  // why it was refused, for the log
  // The path (without query) and the Host field, also for a 404: a page a service adds
  // (AdminService::set_own_pages) may answer it.
  std::string path;
  std::string host;
};

// Longest request head accepted; a longer one is answered 431.
inline constexpr std::size_t kMaxRequestHead = 8192;

// Parses one request head, `head` running through its blank line (CRLF CRLF). Request line
// `METHOD SP /target SP HTTP/1.x`, header lines `name: value`, every line ending in CRLF; no
// obs-fold, no control characters, no request body (Content-Length other than 0 or any
// Transfer-Encoding is a 400). Then a method other than GET or HEAD is a 405, and a path
// other than /metrics or /health (the query is ignored) a 404.
Request parse_request(std::string_view head);

// A whole response, closing the connection: status line, Content-Type, Content-Length,
// Cache-Control: no-store, Connection: close, `extra_headers` ("Name: value\r\n" lines), and
// the body unless `head_only`.
std::string make_response(int status, std::string_view content_type, std::string_view body, bool head_only = false,
                          std::string_view extra_headers = {});

// The text/plain answer for an error status ("404 Not Found\n" and so on).
std::string error_response(int status, bool head_only = false);

}  // namespace outpost::admin
