// The control channel's pure parts: the command line and answer format
// (services/control/control_protocol) and the [control] section. The channel itself runs
// end to end in tests/integration/test_control.py (over TCP with mutual TLS in
// test_control_tls.py) against a running Outpost.
#include <gtest/gtest.h>

#include "core/config.hpp"
#include "services/control/control_config.hpp"
#include "services/control/control_protocol.hpp"

using namespace outpost;
using namespace outpost::control;

namespace {
std::vector<std::string> words_of(std::string_view line, std::string* error = nullptr) {
  std::vector<std::string> w;
  std::string e;
  if (!parse_command_line(line, &w, &e) && error) *error = e;
  return w;
}

std::string config_error(const std::string& text) {
  try {
    Config::parse(text, "t.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ControlProtocol, SplitsWords) {
  EXPECT_EQ(words_of("status"), (std::vector<std::string>{"status"}));
  EXPECT_EQ(words_of("  purge \t --prefix  http://a/b?c=d  \r"),
            (std::vector<std::string>{"purge", "--prefix", "http://a/b?c=d"}));
  EXPECT_EQ(format_command({"dns", "flush", "--zone", "a.test"}), "dns flush --zone a.test\n");
}

TEST(ControlProtocol, RefusesWhatIsNotACommand) {
  std::string e;
  EXPECT_TRUE(words_of("", &e).empty());
  EXPECT_EQ(e, "empty command");
  EXPECT_TRUE(words_of(" \t ", &e).empty());
  EXPECT_TRUE(words_of("status\x01", &e).empty());
  EXPECT_NE(e.find("printable ASCII"), std::string::npos);
  EXPECT_TRUE(words_of("st\xc3\xa4tus", &e).empty());
  EXPECT_TRUE(words_of("a\nb", &e).empty());
  EXPECT_TRUE(words_of(std::string(kMaxCommandLine + 1, 'a'), &e).empty());
  EXPECT_NE(e.find("longer than"), std::string::npos);
  EXPECT_EQ(words_of(std::string(kMaxCommandLine, 'a')).size(), 1u);
  std::string many;
  for (std::size_t i = 0; i <= kMaxWords; ++i) many += "w ";
  EXPECT_TRUE(words_of(many, &e).empty());
  EXPECT_NE(e.find("words"), std::string::npos);
}

TEST(ControlProtocol, Answers) {
  bool ok = false;
  std::string text;
  EXPECT_EQ(format_answer(true, "a\nb"), "ok\na\nb\n");
  EXPECT_EQ(format_answer(false, ""), "error\n");
  ASSERT_TRUE(parse_answer("ok\nx\n", &ok, &text));
  EXPECT_TRUE(ok);
  EXPECT_EQ(text, "x\n");
  ASSERT_TRUE(parse_answer("error\nbad\n", &ok, &text));
  EXPECT_FALSE(ok);
  EXPECT_EQ(text, "bad\n");
  EXPECT_FALSE(parse_answer("HTTP/1.1 200 OK\r\n", &ok, &text));
  EXPECT_FALSE(parse_answer("", &ok, &text));
}

class ControlConfig : public ::testing::Test {
 protected:
  void SetUp() override { register_config_section(); }
};

TEST_F(ControlConfig, DefaultsOffAndReadsItsKeys) {
  auto c = Config::parse("", "t.toml");
  EXPECT_TRUE(c.control.socket.empty());
  c = Config::parse("[control]\nsocket = \"/run/o/c.sock\"\nmode = \"0660\"\ntimeout = 2\n", "t.toml");
  EXPECT_EQ(c.control.socket, "/run/o/c.sock");
  EXPECT_EQ(c.control.mode, 0660u);
  EXPECT_EQ(c.control.timeout, 2);
}

TEST_F(ControlConfig, RefusesUnsafeOrBadValues) {
  EXPECT_NE(config_error("[control]\nsocket = \"relative.sock\"\n").find("control.socket: expected an absolute path"),
            std::string::npos);
  EXPECT_NE(config_error("[control]\nsocket = \"/" + std::string(120, 'a') + "\"\n").find("107 bytes"),
            std::string::npos);
  EXPECT_NE(config_error("[control]\nmode = \"0666\"\n").find("other users must get no access"), std::string::npos);
  EXPECT_NE(config_error("[control]\nmode = \"0400\"\n").find("read and write"), std::string::npos);
  EXPECT_NE(config_error("[control]\nmode = \"rw\"\n").find("octal"), std::string::npos);
  EXPECT_NE(config_error("[control]\nmode = \"01777\"\n").find("octal"), std::string::npos);
  EXPECT_NE(config_error("[control]\nport = 1\n").find("port"), std::string::npos);
}

TEST_F(ControlConfig, TlsIsOffByDefaultAndNeedsItsFiles) {
  auto c = Config::parse("", "t.toml");
  EXPECT_TRUE(c.control.tls_listen.empty());
  EXPECT_EQ(c.control.tls_server_name, "outpost-control");
  // The client's files alone (what `outpost ctl` reads): no listener, nothing checked.
  c = Config::parse("[control]\nctl_certificate = \"/c.pem\"\nctl_key = \"/c.key\"\ntls_ca = \"/ca.pem\"\n", "t.toml");
  EXPECT_EQ(c.control.ctl_certificate, "/c.pem");
  EXPECT_EQ(c.control.ctl_key, "/c.key");
  EXPECT_EQ(c.control.tls_ca, "/ca.pem");
  const std::string listen = "[control]\ntls_listen = [\"127.0.0.1:8953\"]\n";
  EXPECT_NE(config_error(listen).find("control.tls_certificate: tls_listen needs the server's certificate"),
            std::string::npos);
  EXPECT_NE(config_error(listen + "tls_certificate = \"/s.pem\"\n").find("control.tls_key: tls_listen needs"),
            std::string::npos);
  // Mutual TLS is not optional: no CA, no listener.
  EXPECT_NE(config_error(listen + "tls_certificate = \"/s.pem\"\ntls_key = \"/s.key\"\n")
                .find("control.tls_ca: tls_listen needs the CA"),
            std::string::npos);
  // The files are read: missing ones are an error naming them.
  EXPECT_NE(config_error(listen + "tls_certificate = \"/nonexistent/s.pem\"\ntls_key = \"/s.key\"\ntls_ca = \"/c\"\n")
                .find("/nonexistent/s.pem"),
            std::string::npos);
  EXPECT_NE(config_error("[control]\nctl_certificate = \"/c.pem\"\n").find("ctl_certificate and ctl_key go together"),
            std::string::npos);
  EXPECT_NE(config_error("[control]\ntls_server_name = \"\"\n").find("control.tls_server_name"), std::string::npos);
  EXPECT_NE(config_error("[control]\ntls_listen = [\"nowhere\"]\n").find("control.tls_listen"), std::string::npos);
}
