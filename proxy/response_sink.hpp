// The seam between a client connection and the requests on it. A connection (HTTP/1 today,
// HTTP/2 later: one request per stream) creates a ProxyRequest for each request it parses
// and gives it a ResponseSink; the request answers through the sink only. The sink owns the
// wire format: status line, Connection, Transfer-Encoding and chunked framing are written
// by the connection (proxy/http1_writer), never by request code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/chunk.hpp"
#include "core/stream.hpp"
#include "proxy/http1_writer.hpp"

namespace outpost {

// How the body after a response head is delimited.
enum class BodyFraming {
  kNone,     // no body follows (HEAD, 204, 304, local answers sent whole)
  kLength,   // the head carries Content-Length; exactly that many bytes follow
  kUnknown,  // length unknown: the sink frames it (chunked to HTTP/1.1, close-delimited to 1.0)
  kTunnel,   // a 2xx to CONNECT: no framing fields; the connection becomes a tunnel
};

class ResponseSink {
 public:
  // A final response head. `transfer_codings`: codings the body still carries (it is sent
  // with "Transfer-Encoding: <codings>, chunked"; only with kUnknown, to HTTP/1.1). The head
  // is written before this returns: the caller keeps it (and may reuse its buffers).
  virtual void start(const http::ResponseHead& head, BodyFraming framing, std::string_view transfer_codings = {}) = 0;
  // An interim (1xx) response; dropped for clients that cannot receive one (HTTP/1.0).
  virtual void interim(http::ResponseHead head) = 0;
  // Body bytes of the response started; the sink adds any framing.
  virtual void send(std::vector<Slice> body) = 0;
  virtual void send(Slice body) = 0;  // the same for one slice (no list to allocate)
  // The response is complete (anything corked goes out now).
  virtual void end() = 0;
  // Whether start() has been called (an error can still be answered before).
  virtual bool started() const = 0;
  // Cuts the connection (a response that cannot be completed). The request is told through
  // ProxyRequest::on_client_gone() before this returns.
  virtual void abort() = 0;
  // Output produced while corked goes out in one write at uncork() or end() (one origin
  // read: one client write; a stored or local response: head and body in one write).
  virtual void cork() = 0;
  virtual void uncork() = 0;
  // Bytes queued towards the client above the high-water mark: stop producing until
  // ProxyRequest::on_sink_drained().
  virtual bool congested() const = 0;
  // The connection closes after this response (error answers that leave the request's
  // framing unknown, HTTP/1.0 without keep-alive, shutdown).
  virtual void close_after() = 0;
  // Whether the client can take an interim response or chunked framing (HTTP/1.1+).
  virtual bool client_http11() const = 0;
  // Request body flow: stop reading the client while the origin is slow, and start again.
  virtual void pause_request_body(bool paused) = 0;
  // The client's stream, handed over after a kTunnel start, with the bytes that arrived
  // after the CONNECT head and whether the client already half-closed. The connection does
  // nothing more with it.
  virtual StreamPtr take_stream(std::vector<Slice>* early_bytes, bool* eof_seen) = 0;
  // What has been written for this response (for the access log and metrics).
  virtual std::uint64_t bytes_sent() const = 0;
  virtual std::uint64_t first_byte_ms() const = 0;  // loop time of the first byte; 0: none

 protected:
  ~ResponseSink() = default;
};

}  // namespace outpost
