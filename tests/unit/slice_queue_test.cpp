#include <gtest/gtest.h>

#include <string>

#include "proxy/http1_connection.hpp"

using outpost::Slice;
using outpost::SliceQueue;

namespace {
const char kText[] = "0123456789";
Slice slice(int i) { return Slice{outpost::ChunkRef(), kText + i, 1}; }
int id(const Slice& s) { return static_cast<int>(s.data - kText); }
}  // namespace

TEST(SliceQueue, KeepsOrderAcrossPushFront) {
  SliceQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.slots(), 0u);  // nothing allocated before the first read
  for (int i = 0; i < 4; ++i) q.push_back(slice(i));
  Slice first = q.front();
  q.pop_front();
  EXPECT_EQ(id(first), 0);
  q.push_front(slice(9));  // the unparsed rest of what was just taken goes back first
  std::string order;
  for (auto& s : q) order += std::to_string(id(s));
  EXPECT_EQ(order, "9123");
  q.clear();
  EXPECT_TRUE(q.empty());
  q.push_front(slice(5));  // into an empty queue
  EXPECT_EQ(id(q.front()), 5);
}

TEST(SliceQueue, NeverEmptyQueueDoesNotGrowWithEveryRead) {
  // A pipelining client: every read adds a slice while one partial request stays queued.
  SliceQueue q;
  q.push_back(slice(0));
  for (int i = 0; i < 10000; ++i) {
    q.push_back(slice((i + 1) % 10));
    EXPECT_EQ(id(q.front()), i % 10);
    q.pop_front();
    ASSERT_FALSE(q.empty());
  }
  EXPECT_EQ(id(q.front()), 10000 % 10);
  EXPECT_LE(q.slots(), 200u);
}
