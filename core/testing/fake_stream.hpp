// A Stream driven by a test: the test injects what the peer does (connect result, reads,
// EOF, errors, write progress) and inspects what the code under test did (bytes written,
// reading on or off, half-close, close). No sockets and no loop are involved, so connection
// and request code can be unit-tested without processes.
//
// Events injected by the test reach the handler synchronously, from the test's call, which
// plays the part of the event loop; the Stream calls themselves never call back, as the seam
// requires. close() marks the stream closed without freeing it: the test (or the
// FakeStreamFactory) owns the object, so it can still be inspected afterwards.
#pragma once
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/stream.hpp"

namespace outpost::testing {

class FakeStream final : public Stream {
 public:
  FakeStream() = default;
  ~FakeStream() = default;

  // ---- the peer's side, driven by the test
  // Finishes a connect() (status 0: connected, else on_error). False if none is pending.
  bool complete_connect(int status = 0);
  // One read carrying `bytes` (in a Chunk::kIoSize chunk when it fits, like a socket read).
  // Delivered only while reading, as a socket would: false (and nothing delivered) otherwise.
  bool feed(std::string_view bytes);
  bool feed_eof();  // while reading; reading stops, as after a real EOF
  // A read, write or connect failure as the socket would report it.
  void fail(int status, std::string_view what);
  // Completes the oldest `n` unfinished writes (status 0: on_write_done each; else on_error).
  // Returns how many were completed.
  std::size_t complete_writes(std::size_t n = SIZE_MAX, int status = 0);
  // Overrides queued_bytes() (back-pressure tests); nullopt returns to the bytes of
  // unfinished writes.
  void set_queued_bytes(std::optional<std::size_t> n) { queued_override_ = n; }
  void set_peer(SocketAddress a) { peer_ = a; }
  void set_local(SocketAddress a) { local_ = a; }

  // ---- what the code under test did
  std::string written() const { return written_; }  // every byte ever passed to write()
  std::string take_written();                          // written() since the last take
  std::size_t write_calls() const { return write_calls_; }
  std::size_t pending_writes() const { return pending_.size(); }
  const std::optional<SocketAddress>& connect_target() const { return connect_to_; }
  bool connecting() const { return connecting_; }
  bool write_shut() const { return shut_; }
  bool closed() const { return closed_; }

  // ---- Stream
  int connect(const SocketAddress& to) override;
  void read_start() override;
  void read_stop() override { reading_ = false; }
  bool reading() const override { return reading_; }
  int write(std::vector<Slice>&& slices) override;
  std::size_t queued_bytes() const override;
  int shutdown_write() override;
  void close() override;
  std::optional<SocketAddress> peer_address() const override { return peer_; }
  std::optional<SocketAddress> local_address() const override { return local_; }

 private:
  bool live() const { return !closed_ && !failed_; }

  struct PendingWrite {
    std::vector<Slice> slices;  // kept alive until completed, as a real write keeps them
    std::size_t bytes = 0;
  };
  std::deque<PendingWrite> pending_;
  std::string written_;
  std::size_t taken_ = 0;
  std::size_t write_calls_ = 0;
  std::optional<std::size_t> queued_override_;
  std::optional<SocketAddress> connect_to_;
  std::optional<SocketAddress> peer_;
  std::optional<SocketAddress> local_;
  bool connecting_ = false;
  bool connected_ = false;
  bool reading_ = false;
  bool ended_ = false;
  bool failed_ = false;
  bool shut_ = false;
  bool closed_ = false;
};

// Makes FakeStreams for code that creates its own streams (OriginPool::set_stream_factory)
// and keeps them alive until the factory goes, so a test can drive and inspect each one.
class FakeStreamFactory {
 public:
  StreamPtr make();
  std::function<StreamPtr()> callback() {
    return [this] { return make(); };
  }
  std::size_t count() const { return streams_.size(); }
  FakeStream& at(std::size_t i) { return *streams_.at(i); }
  FakeStream& last() { return *streams_.back(); }

 private:
  std::vector<std::unique_ptr<FakeStream>> streams_;
};

}  // namespace outpost::testing
