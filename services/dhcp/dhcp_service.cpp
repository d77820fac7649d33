#include "services/dhcp/dhcp_service.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/blocking_work.hpp"
#include "services/dhcp/dhcp_server.hpp"

namespace outpost::dhcp {

std::uint32_t interface_address(const std::string& name) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  std::uint32_t found = 0;
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && name == i->ifa_name) {
      found = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      break;
    }
  freeifaddrs(list);
  return found;
}

namespace {

// Writes `text` to `path` so that a reader sees the old file or the new one, never a part:
// a temporary file beside it, fsync, rename, fsync of the directory. "" or the error.
std::string write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return tmp + ": " + std::strerror(errno);
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string e = tmp + ": " + std::strerror(errno);
      ::close(fd);
      return e;
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string e = tmp + ": fsync: " + std::strerror(errno);
    ::close(fd);
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return path + ": rename: " + std::strerror(errno);
  auto slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

bool is_loopback(std::uint32_t a) { return (a >> 24) == 127; }

// The address clients should use for a service listening on `eps`: a specific non-loopback
// IPv4 address as it is, 0.0.0.0 as the DHCP server's own address; none for loopback only.
std::optional<Endpoint> client_facing(const std::vector<Endpoint>& eps, std::uint32_t server_id) {
  for (const auto& ep : eps) {
    auto a = parse_ipv4(ep.host);
    if (!a) continue;
    if (*a == 0) return Endpoint{ipv4_to_string(server_id), ep.port};
    if (!is_loopback(*a)) return ep;
  }
  return std::nullopt;
}

}  // namespace

class DhcpService::Local {
 public:
  Local(Settings s, Config::Dhcp c) : server_(std::move(s)), config_(std::move(c)) {}

  Server& server() { return server_; }

  bool start(Worker& w, std::string* error) {
    loop_ = w.loop();
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(error, "socket", errno);
    int one = 1;
    // No SO_REUSEADDR: a second DHCP server on this interface (another Outpost, dnsmasq) is
    // an error at start-up, never a silent share of the clients.
    if (::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0) {
      int e = errno;
      ::close(fd);
      return fail(error, "setsockopt", e);
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, config_.interface.c_str(),
                     static_cast<socklen_t>(config_.interface.size())) != 0) {
      int e = errno;
      ::close(fd);
      return fail(error, "SO_BINDTODEVICE " + config_.interface, e);
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(config_.port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      int e = errno;
      ::close(fd);
      return fail(error, "bind 0.0.0.0:" + std::to_string(config_.port), e);
    }
    udp_ = new uv_udp_t;
    uv_udp_init(loop_, udp_);
    udp_->data = this;
    if (int rc = uv_udp_open(udp_, fd); rc != 0) {
      ::close(fd);
      close_socket();
      *error = std::string("dhcp: uv_udp_open: ") + uv_strerror(rc);
      return false;
    }
    uv_udp_recv_start(
        udp_,
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
          auto* self = static_cast<Local*>(h->data);
          buf->base = reinterpret_cast<char*>(self->buffer_.data());
          buf->len = self->buffer_.size();
        },
        [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
          if (n <= 0 || !from) return;  // nothing, or an error the next read reports again
          static_cast<Local*>(h->data)->on_datagram(
              std::span(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(n)), from);
        });
    spdlog::info("dhcp: serving on {} as {} ({} pool(s), {} lease(s) kept in {})", config_.interface,
                 ipv4_to_string(server_.settings().server_id), server_.settings().pools.size(),
                 server_.leases().size(), config_.lease_file);
    return true;
  }

  void collect(MetricsVisitor& out) {
    for (std::uint8_t t = 1; t <= 8; ++t) {
      const char* name = message_type_name(static_cast<MessageType>(t));
      out.counter("outpost_dhcp_received_total", "DHCP messages received, by type", {{"type", name}},
                  static_cast<double>(m_.received[t]));
      out.counter("outpost_dhcp_sent_total", "DHCP messages sent, by type", {{"type", name}},
                  static_cast<double>(m_.sent[t]));
    }
    out.counter("outpost_dhcp_malformed_total", "Datagrams on the DHCP port that are not DHCP messages", {},
                static_cast<double>(m_.malformed));
    out.counter("outpost_dhcp_ignored_total", "DHCP messages answered by nothing (RFC 2131's silent cases)", {},
                static_cast<double>(m_.ignored));
    out.counter("outpost_dhcp_no_address_total", "DHCPDISCOVERs left unanswered because the pool was full", {},
                static_cast<double>(m_.no_address));
    out.counter("outpost_dhcp_send_failed_total", "DHCP answers the socket refused", {},
                static_cast<double>(m_.send_failed));
    out.counter("outpost_dhcp_lease_file_writes_total", "Lease file writes", {{"result", "ok"}},
                static_cast<double>(m_.file_writes - m_.file_write_errors));
    out.counter("outpost_dhcp_lease_file_writes_total", "Lease file writes", {{"result", "error"}},
                static_cast<double>(m_.file_write_errors));
    Counts c = server_.counts(std::time(nullptr));
    const char* help = "DHCP leases by state (expired: released or expired, kept for their client until reclaimed)";
    out.gauge("outpost_dhcp_leases", help, {{"state", "bound"}}, static_cast<double>(c.bound));
    out.gauge("outpost_dhcp_leases", help, {{"state", "offered"}}, static_cast<double>(c.offered));
    out.gauge("outpost_dhcp_leases", help, {{"state", "declined"}}, static_cast<double>(c.declined));
    out.gauge("outpost_dhcp_leases", help, {{"state", "expired"}}, static_cast<double>(c.expired));
    double size = 0;
    for (auto& p : server_.settings().pools) size += static_cast<double>(p.last - p.first + 1);
    out.gauge("outpost_dhcp_pool_addresses", "Addresses in the DHCP pools' ranges", {}, size);
  }

  void drain(std::function<void()> done) {
    close_socket();
    if (write_.pending()) {
      drained_ = std::move(done);
      return;
    }
    done();
  }

 private:
  struct Send {
    uv_udp_send_t req;
    std::vector<std::uint8_t> data;
  };

  static bool fail(std::string* error, const std::string& what, int e) {
    *error = "dhcp: " + what + ": " + std::strerror(e);
    if (e == EPERM || e == EACCES) *error += " (needs root or CAP_NET_RAW/CAP_NET_BIND_SERVICE)";
    return false;
  }

  void close_socket() {
    if (!udp_) return;
    uv_close(reinterpret_cast<uv_handle_t*>(udp_), [](uv_handle_t* h) { delete reinterpret_cast<uv_udp_t*>(h); });
    udp_ = nullptr;
  }

  // At most a few log lines a second about bad datagrams, however many arrive.
  bool may_log(std::int64_t now) {
    if (now != log_second_) {
      if (logged_ > kLogsPerSecond)
        spdlog::warn("dhcp: {} more message(s) not logged in the second before", logged_ - kLogsPerSecond);
      log_second_ = now;
      logged_ = 0;
    }
    return ++logged_ <= kLogsPerSecond;
  }
  static constexpr int kLogsPerSecond = 20;

  void on_datagram(std::span<const std::uint8_t> data, const sockaddr* from) {
    std::int64_t now = std::time(nullptr);
    std::uint32_t src = 0;
    std::uint16_t sport = 0;
    if (from->sa_family == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(from);
      src = ntohl(sin->sin_addr.s_addr);
      sport = ntohs(sin->sin_port);
    }
    Packet req;
    std::string error;
    if (!parse_packet(data, &req, &error)) {
      ++m_.malformed;
      if (may_log(now))
        spdlog::warn("dhcp: bad message from {}:{} ({} bytes): {}", ipv4_to_string(src), sport, data.size(), error);
      return;
    }
    auto type = req.message_type();
    ++m_.received[type ? static_cast<unsigned>(*type) : 0];
    Outcome o = server_.handle(req, src, now);
    std::string who = req.hardware_address();
    if (req.giaddr) who += " via " + ipv4_to_string(req.giaddr);
    if (o.no_address) {
      ++m_.no_address;
      spdlog::warn("dhcp: {} from {}: {}", type ? message_type_name(*type) : "?", who, o.note);
    } else if (!o.reply) {
      ++m_.ignored;
      if (may_log(now))
        spdlog::info("dhcp: {} from {}: {}", type ? message_type_name(*type) : "?", who, o.note);
    } else {
      auto level = o.reply_type == MessageType::kOffer ? spdlog::level::debug : spdlog::level::info;
      spdlog::log(level, "dhcp: {} from {}: {}", message_type_name(*type), who, o.note);
    }
    if (!o.commit && !o.reply) return;
    if (!o.commit) {
      send(o);
      return;
    }
    // The lease goes to the file first; the answer once it is there.
    waiting_.push_back(std::move(o));
    if (!write_.pending()) write_file();
  }

  void send(Outcome& o) {
    if (!o.reply || !udp_) return;
    auto* s = new Send;
    s->data = std::move(*o.reply);
    s->req.data = s;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(o.to_port);
    to.sin_addr.s_addr = htonl(o.to_address);
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(s->data.data()), static_cast<unsigned>(s->data.size()));
    int rc = uv_udp_send(&s->req, udp_, &buf, 1, reinterpret_cast<const sockaddr*>(&to),
                         [](uv_udp_send_t* r, int status) {
                           auto* sent = static_cast<Send*>(r->data);
                           if (status != 0) spdlog::warn("dhcp: send failed: {}", uv_strerror(status));
                           delete sent;
                         });
    if (rc != 0) {
      ++m_.send_failed;
      spdlog::warn("dhcp: cannot send to {}:{}: {}", ipv4_to_string(o.to_address), o.to_port, uv_strerror(rc));
      delete s;
      return;
    }
    ++m_.sent[static_cast<unsigned>(o.reply_type)];
  }

  void write_file() {
    std::vector<Outcome> batch = std::move(waiting_);
    waiting_.clear();
    ++m_.file_writes;
    write_ = run_blocking(
        loop_, [path = config_.lease_file, text = server_.serialize()] { return write_atomically(path, text); },
        [this, batch = std::move(batch)](std::string err) mutable {
          if (!err.empty()) {
            ++m_.file_write_errors;
            spdlog::error("dhcp: lease file not written: {} (answering anyway: the lease is kept in memory)", err);
          }
          for (auto& o : batch) send(o);
          if (!waiting_.empty()) {
            write_file();
          } else if (drained_) {
            auto d = std::move(drained_);
            drained_ = nullptr;
            d();
          }
        });
  }

  Server server_;
  Config::Dhcp config_;
  uv_loop_t* loop_ = nullptr;
  uv_udp_t* udp_ = nullptr;
  std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(65536);
  DhcpMetrics m_;
  std::vector<Outcome> waiting_;
  BlockingWork write_;
  std::function<void()> drained_;
  std::int64_t log_second_ = 0;
  int logged_ = 0;
};

DhcpService::DhcpService() = default;
DhcpService::~DhcpService() = default;

bool DhcpService::configure(const Config& config, std::string* error) {
  config_ = config.dhcp;
  if (!config_.enabled) return true;
  std::uint32_t server_id = 0;
  if (!config_.server_address.empty()) {
    server_id = parse_ipv4(config_.server_address).value_or(0);
  } else {
    server_id = interface_address(config_.interface);
    if (!server_id) {
      *error = "interface " + config_.interface + " has no IPv4 address (or does not exist); set dhcp.server_address";
      return false;
    }
  }
  std::vector<std::uint32_t> dns;
  if (config_.dns_servers.empty()) {
    if (auto ep = client_facing(config.dns.listen, server_id); ep && ep->port == 53)
      dns.push_back(*parse_ipv4(ep->host));
    else
      spdlog::warn("dhcp: no option 6: Outpost's DNS server listens on no address clients can use on port 53 "
                   "(set dns.listen, or dhcp.dns_servers)");
  }
  std::string wpad = config_.wpad_url;
  if (wpad == "none") {
    wpad.clear();
  } else if (wpad.empty()) {
    if (auto ep = client_facing(config.proxy.listen, server_id)) {
      wpad = "http://" + ep->to_string() + "/wpad.dat";
      if (!config.pac.enabled)
        spdlog::warn("dhcp: option 252 names {}, but [pac] is off: nothing serves /wpad.dat (set pac.enabled)", wpad);
    } else
      spdlog::warn("dhcp: no option 252: the proxy listens on no address clients can use (set proxy.listen, or "
                   "dhcp.wpad_url)");
  }
  Settings s;
  if (!make_settings(config_, server_id, dns, wpad, &s, error)) return false;
  local_ = std::make_unique<Local>(std::move(s), config_);
  // The lease file: read now (a missing one is an empty table), written back at once so an
  // unwritable place is an error at start-up rather than at the first lease.
  std::ifstream in(config_.lease_file);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    std::vector<std::string> warnings;
    local_->server().load(text.str(), &warnings);
    for (auto& w : warnings) spdlog::warn("dhcp: {}: {}", config_.lease_file, w);
  }
  if (std::string e = write_atomically(config_.lease_file, local_->server().serialize()); !e.empty()) {
    *error = "lease file: " + e;
    return false;
  }
  return true;
}

bool DhcpService::start(Worker& worker, std::string* error) {
  if (!local_ || worker.index() != 0) return true;
  return local_->start(worker, error);
}

void DhcpService::collect_metrics(Worker& worker, MetricsVisitor& out) {
  if (local_ && worker.index() == 0) local_->collect(out);
}

std::vector<std::string> DhcpService::reload(const Config& config) {
  if (config.dhcp == config_) return {};
  return {"dhcp"};
}

void DhcpService::drain(Worker& worker, std::function<void()> done) {
  if (!local_ || worker.index() != 0) {
    done();
    return;
  }
  local_->drain(std::move(done));
}

}  // namespace outpost::dhcp
