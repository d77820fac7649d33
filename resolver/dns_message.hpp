// DNS messages (RFC 1035, 3596, 6891): the decoded form, its parser and its wire writer.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "resolver/dns_name.hpp"
#include "resolver/dns_status.hpp"

namespace outpost::dns {

namespace type {
inline constexpr std::uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28,
                               SRV = 33, DNAME = 39, OPT = 41, DS = 43, RRSIG = 46, NSEC = 47, DNSKEY = 48,
                               NSEC3 = 50, NSEC3PARAM = 51, ANY = 255;
}
namespace rcode {
inline constexpr std::uint16_t NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4, REFUSED = 5;
}
namespace opcode {
inline constexpr std::uint8_t QUERY = 0;
}
inline constexpr std::uint16_t kClassIN = 1;
inline constexpr std::uint16_t kEdnsUdpSize = 1232;  // what Outpost advertises (DNS flag day 2020)

std::string type_to_text(std::uint16_t t);
std::optional<std::uint16_t> type_from_text(std::string_view s);
std::string rcode_to_text(std::uint16_t r);

struct RdataA { std::array<std::uint8_t, 4> addr{}; bool operator==(const RdataA&) const = default; };
struct RdataAaaa { std::array<std::uint8_t, 16> addr{}; bool operator==(const RdataAaaa&) const = default; };
// NS, CNAME, PTR, DNAME: a single name.
struct RdataName { Name name; bool operator==(const RdataName&) const = default; };
struct RdataSoa {
  Name mname, rname;
  std::uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;
  bool operator==(const RdataSoa&) const = default;
};
struct RdataMx { std::uint16_t preference = 0; Name exchange; bool operator==(const RdataMx&) const = default; };
struct RdataTxt { std::vector<std::string> strings; bool operator==(const RdataTxt&) const = default; };
struct RdataSrv {
  std::uint16_t priority = 0, weight = 0, port = 0;
  Name target;
  bool operator==(const RdataSrv&) const = default;
};
// Every other type: the bytes as received (RFC 3597).
struct RdataOpaque { std::vector<std::uint8_t> bytes; bool operator==(const RdataOpaque&) const = default; };

using Rdata = std::variant<RdataOpaque, RdataA, RdataAaaa, RdataName, RdataSoa, RdataMx, RdataTxt, RdataSrv>;

struct ResourceRecord {
  Name name;
  std::uint16_t type = 0;
  std::uint16_t cls = kClassIN;
  std::uint32_t ttl = 0;
  Rdata rdata;
  bool operator==(const ResourceRecord&) const = default;
};

struct Question {
  Name name;
  std::uint16_t type = type::A;
  std::uint16_t cls = kClassIN;
  bool operator==(const Question&) const = default;
};

struct Header {
  std::uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false, ra = false, ad = false, cd = false;
  std::uint8_t opcode = 0;
  std::uint16_t rcode = 0;  // 12 bits once the OPT record's extended bits are merged in
  bool operator==(const Header&) const = default;
};

struct Edns {
  std::uint16_t udp_size = kEdnsUdpSize;
  std::uint8_t version = 0;
  bool do_bit = false;
  std::vector<std::uint8_t> options;  // carried opaquely
  bool operator==(const Edns&) const = default;
};

struct Message {
  Header header;
  std::vector<Question> question;
  std::vector<ResourceRecord> answer, authority, additional;  // OPT is not kept here
  std::optional<Edns> edns;
  bool operator==(const Message&) const = default;
};

// Parses a whole message. On failure *out is unspecified; a header that could be read is still
// filled in (so a server can answer FORMERR with the right ID).
Status parse_message(std::span<const std::uint8_t> wire, Message* out);
// Only the fixed 12-byte header (for FORMERR replies to unparsable queries).
Status parse_header(std::span<const std::uint8_t> wire, Header* out, std::uint16_t* qdcount = nullptr);

// Writes a message with name compression. If the result would exceed max_size, records are
// dropped from the end (the OPT record is kept) and TC is set; the question always stays.
std::vector<std::uint8_t> write_message(const Message& m, std::size_t max_size = 65535);

// Extended DNS Errors (RFC 8914): the EDNS option and the INFO-CODEs Outpost gives.
namespace ede {
inline constexpr std::uint16_t kOptionCode = 15;
inline constexpr std::uint16_t STALE_ANSWER = 3;
}  // namespace ede
// Appends an Extended DNS Error option (INFO-CODE, optional EXTRA-TEXT) to e->options.
void add_extended_error(Edns* e, std::uint16_t info_code, std::string_view extra_text = {});

// Builds a query: one question, RD as given, EDNS with kEdnsUdpSize.
Message make_query(std::uint16_t id, const Name& qname, std::uint16_t qtype, bool rd, bool edns = true);

// Presentation form of a record ("www.example. 300 IN A 192.0.2.1").
std::string rr_to_text(const ResourceRecord& rr);
std::string rdata_to_text(const ResourceRecord& rr);

}  // namespace outpost::dns
