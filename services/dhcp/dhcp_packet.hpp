// DHCP messages (RFC 2131) and their options (RFC 2132): parsing and writing, pure (no
// sockets, no clock), fuzzed by tests/fuzz/dhcp_packet_fuzz.cpp.
//
// Parsing is strict about structure and lenient about content: a message shorter than the
// fixed part and the magic cookie, a wrong cookie, a hardware address longer than 16 bytes,
// an option whose length runs past the end of its field, or an option overload (52) that is
// malformed or appears inside the file/sname fields it overloads (a loop) is refused with a
// reason. Options repeated are concatenated (RFC 3396). Messages of any length up to a
// datagram's are read (RFC 2131 allows more than 576 bytes; option 57 says what a client
// takes back).
//
// Writing: the fixed part, the cookie and the options in the order given; if they do not
// fit in the client's maximum message size the rest go into the file and then the sname
// field with option 52 saying so (RFC 2131 §4.1); options longer than 255 bytes are split
// (RFC 3396). A reply is padded to BOOTP's 300 bytes.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace outpost::dhcp {

inline constexpr std::uint32_t kMagicCookie = 0x63825363;
inline constexpr std::size_t kFixedSize = 236;          // op .. file
inline constexpr std::size_t kMinMessage = 240;         // fixed part + cookie
inline constexpr std::size_t kDefaultMaxMessage = 576;  // IP datagram every client takes (RFC 2131)
inline constexpr std::size_t kIpUdpHeaders = 28;
inline constexpr std::uint16_t kBroadcastFlag = 0x8000;

enum class MessageType : std::uint8_t {
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kDecline = 4,
  kAck = 5,
  kNak = 6,
  kRelease = 7,
  kInform = 8,
};
const char* message_type_name(MessageType t);

namespace opt {
inline constexpr std::uint8_t kPad = 0;
inline constexpr std::uint8_t kSubnetMask = 1;
inline constexpr std::uint8_t kRouter = 3;
inline constexpr std::uint8_t kDnsServer = 6;
inline constexpr std::uint8_t kHostName = 12;
inline constexpr std::uint8_t kDomainName = 15;
inline constexpr std::uint8_t kRequestedAddress = 50;
inline constexpr std::uint8_t kLeaseTime = 51;
inline constexpr std::uint8_t kOverload = 52;
inline constexpr std::uint8_t kMessageType = 53;
inline constexpr std::uint8_t kServerId = 54;
inline constexpr std::uint8_t kParameterList = 55;
inline constexpr std::uint8_t kMessage = 56;
inline constexpr std::uint8_t kMaxMessageSize = 57;
inline constexpr std::uint8_t kRenewalTime = 58;
inline constexpr std::uint8_t kRebindingTime = 59;
inline constexpr std::uint8_t kClientId = 61;
inline constexpr std::uint8_t kWpad = 252;
inline constexpr std::uint8_t kEnd = 255;
}  // namespace opt

// IPv4 addresses are host-order integers here.
std::string ipv4_to_string(std::uint32_t a);
std::optional<std::uint32_t> parse_ipv4(const std::string& text);

struct Packet {
  std::uint8_t op = 0;  // 1 request, 2 reply
  std::uint8_t htype = 1;
  std::uint8_t hlen = 6;
  std::uint8_t hops = 0;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  std::uint16_t flags = 0;
  std::uint32_t ciaddr = 0, yiaddr = 0, siaddr = 0, giaddr = 0;
  std::array<std::uint8_t, 16> chaddr{};
  std::array<std::uint8_t, 64> sname{};
  std::array<std::uint8_t, 128> file{};
  // Option code → value (instances of a code concatenated). Pad, End and Overload are not kept.
  std::map<std::uint8_t, std::string> options;
  bool overloaded = false;  // option 52 was present (its fields were read as options)

  const std::string* option(std::uint8_t code) const;
  std::optional<MessageType> message_type() const;
  std::optional<std::uint32_t> option_ipv4(std::uint8_t code) const;
  std::optional<std::uint32_t> option_u32(std::uint8_t code) const;
  // The largest DHCP message (UDP payload) the client accepts: option 57 less the IP and UDP
  // headers, at least 576 less them.
  std::size_t max_reply_size() const;
  // The hardware address as "aa:bb:cc:dd:ee:ff" (hlen bytes).
  std::string hardware_address() const;
};

// Parses a datagram; false with a reason (for the log line) when it is not a DHCP message.
bool parse_packet(std::span<const std::uint8_t> data, Packet* out, std::string* error);

using OptionList = std::vector<std::pair<std::uint8_t, std::string>>;

// Writes `p`'s fixed part (its options map is ignored) and `options` in order, within
// `max_size` bytes (at least kDefaultMaxMessage - kIpUdpHeaders is used). Options that fit
// nowhere are left out; *dropped (if given) counts them.
std::vector<std::uint8_t> write_packet(const Packet& p, const OptionList& options, std::size_t max_size,
                                       std::size_t* dropped = nullptr);

// Option values.
std::string option_u32(std::uint32_t v);
std::string option_ipv4s(const std::vector<std::uint32_t>& addrs);
// "aa:bb:.." from bytes, and back (false on anything else).
std::string hex_colon(std::string_view bytes);
std::optional<std::string> parse_hex_colon(const std::string& text);

}  // namespace outpost::dhcp
