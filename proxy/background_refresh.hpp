// stale-while-revalidate (RFC 5861 §3): after a stale response has been served, one
// conditional request refreshes the stored entry in the background, with no client
// attached. A 304 updates the stored headers; a storable 200 replaces the object;
// anything else leaves the entry as it was (it simply ages out).
#pragma once
#include <memory>
#include <string>

#include "cache/store.hpp"
#include "proxy/cache_policy.hpp"
#include "proxy/url.hpp"

namespace outpost {

class ProxyWorker;

class BackgroundRefresh {
 public:
  // The caller has won HttpCache::begin_background_refresh(key); this ends it.
  static void start(ProxyWorker& worker, const http::Url& url, const std::string& key, const std::string& store_key,
                    const http::StoredResponse& stale, const cache::Handle& stale_handle,
                    const http::HeaderList& request_headers);
};

}  // namespace outpost
