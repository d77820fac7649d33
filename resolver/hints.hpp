// Root hints (Unbound's iter_hints): the IANA root servers, embedded, or a hints file in
// master-file format (tests point this at a fake root; they never use the real one).
#pragma once
#include <optional>
#include <string>

#include "resolver/delegation.hpp"

namespace outpost::dns {

// The root delegation from the embedded IANA hints (named.root).
Delegation builtin_root_hints();
// Parses hints text ("NAME [TTL] [IN] NS|A|AAAA DATA" lines, ';' comments). Returns nullopt and
// sets *error when the text has no root NS with an address or a line is malformed.
std::optional<Delegation> parse_root_hints(const std::string& text, std::string* error);
std::optional<Delegation> load_root_hints_file(const std::string& path, std::string* error);

// RFC 8109: the hints are only a starting point; a priming query (". NS" to a hints server)
// fetches the root's own NS set and addresses. Due when the cache holds no root NS set and no
// recent failure to get one. A cached root NS set without addresses is not primed again:
// the hints serve as the safety belt until it expires.
Question priming_question();
bool root_needs_priming(DnsCache& cache, std::uint64_t now_ms);

}  // namespace outpost::dns
