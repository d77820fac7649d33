// The FTP gateway's listing parser and page (services/ftp/ftp_listing); the gateway itself
// is tested against vsftpd and hostile servers in tests/integration/test_ftp.py.
#include <gtest/gtest.h>

#include "services/ftp/ftp_listing.hpp"

using namespace outpost::ftp;
using Type = ListingEntry::Type;

TEST(FtpListing, UnixLines) {
  auto e = parse_list_line("-rw-r--r--    1 0        0              15 Dec 04 19:50 hello world.txt");
  ASSERT_TRUE(e && e->parsed);
  EXPECT_EQ(e->type, Type::kFile);
  EXPECT_EQ(e->name, "hello world.txt");
  EXPECT_EQ(*e->size, 15u);
  EXPECT_EQ(e->date, "Dec 04 19:50");
  e = parse_list_line("drwxr-xr-x 2 ftp ftp 4096 Jan  1  2020 pub\r");
  ASSERT_TRUE(e && e->parsed);
  EXPECT_EQ(e->type, Type::kDirectory);
  EXPECT_EQ(e->name, "pub");
  e = parse_list_line("lrwxrwxrwx 1 owner 9 Mar 3 12:00 latest -> v1.2/file");  // no group
  ASSERT_TRUE(e && e->parsed);
  EXPECT_EQ(e->type, Type::kLink);
  EXPECT_EQ(e->name, "latest");
  EXPECT_EQ(e->target, "v1.2/file");
  EXPECT_FALSE(parse_list_line("total 24"));
  EXPECT_FALSE(parse_list_line(""));
  EXPECT_FALSE(parse_list_line("drwxr-xr-x 2 0 0 4096 Dec 04 19:50 .."));
}

TEST(FtpListing, DosLines) {
  auto e = parse_list_line("12-04-26  07:50PM       <DIR>          Program Files");
  ASSERT_TRUE(e && e->parsed);
  EXPECT_EQ(e->type, Type::kDirectory);
  EXPECT_EQ(e->name, "Program Files");
  e = parse_list_line("12-04-2026  07:51AM                 1234 readme.txt");
  ASSERT_TRUE(e && e->parsed);
  EXPECT_EQ(*e->size, 1234u);
  EXPECT_EQ(e->name, "readme.txt");
}

TEST(FtpListing, MlsdFacts) {
  auto e = parse_mlsd_line("type=file;size=15;modify=20261204195000; hello.txt");
  ASSERT_TRUE(e && e->parsed);
  EXPECT_EQ(e->type, Type::kFile);
  EXPECT_EQ(*e->size, 15u);
  EXPECT_EQ(e->date, "2026-12-04 19:50");
  EXPECT_FALSE(parse_mlsd_line("type=cdir; ."));
  EXPECT_EQ(parse_mlsd_line("Type=DIR;modify=20200101000000; sub")->type, Type::kDirectory);
}

TEST(FtpListing, UnknownAndHostileLinesStayText) {
  auto e = parse_list_line("this is not a listing");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->parsed);
  e = parse_list_line("-rw-r--r-- 1 0 0 15 Dec 04 19:50 ../../etc/passwd");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->parsed);  // a name with '/' is no entry of this directory
  std::string page = render_listing("ftp://h/d/", parse_listing("-rw-r--r-- 1 0 0 1 Dec 04 19:50 <script>x\n", false),
                                    "outpost");
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_NE(page.find("href=\"%3Cscript%3Ex\""), std::string::npos);
}

TEST(FtpListing, PageLinks) {
  auto entries = parse_listing(
      "drwxr-xr-x 2 0 0 4096 Dec 04 19:50 sub dir\r\n-rw-r--r-- 1 0 0 15 Dec 04 19:50 a&b.txt\r\n", false);
  ASSERT_EQ(entries.size(), 2u);
  std::string page = render_listing("ftp://h/d/", entries, "outpost");
  EXPECT_NE(page.find("<a href=\"sub%20dir/\">sub dir/</a>"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"a%26b.txt\">a&amp;b.txt</a>"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"a%26b.txt;type=i\">[download]</a>"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"../\">Parent Directory</a>"), std::string::npos);
  EXPECT_EQ(render_listing("ftp://h/", {}, "o").find("Parent Directory"), std::string::npos);
}

TEST(FtpListing, HostileNamesCannotInflateThePage) {
  // A name of 2,000 '"' (escapes to 6 bytes each, 3 in hrefs) is no entry; a short one stays.
  std::string listing = "type=file;size=1; " + std::string(2000, '"') + "\r\ntype=file;size=1; ok.txt\r\n";
  auto entries = parse_listing(listing, true);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "ok.txt");
  // An unparsed line longer than the limit is cut to it.
  auto raw = parse_listing(std::string(5000, 'x') + "\n", false);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].name.size(), kMaxNameBytes);
  // The page stops growing past its budget and says how many entries it left out.
  std::vector<ListingEntry> many(1000);
  for (std::size_t i = 0; i < many.size(); ++i) {
    many[i].type = ListingEntry::Type::kFile;
    many[i].parsed = true;
    many[i].name = std::string(1000, '"') + std::to_string(i);
  }
  std::string page = render_listing("ftp://h/d/", many, "outpost", 64 * 1024);
  EXPECT_LT(page.size(), 64u * 1024 + 16 * 1024);
  EXPECT_NE(page.find("more entries not shown"), std::string::npos);
  EXPECT_NE(page.find("</html>"), std::string::npos);
}
