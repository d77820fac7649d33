// The FTP gateway: ftp:// URLs through the proxy (proxy/gateway.hpp), on libcurl's multi
// interface driven by the worker's libuv loop — curl_multi_socket_action with
// CURLMOPT_SOCKETFUNCTION onto uv_poll_t handles and CURLMOPT_TIMERFUNCTION onto a uv_timer_t,
// so transfers run on the worker's loop like the proxy's own connections, no thread of
// their own. One FtpGateway per worker (services/ftp/ftp_service.cpp makes them).
//
// An exchange (FtpJob): the host is resolved by the proxy's resolver and its addresses
// filtered by the destination rules (CURLOPT_RESOLVE pins curl to them), and every socket
// curl opens — control and data connections — is checked again against the rules
// (CURLOPT_OPENSOCKETFUNCTION), so a server's PASV/EPSV answer cannot aim the gateway
// elsewhere. Login: anonymous (ftp.anonymous_password) or the URL's / Authorization's
// credentials; passive only (EPSV, then PASV; the PASV address is ignored); TYPE I.
//   file:  with a stored copy: MDTM + SIZE only (CURLOPT_NOBODY, CURLOPT_FILETIME); both
//          unchanged → the stored copy (no transfer); else RETR, streamed to the client with
//          back-pressure (CURL_WRITEFUNC_PAUSE while the client's sink is congested, resumed
//          when it drains) and into the store; committed only when complete and as long as
//          SIZE said. A transfer that ends early is never presented as complete: before the
//          head it is a 502, after it the client's connection is cut.
//   directory (path ending in '/'): MLSD, or LIST when the server refuses MLSD (500/501/502;
//          remembered per server), parsed (ftp_listing) and rendered as HTML; not cached. A file path whose RETR fails with 550 but which is a directory (CWD
//          works) gets a 301 to the path with '/'.
//   errors: 550 → 404, 530 → 401 (with a Basic challenge), cannot connect → 502, no reply
//          within ftp.timeout → 504, anything else malformed → 502; the server's last reply
//          is in the error page.
#pragma once
#include <curl/curl.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/metrics.hpp"
#include "proxy/gateway.hpp"

namespace outpost {
class ProxyWorker;
namespace cache {
class Store;
}
}  // namespace outpost

namespace outpost::ftp {

class FtpJob;

struct FtpCounters {
  unsigned long long requests = 0;
  unsigned long long hits = 0;           // unchanged on the server: answered from the store
  unsigned long long refreshes = 0;      // stored but changed: fetched again
  unsigned long long misses = 0;         // fetched, nothing stored before
  unsigned long long listings = 0;
  unsigned long long mlsd_listings = 0;  // of them, from MLSD (the rest from LIST)
  unsigned long long mlsd_fallbacks = 0; // servers that refused MLSD
  unsigned long long redirects = 0;      // a directory asked without its '/'
  unsigned long long errors = 0;         // answered with an error page
  unsigned long long cut = 0;            // a transfer that failed after the head was sent
  unsigned long long transfers = 0;      // curl transfers run (checks, files, listings)
  unsigned long long bytes_in = 0;       // file and listing bytes from servers
  unsigned long long stored = 0;         // files committed to the store
  unsigned long long pauses = 0;         // transfers paused for a slow client
  unsigned long long nudges = 0;         // 10 ms ticks of curl_multi_perform (see start_nudge)
};

class FtpGateway final : public Gateway {
 public:
  FtpGateway(ProxyWorker& proxy, cache::Store* store);
  ~FtpGateway() override;
  FtpGateway(const FtpGateway&) = delete;
  FtpGateway& operator=(const FtpGateway&) = delete;

  std::unique_ptr<GatewayJob> start(GatewayRequest request, GatewayEvents& events) override;
  // Shutdown: once no job is left, curl's connections and the handles close; `done` runs
  // at once (jobs still open finish or are cut with the proxy's own drain).
  void drain();
  void collect(MetricsVisitor& out) const;
  FtpCounters& counters() { return counters_; }

 private:
  friend class FtpJob;
  struct Poll;
  static int on_socket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int on_timer_change(CURLM* multi, long timeout_ms, void* userp);
  static int on_close_socket(void* clientp, curl_socket_t s);
  void socket_action(curl_socket_t s, int flags);
  void finished_transfers();
  // Runs `job->step()` from the loop (never inside a curl or sink callback).
  void kick(FtpJob* job);
  void run_kicked();
  void add(FtpJob* job);
  void start_nudge();
  void remove(FtpJob* job);
  void maybe_close();

  ProxyWorker& proxy_;
  cache::Store* store_;
  uv_loop_t* loop_;
  CURLM* multi_;
  uv_timer_t* timer_;  // curl's timeout (heap: closed and freed in its close callback)
  uv_timer_t* kick_timer_;
  uv_timer_t* nudge_;  // curl_multi_perform while transfers run (see add())
  std::vector<FtpJob*> kicked_;
  std::unordered_set<FtpJob*> jobs_;
  std::unordered_map<curl_socket_t, Poll*> polls_;
  std::unordered_set<std::string> no_mlsd_;  // host:port of servers that refused MLSD
  bool draining_ = false;
  bool closed_ = false;
  FtpCounters counters_;
};

}  // namespace outpost::ftp
