#include "resolver/dnssec_denial.hpp"

#include <algorithm>

#include "resolver/dnssec_crypto.hpp"

namespace outpost::dns {

namespace {

// The longest common ancestor of two names.
Name common_ancestor(const Name& a, const Name& b) {
  unsigned n = std::min(a.label_count(), b.label_count());
  while (n > 0 && !(a.suffix(n) == b.suffix(n))) --n;
  return a.suffix(n);
}

Name wildcard_of(const Name& encloser) {
  Name w = encloser;
  if (!w.prepend("*")) return encloser;
  return w;
}

// Canonical "a < n < b" on a ring whose last element points back to the first.
template <typename Less>
bool between(Less less, const auto& owner, const auto& next, const auto& n) {
  if (less(owner, next)) return less(owner, n) && less(n, next);
  return less(owner, n) || less(n, next);  // the last record: wraps to the apex
}

}  // namespace

DenialSet::DenialSet(const std::vector<RRset>& records, const Name& zone) : zone_(zone) {
  std::optional<Nsec3Rdata> params;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const RRset& set = records[i];
    if (!set.name.is_subdomain_of(zone)) continue;
    for (auto& rd : set.rdata) {
      if (set.type == type::NSEC) {
        if (auto n = parse_nsec(rd)) nsec_.push_back({set.name, std::move(*n), i});
      } else if (set.type == type::NSEC3) {
        auto n = parse_nsec3(rd);
        // RFC 5155 section 8.2: the owner is one hashed label directly below the zone.
        if (!n || !(set.name.parent() == zone) || set.name.label_count() != zone.label_count() + 1) continue;
        auto h = base32hex_decode(set.name.first_label());
        if (!h || h->size() != n->next_hash.size() || n->hash_algorithm != 1) continue;
        // All of one response's NSEC3 records share the zone's parameters; others are ignored.
        if (!params) params = *n;
        if (n->iterations != params->iterations || !bytes_equal(n->salt, params->salt)) continue;
        if (n->iterations > kMaxNsec3Iterations) nsec3_too_costly_ = true;
        nsec3_.push_back({std::move(*h), std::move(*n), i});
      }
    }
  }
}

// ---- NSEC ---------------------------------------------------------------------------------------

const DenialSet::Nsec* DenialSet::nsec_matching(const Name& n) const {
  for (auto& x : nsec_)
    if (x.owner == n) return use(&x);
  return nullptr;
}

const DenialSet::Nsec* DenialSet::nsec_covering(const Name& n) const {
  auto less = [](const Name& a, const Name& b) { return canonical_compare(a, b) < 0; };
  for (auto& x : nsec_) {
    if (!between(less, x.owner, x.rd.next, n)) continue;
    // RFC 6840 section 4.1: an NSEC at a delegation (NS without SOA) or at a DNAME says
    // nothing of the names below it.
    if (n.is_subdomain_of(x.owner) &&
        ((x.rd.types.has(type::NS) && !x.rd.types.has(type::SOA)) || x.rd.types.has(type::DNAME)))
      continue;
    return use(&x);
  }
  return nullptr;
}

// An empty non-terminal: an NSEC sorts before n and its next name lies below n.
bool DenialSet::nsec_empty_non_terminal(const Name& n) const {
  for (auto& x : nsec_)
    if (canonical_compare(x.owner, n) < 0 && x.rd.next.is_subdomain_of(n) && !(x.rd.next == n)) return use(&x);
  return false;
}

Name DenialSet::nsec_closest_encloser(const Name& qname, const Nsec& covering) const {
  Name a = common_ancestor(qname, covering.owner), b = common_ancestor(qname, covering.rd.next);
  return a.label_count() >= b.label_count() ? a : b;
}

// ---- NSEC3 --------------------------------------------------------------------------------------

Bytes DenialSet::hash(const Name& n) const {
  if (nsec3_.empty()) return {};
  auto& p = nsec3_.front().rd;
  return nsec3_hash(n, p.hash_algorithm, p.salt, p.iterations);
}

const DenialSet::Nsec3* DenialSet::nsec3_matching(const Name& n) const {
  auto h = hash(n);
  for (auto& x : nsec3_)
    if (bytes_equal(x.hash, h)) return use(&x);
  return nullptr;
}

const DenialSet::Nsec3* DenialSet::nsec3_covering(const Name& n) const {
  auto h = hash(n);
  for (auto& x : nsec3_)
    if (between(bytes_less, x.hash, x.rd.next_hash, h)) return use(&x);
  return nullptr;
}

std::optional<DenialSet::Encloser> DenialSet::closest_encloser(const Name& qname) const {
  if (!qname.is_subdomain_of(zone_)) return std::nullopt;
  for (unsigned labels = qname.label_count(); labels > zone_.label_count(); --labels) {
    Name next_closer = qname.suffix(labels);
    Name candidate = qname.suffix(labels - 1);
    auto* m = nsec3_matching(candidate);
    if (!m) continue;
    // RFC 5155 section 8.3: the encloser must not be a delegation from the parent side, nor a DNAME.
    if ((m->rd.types.has(type::NS) && !m->rd.types.has(type::SOA)) || m->rd.types.has(type::DNAME))
      return std::nullopt;
    auto* cover = nsec3_covering(next_closer);
    if (!cover) return std::nullopt;
    return Encloser{candidate, cover};
  }
  return std::nullopt;
}

std::vector<std::size_t> DenialSet::used() const {
  std::vector<std::size_t> out = used_;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// ---- proofs -------------------------------------------------------------------------------------

Proof DenialSet::nxdomain(const Name& qname) const {
  if (!nsec_.empty()) {
    auto* cover = nsec_covering(qname);
    if (!cover || nsec_matching(qname) || nsec_empty_non_terminal(qname)) return Proof::missing;
    Name wild = wildcard_of(nsec_closest_encloser(qname, *cover));
    return nsec_covering(wild) ? Proof::proven : Proof::missing;
  }
  if (nsec3_.empty()) return Proof::missing;
  if (nsec3_too_costly_) return Proof::insecure;
  auto ce = closest_encloser(qname);
  if (!ce) return Proof::missing;
  if (!nsec3_covering(wildcard_of(ce->closest))) return Proof::missing;
  return ce->next_closer_cover->rd.opt_out() ? Proof::insecure : Proof::proven;
}

Proof DenialSet::nodata(const Name& qname, std::uint16_t qtype) const {
  auto absent = [qtype](const TypeBitmap& t) { return !t.has(qtype) && !t.has(type::CNAME); };
  if (!nsec_.empty()) {
    if (auto* m = nsec_matching(qname)) {
      if (!absent(m->rd.types)) return Proof::missing;
      // Not the parent side of a delegation (unless DS was asked), nor the child's apex for DS.
      const bool cut = m->rd.types.has(type::NS) && !m->rd.types.has(type::SOA);
      if (qtype == type::DS ? m->rd.types.has(type::SOA) : cut) return Proof::missing;
      return Proof::proven;
    }
    if (nsec_empty_non_terminal(qname)) return Proof::proven;
    // A wildcard's NODATA: qname itself covered, the wildcard matched without the type.
    if (auto* cover = nsec_covering(qname)) {
      auto* w = nsec_matching(wildcard_of(nsec_closest_encloser(qname, *cover)));
      if (w && absent(w->rd.types)) return Proof::proven;
    }
    return Proof::missing;
  }
  if (nsec3_.empty()) return Proof::missing;
  if (nsec3_too_costly_) return Proof::insecure;
  if (auto* m = nsec3_matching(qname)) {
    if (!absent(m->rd.types)) return Proof::missing;
    if (qtype == type::DS ? m->rd.types.has(type::SOA) : (m->rd.types.has(type::NS) && !m->rd.types.has(type::SOA)))
      return Proof::missing;
    return Proof::proven;
  }
  auto ce = closest_encloser(qname);
  if (!ce) return Proof::missing;
  // RFC 5155 section 8.6: DS under an opt-out span.
  if (qtype == type::DS) return ce->next_closer_cover->rd.opt_out() ? Proof::insecure : Proof::missing;
  // Section 8.7: a wildcard NODATA.
  auto* w = nsec3_matching(wildcard_of(ce->closest));
  return w && absent(w->rd.types) ? Proof::proven : Proof::missing;
}

Proof DenialSet::wildcard_expansion(const Name& qname, const Name& encloser) const {
  if (!qname.is_subdomain_of(encloser) || qname == encloser) return Proof::missing;
  if (!nsec_.empty()) return nsec_covering(qname) && !nsec_matching(qname) ? Proof::proven : Proof::missing;
  if (nsec3_.empty()) return Proof::missing;
  if (nsec3_too_costly_) return Proof::insecure;
  // Section 8.8: the next closer name is covered.
  auto* cover = nsec3_covering(qname.suffix(encloser.label_count() + 1));
  if (!cover) return Proof::missing;
  return Proof::proven;
}

Proof DenialSet::wildcard_synthesis(const Name& qname, const Name& encloser) const {
  if (!qname.is_subdomain_of(encloser) || qname.label_count() <= encloser.label_count()) return Proof::missing;
  if (!nsec_.empty()) {
    auto* cover = nsec_covering(qname);
    if (!cover || nsec_matching(qname) || !(nsec_closest_encloser(qname, *cover) == encloser)) return Proof::missing;
    return Proof::proven;
  }
  if (nsec3_.empty() || nsec3_too_costly_) return Proof::missing;
  const Name next_closer = qname.suffix(encloser.label_count() + 1);
  if (nsec3_matching(next_closer)) return Proof::missing;
  auto* cover = nsec3_covering(next_closer);
  return cover && !cover->rd.opt_out() ? Proof::proven : Proof::missing;
}

DenialSet::Cut DenialSet::ds_absence(const Name& name) const {
  auto classify = [](const TypeBitmap& t) {
    if (t.has(type::SOA) || t.has(type::DS)) return Cut::unproven;  // the child's apex answered, or DS exists
    return t.has(type::NS) ? Cut::insecure_delegation : Cut::not_a_cut;
  };
  if (!nsec_.empty()) {
    if (auto* m = nsec_matching(name)) return classify(m->rd.types);
    if (nsec_empty_non_terminal(name)) return Cut::not_a_cut;
    return Cut::unproven;
  }
  if (nsec3_.empty()) return Cut::unproven;
  if (nsec3_too_costly_) return Cut::insecure_delegation;
  if (auto* m = nsec3_matching(name)) return classify(m->rd.types);
  auto ce = closest_encloser(name);
  if (ce && ce->next_closer_cover->rd.opt_out()) return Cut::insecure_delegation;
  return Cut::unproven;
}

}  // namespace outpost::dns
