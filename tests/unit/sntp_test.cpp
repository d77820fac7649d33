// The SNTP server's packets (services/sntp/ntp_packet): timestamps, the request's verdicts,
// the answer's and the Kiss-o'-Death's fields byte by byte, reference IDs.
#include <gtest/gtest.h>

#include "services/sntp/ntp_packet.hpp"

using namespace outpost::sntp;

namespace {

Packet request(std::uint8_t li, std::uint8_t vn, std::uint8_t mode, std::uint64_t transmit) {
  Packet p{};
  p[0] = static_cast<std::uint8_t>(li << 6 | vn << 3 | mode);
  p[2] = 6;  // poll 64 s
  for (int i = 0; i < 8; ++i) p[40 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(transmit >> (56 - 8 * i));
  return p;
}

std::uint64_t get64(const Packet& p, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = v << 8 | p[at + i];
  return v;
}
std::uint32_t get32(const Packet& p, std::size_t at) { return static_cast<std::uint32_t>(get64(p, at) >> 32); }

}  // namespace

TEST(Sntp, Timestamps) {
  EXPECT_EQ(to_ntp(0, 0), std::uint64_t{2208988800} << 32);
  EXPECT_EQ(to_ntp(1, 500000000), (std::uint64_t{2208988801} << 32) | 0x80000000u);
  EXPECT_EQ(to_short(1.5), 0x00018000u);
  EXPECT_EQ(to_short(-1), 0u);
  EXPECT_EQ(to_short(1e9), 0xffffffffu);
}

TEST(Sntp, RequestVerdicts) {
  Request r;
  std::string why;
  EXPECT_EQ(parse_request(request(0, 4, 3, 42), &r, &why), Verdict::kAnswer);
  EXPECT_EQ(r.transmit, 42u);
  EXPECT_EQ(r.poll, 6);
  EXPECT_EQ(parse_request(request(3, 3, 3, 1), &r, &why), Verdict::kAnswer);  // chrony's unsynchronised client
  EXPECT_EQ(parse_request(request(0, 4, 1, 1), &r, &why), Verdict::kWrongMode);
  EXPECT_EQ(parse_request(request(0, 4, 4, 1), &r, &why), Verdict::kWrongMode);
  EXPECT_EQ(parse_request(request(0, 4, 6, 1), &r, &why), Verdict::kWrongMode);
  EXPECT_EQ(parse_request(request(0, 2, 3, 1), &r, &why), Verdict::kVersion);
  EXPECT_EQ(parse_request(request(0, 5, 3, 1), &r, &why), Verdict::kVersion);
  auto p = request(0, 4, 3, 1);
  EXPECT_EQ(parse_request({p.data(), 47}, &r, &why), Verdict::kMalformed);
  EXPECT_NE(why.find("47 bytes"), std::string::npos);
  EXPECT_EQ(parse_request({p.data(), 0}, &r, &why), Verdict::kMalformed);
  std::vector<std::uint8_t> ext(p.begin(), p.end());
  ext.resize(68);  // an extension field after the header is ignored
  EXPECT_EQ(parse_request(ext, &r, &why), Verdict::kAnswer);
}

TEST(Sntp, ResponseFields) {
  Request r;
  std::string why;
  ASSERT_EQ(parse_request(request(0, 3, 3, 0x1122334455667788), &r, &why), Verdict::kAnswer);
  ServerInfo info;
  info.stratum = 2;
  info.precision = -23;
  info.root_delay = to_short(0.5);
  info.root_dispersion = to_short(0.01);
  ASSERT_TRUE(parse_reference_id("192.0.2.7", &info.reference_id));
  info.reference = 0xaaaa000000000000;
  Packet p = make_response(r, info, 0x100, 0x200);
  EXPECT_EQ(p[0], 0 << 6 | 3 << 3 | 4);  // no leap, the client's version, server mode
  EXPECT_EQ(p[1], 2);
  EXPECT_EQ(p[2], 6);
  EXPECT_EQ(static_cast<std::int8_t>(p[3]), -23);
  EXPECT_EQ(get32(p, 4), 0x00008000u);
  EXPECT_EQ(get32(p, 12), 0xc0000207u);
  EXPECT_EQ(get64(p, 16), 0xaaaa000000000000u);
  EXPECT_EQ(get64(p, 24), 0x1122334455667788u);  // origin = the client's transmit
  EXPECT_EQ(get64(p, 32), 0x100u);
  EXPECT_EQ(get64(p, 40), 0x200u);

  Packet k = make_kod(r, info, "RATE", 0x100, 0x200);
  EXPECT_EQ(k[0] >> 6, 3);  // alarm
  EXPECT_EQ(k[1], 0);       // stratum 0: a kiss
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&k[12]), 4), "RATE");
  EXPECT_EQ(get64(k, 24), 0x1122334455667788u);
}

TEST(Sntp, ReferenceIds) {
  std::uint32_t id = 0;
  EXPECT_TRUE(parse_reference_id("GPS", &id));
  EXPECT_EQ(id, 0x47505300u);
  EXPECT_TRUE(parse_reference_id("LOCL", &id));
  EXPECT_EQ(id, 0x4c4f434cu);
  EXPECT_TRUE(parse_reference_id("10.1.2.3", &id));
  EXPECT_EQ(id, 0x0a010203u);
  EXPECT_FALSE(parse_reference_id("", &id));
  EXPECT_FALSE(parse_reference_id("TOOLONG", &id));
  EXPECT_FALSE(parse_reference_id("A B", &id));
}
