// HTTP header fields: an ordered list with case-insensitive names, and the hop-by-hop
// rules of RFC 9110 §7.6.1 that a proxy applies before forwarding a message.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::http {

// ASCII case-insensitive equality (field names, tokens). Inline: header lookups call it for
// every field, and most differ in length.
bool iequals_same_size(const char* a, const char* b, std::size_t n);
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && iequals_same_size(a.data(), b.data(), a.size());
}
std::string to_lower(std::string_view s);  // ASCII only (names, schemes, hosts)
std::string_view trim_ows(std::string_view s);

struct Header {
  std::string name;
  std::string value;
};

class HeaderList {
 public:
  void add(std::string name, std::string value) { h_.push_back({std::move(name), std::move(value)}); }
  // Copies both in place (the parser's path: no temporaries to move around).
  void add_copy(std::string_view name, std::string_view value) {
    auto& h = h_.emplace_back();
    h.name.assign(name);
    h.value.assign(value);
  }
  // First value of `name`, or nullptr.
  const std::string* find(std::string_view name) const;
  // All values of `name` joined with ", " (RFC 9110 §5.3 list combination).
  std::string joined(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  // True when a comma-separated list header holds `token` (case-insensitive).
  bool has_token(std::string_view name, std::string_view token) const;
  void remove(std::string_view name);
  void set(std::string_view name, std::string value);
  std::size_t size() const { return h_.size(); }
  auto begin() const { return h_.begin(); }
  auto end() const { return h_.end(); }
  std::vector<Header>& raw() { return h_; }

  // Removes the hop-by-hop fields (HopByHop below).
  void remove_hop_by_hop();
  // Appends "Name: value\r\n" for every field.
  void serialize(std::string& out) const;

 private:
  std::vector<Header> h_;
};

// The hop-by-hop fields of one message (RFC 9110 §7.6.1): Connection and every name it
// lists, Keep-Alive, Proxy-Connection (and the names it lists), TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authorization, Proxy-Authenticate. Holds views into
// `h`, which must outlive it and stay unchanged.
class HopByHop {
 public:
  explicit HopByHop(const HeaderList& h);
  bool any() const { return any_; }  // the message has at least one such field
  bool contains(std::string_view name) const;

 private:
  bool any_ = false;
  std::size_t inline_count_ = 0;
  std::string_view inline_[8];           // the listed names, without allocating
  std::vector<std::string_view> more_;  // past eight
};

// Splits a comma-separated header value into trimmed, non-empty elements.
std::vector<std::string_view> split_list(std::string_view value);
// The same elements handed to `f` one by one (no list allocated).
template <class F>
void for_each_list_item(std::string_view value, F&& f) {
  while (!value.empty()) {
    auto comma = value.find(',');
    auto item = trim_ows(value.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

const char* reason_phrase(int status);

}  // namespace outpost::http
