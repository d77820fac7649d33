#include "services/ftp/ftp_gateway.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "cache/store.hpp"
#include "proxy/error_page.hpp"
#include "proxy/proxy_worker.hpp"
#include "services/ftp/ftp_listing.hpp"

namespace outpost::ftp {

namespace {

Slice copy_slice(std::string_view s) {
  ChunkRef c = ChunkRef::copy_of(s);
  const char* d = c->data();
  return Slice{std::move(c), d, s.size()};
}

std::string_view content_type_for(std::string_view path) {
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return "application/octet-stream";
  std::string ext(path.substr(dot + 1));
  for (auto& c : ext) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  static const std::pair<const char*, const char*> kTypes[] = {
      {"txt", "text/plain"},          {"html", "text/html"},          {"htm", "text/html"},
      {"css", "text/css"},            {"js", "text/javascript"},      {"json", "application/json"},
      {"xml", "application/xml"},     {"pdf", "application/pdf"},     {"png", "image/png"},
      {"jpg", "image/jpeg"},          {"jpeg", "image/jpeg"},         {"gif", "image/gif"},
      {"svg", "image/svg+xml"},       {"gz", "application/gzip"},     {"tgz", "application/gzip"},
      {"bz2", "application/x-bzip2"}, {"xz", "application/x-xz"},     {"zip", "application/zip"},
      {"tar", "application/x-tar"},   {"iso", "application/x-iso9660-image"},
      {"deb", "application/vnd.debian.binary-package"}, {"md", "text/markdown"}, {"asc", "text/plain"},
      {"sig", "application/pgp-signature"}};
  for (const auto& [e, t] : kTypes)
    if (ext == e) return t;
  return "application/octet-stream";
}

// A server's reply line made safe for a header and a page: printable ASCII, bounded.
std::string clean_reply(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= 200) break;
    if (c >= 0x20 && c < 0x7f) out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Stored metadata: "ftp1 <mtime or -1> <size or -1> <content type>".
struct StoredMeta {
  long long mtime = -1;
  long long size = -1;
  std::string content_type;
};

std::string encode_meta(const StoredMeta& m) {
  return "ftp1 " + std::to_string(m.mtime) + " " + std::to_string(m.size) + " " + m.content_type;
}

std::optional<StoredMeta> decode_meta(std::string_view s) {
  StoredMeta m;
  char type[128] = {0};
  std::string z(s);
  if (std::sscanf(z.c_str(), "ftp1 %lld %lld %127s", &m.mtime, &m.size, type) != 3) return std::nullopt;
  m.content_type = type;
  return m;
}

}  // namespace

// ---------------------------------------------------------------- one exchange

class FtpJob final : public GatewayJob {
 public:
  enum class Phase { kResolve, kCheck, kFetch, kList, kProbeDir, kDone };

  FtpJob(FtpGateway& g, GatewayRequest r, GatewayEvents& ev) : g_(g), r_(std::move(r)), ev_(ev) {
    const auto& path = r_.url.path;
    directory_ = !path.empty() && path.back() == '/';
    key_ = "ftp://";
    if (r_.credentials_given) {
      // The user percent-encoded (all but unreserved characters): a user name holding "/" or
      // "@" cannot make its key another login's or anonymous's.
      static constexpr char kHex[] = "0123456789ABCDEF";
      for (unsigned char c : r_.user) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
          key_ += static_cast<char>(c);
        } else {
          key_ += '%';
          key_ += kHex[c >> 4];
          key_ += kHex[c & 15];
        }
      }
      key_ += '@';
    }
    key_ += r_.url.authority() + r_.url.path;
  }

  ~FtpJob() override {
    resolving_.reset();
    if (easy_) {
      if (in_multi_) g_.remove(this);
      curl_easy_cleanup(easy_);
    }
    if (resolve_list_) curl_slist_free_all(resolve_list_);
    g_.jobs_.erase(this);
    std::erase(g_.kicked_, this);
    g_.maybe_close();
  }

  void begin() {
    ++g_.counters_.requests;
    g_.jobs_.insert(this);
    g_.kick(this);  // never call back from inside start()
  }

  void on_sink_drained() override {
    if (paused_ && !cancelled_) g_.kick(this);
  }

  void cancel() override {
    cancelled_ = true;
    phase_ = Phase::kDone;
    resolving_.reset();
    writer_ = cache::Writer();
  }

  // From the gateway's kick: the next thing to do.
  void step() {
    if (cancelled_) return;
    if (paused_) {
      paused_ = false;
      g_.start_nudge();
      curl_easy_pause(easy_, CURLPAUSE_CONT);  // may deliver held data through on_write at once
      return;
    }
    if (phase_ == Phase::kResolve && !resolving_ && !resolved_) resolve();
  }

  static size_t on_write(char* p, size_t size, size_t n, void* ud) {
    return static_cast<FtpJob*>(ud)->write(p, size * n);
  }
  static size_t on_header(char* p, size_t size, size_t n, void* ud) {
    auto* self = static_cast<FtpJob*>(ud);
    std::string_view line(p, size * n);
    // FTP replies as the server sent them ("550 Failed to open file.\r\n").
    if (line.size() >= 4 && std::isdigit(static_cast<unsigned char>(line[0]))) self->last_reply_ = clean_reply(line);
    return size * n;
  }
  static curl_socket_t on_open_socket(void* ud, curlsocktype, struct curl_sockaddr* a) {
    return static_cast<FtpJob*>(ud)->open_socket(a);
  }

  // A transfer ended (from the gateway, after curl_multi_remove_handle).
  void transfer_done(CURLcode rc) {
    in_multi_ = false;
    if (cancelled_) return;
    long reply = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &reply);
    switch (phase_) {
      case Phase::kCheck: return check_done(rc, reply);
      case Phase::kFetch: return fetch_done(rc, reply);
      case Phase::kList: return list_done(rc, reply);
      case Phase::kProbeDir: return probe_done(rc);
      default: return;
    }
  }

 private:
  const Config& config() const { return r_.settings->config; }
  ResponseSink& sink() { return ev_.gateway_sink(); }

  void resolve() {
    if (r_.url.literal) {
      use_addresses({*r_.url.literal});
      return;
    }
    starting_ = true;
    answered_while_starting_ = false;
    auto req = g_.proxy_.resolver().resolve(g_.loop_, r_.url.host, [this](ResolveResult res) {
      if (starting_) answered_while_starting_ = true;
      resolving_.reset();
      if (res.status != 0) {
        fail(502, Outcome::kMiss, "Cannot resolve " + r_.url.host + ": " + res.error, false);
        return;
      }
      use_addresses(res.addresses);
    });
    starting_ = false;
    // A resolver may answer before returning (its cache): then there is no lookup to hold.
    if (!answered_while_starting_) resolving_ = std::move(req);
  }

  void use_addresses(const std::vector<IpAddress>& found) {
    resolved_ = true;
    std::string list;
    bool denied = false;
    for (const auto& a : found) {
      if (!r_.settings->rules.address_allowed(a, r_.url.port, r_.client)) {
        denied = true;
        continue;
      }
      std::string t = a.to_string();
      if (t.find(':') != std::string::npos) t = "[" + t + "]";
      list += (list.empty() ? "" : ",") + t;
    }
    if (list.empty()) {
      if (denied) fail(403, Outcome::kDenied, "Access to " + r_.url.host + " is denied by this proxy's rules.", false);
      else fail(502, Outcome::kMiss, "No address for " + r_.url.host, false);
      return;
    }
    if (!r_.url.literal) {
      std::string entry = r_.url.host + ":" + std::to_string(r_.url.port) + ":" + list;
      resolve_list_ = curl_slist_append(nullptr, entry.c_str());
    }
    if (directory_) {
      // MLSD first (machine-readable facts, RFC 3659) unless this server already refused
      // it; a refusal (500/501/502: not implemented) falls back to LIST at once.
      mlsd_ = !g_.no_mlsd_.count(r_.url.authority());
      run(Phase::kList, r_.url.to_string(), false);
      return;
    }
    // A file: MDTM and SIZE first (the validators of a stored copy, and the length the
    // transfer must have), then RETR unless the stored copy is still the same.
    if (config().ftp.cache && g_.store_) {
      stored_ = g_.store_->lookup(cache::Namespace::kFtp, key_);
      if (stored_) stored_meta_ = decode_meta(stored_.metadata());
      if (!stored_meta_ || (stored_meta_->mtime < 0 && stored_meta_->size < 0)) stored_ = cache::Handle();
    }
    run(Phase::kCheck, r_.url.to_string(), true);
  }

  // Starts a transfer of `url` (NOBODY: the commands before RETR only).
  void run(Phase phase, const std::string& url, bool nobody) {
    phase_ = phase;
    if (!easy_) easy_ = curl_easy_init();
    else curl_easy_reset(easy_);
    last_reply_.clear();
    errbuf_[0] = 0;
    CURL* e = easy_;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "ftp");
    // Never through a proxy named in the daemon's environment (ftp_proxy, all_proxy).
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_PRIVATE, this);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_);
    if (resolve_list_) curl_easy_setopt(e, CURLOPT_RESOLVE, resolve_list_);
    curl_easy_setopt(e, CURLOPT_USERNAME, r_.credentials_given ? r_.user.c_str() : "anonymous");
    curl_easy_setopt(e, CURLOPT_PASSWORD,
                     r_.credentials_given ? r_.password.c_str() : config().ftp.anonymous_password.c_str());
    curl_easy_setopt(e, CURLOPT_FTP_USE_EPSV, 1L);
    curl_easy_setopt(e, CURLOPT_FTP_SKIP_PASV_IP, 1L);
    curl_easy_setopt(e, CURLOPT_TRANSFERTEXT, 0L);
    curl_easy_setopt(e, CURLOPT_FILETIME, phase == Phase::kCheck ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_NOBODY, nobody ? 1L : 0L);
    // A directory URL: curl sends its custom request instead of LIST.
    if (phase == Phase::kList && mlsd_) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "MLSD");
    // RETR reads until the data connection ends, not only as far as SIZE said: a server that
    // sends more than it announced is caught (write()) instead of silently cut to SIZE.
    if (phase == Phase::kFetch) curl_easy_setopt(e, CURLOPT_IGNORE_CONTENT_LENGTH, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config().origin.connect_timeout * 1000));
    long t = static_cast<long>(config().ftp.timeout);
    curl_easy_setopt(e, CURLOPT_SERVER_RESPONSE_TIMEOUT, std::max(1L, t));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);  // paused transfers are not speed-checked
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, std::max(1L, t));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &FtpJob::on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &FtpJob::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &FtpJob::on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &FtpGateway::on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, &g_);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (spdlog::should_log(spdlog::level::trace)) {  // curl's own account of the exchange
      curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
      curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, +[](CURL*, curl_infotype t, char* p, size_t n, void*) -> int {
        std::string_view line(p, n);
        if (t == CURLINFO_HEADER_OUT && line.size() >= 5 && (line.substr(0, 5) == "PASS " || line.substr(0, 5) == "pass "))
          line = "PASS ****";  // never a password in a log
        if (t == CURLINFO_TEXT || t == CURLINFO_HEADER_IN || t == CURLINFO_HEADER_OUT)
          spdlog::trace("ftp curl {}: {}", static_cast<int>(t), clean_reply(line));
        return 0;
      });
    }
    ++g_.counters_.transfers;
    g_.add(this);
    in_multi_ = true;
  }

  curl_socket_t open_socket(struct curl_sockaddr* a) {
    if (cancelled_) return CURL_SOCKET_BAD;
    IpAddress ip = IpAddress::from_sockaddr(&a->addr);
    std::uint16_t port = 0;
    if (a->family == AF_INET) port = ntohs(reinterpret_cast<const sockaddr_in*>(&a->addr)->sin_port);
    else if (a->family == AF_INET6) port = ntohs(reinterpret_cast<const sockaddr_in6*>(&a->addr)->sin6_port);
    else return CURL_SOCKET_BAD;
    if (!r_.settings->rules.address_allowed(ip, port, r_.client)) {
      spdlog::info("ftp: {}: connection to {} port {} refused by the destination rules", r_.url.to_string(),
                   ip.to_string(), port);
      denied_socket_ = true;
      return CURL_SOCKET_BAD;
    }
    if (!peer_told_) {
      peer_told_ = true;
      ev_.on_gateway_peer(ip);
    }
    return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  }

  size_t write(const char* p, size_t len) {
    if (cancelled_) return 0;  // CURLE_WRITE_ERROR: the transfer stops
    if (phase_ == Phase::kList) {
      if (listing_.size() + len > config().ftp.max_listing) {
        listing_too_big_ = true;
        return 0;
      }
      listing_.append(p, len);
      g_.counters_.bytes_in += len;
      return len;
    }
    if (phase_ != Phase::kFetch) return len;
    if (!started_) start_file();
    if (cancelled_) return 0;
    if (sink().congested()) {
      if (!paused_) ++g_.counters_.pauses;
      paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // curl keeps these bytes and gives them again on resume
    }
    if (declared_ >= 0 && bytes_ + len > static_cast<unsigned long long>(declared_)) {
      // More than SIZE said: the length the client was promised would be a lie.
      cut("the server sent more than its SIZE reply announced");
      return 0;
    }
    bytes_ += len;
    g_.counters_.bytes_in += len;
    if (writer_ && writer_.append(std::string_view(p, len)) != cache::Status::kOk) writer_ = cache::Writer();
    if (!r_.head) sink().send(copy_slice(std::string_view(p, len)));
    return len;
  }

  // The head of a file answer: type by extension, Content-Length from SIZE, Last-Modified
  // from MDTM.
  void start_file() {
    started_ = true;
    long long size = declared_, mtime = mtime_;
    std::string_view type = content_type_for(r_.url.path);
    Outcome code = stored_ ? Outcome::kRefreshModified : Outcome::kMiss;
    if (stored_) ++g_.counters_.refreshes;
    else ++g_.counters_.misses;
    ev_.on_gateway_answer(200, code, type);
    if (config().ftp.cache && g_.store_ && !r_.head && (mtime >= 0 || size >= 0)) {
      StoredMeta m{static_cast<long long>(mtime), static_cast<long long>(size), std::string(type)};
      writer_ = g_.store_->writer(cache::Namespace::kFtp, key_, encode_meta(m), 0);
    }
    http::ResponseHead head;
    head.status = 200;
    head.reason = "OK";
    head.headers.add("Content-Type", std::string(type));
    if (size >= 0) head.headers.add("Content-Length", std::to_string(size));
    if (mtime >= 0) head.headers.add("Last-Modified", http::http_date(mtime));
    head.headers.add("Date", http::http_date(std::time(nullptr)));
    BodyFraming f = r_.head ? BodyFraming::kNone : size >= 0 ? BodyFraming::kLength : BodyFraming::kUnknown;
    sink().start(head, f);
  }

  void check_done(CURLcode rc, long reply) {
    if (rc != CURLE_OK) {
      // No such file: a directory asked without its '/'?
      if (rc == CURLE_REMOTE_FILE_NOT_FOUND || reply == 550) {
        first_failure_ = {rc, reply, last_reply_};
        return run(Phase::kProbeDir, r_.url.to_string() + "/", true);
      }
      return fail_from(rc, reply);
    }
    curl_off_t size = -1, mtime = -1;
    curl_easy_getinfo(easy_, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &size);
    curl_easy_getinfo(easy_, CURLINFO_FILETIME_T, &mtime);
    declared_ = size;
    mtime_ = mtime;
    if (stored_) {
      const auto& m = *stored_meta_;
      bool same = (m.mtime < 0 || m.mtime == mtime) && (m.size < 0 || m.size == size) &&
                  (m.size < 0 || stored_.body_size() == static_cast<std::uint64_t>(m.size));
      if (same) return serve_stored();
      spdlog::debug("ftp: {} changed on the server (MDTM {} -> {}, SIZE {} -> {}): fetched again", r_.url.to_string(),
                    m.mtime, static_cast<long long>(mtime), m.size, static_cast<long long>(size));
    }
    if (r_.head) {  // the head from MDTM and SIZE alone
      phase_ = Phase::kFetch;
      start_file();
      phase_ = Phase::kDone;
      sink().end();
      return;
    }
    run(Phase::kFetch, r_.url.to_string(), false);
  }

  void serve_stored() {
    ++g_.counters_.hits;
    phase_ = Phase::kDone;
    const auto& m = *stored_meta_;
    ev_.on_gateway_answer(200, Outcome::kRefreshUnmodified, m.content_type);
    http::ResponseHead head;
    head.status = 200;
    head.reason = "OK";
    head.headers.add("Content-Type", m.content_type);
    head.headers.add("Content-Length", std::to_string(stored_.body_size()));
    if (m.mtime >= 0) head.headers.add("Last-Modified", http::http_date(m.mtime));
    head.headers.add("Date", http::http_date(std::time(nullptr)));
    cache::Handle h = std::move(stored_);
    ResponseSink& s = sink();
    s.cork();
    s.start(head, r_.head ? BodyFraming::kNone : BodyFraming::kLength);
    if (!r_.head)
      for (const auto& slice : h.body()) s.send(slice);
    s.end();
  }

  void fetch_done(CURLcode rc, long reply) {
    if (rc == CURLE_OK && !started_) start_file();  // an empty file, or HEAD
    if (rc != CURLE_OK || (declared_ >= 0 && !r_.head && bytes_ != static_cast<unsigned long long>(declared_))) {
      writer_ = cache::Writer();  // aborted: nothing half-stored
      if (started_) {
        std::string why = rc != CURLE_OK ? std::string(curl_easy_strerror(rc)) + (errbuf_[0] ? std::string(": ") + errbuf_ : "")
                                         : "fewer bytes than SIZE announced";
        return cut(why);
      }
      return fail_from(rc, reply);
    }
    phase_ = Phase::kDone;
    if (writer_) {
      if (writer_.commit() == cache::Status::kOk) ++g_.counters_.stored;
      writer_ = cache::Writer();
    }
    sink().end();
  }

  void probe_done(CURLcode rc) {
    if (rc == CURLE_OK) {
      ++g_.counters_.redirects;
      phase_ = Phase::kDone;
      std::string location = r_.url.to_string() + "/";
      ev_.on_gateway_answer(301, Outcome::kMiss, "text/html");
      auto resp = http::error_page(301, "This is a directory: " + location, config().server.name);
      resp.head.headers.set("Location", location);
      answer(std::move(resp));
      return;
    }
    last_reply_ = first_failure_.text;
    fail_from(first_failure_.rc, first_failure_.reply);
  }

  void list_done(CURLcode rc, long reply) {
    if (rc != CURLE_OK && mlsd_ && !listing_too_big_ && (reply == 500 || reply == 501 || reply == 502)) {
      // No MLSD on this server: LIST, and LIST at once from now on for it.
      spdlog::debug("ftp: {} does not implement MLSD ({}): LIST instead", r_.url.authority(), last_reply_);
      if (g_.no_mlsd_.size() >= 4096) g_.no_mlsd_.clear();
      g_.no_mlsd_.insert(r_.url.authority());
      ++g_.counters_.mlsd_fallbacks;
      mlsd_ = false;
      listing_.clear();
      return run(Phase::kList, r_.url.to_string(), false);
    }
    if (rc != CURLE_OK) {
      if (listing_too_big_)
        return fail(502, Outcome::kMiss, "The directory listing is larger than ftp.max_listing.", true);
      return fail_from(rc, reply);
    }
    ++g_.counters_.listings;
    phase_ = Phase::kDone;
    if (mlsd_) ++g_.counters_.mlsd_listings;
    auto entries = parse_listing(listing_, mlsd_);
    std::string().swap(listing_);
    // A page of escaped names is about 3 times its listing; 4 times max_listing bounds a
    // hostile server's listing of names made of characters that escape to 6 bytes.
    std::string html = render_listing(r_.url.to_string(), entries, config().server.name, 4 * config().ftp.max_listing);
    std::vector<ListingEntry>().swap(entries);
    ev_.on_gateway_answer(200, Outcome::kMiss, "text/html; charset=utf-8");
    answer(http::local_response(200, "text/html; charset=utf-8", std::move(html)));
  }

  // An FTP failure before any answer: the status for it, with the server's words.
  void fail_from(CURLcode rc, long reply) {
    std::string said = last_reply_.empty() ? std::string() : " The FTP server said: \"" + last_reply_ + "\"";
    std::string what = std::string(curl_easy_strerror(rc)) + (errbuf_[0] ? std::string(" (") + errbuf_ + ")" : "");
    if (denied_socket_)
      return fail(403, Outcome::kDenied, "A connection this FTP transfer needs is denied by this proxy's rules.", false);
    if (rc == CURLE_LOGIN_DENIED || reply == 530)
      return fail(401, Outcome::kMiss, "The FTP server refused the login." + said, true, true);
    if (rc == CURLE_REMOTE_FILE_NOT_FOUND || rc == CURLE_REMOTE_ACCESS_DENIED || reply == 550)
      return fail(404, Outcome::kMiss, "No such file or directory on the FTP server, or not readable." + said, true);
    if (rc == CURLE_OPERATION_TIMEDOUT)
      return fail(504, Outcome::kMiss, "The FTP server did not answer in time (" + what + ")." + said, true);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
      return fail(502, Outcome::kMiss, "Cannot connect to the FTP server: " + what + "." + said, true);
    fail(502, Outcome::kMiss, "The FTP exchange failed: " + what + "." + said, true);
  }

  void fail(int status, Outcome code, const std::string& detail, bool log, bool challenge = false) {
    if (cancelled_) return;
    ++g_.counters_.errors;
    phase_ = Phase::kDone;
    writer_ = cache::Writer();
    if (log) spdlog::info("ftp: {} -> {}: {}", r_.url.to_string(), status, detail);
    ev_.on_gateway_answer(status, code, "text/html");
    auto resp = http::error_page(status, detail, config().server.name);
    if (challenge) resp.head.headers.set("WWW-Authenticate", "Basic realm=\"FTP " + r_.url.authority() + "\"");
    answer(std::move(resp));
  }

  void answer(http::LocalResponse resp) {
    ResponseSink& s = sink();
    bool body = !r_.head && !resp.body.empty();
    s.cork();
    s.start(resp.head, body ? BodyFraming::kLength : BodyFraming::kNone);
    if (body) s.send(copy_slice(resp.body));
    s.end();
  }

  // After the head: the client must not take a short body for the whole file.
  void cut(const std::string& why) {
    ++g_.counters_.cut;
    spdlog::info("ftp: {}: transfer failed after {} bytes ({}); the client's connection is cut", r_.url.to_string(),
                 bytes_, why);
    phase_ = Phase::kDone;
    writer_ = cache::Writer();
    cancelled_ = true;  // abort() tells the request, which cancels us anyway
    sink().abort();
  }

  FtpGateway& g_;
  GatewayRequest r_;
  GatewayEvents& ev_;
  Phase phase_ = Phase::kResolve;
  bool directory_ = false;
  std::string key_;
  std::unique_ptr<ResolveRequest> resolving_;
  bool resolved_ = false;
  bool starting_ = false;
  bool answered_while_starting_ = false;
  curl_slist* resolve_list_ = nullptr;
  CURL* easy_ = nullptr;
  bool in_multi_ = false;
  char errbuf_[CURL_ERROR_SIZE] = {0};
  std::string last_reply_;
  bool denied_socket_ = false;
  bool peer_told_ = false;
  bool cancelled_ = false;
  bool paused_ = false;
  bool started_ = false;
  long long declared_ = -1;
  long long mtime_ = -1;
  unsigned long long bytes_ = 0;
  std::string listing_;
  bool listing_too_big_ = false;
  bool mlsd_ = false;  // this listing is asked with MLSD
  cache::Handle stored_;
  std::optional<StoredMeta> stored_meta_;
  cache::Writer writer_;
  struct {
    CURLcode rc = CURLE_OK;
    long reply = 0;
    std::string text;
  } first_failure_;

  friend class FtpGateway;
};

// ---------------------------------------------------------------- the gateway (curl on uv)

struct FtpGateway::Poll {
  uv_poll_t poll;
  FtpGateway* g;
  curl_socket_t s;
};

FtpGateway::FtpGateway(ProxyWorker& proxy, cache::Store* store)
    : proxy_(proxy), store_(store), loop_(proxy.loop()), multi_(curl_multi_init()) {
  timer_ = new uv_timer_t;
  kick_timer_ = new uv_timer_t;
  nudge_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  uv_timer_init(loop_, kick_timer_);
  uv_timer_init(loop_, nudge_);
  timer_->data = kick_timer_->data = nudge_->data = this;
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &FtpGateway::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &FtpGateway::on_timer_change);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // Idle control connections kept for the next request to the same server and login.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 32L);
}

FtpGateway::~FtpGateway() {
  // Only after the loop ended (the service lives until the workers are joined): drain()
  // closed everything that needed the loop.
  if (multi_) curl_multi_cleanup(multi_);
}

std::unique_ptr<GatewayJob> FtpGateway::start(GatewayRequest request, GatewayEvents& events) {
  auto job = std::make_unique<FtpJob>(*this, std::move(request), events);
  job->begin();
  return job;
}

// A socket's poll handle lives as long as the socket: curl's closes come through
// on_close_socket, which closes the handle first and the descriptor in its close callback.
// (libuv must never poll a descriptor that was closed: its number may already belong to a
// new socket, whose epoll registration the old handle's teardown would remove.)
int FtpGateway::on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
  auto* g = static_cast<FtpGateway*>(userp);
  auto it = g->polls_.find(s);
  Poll* p = it == g->polls_.end() ? nullptr : it->second;
  if (what == CURL_POLL_REMOVE) {
    if (p) uv_poll_stop(&p->poll);
    return 0;
  }
  if (!p) {
    p = new Poll{{}, g, s};
    if (int rc = uv_poll_init_socket(g->loop_, &p->poll, s); rc != 0) {
      spdlog::warn("ftp: cannot poll a socket of libcurl's: {}", uv_strerror(rc));
      delete p;
      return -1;
    }
    p->poll.data = p;
    g->polls_[s] = p;
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&p->poll, events, [](uv_poll_t* h, int status, int ev) {
    auto* pp = static_cast<Poll*>(h->data);
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (ev & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (ev & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    pp->g->socket_action(pp->s, flags);
  });
  return 0;
}

int FtpGateway::on_close_socket(void* clientp, curl_socket_t s) {
  auto* g = static_cast<FtpGateway*>(clientp);
  auto it = g->polls_.find(s);
  if (it == g->polls_.end()) return ::close(s);
  Poll* p = it->second;
  g->polls_.erase(it);
  uv_poll_stop(&p->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), [](uv_handle_t* h) {
    auto* pp = static_cast<Poll*>(h->data);
    ::close(pp->s);
    delete pp;
  });
  return 0;
}

int FtpGateway::on_timer_change(CURLM*, long timeout_ms, void* userp) {
  auto* g = static_cast<FtpGateway*>(userp);
  if (g->closed_) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(g->timer_);
  } else {
    // Never socket_action from inside curl: even a 0 ms timeout waits for the loop.
    uv_timer_start(g->timer_, [](uv_timer_t* t) {
      static_cast<FtpGateway*>(t->data)->socket_action(CURL_SOCKET_TIMEOUT, 0);
    }, static_cast<std::uint64_t>(timeout_ms), 0);
  }
  return 0;
}

void FtpGateway::socket_action(curl_socket_t s, int flags) {
  int running = 0;
  curl_multi_socket_action(multi_, s, flags, &running);
  finished_transfers();
}

void FtpGateway::finished_transfers() {
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL* e = m->easy_handle;
    CURLcode rc = m->data.result;
    FtpJob* job = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&job));
    curl_multi_remove_handle(multi_, e);
    if (job) job->transfer_done(rc);
  }
}

void FtpGateway::kick(FtpJob* job) {
  if (closed_) return;
  if (std::find(kicked_.begin(), kicked_.end(), job) == kicked_.end()) kicked_.push_back(job);
  uv_timer_start(kick_timer_, [](uv_timer_t* t) { static_cast<FtpGateway*>(t->data)->run_kicked(); }, 0, 0);
}

void FtpGateway::run_kicked() {
  auto jobs = std::move(kicked_);
  kicked_.clear();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    FtpJob* j = jobs[i];
    if (!jobs_.count(j)) continue;  // destroyed meanwhile
    j->step();
  }
  // A resumed transfer may have finished inside curl_easy_pause.
  finished_transfers();
  int running = 0;
  curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
  finished_transfers();
}

void FtpGateway::add(FtpJob* job) {
  curl_multi_add_handle(multi_, job->easy_);
  start_nudge();
}

// curl 7.88 does not hand a passive data connection that is still connecting to the socket
// callback (its FTP DO_MORE state): while transfers run, curl_multi_perform every 10 ms drives
// what the sockets alone would not. Not while nothing runs (an idle gateway never wakes), nor
// while every transfer is paused for its client (resumed: started again).
void FtpGateway::start_nudge() {
  if (closed_ || uv_is_active(reinterpret_cast<uv_handle_t*>(nudge_))) return;
  uv_timer_start(nudge_, [](uv_timer_t* t) {
    auto* g = static_cast<FtpGateway*>(t->data);
    ++g->counters_.nudges;
    int running = 0;
    curl_multi_perform(g->multi_, &running);
    g->finished_transfers();
    // Not `running`: a finished transfer's job may have added its next one (SIZE then RETR,
    // MLSD then LIST) after curl counted, and that one needs the tick from the start.
    bool moving = false;
    for (FtpJob* j : g->jobs_) moving = moving || (j->in_multi_ && !j->paused_);
    if (!moving) uv_timer_stop(t);
  }, 10, 10);
}

void FtpGateway::remove(FtpJob* job) { curl_multi_remove_handle(multi_, job->easy_); }

void FtpGateway::drain() {
  draining_ = true;
  maybe_close();
}

void FtpGateway::maybe_close() {
  if (!draining_ || closed_ || !jobs_.empty()) return;
  closed_ = true;
  // Idle connections: closed now, their polls removed through on_socket.
  curl_multi_cleanup(multi_);
  multi_ = nullptr;
  for (auto& [s, p] : polls_) {  // sockets curl did not close itself (none expected)
    uv_poll_stop(&p->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), [](uv_handle_t* h) {
      auto* pp = static_cast<Poll*>(h->data);
      ::close(pp->s);
      delete pp;
    });
  }
  polls_.clear();
  auto free_timer = [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); };
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), free_timer);
  uv_close(reinterpret_cast<uv_handle_t*>(kick_timer_), free_timer);
  uv_close(reinterpret_cast<uv_handle_t*>(nudge_), free_timer);
}

void FtpGateway::collect(MetricsVisitor& out) const {
  const auto& c = counters_;
  constexpr std::string_view kReq = "outpost_ftp_requests_total";
  constexpr std::string_view kReqHelp = "ftp:// requests through the FTP gateway, by result";
  out.counter(kReq, kReqHelp, {{"result", "hit"}}, static_cast<double>(c.hits));
  out.counter(kReq, kReqHelp, {{"result", "refresh"}}, static_cast<double>(c.refreshes));
  out.counter(kReq, kReqHelp, {{"result", "miss"}}, static_cast<double>(c.misses));
  out.counter(kReq, kReqHelp, {{"result", "listing"}}, static_cast<double>(c.listings));
  out.counter(kReq, kReqHelp, {{"result", "redirect"}}, static_cast<double>(c.redirects));
  out.counter(kReq, kReqHelp, {{"result", "error"}}, static_cast<double>(c.errors));
  out.counter(kReq, kReqHelp, {{"result", "cut"}}, static_cast<double>(c.cut));
  out.counter("outpost_ftp_transfers_total", "FTP transfers run by libcurl (checks, files, listings)", {},
              static_cast<double>(c.transfers));
  out.counter("outpost_ftp_received_bytes_total", "File and listing bytes received from FTP servers", {},
              static_cast<double>(c.bytes_in));
  out.counter("outpost_ftp_listings_total", "Directory listings served, by the command that gave them",
              {{"command", "mlsd"}}, static_cast<double>(c.mlsd_listings));
  out.counter("outpost_ftp_listings_total", "Directory listings served, by the command that gave them",
              {{"command", "list"}}, static_cast<double>(c.listings - c.mlsd_listings));
  out.counter("outpost_ftp_mlsd_fallbacks_total", "Servers that refused MLSD (LIST used for them from then on)", {},
              static_cast<double>(c.mlsd_fallbacks));
  out.counter("outpost_ftp_stored_total", "Files the FTP gateway committed to the store", {},
              static_cast<double>(c.stored));
  out.counter("outpost_ftp_pauses_total", "FTP transfers paused for a slow client", {},
              static_cast<double>(c.pauses));
  out.counter("outpost_ftp_loop_ticks_total",
              "Times the gateway drove libcurl on its 10 ms tick (only while transfers move)", {},
              static_cast<double>(c.nudges));
  out.gauge("outpost_ftp_active", "FTP gateway exchanges in progress", {}, static_cast<double>(jobs_.size()));
}

}  // namespace outpost::ftp
