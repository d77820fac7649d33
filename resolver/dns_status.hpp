// Result of decoding untrusted DNS bytes: bad input is a status, never an exception.
#pragma once
#include <cstdint>

namespace outpost::dns {

enum class Status : std::uint8_t {
  ok,
  truncated,        // the message ends inside a field
  bad_label_type,   // label type 0b01 / 0b10 (extended / reserved)
  bad_pointer,      // compression pointer outside the message or not strictly backwards
  too_many_pointers,
  label_too_long,
  name_too_long,
  bad_rdata,        // rdata length does not match the type's layout
  bad_opt,          // OPT not at the root, more than one OPT, or OPT outside the additional section
  trailing_data,
  too_large,        // more records than a message can plausibly hold
};

const char* to_string(Status s);

}  // namespace outpost::dns
