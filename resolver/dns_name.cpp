#include "resolver/dns_name.hpp"

#include <algorithm>
#include <functional>

namespace outpost::dns {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Offsets of each label's length byte, leftmost first (root's zero byte excluded).
template <typename Fn>
void for_each_label(const std::string& w, Fn fn) {
  std::size_t i = 0;
  while (i < w.size() && w[i] != 0) {
    auto len = static_cast<unsigned char>(w[i]);
    fn(i, std::string_view(w).substr(i + 1, len));
    i += 1 + len;
  }
}

}  // namespace

const char* to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::truncated: return "truncated";
    case Status::bad_label_type: return "bad label type";
    case Status::bad_pointer: return "bad compression pointer";
    case Status::too_many_pointers: return "too many compression pointers";
    case Status::label_too_long: return "label too long";
    case Status::name_too_long: return "name too long";
    case Status::bad_rdata: return "bad rdata";
    case Status::bad_opt: return "bad OPT record";
    case Status::trailing_data: return "trailing data";
    case Status::too_large: return "too many records";
  }
  return "?";
}

std::optional<Name> Name::from_text(std::string_view text) {
  if (text == "." || text.empty()) return Name();
  std::string wire;
  std::string label;
  auto flush = [&]() -> bool {
    if (label.empty() || label.size() > kMaxLabelLength) return false;
    wire.push_back(static_cast<char>(label.size()));
    wire += label;
    label.clear();
    return true;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 1 >= text.size()) return std::nullopt;
      if (i + 3 < text.size() + 0 && std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
          std::isdigit(static_cast<unsigned char>(text[i + 2])) && std::isdigit(static_cast<unsigned char>(text[i + 3]))) {
        int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return std::nullopt;
        label.push_back(static_cast<char>(v));
        i += 3;
      } else {
        label.push_back(text[++i]);
      }
    } else if (c == '.') {
      if (!flush()) return std::nullopt;
      if (i + 1 == text.size()) break;
    } else {
      label.push_back(c);
    }
  }
  if (!label.empty() && !flush()) return std::nullopt;
  wire.push_back('\0');
  if (wire.size() > kMaxNameLength) return std::nullopt;
  return Name(std::move(wire));
}

std::optional<Name> Name::from_wire(std::string_view wire) {
  std::size_t i = 0;
  while (i < wire.size()) {
    auto len = static_cast<unsigned char>(wire[i]);
    if (len == 0) {
      if (i + 1 != wire.size() || wire.size() > kMaxNameLength) return std::nullopt;
      return Name(std::string(wire));
    }
    if (len > kMaxLabelLength) return std::nullopt;
    i += 1 + len;
  }
  return std::nullopt;
}

std::string Name::to_text() const {
  if (is_root()) return ".";
  std::string out;
  for_each_label(wire_, [&](std::size_t, std::string_view label) {
    for (char c : label) {
      auto u = static_cast<unsigned char>(c);
      if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')') {
        out.push_back('\\');
        out.push_back(c);
      } else if (u <= 32 || u >= 127) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\%03u", u);
        out += buf;
      } else {
        out.push_back(c);
      }
    }
    out.push_back('.');
  });
  return out;
}

std::string Name::lowercase_wire() const {
  std::string out = wire_;
  // Length bytes are <= 63, never in 'A'..'Z', so lowering every byte is safe.
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

unsigned Name::label_count() const {
  unsigned n = 0;
  for_each_label(wire_, [&](std::size_t, std::string_view) { ++n; });
  return n;
}

Name Name::parent() const {
  if (is_root()) return *this;
  auto len = static_cast<unsigned char>(wire_[0]);
  return Name(wire_.substr(1 + len));
}

Name Name::suffix(unsigned n) const {
  unsigned total = label_count();
  Name out = *this;
  for (unsigned i = n; i < total; ++i) out = out.parent();
  return out;
}

std::string_view Name::first_label() const {
  if (is_root()) return {};
  return std::string_view(wire_).substr(1, static_cast<unsigned char>(wire_[0]));
}

bool Name::is_subdomain_of(const Name& zone) const {
  if (zone.wire_.size() > wire_.size()) return false;
  // The suffix must start on a label boundary.
  std::size_t start = wire_.size() - zone.wire_.size();
  bool boundary = start == 0 || zone.is_root();
  for_each_label(wire_, [&](std::size_t off, std::string_view) {
    if (off == start) boundary = true;
  });
  if (!boundary) return false;
  for (std::size_t i = 0; i < zone.wire_.size(); ++i)
    if (lower(wire_[start + i]) != lower(zone.wire_[i])) return false;
  return true;
}

bool Name::prepend(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelLength || wire_.size() + 1 + label.size() > kMaxNameLength) return false;
  std::string w;
  w.push_back(static_cast<char>(label.size()));
  w += label;
  w += wire_;
  wire_ = std::move(w);
  return true;
}

std::optional<Name> Name::replace_suffix(const Name& from, const Name& to) const {
  if (!is_subdomain_of(from)) return std::nullopt;
  std::string w = wire_.substr(0, wire_.size() - from.wire_.size()) + to.wire_;
  if (w.size() > kMaxNameLength) return std::nullopt;
  return Name(std::move(w));
}

bool Name::operator==(const Name& o) const {
  if (wire_.size() != o.wire_.size()) return false;
  for (std::size_t i = 0; i < wire_.size(); ++i)
    if (lower(wire_[i]) != lower(o.wire_[i])) return false;
  return true;
}

bool Name::operator<(const Name& o) const { return lowercase_wire() < o.lowercase_wire(); }

std::size_t NameHash::operator()(const Name& n) const { return std::hash<std::string>()(n.lowercase_wire()); }

Status read_name(std::span<const std::uint8_t> msg, std::size_t* pos, Name* out) {
  std::string wire;
  std::size_t i = *pos;
  std::size_t end_of_name = 0;  // where the caller continues (after the first pointer)
  bool jumped = false;
  // Each pointer must go strictly below the start of the label sequence that holds it, so the
  // walk is bounded; the hop count is a second, cheap guard.
  std::size_t limit = i;
  unsigned hops = 0;
  for (;;) {
    if (i >= msg.size()) return Status::truncated;
    std::uint8_t len = msg[i];
    if ((len & 0xC0) == 0xC0) {
      if (i + 1 >= msg.size()) return Status::truncated;
      std::size_t target = (static_cast<std::size_t>(len & 0x3F) << 8) | msg[i + 1];
      if (target >= limit) return Status::bad_pointer;
      if (++hops > 126) return Status::too_many_pointers;
      if (!jumped) end_of_name = i + 2;
      jumped = true;
      i = target;
      limit = target;
      continue;
    }
    if ((len & 0xC0) != 0) return Status::bad_label_type;
    if (len == 0) {
      wire.push_back('\0');
      if (wire.size() > kMaxNameLength) return Status::name_too_long;
      if (!jumped) end_of_name = i + 1;
      break;
    }
    if (i + 1 + len > msg.size()) return Status::truncated;
    if (wire.size() + 1 + len + 1 > kMaxNameLength) return Status::name_too_long;
    wire.push_back(static_cast<char>(len));
    wire.append(reinterpret_cast<const char*>(msg.data() + i + 1), len);
    i += 1 + len;
  }
  *out = *Name::from_wire(wire);
  *pos = end_of_name;
  return Status::ok;
}

}  // namespace outpost::dns
