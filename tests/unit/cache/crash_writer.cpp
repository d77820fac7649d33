// The process the crash test kills: replays round N's write storm into a disk-backed store,
// printing "ack <n>" once the first n operations are on disk. With "small", the disk budget
// is tiny so that segment reclaim (re-writes and drops) runs during the storm.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cache/store.hpp"
#include "crash_ops.hpp"

using namespace outpost::cache;

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s DIR ROUND [small]\n", argv[0]);
    return 2;
  }
  StoreOptions o;
  o.disk_dir = argv[1];
  o.memory_size = 4 << 20;  // small: most objects leave memory, writes keep going
  o.max_object_size = 64 << 10;
  o.segment_size = 1 << 20;
  o.disk_size = 1ull << 30;
  bool small = argc == 4;  // a disk budget of 8 small segments: reclaim runs all the time
  if (small) {
    o.segment_size = 256 << 10;
    o.disk_size = 8 * o.segment_size;
    o.memory_size = 1 << 20;
  }
  std::string err;
  auto store = Store::open(o, &err);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", err.c_str());
    return 1;
  }
  auto ops = crash::round_ops(std::atoi(argv[2]));
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const auto& op = ops[i];
    if (op.kind == crash::Op::kPut) {
      std::string body = crash::content(op.key, op.version);
      Writer w = store->writer(Namespace::kHttp, op.key, crash::meta(op.key, op.version), 0);
      for (std::size_t off = 0; off < body.size(); off += 1000) w.append(std::string_view(body).substr(off, 1000));
      w.commit();
    } else {
      store->erase(Namespace::kHttp, op.key);
    }
    // Reading recent objects marks them referenced: reclaim re-writes those.
    if (small && i % 3 == 0 && i >= 2) (void)store->lookup(Namespace::kHttp, ops[i - 2].key);
    if ((i + 1) % crash::kAckEvery == 0) {
      store->flush();
      std::printf("ack %zu\n", i + 1);
      std::fflush(stdout);
    }
  }
  store->flush();
  std::printf("ack %zu\n", ops.size());
  std::fflush(stdout);
  return 0;
}
