#include "proxy/error_page.hpp"

#include <ctime>

#include "proxy/http1_writer.hpp"
#include "proxy/http_headers.hpp"

namespace outpost::http {

std::string html_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string http_date(long long t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm;
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string simple_response(int status, std::string_view content_type, std::string_view body, bool close,
                            bool head_only, std::string_view extra_headers) {
  ResponseHead head;
  head.status = status;
  head.headers.add("Date", http_date(std::time(nullptr)));
  head.headers.add("Content-Type", std::string(content_type));
  head.headers.add("Content-Length", std::to_string(body.size()));
  head.headers.add("Cache-Control", "no-store");
  while (!extra_headers.empty()) {  // "Name: value\r\n" lines
    auto eol = extra_headers.find("\r\n");
    auto line = extra_headers.substr(0, eol);
    extra_headers = eol == std::string_view::npos ? std::string_view{} : extra_headers.substr(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    head.headers.add(std::string(line.substr(0, colon)), std::string(trim_ows(line.substr(colon + 1))));
  }
  Http1Framing framing;
  framing.close = close;
  std::string r = write_response_head(head, framing);
  if (!head_only) r += body;
  return r;
}

std::string error_response(int status, std::string_view detail, std::string_view server_name, bool close,
                           bool head_only) {
  std::string title = std::to_string(status) + " " + reason_phrase(status);
  std::string body = "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body><h1>" + title +
                     "</h1>\n<p>" + html_escape(detail) + "</p>\n<hr><address>" + html_escape(server_name) +
                     "</address></body></html>\n";
  std::string extra = "X-Outpost-Error: " + std::string(detail.substr(0, 200)) + "\r\n";
  for (auto& c : extra)
    if (c == '\r' || c == '\n') c = ' ';
  extra.replace(extra.size() - 2, 2, "\r\n");
  return simple_response(status, "text/html; charset=utf-8", body, close, head_only, extra);
}

}  // namespace outpost::http
