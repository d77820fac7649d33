// HTTP/1.x message parsing on llhttp in strict mode (no lenient flags): conflicting
// Content-Length / Transfer-Encoding, bad chunk sizes, obs-fold and invalid characters
// are errors, so a message is framed exactly one way (no request smuggling).
//
// llhttp 8.1 (Debian's build, its "loose" mode) still lets some framing through that a
// proxy must not accept, so HttpParser checks the raw bytes itself where llhttp cannot be
// told (see DESIGN.md, proxy/). llhttp reads a response's status line as it arrives and a
// request line once it is complete (an extension method given to llhttp as a method it
// knows, and named again in the head: RFC 9110 §9.1 allows any token); the header
// lines are split into fields here (name a token, then ':', value without its OWS), and
// llhttp is then given only the lines that frame the message (Content-Length,
// Transfer-Encoding, Connection, Proxy-Connection, Upgrade: the fields it acts on), as
// received, and the empty line: llhttp decides framing, keep-alive and upgrade exactly as
// if it had read the whole head, at a fraction of the cost.
//   - the header section: every line ends in CRLF (llhttp takes any byte after a CR, and a
//     bare LF), no obs-fold line (llhttp folds silently), no empty field name, field names
//     are tokens; checked on the bytes before llhttp sees them;
//   - Transfer-Encoding: a list of known codings with chunked once and last (required in
//     requests), checked before on_message_head so nothing of a rejected message is passed on;
//   - chunked bodies are decoded by ChunkedDecoder (proxy/http_chunked.hpp), not llhttp.
#pragma once
#include <llhttp.h>

#include <cstdint>
#include <string>

#include "core/chunk.hpp"
#include "proxy/http_chunked.hpp"
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
  bool chunked = false;        // Transfer-Encoding ends in chunked: chunked framing
  // The transfer codings other than the final chunked, as sent: each list element of the
  // Transfer-Encoding field(s) (parameters included) joined with ", ", e.g. "gzip" for
  // "gzip, chunked"; empty without Transfer-Encoding or for plain "chunked". When not
  // empty the body handed to on_message_body is still encoded with these codings (only
  // the chunked framing is removed): a forwarder must send "Transfer-Encoding:
  // <transfer_codings>, chunked" on, and a cache must not store the body as the
  // representation. A response with codings but no final chunked is close-delimited.
  std::string transfer_codings;
  bool has_length = false;     // Content-Length present
  std::uint64_t content_length = 0;
  bool is_connect = false;
  // llhttp's reading of an upgrade: a request with Upgrade and "Connection: upgrade", a 101
  // response with both, or a CONNECT. The bytes after such a message are not HTTP.
  bool upgrade = false;
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
    std::size_t max_headers = 65536;  // the header section, and the trailer section
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
  // Between messages: gives back the head's buffers (kept meanwhile for the next message).
  void release_memory();
  bool message_in_progress() const { return in_message_; }
  bool head_done() const { return head_done_; }
  const MessageHead& head() const { return head_; }

 private:
  // Who reads the next bytes.
  enum class Phase {
    kHead,     // a message head (or the empty lines before it): line check, then llhttp
    kBody,     // llhttp: Content-Length, close-delimited or no body
    kChunked,  // ChunkedDecoder; llhttp waits, paused after the head
    kRaw,      // after a message llhttp ends with an upgrade or a close: all to llhttp
  };
  // Line-ending state of the header section check (scan_head).
  enum class Line { kPreamble, kPreambleCr, kText, kCr, kStart, kEndCr };
  // Where scan_head stopped: input used up, end of the start line, end of the header
  // section, or a bad byte.
  enum class Scan { kMore, kLineEnd, kHeadEnd, kError };

  static const llhttp_settings_t& settings();
  static int cb_message_begin(llhttp_t*);
  static int cb_url(llhttp_t*, const char*, std::size_t);
  static int cb_status(llhttp_t*, const char*, std::size_t);
  static int cb_method(llhttp_t*, const char*, std::size_t);
  static int cb_headers_complete(llhttp_t*);
  static int cb_body(llhttp_t*, const char*, std::size_t);
  static int cb_message_complete(llhttp_t*);

  // Checks the head's line endings from `p`; returns where llhttp may read up to: the end
  // of the header section, `end`, or the offending byte (error recorded by fail()).
  const char* scan_head(const char* p, const char* end, Scan& scan);
  // Runs llhttp over [p, stop); advances p. kOk also when llhttp paused for us (then
  // `drive` is set if llhttp should run again even without input).
  ParseResult execute(const char*& p, const char* stop, bool& drive);
  // The header lines (each ending in CRLF, then the final CRLF; checked by scan_head) into
  // head_.headers, and the framing lines into `framing`; false (with error_) if bad.
  bool parse_fields(std::string_view lines, std::string& framing);
  // A complete request line (after any empty lines): to llhttp, an extension method as
  // kStandIn (llhttp 8.1 knows a fixed list of methods; RFC 9110 §9.1 allows any token)
  // and then back in head_.method.
  ParseResult start_line(std::string_view line, bool& drive);
  // Runs the chunked decoder from p; advances p.
  ParseResult decode_chunked(const char*& p, const char* end);
  // Checks Transfer-Encoding and fills head_.transfer_codings; false (with error_) if bad.
  bool check_transfer_encoding(const llhttp_t* p);
  void enter_head_phase();
  // Records a protocol error found by our own checks; returns -1 for llhttp.
  int fail(int status, const char* reason);
  int bad_message_status() const { return type_ == Type::kRequest ? 400 : 502; }
  ParseResult error_result(llhttp_errno_t err);
  ParseResult our_error();

  Type type_;
  Limits limits_;
  ParserListener* listener_;
  llhttp_t parser_;
  MessageHead head_;
  bool in_fields_ = false;  // the start line is done: header lines follow
  bool te_seen_ = false;    // the head has a Transfer-Encoding field
  // Header lines that arrived in earlier reads (a head split across reads; usually empty,
  // and its memory given back after use).
  std::string fields_;
  std::string framing_;  // the lines llhttp is given for the head being ended
  // A request line that arrived in pieces (usually empty), bounded by max_target plus
  // kMaxLineExtra.
  std::string request_line_;
  static constexpr std::size_t kMaxLineExtra = 1024;
  int error_status_ = 0;              // set by our own checks (fail())
  const char* error_reason_ = nullptr;
  bool in_message_ = false;
  bool head_done_ = false;
  bool paused_for_us_ = false;        // the pending HPE_PAUSED is ours, not the listener's
  Phase phase_ = Phase::kHead;
  Line line_ = Line::kPreamble;
  ChunkedDecoder chunked_;
  const ChunkRef* cur_chunk_ = nullptr;
};

}  // namespace outpost::http
