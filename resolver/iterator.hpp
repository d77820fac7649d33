// The iterative resolution state machine (Unbound's iterator.c): one IterativeQuery per
// question, driven by upstream replies, timers and sub-queries for name-server addresses.
// Everything else — delegations, hints, scrubbing, classification, server choice, transport,
// caching — lives in its own file.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "resolver/delegation.hpp"
#include "resolver/resolution.hpp"
#include "resolver/response_type.hpp"

namespace outpost::dns {

class ResolverCore;
struct Verdict;

// How a query treats DNSSEC (when validation is on at all).
enum class QueryMode {
  validate,   // answers validated, cached with their verdict, only validated cache entries used
  unchecked,  // no validation: a client's CD query, server addresses, priming
  raw,        // the validator's own DS/DNSKEY fetches: no validation, the final name always asked
              // upstream, the response's RRSIGs and NSEC/NSEC3 records kept (Resolution::dnssec)
};

// Limits that keep one client question from causing unbounded work (shared with sub-queries).
struct WorkBudget {
  unsigned sends_left = 0;
  std::uint64_t started_ms = 0;
};

class IterativeQuery {
 public:
  IterativeQuery(ResolverCore& core, std::uint64_t id, Question q, unsigned depth, std::shared_ptr<WorkBudget> budget,
                 ResolutionCallback cb, TraceSink trace);
  void start();
  // This query is the root priming query (RFC 8109): it asks a hints server, never the cache.
  void mark_priming() { priming_ = true; }
  // This query refreshes a cached answer (prefetch, serve-stale): it asks the servers
  // whatever the cache holds for the names it resolves (delegations still come from the cache).
  void mark_refresh() { refresh_ = true; }
  void set_mode(QueryMode m) {
    mode_dnssec_ = m;
    if (m == QueryMode::raw) refresh_ = true;
  }
  void cancel();
  bool done() const { return done_; }
  std::uint64_t id() const { return id_; }

 private:
  enum class Mode { iterate, forward };
  void begin_name();
  void wait_for_priming();
  bool answer_from_cache();
  // RFC 8198: a denial the validator's cached NSEC/NSEC3 records prove ends the query.
  bool answer_from_denials();
  void next_query();
  bool resolve_server_names();
  void start_ns_lookup(const Name& ns_name, std::uint16_t qtype);
  void send_to(const IpAddress& addr, bool tcp, bool edns = true);
  void on_reply(const IpAddress& addr, const Question& sent, bool tcp, bool edns, struct UpstreamResult&& res);
  bool take_chain(const Message& m);
  bool validating() const;
  // A final response (answer, CNAME, NXDOMAIN, NODATA) with its validation verdict.
  void accept(const Message& m, ResponseType kind, const Verdict& v);
  void take_final(const Message& m, ResponseType kind, Security sec);
  void handle_referral(const Message& m);
  void handle_negative(const Message& m, bool nxdomain, const Name& owner, Security sec);
  void cache_answer_rrsets(const Message& m, Security sec);
  static std::vector<ResourceRecord> wildcard_proof(const Message& m, const RRset& set);
  void finish(std::uint16_t rcode, std::string why = {});
  Question wire_question() const;
  // Alias links followed so far (CNAMEs, DNAMEs), from upstream and from the cache alike.
  unsigned chain_links() const { return static_cast<unsigned>(seen_names_.size() - 1); }
  std::uint64_t now() const;

  ResolverCore& core_;
  std::uint64_t id_;
  Question original_;
  Name qname_;  // current name (after CNAMEs)
  unsigned depth_;
  std::shared_ptr<WorkBudget> budget_;
  ResolutionCallback cb_;
  TraceSink trace_;

  Resolution result_;
  std::vector<Name> seen_names_;
  unsigned referrals_ = 0;
  Mode mode_ = Mode::iterate;
  Delegation dp_;
  std::uint64_t dp_generation_ = 0;
  unsigned qmin_labels_ = 0;   // labels of the name sent while minimising
  bool qmin_off_ = false;      // minimisation abandoned for this delegation
  std::vector<IpAddress> tried_;
  unsigned rounds_ = 0;
  unsigned pending_subqueries_ = 0;
  std::uint64_t upstream_handle_ = 0;
  std::uint64_t sent_ms_ = 0;  // when the query in flight went out (ServerSelection::report_timeout)
  // Timeouts from a server that answered other queries meanwhile (a lost datagram): the same
  // server is asked again, waiting twice as long each time, up to kLostRetries times a query.
  static constexpr unsigned kLostRetries = 3;
  unsigned lost_retries_ = 0;
  bool used_network_ = false;
  bool done_ = false;
  bool priming_ = false;  // this is the priming query
  bool primed_ = false;   // waited for priming once already: the hints it is, whatever came of it
  bool refresh_ = false;  // see mark_refresh()
  QueryMode mode_dnssec_ = QueryMode::validate;
};

}  // namespace outpost::dns
