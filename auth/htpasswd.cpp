#include "auth/htpasswd.hpp"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace outpost::auth {

namespace {

bool read_file(const std::string& path, std::string* out, std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Calls fn(line, number) for each line that is not blank or a comment, trimmed; stops when
// fn returns false (and returns false).
template <class Fn>
bool for_each_line(const std::string& text, Fn&& fn) {
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line = trim(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    if (!fn(line, line_no)) return false;
  }
  return true;
}

// For unknown users when the file has no usable hash (htpasswd -nbB -C 10 nobody nothing).
constexpr const char* kDummyHash = "$2y$10$HdvPg2VsLtQOrEsC/oBiMu5oilTJTMZjv0Hjce1TRH213z53m7um.";

bool check(const std::string& hash, const std::string& password) {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof *data);
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  bool ok = out && out[0] != '*' && std::strlen(out) == hash.size() &&
            CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(data.get(), sizeof *data);
  return ok;
}

}  // namespace

bool supported_hash(std::string_view h) {
  for (std::string_view p : {"$2a$", "$2b$", "$2y$", "$5$", "$6$", "$y$", "$gy$", "$7$"})
    if (h.starts_with(p)) return true;
  return false;
}

std::unique_ptr<HtpasswdBackend> HtpasswdBackend::parse(const std::string& users_text, const std::string& users_name,
                                                        const std::string& groups_text,
                                                        const std::string& groups_name, std::string* error,
                                                        std::vector<std::string>* warnings) {
  auto b = std::unique_ptr<HtpasswdBackend>(new HtpasswdBackend());
  bool ok = for_each_line(users_text, [&](std::string_view line, std::size_t line_no) {
    std::string where = users_name + ":" + std::to_string(line_no) + ": ";
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = where + "expected user:hash";
      return false;
    }
    std::string user(line.substr(0, colon));
    std::string hash(trim(line.substr(colon + 1)));
    if (b->hashes_.count(user)) {
      *error = where + "user " + user + " listed twice";
      return false;
    }
    if (!supported_hash(hash)) {
      std::string kind = hash.starts_with("$apr1$") ? "Apache MD5 ($apr1$)"
                         : hash.starts_with("{SHA}") ? "unsalted SHA-1 ({SHA})"
                                                      : "an unknown or weak scheme (plain text, DES, MD5)";
      warnings->push_back(where + "user " + user + " has a password hash in " + kind +
                          ", which Outpost does not accept: that user cannot log in (use htpasswd -B or -5)");
      return true;
    }
    if (b->dummy_.empty()) b->dummy_ = hash;
    b->hashes_.emplace(std::move(user), std::move(hash));
    return true;
  });
  if (!ok) return nullptr;
  ok = for_each_line(groups_text, [&](std::string_view line, std::size_t line_no) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = groups_name + ":" + std::to_string(line_no) + ": expected group: user user ...";
      return false;
    }
    std::string group(trim(line.substr(0, colon)));
    std::string_view members = line.substr(colon + 1);
    std::size_t i = 0;
    while (i < members.size()) {
      while (i < members.size() && (members[i] == ' ' || members[i] == '\t')) ++i;
      std::size_t start = i;
      while (i < members.size() && members[i] != ' ' && members[i] != '\t') ++i;
      if (i > start) b->groups_[std::string(members.substr(start, i - start))].push_back(group);
    }
    return true;
  });
  if (!ok) return nullptr;
  return b;
}

std::unique_ptr<HtpasswdBackend> HtpasswdBackend::load(const std::string& users_file, const std::string& group_file,
                                                       std::string* error, std::vector<std::string>* warnings) {
  std::string users, groups;
  if (!read_file(users_file, &users, error)) return nullptr;
  if (!group_file.empty() && !read_file(group_file, &groups, error)) return nullptr;
  return parse(users, users_file, groups, group_file, error, warnings);
}

Identity HtpasswdBackend::verify(const std::string& user, const std::string& password) const {
  Identity id;
  auto it = hashes_.find(user);
  if (it == hashes_.end()) {
    // As costly as a wrong password (the file's first hash), so the time does not tell
    // which names exist.
    check(dummy_.empty() ? kDummyHash : dummy_, password);
    id.why = "unknown user";
    return id;
  }
  if (!check(it->second, password)) {
    id.why = "wrong password";
    return id;
  }
  id.verdict = Verdict::kGood;
  if (auto g = groups_.find(user); g != groups_.end()) id.groups = g->second;
  return id;
}

}  // namespace outpost::auth
