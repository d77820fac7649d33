// FTP directory listings: LIST output in the common Unix ("ls -l") and DOS/IIS formats and
// MLSD facts (RFC 3659 §7) parsed into entries, and rendered as an HTML page with links, as
// Squid's FTP gateway renders them. Pure code (no I/O), fuzzed
// (tests/fuzz/ftp_listing_fuzz.cpp): any bytes give entries or raw lines, never a crash.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::ftp {

struct ListingEntry {
  enum class Type { kFile, kDirectory, kLink, kOther };
  Type type = Type::kOther;
  std::string name;
  std::optional<std::uint64_t> size;
  std::string date;    // as the server wrote it ("Dec 04 19:50", "12-04-26 07:50PM", MLSD's modify)
  std::string target;  // a symbolic link's target (Unix listings)
  bool parsed = false; // false: `name` holds the whole line, shown as it is
};

// One line (without its CR LF) of LIST output. Lines that are not entries ("total 12", blank)
// give nullopt; lines in no known format give an entry with parsed = false.
std::optional<ListingEntry> parse_list_line(std::string_view line);
// One line of MLSD output ("fact=value;...; name"); "." and ".." (cdir, pdir) give nullopt.
std::optional<ListingEntry> parse_mlsd_line(std::string_view line);
// Longer names (and link targets) are dropped from a listing; a longer unparsed line is cut.
inline constexpr std::size_t kMaxNameBytes = 1024;
// A whole listing (lines split on LF, CR dropped); at most `max_entries` entries.
std::vector<ListingEntry> parse_listing(std::string_view text, bool mlsd, std::size_t max_entries = 100000);

// The HTML page for the directory `url` (an ftp:// URL of the directory ending in '/',
// without credentials): a parent link, then one line per entry with a link (directories end
// in '/'; files also get a ";type=i" binary download link), date and size. Once the page
// passes `max_bytes`, the rest of the entries are counted in one line instead.
std::string render_listing(std::string_view url, const std::vector<ListingEntry>& entries,
                           std::string_view server_name, std::size_t max_bytes = 16u << 20);

// Text for HTML (&, <, >, ", ') and for a path segment in an href (percent-encoding).
std::string html_escape(std::string_view s);
std::string href_escape(std::string_view s);

}  // namespace outpost::ftp
