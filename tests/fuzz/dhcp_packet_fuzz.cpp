// The DHCP codec and server (services/dhcp) on arbitrary datagrams: parsing never reads out
// of bounds; a refusal says why; an accepted message written again (with room for every
// option) parses to the same options; and the server answers it without crashing, with a
// reply that parses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "services/dhcp/dhcp_packet.hpp"
#include "services/dhcp/dhcp_server.hpp"

using namespace outpost::dhcp;

namespace {

Server& server() {
  static Server* s = [] {
    outpost::Config::Dhcp c;
    c.lease_time = 100;
    c.pools.push_back({"10.0.0.0/24", "10.0.0.10", "10.0.0.13", {"10.0.0.1"}, {}, "lan.test", 0});
    c.pools.push_back({"10.9.0.0/24", "10.9.0.10", "10.9.0.11", {}, {}, "", 0});
    c.reservations.push_back({"02:00:00:00:00:01", "", "10.0.0.50"});
    Settings st;
    std::string err;
    if (!make_settings(c, 0x0a000001, {0x0a000001}, "http://10.0.0.1:3128/wpad.dat", &st, &err)) std::abort();
    return new Server(std::move(st));
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Packet p;
  std::string error;
  if (!parse_packet(std::span(data, size), &p, &error)) {
    if (error.empty()) std::abort();
    return 0;
  }
  OptionList o(p.options.begin(), p.options.end());
  std::size_t dropped = 0;
  auto bytes = write_packet(p, o, 65507, &dropped);
  Packet again;
  if (!parse_packet(bytes, &again, &error)) std::abort();
  if (dropped == 0 && again.options != p.options) std::abort();
  // The server, with a clock that moves so leases expire now and then.
  static std::int64_t now = 0;
  now += size % 7;
  Outcome out = server().handle(p, 0x0a000063, now);
  if (out.reply) {
    Packet r;
    if (!parse_packet(*out.reply, &r, &error) || r.op != 2 || !r.message_type()) std::abort();
  }
  // Keep the lease table from growing without bound across a long run.
  if (server().leases().size() > 64) {
    std::vector<std::string> w;
    server().load("", &w);
  }
  return 0;
}
