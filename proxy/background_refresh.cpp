#include "proxy/background_refresh.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

#include "core/uv_write.hpp"
#include "proxy/origin_pool.hpp"
#include "proxy/proxy_worker.hpp"

namespace outpost {
namespace {

class Refresher : public OriginEvents {
 public:
  Refresher(ProxyWorker& w, http::Url url, std::string key, std::string store_key, http::StoredResponse stale,
            cache::Handle stale_handle, http::HeaderList req)
      : w_(w), url_(std::move(url)), key_(std::move(key)), store_key_(std::move(store_key)), stale_(std::move(stale)),
        stale_handle_(std::move(stale_handle)), req_(std::move(req)) {}

  void run() {
    w_.add_background(this, [this] { done("aborted: shutting down"); });
    if (const auto& lit = url_.literal) {
      connect({*lit});
      return;
    }
    auto req = w_.resolver().resolve(w_.loop(), url_.host, [this](ResolveResult r) {
      lookup_.reset();
      if (r.status != 0) return done("cannot resolve " + url_.host);
      connect(std::move(r.addresses));
    });
    if (req) lookup_ = std::move(req);  // null: the callback already ran
  }

 private:
  void connect(std::vector<IpAddress> addrs) {
    const auto& s = *w_.settings();
    for (const auto& a : addrs) {
      if (!s.rules.address_allowed(a, url_.port)) continue;
      OriginKey origin = w_.pool().key_for(url_, false);
      origin_ = w_.pool().acquire(origin, origin.to_string());
      origin_->set_owner(this);
      if (origin_->connected()) on_origin_connected();
      else origin_->connect(a, url_.port, s.config.origin.connect_timeout);
      return;
    }
    done("no allowed address");
  }

  void on_origin_connected() override {
    const auto& cfg = w_.settings()->config;
    http::RequestHead head{"GET", url_.path, url_.authority(), {}, false, {}};
    // The Vary-selected request headers, so the origin picks the same variant.
    for (const auto& [name, value] : stale_.vary)
      if (!value.empty()) head.headers.add(name, value);
    if (auto* etag = stale_.headers.find("ETag")) head.headers.add("If-None-Match", *etag);
    if (auto* lm = stale_.headers.find("Last-Modified")) head.headers.add("If-Modified-Since", *lm);
    if (cfg.proxy.via) http::append_via(head.headers, 1, 1, cfg.server.name);
    request_time_ = static_cast<std::int64_t>(std::time(nullptr));
    origin_->begin_exchange(false, cfg.origin.read_timeout);
    origin_->write({slice_of(http::write_request_head(head))});
  }

  int on_origin_head(http::MessageHead& head) override {
    auto* cache = w_.cache();
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    if (head.status == 304) {
      cache->refresh(store_key_, cache->merge_not_modified(w_.settings()->cache_policy, stale_, head.headers, request_time_, now, url_.to_string()),
                     stale_handle_);
      outcome_ = "refreshed (304)";
      return 0;
    }
    std::string why;
    http::CacheControl none;
    if (auto meta = cache->storable_meta(w_.settings()->cache_policy, req_, none, head, url_.to_string(), request_time_, now, &why)) {
      writer_ = cache->begin_store(key_, *meta, head.content_length);
      outcome_ = "replaced";
    } else {
      outcome_ = "not storable: " + why;
    }
    return 0;
  }
  int on_origin_body(Slice body) override {
    if (writer_ && writer_.append(body.view()) != cache::Status::kOk) writer_.abort();
    return 0;
  }
  int on_origin_end() override {
    if (writer_) writer_.commit();
    OriginConnection* c = origin_;
    origin_ = nullptr;
    c->release_to_pool();
    done(outcome_);
    return 0;
  }
  void on_origin_error(int, bool, const std::string& what) override {
    origin_ = nullptr;
    done("failed: " + what);
  }
  void on_origin_write_done() override {}

  void done(const std::string& outcome) {
    if (finished_) return;
    finished_ = true;
    w_.remove_background(this);
    lookup_.reset();
    spdlog::debug("background refresh of {}: {}", url_.to_string(), outcome);
    if (writer_) writer_.abort();  // no-op after commit
    if (origin_) origin_->close();
    w_.cache()->end_background_refresh(key_);
    // Freed on the next loop turn: the origin connection may still call back into us
    // (on_origin_read_processed) before its current read returns.
    w_.worker().post([this] { delete this; });
  }
  void on_origin_read_processed() override {}

  ProxyWorker& w_;
  http::Url url_;
  std::string key_, store_key_;
  http::StoredResponse stale_;
  cache::Handle stale_handle_;
  http::HeaderList req_;
  std::unique_ptr<ResolveRequest> lookup_;
  OriginConnection* origin_ = nullptr;
  cache::Writer writer_;
  std::int64_t request_time_ = 0;
  std::string outcome_ = "no answer";
  bool finished_ = false;
};

}  // namespace

void BackgroundRefresh::start(ProxyWorker& worker, const http::Url& url, const std::string& key,
                              const std::string& store_key, const http::StoredResponse& stale,
                              const cache::Handle& stale_handle, const http::HeaderList& request_headers) {
  (new Refresher(worker, url, key, store_key, stale, stale_handle, request_headers))->run();
}

}  // namespace outpost
