// The agent's answers, pure: a decoded request and a MIB snapshot in, the Response PDU out.
// Shared by the standalone SNMPv2c agent (snmp_service) and the AgentX subagent (agentx),
// whose master asks the same three questions (RFC 3416 §4.2.1-4.2.3 semantics).
#pragma once
#include <cstddef>
#include <cstdint>

#include "services/snmp/ber.hpp"
#include "services/snmp/mib.hpp"

namespace outpost::snmp {

// Caps on one GETBULK: repetitions and variable bindings in the answer.
inline constexpr std::int32_t kMaxRepetitions = 256;
inline constexpr std::size_t kMaxBulkVarBinds = 1024;
// Answers larger than this (encoded) are tooBig (GET, GETNEXT) or cut short (GETBULK); fits
// the UDP datagram net-snmp's tools accept.
inline constexpr std::size_t kMaxResponseSize = 16384;

// Get, GetNext or GetBulk against `view`: the Response message (same version, community and
// request-id). SetRequest gets notWritable (this agent is read-only).
Message answer(const Message& request, const MibView& view, std::size_t max_size = kMaxResponseSize);

}  // namespace outpost::snmp
