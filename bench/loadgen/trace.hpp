// Request traces for the replay mode: synthetic ones generated from a seed, or a plain-text
// public trace ("timestamp key size" per line).
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace loadgen {

struct TraceRequest {
  std::uint32_t id;
  std::uint32_t size;
  char kind;        // c, n, s, v, r or l: what the origin says about caching (see origin.cpp)
  bool revalidate;  // send If-None-Match: the client has fetched this object before
  // Kind r (media fetched in pieces): the byte range asked for, inclusive.
  std::uint32_t range_first = 0, range_last = 0;
  // Kind l (varies on Accept-Encoding and Accept-Language): which spelling of those two
  // fields the client sends (replay.cpp's table; some spell the same preferences
  // differently, some differ).
  std::uint8_t variant = 0;
};
inline constexpr unsigned kVariantSpellings = 6;

struct Trace {
  std::vector<TraceRequest> requests;
  std::uint64_t objects = 0;          // distinct objects requested
  std::uint64_t footprint = 0;        // sum of their sizes
  std::uint64_t malformed_lines = 0;  // file traces: lines skipped
};

// SPEC is "synthetic:key=value,..." or "file:PATH" (see the usage text in main.cpp).
// Throws UsageError for a bad spec, an unreadable file or an empty trace.
Trace load_trace(std::string_view spec);

}  // namespace loadgen
