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

LocalResponse local_response(int status, std::string_view content_type, std::string body) {
  LocalResponse r;
  r.head.status = status;
  r.head.headers.add("Date", http_date(std::time(nullptr)));
  r.head.headers.add("Content-Type", std::string(content_type));
  r.head.headers.add("Content-Length", std::to_string(body.size()));
  r.head.headers.add("Cache-Control", "no-store");
  r.body = std::move(body);
  return r;
}

std::string simple_response(int status, std::string_view content_type, std::string_view body, bool close) {
  auto r = local_response(status, content_type, std::string(body));
  Http1Framing framing;
  framing.close = close;
  return write_response_head(r.head, framing) + r.body;
}

LocalResponse error_page(int status, std::string_view detail, std::string_view server_name) {
  std::string title = std::to_string(status) + " " + reason_phrase(status);
  std::string body = "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body><h1>" + title +
                     "</h1>\n<p>" + html_escape(detail) + "</p>\n<hr><address>" + html_escape(server_name) +
                     "</address></body></html>\n";
  auto r = local_response(status, "text/html; charset=utf-8", std::move(body));
  std::string why(detail.substr(0, 200));
  for (auto& c : why)
    if (c == '\r' || c == '\n') c = ' ';
  r.head.headers.add("X-Outpost-Error", std::move(why));
  return r;
}

}  // namespace outpost::http
