// HTTP/1.x message parsing on llhttp in strict mode (no lenient flags): conflicting
// Content-Length / Transfer-Encoding, bad chunk sizes, obs-fold and invalid characters
// are errors, so a message is framed exactly one way (no request smuggling).
#pragma once
#include <llhttp.h>

#include <cstdint>
#include <string>

#include "core/chunk.hpp"
#include "proxy/http_headers.hpp"

namespace outpost::http {

struct MessageHead {
  // request
  std::string method;
  std::string target;
  // response
  int status = 0;
  std::string reason;
  // both
  int major = 1, minor = 1;
  HeaderList headers;
  bool keep_alive = false;     // llhttp_should_keep_alive at headers-complete
  bool chunked = false;        // Transfer-Encoding: chunked framing
  bool has_length = false;     // Content-Length present
  std::uint64_t content_length = 0;
  bool is_connect = false;
  void clear();
};

class ParserListener {
 public:
  virtual ~ParserListener() = default;
  // Return 0 to continue, 1 to skip the body (response to HEAD), -1 to fail,
  // HPE_PAUSED to stop after the head.
  virtual int on_message_head(MessageHead& head) = 0;
  virtual int on_message_body(Slice body) = 0;
  // Return 0 to continue parsing, HPE_PAUSED to stop after this message.
  virtual int on_message_end() = 0;
};

struct ParseResult {
  enum Kind { kOk, kPaused, kUpgrade, kError } kind = kOk;
  std::size_t consumed = 0;  // bytes of the input used (all of it unless paused/upgrade/error)
  int status = 0;            // for kError: the HTTP status to answer (400, 414, 431, 505, 502)
  std::string reason;
};

class HttpParser {
 public:
  enum class Type { kRequest, kResponse };
  struct Limits {
    std::size_t max_target = 65536;
    std::size_t max_headers = 65536;
  };

  HttpParser(Type type, Limits limits, ParserListener* listener);
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Feeds bytes that live in `chunk`; body slices handed to the listener reference it.
  ParseResult feed(const ChunkRef& chunk, const char* data, std::size_t len);
  // End of input (for close-delimited responses). Returns kError if a message was cut short.
  ParseResult finish();
  // Continues after kPaused.
  void resume();
  // Parser state back to "expecting a new message" (for a reused connection).
  void reset();
  bool message_in_progress() const { return in_message_; }
  bool head_done() const { return head_done_; }
  const MessageHead& head() const { return head_; }

 private:
  static int cb_message_begin(llhttp_t*);
  static int cb_url(llhttp_t*, const char*, std::size_t);
  static int cb_status(llhttp_t*, const char*, std::size_t);
  static int cb_method(llhttp_t*, const char*, std::size_t);
  static int cb_header_field(llhttp_t*, const char*, std::size_t);
  static int cb_header_value(llhttp_t*, const char*, std::size_t);
  static int cb_header_value_complete(llhttp_t*);
  static int cb_headers_complete(llhttp_t*);
  static int cb_body(llhttp_t*, const char*, std::size_t);
  static int cb_message_complete(llhttp_t*);
  ParseResult error_result(llhttp_errno_t err, const char* at);

  Type type_;
  Limits limits_;
  ParserListener* listener_;
  llhttp_t parser_;
  llhttp_settings_t settings_;
  MessageHead head_;
  std::string field_, value_;
  std::size_t header_bytes_ = 0;
  int limit_status_ = 0;  // 414 / 431 when a limit stopped the parse
  bool in_message_ = false;
  bool head_done_ = false;
  const ChunkRef* cur_chunk_ = nullptr;
  // obs-fold detection (see cb_header_value)
  bool value_started_ = false;
  const char* value_end_ = nullptr;
  const char* feed_begin_ = nullptr;
  const char* feed_end_prev_ = nullptr;
};

}  // namespace outpost::http
