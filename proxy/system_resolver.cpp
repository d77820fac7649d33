#include <netdb.h>

#include <cstring>

#include "proxy/name_resolver.hpp"

namespace outpost {
namespace {

// The uv request outlives a cancelled ResolveRequest: libuv may already be running the
// lookup on the thread pool, so the state is freed only in the completion callback.
class GaiRequest;
struct GaiState {
  uv_getaddrinfo_t req;
  ResolveCallback cb;
  GaiRequest* handle = nullptr;
  bool cancelled = false;
};

class GaiRequest : public ResolveRequest {
 public:
  explicit GaiRequest(GaiState* s) : s_(s) { s_->handle = this; }
  ~GaiRequest() override { cancel(); }
  void cancel() override {
    if (!s_) return;
    s_->cancelled = true;
    s_->cb = nullptr;
    s_->handle = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&s_->req));
    s_ = nullptr;
  }
  void detach() { s_ = nullptr; }

 private:
  GaiState* s_;
};

void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* s = static_cast<GaiState*>(req->data);
  if (s->handle) s->handle->detach();  // the handle may be destroyed by the callback
  if (!s->cancelled && s->cb) {
    ResolveResult r;
    r.status = status;
    if (status == 0) {
      for (auto* ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        auto a = IpAddress::from_sockaddr(ai->ai_addr);
        bool dup = false;
        for (auto& x : r.addresses) dup = dup || x == a;
        if (!dup) r.addresses.push_back(a);
      }
      if (r.addresses.empty()) r.status = UV_EAI_NODATA;
    }
    if (r.status != 0) r.error = uv_strerror(r.status);
    auto cb = std::move(s->cb);
    cb(std::move(r));
  }
  uv_freeaddrinfo(res);
  delete s;
}

}  // namespace

std::unique_ptr<ResolveRequest> SystemResolver::resolve(uv_loop_t* loop, const std::string& host, ResolveCallback cb) {
  auto* s = new GaiState;
  s->cb = std::move(cb);
  s->req.data = s;
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop, &s->req, on_resolved, host.c_str(), nullptr, &hints);
  if (rc != 0) {
    auto cbk = std::move(s->cb);
    delete s;
    ResolveResult r;
    r.status = rc;
    r.error = uv_strerror(rc);
    cbk(std::move(r));
    return nullptr;
  }
  return std::make_unique<GaiRequest>(s);
}

}  // namespace outpost
