#include "services/ftp/ftp_service.hpp"

#include <curl/curl.h>

#include <mutex>

#include "core/config_section.hpp"
#include "proxy/proxy_worker.hpp"

namespace outpost::ftp {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Ftp& f = config.ftp;
  // On by default, as Squid serves ftp:// by default; the destination rules apply as to
  // http:// (the gateway never bypasses them).
  f.enabled = s.boolean("enabled", true);
  f.anonymous_password = s.string("anonymous_password", "outpost@");
  for (char c : f.anonymous_password)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) s.fail("anonymous_password", "control characters");
  f.timeout = s.number("timeout", 60, 1, 3600);
  f.max_listing = s.integer("max_listing", 4ull << 20, 1024, 1ull << 30);
  f.cache = s.boolean("cache", true);
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("ftp", &parse_section); }

FtpService::FtpService(std::vector<Worker*> workers, std::function<ProxyWorker*(unsigned)> proxy_of,
                       cache::Store* store)
    : workers_(std::move(workers)), proxy_of_(std::move(proxy_of)), store_(store) {}

FtpService::~FtpService() = default;

bool FtpService::configure(const Config&, std::string* error) {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    *error = std::string("libcurl: ") + curl_easy_strerror(rc);
    return false;
  }
  gateways_.clear();
  gateways_.resize(workers_.size());
  return true;
}

bool FtpService::start(Worker& worker, std::string*) {
  // Made on every worker even while [ftp] is off: a reload can turn it on (routing asks
  // the settings snapshot's ftp.enabled).
  ProxyWorker* p = proxy_of_(worker.index());
  if (!p) return true;
  auto& g = gateways_.at(worker.index());
  g = std::make_unique<FtpGateway>(*p, store_);
  p->set_ftp_gateway(g.get());
  return true;
}

void FtpService::collect_metrics(Worker& worker, MetricsVisitor& out) {
  if (auto& g = gateways_.at(worker.index())) g->collect(out);
}

std::vector<std::string> FtpService::reload(const Config&) {
  return {};  // every [ftp] setting comes with the proxy's settings snapshot
}

void FtpService::drain(Worker& worker, std::function<void()> done) {
  if (auto& g = gateways_.at(worker.index())) {
    if (ProxyWorker* p = proxy_of_(worker.index())) p->set_ftp_gateway(nullptr);
    g->drain();
  }
  done();
}

}  // namespace outpost::ftp
