#include "tls/client_hello.hpp"

#include <set>

#include "core/net_address.hpp"

namespace outpost::tls {
namespace {

constexpr std::uint8_t kHandshakeRecord = 22;
constexpr std::uint8_t kClientHelloType = 1;
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint16_t kExtSupportedVersions = 43;
constexpr std::uint16_t kExtEch = 0xfe0d;  // draft-ietf-tls-esni

// A bounds-checked reader over one byte range: every read past the end sets `bad`.
struct Reader {
  std::string_view d;
  std::size_t i = 0;
  bool bad = false;

  bool has(std::size_t n) const { return !bad && d.size() - i >= n; }
  std::uint32_t u(int bytes) {
    if (!has(static_cast<std::size_t>(bytes))) {
      bad = true;
      return 0;
    }
    std::uint32_t v = 0;
    for (int k = 0; k < bytes; ++k) v = v << 8 | static_cast<unsigned char>(d[i++]);
    return v;
  }
  std::string_view take(std::size_t n) {
    if (!has(n)) {
      bad = true;
      return {};
    }
    auto s = d.substr(i, n);
    i += n;
    return s;
  }
  // A vector with a `len_bytes` length prefix.
  Reader sub(int len_bytes) {
    std::size_t n = u(len_bytes);
    return Reader{take(n)};
  }
  bool done() const { return !bad && i == d.size(); }
};

ClientHello fail(ClientHello::Status s, const char* why) {
  ClientHello h;
  h.status = s;
  h.error = why;
  return h;
}

// RFC 6066 §3: a host_name is an ASCII DNS name without a trailing dot, never an IP literal.
bool sni_name_ok(std::string_view n) {
  return is_host_name(n) && n.find_first_not_of("0123456789.") != std::string_view::npos;
}

const char* parse_extensions(Reader exts, ClientHello& h) {
  std::set<std::uint16_t> seen;
  while (!exts.done()) {
    auto type = static_cast<std::uint16_t>(exts.u(2));
    Reader body = exts.sub(2);
    if (exts.bad) return "extension length beyond the hello";
    if (!seen.insert(type).second) return "an extension appears twice";
    switch (type) {
      case kExtServerName: {
        Reader list = body.sub(2);
        if (body.bad || !body.done() || list.d.empty()) return "malformed server_name";
        while (!list.done()) {
          auto name_type = list.u(1);
          auto name = list.take(list.u(2));
          if (list.bad) return "malformed server_name";
          if (name_type != 0) continue;  // only host_name is defined; others are skipped
          if (!h.server_name.empty()) return "two host names in server_name";
          if (!sni_name_ok(name)) return "server_name is not a host name";
          h.server_name.assign(name);
          for (auto& c : h.server_name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        }
        break;
      }
      case kExtAlpn: {
        Reader list = body.sub(2);
        if (body.bad || !body.done() || list.d.empty()) return "malformed ALPN";
        while (!list.done()) {
          auto proto = list.take(list.u(1));
          if (list.bad || proto.empty()) return "malformed ALPN";
          h.alpn.emplace_back(proto);
        }
        break;
      }
      case kExtEch:
        h.ech = true;
        break;
      case kExtSupportedVersions:
        h.supported_versions = true;
        break;
      default:
        break;
    }
  }
  return nullptr;
}

}  // namespace

ClientHello peek_client_hello(std::string_view data) {
  // Gather the handshake bytes from consecutive handshake records until the first message
  // (which must be the ClientHello) is complete.
  std::string handshake;
  std::size_t pos = 0;
  std::size_t need = 0;  // the whole handshake message's length, once its header is in
  auto more = [](std::size_t until) {  // kNeedMore: nothing changes before `until` bytes
    ClientHello h;
    h.need = until;
    return h;
  };
  for (unsigned records = 0;; ++records) {
    if (records == kMaxClientHelloRecords)
      return fail(ClientHello::Status::kMalformed, "ClientHello split into too many records");
    if (data.size() - pos < 5) {
      if (pos == 0 && !data.empty() && static_cast<unsigned char>(data[0]) != kHandshakeRecord)
        return fail(ClientHello::Status::kNotTls, "not a TLS handshake record");
      return more(pos + 5);
    }
    auto type = static_cast<unsigned char>(data[pos]);
    auto major = static_cast<unsigned char>(data[pos + 1]);
    std::size_t len = static_cast<unsigned char>(data[pos + 3]) << 8 | static_cast<unsigned char>(data[pos + 4]);
    if (type != kHandshakeRecord || major != 3)
      return pos == 0 ? fail(ClientHello::Status::kNotTls, "not a TLS handshake record")
                      : fail(ClientHello::Status::kMalformed, "a non-handshake record inside the ClientHello");
    if (len == 0 || len > (1u << 14)) return fail(ClientHello::Status::kMalformed, "bad TLS record length");
    if (data.size() - pos - 5 < len) return more(pos + 5 + len);
    handshake.append(data.substr(pos + 5, len));
    pos += 5 + len;
    if (handshake.size() > kMaxClientHello + 4) return fail(ClientHello::Status::kMalformed, "ClientHello too large");
    if (handshake.size() >= 4) {
      if (static_cast<unsigned char>(handshake[0]) != kClientHelloType)
        return fail(ClientHello::Status::kMalformed, "the first handshake message is not a ClientHello");
      need = 4 + (static_cast<std::size_t>(static_cast<unsigned char>(handshake[1])) << 16 |
                  static_cast<std::size_t>(static_cast<unsigned char>(handshake[2])) << 8 |
                  static_cast<unsigned char>(handshake[3]));
      if (need > kMaxClientHello + 4) return fail(ClientHello::Status::kMalformed, "ClientHello too large");
      if (handshake.size() >= need) break;
    }
  }
  if (handshake.size() != need)  // another handshake message follows in the same records
    return fail(ClientHello::Status::kMalformed, "data after the ClientHello in its records");

  ClientHello h;
  Reader r{std::string_view(handshake).substr(4)};
  h.legacy_version = static_cast<std::uint16_t>(r.u(2));
  r.take(32);  // random
  Reader session = r.sub(1);
  Reader suites = r.sub(2);
  Reader compression = r.sub(1);
  if (r.bad || session.d.size() > 32 || suites.d.size() < 2 || suites.d.size() % 2 || compression.d.empty())
    return fail(ClientHello::Status::kMalformed, "malformed ClientHello");
  if ((h.legacy_version >> 8) != 3) return fail(ClientHello::Status::kMalformed, "not a TLS version");
  if (!r.done()) {
    Reader exts = r.sub(2);
    if (r.bad || !r.done()) return fail(ClientHello::Status::kMalformed, "malformed extensions");
    if (const char* why = parse_extensions(exts, h)) return fail(ClientHello::Status::kMalformed, why);
  }
  h.status = ClientHello::Status::kDone;
  h.bytes = pos;
  return h;
}

}  // namespace outpost::tls
