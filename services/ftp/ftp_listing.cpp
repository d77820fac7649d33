#include "services/ftp/ftp_listing.hpp"

#include <array>
#include <charconv>
#include <cstdio>

namespace outpost::ftp {

namespace {

std::vector<std::string_view> split_ws(std::string_view s, std::size_t max, std::string_view* rest) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (out.size() < max) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  // What follows the last token taken, after one separator.
  if (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  *rest = i < s.size() ? s.substr(i) : std::string_view();
  return out;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::optional<std::uint64_t> number(std::string_view s) {
  if (!all_digits(s) || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool is_month(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                                "jul", "aug", "sep", "oct", "nov", "dec"};
  if (s.size() != 3) return false;
  char l[3] = {static_cast<char>(s[0] | 0x20), static_cast<char>(s[1] | 0x20), static_cast<char>(s[2] | 0x20)};
  for (auto m : kMonths)
    if (m == std::string_view(l, 3)) return true;
  return false;
}

bool is_time_or_year(std::string_view s) {
  if (s.size() == 4) return all_digits(s);
  if (s.size() == 5 && s[2] == ':') return all_digits(s.substr(0, 2)) && all_digits(s.substr(3));
  if (s.size() == 4 && s[1] == ':') return all_digits(s.substr(0, 1)) && all_digits(s.substr(2));
  return false;
}

// "drwxr-xr-x 2 owner group 4096 Dec 04 19:50 name" and variants (no group, no owner, "total").
std::optional<ListingEntry> parse_unix(std::string_view line) {
  if (line.size() < 10) return std::nullopt;
  char t = line[0];
  for (std::size_t i = 1; i < 10; ++i)
    if (std::string_view("rwxsStTl-").find(line[i]) == std::string_view::npos) return std::nullopt;
  std::string_view rest;
  auto tok = split_ws(line, 9, &rest);
  // Find "Mon DD HH:MM|YYYY" with the size just before it.
  for (std::size_t m = 2; m + 2 < tok.size(); ++m) {
    if (!is_month(tok[m])) continue;
    auto day = number(tok[m + 1]);
    if (!day || *day < 1 || *day > 31 || !is_time_or_year(tok[m + 2])) continue;
    auto size = number(tok[m - 1]);
    if (!size) continue;
    // The name is what follows the date's third token in the original line.
    std::string_view after = line.substr(static_cast<std::size_t>(tok[m + 2].data() + tok[m + 2].size() - line.data()));
    if (after.empty() || (after[0] != ' ' && after[0] != '\t')) return std::nullopt;
    after.remove_prefix(1);
    if (after.empty()) return std::nullopt;
    ListingEntry e;
    e.parsed = true;
    e.type = t == 'd' ? ListingEntry::Type::kDirectory
             : t == '-' ? ListingEntry::Type::kFile
             : t == 'l' ? ListingEntry::Type::kLink
                        : ListingEntry::Type::kOther;
    e.size = size;
    e.date = std::string(tok[m]) + " " + std::string(tok[m + 1]) + " " + std::string(tok[m + 2]);
    if (e.type == ListingEntry::Type::kLink) {
      auto arrow = after.find(" -> ");
      if (arrow != std::string_view::npos) {
        e.target = std::string(after.substr(arrow + 4));
        after = after.substr(0, arrow);
      }
    }
    e.name = std::string(after);
    return e;
  }
  return std::nullopt;
}

// "12-04-26  07:50PM       <DIR>          name" / "... 12 name" (IIS, DOS).
std::optional<ListingEntry> parse_dos(std::string_view line) {
  std::string_view rest;
  auto tok = split_ws(line, 3, &rest);
  if (tok.size() < 3 || rest.empty()) return std::nullopt;
  auto d = tok[0];
  if (!(d.size() == 8 || d.size() == 10) || d[2] != '-' || d[5] != '-') return std::nullopt;
  if (!all_digits(d.substr(0, 2)) || !all_digits(d.substr(3, 2)) || !all_digits(d.substr(6))) return std::nullopt;
  auto tm = tok[1];
  if (tm.size() != 7 || tm[2] != ':' || !all_digits(tm.substr(0, 2)) || !all_digits(tm.substr(3, 2))) return std::nullopt;
  if ((tm[5] != 'A' && tm[5] != 'P') || tm[6] != 'M') return std::nullopt;
  ListingEntry e;
  e.parsed = true;
  e.date = std::string(d) + " " + std::string(tm);
  while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
  if (rest.empty()) return std::nullopt;
  if (tok[2] == "<DIR>") {
    e.type = ListingEntry::Type::kDirectory;
  } else {
    e.size = number(tok[2]);
    if (!e.size) return std::nullopt;
    e.type = ListingEntry::Type::kFile;
  }
  e.name = std::string(rest);
  return e;
}

bool bad_name(std::string_view n) {
  if (n.empty() || n == "." || n == "..") return true;
  for (char c : n)
    if (c == '/' || c == '\0') return true;
  return false;
}

}  // namespace

std::optional<ListingEntry> parse_list_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return std::nullopt;
  if (line.starts_with("total ") && all_digits(line.substr(6))) return std::nullopt;
  std::optional<ListingEntry> e;
  if (std::string_view("-dlbcps").find(line[0]) != std::string_view::npos) e = parse_unix(line);
  if (!e && line[0] >= '0' && line[0] <= '9') e = parse_dos(line);
  if (e && (e->name == "." || e->name == "..")) return std::nullopt;
  if (!e || bad_name(e->name)) {
    ListingEntry raw;
    raw.name = std::string(line);
    return raw;
  }
  return e;
}

std::optional<ListingEntry> parse_mlsd_line(std::string_view line) {
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto sp = line.find(' ');
  if (sp == std::string_view::npos) {
    if (line.empty()) return std::nullopt;
    ListingEntry raw;
    raw.name = std::string(line);
    return raw;
  }
  std::string_view facts = line.substr(0, sp), name = line.substr(sp + 1);
  ListingEntry e;
  e.parsed = true;
  e.name = std::string(name);
  while (!facts.empty()) {
    auto semi = facts.find(';');
    auto fact = facts.substr(0, semi);
    facts = semi == std::string_view::npos ? std::string_view() : facts.substr(semi + 1);
    auto eq = fact.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(fact.substr(0, eq));
    for (auto& c : key) c = static_cast<char>(c | 0x20);
    auto value = fact.substr(eq + 1);
    std::string v(value);
    for (auto& c : v) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    if (key == "type") {
      if (v == "cdir" || v == "pdir") return std::nullopt;
      e.type = v == "file" ? ListingEntry::Type::kFile
               : v == "dir" ? ListingEntry::Type::kDirectory
               : v.starts_with("os.unix=slink") || v.starts_with("os.unix=symlink") ? ListingEntry::Type::kLink
                                                                                   : ListingEntry::Type::kOther;
    } else if (key == "size") {
      e.size = number(value);
    } else if (key == "modify" && value.size() >= 14 && all_digits(value.substr(0, 14))) {
      auto m = value;
      e.date = std::string(m.substr(0, 4)) + "-" + std::string(m.substr(4, 2)) + "-" + std::string(m.substr(6, 2)) + " " +
               std::string(m.substr(8, 2)) + ":" + std::string(m.substr(10, 2));
    }
  }
  if (bad_name(e.name)) {
    if (e.name == "." || e.name == "..") return std::nullopt;
    ListingEntry raw;
    raw.name = std::string(line);
    return raw;
  }
  return e;
}

std::vector<ListingEntry> parse_listing(std::string_view text, bool mlsd, std::size_t max_entries) {
  std::vector<ListingEntry> out;
  while (!text.empty() && out.size() < max_entries) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto e = mlsd ? parse_mlsd_line(line) : parse_list_line(line);
    if (!e) continue;
    // No file system has names this long; a hostile server's would only inflate the page
    // (escaping makes a name up to 12 times larger).
    if (e->name.size() > kMaxNameBytes || e->target.size() > kMaxNameBytes) {
      if (e->parsed) continue;
      e->name.resize(kMaxNameBytes);
    }
    out.push_back(std::move(*e));
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += '?';
        else out += static_cast<char>(c);
    }
  }
  return out;
}

std::string href_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                 c == '_' || c == '~' || c == '!' || c == '$' || c == '(' || c == ')' || c == '*' || c == '+' ||
                 c == ',' || c == '=' || c == ':' || c == '@';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  // "./" keeps a name with ':' from reading as a scheme.
  if (out.find(':') != std::string::npos) out = "./" + out;
  return out;
}

std::string render_listing(std::string_view url, const std::vector<ListingEntry>& entries,
                           std::string_view server_name, std::size_t max_bytes) {
  std::string title = "FTP Directory: " + html_escape(url);
  std::string h;
  h.reserve(512 + entries.size() * 160);
  h += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title>\n";
  h += "<style>body{font-family:sans-serif}pre{font-family:monospace}</style></head>\n<body>\n<h2>" + title + "</h2>\n";
  h += "<pre>\n";
  // Parent, unless this is the server's root.
  auto path_start = url.find('/', url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3);
  if (path_start != std::string_view::npos && url.substr(path_start) != "/")
    h += "<a href=\"../\">Parent Directory</a>\n";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (h.size() > max_bytes) {
      h += "\n(" + std::to_string(entries.size() - i) + " more entries not shown: the page is limited to " +
           std::to_string(max_bytes) + " bytes)\n";
      break;
    }
    if (!e.parsed) {
      h += html_escape(e.name) + "\n";
      continue;
    }
    bool dir = e.type == ListingEntry::Type::kDirectory;
    std::string href = href_escape(e.name) + (dir ? "/" : "");
    std::string shown = html_escape(e.name) + (dir ? "/" : "");
    h += "<a href=\"" + href + "\">" + shown + "</a>";
    std::size_t width = e.name.size() + (dir ? 1 : 0);
    h += std::string(width < 40 ? 40 - width : 1, ' ');
    h += html_escape(e.date.empty() ? "-" : e.date);
    h += "  ";
    if (dir) h += "     -";
    else if (e.size) h += std::to_string(*e.size);
    else h += "     ?";
    if (e.type == ListingEntry::Type::kFile) h += "  <a href=\"" + href + ";type=i\">[download]</a>";
    if (e.type == ListingEntry::Type::kLink && !e.target.empty())
      h += " -&gt; <a href=\"" + href_escape(e.target) + "\">" + html_escape(e.target) + "</a>";
    h += "\n";
  }
  h += "</pre>\n<hr>\n<address>Generated by " + html_escape(server_name) + " (Outpost FTP gateway)</address>\n";
  h += "</body></html>\n";
  return h;
}

}  // namespace outpost::ftp
