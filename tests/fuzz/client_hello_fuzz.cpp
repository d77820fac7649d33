// The ClientHello peek (tls/client_hello) on arbitrary bytes: never reads out of bounds, and a
// hello it accepts is accepted again from any longer input (the peek is prefix-stable), and
// "need more" names a length beyond the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tls/client_hello.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto h = outpost::tls::peek_client_hello(in);
  if (h.status == outpost::tls::ClientHello::Status::kDone) {
    if (h.bytes == 0 || h.bytes > size) std::abort();
    auto again = outpost::tls::peek_client_hello(in.substr(0, h.bytes));
    if (again.status != h.status || again.server_name != h.server_name || again.alpn != h.alpn || again.ech != h.ech)
      std::abort();
  }
  if (h.status == outpost::tls::ClientHello::Status::kMalformed && !h.error) std::abort();
  if (h.status == outpost::tls::ClientHello::Status::kNeedMore && h.need <= size) std::abort();
  return 0;
}
