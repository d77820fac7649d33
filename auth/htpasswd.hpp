// The htpasswd back end: Apache's "user:hash" file (htpasswd -B bcrypt, -2/-5 SHA-crypt
// or mkpasswd's yescrypt), checked with libxcrypt's crypt_r; groups from an Apache group
// file ("group: user user ..."). Loaded whole at start-up and on each reload.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/backend.hpp"

namespace outpost::auth {

class HtpasswdBackend final : public Backend {
 public:
  // Parses the files' text. Lines with a hash crypt_r cannot check ($apr1$, {SHA}, plain
  // text, DES) are skipped with a warning in *warnings (that user cannot log in); a line
  // without a ':' or a user twice is an error (nullptr, *error "file:line: why").
  static std::unique_ptr<HtpasswdBackend> parse(const std::string& users_text, const std::string& users_name,
                                                const std::string& groups_text, const std::string& groups_name,
                                                std::string* error, std::vector<std::string>* warnings);
  // Reads and parses the files (blocking).
  static std::unique_ptr<HtpasswdBackend> load(const std::string& users_file, const std::string& group_file,
                                               std::string* error, std::vector<std::string>* warnings);

  std::string_view name() const override { return "htpasswd"; }
  Identity verify(const std::string& user, const std::string& password) const override;
  std::size_t users() const { return hashes_.size(); }

 private:
  std::unordered_map<std::string, std::string> hashes_;
  std::unordered_map<std::string, std::vector<std::string>> groups_;  // user -> groups
  std::string dummy_;  // a hash of the file's, checked for unknown users
};

// Whether crypt_r can check a hash of this form ($2a$/$2b$/$2y$, $5$, $6$, $y$, $gy$, $7$).
bool supported_hash(std::string_view hash);

}  // namespace outpost::auth
