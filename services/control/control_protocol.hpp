// The wire form of `outpost ctl` (services/control/): one command per connection.
//
//   client → server   one line: words separated by spaces, ended by "\n" (a "\r" before it is
//                     dropped); printable ASCII only, at most kMaxCommandLine bytes.
//   server → client   "ok\n" or "error\n", then the answer's text; then the server closes.
//
// Pure functions, no I/O: the service and the client both use them, and the fuzz target
// (tests/fuzz/control_protocol_fuzz.cpp) runs the parser.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::control {

inline constexpr std::size_t kMaxCommandLine = 8192;
inline constexpr std::size_t kMaxWords = 16;

// Splits one request line (without its "\n") into words. False with *error (a sentence for
// the operator) for an empty line, a control or non-ASCII byte, too long a line or too many
// words.
bool parse_command_line(std::string_view line, std::vector<std::string>* words, std::string* error);

// The request line for `words` (joined by spaces, "\n" at the end).
std::string format_command(const std::vector<std::string>& words);

// An answer as sent.
std::string format_answer(bool ok, std::string_view text);

// Splits a received answer. False if it does not start with "ok\n" or "error\n".
bool parse_answer(std::string_view data, bool* ok, std::string* text);

}  // namespace outpost::control
