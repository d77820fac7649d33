#include "resolver/trust_anchors.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "resolver/dnssec_crypto.hpp"
#include "resolver/zone_file.hpp"

namespace outpost::dns {

namespace {

// A key's identity across revocation: its rdata with the REVOKE bit clear.
Bytes identity(const Bytes& rdata) {
  Bytes id = rdata;
  if (id.size() >= 2) id[1] = static_cast<std::uint8_t>(id[1] & ~0x80);
  return id;
}

bool parse_state(const std::string& s, KeyState* out) {
  for (KeyState k : {KeyState::add_pend, KeyState::valid, KeyState::missing, KeyState::revoked})
    if (s == to_string(k)) {
      *out = k;
      return true;
    }
  return false;
}

bool signs_set(const RRset& set, const std::vector<RrsigRdata>& sigs, const DnskeyRdata& key, std::uint32_t now) {
  std::uint16_t tag = key_tag(key.wire);
  for (auto& sig : sigs)
    if (sig.key_tag == tag && sig.algorithm == key.algorithm && sig.signer == set.name &&
        verify_rrsig(set, sig, key, now, /*revoked_ok=*/key.revoked()) == SigResult::ok)
      return true;
  return false;
}

}  // namespace

const char* to_string(KeyState s) {
  switch (s) {
    case KeyState::add_pend: return "addpend";
    case KeyState::valid: return "valid";
    case KeyState::missing: return "missing";
    case KeyState::revoked: return "revoked";
  }
  return "?";
}

TrustAnchorTracker::TrustAnchorTracker(std::vector<ResourceRecord> configured, AutoTrustSettings settings)
    : configured_(std::move(configured)), settings_(std::move(settings)) {
  std::lock_guard lk(mu_);
  rebuild_locked();
}

std::shared_ptr<const std::vector<ResourceRecord>> TrustAnchorTracker::anchors() const {
  std::lock_guard lk(mu_);
  return anchors_;
}

std::uint64_t TrustAnchorTracker::generation() const {
  std::lock_guard lk(mu_);
  return generation_;
}

std::vector<Name> TrustAnchorTracker::trust_points() const {
  std::vector<Name> out;
  for (auto& rr : configured_)
    if (std::find(out.begin(), out.end(), rr.name) == out.end()) out.push_back(rr.name);
  return out;
}

std::vector<TrustAnchorTracker::Tracked> TrustAnchorTracker::tracked() const {
  std::lock_guard lk(mu_);
  return keys_;
}

void TrustAnchorTracker::rebuild_locked() {
  auto out = std::make_shared<std::vector<ResourceRecord>>();
  for (const Name& point : trust_points()) {
    bool known = false;
    for (auto& k : keys_) {
      if (!(k.zone == point)) continue;
      known = true;
      if (k.state == KeyState::valid || k.state == KeyState::missing)
        out->push_back({point, type::DNSKEY, kClassIN, 3600, RdataOpaque{k.rdata}});
    }
    if (!known)
      for (auto& rr : configured_)
        if (rr.name == point) out->push_back(rr);
  }
  anchors_ = std::move(out);
  ++generation_;
}

std::uint32_t TrustAnchorTracker::interval_locked(const RRset& dnskeys, const std::vector<RrsigRdata>& sigs,
                                                  std::uint32_t now, bool failure) const {
  if (settings_.probe_interval_s) return settings_.probe_interval_s;
  // RFC 5011 section 2.3: queryInterval = MAX(1 hr, MIN(15 days, 1/2*OrigTTL,
  // 1/2*RRSigExpirationInterval)); after a failure retryTime = MAX(1 hour, MIN(1 day, .1*OrigTTL,
  // .1*expireInterval)).
  std::uint32_t ttl = dnskeys.ttl ? dnskeys.ttl : last_ttl_;
  std::uint32_t sig_left = last_sig_left_;
  for (auto& s : sigs)
    if (s.expiration > now) sig_left = sig_left ? std::min(sig_left, s.expiration - now) : s.expiration - now;
  if (!ttl && !sig_left) return 3600;  // nothing known yet: the shortest the RFC allows
  if (failure) {
    std::uint32_t t = 86400;
    if (ttl) t = std::min(t, ttl / 10);
    if (sig_left) t = std::min(t, sig_left / 10);
    return std::max<std::uint32_t>(3600, t);
  }
  std::uint32_t t = 15 * 86400;
  if (ttl) t = std::min(t, ttl / 2);
  if (sig_left) t = std::min(t, sig_left / 2);
  return std::max<std::uint32_t>(3600, t);
}

std::uint32_t TrustAnchorTracker::retry_after_failure() const {
  std::lock_guard lk(mu_);
  return interval_locked(RRset{}, {}, 0, true);
}

TrustAnchorTracker::Outcome TrustAnchorTracker::update(const Name& zone, const RRset& dnskeys,
                                                       const std::vector<RrsigRdata>& sigs, std::uint32_t now) {
  std::lock_guard lk(mu_);
  Outcome out;
  out.next_probe_s = interval_locked(dnskeys, sigs, now, false);
  std::vector<DnskeyRdata> keys;
  for (auto& rd : dnskeys.rdata)
    if (auto k = parse_dnskey(rd)) keys.push_back(*k);
  auto find = [&](const Bytes& rdata) -> Tracked* {
    Bytes id = identity(rdata);
    for (auto& t : keys_)
      if (t.zone == zone && bytes_equal(identity(t.rdata), id)) return &t;
    return nullptr;
  };
  bool point_known = std::any_of(keys_.begin(), keys_.end(), [&](const Tracked& t) { return t.zone == zone; });
  // Whether a key (its unrevoked form) is trusted now: a Valid or Missing tracked key, or,
  // before any is known for the point, one the configured anchors name.
  auto trusted = [&](const DnskeyRdata& k) {
    if (point_known) {
      Tracked* t = find(k.wire);
      return t && (t->state == KeyState::valid || t->state == KeyState::missing);
    }
    DnskeyRdata plain = k;
    plain.flags = static_cast<std::uint16_t>(k.flags & ~DnskeyRdata::kRevoked);
    plain.wire = identity(k.wire);
    for (auto& rr : configured_) {
      if (!(rr.name == zone)) continue;
      if (rr.type == type::DS)
        if (auto ds = parse_ds(rr.rdata); ds && ds_matches(zone, plain, *ds)) return true;
      if (rr.type == type::DNSKEY)
        if (auto a = parse_dnskey(rr.rdata); a && bytes_equal(identity(a->wire), plain.wire)) return true;
    }
    return false;
  };
  auto note = [&](const Bytes& rdata, const char* what) {
    out.changes.push_back(zone.to_text() + " key " + std::to_string(key_tag(identity(rdata))) + ": " + what);
  };
  bool changed = false;
  // Revocations first (RFC 5011 section 2.1): a key with REVOKE set that signs the set itself
  // and was trusted (or pending) is revoked; the set's validity is then judged without it.
  for (auto& k : keys) {
    if (!k.revoked() || !signs_set(dnskeys, sigs, k, now)) continue;
    Tracked* t = find(k.wire);
    if (t ? t->state == KeyState::revoked : (point_known || !trusted(k))) continue;
    if (!t) {
      keys_.push_back({zone, k.wire, KeyState::revoked, now, now});
    } else {
      t->rdata = k.wire;
      t->state = KeyState::revoked;
      t->changed = now;
    }
    note(k.wire, "revoked");
    changed = true;
  }
  point_known = point_known || std::any_of(keys_.begin(), keys_.end(), [&](const Tracked& t) { return t.zone == zone; });
  for (auto& k : keys) {
    if (k.revoked() || !trusted(k) || !signs_set(dnskeys, sigs, k, now)) continue;
    out.validated = true;
    break;
  }
  if (out.validated) {
    last_ttl_ = dnskeys.ttl;
    // RFC 5011 section 2.4.1: 30 days or the set's TTL, whichever is longer (a shorter
    // hold-down is a test setting, taken as it is).
    std::uint32_t hold = settings_.hold_down_s >= 30 * 86400 ? std::max(settings_.hold_down_s, dnskeys.ttl)
                                                             : settings_.hold_down_s;
    bool bootstrap = !std::any_of(keys_.begin(), keys_.end(), [&](const Tracked& t) {
      return t.zone == zone && t.state != KeyState::revoked;
    });
    for (auto& k : keys) {
      if (k.revoked() || !(k.flags & DnskeyRdata::kSep) || !k.zone_key()) continue;
      Tracked* t = find(k.wire);
      if (!t) {
        // The configured anchors' own keys are trusted from the first validated set on.
        bool anchor = bootstrap && [&] {
          for (auto& rr : configured_) {
            if (!(rr.name == zone)) continue;
            if (rr.type == type::DS)
              if (auto ds = parse_ds(rr.rdata); ds && ds_matches(zone, k, *ds)) return true;
            if (rr.type == type::DNSKEY)
              if (auto a = parse_dnskey(rr.rdata); a && bytes_equal(a->wire, k.wire)) return true;
          }
          return false;
        }();
        keys_.push_back({zone, k.wire, anchor ? KeyState::valid : KeyState::add_pend, now, now});
        note(k.wire, anchor ? "valid (a configured anchor)" : "addpend (new key, in hold-down)");
        changed = true;
      } else if (t->state == KeyState::add_pend && now >= t->added + hold) {
        t->state = KeyState::valid;
        t->changed = now;
        note(k.wire, "valid (hold-down over)");
        changed = true;
      } else if (t->state == KeyState::missing) {
        t->state = KeyState::valid;
        t->changed = now;
        note(k.wire, "valid (back)");
        changed = true;
      }
    }
    for (auto it = keys_.begin(); it != keys_.end();) {
      bool present = std::any_of(keys.begin(), keys.end(),
                                 [&](const DnskeyRdata& k) { return bytes_equal(identity(k.wire), identity(it->rdata)); });
      if (!(it->zone == zone)) {
        ++it;
        continue;
      }
      if (!present && it->state == KeyState::add_pend) {
        note(it->rdata, "forgotten (gone before its hold-down ended)");
        it = keys_.erase(it);
        changed = true;
        continue;
      }
      if (!present && it->state == KeyState::valid) {
        it->state = KeyState::missing;
        it->changed = now;
        note(it->rdata, "missing (still trusted)");
        changed = true;
      }
      if (it->state == KeyState::revoked && now >= it->changed + settings_.hold_down_s) {
        note(it->rdata, "removed (revoked, hold-down over)");
        it = keys_.erase(it);
        changed = true;
        continue;
      }
      ++it;
    }
  }
  if (changed) {
    rebuild_locked();
    std::string error;
    if (!save_locked(&error)) out.changes.push_back("could not write the state: " + error);
  }
  return out;
}

bool TrustAnchorTracker::save_locked(std::string* error) const {
  if (settings_.state_file.empty()) return true;
  std::ostringstream text;
  text << "; Outpost: DNSSEC trust anchors tracked by RFC 5011. Written by Outpost, read at start.\n"
       << "; Each key: its DNSKEY record, then its state, when it was first seen and last changed (unix),\n"
       << "; and its key tag (without the REVOKE bit).\n";
  for (auto& k : keys_) {
    ResourceRecord rr{k.zone, type::DNSKEY, kClassIN, 3600, RdataOpaque{k.rdata}};
    text << rr_to_text(rr) << " ; state=" << to_string(k.state) << " added=" << k.added << " changed=" << k.changed
         << " tag=" << key_tag(identity(k.rdata)) << "\n";
  }
  std::string tmp = settings_.state_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text.str();
    f.flush();
    if (!f) {
      *error = tmp + ": cannot write";
      return false;
    }
  }
  if (std::rename(tmp.c_str(), settings_.state_file.c_str()) != 0) {
    *error = settings_.state_file + ": cannot rename into place";
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool TrustAnchorTracker::load(std::string* error) {
  if (settings_.state_file.empty()) return true;
  std::ifstream f(settings_.state_file);
  if (!f) return true;  // no state yet: start from the configured anchors
  std::vector<Tracked> keys;
  std::string line;
  unsigned lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == ';') continue;
    auto bad = [&](const std::string& why) {
      *error = settings_.state_file + ":" + std::to_string(lineno) + ": " + why;
      return false;
    };
    auto cut = line.find(" ; state=");
    if (cut == std::string::npos) return bad("no state");
    ZoneFileError ze;
    auto rrs = parse_zone_text(line.substr(0, cut) + "\n", Name::root(), 3600, &ze);
    if (!rrs || rrs->size() != 1 || rrs->front().type != type::DNSKEY) return bad("expected one DNSKEY record");
    auto key = parse_dnskey(rrs->front().rdata);
    if (!key) return bad("bad DNSKEY");
    Tracked t;
    t.zone = rrs->front().name;
    t.rdata = key->wire;
    std::istringstream fields(line.substr(cut + 3));
    std::string field;
    bool have_state = false;
    while (fields >> field) {
      auto eq = field.find('=');
      if (eq == std::string::npos) return bad("bad field " + field);
      std::string name = field.substr(0, eq), value = field.substr(eq + 1);
      if (name == "state") {
        if (!parse_state(value, &t.state)) return bad("bad state " + value);
        have_state = true;
      } else if (name == "added" || name == "changed") {
        try {
          (name == "added" ? t.added : t.changed) = static_cast<std::uint32_t>(std::stoul(value));
        } catch (...) {
          return bad("bad time " + value);
        }
      }
    }
    if (!have_state) return bad("no state");
    keys.push_back(std::move(t));
  }
  std::lock_guard lk(mu_);
  keys_ = std::move(keys);
  rebuild_locked();
  return true;
}

}  // namespace outpost::dns
