// AgentX (RFC 2741) PDUs as a subagent needs them: Open, Register and Close out, the
// master's Response, Get, GetNext and GetBulk in, and the answers to those against a MIB
// snapshot. No I/O (agentx_subagent.hpp owns the connection); decoding is strict and bounded
// (a 20-byte header, payload lengths a multiple of 4 and at most kMaxPayload, OIDs of at most
// 128 sub-identifiers, strings inside their PDU) and fuzzed (tests/fuzz/agentx_fuzz.cpp).
// Outgoing PDUs are always in network byte order (flag NETWORK_BYTE_ORDER); incoming ones are
// read in the order their header's flag names.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "services/snmp/ber.hpp"
#include "services/snmp/mib.hpp"

namespace outpost::snmp::agentx {

enum class PduType : std::uint8_t {
  kOpen = 1,
  kClose = 2,
  kRegister = 3,
  kUnregister = 4,
  kGet = 5,
  kGetNext = 6,
  kGetBulk = 7,
  kTestSet = 8,
  kCommitSet = 9,
  kUndoSet = 10,
  kCleanupSet = 11,
  kNotify = 12,
  kPing = 13,
  kIndexAllocate = 14,
  kIndexDeallocate = 15,
  kAddAgentCaps = 16,
  kRemoveAgentCaps = 17,
  kResponse = 18,
};

inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::uint32_t kMaxPayload = 65536;
inline constexpr std::uint8_t kFlagNonDefaultContext = 0x08;
inline constexpr std::uint8_t kFlagNetworkByteOrder = 0x10;

// Response errors (RFC 2741 §6.2.16).
inline constexpr std::uint16_t kNoError = 0;
inline constexpr std::uint16_t kGenErr = 5;
inline constexpr std::uint16_t kNotWritable = 17;
inline constexpr std::uint16_t kParseError = 266;
inline constexpr std::uint16_t kDuplicateRegistration = 263;

// Close reasons (§6.2.2).
inline constexpr std::uint8_t kReasonShutdown = 5;

struct Header {
  std::uint8_t version = 1;
  PduType type = PduType::kResponse;
  std::uint8_t flags = kFlagNetworkByteOrder;
  std::uint32_t session_id = 0;
  std::uint32_t transaction_id = 0;
  std::uint32_t packet_id = 0;
  std::uint32_t payload_length = 0;
};

// The first kHeaderSize bytes of `data`; false if version is not 1, the type unknown or the
// payload length not a multiple of 4 or over kMaxPayload.
bool parse_header(std::span<const std::uint8_t> data, Header* out, std::string* why);

struct SearchRange {
  Oid start;
  bool include = false;
  Oid end;  // empty: no upper bound
};

// A Get, GetNext or GetBulk PDU's payload.
struct Request {
  Header header;
  std::string context;  // only with kFlagNonDefaultContext
  std::uint16_t non_repeaters = 0;
  std::uint16_t max_repetitions = 0;
  std::vector<SearchRange> ranges;
};
bool parse_request(const Header& h, std::span<const std::uint8_t> payload, Request* out, std::string* why);

// The master's Response to one of ours (its variable bindings are not kept).
struct Response {
  std::uint32_t sys_uptime = 0;
  std::uint16_t error = 0;
  std::uint16_t index = 0;
};
bool parse_response(const Header& h, std::span<const std::uint8_t> payload, Response* out, std::string* why);

std::vector<std::uint8_t> encode_open(std::uint32_t packet_id, std::uint8_t timeout, const Oid& id, std::string_view descr);
std::vector<std::uint8_t> encode_register(std::uint32_t session_id, std::uint32_t packet_id, std::uint8_t timeout,
                                          std::uint8_t priority, const Oid& subtree);
std::vector<std::uint8_t> encode_close(std::uint32_t session_id, std::uint32_t packet_id, std::uint8_t reason);
// A Response to `request` (same session, transaction and packet IDs).
std::vector<std::uint8_t> encode_response(const Header& request, std::uint16_t error, std::uint16_t index,
                                          const std::vector<VarBind>& varbinds);

// The bindings answering a Get, GetNext or GetBulk (§7.2.3) from `view`, bounded like the
// standalone agent's GETBULK (snmp_agent.hpp).
std::vector<VarBind> answer(const Request& request, const MibView& view);

}  // namespace outpost::snmp::agentx
