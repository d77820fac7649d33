// How the proxy turns origin host names into addresses. The recursive resolver
// (resolver/) implements this in-process; SystemResolver (uv_getaddrinfo) stands in until
// it is wired.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/net_address.hpp"

namespace outpost {

struct ResolveResult {
  int status = 0;  // 0 or a negative libuv error code
  std::vector<IpAddress> addresses;
  std::string error;
};

using ResolveCallback = std::function<void(ResolveResult)>;

// A lookup in progress; cancel() guarantees the callback will not run.
class ResolveRequest {
 public:
  virtual ~ResolveRequest() = default;
  virtual void cancel() = 0;
};

class NameResolver {
 public:
  virtual ~NameResolver() = default;
  // Runs on `loop`'s thread; the callback runs there too (possibly before resolve() returns
  // for cached answers). Returns null when the callback already ran.
  virtual std::unique_ptr<ResolveRequest> resolve(uv_loop_t* loop, const std::string& host, ResolveCallback cb) = 0;
};

// uv_getaddrinfo on the libuv thread pool.
class SystemResolver : public NameResolver {
 public:
  std::unique_ptr<ResolveRequest> resolve(uv_loop_t* loop, const std::string& host, ResolveCallback cb) override;
};

}  // namespace outpost
