// dns_blast: a batched UDP DNS load generator for cache-hit benchmarks, so that the server and
// not the client is what runs out of CPU. dnsperf pays a system call per query and per answer
// (about 7.5 us of client CPU per query on this kind of machine), which caps a pinned run near
// 130k q/s whatever the server does; dns_blast sends with sendmmsg and reads with recvmmsg, a
// batch per system call, on one thread.
//
//   dns_blast -s ADDR -p PORT -d QUERYFILE [-c SOCKETS] [-q INFLIGHT] [-l SECONDS] [-t TIMEOUT]
//
// QUERYFILE has dnsperf's format ("name TYPE" per line). Queries go round the file; each socket
// keeps INFLIGHT/SOCKETS queries outstanding (RD set, EDNS with a 1232-byte buffer, as dnsperf
// sends them). Prints the same summary lines as dnsperf (Queries sent/completed/lost, Response
// codes, Average Latency (s), Queries per second), so the bench's dnsperf parser reads both.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "resolver/dns_message.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 64;

// One query's wire form, built by Outpost's codec (the ID, bytes 0-1, is set when it is sent).
std::optional<std::vector<std::uint8_t>> make_query(const std::string& name, const std::string& type) {
  using namespace outpost::dns;
  auto n = Name::from_text(name);
  auto t = type_from_text(type);
  if (!n || !t) return std::nullopt;
  Message m;
  m.header = {.rd = true};
  m.question.push_back({*n, *t, kClassIN});
  m.edns = Edns{};  // a 1232-byte buffer, as dnsperf sends
  return write_message(m);
}

struct Socket {
  int fd = -1;
  std::uint16_t next_id = 0;
  std::size_t outstanding = 0;
  std::array<Clock::time_point, 65536> sent{};  // zero: not outstanding
  std::deque<std::pair<std::uint16_t, Clock::time_point>> order;  // send order, for timeouts
};

struct Totals {
  std::uint64_t sent = 0, completed = 0, lost = 0;
  std::uint64_t completed_in_time = 0;  // before the run's end: the rate counts these
  double latency_sum = 0;
  std::array<std::uint64_t, 16> rcodes{};
};

const char* rcode_name(std::size_t r) {
  static const char* names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
                                "NXRRSET", "NOTAUTH", "NOTZONE", "11",      "12",      "13",       "14",      "15"};
  return names[r & 15];
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1", file;
  int port = 53, sockets_n = 10, inflight = 100;
  double seconds = 10, timeout = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string o = argv[i];
    if (o == "-s") server = argv[i + 1];
    else if (o == "-p") port = std::atoi(argv[i + 1]);
    else if (o == "-d") file = argv[i + 1];
    else if (o == "-c") sockets_n = std::atoi(argv[i + 1]);
    else if (o == "-q") inflight = std::atoi(argv[i + 1]);
    else if (o == "-l") seconds = std::atof(argv[i + 1]);
    else if (o == "-t") timeout = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", o.c_str());
      return 2;
    }
  }
  std::vector<std::vector<std::uint8_t>> queries;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string name, type;
    if (!(ls >> name >> type)) continue;
    if (auto q = make_query(name, type)) queries.push_back(std::move(*q));
    else std::fprintf(stderr, "dns_blast: skipped %s\n", line.c_str());
  }
  if (queries.empty() || sockets_n < 1 || inflight < sockets_n || inflight / sockets_n > 30000) {
    std::fprintf(stderr, "usage: dns_blast -s ADDR -p PORT -d QUERYFILE [-c SOCKETS] [-q INFLIGHT] [-l SECONDS]\n");
    return 2;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, server.c_str(), &to.sin_addr) != 1) {
    std::fprintf(stderr, "dns_blast: IPv4 address expected: %s\n", server.c_str());
    return 2;
  }
  const std::size_t window = static_cast<std::size_t>(inflight / sockets_n);
  int ep = epoll_create1(0);
  std::vector<Socket> socks(static_cast<std::size_t>(sockets_n));
  for (std::size_t i = 0; i < socks.size(); ++i) {
    socks[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (socks[i].fd < 0 || connect(socks[i].fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      std::perror("dns_blast: socket");
      return 1;
    }
    socks[i].next_id = static_cast<std::uint16_t>(i * 7919);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, socks[i].fd, &ev);
  }

  Totals t;
  std::size_t next_query = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto tmo = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  bool sending = true;

  std::vector<std::vector<std::uint8_t>> out(kBatch);
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  std::vector<std::array<std::uint8_t, 1500>> rbuf(kBatch);

  auto fill = [&](Socket& s, Clock::time_point now) {
    while (sending && s.outstanding < window) {
      std::size_t n = std::min(kBatch, window - s.outstanding);
      for (std::size_t k = 0; k < n; ++k) {
        out[k] = queries[next_query];
        next_query = (next_query + 1) % queries.size();
        while (s.sent[s.next_id] != Clock::time_point{}) ++s.next_id;  // an ID still outstanding
        out[k][0] = static_cast<std::uint8_t>(s.next_id >> 8);
        out[k][1] = static_cast<std::uint8_t>(s.next_id);
        s.sent[s.next_id] = now;
        s.order.emplace_back(s.next_id, now);
        ++s.next_id;
        iov[k] = {out[k].data(), out[k].size()};
        msgs[k] = {};
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
      }
      int r = sendmmsg(s.fd, msgs.data(), static_cast<unsigned>(n), 0);
      std::size_t ok = r > 0 ? static_cast<std::size_t>(r) : 0;
      // What the kernel did not take is not outstanding.
      for (std::size_t k = ok; k < n; ++k) {
        std::uint16_t id = static_cast<std::uint16_t>(out[k][0] << 8 | out[k][1]);
        s.sent[id] = {};
        s.order.pop_back();
      }
      s.outstanding += ok;
      t.sent += ok;
      if (ok < n) break;
    }
  };
  auto expire = [&](Socket& s, Clock::time_point now) {
    while (!s.order.empty()) {
      auto [id, when] = s.order.front();
      if (s.sent[id] != when) {  // answered (or the ID reused later: that entry is further back)
        s.order.pop_front();
        continue;
      }
      if (now - when < tmo) break;
      s.sent[id] = {};
      --s.outstanding;
      ++t.lost;
      s.order.pop_front();
    }
  };

  for (auto& s : socks) fill(s, Clock::now());
  std::array<epoll_event, 64> evs{};
  for (;;) {
    auto now = Clock::now();
    if (sending && now >= end) sending = false;
    bool any = false;
    for (auto& s : socks) {
      expire(s, now);
      if (s.outstanding) any = true;
    }
    if (!sending && !any) break;
    if (!sending && now >= end + tmo) break;
    int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 10);
    now = Clock::now();
    for (int e = 0; e < n; ++e) {
      Socket& s = socks[evs[static_cast<std::size_t>(e)].data.u64];
      for (;;) {
        for (std::size_t k = 0; k < kBatch; ++k) {
          iov[k] = {rbuf[k].data(), rbuf[k].size()};
          msgs[k] = {};
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int r = recvmmsg(s.fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (r <= 0) break;
        for (int k = 0; k < r; ++k) {
          const auto& b = rbuf[static_cast<std::size_t>(k)];
          if (msgs[static_cast<std::size_t>(k)].msg_len < 12 || !(b[2] & 0x80)) continue;
          std::uint16_t id = static_cast<std::uint16_t>(b[0] << 8 | b[1]);
          if (s.sent[id] == Clock::time_point{}) continue;  // late (counted lost) or not ours
          t.latency_sum += std::chrono::duration<double>(now - s.sent[id]).count();
          s.sent[id] = {};
          --s.outstanding;
          ++t.completed;
          if (sending) ++t.completed_in_time;
          ++t.rcodes[b[3] & 15];
        }
        if (static_cast<std::size_t>(r) < kBatch) break;
      }
      fill(s, now);
    }
  }
  const double elapsed = std::chrono::duration<double>(std::min(Clock::now(), end) - start).count();
  std::printf("Statistics:\n\n");
  std::printf("  Queries sent:         %llu\n", static_cast<unsigned long long>(t.sent));
  std::printf("  Queries completed:    %llu\n", static_cast<unsigned long long>(t.completed));
  std::printf("  Queries lost:         %llu\n", static_cast<unsigned long long>(t.lost));
  std::printf("\n  Response codes:       ");
  bool first = true;
  for (std::size_t r = 0; r < t.rcodes.size(); ++r) {
    if (!t.rcodes[r]) continue;
    std::printf("%s%s %llu (%.2f%%)", first ? "" : ", ", rcode_name(r), static_cast<unsigned long long>(t.rcodes[r]),
                100.0 * static_cast<double>(t.rcodes[r]) / static_cast<double>(std::max<std::uint64_t>(t.completed, 1)));
    first = false;
  }
  std::printf("\n  Run time (s):         %.6f\n", elapsed);
  std::printf("  Queries per second:   %.6f\n", static_cast<double>(t.completed_in_time) / elapsed);
  std::printf("\n  Average Latency (s):  %.6f\n", t.completed ? t.latency_sum / static_cast<double>(t.completed) : 0.0);
  return 0;
}
