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

// The fields live in [0, size()) of a vector whose tail keeps the strings of fields
// cleared or removed earlier: a list reused for message after message (a connection's
// parser, a pooled request) fills those strings again instead of allocating new ones.
// Copies take only the live fields; release_memory() gives the tail back.
class HeaderList {
 public:
  using const_iterator = std::vector<Header>::const_iterator;
  HeaderList() = default;
  HeaderList(const HeaderList& o) : h_(o.begin(), o.end()), n_(o.n_) {}
  HeaderList(HeaderList&& o) noexcept : h_(std::move(o.h_)), n_(o.n_) { o.n_ = 0; }
  HeaderList& operator=(const HeaderList& o) {
    if (this != &o) {
      clear();
      for (const auto& f : o) add_copy(f.name, f.value);
    }
    return *this;
  }
  HeaderList& operator=(HeaderList&& o) noexcept {
    h_ = std::move(o.h_);
    n_ = o.n_;
    o.n_ = 0;
    return *this;
  }

  void add(std::string name, std::string value) {
    if (n_ < h_.size()) {
      h_[n_].name = std::move(name);
      h_[n_].value = std::move(value);
    } else {
      h_.push_back({std::move(name), std::move(value)});
    }
    ++n_;
  }
  // Copies both in place (the parser's path: into a reused field's strings).
  void add_copy(std::string_view name, std::string_view value) {
    if (n_ == h_.size()) h_.emplace_back();
    auto& h = h_[n_++];
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
  // Removes the fields for which `pred(const Header&)` holds, keeping the others' order;
  // `pred` is called once for each field, first to last.
  template <class Pred>
  void remove_if(Pred&& pred) {
    std::size_t out = 0;
    for (std::size_t i = 0; i < n_; ++i)
      if (!pred(h_[i])) {
        if (out != i) swap_fields(out, i);
        ++out;
      }
    n_ = out;
  }
  void set(std::string_view name, std::string value);
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  const_iterator begin() const { return h_.cbegin(); }
  const_iterator end() const { return h_.cbegin() + static_cast<std::ptrdiff_t>(n_); }
  // No fields; their strings are kept for the next message.
  void clear() { n_ = 0; }
  void reserve(std::size_t n) { h_.reserve(n); }
  // No fields and no memory kept.
  void release_memory() {
    std::vector<Header>().swap(h_);
    n_ = 0;
  }

  // Removes the hop-by-hop fields (HopByHop below).
  void remove_hop_by_hop();
  // Appends "Name: value\r\n" for every field.
  void serialize(std::string& out) const;

 private:
  // Swaps whole fields (their strings keep their buffers, so nothing is freed).
  void swap_fields(std::size_t a, std::size_t b) {
    h_[a].name.swap(h_[b].name);
    h_[a].value.swap(h_[b].value);
  }

  std::vector<Header> h_;
  std::size_t n_ = 0;  // live fields: h_[0, n_)
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
