// Fuzz target for the HTTP/1.x codec (requests and responses): untrusted bytes must never
// crash it, and how the input is split into reads must not change what is parsed (the
// same heads, bodies and verdict whether the bytes arrive at once, one byte at a time or
// in random pieces).
//
// Input: byte 0 bit 0 = response parser, bit 1 = end of input (finish()) after the bytes;
// byte 1 seeds the read splits; the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/http_parser.hpp"

using namespace outpost;
using namespace outpost::http;

namespace {
struct Trace : ParserListener {
  std::string log;
  int on_message_head(MessageHead& h) override {
    log += "H" + h.method + " " + h.target + " " + std::to_string(h.status) + " " + std::to_string(h.chunked) + " " +
           h.transfer_codings + " " + std::to_string(h.headers.size());
    for (auto& x : h.headers) log += "|" + x.name + ":" + x.value;
    log += "\n";
    return 0;
  }
  int on_message_body(Slice s) override {
    log.append(s.data, s.size);  // no per-slice marker: slices follow the reads
    return 0;
  }
  int on_message_end() override {
    log += "E";
    return HPE_PAUSED;  // as the callers do: one message at a time
  }
};

// Feeds [data, data + size) cut at `cuts`, resuming after each pause as the callers do.
std::string run(HttpParser::Type type, const std::uint8_t* data, std::size_t size, std::vector<std::size_t> cuts,
                bool at_eof) {
  Trace t;
  HttpParser p(type, {512, 2048}, &t);
  cuts.push_back(size);
  std::size_t pos = 0;
  for (std::size_t end : cuts) {
    if (end <= pos) continue;
    ChunkRef c = ChunkRef::make(end - pos);
    c->append(reinterpret_cast<const char*>(data + pos), end - pos);
    std::size_t off = 0;
    while (off < c->size()) {
      auto r = p.feed(c, c->data() + off, c->size() - off);
      if (r.consumed > c->size() - off) std::abort();
      off += r.consumed;
      if (r.kind == ParseResult::kPaused) {
        p.resume();
        continue;
      }
      if (r.kind == ParseResult::kError) {
        if (r.status != 400 && r.status != 414 && r.status != 431 && r.status != 505 && r.status != 502) std::abort();
        if (type == HttpParser::Type::kResponse && r.status == 400) std::abort();
        return t.log + "X";
      }
      if (r.kind == ParseResult::kUpgrade) return t.log + "U" + std::to_string(pos + off);
    }
    pos = end;
  }
  if (at_eof) t.log += p.finish().kind == ParseResult::kError ? "X" : "F";
  return t.log;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  auto type = (data[0] & 1) ? HttpParser::Type::kResponse : HttpParser::Type::kRequest;
  bool at_eof = (data[0] & 2) != 0;
  bool bytewise = (data[1] & 0xf0) == 0x10;  // seeds 0x10-0x1f: one byte per read
  std::uint32_t seed = data[1] * 2654435761u + 1;
  data += 2;
  size -= 2;
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < size; ++i) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    if (bytewise || (seed & 7) == 0) cuts.push_back(i);
  }
  // Errors are found at the same byte however the reads fall (the line and chunked
  // checks go byte by byte; llhttp gets the same bytes), so the whole trace must agree.
  if (run(type, data, size, {}, at_eof) != run(type, data, size, cuts, at_eof)) std::abort();
  return 0;
}
