// Helpers shared by the cache tests: temporary directories and synchronous disk lookups.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

#include "cache/store.hpp"

namespace outpost::cache::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "outpost-cache-XXXXXX").string();
    if (::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// "prefix" + number, built by appending (GCC 12's -Wrestrict misfires on "lit" + std::string).
inline std::string numbered(std::string_view prefix, long long n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

// lookup_async, waiting for the answer (tests only: this blocks).
inline Handle fetch(Store& s, Namespace ns, std::string_view key) {
  std::promise<Handle> p;
  auto f = p.get_future();
  s.lookup_async(ns, key, [&p](Handle h, bool) { p.set_value(std::move(h)); });
  return f.get();
}

}  // namespace outpost::cache::testing
