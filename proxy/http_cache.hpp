// The HTTP cache on top of the shared store (namespace "http"): lookups with Vary
// variants, storing, invalidation, and the registry that collapses concurrent misses for
// one URL into one origin request. Shared by all workers (thread-safe); results of
// lookups always arrive on the calling worker's loop thread.
#pragma once
#include <functional>
#include <memory>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/store.hpp"
#include "core/config.hpp"
#include "core/worker_pool.hpp"
#include "proxy/cache_policy.hpp"
#include "proxy/http1_writer.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/range_parts.hpp"
#include <list>

namespace outpost::http {

struct CacheLookup {
  cache::Handle handle;                // a committed object, or empty
  cache::Reader reader;                // else: an object still being written (collapsed forwarding)
  // Parsed metadata of handle or reader; shared with this thread's parse memo
  // (parse_stored_response), so a hit does not parse the same bytes again.
  std::shared_ptr<const StoredResponse> meta;
  std::string store_key;               // where the object for this request lives / would live
  bool from_disk = false;
  bool swap_fail = false;              // indexed, but the disk record failed its check on read
};

// The cache policy [http_cache] describes (refresh patterns compiled; invalid ones were
// refused by the config check).
// `memory_size`: the store's memory budget ([cache] memory_size), of which stored parts get
// http_cache.range_parts_percent.
CachePolicyConfig make_cache_policy(const Config::HttpCache& cfg, std::uint64_t memory_size);

class HttpCache {
 public:
  explicit HttpCache(cache::Store& store);
  cache::Store& store() { return store_; }

  // Finds what is stored for `key` that matches the request's Vary-selected headers.
  // `done` runs on `worker`'s loop (inline for memory hits and misses).
  void lookup(Worker& worker, const std::string& key, const HeaderList& req_headers,
              std::function<void(CacheLookup)> done);
  // The same answered at once when memory has it (a hit, an object being written, a miss):
  // kDone with *out filled. Otherwise a disk read is needed: kReadPrimary → lookup();
  // kReadVariant → lookup_variant() with out->store_key. Nothing is counted twice.
  enum class Now : std::uint8_t { kDone, kReadPrimary, kReadVariant };
  Now lookup_now(const std::string& key, const HeaderList& req_headers, CacheLookup* out);
  void lookup_variant(Worker& worker, const std::string& variant_key, const HeaderList& req_headers, bool from_disk,
                      std::function<void(CacheLookup)> done);

  // Starts storing a response (metadata complete, Vary recorded). Writes a Vary marker under
  // the primary key when the response varies; the marker also lists the variants stored
  // under it (a hash each), and a new one beyond `max_variants` (0: no limit) is refused.
  // Returns an empty writer if the store refuses, with the reason in `why`.
  cache::Writer begin_store(const std::string& key, const StoredResponse& meta, std::uint64_t expected_size,
                            std::size_t max_variants = 0, std::string* why = nullptr);

  // A 304 refreshed a stored response: replace its metadata (§4.3.4), keep the body.
  // `revalidated` is the object that was revalidated: if the key has been replaced since,
  // the old 304's headers are not attached to the newer body.
  void refresh(const std::string& store_key, const StoredResponse& meta, const cache::Handle& revalidated);

  // Whether the store would likely keep an object stored under `key` until it is asked for
  // again (cache::Store::would_keep): a conditional miss is fetched whole only then.
  bool would_keep(const std::string& key) { return store_.would_keep(cache::Namespace::kHttp, key); }
  // A conditional miss relayed as it came: its request still counts towards keeping the key.
  void note_request(const std::string& key) { store_.note_request(cache::Namespace::kHttp, key); }

  // §4.4 and PURGE: removes the object (and its Vary marker) for a primary key.
  bool invalidate(const std::string& key);

  // Collapsed forwarding. The first request for `key` leads (kLead) and must call settle()
  // once it knows whether a writer exists; later ones wait (kFollow): `ready` runs on their
  // worker's loop after settle() (true: an object is being written, look it up again).
  // kPass: a recent response for `key` could not be stored, so nobody waits for anybody —
  // Varnish's hit-for-miss. Without it every request for an uncacheable URL would queue
  // behind the one in flight and reach the origin a round trip late, one batch at a time.
  enum class Collapse : std::uint8_t { kLead, kFollow, kPass };
  // `make_ready()` gives the callback, and is called only for a follower (no callback is
  // built for the usual lead or pass).
  template <class MakeReady>
  Collapse lead_or_follow(const std::string& key, Worker& worker, MakeReady&& make_ready) {
    std::lock_guard lk(mu_);
    Collapse c = collapse_locked(key);
    if (c == Collapse::kFollow) inflight_[key].push_back({&worker, std::function<void(bool)>(make_ready())});
    return c;
  }
  void settle(const std::string& key, bool writer_started);
  // What a response head for `key` taught us: not storable marks the key kPass for
  // kPassMemory; storable (a writer started) clears the mark.
  void learned(const std::string& key, bool storable);
  static constexpr std::int64_t kPassMemory = 120;  // seconds; Varnish's builtin hit-for-miss TTL
  static constexpr std::size_t kPassMarksMax = 65536;

  static std::int64_t expiry_of(const StoredResponse& m);

  // §3: the metadata to store for this response under `policy` (the settings snapshot's:
  // refresh patterns and heuristics change on reload), or nullopt (with the reason) if it
  // must not be stored. Set-Cookie is stripped from what is kept.
  std::optional<StoredResponse> storable_meta(const CachePolicyConfig& policy, const HeaderList& req_headers,
                                              const CacheControl& req_cc,
                                              const MessageHead& resp, const std::string& url,
                                              std::int64_t request_time, std::int64_t now, std::string* why) const;
  // §4.3.4: a stored response updated from a 304's header fields.
  StoredResponse merge_not_modified(const CachePolicyConfig& policy, const StoredResponse& stored,
                                    const HeaderList& resp_headers,
                                    std::int64_t request_time, std::int64_t now, const std::string& url) const;
  // For operators (`outpost ctl`): what is stored for a primary key — the response, or for a
  // response that varies each variant — from memory or disk, handed to `done` on `worker`'s
  // loop; and the removal of a key with its variants, or (`prefix`) of every key that starts
  // with it. Both walk the whole namespace's index: never on the request path.
  struct StoredEntry {
    std::string store_key;
    std::optional<StoredResponse> meta;  // nullopt: unreadable metadata
    std::uint64_t body_size = 0;
    bool from_disk = false;
    std::string parts;  // a parts object: its stored ranges, "first-last,... of complete"
  };
  void inspect(Worker& worker, const std::string& key, std::function<void(std::vector<StoredEntry>)> done);
  std::size_t purge(const std::string& key, bool prefix);

  // Partial content: the parts of one representation (PartsMeta) live in one store object
  // beside the primary key, under parts_key(key) (a key no URL or variant can have).
  static std::string parts_key(const std::string& key);
  // The parts object of `key` (memory or disk), its metadata parsed (nullptr: none, or
  // unreadable — then dropped). `done` runs on `worker`'s loop.
  using PartsDone = std::function<void(cache::Handle, std::shared_ptr<const PartsMeta>, bool from_disk)>;
  void lookup_parts(Worker& worker, const std::string& key, PartsDone done);
  // A writer replacing the parts object of `key` with `meta` (the caller writes the bytes of
  // meta.parts in order). All parts objects together stay within `memory_cap` bytes: the
  // oldest others are dropped to make room; empty writer if this one alone exceeds it.
  cache::Writer begin_parts(const std::string& key, const PartsMeta& meta, std::uint64_t memory_cap);
  void drop_parts(const std::string& key);
  std::uint64_t parts_bytes() const;  // as counted against the cap (tests, metrics)

  // stale-while-revalidate: at most one background refresh per key at a time.
  bool begin_background_refresh(const std::string& key);
  void end_background_refresh(const std::string& key);

 private:
  std::string variant_key(const std::string& key, const std::vector<std::string>& names, const HeaderList& req) const;
  // Memory or disk lookup of one store key; `done(handle, from_disk, swap_fail)` runs on
  // `worker`'s loop (inline for memory hits and misses).
  using FetchDone = std::function<void(cache::Handle, bool from_disk, bool swap_fail)>;
  void fetch(Worker& worker, const std::string& key, FetchDone done);
  void finish_lookup(Worker& worker, const std::string& key, const HeaderList& req_headers, cache::Handle h,
                     bool from_disk, bool swap_fail, std::function<void(CacheLookup)> done);
  CacheLookup primary_result(const std::string& key, const HeaderList& req_headers, cache::Handle h, bool from_disk,
                             bool swap_fail);
  Collapse collapse_locked(const std::string& key);  // registers a leader
  CacheLookup variant_result(const std::string& vk, const HeaderList& req_headers, cache::Handle v, bool from_disk,
                             bool swap_fail);
  std::string variant_key_of(const std::string& key, const cache::Handle& marker, const HeaderList& req_headers) const;

  cache::Store& store_;
  struct Waiter {
    Worker* worker;
    std::function<void(bool)> ready;
  };
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<Waiter>> inflight_;
  std::unordered_map<std::string, bool> refreshing_;
  std::unordered_map<std::string, std::int64_t> pass_until_;  // key -> steady seconds
  std::atomic<std::size_t> pass_count_{0};  // pass_until_.size(), read without mu_
  // Parts objects written, oldest first, with the bytes each was counted for (objects the
  // store evicted meanwhile stay counted until they are written again or pushed out).
  mutable std::mutex parts_mu_;
  std::list<std::string> parts_order_;
  std::unordered_map<std::string, std::pair<std::uint64_t, std::list<std::string>::iterator>> parts_;
  std::uint64_t parts_total_ = 0;
  std::atomic<std::size_t> parts_live_{0};  // parts_.size(), read without parts_mu_
};

// A stored response's head as sent from the cache: the stored fields (or `override_headers`),
// then Age, Via (when `via`: proxy.via), X-Cache and Cache-Status; the client connection
// adds the framing. `status` and `content_range` (the field's value) give 304, 206 and 416
// variants.
ResponseHead stored_response_head(const StoredResponse& m, int status, std::int64_t age, const std::string& name,
                                  bool via, const std::string& cache_status, bool hit,
                                  const HeaderList* override_headers = nullptr, std::string_view content_range = {});
// The same into `head`, whose strings are reused (a request keeps one head for answer after
// answer: no allocation on a warm hit). `content_length`: kKeepLength sends the stored
// Content-Length (if any), kDropLength none, any other value replaces it.
inline constexpr std::int64_t kKeepLength = -2, kDropLength = -1;
void fill_stored_response_head(ResponseHead& head, const StoredResponse& m, int status, std::int64_t age,
                               const std::string& name, bool via, std::string_view cache_status, bool hit,
                               const HeaderList* override_headers = nullptr, std::string_view content_range = {},
                               std::int64_t content_length = kKeepLength);

// StoredResponse::parse through a small per-thread memo keyed by the bytes themselves (a
// stored object's metadata is immutable; the same bytes always parse the same way): hits on
// an object parse its metadata once per thread, not once per hit. nullptr: unreadable.
std::shared_ptr<const StoredResponse> parse_stored_response(std::string_view bytes);

}  // namespace outpost::http
