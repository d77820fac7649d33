#include "resolver/iterator.hpp"

#include <algorithm>
#include <ctime>

#include "core/log.hpp"
#include "resolver/cache_lookup.hpp"
#include "resolver/dnssec_records.hpp"
#include "resolver/hints.hpp"
#include "resolver/resolver_core.hpp"
#include "resolver/response_type.hpp"
#include "resolver/scrub.hpp"

namespace outpost::dns {

IterativeQuery::IterativeQuery(ResolverCore& core, std::uint64_t id, Question q, unsigned depth,
                               std::shared_ptr<WorkBudget> budget, ResolutionCallback cb, TraceSink trace)
    : core_(core),
      id_(id),
      original_(std::move(q)),
      qname_(original_.name),
      depth_(depth),
      budget_(std::move(budget)),
      cb_(std::move(cb)),
      trace_(std::move(trace)) {
  seen_names_.push_back(qname_);
}

std::uint64_t IterativeQuery::now() const { return core_.now_ms(); }

void IterativeQuery::start() {
  if (validating()) result_.security = Security::secure;  // lowered by each part of the answer
  begin_name();
}

bool IterativeQuery::validating() const {
  return mode_dnssec_ == QueryMode::validate && core_.config().dnssec_validation;
}

void IterativeQuery::cancel() {
  if (done_) return;
  done_ = true;
  if (upstream_handle_) core_.upstream().cancel(upstream_handle_);
  upstream_handle_ = 0;
  core_.retire(id_);
}

void IterativeQuery::finish(std::uint16_t rcode, std::string why) {
  if (done_) return;
  done_ = true;
  if (upstream_handle_) core_.upstream().cancel(upstream_handle_);
  upstream_handle_ = 0;
  result_.rcode = rcode;
  result_.why = std::move(why);
  result_.from_cache = !used_network_;
  // A bogus answer is remembered by the validator instead: a CD query may still have it.
  if (rcode == rcode::SERVFAIL && used_network_ && result_.security != Security::bogus)
    core_.cache().put_servfail(original_.name, original_.type, now());
  auto cb = std::move(cb_);
  core_.retire(id_);
  cb(result_);
}

// Cache first: a complete answer ends the query; a cached CNAME chain moves qname_ along.
bool IterativeQuery::answer_from_cache() {
  // The links already followed count against the same limit.
  auto ca = lookup_in_cache(core_.cache(), {qname_, original_.type, kClassIN}, now(),
                            core_.config().max_cname_chain - chain_links(), false, validating());
  auto& chain = ca.resolution.answer;
  if (validating()) result_.security = least(result_.security, ca.resolution.security);
  result_.answer.insert(result_.answer.end(), chain.begin(), chain.end());
  if (ca.complete) {
    result_.authority = std::move(ca.resolution.authority);
    finish(ca.resolution.rcode, ca.resolution.why);
    return true;
  }
  for (auto& rr : chain) {
    if (rr.type != type::CNAME) continue;
    const Name& target = std::get<RdataName>(rr.rdata).name;
    if (std::find(seen_names_.begin(), seen_names_.end(), target) != seen_names_.end()) {
      finish(rcode::SERVFAIL, "CNAME loop");
      return true;
    }
    seen_names_.push_back(target);
  }
  qname_ = ca.next;
  return false;
}

bool IterativeQuery::answer_from_denials() {
  auto syn = core_.validator().synthesize(qname_, original_.type);
  if (!syn) return false;
  if (syn->answer) {
    // A wildcard's expansion (RFC 8198 section 5.3), with the NSEC/NSEC3 records that prove
    // no closer name exists (RFC 4035 section 3.1.3.3).
    syn->answer->append_signed_to(&result_.answer, syn->answer->ttl);
    for (auto& p : syn->proof) p.append_signed_to(&result_.authority, p.ttl);
    finish(rcode::NOERROR);
    return true;
  }
  syn->soa.append_signed_to(&result_.authority, syn->soa.ttl);
  for (auto& p : syn->proof) p.append_signed_to(&result_.authority, p.ttl);
  finish(syn->nxdomain ? rcode::NXDOMAIN : rcode::NOERROR);
  return true;
}

void IterativeQuery::begin_name() {
  if (!priming_ && !refresh_ && answer_from_cache()) return;
  if (!priming_ && !refresh_ && validating() && answer_from_denials()) return;
  const auto& cfg = core_.config();
  // Forward zones: the deepest one covering the name wins.
  const ForwardZone* fwd = nullptr;
  for (auto& f : cfg.forward_zones)
    if (qname_.is_subdomain_of(f.zone) && (!fwd || f.zone.label_count() > fwd->zone.label_count())) fwd = &f;
  auto cached =
      priming_ ? std::nullopt : delegation_from_cache(core_.cache(), cut_search_name(qname_, original_.type), now());
  if (fwd && !(cached && cached->zone.is_subdomain_of(fwd->zone) && !(cached->zone == fwd->zone))) {
    mode_ = Mode::forward;
    dp_ = Delegation{fwd->zone, {{fwd->zone, fwd->servers, true, true}}};
  } else if (cached) {
    mode_ = Mode::iterate;
    dp_ = *cached;
  } else {
    // No usable delegation below the root is cached: start from the root, primed if it can be.
    if (!priming_ && !primed_ && root_needs_priming(core_.cache(), now())) {
      wait_for_priming();
      return;
    }
    mode_ = Mode::iterate;
    dp_ = cfg.root_hints;
  }
  ++dp_generation_;
  tried_.clear();
  rounds_ = 0;
  qmin_labels_ = dp_.zone.label_count();
  qmin_off_ = !cfg.qname_minimisation || mode_ == Mode::forward;
  next_query();
}

// Comes back to begin_name() once the worker's priming query has ended, however it ended.
void IterativeQuery::wait_for_priming() {
  primed_ = true;
  auto self_id = id_;
  auto& core = core_;
  core_.prime_root(
      self_id,
      [this, &core, self_id] {
        if (core.alive(self_id) && !done_) begin_name();
      },
      trace_);
}

// The question to send: with QNAME minimisation, one label more than the zone cut, type A
// (RFC 9156 section 3), until the full name is reached.
Question IterativeQuery::wire_question() const {
  unsigned full = qname_.label_count();
  if (qmin_off_ || qmin_labels_ + 1 >= full) return {qname_, original_.type, kClassIN};
  // RFC 9156 MAX_MINIMISE_COUNT: past 10 labels, take the rest in one step.
  if (full - qmin_labels_ > 10) return {qname_, original_.type, kClassIN};
  return {qname_.suffix(qmin_labels_ + 1), type::A, kClassIN};
}

void IterativeQuery::next_query() {
  if (done_) return;
  auto candidates = dp_.all_addresses();
  auto pick = core_.selection().pick(candidates, tried_, now());
  if (pick) {
    send_to(*pick, false);
    return;
  }
  if (resolve_server_names()) return;  // waiting for name-server addresses
  if (pending_subqueries_ > 0) return;
  if (!candidates.empty() && ++rounds_ < core_.config().max_rounds) {
    tried_.clear();
    next_query();
    return;
  }
  finish(rcode::SERVFAIL, "no reachable server for " + dp_.zone.to_text());
}

// Starts address lookups for name servers without glue. True if any were started.
bool IterativeQuery::resolve_server_names() {
  if (mode_ == Mode::forward || depth_ >= core_.config().max_depth) return false;
  for (auto& ns : dp_.servers) {
    if (ns.resolving || !ns.addresses.empty()) continue;
    ns.resolving = true;
    // A server inside the zone it serves, without glue, can never be reached: skip it.
    if (ns.name.is_subdomain_of(dp_.zone)) continue;
    // A name already being resolved up the chain would loop.
    if (std::find(seen_names_.begin(), seen_names_.end(), ns.name) != seen_names_.end()) continue;
    // One lookup at a time: when it ends, next_query() comes back here if it found nothing.
    start_ns_lookup(ns.name, type::A);
    return true;
  }
  return false;
}

// Looks up a name server's addresses: A first, AAAA if there is no A.
void IterativeQuery::start_ns_lookup(const Name& ns_name, std::uint16_t qtype) {
  ++pending_subqueries_;
  auto gen = dp_generation_;
  auto self_id = id_;
  auto& core = core_;
  // Server addresses are not validated (as Unbound's iterator targets): they only reach servers.
  core_.start_subquery({ns_name, qtype, kClassIN}, depth_ + 1, budget_,
                       [this, &core, self_id, gen, ns_name, qtype](const Resolution& r) {
                         if (!core.alive(self_id) || done_) return;
                         --pending_subqueries_;
                         if (gen != dp_generation_) return;
                         bool found = false;
                         for (auto& rr : r.answer)
                           if (rr.type == type::A || rr.type == type::AAAA) {
                             dp_.add_address(ns_name, address_of(rr.rdata));
                             found = true;
                           }
                         if (!found && qtype == type::A) {
                           start_ns_lookup(ns_name, type::AAAA);
                           return;
                         }
                         if (auto* s = dp_.find(ns_name)) s->resolved = true;
                         if (!upstream_handle_) next_query();
                       },
                       trace_, QueryMode::unchecked);
}

void IterativeQuery::send_to(const IpAddress& addr, bool tcp, bool edns) {
  if (budget_->sends_left == 0) {
    finish(rcode::SERVFAIL, "work limit reached");
    return;
  }
  if (now() - budget_->started_ms > core_.config().max_query_time_ms) {
    finish(rcode::SERVFAIL, "time limit reached");
    return;
  }
  --budget_->sends_left;
  used_network_ = true;
  Question q = wire_question();
  std::uint16_t port = core_.config().upstream_port;
  if (mode_ == Mode::forward)
    for (auto& f : core_.config().forward_zones)
      if (f.zone == dp_.zone) port = f.port;
  auto self_id = id_;
  auto& core = core_;
  std::uint32_t timeout = tcp ? std::max<std::uint32_t>(core_.selection().timeout_ms(addr) * 2, 1000)
                              : core_.selection().timeout_ms(addr);
  // A datagram lost to a busy server is sent again with a longer wait (per query, as Unbound's
  // back-off): the server's RTO alone, unchanged by such losses, may be what it missed.
  if (!tcp && lost_retries_)
    timeout = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(ServerSelection::kMaxTimeoutMs, std::uint64_t(timeout) << lost_retries_));
  const bool caps = core_.config().use_0x20 && core_.selection().use_0x20(addr, now());
  sent_ms_ = now();
  upstream_handle_ = core_.upstream().send(addr, port, q, mode_ == Mode::forward, tcp, timeout,
                                           [this, &core, self_id, addr, q, tcp, edns](UpstreamResult&& res) {
                                             if (!core.alive(self_id) || done_) return;
                                             upstream_handle_ = 0;
                                             on_reply(addr, q, tcp, edns, std::move(res));
                                           },
                                           edns, caps);
}

void IterativeQuery::on_reply(const IpAddress& addr, const Question& sent, bool tcp, bool edns, UpstreamResult&& res) {
  auto& sel = core_.selection();
  TraceStep step;
  if (trace_) {
    step.zone = dp_.zone;
    for (auto& s : dp_.servers)
      if (std::find(s.addresses.begin(), s.addresses.end(), addr) != s.addresses.end()) step.server_name = s.name;
    step.server = addr.to_string();
    step.question = sent;
    step.tcp = tcp;
    step.rtt_ms = res.rtt_ms;
    step.bytes = res.bytes;
    step.timeout = res.kind != UpstreamResult::Kind::ok;
  }
  auto emit = [&](const char* outcome) {
    if (!trace_) return;
    step.outcome = outcome;
    step.response = res.message;
    trace_(step);
  };
  if (res.kind == UpstreamResult::Kind::case_mismatch) {
    // 0x20: only replies in the wrong case came, as from a spoofer, or from a server that does
    // not keep the case; once it has done so kCaseFallbackAfter times it is asked without.
    if (!res.shared) sel.report_case_mismatch(addr, now());
    emit("0x20 case mismatch");
    if (!sel.use_0x20(addr, now())) {
      send_to(addr, tcp, edns);
      return;
    }
    tried_.push_back(addr);
    next_query();
    return;
  }
  if (res.kind != UpstreamResult::Kind::ok) {
    const bool alive = sel.replied_since(addr, sent_ms_);
    if (!res.shared) sel.report_timeout(addr, now(), sent_ms_);
    emit(res.kind == UpstreamResult::Kind::timeout ? "timeout" : "network error");
    // The server answered other queries while this one went unanswered: a lost datagram (a
    // busy server's full socket buffer, a loaded host). Ask it again rather than give up on
    // it after max_rounds tries of an RTO that such losses do not raise; its zone may have no
    // other server.
    if (alive && res.kind == UpstreamResult::Kind::timeout && lost_retries_ < kLostRetries) {
      ++lost_retries_;
      send_to(addr, tcp, edns);
      return;
    }
    tried_.push_back(addr);
    next_query();
    return;
  }
  if (!res.shared) sel.report_rtt(addr, res.rtt_ms, now());
  Message& m = res.message;
  if (m.header.tc && !tcp) {
    emit("truncated, retrying over TCP");
    send_to(addr, true, edns);
    return;
  }
  // RFC 6891 section 7: a server that rejects EDNS (FORMERR/NOTIMP without an OPT record in the
  // reply) is asked again without it.
  if (edns && !m.edns && (m.header.rcode == rcode::FORMERR || m.header.rcode == rcode::NOTIMP)) {
    emit("EDNS rejected, retrying without");
    send_to(addr, tcp, false);
    return;
  }
  const bool forwarder = mode_ == Mode::forward;
  scrub_response(&m, sent, forwarder ? Name::root() : dp_.zone);
  // An answer straight from upstream is bounded like the cached copies later answers come
  // from (min_ttl, max_ttl): otherwise the client that caused the lookup keeps the
  // authority's TTL. Cached records are clamped already and keep their countdown.
  for (auto& rr : m.answer) rr.ttl = clamp_ttl(core_.cache().limits(), rr.ttl);
  auto kind = classify_response(m, sent, dp_.zone, forwarder);
  emit(to_string(kind));
  const bool minimised = !(sent.name == qname_) || sent.type != original_.type;
  if (minimised && !core_.config().qname_minimisation_strict &&
      (kind == ResponseType::error || kind == ResponseType::nxdomain)) {
    // RFC 9156 section 4.3: a server that fails (or denies) an empty non-terminal may still
    // know the full name; ask it that, without minimising further in this zone.
    qmin_off_ = true;
    next_query();
    return;
  }

  if (kind == ResponseType::error || kind == ResponseType::lame) {
    if (kind == ResponseType::lame) sel.report_lame(addr, now());
    tried_.push_back(addr);
    next_query();
    return;
  }
  if (kind == ResponseType::referral) {
    handle_referral(m);
    return;
  }
  if (minimised) {
    if (kind == ResponseType::nxdomain) {
      // RFC 8020 (strict minimisation only): nothing exists below a name that does not exist.
      handle_negative(m, true, qname_, Security::unchecked);
      return;
    }
    // No zone cut at this label: add the next one and ask the same servers.
    ++qmin_labels_;
    next_query();
    return;
  }
  if (mode_dnssec_ == QueryMode::raw) {
    // The validator checks these itself.
    for (auto& rr : m.answer)
      if (rr.type == type::RRSIG) result_.dnssec.push_back(rr);
    for (auto& rr : m.authority)
      if (rr.type == type::RRSIG || rr.type == type::NSEC || rr.type == type::NSEC3) result_.dnssec.push_back(rr);
  }
  if (validating() && (kind == ResponseType::answer || kind == ResponseType::cname || kind == ResponseType::nxdomain ||
                       kind == ResponseType::nodata)) {
    auto msg = std::make_shared<const Message>(std::move(m));
    auto self_id = id_;
    auto& core = core_;
    core_.validator().validate(msg, sent, kind, dp_.zone, {budget_, depth_, trace_},
                               [this, &core, self_id, msg, kind](const Verdict& v) {
                                 if (!core.alive(self_id) || done_) return;
                                 accept(*msg, kind, v);
                               });
    return;
  }
  accept(m, kind, Verdict{Security::unchecked, std::nullopt, {}});
}

void IterativeQuery::accept(const Message& m, ResponseType kind, const Verdict& v) {
  if (v.security == Security::bogus) {
    core_.validator().count(v.security);
    result_.security = Security::bogus;
    result_.ede = v.ede;
    core_.validator().remember_bogus(original_, v);
    finish(rcode::SERVFAIL, "DNSSEC bogus: " + v.why);
    return;
  }
  if (validating()) {
    result_.security = least(result_.security, v.security);
    core_.validator().count(v.security);
    if (v.security == Security::secure) {
      Message capped = m;
      cap_ttls_to_signatures(&capped, static_cast<std::uint32_t>(std::time(nullptr)));
      take_final(capped, kind, v.security);
      return;
    }
  }
  take_final(m, kind, v.security);
}

void IterativeQuery::take_final(const Message& m, ResponseType kind, Security sec) {
  switch (kind) {
    case ResponseType::answer:
      cache_answer_rrsets(m, sec);
      // A CNAME (or ANY) question is answered by the records at the name itself.
      if (original_.type != type::CNAME && original_.type != type::ANY && !take_chain(m)) return;
      for (auto& rr : m.answer)
        if (rr.name == qname_ && (rr.type == original_.type || original_.type == type::ANY ||
                                  (rr.type == type::RRSIG && rrsig_covered(rr) == original_.type)))
          result_.answer.push_back(rr);
      for (auto& set : group_signed_rrsets(m.answer))
        if (set.name == qname_ && set.type == original_.type)
          for (auto& rr : wildcard_proof(m, set)) result_.authority.push_back(rr);
      finish(rcode::NOERROR);
      return;
    case ResponseType::cname:
      cache_answer_rrsets(m, sec);
      if (!take_chain(m)) return;
      begin_name();
      return;
    case ResponseType::nxdomain:
      // RFC 6604: with a CNAME chain, NXDOMAIN speaks of the chain's last name.
      cache_answer_rrsets(m, sec);
      if (!take_chain(m)) return;
      handle_negative(m, true, qname_, sec);
      return;
    case ResponseType::nodata:
      handle_negative(m, false, qname_, sec);
      return;
    default:
      finish(rcode::SERVFAIL, "unexpected response");
  }
}

// Appends the answer's alias chain from qname_ to the result (each DNAME with the CNAME it
// implies) and moves qname_ to its end. False (and the query finished) on a loop or a chain
// longer than max_cname_chain links in all, counted as lookup_in_cache counts them, so that an
// answer is the same whether it came from upstream or from the cache.
bool IterativeQuery::take_chain(const Message& m) {
  while (auto link = chain_link(m.answer, qname_)) {
    // Each link with its RRSIGs (a synthesized CNAME has none: its DNAME's stand for it).
    auto with_sigs = [&](const ResourceRecord& link_rr) {
      result_.answer.push_back(link_rr);
      for (auto& rr : m.answer)
        if (rr.type == type::RRSIG && rr.name == link_rr.name && rrsig_covered(rr) == link_rr.type)
          result_.answer.push_back(rr);
    };
    if (link->dname) with_sigs(*link->dname);
    with_sigs(link->cname);
    qname_ = link->target();
    if (std::find(seen_names_.begin(), seen_names_.end(), qname_) != seen_names_.end()) {
      finish(rcode::SERVFAIL, "CNAME loop");
      return false;
    }
    seen_names_.push_back(qname_);
    if (chain_links() > core_.config().max_cname_chain) {
      finish(rcode::SERVFAIL, "CNAME chain too long");
      return false;
    }
  }
  return true;
}

void IterativeQuery::handle_referral(const Message& m) {
  if (++referrals_ > core_.config().max_referrals) {
    finish(rcode::SERVFAIL, "too many referrals");
    return;
  }
  auto auth = group_rrsets(m.authority);
  auto add = group_rrsets(m.additional);
  Name cut = referral_zone(m);
  const RRset* ns = find_rrset(auth, cut, type::NS);
  if (!ns) {
    finish(rcode::SERVFAIL, "referral without NS");
    return;
  }
  // Glue is believed inside the referring server's zone (scrub_response kept no other).
  const Name bailiwick = dp_.zone;
  cache_referral(core_.cache(), *ns, add, bailiwick, now());
  dp_ = delegation_from_referral(*ns, add, bailiwick);
  // Servers without glue may already have cached addresses.
  for (auto& s : dp_.servers)
    if (s.addresses.empty())
      for (std::uint16_t t : {type::A, type::AAAA})
        if (auto set = core_.cache().get_rrset(s.name, t, now(), Trust::glue))
          for (auto& rd : set->rdata) s.addresses.push_back(address_of(rd));
  ++dp_generation_;
  tried_.clear();
  rounds_ = 0;
  qmin_labels_ = dp_.zone.label_count();
  next_query();
}

void IterativeQuery::handle_negative(const Message& m, bool nxdomain, const Name& owner, Security sec) {
  std::optional<RRset> soa;
  std::vector<RRset> proof;  // NSEC/NSEC3 with their RRSIGs, for DO clients
  for (auto& set : group_signed_rrsets(m.authority)) {
    if (set.type == type::SOA) soa = set;
    if (set.type == type::NSEC || set.type == type::NSEC3) proof.push_back(set);
  }
  std::uint32_t ttl = 0;
  if (soa) {
    // RFC 2308 section 5: the lesser of the SOA's TTL and its MINIMUM field.
    ttl = std::min(soa->ttl, std::get<RdataSoa>(soa->rdata.front()).minimum);
    soa->ttl = ttl;
    core_.cache().put_negative(owner, original_.type, nxdomain, soa, ttl, now(), sec, proof);
  }
  if (soa) {
    const auto answered_ttl = clamp_negative_ttl(core_.cache().limits(), ttl);
    soa->append_signed_to(&result_.authority, answered_ttl);
    for (auto& p : proof) p.append_signed_to(&result_.authority, answered_ttl);
  }
  finish(nxdomain ? rcode::NXDOMAIN : rcode::NOERROR);
}

// A wildcard expansion's proof (its RRSIG's labels field counts fewer labels than the owner):
// the authority's NSEC/NSEC3 records and their RRSIGs, for DO clients.
std::vector<ResourceRecord> IterativeQuery::wildcard_proof(const Message& m, const RRset& set) {
  std::vector<ResourceRecord> out;
  bool expanded = false;
  for (auto& sig : set.sigs)
    if (auto s = parse_rrsig(sig)) expanded |= s->labels < set.name.label_count();
  if (!expanded) return out;
  for (auto& rr : m.authority)
    if (rr.type == type::NSEC || rr.type == type::NSEC3 ||
        (rr.type == type::RRSIG && (rrsig_covered(rr) == type::NSEC || rrsig_covered(rr) == type::NSEC3)))
      out.push_back(rr);
  return out;
}

void IterativeQuery::cache_answer_rrsets(const Message& m, Security sec) {
  Trust t = m.header.aa ? Trust::answer : Trust::answer_noaa;
  auto additional = group_rrsets(m.additional);
  auto under_dname = [&m](const Name& n) {
    return std::any_of(m.answer.begin(), m.answer.end(),
                       [&n](const ResourceRecord& rr) { return rr.type == type::DNAME && synthesize_cname(rr, n); });
  };
  for (auto& set : group_signed_rrsets(m.answer)) {
    set.security = sec;
    set.proof = wildcard_proof(m, set);
    // A CNAME a DNAME implies is not cached: the cache synthesizes it from the DNAME, so
    // that answers from the cache carry the DNAME too.
    if (set.type == type::CNAME && under_dname(set.name)) continue;
    core_.cache().put_rrset(set, t, now());
    // The addresses of the servers an NS answer names (the root's, when priming): without
    // them a cached NS set cannot be used as a delegation.
    if (set.type == type::NS) cache_server_addresses(core_.cache(), set, additional, dp_.zone, now());
  }
}

}  // namespace outpost::dns
