#include "resolver/validator.hpp"

#include <ctime>

#include "resolver/dnssec_crypto.hpp"
#include "resolver/dnssec_denial.hpp"
#include "resolver/resolver_core.hpp"
#include "resolver/trust_anchors.hpp"
#include "resolver/zone_file.hpp"

namespace outpost::dns {

namespace {

constexpr std::uint64_t kMaxKeyTtlMs = 3600 * 1000;  // keys and insecure verdicts, at most
constexpr std::size_t kMaxEntries = 10000;           // per worker; past it, everything is forgotten

std::string key_of(const Name& n) { return n.lowercase_wire(); }

std::string question_key(const Question& q) {
  std::string k = q.name.lowercase_wire();
  k += static_cast<char>(q.type >> 8);
  k += static_cast<char>(q.type);
  return k;
}

// The RRSIGs in `records` over the RRset (owner, type).
std::vector<RrsigRdata> sigs_over(const std::vector<ResourceRecord>& records, const Name& owner, std::uint16_t t) {
  std::vector<RrsigRdata> out;
  for (auto& rr : records)
    if (rr.type == type::RRSIG && rr.name == owner && rrsig_covered(rr) == t)
      if (auto s = parse_rrsig(rr.rdata)) out.push_back(std::move(*s));
  return out;
}

std::vector<RRset> sets_without_sigs(const std::vector<ResourceRecord>& records) {
  std::vector<ResourceRecord> rest;
  for (auto& rr : records)
    if (rr.type != type::RRSIG) rest.push_back(rr);
  return group_rrsets(rest);
}

Verdict bogus(std::uint16_t code, std::string why) { return {Security::bogus, code, std::move(why)}; }

// A CNAME the resolver synthesized from a DNAME of the same answer: never signed.
bool synthesized(const RRset& set, const std::vector<ResourceRecord>& answer) {
  if (set.type != type::CNAME || set.rdata.size() != 1) return false;
  for (auto& rr : answer)
    if (rr.type == type::DNAME)
      if (auto c = synthesize_cname(rr, set.name); c && c->rdata == set.rdata.front()) return true;
  return false;
}

}  // namespace

std::vector<ResourceRecord> builtin_trust_anchors() {
  ZoneFileError err;
  // IANA root-anchors.xml: KSK-2017 and KSK-2024. KSK-2024 alone signs the root's DNSKEY set
  // since the rollover of 2026-10-11: an anchor set without it finds every answer bogus.
  auto rrs = parse_zone_text(
      ". 172800 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
      ". 172800 IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16\n",
      Name::root(), 0, &err);
  return rrs ? *rrs : std::vector<ResourceRecord>{};
}

Verdict verify_rrset(const RRset& set, const std::vector<RrsigRdata>& sigs, const KeyEntry& keys, std::uint32_t now,
                     std::optional<Name>* wildcard_encloser) {
  if (sigs.empty())
    return bogus(ede::RRSIGS_MISSING, "no RRSIG over " + set.name.to_text() + " " + type_to_text(set.type));
  Verdict worst = bogus(ede::DNSKEY_MISSING, "no key of " + keys.zone.to_text() + " for the RRSIG over " +
                                                 set.name.to_text() + " " + type_to_text(set.type));
  for (auto& sig : sigs) {
    if (!(sig.signer == keys.zone)) continue;
    for (auto& k : keys.keys) {
      if (k.algorithm != sig.algorithm || key_tag(k.wire) != sig.key_tag) continue;
      SigResult r = verify_rrsig(set, sig, k, now);
      if (r == SigResult::ok) {
        if (wildcard_encloser)
          *wildcard_encloser = sig.labels < set.name.label_count() ? std::optional<Name>(set.name.suffix(sig.labels))
                                                                    : std::nullopt;
        return {Security::secure, std::nullopt, {}};
      }
      std::uint16_t code = r == SigResult::expired         ? ede::SIGNATURE_EXPIRED
                           : r == SigResult::not_yet_valid ? ede::SIGNATURE_NOT_YET_VALID
                                                           : ede::DNSSEC_BOGUS;
      worst = bogus(code, std::string(to_string(r)) + " on " + set.name.to_text() + " " + type_to_text(set.type));
    }
  }
  return worst;
}

KeyEntry keys_from_parent(const Name& zone, const RRset& dnskeys, const std::vector<RrsigRdata>& sigs,
                          const std::vector<DsRdata>& ds, const std::vector<DnskeyRdata>& trusted, std::uint32_t now) {
  KeyEntry e;
  e.zone = zone;
  std::vector<DnskeyRdata> keys;
  for (auto& rd : dnskeys.rdata)
    if (auto k = parse_dnskey(rd); k && k->protocol == 3 && k->zone_key() && !k->revoked()) keys.push_back(*k);
  bool usable_ds = trusted.size() > 0;
  for (auto& d : ds) usable_ds |= algorithm_supported(d.algorithm) && digest_supported(d.digest_type);
  if (!usable_ds) {
    e.security = Security::insecure;
    e.why = "no DS with a supported algorithm and digest for " + zone.to_text();
    return e;
  }
  // The keys the parent vouches for.
  KeyEntry vouched{zone, Security::secure, {}, std::nullopt, {}, 0};
  for (auto& k : keys) {
    bool match = false;
    for (auto& d : ds) match |= algorithm_supported(d.algorithm) && ds_matches(zone, k, d);
    for (auto& t : trusted) match |= bytes_equal(t.wire, k.wire);
    if (match) vouched.keys.push_back(k);
  }
  e.security = Security::bogus;
  if (vouched.keys.empty()) {
    e.ede = ede::DNSKEY_MISSING;
    e.why = "no DNSKEY of " + zone.to_text() + " matches its DS";
    return e;
  }
  Verdict v = verify_rrset(dnskeys, sigs, vouched, now);
  if (v.security != Security::secure) {
    e.ede = v.ede;
    e.why = v.why;
    return e;
  }
  e.security = Security::secure;
  e.keys = std::move(keys);
  return e;
}

void cap_ttls_to_signatures(Message* m, std::uint32_t now) {
  for (auto* section : {&m->answer, &m->authority})
    for (auto& sig_rr : *section) {
      if (sig_rr.type != type::RRSIG) continue;
      auto sig = parse_rrsig(sig_rr.rdata);
      if (!sig) continue;
      const auto left = static_cast<std::int32_t>(sig->expiration - now);
      const std::uint32_t cap = std::min<std::uint32_t>(sig->original_ttl, left > 0 ? static_cast<std::uint32_t>(left) : 0);
      for (auto& rr : *section)
        if (rr.name == sig_rr.name && (rr.type == sig->type_covered || &rr == &sig_rr)) rr.ttl = std::min(rr.ttl, cap);
    }
}

// ---- keys ------------------------------------------------------------------------------------

struct Validator::Walk {
  Name target;
  Name at;        // the last name examined
  KeyEntry entry;  // the keys in force at `at`
  Context ctx;
};

std::uint64_t Validator::now_ms() const { return core_.now_ms(); }
std::uint32_t Validator::now_unix() const { return static_cast<std::uint32_t>(std::time(nullptr)); }

const KeyEntry* Validator::cached(const Name& zone) {
  auto it = keys_.find(key_of(zone));
  if (it == keys_.end()) return nullptr;
  if (it->second.expires_ms <= now_ms()) {
    keys_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void Validator::store(const Name& name, KeyEntry e) {
  if (keys_.size() >= kMaxEntries) keys_.clear();
  if (e.expires_ms == 0)
    e.expires_ms = now_ms() + (e.security == Security::bogus ? core_.config().bogus_ttl * 1000ull : kMaxKeyTtlMs);
  keys_[key_of(name)] = std::move(e);
}

KeyEntry Validator::failed(const Name& zone, std::uint16_t code, std::string why, bool transient) const {
  KeyEntry e;
  e.transient = transient;
  if (transient) e.expires_ms = now_ms() + std::max<std::uint32_t>(1, core_.cache().limits().servfail_ttl) * 1000ull;
  e.zone = zone;
  e.security = Security::bogus;
  e.ede = code;
  e.why = std::move(why);
  return e;
}

void Validator::clear() {
  keys_.clear();
  bogus_.clear();
  denials_.clear();
}

void Validator::count(Security verdict) {
  if (verdict == Security::secure) ++stats_.secure;
  else if (verdict == Security::insecure) ++stats_.insecure;
  else if (verdict == Security::bogus) ++stats_.bogus;
}

void Validator::remember_wildcard(const Name& zone, const RRset& expansion, const Name& encloser,
                                  const std::vector<RRset>& proofs) {
  if (!core_.config().aggressive_nsec || proofs.empty()) return;
  RRset wildcard = expansion;
  wildcard.name = encloser;
  if (!wildcard.name.prepend("*")) return;
  wildcard.proof.clear();
  wildcard.security = Security::secure;
  remember_denial(zone, proofs, std::nullopt);
  auto& z = denials_[key_of(zone)];
  const auto now = now_ms();
  if (z.wildcards.size() >= 100) std::erase_if(z.wildcards, [now](const auto& kv) { return kv.second.expires_ms <= now; });
  if (z.wildcards.size() >= 100) z.wildcards.clear();
  const auto expires = now + clamp_ttl(core_.cache().limits(), wildcard.ttl) * 1000ull;
  z.wildcards.insert_or_assign(dns_cache_key('W', wildcard.name, wildcard.type), Kept{std::move(wildcard), expires});
}

void Validator::remember_denial(const Name& zone, const std::vector<RRset>& proofs, const std::optional<RRset>& soa) {
  if (!core_.config().aggressive_nsec || proofs.empty()) return;
  if (denials_.size() >= kMaxEntries) denials_.clear();
  auto& z = denials_[key_of(zone)];
  z.zone = zone;
  const auto now = now_ms();
  auto limits = core_.cache().limits();
  auto keep = [&](const RRset& set) { return Kept{set, now + clamp_negative_ttl(limits, set.ttl) * 1000ull}; };
  if (soa) z.soa = keep(*soa);
  if (z.records.size() >= 1000) std::erase_if(z.records, [now](const auto& kv) { return kv.second.expires_ms <= now; });
  if (z.records.size() >= 1000) z.records.clear();
  for (auto& set : proofs) z.records.insert_or_assign(dns_cache_key('P', set.name, set.type), keep(set));
}

std::optional<Validator::Synthesized> Validator::wildcard_answer(DenialZone& z, const Name& qname, std::uint16_t qtype,
                                                                 std::uint64_t now) {
  std::erase_if(z.wildcards, [now](const auto& kv) { return kv.second.expires_ms <= now; });
  // The deepest wildcard of the asked type above the name: only the closest encloser's can
  // make its answer (a proof for a higher one fails: a closer name exists).
  const Kept* best = nullptr;
  for (auto& [k, kept] : z.wildcards) {
    const Name encloser = kept.set.name.parent();
    if (kept.set.type != qtype || !qname.is_subdomain_of(encloser) || qname.label_count() <= encloser.label_count())
      continue;
    if (!best || encloser.label_count() > best->set.name.label_count() - 1) best = &kept;
  }
  if (!best) return std::nullopt;
  std::vector<RRset> sets;
  std::vector<std::uint64_t> expiry;
  for (auto& [k, kept] : z.records) {
    sets.push_back(kept.set);
    expiry.push_back(kept.expires_ms);
  }
  DenialSet d(sets, z.zone);
  if (d.wildcard_synthesis(qname, best->set.name.parent()) != Proof::proven) return std::nullopt;
  Synthesized out;
  out.answer = best->set;
  out.answer->name = qname;  // the RRSIGs keep their labels field: the wildcard's
  std::uint64_t expires = best->expires_ms;
  for (std::size_t i : d.used()) {
    out.proof.push_back(sets[i]);
    expires = std::min(expires, expiry[i]);
  }
  const auto ttl = static_cast<std::uint32_t>((expires - now) / 1000);
  out.answer->ttl = ttl;
  for (auto& p : out.proof) p.ttl = ttl;
  return out;
}

std::optional<Validator::Synthesized> Validator::synthesize(const Name& qname, std::uint16_t qtype) {
  if (denials_.empty() || !core_.config().aggressive_nsec) return std::nullopt;
  const auto now = now_ms();
  for (Name zone = qname;; zone = zone.parent()) {
    auto it = denials_.find(key_of(zone));
    if (it != denials_.end()) {
      DenialZone& z = it->second;
      // Only while the zone's keys are known secure.
      const KeyEntry* keys = cached(zone);
      if (!keys || keys->security != Security::secure || !(keys->zone == zone)) return std::nullopt;
      std::erase_if(z.records, [now](const auto& kv) { return kv.second.expires_ms <= now; });
      std::optional<Synthesized> out;
      // Denials need the zone's SOA for the answer.
      if (z.soa && z.soa->expires_ms > now) {
        std::vector<RRset> sets;
        std::uint64_t expires = z.soa->expires_ms;
        std::vector<std::uint64_t> expiry;
        for (auto& [k, kept] : z.records) {
          sets.push_back(kept.set);
          expiry.push_back(kept.expires_ms);
        }
        DenialSet d(sets, zone);
        if (d.nxdomain(qname) == Proof::proven) out = Synthesized{true, z.soa->set, {}, std::nullopt};
        else if (d.nodata(qname, qtype) == Proof::proven) out = Synthesized{false, z.soa->set, {}, std::nullopt};
        if (out) {
          // The TTL: the least left of the SOA's and of the records' that make the proof.
          for (std::size_t i : d.used()) {
            out->proof.push_back(sets[i]);
            expires = std::min(expires, expiry[i]);
          }
          const auto ttl = static_cast<std::uint32_t>((expires - now) / 1000);
          out->soa.ttl = ttl;
          for (auto& p : out->proof) p.ttl = ttl;
          out->soa.security = Security::secure;
        }
      }
      if (!out && !z.wildcards.empty()) out = wildcard_answer(z, qname, qtype, now);
      if (!out) return std::nullopt;
      ++stats_.synthesized;
      return out;
    }
    if (zone.is_root()) return std::nullopt;
  }
}

void Validator::fetch(const Name& name, std::uint16_t t, const Context& ctx, ResolutionCallback cb) {
  core_.start_subquery({name, t, kClassIN}, ctx.depth + 1, ctx.budget, std::move(cb), ctx.trace, QueryMode::raw);
}

void Validator::find_keys(const Name& zone, const Context& ctx, KeyCallback cb) {
  if (auto& tracker = core_.config().anchor_tracker)
    if (std::uint64_t g = tracker->generation(); g != anchor_generation_) {
      // RFC 5011: the anchors changed (a key became trusted or was revoked).
      anchor_generation_ = g;
      keys_.clear();
      bogus_.clear();
    }
  if (auto* e = cached(zone)) {
    cb(*e);
    return;
  }
  auto& waiting = pending_[key_of(zone)];
  waiting.push_back(std::move(cb));
  if (waiting.size() > 1) return;  // a walk for this zone is under way
  if (core_.config().is_domain_insecure(zone)) {
    KeyEntry e;
    e.zone = zone;
    e.security = Security::insecure;
    e.why = zone.to_text() + " is under domain_insecure";
    store(zone, e);
    complete(key_of(zone), e);
    return;
  }
  // The closest trust anchor at or above the zone (RFC 5011: the tracker's current set; a
  // change of it drops the keys and verdicts found with the old one).
  std::shared_ptr<const std::vector<ResourceRecord>> tracked;
  if (auto& tracker = core_.config().anchor_tracker) tracked = tracker->anchors();
  const auto& anchors = tracked ? *tracked : core_.config().trust_anchors;
  std::optional<Name> anchor;
  for (auto& rr : anchors)
    if (zone.is_subdomain_of(rr.name) && (!anchor || rr.name.label_count() > anchor->label_count())) anchor = rr.name;
  if (!anchor) {
    KeyEntry e;
    e.zone = zone;
    e.security = Security::insecure;
    e.why = "no trust anchor above " + zone.to_text();
    store(zone, e);
    complete(key_of(zone), e);
    return;
  }
  auto w = std::make_shared<Walk>(Walk{zone, *anchor, {}, ctx});
  // Start from the deepest name on the way whose keys are known.
  for (Name n = zone; n.label_count() > anchor->label_count(); n = n.parent())
    if (auto* e = cached(n)) {
      w->at = n;
      w->entry = *e;
      step(w);
      return;
    }
  if (auto* e = cached(*anchor)) {
    w->entry = *e;
    step(w);
    return;
  }
  // The anchor's own DNSKEY set, checked against the anchor's DS or DNSKEY records.
  std::vector<DsRdata> ds;
  std::vector<DnskeyRdata> trusted;
  for (auto& rr : anchors) {
    if (!(rr.name == *anchor)) continue;
    if (rr.type == type::DS)
      if (auto d = parse_ds(rr.rdata)) ds.push_back(*d);
    if (rr.type == type::DNSKEY)
      if (auto k = parse_dnskey(rr.rdata)) trusted.push_back(*k);
  }
  fetch(*anchor, type::DNSKEY, ctx, [this, w, ds, trusted](const Resolution& r) { on_dnskey(w, w->at, ds, trusted, r); });
}

void Validator::complete(const std::string& key, const KeyEntry& e) {
  auto waiting = pending_.extract(key);
  if (waiting.empty()) return;
  for (auto& cb : waiting.mapped()) cb(e);
}

void Validator::step(std::shared_ptr<Walk> w) {
  for (;;) {
    if (w->entry.security != Security::secure || w->at == w->target) {
      KeyEntry e = w->entry;
      if (!(w->at == w->target)) store(w->target, e);
      complete(key_of(w->target), e);
      return;
    }
    Name c = w->target.suffix(w->at.label_count() + 1);
    if (auto* e = cached(c)) {
      w->at = c;
      w->entry = *e;
      continue;
    }
    fetch(c, type::DS, w->ctx, [this, w, c](const Resolution& r) { on_ds(w, c, r); });
    return;
  }
}

void Validator::on_ds(std::shared_ptr<Walk> w, const Name& c, const Resolution& r) {
  const KeyEntry& parent = w->entry;
  auto advance = [&](KeyEntry e) {
    store(c, e);
    w->at = c;
    w->entry = std::move(e);
    step(w);
  };
  if (r.rcode != rcode::NOERROR) {
    advance(failed(c, ede::DNSSEC_BOGUS,
                   "DS query for " + c.to_text() + " failed: " + rcode_to_text(r.rcode) +
                       (r.why.empty() ? "" : " (" + r.why + ")"),
                   r.rcode == rcode::SERVFAIL));
    return;
  }
  auto answer = group_rrsets(r.answer);
  if (const RRset* ds_set = find_rrset(answer, c, type::DS)) {
    Verdict v = verify_rrset(*ds_set, sigs_over(r.dnssec, c, type::DS), parent, now_unix());
    if (v.security != Security::secure) {
      advance(failed(c, v.ede.value_or(ede::DNSSEC_BOGUS), v.why));
      return;
    }
    std::vector<DsRdata> ds;
    for (auto& rd : ds_set->rdata)
      if (auto d = parse_ds(rd)) ds.push_back(*d);
    fetch(c, type::DNSKEY, w->ctx, [this, w, c, ds](const Resolution& r2) { on_dnskey(w, c, ds, {}, r2); });
    return;
  }
  if (find_rrset(answer, c, type::CNAME)) {  // a name with a CNAME is no zone cut
    advance(parent);
    return;
  }
  // No DS: the denial must be signed by the parent's keys and prove what C is.
  auto proofs = sets_without_sigs(r.dnssec);
  for (auto& set : proofs) {
    Verdict v = verify_rrset(set, sigs_over(r.dnssec, set.name, set.type), parent, now_unix());
    if (v.security != Security::secure) {
      advance(failed(c, v.ede.value_or(ede::DNSSEC_BOGUS), "DS denial for " + c.to_text() + ": " + v.why));
      return;
    }
  }
  switch (DenialSet(proofs, parent.zone).ds_absence(c)) {
    case DenialSet::Cut::insecure_delegation: {
      KeyEntry e;
      e.zone = c;
      e.security = Security::insecure;
      e.why = c.to_text() + " is an insecure delegation";
      advance(std::move(e));
      return;
    }
    case DenialSet::Cut::not_a_cut:
      advance(parent);
      return;
    case DenialSet::Cut::unproven:
      advance(failed(c, ede::NSEC_MISSING, "no proof that " + c.to_text() + " has no DS"));
      return;
  }
}

void Validator::on_dnskey(std::shared_ptr<Walk> w, const Name& c, std::vector<DsRdata> ds,
                          std::vector<DnskeyRdata> trusted, const Resolution& r) {
  KeyEntry e;
  auto answer = group_rrsets(r.answer);
  const RRset* keys = r.rcode == rcode::NOERROR ? find_rrset(answer, c, type::DNSKEY) : nullptr;
  if (!keys) {
    e = failed(c, ede::DNSKEY_MISSING, "no DNSKEY for " + c.to_text() + (r.why.empty() ? "" : " (" + r.why + ")"),
               r.rcode == rcode::SERVFAIL);
  } else {
    e = keys_from_parent(c, *keys, sigs_over(r.dnssec, c, type::DNSKEY), ds, trusted, now_unix());
    if (e.security == Security::secure)
      e.expires_ms = now_ms() + std::min<std::uint64_t>(keys->ttl * 1000ull, kMaxKeyTtlMs);
  }
  store(c, e);
  w->at = c;
  w->entry = std::move(e);
  step(w);
}

// ---- responses ---------------------------------------------------------------------------------

struct Validator::Job {
  std::shared_ptr<const Message> m;
  Question sent;
  ResponseType kind = ResponseType::answer;
  Name server_zone;
  Context ctx;
  std::vector<RRset> answer, authority;
  std::vector<Name> zones;  // signer zones, in order of need
  std::unordered_map<std::string, KeyEntry> keys;
  std::size_t next = 0;
  VerdictCallback cb;

  // The zone an RRset belongs to: its RRSIG's signer (an ancestor of the owner within the
  // asked server's zone), else the server's zone.
  Name zone_of(const RRset& set) const {
    for (auto* section : {&m->answer, &m->authority})
      for (auto& s : sigs_over(*section, set.name, set.type))
        if (set.name.is_subdomain_of(s.signer) && s.signer.is_subdomain_of(server_zone)) return s.signer;
    return server_zone;
  }
  const KeyEntry& entry(const Name& z) const { return keys.at(key_of(z)); }
};

void Validator::validate(std::shared_ptr<const Message> m, const Question& sent, ResponseType kind, const Name& zone,
                         const Context& ctx, VerdictCallback cb) {
  if (core_.config().is_domain_insecure(sent.name)) {
    Verdict v;
    v.security = Security::insecure;
    v.why = sent.name.to_text() + " is under domain_insecure";
    cb(v);
    return;
  }
  auto job = std::make_shared<Job>();
  job->m = std::move(m);
  job->sent = sent;
  job->kind = kind;
  job->server_zone = zone;
  job->ctx = ctx;
  job->cb = std::move(cb);
  job->answer = group_signed_rrsets(job->m->answer);
  for (auto& set : group_signed_rrsets(job->m->authority))
    if (set.type == type::SOA || set.type == type::NSEC || set.type == type::NSEC3) job->authority.push_back(set);
  for (auto* sets : {&job->answer, &job->authority})
    for (auto& set : *sets) {
      Name z = job->zone_of(set);
      if (std::find(job->zones.begin(), job->zones.end(), z) == job->zones.end()) job->zones.push_back(z);
    }
  if (job->zones.empty()) job->zones.push_back(zone);
  next_zone(std::move(job));
}

// Fetches the keys of each zone in turn, then judges.
void Validator::next_zone(std::shared_ptr<Job> job) {
  if (job->next == job->zones.size()) {
    auto cb = std::move(job->cb);
    cb(judge(*job));
    return;
  }
  Name z = job->zones[job->next++];
  find_keys(z, job->ctx, [this, job, z](const KeyEntry& e) {
    job->keys[key_of(z)] = e;
    next_zone(job);
  });
}

Verdict Validator::judge(const Job& job) {
  const auto now = now_unix();
  Verdict v;
  // Answer RRsets.
  std::vector<std::pair<const RRset*, Name>> wildcards;  // (expansion, closest encloser)
  for (auto& set : job.answer) {
    if (synthesized(set, job.m->answer)) continue;
    const KeyEntry& e = job.entry(job.zone_of(set));
    if (e.security == Security::insecure) {
      v.security = least(v.security, Security::insecure);
      continue;
    }
    if (e.security != Security::secure) return e.verdict();
    std::optional<Name> encloser;
    Verdict r = verify_rrset(set, sigs_over(job.m->answer, set.name, set.type), e, now, &encloser);
    if (r.security != Security::secure) return r;
    if (encloser) wildcards.emplace_back(&set, *encloser);
  }
  const bool negative = job.kind == ResponseType::nxdomain || job.kind == ResponseType::nodata;
  if (!negative && wildcards.empty()) return v;
  // The denial records, each signed by its zone.
  std::unordered_map<std::string, std::vector<RRset>> proofs;  // by zone
  Name denial_zone = job.server_zone;
  for (auto& set : job.authority) {
    Name z = job.zone_of(set);
    if (set.type == type::SOA) denial_zone = z;
    const KeyEntry& e = job.entry(z);
    if (e.security == Security::insecure) continue;
    if (e.security != Security::secure) return e.verdict();
    Verdict r = verify_rrset(set, sigs_over(job.m->authority, set.name, set.type), e, now);
    if (r.security != Security::secure) return r;
    if (set.type != type::SOA) proofs[key_of(z)].push_back(set);
  }
  for (auto& [set, encloser] : wildcards) {
    const Name& owner = set->name;
    Name z = job.zones.front();
    for (auto& zz : job.zones)
      if (owner.is_subdomain_of(zz) && zz.label_count() >= z.label_count()) z = zz;
    Proof p = DenialSet(proofs[key_of(z)], z).wildcard_expansion(owner, encloser);
    if (p == Proof::missing) return bogus(ede::NSEC_MISSING, "wildcard answer for " + owner.to_text() + " without proof");
    if (p == Proof::insecure) v.security = least(v.security, Security::insecure);
    else remember_wildcard(z, *set, encloser, proofs[key_of(z)]);  // RFC 8198 section 5.3
  }
  if (!negative) return v;
  if (!job.keys.count(key_of(denial_zone))) denial_zone = job.zones.front();
  const KeyEntry& e = job.entry(denial_zone);
  if (e.security == Security::insecure) return {Security::insecure, std::nullopt, {}};
  if (e.security != Security::secure) return e.verdict();
  // The name the denial speaks of: the end of the answer's alias chain.
  Name end = job.sent.name;
  for (unsigned guard = 0; guard < 16; ++guard) {
    auto link = chain_link(job.m->answer, end);
    if (!link) break;
    end = link->target();
  }
  auto& zone_proofs = proofs[key_of(denial_zone)];
  DenialSet d(zone_proofs, denial_zone);
  const bool nx = job.kind == ResponseType::nxdomain;
  Proof p = nx ? d.nxdomain(end) : d.nodata(end, job.sent.type);
  if (p == Proof::missing)
    return bogus(ede::NSEC_MISSING,
                 std::string("no NSEC/NSEC3 proof of ") + (nx ? "NXDOMAIN" : "NODATA") + " for " + end.to_text());
  if (p == Proof::insecure) {
    v.security = least(v.security, Security::insecure);
    return v;
  }
  std::optional<RRset> soa;
  for (auto& set : job.authority)
    if (set.type == type::SOA && set.name == denial_zone) soa = set;
  remember_denial(denial_zone, zone_proofs, soa);
  return v;
}

void Validator::remember_bogus(const Question& q, const Verdict& v) {
  if (bogus_.size() >= kMaxEntries) bogus_.clear();
  const std::uint32_t ttl = v.transient ? std::max<std::uint32_t>(1, core_.cache().limits().servfail_ttl)
                                        : core_.config().bogus_ttl;
  bogus_[question_key(q)] = {v, now_ms() + ttl * 1000ull};
}

std::optional<Verdict> Validator::cached_bogus(const Question& q) {
  if (bogus_.empty()) return std::nullopt;
  auto it = bogus_.find(question_key(q));
  if (it == bogus_.end()) return std::nullopt;
  if (it->second.expires_ms <= now_ms()) {
    bogus_.erase(it);
    return std::nullopt;
  }
  return it->second.verdict;
}

}  // namespace outpost::dns
