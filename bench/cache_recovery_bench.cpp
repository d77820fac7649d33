// Start-up cost of the disk tier: writes N small objects through the store, closes it, and
// times the index rebuild (scan of every segment, both checksums of every record).
// Usage: cache_recovery_bench DIR [N=1000000] [BODY_BYTES=100] [cold]
// With "cold" (root only) the page cache is dropped before the scan: machine-wide, so ask first.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cache/store.hpp"

using namespace outpost::cache;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [N] [BODY_BYTES] [cold]\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  std::size_t body_bytes = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100;
  std::filesystem::remove_all(dir);
  StoreOptions o;
  o.disk_dir = dir;
  o.memory_size = 64 << 20;
  o.max_object_size = 1 << 20;
  o.segment_size = 16 << 20;
  o.disk_size = 64ull << 30;
  std::string body(body_bytes, 'x');
  auto t0 = std::chrono::steady_clock::now();
  {
    auto s = Store::open(o);
    char key[64];
    for (std::size_t i = 0; i < n; ++i) {
      std::snprintf(key, sizeof key, "http://example.com/object/%zu", i);
      s->insert(Namespace::kHttp, key, "HTTP/1.1 200 OK", body);
    }
    s->flush();
  }
  double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uintmax_t bytes = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) bytes += e.file_size();
  bool cold = argc > 4 && std::string(argv[4]) == "cold" &&
              std::system("sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null") == 0;
  auto t1 = std::chrono::steady_clock::now();
  auto s = Store::open(o);
  double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  auto st = s->stats();
  std::printf("objects %zu, body %zu B, on disk %.1f MiB in %llu segments\n", n, body_bytes, static_cast<double>(bytes) / 1048576.0,
              static_cast<unsigned long long>(st.segments));
  std::printf("write %.2f s (%.0f objects/s)\n", write_s, static_cast<double>(n) / write_s);
  std::printf("recovery (%s cache): scan %.3f s, open total %.3f s, %llu records, %llu objects indexed\n",
              cold ? "cold" : "warm page", st.recovery_seconds, open_s,
              static_cast<unsigned long long>(st.recovered_records), static_cast<unsigned long long>(st.total().objects_disk));
  s.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
