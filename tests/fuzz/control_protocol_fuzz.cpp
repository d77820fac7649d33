// The control channel's command-line parser (services/control/control_protocol) on arbitrary
// bytes: never reads out of bounds; a line it accepts has 1..kMaxWords words of printable
// ASCII, and formatting them and parsing again gives the same words; a refusal says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "services/control/control_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::control;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> words;
  std::string error;
  if (!parse_command_line(in, &words, &error)) {
    if (error.empty() || !words.empty()) std::abort();
    return 0;
  }
  if (words.empty() || words.size() > kMaxWords) std::abort();
  for (const auto& w : words)
    for (char c : w)
      if (c < 0x21 || c > 0x7e) std::abort();
  std::string line = format_command(words);
  std::vector<std::string> again;
  if (!parse_command_line(std::string_view(line).substr(0, line.size() - 1), &again, &error) || again != words)
    std::abort();
  bool ok = false;
  std::string text;
  if (!parse_answer(format_answer(true, in), &ok, &text) || !ok) std::abort();
  return 0;
}
