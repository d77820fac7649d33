// The SNMP agent's pure parts: the BER codec (known encodings, strictness), the MIB snapshot
// built from a MetricSet (Squid's OIDs and Outpost's own), GET / GETNEXT / GETBULK answers
// with their edges (end of the tree, tooBig, bulk cut short), and the AgentX codec.
#include <gtest/gtest.h>

#include "core/metrics.hpp"
#include "services/snmp/agentx.hpp"
#include "services/snmp/ber.hpp"
#include "services/snmp/mib.hpp"
#include "services/snmp/snmp_agent.hpp"

using namespace outpost;
using namespace outpost::snmp;

namespace {

std::vector<std::uint8_t> hex(std::string_view s) {
  std::vector<std::uint8_t> out;
  std::string digits;
  for (char c : s)
    if (std::isxdigit(static_cast<unsigned char>(c))) digits += c;
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  return out;
}

Oid oid(std::string_view s) {
  Oid o;
  EXPECT_TRUE(parse_oid(s, &o)) << s;
  return o;
}

MetricSet sample_metrics() {
  MetricSet m;
  m.counter("outpost_http_requests_total", "", {{"outcome", "TCP_MISS"}, {"method", "GET"}}, 10);
  m.counter("outpost_http_requests_total", "", {{"outcome", "TCP_MEM_HIT"}, {"method", "GET"}}, 5);
  m.counter("outpost_http_requests_total", "", {{"outcome", "TCP_HIT"}, {"method", "HEAD"}}, 2);
  m.counter("outpost_http_responses_total", "", {{"code", "4xx"}}, 3);
  m.counter("outpost_http_responses_total", "", {{"code", "5xx"}}, 1);
  m.counter("outpost_http_responses_total", "", {{"code", "2xx"}}, 13);
  m.gauge("outpost_store_bytes", "", {{"namespace", "http"}, {"tier", "memory"}}, 4096);
  m.gauge("outpost_store_bytes", "", {{"namespace", "dns"}, {"tier", "memory"}}, 1024);
  m.gauge("outpost_store_objects", "", {{"namespace", "http"}, {"tier", "memory"}}, 7);
  m.gauge("outpost_store_objects", "", {{"namespace", "dns"}, {"tier", "memory"}}, 30);
  m.gauge("outpost_start_time_seconds", "", {}, 1000);
  m.counter("outpost_dns_queries_total", "", {}, 42);
  m.counter("outpost_client_sent_bytes_total", "", {}, 10240);
  return m;
}

MibView sample_view() { return build_mib(sample_metrics(), MibInfo{"9.9", "test-box", 256ull << 20, 0}, 1012.5); }

}  // namespace

TEST(SnmpBer, DecodesAnSnmpgetRequest) {
  // snmpget -v2c -c public HOST 1.3.6.1.4.1.3495.1.1.3.0, request-id 0x1234
  auto bytes = hex("30 29 02 01 01 04 06 70 75 62 6c 69 63 a0 1c 02 02 12 34 02 01 00 02 01 00 30 10 30 0e 06 0a"
                   "2b 06 01 04 01 9b 27 01 01 03 05 00");
  Message m;
  std::string why;
  Message want;
  want.version = 1;
  want.community = "public";
  want.pdu = Tag::kGetRequest;
  want.request_id = 0x1234;
  want.varbinds = {{oid("1.3.6.1.4.1.3495.1.1.3"), Value::null()}};
  ASSERT_TRUE(decode_message(bytes, &m, &why)) << why;
  EXPECT_EQ(m, want);
  EXPECT_EQ(encode_message(want), bytes);
}

TEST(SnmpBer, IntegersAndUnsignedAreMinimal) {
  Message m;
  m.community = "c";
  m.pdu = Tag::kResponse;
  m.request_id = -1;
  m.varbinds = {{oid("1.3.6.1.2.1.1.3.0"), Value::counter32(0x80000000u)},
                {oid("1.3.6.1.2.1.1.3.1"), Value::counter64(0xffffffffffffffffull)},
                {oid("1.3.6.1.2.1.1.3.2"), Value::integer32(-129)},
                {oid("1.3.6.1.2.1.1.3.3"), Value::integer32(128)},
                {oid("2.999.4294967295"), Value::octets(std::string(300, 'x'))}};
  auto bytes = encode_message(m);
  Message back;
  std::string why;
  ASSERT_TRUE(decode_message(bytes, &back, &why)) << why;
  EXPECT_EQ(back, m);
  // request-id -1 is the one octet 0xff; 128 needs a leading zero, -129 two octets.
  auto has = [&](std::vector<std::uint8_t> seq) {
    return std::search(bytes.begin(), bytes.end(), seq.begin(), seq.end()) != bytes.end();
  };
  EXPECT_TRUE(has({0x02, 0x01, 0xff, 0x02, 0x01, 0x00}));
  EXPECT_TRUE(has({0x02, 0x02, 0x00, 0x80}));
  EXPECT_TRUE(has({0x02, 0x02, 0xff, 0x7f}));
  EXPECT_TRUE(has({0x41, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00}));
}

TEST(SnmpBer, RefusesMalformedInput) {
  auto good = encode_message(Message{1, "public", Tag::kGetRequest, 7, 0, 0, {{oid("1.3.6.1"), Value::null()}}});
  std::string why;
  Message m;
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(decode_message({good.data(), cut}, &m, &why)) << cut;
    EXPECT_FALSE(why.empty());
  }
  // A length of 0x7fffffff.
  auto huge = hex("30 84 7f ff ff ff 02 01 01");
  EXPECT_FALSE(decode_message(huge, &m, &why));
  EXPECT_NE(why.find("past the end"), std::string::npos) << why;
  // Indefinite length, 5 length octets, trailing bytes, a v1 trap PDU.
  EXPECT_FALSE(decode_message(hex("30 80 02 01 01 00 00"), &m, &why));
  EXPECT_FALSE(decode_message(hex("30 85 00 00 00 00 03 02 01 01"), &m, &why));
  auto trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(decode_message(trailing, &m, &why));
  auto trap = good;
  trap[13] = 0xa4;
  EXPECT_FALSE(decode_message(trap, &m, &why));
  // An OID arc over 32 bits (1.3.2^32).
  EXPECT_FALSE(decode_message(hex("30 1f 02 01 01 04 01 63 a0 17 02 01 01 02 01 00 02 01 00 30 0c 30 0a 06 06 2b 90 80"
                                  "80 80 00 05 00"),
                              &m, &why));
  EXPECT_NE(why.find("32 bits"), std::string::npos) << why;
  std::int64_t v = 0;
  std::string c;
  EXPECT_TRUE(peek_version_and_community(good, &v, &c, &why));
  EXPECT_EQ(v, 1);
  EXPECT_EQ(c, "public");
}

TEST(SnmpBer, OidText) {
  Oid o;
  EXPECT_TRUE(parse_oid(".1.3.6.1.4.1.3495", &o));
  EXPECT_EQ(oid_to_string(o), "1.3.6.1.4.1.3495");
  EXPECT_FALSE(parse_oid("1..3", &o));
  EXPECT_FALSE(parse_oid("1.3.x", &o));
  EXPECT_FALSE(parse_oid("1.4294967296", &o));
  EXPECT_FALSE(parse_oid("", &o));
}

TEST(SnmpMib, SquidFiguresFromTheMetrics) {
  MibView v = sample_view();
  auto at = [&](std::string_view s) {
    const MibEntry* e = v.get(oid(s));
    EXPECT_NE(e, nullptr) << s;
    return e ? e->value : Value::null();
  };
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.3.2.1.1.0"), Value::counter32(17));  // cacheProtoClientHttpRequests
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.3.2.1.2.0"), Value::counter32(7));   // cacheHttpHits: MEM_HIT + HIT
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.3.2.1.3.0"), Value::counter32(4));   // cacheHttpErrors: 4xx + 5xx
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.3.2.1.5.0"), Value::counter32(10));  // cacheHttpOutKb
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.1.1.0"), Value::integer32(5));       // cacheSysVMsize: 5 KB
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.1.3.0"), Value::timeticks(1250));    // cacheUptime 12.5 s
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.3.1.7.0"), Value::gauge32(7));       // cacheNumObjCount: http objects
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.2.5.1.0"), Value::integer32(256));   // cacheMemMaxSize MB
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.2.3.0"), Value::octets("9.9"));
  EXPECT_EQ(at("1.3.6.1.4.1.3495.1.2.6.0"), Value::octets("test-box"));
  EXPECT_EQ(at("1.3.6.1.4.1.32473.1.1.1.0"), Value::counter64(42));     // DNS server queries
  EXPECT_EQ(at("1.3.6.1.4.1.32473.1.2.1.0"), Value::gauge32(37));       // store objects in memory
}

TEST(SnmpAgent, GetGetNextAndTheEndOfTheTree) {
  MibView v = sample_view();
  Message req{1, "public", Tag::kGetRequest, 99, 0, 0,
              {{oid("1.3.6.1.4.1.3495.1.1.3.0"), Value::null()},
               {oid("1.3.6.1.4.1.3495.1.1.3.1"), Value::null()},
               {oid("1.3.6.1.4.1.3495.1.99.0"), Value::null()}}};
  Message r = answer(req, v);
  EXPECT_EQ(r.pdu, Tag::kResponse);
  EXPECT_EQ(r.request_id, 99);
  ASSERT_EQ(r.varbinds.size(), 3u);
  EXPECT_EQ(r.varbinds[0].value, Value::timeticks(1250));
  EXPECT_EQ(r.varbinds[1].value.type, Tag::kNoSuchInstance);
  EXPECT_EQ(r.varbinds[2].value.type, Tag::kNoSuchObject);

  req.pdu = Tag::kGetNextRequest;
  req.varbinds = {{oid("1.3.6.1.4.1.3495"), Value::null()}, {v.entries().back().oid, Value::null()}};
  r = answer(req, v);
  ASSERT_EQ(r.varbinds.size(), 2u);
  EXPECT_EQ(r.varbinds[0].oid, v.entries().front().oid);
  EXPECT_EQ(r.varbinds[0].oid, oid("1.3.6.1.4.1.3495.1.1.1.0"));
  EXPECT_EQ(r.varbinds[1].oid, v.entries().back().oid);
  EXPECT_EQ(r.varbinds[1].value.type, Tag::kEndOfMibView);

  // A walk visits every entry once, in order.
  Oid at = {1, 3};
  std::size_t seen = 0;
  while (true) {
    req.varbinds = {{at, Value::null()}};
    r = answer(req, v);
    if (r.varbinds[0].value.type == Tag::kEndOfMibView) break;
    EXPECT_LT(at, r.varbinds[0].oid);
    at = r.varbinds[0].oid;
    ++seen;
  }
  EXPECT_EQ(seen, v.entries().size());
}

TEST(SnmpAgent, GetBulk) {
  MibView v = sample_view();
  Message req{1, "public", Tag::kGetBulkRequest, 5, 1, 3,
              {{oid("1.3.6.1.4.1.3495.1.1.3.0"), Value::null()}, {oid("1.3.6.1.4.1.3495.1.2"), Value::null()}}};
  Message r = answer(req, v);
  ASSERT_EQ(r.varbinds.size(), 4u);  // 1 non-repeater + 3 repetitions
  EXPECT_EQ(r.varbinds[0].oid, oid("1.3.6.1.4.1.3495.1.2.2.0"));
  EXPECT_EQ(r.varbinds[1].oid, oid("1.3.6.1.4.1.3495.1.2.2.0"));
  EXPECT_EQ(r.varbinds[2].oid, oid("1.3.6.1.4.1.3495.1.2.3.0"));
  EXPECT_EQ(r.varbinds[3].oid, oid("1.3.6.1.4.1.3495.1.2.5.1.0"));
  // Past the end: one row of endOfMibView, then no more rows.
  req.error_status = 0;
  req.error_index = 50;
  req.varbinds = {{v.entries()[v.entries().size() - 2].oid, Value::null()}};
  r = answer(req, v);
  ASSERT_EQ(r.varbinds.size(), 2u);
  EXPECT_EQ(r.varbinds[1].value.type, Tag::kEndOfMibView);
  // A huge max-repetitions is cut to the size budget, never an error.
  req.error_index = 100000;
  req.varbinds = {{oid("1.3"), Value::null()}};
  r = answer(req, v, 600);
  EXPECT_EQ(r.error_status, 0);
  EXPECT_FALSE(r.varbinds.empty());
  EXPECT_LE(encode_message(r).size(), 600u);
  // Negative fields are taken as 0.
  req.error_status = -5;
  req.error_index = -5;
  r = answer(req, v);
  EXPECT_TRUE(r.varbinds.empty());
}

TEST(SnmpAgent, TooBigAndSet) {
  MibView v = sample_view();
  Message req{1, "public", Tag::kGetRequest, 5, 0, 0, {}};
  for (int i = 0; i < 40; ++i) req.varbinds.push_back({oid("1.3.6.1.4.1.3495.1.2.3.0"), Value::null()});
  Message r = answer(req, v, 200);
  EXPECT_EQ(r.error_status, 1);  // tooBig
  EXPECT_TRUE(r.varbinds.empty());
  req.pdu = Tag::kSetRequest;
  req.varbinds.resize(1);
  r = answer(req, v);
  EXPECT_EQ(r.error_status, 17);  // notWritable
  EXPECT_EQ(r.error_index, 1);
}

TEST(SnmpMetrics, SumMatchesLabels) {
  MetricSet m = sample_metrics();
  EXPECT_EQ(m.sum("outpost_http_requests_total"), 17);
  EXPECT_EQ(m.sum("outpost_http_requests_total", {{"method", "GET"}}), 15);
  EXPECT_EQ(m.sum("outpost_http_requests_total", {{"outcome", "TCP_HIT"}}), 2);  // not TCP_MEM_HIT
  EXPECT_EQ(m.sum("outpost_store_bytes", {{"tier", "memory"}, {"namespace", "dns"}}), 1024);
  EXPECT_EQ(m.sum("nothing"), 0);
}

TEST(AgentX, OpenRegisterAndResponseEncodings) {
  auto open = agentx::encode_open(1, 5, kOutpostMib, "Outpost");
  agentx::Header h;
  std::string why;
  ASSERT_TRUE(agentx::parse_header(open, &h, &why)) << why;
  EXPECT_EQ(h.type, agentx::PduType::kOpen);
  EXPECT_EQ(h.payload_length, open.size() - agentx::kHeaderSize);
  // timeout, 3 reserved; OID 1.3.6.1.4.1.32473.1 in prefix form: 3 sub-ids, prefix 4.
  EXPECT_EQ(open[20], 5);
  EXPECT_EQ(open[24], 3);
  EXPECT_EQ(open[25], 4);
  auto reg = agentx::encode_register(77, 2, 5, 127, kSquidMib);
  ASSERT_TRUE(agentx::parse_header(reg, &h, &why));
  EXPECT_EQ(h.session_id, 77u);
  EXPECT_EQ(h.packet_id, 2u);
}

TEST(AgentX, GetNextWithinRangesAndBulk) {
  MibView v = sample_view();
  // A GetNext PDU in little-endian order (no NETWORK_BYTE_ORDER flag), as a master may send:
  // start 1.3.6.1.4.1.3495.1.1.3.0 (included), end 1.3.6.1.4.1.3495.1.2 (exclusive).
  std::vector<std::uint8_t> pdu = {1, 6, 0, 0};
  auto le32 = [&](std::uint32_t x) {
    for (int i = 0; i < 4; ++i) pdu.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
  };
  le32(9), le32(10), le32(11), le32(0);
  auto put_oid = [&](const Oid& o, bool include) {
    pdu.push_back(static_cast<std::uint8_t>(o.size() - 5));
    pdu.push_back(static_cast<std::uint8_t>(o[4]));
    pdu.push_back(include ? 1 : 0);
    pdu.push_back(0);
    for (std::size_t i = 5; i < o.size(); ++i) le32(o[i]);
  };
  put_oid(oid("1.3.6.1.4.1.3495.1.1.3.0"), true);
  put_oid(oid("1.3.6.1.4.1.3495.1.2"), false);
  put_oid(oid("1.3.6.1.4.1.3495.1.1.3.0"), false);
  put_oid(oid("1.3.6.1.4.1.3495.1.2"), false);
  std::uint32_t len = static_cast<std::uint32_t>(pdu.size() - 20);
  for (int i = 0; i < 4; ++i) pdu[16 + i] = static_cast<std::uint8_t>(len >> (8 * i));
  agentx::Header h;
  std::string why;
  ASSERT_TRUE(agentx::parse_header(pdu, &h, &why)) << why;
  EXPECT_EQ(h.session_id, 9u);
  agentx::Request req;
  ASSERT_TRUE(agentx::parse_request(h, {pdu.data() + 20, h.payload_length}, &req, &why)) << why;
  ASSERT_EQ(req.ranges.size(), 2u);
  auto out = agentx::answer(req, v);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].oid, oid("1.3.6.1.4.1.3495.1.1.3.0"));  // included start
  EXPECT_EQ(out[1].value.type, Tag::kEndOfMibView);        // next is past the range's end
  EXPECT_EQ(out[1].oid, oid("1.3.6.1.4.1.3495.1.1.3.0"));
  // Truncated: every shorter payload is refused or parsed to fewer ranges, never read past.
  for (std::uint32_t cut = 0; cut < h.payload_length; cut += 4) {
    agentx::Request r2;
    agentx::parse_request(h, {pdu.data() + 20, cut}, &r2, &why);
  }
  // A header with a payload length over 64 KiB or not a multiple of 4.
  auto bad = pdu;
  bad[16] = 2;
  EXPECT_FALSE(agentx::parse_header(bad, &h, &why));
  bad = pdu;
  bad[17] = 0, bad[18] = 0, bad[19] = 0x10;
  EXPECT_FALSE(agentx::parse_header(bad, &h, &why));
  bad = pdu;
  bad[0] = 2;
  EXPECT_FALSE(agentx::parse_header(bad, &h, &why));
}
