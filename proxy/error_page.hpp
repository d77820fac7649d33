// Responses Outpost generates itself: error pages and small local endpoints.
#pragma once
#include <string>
#include <string_view>

#include "proxy/http1_writer.hpp"

namespace outpost::http {

// A response Outpost makes itself, before HTTP/1 framing: the head (with Date,
// Content-Type, Content-Length and Cache-Control: no-store) and the body.
struct LocalResponse {
  ResponseHead head;
  std::string body;
};

LocalResponse local_response(int status, std::string_view content_type, std::string body);

// An error response with a short HTML body explaining `detail` (also in X-Outpost-Error).
LocalResponse error_page(int status, std::string_view detail, std::string_view server_name);

// A complete serialized response (head and body) for answers given without a connection
// object (refused clients). `close` adds "Connection: close".
std::string simple_response(int status, std::string_view content_type, std::string_view body, bool close);

// HTML-escapes text for inclusion in an error page.
std::string html_escape(std::string_view s);

// RFC 9110 IMF-fixdate for `t` (seconds since the epoch).
std::string http_date(long long t);

}  // namespace outpost::http
