// A gateway: an origin protocol other than HTTP behind the proxy (ftp:// URLs, answered by
// services/ftp). Routing decides as for http:// (client, method, destination rules on the
// name); the request then hands itself to the worker's gateway for the scheme instead of a
// Forwarder, and the gateway answers through the request's ResponseSink. proxy/ knows only
// this contract, never the protocol.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/net_address.hpp"
#include "proxy/outcome.hpp"
#include "proxy/response_sink.hpp"
#include "proxy/url.hpp"

namespace outpost {

struct ProxySettings;

struct GatewayRequest {
  http::Url url;           // without credentials
  std::string user;        // from the URL's userinfo, else the request's Authorization: Basic;
  std::string password;    // empty user: anonymous
  bool credentials_given = false;
  bool head = false;       // HEAD: the head only
  std::optional<IpAddress> client;
  std::shared_ptr<const ProxySettings> settings;  // the destination rules, timeouts
};

// What the gateway tells the request (for its log line and metrics). Everything sent goes
// through sink(): start, send, end, abort. After end() or abort() the gateway calls nothing.
class GatewayEvents {
 public:
  virtual ResponseSink& gateway_sink() = 0;
  virtual void on_gateway_peer(const IpAddress& peer) = 0;
  // Before the answer's start(): its status, the log code and content type.
  virtual void on_gateway_answer(int status, Outcome code, std::string_view content_type) = 0;

 protected:
  ~GatewayEvents() = default;
};

// One exchange. Destroyed by the request (never inside the gateway's own callbacks: the
// request is recycled after the loop turn).
class GatewayJob {
 public:
  virtual ~GatewayJob() = default;
  // The sink went below its low-water mark: produce again.
  virtual void on_sink_drained() = 0;
  // The client is gone: stop, call nothing more (may be called from inside the job's own
  // call into the sink).
  virtual void cancel() = 0;
};

class Gateway {
 public:
  virtual ~Gateway() = default;
  // Starts the exchange; never calls back before returning.
  virtual std::unique_ptr<GatewayJob> start(GatewayRequest request, GatewayEvents& events) = 0;
};

}  // namespace outpost
