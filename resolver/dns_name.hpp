// Domain names in uncompressed wire form, with RFC 1035 decompression on read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "resolver/dns_status.hpp"

namespace outpost::dns {

inline constexpr std::size_t kMaxNameLength = 255;  // wire bytes, terminating zero included
inline constexpr std::size_t kMaxLabelLength = 63;

// A domain name kept as its wire-format labels ("\3www\7example\3com\0"). The original case
// is kept; equality, hashing and ordering ignore ASCII case.
class Name {
 public:
  Name() : wire_(1, '\0') {}  // the root
  static Name root() { return Name(); }
  // Presentation form ("www.example.com." or without the final dot; "\\." and "\\DDD"
  // escapes). nullopt if a label or the name is too long or a label is empty.
  static std::optional<Name> from_text(std::string_view text);
  // Wire form without compression; nullopt if not a well-formed name.
  static std::optional<Name> from_wire(std::string_view wire);

  const std::string& wire() const { return wire_; }
  std::string to_text() const;
  std::string lowercase_wire() const;
  bool is_root() const { return wire_.size() == 1; }
  unsigned label_count() const;
  // The name with its leftmost label removed (the root stays the root).
  Name parent() const;
  // The last n labels ("www.example.com." with n = 2 gives "example.com.").
  Name suffix(unsigned n) const;
  // The leftmost label's bytes.
  std::string_view first_label() const;
  // True if this name equals `zone` or lies below it.
  bool is_subdomain_of(const Name& zone) const;
  // Prepends a label; false if the result would be too long.
  bool prepend(std::string_view label);
  // Replaces the suffix `from` (which must be a suffix) by `to` (DNAME); nullopt if too long.
  std::optional<Name> replace_suffix(const Name& from, const Name& to) const;

  bool operator==(const Name& o) const;
  bool operator<(const Name& o) const;  // canonical-ish order: by lowercase wire bytes

 private:
  explicit Name(std::string wire) : wire_(std::move(wire)) {}
  std::string wire_;
};

struct NameHash {
  std::size_t operator()(const Name& n) const;
};

// Reads a possibly compressed name at *pos in msg; advances *pos past it. Pointers must point
// strictly backwards (before the label that holds them), which rules out loops.
Status read_name(std::span<const std::uint8_t> msg, std::size_t* pos, Name* out);

}  // namespace outpost::dns
