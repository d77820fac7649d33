// Command-line options of the load generator: "--name value" pairs after the mode, checked
// against the names a mode knows. Any mistake throws UsageError; main() prints it with the
// usage text and exits 2.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace loadgen {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Options {
 public:
  // Parses argv[first..argc); every name must be in `known` and appear at most once.
  Options(int argc, char** argv, int first, std::initializer_list<std::string_view> known);

  bool has(std::string_view name) const;
  std::string text(std::string_view name) const;  // required
  std::uint64_t integer(std::string_view name, std::uint64_t fallback, std::uint64_t min, std::uint64_t max) const;
  double real(std::string_view name, double fallback, double min, double max) const;
  sockaddr_in loopback(std::string_view name) const;  // required, an address in 127.0.0.0/8

 private:
  const std::string* find(std::string_view name) const;
  std::map<std::string, std::string, std::less<>> values_;
};

// Strict parsers (the whole text must be the number); used for options and trace specs.
std::optional<std::uint64_t> parse_u64(std::string_view text);
std::optional<double> parse_double(std::string_view text);
// The same within [min, max]; otherwise throws UsageError naming `what` (an option or key).
std::uint64_t ranged_integer(std::string_view what, std::string_view text, std::uint64_t min, std::uint64_t max);
double ranged_real(std::string_view what, std::string_view text, double min, double max);
// "127.x.y.z:port" with a port in 1..65535; anything off loopback is refused.
std::optional<sockaddr_in> parse_loopback(std::string_view text);

}  // namespace loadgen
