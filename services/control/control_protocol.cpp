#include "services/control/control_protocol.hpp"

namespace outpost::control {

bool parse_command_line(std::string_view line, std::vector<std::string>* words, std::string* error) {
  words->clear();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kMaxCommandLine) {
    *error = "command line longer than " + std::to_string(kMaxCommandLine) + " bytes";
    return false;
  }
  std::size_t i = 0;
  while (i < line.size()) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == ' ' || c == '\t') {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < line.size()) {
      c = static_cast<unsigned char>(line[i]);
      if (c == ' ' || c == '\t') break;
      if (c < 0x21 || c > 0x7e) {
        *error = "byte " + std::to_string(c) + " at offset " + std::to_string(i) +
                 " in the command (printable ASCII only)";
        words->clear();
        return false;
      }
      ++i;
    }
    if (words->size() == kMaxWords) {
      *error = "more than " + std::to_string(kMaxWords) + " words in the command";
      words->clear();
      return false;
    }
    words->emplace_back(line.substr(start, i - start));
  }
  if (words->empty()) {
    *error = "empty command";
    return false;
  }
  return true;
}

std::string format_command(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  out += '\n';
  return out;
}

std::string format_answer(bool ok, std::string_view text) {
  std::string out = ok ? "ok\n" : "error\n";
  out += text;
  if (!text.empty() && text.back() != '\n') out += '\n';
  return out;
}

bool parse_answer(std::string_view data, bool* ok, std::string* text) {
  for (std::string_view status : {"ok\n", "error\n"}) {
    if (data.substr(0, status.size()) == status) {
      *ok = status == "ok\n";
      *text = std::string(data.substr(status.size()));
      return true;
    }
  }
  return false;
}

}  // namespace outpost::control
