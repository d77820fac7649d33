// One request on a stream, one answer, then the end: the connection shape of the admin
// endpoint and the control channel (over a Unix socket, or TLS over TCP — any Stream).
//
//   read (bounded and timed) → the subclass decides it has the request → answer(bytes) →
//   once written, our side is shut down (FIN, or close_notify then FIN over TLS) → linger:
//   the client's leftovers are read and dropped (at most kMaxDiscard bytes) until it closes
//   or kLingerMs passes (so closing never resets the connection under an answer it has not
//   read yet) → close.
//
// The subclass owns the request's syntax (on_input), what a timeout means before the answer
// (on_deadline) and what a failing stream means (on_stream_error: a refused TLS handshake).
// Everything runs on the stream's loop thread. The object frees itself: close() (or the end
// of lingering) closes the stream and a timer; on_closed() is the last call, then `delete
// this`. Work that answers later (a gathered scrape, a command on another worker) holds
// alive(), which turns false at close(), and must not touch the object afterwards.
#pragma once
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/stream.hpp"

namespace outpost {

class OneShotConnection : private StreamHandler {
 public:
  static constexpr std::uint64_t kLingerMs = 1000;
  static constexpr std::size_t kMaxDiscard = 64 * 1024;

  OneShotConnection(const OneShotConnection&) = delete;
  OneShotConnection& operator=(const OneShotConnection&) = delete;

  // Starts reading and the deadline (`timeout_ms` from now).
  void start();
  // The answer, once (later calls do nothing): written after everything read so far, then
  // the shut down and lingering above. The deadline restarts: the answer must be written
  // within the timeout.
  void answer(std::string bytes);
  // Reading the request is over (the subclass has it): later bytes are dropped, at most
  // kMaxDiscard of them before the connection is cut; a half-close meanwhile waits for the
  // answer.
  void stop_input() { input_done_ = true; }
  // Ends the connection now, without an answer. Idempotent.
  void close();
  bool answered() const { return answered_; }
  bool closing() const { return closing_; }
  // False from close() on (for answers that arrive late).
  const std::shared_ptr<bool>& alive() const { return alive_; }
  // The deadline again, `ms` from now.
  void restart_deadline(std::uint64_t ms);
  Stream* stream() const { return stream_.get(); }

 protected:
  OneShotConnection(uv_loop_t* loop, StreamPtr stream, std::uint64_t timeout_ms);
  virtual ~OneShotConnection() = default;

  // Bytes read before stop_input() and answer(): `input` holds everything read so far (the
  // subclass may consume it); `eof`: the client half-closed, nothing more comes. Decide:
  // stop_input() and answer() now or later, close(), or return to wait for more.
  virtual void on_input(std::string& input, bool eof) = 0;
  // The deadline passed before the answer was given: answer() (an error) or close().
  virtual void on_deadline() = 0;
  // The stream failed before the answer (a reset, a TLS handshake refused): `what` says
  // how. The connection is closed after this returns.
  virtual void on_stream_error(int status, std::string_view what) {
    (void)status;
    (void)what;
  }
  // The last call, just before the object deletes itself.
  virtual void on_closed() {}

 private:
  void on_read(Slice data) override;
  void on_eof() override;
  void on_error(int status, std::string_view what) override;
  void on_write_done() override;
  void written();
  void arm(std::uint64_t ms);
  void fired();

  StreamPtr stream_;
  uv_timer_t timer_;
  std::uint64_t timeout_ms_;
  std::string input_;
  std::size_t discarded_ = 0;
  bool input_done_ = false;
  bool eof_ = false;
  bool answered_ = false;
  bool lingering_ = false;
  bool closing_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace outpost
