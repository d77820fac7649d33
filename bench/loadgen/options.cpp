#include "bench/loadgen/options.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/net_address.hpp"

namespace loadgen {

Options::Options(int argc, char** argv, int first, std::initializer_list<std::string_view> known) {
  for (int i = first; i < argc; i += 2) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--" || std::find(known.begin(), known.end(), arg.substr(2)) == known.end())
      throw UsageError("unknown option " + std::string(arg));
    if (i + 1 >= argc) throw UsageError(std::string(arg) + " needs a value");
    if (!values_.emplace(std::string(arg.substr(2)), argv[i + 1]).second)
      throw UsageError(std::string(arg) + " given twice");
  }
}

const std::string* Options::find(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

bool Options::has(std::string_view name) const { return find(name) != nullptr; }

std::string Options::text(std::string_view name) const {
  if (const std::string* v = find(name)) return *v;
  throw UsageError("--" + std::string(name) + " is required");
}

std::uint64_t Options::integer(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                               std::uint64_t max) const {
  const std::string* v = find(name);
  return v ? ranged_integer("--" + std::string(name), *v, min, max) : fallback;
}

double Options::real(std::string_view name, double fallback, double min, double max) const {
  const std::string* v = find(name);
  return v ? ranged_real("--" + std::string(name), *v, min, max) : fallback;
}

sockaddr_in Options::loopback(std::string_view name) const {
  std::string v = text(name);
  auto addr = parse_loopback(v);
  if (!addr) throw UsageError("--" + std::string(name) + " wants 127.x.y.z:port (loopback only), not '" + v + "'");
  return *addr;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return n;
}

std::optional<double> parse_double(std::string_view text) {
  double x = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || x != x) return std::nullopt;
  return x;
}

namespace {

std::string number_text(std::uint64_t n) { return std::to_string(n); }
std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

template <typename T>
T in_range(std::string_view what, std::string_view text, std::optional<T> value, T min, T max, const char* noun) {
  if (!value || *value < min || *value > max)
    throw UsageError(std::string(what) + " wants " + noun + " in " + number_text(min) + ".." + number_text(max) +
                     ", not '" + std::string(text) + "'");
  return *value;
}

}  // namespace

std::uint64_t ranged_integer(std::string_view what, std::string_view text, std::uint64_t min, std::uint64_t max) {
  return in_range(what, text, parse_u64(text), min, max, "an integer");
}

double ranged_real(std::string_view what, std::string_view text, double min, double max) {
  return in_range(what, text, parse_double(text), min, max, "a number");
}

std::optional<sockaddr_in> parse_loopback(std::string_view text) {
  auto ep = outpost::Endpoint::parse(text);
  sockaddr_storage ss;
  socklen_t len;
  if (!ep || ep->port == 0 || !ep->to_sockaddr(&ss, &len) || ss.ss_family != AF_INET) return std::nullopt;
  sockaddr_in sin;
  std::memcpy(&sin, &ss, sizeof sin);
  if ((ntohl(sin.sin_addr.s_addr) >> 24) != 127) return std::nullopt;
  return sin;
}

}  // namespace loadgen
