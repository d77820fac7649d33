#include "proxy/dns_name_resolver.hpp"

#include "proxy/http_headers.hpp"

namespace outpost {
namespace {

class DnsRequest : public ResolveRequest {
 public:
  DnsRequest(dns::Resolver& r, dns::Resolver::Handle h, std::shared_ptr<bool> finished)
      : r_(r), h_(h), finished_(std::move(finished)) {}
  ~DnsRequest() override { cancel(); }
  void cancel() override {
    // Never cancel from inside the resolution's own callback (it is finished by then).
    if (h_ && !*finished_) r_.cancel(h_);
    h_ = 0;
  }

 private:
  dns::Resolver& r_;
  dns::Resolver::Handle h_;
  std::shared_ptr<bool> finished_;
};

bool is_localhost(std::string_view host) {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (http::iequals(host, "localhost")) return true;
  return host.size() > 10 && http::iequals(host.substr(host.size() - 10), ".localhost");
}

}  // namespace

std::unique_ptr<ResolveRequest> DnsNameResolver::resolve(uv_loop_t*, const std::string& host, ResolveCallback cb) {
  if (is_localhost(host)) {
    ResolveResult r;
    r.addresses = {*IpAddress::parse("127.0.0.1"), *IpAddress::parse("::1")};
    cb(std::move(r));
    return nullptr;
  }
  auto finished = std::make_shared<bool>(false);
  auto handle = resolver_.resolve(host, [cb = std::move(cb), finished](dns::ResolveStatus st,
                                                                      std::vector<IpAddress> addrs, std::uint32_t) {
    *finished = true;
    ResolveResult r;
    if (st == dns::ResolveStatus::ok && !addrs.empty()) {
      r.addresses = std::move(addrs);
    } else {
      r.status = UV_EAI_NONAME;
      r.error = std::string(dns::to_string(st));
    }
    cb(std::move(r));
  });
  return std::make_unique<DnsRequest>(resolver_, handle, std::move(finished));
}

}  // namespace outpost
