// Crash safety: a writer process is SIGKILLed at random moments of a write storm, many
// rounds over the same directory. After each kill the store must recover exactly the state
// after some prefix of the operations that includes everything acknowledged, with every
// object byte-identical; earlier rounds must be unchanged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <set>
#include <thread>

#include "cache_test_util.hpp"
#include "crash_ops.hpp"

using namespace outpost;
using namespace outpost::cache;
using namespace outpost::cache::crash;
using outpost::cache::testing::fetch;
using outpost::cache::testing::TempDir;

namespace {

// Runs the writer for `round`, kills it after `delay` (none: lets it finish), returns the last
// acknowledged count.
std::size_t run_and_kill(const std::string& dir, int round, std::optional<std::chrono::microseconds> delay,
                         bool small = false) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::close(fds[0]);
    std::string r = std::to_string(round);
    if (small) ::execl(CRASH_WRITER, CRASH_WRITER, dir.c_str(), r.c_str(), "small", static_cast<char*>(nullptr));
    else ::execl(CRASH_WRITER, CRASH_WRITER, dir.c_str(), r.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  if (delay) {
    std::this_thread::sleep_for(*delay);
    ::kill(pid, SIGKILL);
  }
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

// The options the checking side opens the store with (the writer's disk layout).
StoreOptions checker_options(const std::string& dir, std::uint64_t segment_size, std::uint64_t disk_size) {
  StoreOptions o;
  o.disk_dir = dir;
  o.memory_size = 64 << 20;
  o.max_object_size = 64 << 10;
  o.segment_size = segment_size;
  o.disk_size = disk_size;
  return o;
}

}  // namespace

TEST(CacheCrash, KillDuringWriteStormRecoversCompleteObjectsOnly) {
  TempDir d;
  StoreOptions o = checker_options(d.path(), 1 << 20, 1ull << 30);
  std::mt19937 rng(20261127);
  // Calibrate: how long does a whole storm take here? Kills land uniformly inside it.
  std::uint64_t storm_us = 0;
  {
    TempDir scratch;
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(run_and_kill(scratch.path(), 0, std::nullopt), static_cast<std::size_t>(kOpsPerRound));
    storm_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  }
  constexpr int kRounds = 24;
  std::map<int, std::map<std::string, unsigned>> settled;  // state of finished rounds
  int killed_mid_storm = 0;
  std::uint64_t corrupt_seen = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto delay = std::chrono::microseconds(rng() % storm_us);
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
  EXPECT_GT(killed_mid_storm, kRounds / 4);  // the kills really landed during the storm
  RecordProperty("corrupt_records_skipped", std::to_string(corrupt_seen));
  RecordProperty("killed_mid_storm", std::to_string(killed_mid_storm));
  RecordProperty("storm_us", std::to_string(storm_us));
}

// With a disk budget of a few segments, reclaim drops and re-writes records throughout the
// storm, so acknowledged objects may be gone; but nothing may come back that should not:
// whatever is found is byte-identical and no older than the last acknowledged version, and
// an acknowledged erase stays erased (its tombstone must not be lost before older copies).
TEST(CacheCrash, KillDuringReclaimNeverResurrectsOrCorrupts) {
  TempDir d;
  StoreOptions o = checker_options(d.path(), 256 << 10, 8 * (256 << 10));
  std::mt19937 rng(7);
  std::vector<std::size_t> acked_of;
  std::size_t first_round_found = 0;
  for (int round = 0; round < 16; ++round) {
    // Round 0 runs to the end: 4+ MB through a 2 MB budget, so reclaim has certainly run.
    auto delay = round == 0 ? std::nullopt : std::optional(std::chrono::microseconds(rng() % 80000));
    acked_of.push_back(run_and_kill(d.path(), round, delay, true));
    if (round == 0) {
      ASSERT_EQ(acked_of[0], static_cast<std::size_t>(kOpsPerRound));
    }
    std::string err;
    auto s = Store::open(o, &err);
    ASSERT_TRUE(s) << err;
    EXPECT_LE(s->stats().segments, 8u);  // restarts do not pile up segments beyond the budget
    for (int r = 0; r <= round; ++r) {
      auto ops = round_ops(r);
      auto got = recovered(*s, ops);  // byte-identical or a failure
      if (r == 0) first_round_found = got.size();
      std::map<std::string, unsigned> last_put;
      std::set<std::string> erased;
      for (std::size_t i = 0; i < acked_of[static_cast<std::size_t>(r)]; ++i) {
        if (ops[i].kind == Op::kPut) last_put[ops[i].key] = ops[i].version;
        else erased.insert(ops[i].key);
      }
      for (auto& [key, v] : got) {
        EXPECT_FALSE(erased.count(key)) << key << " was erased (acknowledged) but came back";
        if (last_put.count(key)) {
          EXPECT_GE(v, last_put[key]) << key << ": an older version came back";
        }
      }
    }
  }
  std::size_t first_round_puts = state_after(round_ops(0), acked_of[0]).size();
  EXPECT_LT(first_round_found, first_round_puts);  // reclaim really dropped old objects
  RecordProperty("first_round_objects_left", std::to_string(first_round_found) + "/" + std::to_string(first_round_puts));
}
