// The deterministic write storm shared by the crash writer process and the crash test:
// round r's operations and the exact bytes each version of each object must have.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace outpost::cache::crash {

struct Op {
  enum Kind { kPut, kErase } kind;
  std::string key;
  unsigned version;  // kPut: 1 or 2
};

inline constexpr int kOpsPerRound = 1500;
inline constexpr int kAckEvery = 20;  // the writer flushes and prints "ack <n>" after every 20 ops

inline std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

inline std::string content(const std::string& key, unsigned version) {
  std::uint64_t h = mix(std::hash<std::string>{}(key) + version);
  std::size_t n = 16 + h % 6000;
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(mix(h + i / 8) >> (8 * (i % 8)));
  return s;
}

inline std::string meta(const std::string& key, unsigned version) { return key + "#v" + std::to_string(version); }

inline std::vector<Op> round_ops(int round) {
  std::vector<Op> ops;
  auto key = [&](int i) {
    std::string k = "r";  // appended piecewise: GCC 12's -Wrestrict misfires on "lit" + string
    k += std::to_string(round);
    k += '-';
    k += std::to_string(i);
    return k;
  };
  for (int i = 0; i < kOpsPerRound; ++i) {
    if (i % 7 == 6) ops.push_back({Op::kPut, key(i - 3), 2});       // overwrite
    else if (i % 11 == 10) ops.push_back({Op::kErase, key(i - 5), 0});
    else ops.push_back({Op::kPut, key(i), 1});
  }
  return ops;
}

// Key -> version (absent keys are not in the map) after the first n operations.
inline std::map<std::string, unsigned> state_after(const std::vector<Op>& ops, std::size_t n) {
  std::map<std::string, unsigned> s;
  for (std::size_t i = 0; i < n && i < ops.size(); ++i) {
    if (ops[i].kind == Op::kPut) s[ops[i].key] = ops[i].version;
    else s.erase(ops[i].key);
  }
  return s;
}

}  // namespace outpost::cache::crash
