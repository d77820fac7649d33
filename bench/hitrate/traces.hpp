// Request traces for the hit-ratio simulator: synthetic (Zipf, Zipf with one-pass scans, Zipf
// whose popularity shifts) and plain-text trace files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace outpost::hitrate {

struct Request {
  std::uint32_t id;
  std::uint32_t size;  // body bytes
};

struct Trace {
  std::string name;
  std::vector<std::string> keys;  // id -> key
  std::vector<Request> requests;
  std::uint64_t footprint = 0;  // sum of the distinct objects' charges (key + body bytes)
  std::uint32_t max_size = 0;
  std::uint64_t charge(const Request& r) const { return r.size + keys[r.id].size(); }
};

struct SyntheticOptions {
  double alpha = 0.8;
  std::size_t objects = 100000;
  std::size_t requests = 1000000;
  std::uint64_t seed = 1;
  // Scans: every `scan_every` requests, a one-pass scan of `scan_length` objects never seen
  // before or after (0 = none).
  std::size_t scan_every = 0, scan_length = 0;
  // Shifts: every `shift_every` requests the popularity ranking moves by `shift_by` objects,
  // so the hot set is replaced by objects that were cold (0 = none).
  std::size_t shift_every = 0, shift_by = 0;
};

// Zipf(alpha) popularity over shuffled ids, lognormal sizes (median 8 KiB, sigma 1.5, clamped
// to [64 B, 4 MiB]), plus the scans and shifts asked for.
Trace synthetic_trace(const SyntheticOptions& o);

// "timestamp key size" per line; lines that do not parse (or size 0) are skipped.
bool read_trace(const std::string& path, Trace* t);

}  // namespace outpost::hitrate
