// services/dhcp: the message codec (structure errors, overload both ways, long options) and
// the server's logic (RFC 2131 §4.3 cases, reservations, decline, release, expiry and the
// lease file round trip). The real clients are in tests/integration/test_dhcp.py.
#include <gtest/gtest.h>

#include <cstring>

#include "core/config.hpp"
#include "core/config_section.hpp"
#include "services/dhcp/dhcp_config.hpp"
#include "services/dhcp/dhcp_packet.hpp"
#include "services/dhcp/dhcp_server.hpp"

namespace outpost::dhcp {
namespace {

std::uint32_t ip(const char* s) { return *parse_ipv4(s); }

Packet request(MessageType t, std::uint8_t last_mac_byte, OptionList extra = {}) {
  Packet p;
  p.op = 1;
  p.xid = 0x1234 + last_mac_byte;
  p.chaddr = {0x02, 0, 0, 0, 0, last_mac_byte};
  p.options[opt::kMessageType] = std::string(1, static_cast<char>(t));
  for (auto& [c, v] : extra) p.options[c] = v;
  return p;
}

// Through the wire and back, as the server gets it.
Packet wire(const Packet& p) {
  OptionList o(p.options.begin(), p.options.end());
  auto bytes = write_packet(p, o, 1500);
  Packet out;
  std::string err;
  EXPECT_TRUE(parse_packet(bytes, &out, &err)) << err;
  return out;
}

Packet reply_of(const Outcome& o) {
  Packet p;
  std::string err;
  EXPECT_TRUE(o.reply.has_value());
  if (o.reply) {
    EXPECT_TRUE(parse_packet(*o.reply, &p, &err)) << err;
  }
  return p;
}

Settings settings() {
  Config::Dhcp c;
  c.lease_time = 100;
  c.offer_time = 10;
  c.decline_time = 50;
  c.pools.push_back({"10.0.0.0/24", "10.0.0.10", "10.0.0.12", {"10.0.0.1"}, {}, "lan.test", 0});
  c.pools.push_back({"10.9.0.0/24", "10.9.0.10", "10.9.0.20", {"10.9.0.1"}, {}, "", 0});
  c.reservations.push_back({"02:00:00:00:00:77", "", "10.0.0.50"});
  Settings s;
  std::string err;
  EXPECT_TRUE(make_settings(c, ip("10.0.0.1"), {ip("10.0.0.1")}, "http://10.0.0.1:3128/wpad.dat", &s, &err)) << err;
  return s;
}

TEST(DhcpPacket, RefusesBrokenStructure) {
  Packet p = request(MessageType::kDiscover, 1);
  auto good = write_packet(p, {{opt::kMessageType, "\x01"}}, 0);
  Packet out;
  std::string err;
  ASSERT_TRUE(parse_packet(good, &out, &err)) << err;
  EXPECT_EQ(good.size(), 300u);  // BOOTP's minimum
  EXPECT_FALSE(parse_packet(std::span(good).first(239), &out, &err));
  EXPECT_NE(err.find("short message"), std::string::npos);
  auto bad = good;
  bad[236] = 0;
  EXPECT_FALSE(parse_packet(bad, &out, &err));
  EXPECT_EQ(err, "bad magic cookie");
  bad = good;
  bad[243] = 12;  // after 53/1/1: option 12 of length 255
  bad[244] = 255;
  EXPECT_FALSE(parse_packet(bad, &out, &err));
  EXPECT_NE(err.find("runs past the end"), std::string::npos);
  // Overload pointing at a file field that overloads again.
  bad = good;
  bad[243] = opt::kOverload;
  bad[244] = 1;
  bad[245] = 1;
  bad[246] = opt::kEnd;
  bad[108] = opt::kOverload;
  bad[109] = 1;
  bad[110] = 3;
  EXPECT_FALSE(parse_packet(bad, &out, &err));
  EXPECT_NE(err.find("loop"), std::string::npos);
  bad[110] = 9;
  bad[243 + 3] = opt::kEnd;
  bad[108] = opt::kEnd;
  bad[245] = 9;  // overload value out of range
  EXPECT_FALSE(parse_packet(bad, &out, &err));
}

TEST(DhcpPacket, OverloadsWhenTheReplyIsTooBigAndReadsItBack) {
  Packet p = request(MessageType::kOffer, 2);
  OptionList o;
  o.emplace_back(opt::kMessageType, "\x02");
  for (std::uint8_t code = 200; code < 210; ++code) o.emplace_back(code, std::string(60, static_cast<char>(code)));
  std::size_t dropped = 99;
  auto bytes = write_packet(p, o, 548, &dropped);  // 600 bytes of options do not fit in 308
  EXPECT_LE(bytes.size(), 548u);
  Packet back;
  std::string err;
  ASSERT_TRUE(parse_packet(bytes, &back, &err)) << err;
  EXPECT_TRUE(back.overloaded);
  EXPECT_EQ(back.options.size(), 1 + 10 - dropped);
  EXPECT_GT(10 - dropped, 4u);  // the file and sname fields took some
  for (auto& [code, value] : back.options) {
    if (code != opt::kMessageType) {
      EXPECT_EQ(value, std::string(60, static_cast<char>(code)));
    }
  }
  // A long option is split in 255-byte pieces and joined again (RFC 3396).
  bytes = write_packet(p, {{opt::kMessageType, "\x02"}, {250, std::string(600, 'x')}}, 1500, &dropped);
  ASSERT_TRUE(parse_packet(bytes, &back, &err)) << err;
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(*back.option(250), std::string(600, 'x'));
}

TEST(DhcpServer, DiscoverRequestAckWithOptions) {
  Server s(settings());
  Packet d = wire(request(MessageType::kDiscover, 1, {{opt::kParameterList, "\x01\x03\x06\x0f\xfc"}}));
  Outcome o = s.handle(d, 0, 1000);
  Packet offer = reply_of(o);
  EXPECT_EQ(offer.message_type(), MessageType::kOffer);
  EXPECT_EQ(offer.yiaddr, ip("10.0.0.10"));
  EXPECT_EQ(o.to_address, 0xffffffffu);
  EXPECT_FALSE(o.commit);
  EXPECT_EQ(offer.option_ipv4(opt::kSubnetMask), ip("255.255.255.0"));
  EXPECT_EQ(offer.option_ipv4(opt::kRouter), ip("10.0.0.1"));
  EXPECT_EQ(offer.option_ipv4(opt::kDnsServer), ip("10.0.0.1"));
  EXPECT_EQ(*offer.option(opt::kDomainName), "lan.test");
  EXPECT_EQ(*offer.option(opt::kWpad), "http://10.0.0.1:3128/wpad.dat");
  EXPECT_EQ(offer.option_u32(opt::kLeaseTime), 100u);
  EXPECT_EQ(offer.option_u32(opt::kRenewalTime), 50u);
  // A second client is not offered the same address.
  Packet offer2 = reply_of(s.handle(wire(request(MessageType::kDiscover, 2)), 0, 1000));
  EXPECT_EQ(offer2.yiaddr, ip("10.0.0.11"));
  Packet r = wire(request(MessageType::kRequest, 1,
                          {{opt::kServerId, option_u32(ip("10.0.0.1"))}, {opt::kRequestedAddress, option_u32(offer.yiaddr)}}));
  o = s.handle(r, 0, 1001);
  EXPECT_TRUE(o.commit);
  Packet ack = reply_of(o);
  EXPECT_EQ(ack.message_type(), MessageType::kAck);
  EXPECT_EQ(ack.yiaddr, ip("10.0.0.10"));
  // Client 2 asking for client 1's address: NAK, broadcast.
  o = s.handle(wire(request(MessageType::kRequest, 2,
                            {{opt::kServerId, option_u32(ip("10.0.0.1"))},
                             {opt::kRequestedAddress, option_u32(ip("10.0.0.10"))}})),
               0, 1002);
  EXPECT_EQ(reply_of(o).message_type(), MessageType::kNak);
  EXPECT_EQ(o.to_address, 0xffffffffu);
  // Renewing (ciaddr): ACK unicast to the client.
  Packet renew = request(MessageType::kRequest, 1);
  renew.ciaddr = ip("10.0.0.10");
  o = s.handle(wire(renew), ip("10.0.0.10"), 1050);
  EXPECT_EQ(reply_of(o).message_type(), MessageType::kAck);
  EXPECT_EQ(reply_of(o).ciaddr, ip("10.0.0.10"));
  EXPECT_EQ(o.to_address, ip("10.0.0.10"));
  EXPECT_EQ(s.leases().at(ip("10.0.0.10")).expires, 1150);
}

TEST(DhcpServer, InitRebootAndTheLeaseFile) {
  Server s(settings());
  auto ack = [&](std::uint8_t mac) {
    auto a = reply_of(s.handle(wire(request(MessageType::kDiscover, mac)), 0, 1000)).yiaddr;
    s.handle(wire(request(MessageType::kRequest, mac,
                          {{opt::kServerId, option_u32(ip("10.0.0.1"))}, {opt::kRequestedAddress, option_u32(a)}})),
             0, 1000);
    return a;
  };
  std::uint32_t a = ack(1);
  Server again(settings());
  std::vector<std::string> warnings;
  again.load(s.serialize() + "garbage line\n", &warnings);
  EXPECT_EQ(warnings.size(), 1u);
  ASSERT_EQ(again.leases().size(), 1u);
  // INIT-REBOOT with the address: ACK; with another: NAK; from an unknown client: silence.
  auto reboot = [](std::uint8_t mac, std::uint32_t want) {
    return wire(request(MessageType::kRequest, mac, {{opt::kRequestedAddress, option_u32(want)}}));
  };
  EXPECT_EQ(reply_of(again.handle(reboot(1, a), 0, 1010)).message_type(), MessageType::kAck);
  EXPECT_EQ(reply_of(again.handle(reboot(1, ip("10.0.0.12")), 0, 1010)).message_type(), MessageType::kNak);
  EXPECT_FALSE(again.handle(reboot(9, ip("10.0.0.12")), 0, 1010).reply);
  EXPECT_EQ(reply_of(again.handle(reboot(9, ip("192.168.0.5")), 0, 1010)).message_type(), MessageType::kNak);
  // A new DISCOVER from the same client after the restart: the same address.
  EXPECT_EQ(reply_of(again.handle(wire(request(MessageType::kDiscover, 1)), 0, 1020)).yiaddr, a);
}

TEST(DhcpServer, ExhaustionReleaseDeclineExpiryAndReservations) {
  Server s(settings());
  auto lease = [&](std::uint8_t mac, std::int64_t now) -> std::uint32_t {
    Outcome o = s.handle(wire(request(MessageType::kDiscover, mac)), 0, now);
    if (!o.reply) return 0;
    auto a = reply_of(o).yiaddr;
    Outcome r = s.handle(wire(request(MessageType::kRequest, mac,
                                      {{opt::kServerId, option_u32(ip("10.0.0.1"))},
                                       {opt::kRequestedAddress, option_u32(a)}})),
                         0, now);
    return reply_of(r).message_type() == MessageType::kAck ? a : 0;
  };
  EXPECT_EQ(lease(1, 0), ip("10.0.0.10"));
  EXPECT_EQ(lease(2, 0), ip("10.0.0.11"));
  EXPECT_EQ(lease(3, 0), ip("10.0.0.12"));
  Outcome full = s.handle(wire(request(MessageType::kDiscover, 4)), 0, 1);
  EXPECT_FALSE(full.reply);
  EXPECT_TRUE(full.no_address);
  // Release by client 2: client 4 gets its address.
  Packet rel = request(MessageType::kRelease, 2);
  rel.ciaddr = ip("10.0.0.11");
  EXPECT_TRUE(s.handle(wire(rel), 0, 2).commit);
  EXPECT_EQ(lease(4, 3), ip("10.0.0.11"));
  // Decline by client 1: out of use for decline_time, nobody's.
  EXPECT_TRUE(
      s.handle(wire(request(MessageType::kDecline, 1, {{opt::kRequestedAddress, option_u32(ip("10.0.0.10"))}})), 0, 4)
          .commit);
  EXPECT_EQ(s.counts(5).declined, 1u);
  EXPECT_EQ(lease(5, 5), 0u);  // 10 declined, 11 and 12 bound
  // After the leases expire (100 s) the oldest expired address is reclaimed; the declined
  // one is back after 50 s.
  EXPECT_EQ(lease(5, 60), ip("10.0.0.10"));
  EXPECT_EQ(lease(6, 200), ip("10.0.0.12"));  // 12 expired at 100, 11 at 103
  // A reservation by hardware address, outside the range, and never given to another.
  EXPECT_EQ(lease(0x77, 200), ip("10.0.0.50"));
  // Relayed: the pool of giaddr's subnet, the answer to the relay on port 67.
  Packet relayed = request(MessageType::kDiscover, 8);
  relayed.giaddr = ip("10.9.0.1");
  Outcome o = s.handle(wire(relayed), ip("10.9.0.1"), 200);
  EXPECT_EQ(reply_of(o).yiaddr, ip("10.9.0.10"));
  EXPECT_EQ(o.to_address, ip("10.9.0.1"));
  EXPECT_EQ(o.to_port, 67);
  EXPECT_EQ(reply_of(o).option_ipv4(opt::kRouter), ip("10.9.0.1"));
  // Unrelayed from a network without a pool... and a reply (op 2) is ignored.
  Packet reply = request(MessageType::kOffer, 9);
  reply.op = 2;
  EXPECT_FALSE(s.handle(wire(reply), 0, 200).reply);
}

TEST(DhcpServer, SettingsRefuseOverlapsAndStrayReservations) {
  Config::Dhcp c;
  c.pools.push_back({"10.0.0.0/16", "10.0.0.10", "10.0.0.12", {}, {}, "", 0});
  c.pools.push_back({"10.0.5.0/24", "10.0.5.10", "10.0.5.12", {}, {}, "", 0});
  Settings s;
  std::string err;
  EXPECT_FALSE(make_settings(c, 0, {}, "", &s, &err));
  EXPECT_NE(err.find("overlaps"), std::string::npos);
  c.pools.pop_back();
  c.pools[0].last = "10.1.0.1";
  EXPECT_FALSE(make_settings(c, 0, {}, "", &s, &err));
  c.pools[0].last = "10.0.255.255";
  EXPECT_FALSE(make_settings(c, 0, {}, "", &s, &err));
  EXPECT_NE(err.find("broadcast"), std::string::npos);
  c.pools[0].last = "10.0.0.12";
  c.reservations.push_back({"02:00:00:00:00:01", "", "192.168.0.1"});
  EXPECT_FALSE(make_settings(c, 0, {}, "", &s, &err));
  EXPECT_NE(err.find("no pool"), std::string::npos);
}

TEST(DhcpConfig, SectionParsesAndRefuses) {
  register_config_section();
  Config c = Config::parse(R"([dhcp]
enabled = true
interface = "eth1"
lease_file = "/tmp/x.leases"
pools = [{ subnet = "10.0.0.0/24", first = "10.0.0.10", last = "10.0.0.20", routers = ["10.0.0.1"] }]
reservations = [{ client_id = "01:02:03", address = "10.0.0.5" }]
)",
                           "t.toml");
  EXPECT_TRUE(c.dhcp.enabled);
  ASSERT_EQ(c.dhcp.pools.size(), 1u);
  EXPECT_EQ(c.dhcp.reservations[0].client_id, "01:02:03");
  EXPECT_THROW(Config::parse("[dhcp]\nenabled = true\n", "t.toml"), ConfigError);
  EXPECT_THROW(Config::parse("[dhcp]\npools = [{ subnet = \"10.0.0.0/24\", first = \"10.0.1.10\", last = "
                             "\"10.0.0.20\" }]\n",
                             "t.toml"),
               ConfigError);
  EXPECT_THROW(Config::parse("[dhcp]\nwpad_url = \"ftp://x\"\n", "t.toml"), ConfigError);
}

}  // namespace
}  // namespace outpost::dhcp
