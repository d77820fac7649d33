// Fuzz target for the DNS wire codec: parsing untrusted bytes must never crash, and whatever
// parses must survive a write/parse round trip unchanged.
#include <cstdint>
#include <cstdlib>

#include "resolver/dns_message.hpp"

using namespace outpost::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  Header h;
  parse_header(in, &h);
  Message m;
  if (parse_message(in, &m) != Status::ok) return 0;
  for (auto& rr : m.answer) (void)rr_to_text(rr);
  auto wire = write_message(m);
  Message again;
  if (parse_message(wire, &again) != Status::ok) std::abort();
  // Unless the rewrite had to truncate (uncompressible names can grow a message), nothing changes.
  if (!again.header.tc && !m.header.tc && !(again == m)) std::abort();
  // A second write is byte-identical to the first.
  if (write_message(again) != wire) std::abort();
  // Truncation to a small limit still yields a parsable message.
  auto small = write_message(m, 512);
  // Header, one question of at most 255 bytes and an option-less OPT always fit in 512 bytes.
  if (m.question.size() <= 1 && (!m.edns || m.edns->options.empty()) && small.size() > 512) std::abort();
  if (parse_message(small, &again) != Status::ok) std::abort();
  return 0;
}
