// Proxy authentication's parts: Basic credentials (RFC 7617), the htpasswd back end (hashes
// made by Apache's htpasswd: bcrypt, SHA-256 and SHA-512 crypt; refused Apache-MD5 and SHA-1),
// the verdict cache (concurrent checks of the same credentials hash once), the user rules and
// the [auth] section. End to end: tests/integration/test_proxy_auth.py.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "auth/auth_config.hpp"
#include "auth/authenticator.hpp"
#include "auth/basic_credentials.hpp"
#include "auth/htpasswd.hpp"
#include "auth/ldap.hpp"
#include "proxy/user_rules.hpp"

using namespace outpost;
using namespace outpost::auth;

namespace {

// htpasswd -nbB -C 5 alice "wonder land"; -nb5 bob b0b-pass; -nb2 carol c@rol; -nbm dave x; -nbs erin x
const char* kUsers =
    "# users\n"
    "alice:$2y$05$PqP84TCnrdXi.Lv.lKBZ/uIqu7vPRXk7ZhitWuERGP8zFEj5sW65e\n"
    "bob:$6$5tTzLgrr.L6.iu5B$Gno6Av5drLqd7uVjkDbOVM2wCywKl9V/E4SNVMLQYm7C6drpMI5BJo/IpY6f8959T5pj6vutoW8C2TdJ/KDhf.\r\n"
    "\n"
    "carol:$5$v0PJC5VlBsd1gW5u$Nt0yL8sNDUVtbgKCNyRqjxe5ighTSNJWlr9N0oh8NLC\n"
    "dave:$apr1$8BdTR6qp$FpjTbc06MiyLggIBO1yDt1\n"
    "erin:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=\n";
const char* kGroups = "staff: alice  bob\nguests:carol\n";

std::string b64(std::string_view s) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16 | static_cast<unsigned char>(s[i + 1]) << 8 |
                 static_cast<unsigned char>(s[i + 2]);
    out += {a[v >> 18], a[v >> 12 & 63], a[v >> 6 & 63], a[v & 63]};
  }
  if (s.size() - i == 1) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    out += {a[v >> 18], a[v >> 12 & 63], '=', '='};
  } else if (s.size() - i == 2) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16 | static_cast<unsigned char>(s[i + 1]) << 8;
    out += {a[v >> 18], a[v >> 12 & 63], a[v >> 6 & 63], '='};
  }
  return out;
}

std::unique_ptr<HtpasswdBackend> backend(std::vector<std::string>* warnings = nullptr) {
  std::string error;
  std::vector<std::string> w;
  auto b = HtpasswdBackend::parse(kUsers, "users", kGroups, "groups", &error, warnings ? warnings : &w);
  EXPECT_TRUE(b) << error;
  return b;
}

// A back end that counts its checks and takes a while, for the cache.
class CountingBackend final : public Backend {
 public:
  std::string_view name() const override { return "counting"; }
  Identity verify(const std::string& user, const std::string& password) const override {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Identity id;
    if (user == "down") {
      id.verdict = Verdict::kUnavailable;
      return id;
    }
    id.verdict = password == "right" ? Verdict::kGood : Verdict::kBad;
    return id;
  }
  mutable std::atomic<int> calls{0};
};

}  // namespace

TEST(BasicCredentials, ParsesUserAndPassword) {
  BasicCredentials c;
  std::string why;
  ASSERT_EQ(parse_basic_credentials("Basic " + b64("alice:wonder land"), &c, &why), CredentialsStatus::kOk);
  EXPECT_EQ(c.user, "alice");
  EXPECT_EQ(c.password, "wonder land");
  // Scheme case-insensitive, spaces around; a password may hold ':' and be empty; UTF-8 kept.
  ASSERT_EQ(parse_basic_credentials("  bAsIc \t" + b64("bob:a:b") + " ", &c, &why), CredentialsStatus::kOk);
  EXPECT_EQ(c.password, "a:b");
  ASSERT_EQ(parse_basic_credentials("Basic " + b64("b:"), &c, &why), CredentialsStatus::kOk);
  EXPECT_EQ(c.password, "");
  ASSERT_EQ(parse_basic_credentials("Basic " + b64("j\xc3\xb6rg:p\xc3\xa4ss"), &c, &why), CredentialsStatus::kOk);
  EXPECT_EQ(c.user, "j\xc3\xb6rg");
}

TEST(BasicCredentials, RefusesWhatIsNotBasicOrNotReadable) {
  BasicCredentials c;
  std::string why;
  EXPECT_EQ(parse_basic_credentials("Digest username=\"a\"", &c, &why), CredentialsStatus::kOtherScheme);
  EXPECT_EQ(parse_basic_credentials("Bearer abc", &c, &why), CredentialsStatus::kOtherScheme);
  EXPECT_EQ(parse_basic_credentials("Basicx " + b64("a:b"), &c, &why), CredentialsStatus::kOtherScheme);
  for (const std::string& bad : std::vector<std::string>{std::string("Basic"), std::string("Basic !!!!"), "Basic " + b64("nocolon"),
                          "Basic " + b64(":nouser"), "Basic " + b64("a:b\n"), "Basic " + b64("a\x01:b"),
                          "Basic " + b64("ab:c").substr(0, 7), std::string("Basic YQ=a"), std::string("Basic =Q=="), "Basic " + b64("a:b") + " x",
                          "Basic " + std::string(kMaxCredentialsField, 'A')}) {
    why.clear();
    EXPECT_EQ(parse_basic_credentials(bad, &c, &why), CredentialsStatus::kMalformed) << bad;
    EXPECT_FALSE(why.empty());
    // The reason never repeats the value.
    if (bad.size() > 6) {
      EXPECT_EQ(why.find(bad.substr(6)), std::string::npos) << why;
    }
  }
}

TEST(Htpasswd, ChecksBcryptAndShaCryptAndRefusesWeakHashes) {
  std::vector<std::string> warnings;
  auto b = backend(&warnings);
  EXPECT_EQ(b->users(), 3u);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("users:6: user dave has a password hash in Apache MD5"), std::string::npos);
  EXPECT_NE(warnings[1].find("users:7: user erin has a password hash in unsalted SHA-1"), std::string::npos);

  auto good = b->verify("alice", "wonder land");
  EXPECT_EQ(good.verdict, Verdict::kGood);
  EXPECT_EQ(good.groups, (std::vector<std::string>{"staff"}));
  EXPECT_EQ(b->verify("bob", "b0b-pass").verdict, Verdict::kGood);
  auto carol = b->verify("carol", "c@rol");
  EXPECT_EQ(carol.verdict, Verdict::kGood);
  EXPECT_EQ(carol.groups, (std::vector<std::string>{"guests"}));
  EXPECT_EQ(b->verify("alice", "wonder lan").verdict, Verdict::kBad);
  EXPECT_EQ(b->verify("alice", "wonder land").why, "");
  EXPECT_EQ(b->verify("alice", "").why, "wrong password");
  EXPECT_EQ(b->verify("dave", "x").verdict, Verdict::kBad);
  EXPECT_EQ(b->verify("nobody", "x").why, "unknown user");
}

TEST(Htpasswd, FileErrorsNameTheLine) {
  std::string error;
  std::vector<std::string> w;
  EXPECT_FALSE(HtpasswdBackend::parse("alice:$2y$05$x\nno-colon-here\n", "u", "", "g", &error, &w));
  EXPECT_EQ(error, "u:2: expected user:hash");
  EXPECT_FALSE(HtpasswdBackend::parse("a:$6$x$y\na:$6$x$z\n", "u", "", "g", &error, &w));
  EXPECT_EQ(error, "u:2: user a listed twice");
  EXPECT_FALSE(HtpasswdBackend::parse("a:$6$x$y\n", "u", "staff alice\n", "g", &error, &w));
  EXPECT_EQ(error, "g:1: expected group: user user ...");
  EXPECT_FALSE(HtpasswdBackend::load("/nonexistent/htpasswd", "", &error, &w));
  EXPECT_NE(error.find("/nonexistent/htpasswd: cannot read"), std::string::npos);
}

TEST(Authenticator, CachesVerdictsAndChecksSameCredentialsOnce) {
  Config::Auth cfg;
  cfg.cache_ttl = 300;
  auto counting = std::make_unique<CountingBackend>();
  auto* backend_ptr = counting.get();
  auto a = std::make_shared<const Authenticator>(std::move(counting), cfg);
  EXPECT_FALSE(a->cached("u", "right"));
  // Eight threads with the same credentials at once: one back-end check.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] { good += a->verify_now("u", "right").verdict == Verdict::kGood; });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good, 8);
  EXPECT_EQ(backend_ptr->calls, 1);
  ASSERT_TRUE(a->cached("u", "right"));
  EXPECT_EQ(a->cached("u", "right")->verdict, Verdict::kGood);
  // Bad verdicts are cached too; another password is another entry; user and password do
  // not run together ("u"+"right" is not "ur"+"ight").
  EXPECT_EQ(a->verify_now("u", "wrong").verdict, Verdict::kBad);
  EXPECT_EQ(a->cached("u", "wrong")->verdict, Verdict::kBad);
  EXPECT_FALSE(a->cached("ur", "ight"));
  EXPECT_EQ(backend_ptr->calls, 2);
  // Unavailable: never cached.
  EXPECT_EQ(a->verify_now("down", "right").verdict, Verdict::kUnavailable);
  EXPECT_FALSE(a->cached("down", "right"));
  EXPECT_EQ(a->backend_checks(), 3u);
}

TEST(Authenticator, NoCacheWithZeroTtl) {
  Config::Auth cfg;
  cfg.cache_ttl = 0;
  auto a = std::make_shared<const Authenticator>(std::make_unique<CountingBackend>(), cfg);
  EXPECT_EQ(a->verify_now("u", "right").verdict, Verdict::kGood);
  EXPECT_FALSE(a->cached("u", "right"));
}

TEST(Authenticator, VerifiesOffTheLoop) {
  Config::Auth cfg;
  auto a = std::make_shared<const Authenticator>(backend(), cfg);
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::optional<Identity> got;
  auto work = a->verify(&loop, "bob", "b0b-pass", [&](Identity id) { got = id; });
  EXPECT_FALSE(got);  // never inside the call
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->verdict, Verdict::kGood);
  EXPECT_EQ(got->groups, (std::vector<std::string>{"staff"}));
  uv_loop_close(&loop);
}

TEST(UserRules, FirstMatchByUserGroupAndHost) {
  Config::Auth cfg;
  cfg.rules = {{false, {}, {"guests"}, {"*.intranet.test"}}, {true, {"carol"}, {}, {}},
               {false, {"*"}, {}, {"blocked.test"}}};
  cfg.default_allow = true;
  UserRules r(cfg);
  EXPECT_FALSE(r.allowed("carol", {"guests"}, "wiki.intranet.test"));
  EXPECT_TRUE(r.allowed("carol", {"guests"}, "blocked.test"));  // the second rule first
  EXPECT_FALSE(r.allowed("alice", {"staff"}, "blocked.test"));
  EXPECT_TRUE(r.allowed("alice", {"staff"}, "wiki.intranet.test"));
  EXPECT_TRUE(r.allowed("mallory", {}, "example.test"));
  cfg.default_allow = false;
  EXPECT_FALSE(UserRules(cfg).allowed("mallory", {}, "example.test"));
  EXPECT_TRUE(UserRules().allowed("anyone", {}, "anything"));
}

class AuthConfig : public ::testing::Test {
 protected:
  void SetUp() override { register_config_section(); }
  std::string error_of(const std::string& text) {
    try {
      Config::parse(text, "t.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(AuthConfig, ReadsTheSection) {
  auto c = Config::parse("", "t.toml");
  EXPECT_EQ(c.auth.backend, "none");
  c = Config::parse(
      "[auth]\nbackend = \"htpasswd\"\nhtpasswd_file = \"/etc/u\"\nrealm = \"Corp\"\ncache_ttl = 60\n"
      "default_action = \"deny\"\nrules = [{ action = \"allow\", groups = [\"staff\"], hosts = [\"*.test\"] }]\n",
      "t.toml");
  EXPECT_EQ(c.auth.htpasswd_file, "/etc/u");
  EXPECT_EQ(c.auth.realm, "Corp");
  EXPECT_EQ(c.auth.cache_ttl, 60);
  EXPECT_FALSE(c.auth.default_allow);
  ASSERT_EQ(c.auth.rules.size(), 1u);
  EXPECT_TRUE(c.auth.rules[0].allow);
  EXPECT_EQ(c.auth.rules[0].hosts, (std::vector<std::string>{"*.test"}));
}

TEST_F(AuthConfig, RefusesIncompleteOrBadValues) {
  EXPECT_NE(error_of("[auth]\nbackend = \"htpasswd\"\n").find("auth.htpasswd_file"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nbackend = \"kerberos\"\n").find("auth.backend"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nrealm = \"a\\\"b\"\n").find("auth.realm"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nrules = [{ users = [\"a\"] }]\n").find("action"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nrules = [{ action = \"allow\" }]\n").find("names users or groups"), std::string::npos);
  EXPECT_NE(error_of("[auth]\nrules = [{ action = \"allow\", users = [\"a\"], port = 1 }]\n").find("port"),
            std::string::npos);
}

TEST(Ldap, EscapesFilterValuesAndDnValues) {
  EXPECT_EQ(ldap_filter_escape("alice"), "alice");
  EXPECT_EQ(ldap_filter_escape("*"), "\\2a");
  EXPECT_EQ(ldap_filter_escape("a)(uid=*"), "a\\29\\28uid=\\2a");
  EXPECT_EQ(ldap_filter_escape(std::string("a\\b\0c", 5)), "a\\5cb\\00c");
  EXPECT_EQ(ldap_dn_value_escape("alice"), "alice");
  EXPECT_EQ(ldap_dn_value_escape("alice,ou=people"), "alice\\,ou\\=people");
  EXPECT_EQ(ldap_dn_value_escape("#x y "), "\\#x y\\ ");
  EXPECT_EQ(ldap_dn_value_escape(" a+b\"<>;\\"), "\\ a\\+b\\\"\\<\\>\\;\\\\");
  EXPECT_EQ(ldap_expand("uid=%s,dc=t", "bob"), "uid=bob,dc=t");
  EXPECT_EQ(ldap_expand("(|(member=%D)(memberUid=%s)(x=100%%))", "bob", "uid=bob"),
            "(|(member=uid=bob)(memberUid=bob)(x=100%))");
}

TEST(Ldap, RefusesAnEmptyPasswordWithoutAsking) {
  Config::Auth::Ldap cfg;
  cfg.uri = "ldap://127.0.0.1:1";  // never contacted
  cfg.bind_dn_template = "uid=%s,dc=t";
  std::string error;
  auto b = LdapBackend::load(cfg, &error);
  ASSERT_TRUE(b) << error;
  auto id = b->verify("alice", "");
  EXPECT_EQ(id.verdict, Verdict::kBad);
  EXPECT_EQ(id.why, "empty password");
  // A directory that is not there: unavailable, with libldap's reason.
  id = b->verify("alice", "pw");
  EXPECT_EQ(id.verdict, Verdict::kUnavailable);
  EXPECT_NE(id.why.find("Can't contact LDAP server"), std::string::npos) << id.why;
  cfg.bind_dn = "cn=svc";
  cfg.bind_password_file = "/nonexistent/secret";
  EXPECT_FALSE(LdapBackend::load(cfg, &error));
  EXPECT_NE(error.find("/nonexistent/secret: cannot read"), std::string::npos) << error;
}

// A back end whose checks wait until released, with a bound on pending checks.
class GatedBackend final : public Backend {
 public:
  std::string_view name() const override { return "gated"; }
  std::size_t max_pending() const override { return 2; }
  Identity verify(const std::string&, const std::string&) const override {
    std::unique_lock lk(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(lk, [&] { return open; });
    Identity id;
    id.verdict = Verdict::kGood;
    return id;
  }
  void release() {
    std::lock_guard lk(mu);
    open = true;
    cv.notify_all();
  }
  void wait_for(int n) {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return waiting >= n; });
  }
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  mutable int waiting = 0;
  bool open = false;
};

TEST(Authenticator, BoundsPendingChecksOfARemoteBackend) {
  Config::Auth cfg;
  auto gated = std::make_unique<GatedBackend>();
  auto* g = gated.get();
  auto a = std::make_shared<const Authenticator>(std::move(gated), cfg);
  // Two, unless the pool is too small to spare them (UV_THREADPOOL_SIZE below 4).
  if (blocking_pool_threads() < 4) GTEST_SKIP() << "UV_THREADPOOL_SIZE below 4";
  ASSERT_EQ(a->pending_limit(), 2u);
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::optional<Identity>> got(3);
  std::vector<BlockingWork> works;
  for (int i = 0; i < 3; ++i)
    works.push_back(a->verify(&loop, "u" + std::to_string(i), "pw", [&got, i](Identity id) { got[i] = id; }));
  EXPECT_EQ(a->pending(), 2u);
  g->wait_for(2);  // both admitted checks are in the back end
  // The third is refused at once, without the back end.
  while (!got[2]) uv_run(&loop, UV_RUN_ONCE);
  EXPECT_EQ(got[2]->verdict, Verdict::kUnavailable);
  EXPECT_NE(got[2]->why.find("busy"), std::string::npos);
  g->release();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(got[0]->verdict, Verdict::kGood);
  EXPECT_EQ(got[1]->verdict, Verdict::kGood);
  works.clear();
  EXPECT_EQ(a->pending(), 0u);
  uv_loop_close(&loop);
}

TEST_F(AuthConfig, ReadsAndChecksTheLdapKeys) {
  auto c = Config::parse(
      "[auth]\nbackend = \"ldap\"\nldap_uri = \"ldap://dir.test ldap://dir2.test:389\"\nldap_starttls = true\n"
      "ldap_base_dn = \"ou=people,dc=t\"\nldap_bind_dn = \"cn=svc,dc=t\"\nldap_bind_password_file = \"/s\"\n"
      "ldap_timeout = 2.5\nldap_connections = 3\nldap_max_pending = 9\n",
      "t.toml");
  EXPECT_EQ(c.auth.ldap.uri, "ldap://dir.test ldap://dir2.test:389");
  EXPECT_TRUE(c.auth.ldap.starttls);
  EXPECT_EQ(c.auth.ldap.user_filter, "(uid=%s)");
  EXPECT_EQ(c.auth.ldap.timeout, 2.5);
  EXPECT_EQ(c.auth.ldap.connections, 3u);
  EXPECT_EQ(c.auth.ldap.max_pending, 9u);
  auto err = [&](const std::string& keys) { return error_of("[auth]\nbackend = \"ldap\"\n" + keys); };
  EXPECT_NE(err("").find("auth.ldap_uri"), std::string::npos);
  EXPECT_NE(err("ldap_uri = \"http://x\"\nldap_base_dn = \"dc=t\"\n").find("auth.ldap_uri"), std::string::npos);
  EXPECT_NE(err("ldap_uri = \"ldaps://x\"\nldap_starttls = true\nldap_base_dn = \"dc=t\"\n").find("ldap_starttls"),
            std::string::npos);
  EXPECT_NE(err("ldap_uri = \"ldap://x\"\n").find("auth.ldap_base_dn"), std::string::npos);
  EXPECT_NE(err("ldap_uri = \"ldap://x\"\nldap_bind_dn_template = \"uid=alice,dc=t\"\n").find("%s"),
            std::string::npos);
  EXPECT_NE(err("ldap_uri = \"ldap://x\"\nldap_base_dn = \"dc=t\"\nldap_user_filter = \"uid=%s\"\n")
                .find("auth.ldap_user_filter"),
            std::string::npos);
  EXPECT_NE(err("ldap_uri = \"ldap://x\"\nldap_base_dn = \"dc=t\"\nldap_bind_dn = \"cn=svc\"\n")
                .find("auth.ldap_bind_password_file"),
            std::string::npos);
  EXPECT_NE(err("ldap_uri = \"ldap://x\"\nldap_base_dn = \"dc=t\"\nldap_group_filter = \"(member=%x)\"\n")
                .find("auth.ldap_group_filter"),
            std::string::npos);
}
