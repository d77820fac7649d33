#include "proxy/http_headers.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace outpost::http {

bool iequals_same_size(const char* a, const char* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    char x = a[i], y = b[i];
    if (x == y) continue;
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return o;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_list(std::string_view value) {
  std::vector<std::string_view> out;
  for_each_list_item(value, [&out](std::string_view item) { out.push_back(item); });
  return out;
}

const std::string* HeaderList::find(std::string_view name) const {
  for (const auto& h : *this)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

std::string HeaderList::joined(std::string_view name) const {
  std::string out;
  for (const auto& h : *this) {
    if (!iequals(h.name, name)) continue;
    if (!out.empty()) out += ", ";
    out += h.value;
  }
  return out;
}

bool HeaderList::has_token(std::string_view name, std::string_view token) const {
  for (const auto& h : *this) {
    if (!iequals(h.name, name)) continue;
    for (auto item : split_list(h.value))
      if (iequals(item, token)) return true;
  }
  return false;
}

void HeaderList::remove(std::string_view name) {
  remove_if([&](const Header& h) { return iequals(h.name, name); });
}

void HeaderList::set(std::string_view name, std::string value) {
  remove(name);
  add(std::string(name), std::move(value));
}

namespace {
// The fixed hop-by-hop names, by length first: most fields are ruled out without comparing.
bool fixed_hop_by_hop(std::string_view n) {
  switch (n.size()) {
    case 2: return iequals(n, "TE");
    case 7: return iequals(n, "Trailer") || iequals(n, "Upgrade");
    case 10: return iequals(n, "Connection") || iequals(n, "Keep-Alive");
    case 16: return iequals(n, "Proxy-Connection");
    case 17: return iequals(n, "Transfer-Encoding");
    case 18: return iequals(n, "Proxy-Authenticate");
    case 19: return iequals(n, "Proxy-Authorization");
    default: return false;
  }
}
}  // namespace

HopByHop::HopByHop(const HeaderList& h) {
  for (const auto& f : h) {
    if (!fixed_hop_by_hop(f.name)) continue;
    any_ = true;
    if (!iequals(f.name, "Connection") && !iequals(f.name, "Proxy-Connection")) continue;
    for_each_list_item(f.value, [this](std::string_view item) {
      if (inline_count_ < std::size(inline_)) inline_[inline_count_++] = item;
      else more_.push_back(item);
    });
  }
}

bool HopByHop::contains(std::string_view name) const {
  if (!any_) return false;
  if (fixed_hop_by_hop(name)) return true;
  for (std::size_t i = 0; i < inline_count_; ++i)
    if (iequals(name, inline_[i])) return true;
  for (auto l : more_)
    if (iequals(name, l)) return true;
  return false;
}

void HeaderList::remove_hop_by_hop() {
  // One pass for the fixed names (each field's name looked at once), a second only for the
  // names a Connection field lists; the listed names point into the list, so nothing moves
  // before every field is decided.
  std::uint64_t small = 0;
  std::vector<bool> large;
  if (n_ > 64) large.resize(n_);
  bool any = false;
  auto mark = [&](std::size_t i) {
    any = true;
    if (i < 64) small |= std::uint64_t{1} << i;
    else large[i] = true;
  };
  auto marked = [&](std::size_t i) { return i < 64 ? (small >> i) & 1 : static_cast<bool>(large[i]); };
  bool listed = false;  // a Connection field names a field that is not hop-by-hop anyway
  for (std::size_t i = 0; i < n_; ++i) {
    if (!fixed_hop_by_hop(h_[i].name)) continue;
    mark(i);
    if (!listed && (iequals(h_[i].name, "Connection") || iequals(h_[i].name, "Proxy-Connection")))
      for_each_list_item(h_[i].value, [&listed](std::string_view item) {
        // "keep-alive", by far the usual, names a field removed already: no second pass.
        if (!fixed_hop_by_hop(item)) listed = true;
      });
  }
  if (!any) return;
  if (listed) {
    HopByHop hop(*this);
    for (std::size_t i = 0; i < n_; ++i)
      if (!marked(i) && hop.contains(h_[i].name)) mark(i);
  }
  // remove_if asks about each field once, in order: the count is the field's index.
  remove_if([&marked, i = std::size_t{0}](const Header&) mutable { return marked(i++); });
}

void HeaderList::serialize(std::string& out) const {
  std::size_t start = out.size(), n = start;
  for (const auto& h : *this) n += h.name.size() + h.value.size() + 4;
  out.resize(n);  // sized once, then filled with plain copies
  char* d = out.data() + start;
  for (const auto& h : *this) {
    std::memcpy(d, h.name.data(), h.name.size());
    d += h.name.size();
    *d++ = ':';
    *d++ = ' ';
    std::memcpy(d, h.value.data(), h.value.size());
    d += h.value.size();
    *d++ = '\r';
    *d++ = '\n';
  }
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 407: return "Proxy Authentication Required";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

}  // namespace outpost::http
