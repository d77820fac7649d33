#include "services/admin/admin_http.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace outpost::admin {

namespace {

bool is_tchar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return u < 0x80;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

// Field values: visible ASCII, obs-text, space and tab.
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u == '\t' || u >= 0x20 ? u != 0x7f : false;
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

Request bad(int status, std::string reason) {
  Request r;
  r.status = status;
  r.reason = std::move(reason);
  return r;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

}  // namespace

Request parse_request(std::string_view head) {
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") return bad(400, "incomplete request head");
  head.remove_suffix(2);  // the blank line; every line left ends in CRLF
  auto next_line = [&head](std::string_view* line) {
    auto eol = head.find("\r\n");
    *line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // A bare CR or LF inside a line: not HTTP/1.1 line framing.
    return line->find_first_of("\r\n") == std::string_view::npos;
  };
  std::string_view line;
  if (!next_line(&line)) return bad(400, "bare CR or LF in the request line");
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return bad(400, "request line is not METHOD SP target SP version");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!is_token(method)) return bad(400, "bad method");
  if (target.empty() || target[0] != '/' ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return bad(400, "request target is not an absolute path");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !std::isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7])))
    return bad(400, "bad HTTP version");
  if (version.substr(5, 2) != "1.") return bad(505, "only HTTP/1.x is served");
  std::string host;
  while (!head.empty()) {
    if (!next_line(&line)) return bad(400, "bare CR or LF in a header line");
    if (line.front() == ' ' || line.front() == '\t') return bad(400, "obs-fold header line");
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return bad(400, "bad header line");
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (!is_field_value(value)) return bad(400, "control character in a header value");
    if (iequals(name, "transfer-encoding") || (iequals(name, "content-length") && value != "0"))
      return bad(400, "a request body is not accepted");
    if (iequals(name, "host")) host = std::string(value);
  }
  Request r;
  r.head = method == "HEAD";
  if (method != "GET" && !r.head) return bad(405, "method " + std::string(method) + " not allowed");
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") r.page = Page::kMetrics;
  else if (path == "/health") r.page = Page::kHealth;
  else {
    Request nf = bad(404, "no page " + std::string(path));
    nf.head = r.head;
    nf.path = std::string(path);
    nf.host = std::move(host);
    return nf;
  }
  return r;
}

std::string make_response(int status, std::string_view content_type, std::string_view body, bool head_only,
                          std::string_view extra_headers) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  r += "Content-Type: ";
  r += content_type;
  r += "\r\nContent-Length: " + std::to_string(body.size());
  r += "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  r += extra_headers;
  r += "\r\n";
  if (!head_only) r += body;
  return r;
}

std::string error_response(int status, bool head_only) {
  std::string body = std::to_string(status) + " " + reason_phrase(status) + "\n";
  return make_response(status, "text/plain; charset=utf-8", body, head_only,
                       status == 405 ? "Allow: GET, HEAD\r\n" : "");
}

}  // namespace outpost::admin
