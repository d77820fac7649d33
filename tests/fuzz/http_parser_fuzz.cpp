// Fuzz target for the HTTP/1.x codec (requests and responses): untrusted bytes must never
// crash it, and how the input is split into reads must not change what is parsed (the
// same heads, bodies and verdict whether the bytes arrive at once or in two pieces).
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
    log += "H" + h.method + " " + h.target + " " + std::to_string(h.status) + " " + std::to_string(h.headers.size());
    for (auto& x : h.headers) log += "|" + x.name + ":" + x.value;
    return 0;
  }
  int on_message_body(Slice s) override {
    log += "B";
    log.append(s.data, s.size);
    return 0;
  }
  int on_message_end() override {
    log += "E";
    return 0;
  }
};

std::string run(HttpParser::Type type, const std::uint8_t* data, std::size_t size, std::size_t split) {
  Trace t;
  HttpParser p(type, {512, 2048}, &t);
  std::size_t pos = 0;
  for (std::size_t end : {split, size}) {
    if (end <= pos) continue;
    ChunkRef c = ChunkRef::make(end - pos);
    c->append(reinterpret_cast<const char*>(data + pos), end - pos);
    auto r = p.feed(c, c->data(), c->size());
    if (r.kind == ParseResult::kError) {
      if (r.status != 400 && r.status != 414 && r.status != 431 && r.status != 505 && r.status != 502) std::abort();
      t.log += "X" + std::to_string(r.status);
      return t.log;
    }
    if (r.kind != ParseResult::kOk) {
      t.log += "P";
      return t.log;
    }
    pos = end;
  }
  return t.log;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  auto type = (data[0] & 1) ? HttpParser::Type::kResponse : HttpParser::Type::kRequest;
  std::size_t split = 1 + data[1] % (size - 1);
  data += 2;
  size -= 2;
  if (split > size) split = size;
  std::string whole = run(type, data, size, size);
  std::string pieces = run(type, data, size, split);
  // Size limits are checked per callback, so an error may surface at a different byte; the
  // verdict (error or not) and everything parsed before it must agree.
  auto verdict = [](const std::string& s) { return s.find('X') != std::string::npos; };
  if (verdict(whole) != verdict(pieces)) std::abort();
  if (!verdict(whole) && whole != pieces) std::abort();
  return 0;
}
