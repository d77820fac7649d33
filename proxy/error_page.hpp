// Responses Outpost generates itself: error pages and small local endpoints.
#pragma once
#include <string>
#include <string_view>

namespace outpost::http {

// A complete HTTP/1.1 response with a short HTML body explaining `detail`.
// `close` adds "Connection: close". `head_only` omits the body (HEAD requests).
std::string error_response(int status, std::string_view detail, std::string_view server_name, bool close,
                           bool head_only = false);

// A complete response with the given content type and body.
std::string simple_response(int status, std::string_view content_type, std::string_view body, bool close,
                            bool head_only = false, std::string_view extra_headers = {});

// HTML-escapes text for inclusion in an error page.
std::string html_escape(std::string_view s);

// RFC 9110 IMF-fixdate for `t` (seconds since the epoch).
std::string http_date(long long t);

}  // namespace outpost::http
