#include "resolver/resolver.hpp"

#include "resolver/delegation.hpp"
#include "resolver/memory_dns_cache.hpp"
#include "resolver/resolver_core.hpp"
#include "resolver/store_dns_cache.hpp"

namespace outpost::dns {

std::shared_ptr<ResolverContext> ResolverContext::create(ResolverConfig config, CacheLimits limits,
                                                         std::shared_ptr<const LocalZones> local_zones,
                                                         std::shared_ptr<cache::Store> store, std::size_t max_entries) {
  auto ctx = std::make_shared<ResolverContext>();
  ctx->config = std::make_shared<const ResolverConfig>(std::move(config));
  if (store) ctx->cache = std::make_shared<StoreDnsCache>(std::move(store), limits);
  else ctx->cache = std::make_shared<MemoryDnsCache>(limits, max_entries);
  ctx->local_zones = std::move(local_zones);
  return ctx;
}

const char* to_string(ResolveStatus s) {
  switch (s) {
    case ResolveStatus::ok: return "ok";
    case ResolveStatus::nxdomain: return "nxdomain";
    case ResolveStatus::nodata: return "nodata";
    case ResolveStatus::servfail: return "servfail";
    case ResolveStatus::bad_name: return "bad name";
  }
  return "?";
}

// A host-name lookup: two questions (A, AAAA) whose results are merged.
struct Resolver::Pending {
  AddressCallback cb;
  std::vector<std::uint64_t> ids;
  unsigned outstanding = 0;
  std::vector<IpAddress> v4, v6;
  std::uint32_t ttl = UINT32_MAX;
  bool nxdomain = false, servfail = false;
  bool upstream = false;       // a question needed upstream queries (a cache miss)
  std::uint64_t started_ns = 0;
};

Resolver::Resolver(uv_loop_t* loop, std::shared_ptr<ResolverContext> context)
    : core_(std::make_unique<ResolverCore>(loop, context->config, context->cache, context->local_zones)) {}

Resolver::~Resolver() { shutdown(); }

void Resolver::shutdown() {
  pending_.clear();
  if (core_) core_->shutdown();
}

void Resolver::update(const ResolverContext& context) { core_->update(context.config, context.local_zones); }

void Resolver::flush_worker_caches() { core_->validator().clear(); }

void Resolver::track_trust_anchors() { core_->track_trust_anchors(); }

Resolver::Handle Resolver::query(const Question& q, ResolutionCallback cb, TraceSink trace, bool checking_disabled) {
  return core_->start(q, std::move(cb), std::move(trace), checking_disabled);
}

std::optional<Resolution> Resolver::answer_locally(const Question& q, bool checking_disabled) {
  return core_->answer_locally(q, checking_disabled);
}

Resolver::Handle Resolver::resolve(std::string_view host, AddressCallback cb) {
  // Host lookups get handles from their own range, apart from query() handles.
  Handle h = kResolveHandleBit | next_++;
  auto p = std::make_shared<Pending>();
  p->cb = std::move(cb);
  pending_[h] = p;
  auto deliver = [this, h](ResolveStatus st, std::vector<IpAddress> addrs, std::uint32_t ttl) {
    auto it = pending_.find(h);
    if (it == pending_.end()) return;
    auto cb = std::move(it->second->cb);
    pending_.erase(it);
    cb(st, std::move(addrs), ttl);
  };
  std::string text(host);
  if (!text.empty() && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  auto literal = IpAddress::parse(text);
  auto name = literal ? std::nullopt : Name::from_text(text);
  if (literal || !name || text.empty()) {
    // Answered without a lookup, but still from the loop.
    ResolveStatus st = literal ? ResolveStatus::ok : ResolveStatus::bad_name;
    std::vector<IpAddress> addrs;
    if (literal) addrs.push_back(*literal);
    core_->post([deliver, st, addrs] { deliver(st, addrs, st == ResolveStatus::ok ? 86400 : 0); });
    return h;
  }
  p->outstanding = 2;
  p->started_ns = uv_hrtime();
  for (std::uint16_t t : {type::A, type::AAAA}) {
    auto id = core_->start({*name, t, kClassIN}, [this, h, t, deliver](const Resolution& r) {
      auto it = pending_.find(h);
      if (it == pending_.end()) return;
      Pending& p = *it->second;
      if (r.rcode == rcode::NXDOMAIN) p.nxdomain = true;
      else if (r.rcode != rcode::NOERROR) p.servfail = true;
      if (!r.from_cache && !r.authoritative) p.upstream = true;
      for (auto& rr : r.answer) {
        if (rr.type != t) continue;
        (t == type::A ? p.v4 : p.v6).push_back(address_of(rr.rdata));
        p.ttl = std::min(p.ttl, rr.ttl);
      }
      for (auto& rr : r.answer) p.ttl = std::min(p.ttl, rr.ttl);  // CNAME links bound it too
      if (--p.outstanding > 0) return;
      metrics_.record(ResolverMetrics::kProxy, !p.upstream, p.v4.empty() && p.v6.empty() && !p.nxdomain && p.servfail,
                      static_cast<double>(uv_hrtime() - p.started_ns) / 1e9);
      std::vector<IpAddress> all = std::move(p.v4);
      all.insert(all.end(), p.v6.begin(), p.v6.end());
      if (!all.empty()) deliver(ResolveStatus::ok, std::move(all), p.ttl);
      else if (p.nxdomain) deliver(ResolveStatus::nxdomain, {}, 0);
      else if (p.servfail) deliver(ResolveStatus::servfail, {}, 0);
      else deliver(ResolveStatus::nodata, {}, 0);
    });
    p->ids.push_back(id);
  }
  return h;
}

void Resolver::cancel(Handle h) {
  auto it = pending_.find(h);
  if (it != pending_.end()) {
    for (auto id : it->second->ids) core_->cancel(id);
    pending_.erase(it);
    return;
  }
  core_->cancel(h);
}

}  // namespace outpost::dns
