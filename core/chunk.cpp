#include "core/chunk.hpp"

namespace outpost {
namespace {
constexpr std::size_t kMaxPooled = 256;  // 16 MiB of I/O buffers per thread at most
}  // namespace

struct ChunkFreeList {
  Chunk* head = nullptr;
  std::size_t count = 0;
  ~ChunkFreeList();
};
static thread_local ChunkFreeList free_list;

Chunk* Chunk::pool_take() noexcept {
  Chunk* c = free_list.head;
  if (!c) return nullptr;
  free_list.head = c->next_free_;
  --free_list.count;
  c->next_free_ = nullptr;
  c->size_ = 0;
  c->refs_.store(1, std::memory_order_relaxed);
  return c;
}

bool Chunk::pool_give(Chunk* c) noexcept {
  if (free_list.count >= kMaxPooled) return false;
  c->next_free_ = free_list.head;
  free_list.head = c;
  ++free_list.count;
  return true;
}

ChunkFreeList::~ChunkFreeList() {
  while (head) {
    Chunk* c = head;
    head = c->next_free_;
    c->~Chunk();
    std::free(c);
  }
}

}  // namespace outpost
