// Presentation forms of types, rcodes and records (for logs, traces and zone files).
#include <arpa/inet.h>

#include <cstdio>

#include "resolver/dns_message.hpp"

namespace outpost::dns {

namespace {
struct TypeName {
  std::uint16_t type;
  const char* name;
};
constexpr TypeName kTypes[] = {{type::A, "A"},         {type::NS, "NS"},     {type::CNAME, "CNAME"}, {type::SOA, "SOA"},
                               {type::PTR, "PTR"},     {type::MX, "MX"},     {type::TXT, "TXT"},     {type::AAAA, "AAAA"},
                               {type::SRV, "SRV"},     {type::DNAME, "DNAME"}, {type::OPT, "OPT"},   {type::DS, "DS"},
                               {type::RRSIG, "RRSIG"}, {type::NSEC, "NSEC"}, {type::DNSKEY, "DNSKEY"},
                               {type::NSEC3, "NSEC3"}, {type::NSEC3PARAM, "NSEC3PARAM"}, {type::ANY, "ANY"}};

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 32 || u >= 127) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03u", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}
}  // namespace

std::string type_to_text(std::uint16_t t) {
  for (auto& e : kTypes)
    if (e.type == t) return e.name;
  return "TYPE" + std::to_string(t);
}

std::optional<std::uint16_t> type_from_text(std::string_view s) {
  std::string up(s);
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (auto& e : kTypes)
    if (up == e.name) return e.type;
  if (up.rfind("TYPE", 0) == 0 && up.size() > 4 && up.size() <= 9) {
    unsigned long v = 0;
    for (std::size_t i = 4; i < up.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(up[i]))) return std::nullopt;
      v = v * 10 + static_cast<unsigned long>(up[i] - '0');
    }
    if (v <= 65535) return static_cast<std::uint16_t>(v);
  }
  return std::nullopt;
}

std::string rcode_to_text(std::uint16_t r) {
  static const char* names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
  if (r < 6) return names[r];
  return "RCODE" + std::to_string(r);
}

std::string rdata_to_text(const ResourceRecord& rr) {
  return std::visit(
      [&](const auto& d) -> std::string {
        using T = std::decay_t<decltype(d)>;
        char buf[INET6_ADDRSTRLEN];
        if constexpr (std::is_same_v<T, RdataA>) {
          inet_ntop(AF_INET, d.addr.data(), buf, sizeof buf);
          return buf;
        } else if constexpr (std::is_same_v<T, RdataAaaa>) {
          inet_ntop(AF_INET6, d.addr.data(), buf, sizeof buf);
          return buf;
        } else if constexpr (std::is_same_v<T, RdataName>) {
          return d.name.to_text();
        } else if constexpr (std::is_same_v<T, RdataSoa>) {
          return d.mname.to_text() + " " + d.rname.to_text() + " " + std::to_string(d.serial) + " " +
                 std::to_string(d.refresh) + " " + std::to_string(d.retry) + " " + std::to_string(d.expire) + " " +
                 std::to_string(d.minimum);
        } else if constexpr (std::is_same_v<T, RdataMx>) {
          return std::to_string(d.preference) + " " + d.exchange.to_text();
        } else if constexpr (std::is_same_v<T, RdataSrv>) {
          return std::to_string(d.priority) + " " + std::to_string(d.weight) + " " + std::to_string(d.port) + " " +
                 d.target.to_text();
        } else if constexpr (std::is_same_v<T, RdataTxt>) {
          std::string out;
          for (auto& s : d.strings) {
            if (!out.empty()) out += ' ';
            out += quote(s);
          }
          return out;
        } else {
          std::string out = "\\# " + std::to_string(d.bytes.size());
          if (!d.bytes.empty()) out += " ";
          for (auto b : d.bytes) {
            std::snprintf(buf, sizeof buf, "%02x", b);
            out += buf;
          }
          return out;
        }
      },
      rr.rdata);
}

std::string rr_to_text(const ResourceRecord& rr) {
  std::string cls = rr.cls == kClassIN ? "IN" : "CLASS" + std::to_string(rr.cls);
  return rr.name.to_text() + "\t" + std::to_string(rr.ttl) + "\t" + cls + "\t" + type_to_text(rr.type) + "\t" +
         rdata_to_text(rr);
}

}  // namespace outpost::dns
