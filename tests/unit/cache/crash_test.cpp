// Crash safety: a writer process is SIGKILLed at random moments of a write storm, many
// rounds over the same directory. After each kill the store must recover exactly the state
// after some prefix of the operations that includes everything acknowledged, with every
// object byte-identical; earlier rounds must be unchanged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "cache_test_util.hpp"
#include "crash_ops.hpp"

using namespace outpost;
using namespace outpost::cache;
using namespace outpost::cache::crash;
using outpost::cache::testing::fetch;
using outpost::cache::testing::TempDir;

namespace {

// Runs the writer for `round`, kills it after `delay`, returns the last acknowledged count.
std::size_t run_and_kill(const std::string& dir, int round, std::chrono::microseconds delay) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::close(fds[0]);
    std::string r = std::to_string(round);
    ::execl(CRASH_WRITER, CRASH_WRITER, dir.c_str(), r.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  std::size_t acked = 0;
  for (std::size_t pos = 0; (pos = out.find("ack ", pos)) != std::string::npos; pos += 4) {
    auto end = out.find('\n', pos);
    if (end == std::string::npos) break;  // a torn line is not an acknowledgement
    acked = std::stoul(out.substr(pos + 4, end - pos - 4));
  }
  return acked;
}

// Reads back every key the round may have touched: key -> version found (absent: not in map).
// Any object whose bytes match no version is a failure.
std::map<std::string, unsigned> recovered(Store& s, const std::vector<Op>& ops) {
  std::map<std::string, unsigned> found;
  for (const auto& op : ops) {
    if (op.kind != Op::kPut || found.count(op.key)) continue;
    Handle h = fetch(s, Namespace::kHttp, op.key);
    if (!h) continue;
    unsigned v = h.metadata() == meta(op.key, 2) ? 2u : 1u;
    EXPECT_EQ(h.metadata(), meta(op.key, v)) << op.key;
    EXPECT_TRUE(h.body_string() == content(op.key, v)) << op.key << " v" << v << ": bytes differ";
    found[op.key] = v;
  }
  return found;
}

}  // namespace

TEST(CacheCrash, KillDuringWriteStormRecoversCompleteObjectsOnly) {
  TempDir d;
  StoreOptions o;
  o.disk_dir = d.path();
  o.memory_size = 64 << 20;
  o.max_object_size = 64 << 10;
  o.segment_size = 1 << 20;
  o.disk_size = 1ull << 30;
  std::mt19937 rng(20261127);
  constexpr int kRounds = 24;
  std::map<int, std::map<std::string, unsigned>> settled;  // state of finished rounds
  int killed_mid_storm = 0;
  std::uint64_t corrupt_seen = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto delay = std::chrono::microseconds(rng() % 60000);
    std::size_t acked = run_and_kill(d.path(), round, delay);
    auto ops = round_ops(round);
    if (acked < ops.size()) ++killed_mid_storm;
    std::string err;
    auto s = Store::open(o, &err);
    ASSERT_TRUE(s) << err;
    corrupt_seen += s->stats().total().corrupt_skipped;
    auto got = recovered(*s, ops);
    // Some prefix of at least `acked` operations, and nothing else.
    bool matched = false;
    for (std::size_t p = acked; p <= ops.size() && !matched; ++p) matched = got == state_after(ops, p);
    EXPECT_TRUE(matched) << "round " << round << ": recovered state is no prefix >= " << acked << " of the storm";
    settled[round] = got;
    // Earlier rounds are untouched (sample a few, all on the last round).
    for (auto& [r, state] : settled) {
      if (r == round || (round != kRounds - 1 && r % 6 != round % 6)) continue;
      EXPECT_EQ(recovered(*s, round_ops(r)), state) << "round " << r << " changed after round " << round;
    }
  }
  EXPECT_GT(killed_mid_storm, kRounds / 2);  // the kills really landed during the storm
  RecordProperty("corrupt_records_skipped", std::to_string(corrupt_seen));
}
