#include "proxy/http_parser.hpp"

#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "proxy/http_chars.hpp"

namespace outpost::http {

namespace {
// RFC 9112 §7: the transfer codings a recipient knows (x-gzip and x-compress are the
// registered aliases). Anything else gets a 400 / 502: the message could not be framed
// or decoded as sent.
bool known_transfer_coding(std::string_view name) {
  for (std::string_view known : {"chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress"})
    if (iequals(name, known)) return true;
  return false;
}

// Splits a Transfer-Encoding value into its elements (RFC 9112 §6.1, §7.3):
//   #( token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) ) )
// Elements keep their text as sent (parameters included); empty elements are skipped
// (RFC 9110 §5.6.1.2). Returns an error text, or nullptr.
const char* split_transfer_codings(std::string_view v, std::vector<std::string_view>& out) {
  std::size_t i = 0;
  const std::size_t n = v.size();
  auto skip_ows = [&] {
    while (i < n && is_ows(static_cast<unsigned char>(v[i]))) ++i;
  };
  auto token = [&] {
    std::size_t start = i;
    while (i < n && is_tchar(static_cast<unsigned char>(v[i]))) ++i;
    return i > start;
  };
  auto quoted_string = [&] {
    if (i >= n || v[i] != '"') return false;
    for (++i; i < n; ++i) {
      auto c = static_cast<unsigned char>(v[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c == '\\') {
        if (++i >= n || !is_quoted_pair_char(static_cast<unsigned char>(v[i]))) return false;
      } else if (!is_qdtext(c)) {
        return false;
      }
    }
    return false;
  };
  for (;;) {
    skip_ows();
    if (i == n) break;
    if (v[i] == ',') {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (!token()) return "malformed Transfer-Encoding";
    std::string_view name = v.substr(start, i - start);
    if (!known_transfer_coding(name)) return "unknown transfer coding";
    std::size_t element_end = i;
    for (;;) {
      skip_ows();
      if (i == n || v[i] != ';') break;
      ++i;
      skip_ows();
      if (!token()) return "malformed transfer coding parameter";
      skip_ows();
      if (i == n || v[i] != '=') return "malformed transfer coding parameter";
      ++i;
      skip_ows();
      if (!token() && !quoted_string()) return "malformed transfer coding parameter";
      element_end = i;
    }
    if (i < n && v[i] != ',') return "malformed Transfer-Encoding";
    std::string_view element = v.substr(start, element_end - start);
    if (iequals(name, "chunked") && element.size() != name.size()) return "parameters on chunked";
    out.push_back(element);
  }
  if (out.empty()) return "empty Transfer-Encoding";
  return nullptr;
}
}  // namespace

void MessageHead::clear() {
  method.clear();
  target.clear();
  status = 0;
  reason.clear();
  major = minor = 1;
  headers.clear();  // keeps the fields' strings for the next message
  keep_alive = chunked = has_length = is_connect = upgrade = false;
  transfer_codings.clear();
  content_length = 0;
}

const llhttp_settings_t& HttpParser::settings() {
  // One table for every parser: llhttp only reads it, and a copy per connection would cost
  // every idle keep-alive connection its size.
  static const llhttp_settings_t table = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = cb_message_begin;
    s.on_url = cb_url;
    s.on_status = cb_status;
    s.on_method = cb_method;
    s.on_headers_complete = cb_headers_complete;
    s.on_body = cb_body;
    s.on_message_complete = cb_message_complete;
    return s;
  }();
  return table;
}

HttpParser::HttpParser(Type type, Limits limits, ParserListener* listener)
    : type_(type), limits_(limits), listener_(listener), chunked_(limits.max_headers) {
  // llhttp keeps a non-const pointer but never writes through it.
  llhttp_init(&parser_, type == Type::kRequest ? HTTP_REQUEST : HTTP_RESPONSE,
              const_cast<llhttp_settings_t*>(&settings()));
  parser_.data = this;
}

void HttpParser::reset() {
  llhttp_reset(&parser_);
  parser_.data = this;
  head_.clear();
  error_status_ = 0;
  error_reason_ = nullptr;
  in_message_ = head_done_ = paused_for_us_ = false;
  enter_head_phase();
}

void HttpParser::resume() { llhttp_resume(&parser_); }

void HttpParser::release_memory() {
  if (in_message_) return;
  head_ = MessageHead{};
  if (!fields_.empty()) std::string().swap(fields_);
  std::string().swap(framing_);
}

void HttpParser::enter_head_phase() {
  phase_ = Phase::kHead;
  line_ = Line::kPreamble;
  in_fields_ = false;
  if (!fields_.empty()) std::string().swap(fields_);
  if (!request_line_.empty()) std::string().swap(request_line_);
}

int HttpParser::fail(int status, const char* reason) {
  error_status_ = status;
  error_reason_ = reason;
  return -1;
}

int HttpParser::cb_message_begin(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  self->head_.clear();
  self->head_.headers.reserve(16);  // one allocation for a typical head, not five
  self->in_message_ = true;
  self->head_done_ = false;
  return 0;
}

int HttpParser::cb_method(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  self->head_.method.append(at, len);
  return 0;
}

int HttpParser::cb_url(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  if (self->head_.target.size() + len > self->limits_.max_target) return self->fail(414, "request target too long");
  self->head_.target.append(at, len);
  return 0;
}

int HttpParser::cb_status(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  if (self->head_.reason.size() + len > 1024) return self->fail(self->bad_message_status(), "reason phrase too long");
  self->head_.reason.append(at, len);
  return 0;
}

namespace {
// The fields llhttp acts on (framing, keep-alive, upgrade); it is given these lines only.
bool framing_field(std::string_view n) {
  switch (n.size()) {
    case 7: return iequals(n, "Upgrade");
    case 10: return iequals(n, "Connection");
    case 14: return iequals(n, "Content-Length");
    case 16: return iequals(n, "Proxy-Connection");
    case 17: return iequals(n, "Transfer-Encoding");
    default: return false;
  }
}
}  // namespace

bool HttpParser::parse_fields(std::string_view lines, std::string& framing) {
  const int bad = bad_message_status();
  std::size_t bytes = 0;
  // scan_head checked the lines: each ends in CRLF (a CR is always a line's end), none
  // starts with SP/HTAB (obs-fold), none holds a control character other than HTAB; the
  // section ends with the empty line. So every scan below stops inside `lines`.
  const char* p = lines.data();
  const char* const end = p + lines.size();
  while (end - p > 2) {
    const char* line = p;
    while (kTchar[static_cast<unsigned char>(*p)]) ++p;  // the name; stops at ':' or CR at the latest
    if (*p != ':') {
      const char* why = *p == '\r' ? "header line without a colon" : "invalid character in header name";
      return fail(bad, why), false;
    }
    if (p == line) return fail(bad, "empty header name"), false;
    std::string_view name(line, static_cast<std::size_t>(p - line));
    const char* v = p + 1;
    const char* cr = static_cast<const char*>(std::memchr(v, '\r', static_cast<std::size_t>(end - v)));
    bytes += name.size() + static_cast<std::size_t>(cr - v) + 4;  // ": " and CRLF count too
    if (bytes > limits_.max_headers) return fail(431, "header section too large"), false;
    const char* e = cr;
    while (v < e && (*v == ' ' || *v == '\t')) ++v;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) --e;
    head_.headers.add_copy(name, std::string_view(v, static_cast<std::size_t>(e - v)));
    p = cr + 2;
    if (framing_field(name)) {
      framing.append(line, static_cast<std::size_t>(p - line));
      if (name.size() == 17) te_seen_ = true;  // the one framing name of that length
    }
  }
  framing.append("\r\n");
  return true;
}

bool HttpParser::check_transfer_encoding(const llhttp_t* p) {
  auto& h = head_;
  if (!te_seen_) return true;
  auto reject = [this](int status, const char* why) {
    fail(status, why);
    return false;
  };
  const int bad = bad_message_status();
  // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
  if (h.minor == 0) return reject(bad, "Transfer-Encoding in an HTTP/1.0 message");
  std::string value = h.headers.joined("Transfer-Encoding");
  std::vector<std::string_view> codings;
  if (const char* why = split_transfer_codings(value, codings)) return reject(bad, why);
  auto is_chunked = [](std::string_view c) { return iequals(c, "chunked"); };
  for (std::size_t i = 0; i + 1 < codings.size(); ++i)
    if (is_chunked(codings[i])) return reject(bad, "chunked is not the last transfer coding");
  bool chunked = is_chunked(codings.back());
  // RFC 9112 §6.3: a request whose codings do not end in chunked cannot be framed.
  if (type_ == Type::kRequest && !chunked) return reject(400, "request Transfer-Encoding does not end in chunked");
  // llhttp frames the message by its own reading of the field; it must agree with ours.
  if (chunked != ((p->flags & F_CHUNKED) != 0)) return reject(bad, "ambiguous Transfer-Encoding");
  if (chunked) codings.pop_back();
  for (auto c : codings) {
    if (!h.transfer_codings.empty()) h.transfer_codings += ", ";
    h.transfer_codings += c;
  }
  return true;
}

int HttpParser::cb_headers_complete(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  auto& h = self->head_;
  h.major = p->http_major;
  h.minor = p->http_minor;
  // HTTP/1.x only on this wire (RFC 9112); HTTP/2.0 here is not HTTP/2
  if (h.major != 1) return self->fail(505, "unsupported HTTP version");
  if (self->type_ == Type::kRequest) {
    h.is_connect = p->method == HTTP_CONNECT;
  } else {
    h.status = p->status_code;
  }
  h.keep_alive = llhttp_should_keep_alive(p) != 0;
  h.upgrade = p->upgrade != 0;  // set by llhttp before this callback
  h.chunked = (p->flags & F_CHUNKED) != 0;
  if (p->flags & F_CONTENT_LENGTH) {
    h.has_length = true;
    // llhttp validated the value; read it back from the header (p->content_length is
    // consumed as the body is parsed).
    if (auto* cl = h.headers.find("Content-Length")) {
      std::uint64_t v = 0;
      std::from_chars(cl->data(), cl->data() + cl->size(), v);
      h.content_length = v;
    }
  }
  // Before the listener sees the head: a rejected message is never passed on.
  if (!self->check_transfer_encoding(p)) return -1;
  // RFC 9112 §6.3: 1xx, 204 and 304 responses end with their head whatever the fields say
  // (a 304 may carry the Content-Length of the stored representation); llhttp would read
  // a body for Content-Length or chunked. F_SKIPBODY is what returning 1 here sets.
  if (self->type_ == Type::kResponse && (h.status < 200 || h.status == 204 || h.status == 304)) p->flags |= F_SKIPBODY;
  self->head_done_ = true;
  // The listener may take the head (swap it for an empty one of its own): read it first.
  const bool chunked_body = h.chunked && !h.is_connect;
  int rc = self->listener_->on_message_head(h);
  // llhttp would read a chunked body next (a CONNECT goes to the tunnel instead): the
  // decoder reads it while llhttp stays paused here.
  bool body_follows = rc == 0 || rc == HPE_PAUSED;
  if (chunked_body && !(p->flags & F_SKIPBODY) && body_follows) {
    self->phase_ = Phase::kChunked;
    self->chunked_.reset();
    if (rc == 0) {
      self->paused_for_us_ = true;
      return HPE_PAUSED;
    }
    return rc;
  }
  self->phase_ = Phase::kBody;
  return rc;
}

int HttpParser::cb_body(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  Slice s{*self->cur_chunk_, at, len};
  return self->listener_->on_message_body(std::move(s));
}

int HttpParser::cb_message_complete(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  self->in_message_ = false;
  // After an upgrade the bytes are another protocol's, after a close llhttp drops them;
  // otherwise a new head follows and its lines are checked before llhttp reads them,
  // so llhttp stops here (paused) and feed() goes on with the check.
  bool next_head = !p->upgrade && llhttp_should_keep_alive(p);
  if (next_head) self->enter_head_phase();
  else self->phase_ = Phase::kRaw;
  int rc = self->listener_->on_message_end();
  if (rc == 0 && next_head) {
    self->paused_for_us_ = true;
    return HPE_PAUSED;
  }
  return rc;
}

namespace {
// The bytes the header-section check stops at: every control character (CR, LF and HTAB
// among them) and DEL. Everything else (VCHAR, SP, obs-text) is legal in any line.
bool head_special(unsigned char c) { return c < 0x20 || c == 0x7f; }

// The first special byte in [p, end), or end; sixteen bytes at a time where SSE2 exists.
const char* next_special(const char* p, const char* end) {
#ifdef __SSE2__
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  const __m128i del = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // v <= 0x1f (unsigned) exactly when the saturating v - 0x1f is zero.
    __m128i ctl = _mm_cmpeq_epi8(_mm_subs_epu8(v, ctl_max), _mm_setzero_si128());
    int bits = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
    if (bits) return p + __builtin_ctz(static_cast<unsigned>(bits));
    p += 16;
  }
#endif
  for (; p < end; ++p)
    if (head_special(static_cast<unsigned char>(*p))) return p;
  return end;
}
}  // namespace

const char* HttpParser::scan_head(const char* p, const char* end, Scan& scan) {
  // Every line of a head ends in CRLF: llhttp 8.1 (loose) also takes a bare LF and, after
  // a CR, any byte ("\r\n\rX" ends a head). A line starting with SP or HTAB is obs-fold,
  // which a proxy must reject or replace (RFC 9112 §5.2); llhttp folds it silently. No
  // line may hold a control character other than HTAB (RFC 9110 §5.5 field values, RFC 9112
  // §3 and §4 for the start line), so the header-value callback need not look again.
  scan = Scan::kMore;
  for (; p < end; ++p) {
    if (line_ == Line::kText) {
      p = next_special(p, end);  // inside a line only the special bytes matter
      if (p == end) break;
    }
    const auto c = static_cast<unsigned char>(*p);
    const char* why = nullptr;
    switch (line_) {
      case Line::kPreamble:  // empty lines before a message (RFC 9112 §2.2)
        if (c == '\r') line_ = Line::kPreambleCr;
        else if (c == '\n') why = "bare LF in the header section";
        else if (head_special(c)) why = "control character in the header section";
        else line_ = Line::kText;
        break;
      case Line::kPreambleCr:
      case Line::kCr:
      case Line::kEndCr:
        if (c != '\n') {
          why = "CR not followed by LF in the header section";
        } else if (line_ == Line::kEndCr) {
          scan = Scan::kHeadEnd;
          return p + 1;
        } else if (line_ == Line::kCr && !in_fields_) {
          line_ = Line::kStart;
          scan = Scan::kLineEnd;  // the start line is complete
          return p + 1;
        } else {
          line_ = line_ == Line::kCr ? Line::kStart : Line::kPreamble;
        }
        break;
      case Line::kText:  // c is special
        if (c == '\r') line_ = Line::kCr;
        else if (c == '\n') why = "bare LF in the header section";
        else if (c != '\t') why = "control character in the header section";
        break;
      case Line::kStart:
        if (c == '\r') line_ = Line::kEndCr;
        else if (c == '\n') why = "bare LF in the header section";
        else if (is_ows(c)) why = "obs-fold in the header section";
        else if (head_special(c)) why = "control character in the header section";
        else line_ = Line::kText;
        break;
    }
    if (why) {
      fail(bad_message_status(), why);
      scan = Scan::kError;
      return p;
    }
  }
  return end;
}

ParseResult HttpParser::execute(const char*& p, const char* stop, bool& drive) {
  llhttp_errno_t err = llhttp_execute(&parser_, p, static_cast<std::size_t>(stop - p));
  ParseResult r;
  if (err == HPE_OK) {
    p = stop;
    return r;
  }
  const char* at = llhttp_get_error_pos(&parser_);
  if (at) p = at;
  if (err == HPE_PAUSED && paused_for_us_) {
    paused_for_us_ = false;
    // In the chunked phase llhttp stays paused until the decoder is done; otherwise it
    // goes on (from p) as if never stopped.
    if (phase_ != Phase::kChunked) {
      llhttp_resume(&parser_);
      drive = true;
    }
    return r;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    r.kind = err == HPE_PAUSED ? ParseResult::kPaused : ParseResult::kUpgrade;
    return r;
  }
  return error_result(err);
}

ParseResult HttpParser::decode_chunked(const char*& p, const char* end) {
  ParseResult r;
  for (;;) {
    std::string_view data;
    switch (chunked_.decode(p, end, data)) {
      case ChunkedDecoder::Result::kNeedMore:
        return r;
      case ChunkedDecoder::Result::kData: {
        int rc = listener_->on_message_body(Slice{*cur_chunk_, data.data(), data.size()});
        if (rc == 0) break;
        if (rc == HPE_PAUSED) {
          r.kind = ParseResult::kPaused;
          return r;
        }
        fail(bad_message_status(), "body callback failed");
        return our_error();
      }
      case ChunkedDecoder::Result::kError:
        fail(chunked_.trailers_too_large() ? 431 : bad_message_status(), chunked_.error());
        return our_error();
      case ChunkedDecoder::Result::kDone:
        // llhttp, paused after the head, ends the message as one without a body, so its
        // keep-alive, upgrade and pause handling apply as before. F_SKIPBODY is what
        // on_headers_complete returning 1 sets (see llhttp__after_headers_complete).
        parser_.flags |= F_SKIPBODY;
        llhttp_resume(&parser_);
        phase_ = Phase::kBody;
        return r;
    }
  }
}

ParseResult HttpParser::our_error() {
  ParseResult r;
  r.kind = ParseResult::kError;
  r.status = error_status_;
  r.reason = error_reason_;
  return r;
}

ParseResult HttpParser::error_result(llhttp_errno_t err) {
  if (error_status_) return our_error();
  ParseResult r;
  r.kind = ParseResult::kError;
  const char* why = llhttp_get_error_reason(&parser_);
  r.reason = why ? why : llhttp_errno_name(err);
  r.status = err == HPE_INVALID_VERSION ? 505 : bad_message_status();
  return r;
}

namespace {
// The methods llhttp is given as sent; any other token goes to llhttp as kStandIn.
bool llhttp_reads_as_sent(std::string_view m) {
  switch (m.size()) {
    case 3: return m == "GET" || m == "PUT";
    case 4: return m == "HEAD" || m == "POST";
    case 5: return m == "PATCH" || m == "TRACE" || m == "PURGE";
    case 6: return m == "DELETE";
    case 7: return m == "OPTIONS" || m == "CONNECT";
    default: return false;
  }
}
// For llhttp a request's method decides nothing but CONNECT's tunnel: the body is framed
// by Content-Length / Transfer-Encoding alone (RFC 9112 §6.3), so an extension method is
// read as this one and the head gets its own name back.
constexpr std::string_view kStandIn = "POST";
}  // namespace

ParseResult HttpParser::start_line(std::string_view line, bool& drive) {
  // scan_head checked the line: empty lines first (the preamble), then text ending in CRLF.
  std::size_t m = 0;
  while (m < line.size() && (line[m] == '\r' || line[m] == '\n')) ++m;
  std::size_t m_end = m;
  while (m_end < line.size() && kTchar[static_cast<unsigned char>(line[m_end])]) ++m_end;
  std::string_view method = line.substr(m, m_end - m);
  // Not a token followed by SP: llhttp reads it as sent, and rejects it.
  bool stand_in = !method.empty() && m_end < line.size() && line[m_end] == ' ' && !llhttp_reads_as_sent(method);
  if (!stand_in) {
    const char* f = line.data();
    return execute(f, f + line.size(), drive);
  }
  // framing_ is free until the header lines: llhttp reads the substitute line from it.
  framing_.assign(kStandIn).append(line.substr(m_end));
  const char* f = framing_.data();
  ParseResult r = execute(f, f + framing_.size(), drive);
  if (r.kind == ParseResult::kOk) head_.method.assign(method);
  return r;
}

ParseResult HttpParser::feed(const ChunkRef& chunk, const char* data, std::size_t len) {
  cur_chunk_ = &chunk;
  const char* p = data;
  const char* const end = data + len;
  ParseResult r;
  // llhttp runs at least once per call and again right after it resumes from a pause of
  // ours, so whatever it does without input (end a message, signal an upgrade) happens now.
  bool drive = true;
  while (r.kind == ParseResult::kOk && (p < end || drive)) {
    drive = false;
    if (phase_ == Phase::kChunked) {
      r = decode_chunked(p, end);
      drive = phase_ != Phase::kChunked;
      continue;
    }
    const char* stop = end;
    Scan scan = Scan::kMore;
    if (phase_ == Phase::kHead) stop = scan_head(p, end, scan);
    if (phase_ == Phase::kHead && in_fields_) {
      // Header lines: ours (see the top of http_parser.hpp).
      if (scan == Scan::kError) {
        r = our_error();
        continue;
      }
      if (scan == Scan::kMore) {
        if (fields_.size() + static_cast<std::size_t>(stop - p) > limits_.max_headers + 4) {
          fail(431, "header section too large");
          r = our_error();
          continue;
        }
        fields_.append(p, static_cast<std::size_t>(stop - p));
        p = stop;
        continue;
      }
      std::string_view lines(p, static_cast<std::size_t>(stop - p));
      if (!fields_.empty()) lines = fields_.append(lines);
      // The parser's own buffer, not one per thread: llhttp reads it while the listener runs,
      // and a listener may feed another parser before returning.
      std::string& framing = framing_;
      framing.clear();
      te_seen_ = false;
      if (!parse_fields(lines, framing)) {
        r = our_error();
        continue;
      }
      in_fields_ = false;
      if (!fields_.empty()) std::string().swap(fields_);
      // llhttp ends the head on these lines; wherever it stops in them (the end, a pause, an
      // upgrade, an error), the input goes on after the head.
      const char* f = framing.data();
      r = execute(f, f + framing.size(), drive);
      p = stop;
      if (r.kind == ParseResult::kOk && !head_done_) {
        // Cannot happen; if llhttp ever read a head differently, fail rather than frame the
        // message two ways.
        fail(bad_message_status(), "malformed header section");
        r = our_error();
      }
      continue;
    }
    if (type_ == Type::kRequest && phase_ == Phase::kHead && scan != Scan::kError && p < stop) {
      // A request line: gathered until its end, then given to llhttp with its method as
      // llhttp can read it (start_line()).
      if (scan == Scan::kMore) {
        if (request_line_.size() + static_cast<std::size_t>(stop - p) > limits_.max_target + kMaxLineExtra) {
          fail(414, "request line too long");
          r = our_error();
          continue;
        }
        request_line_.append(p, static_cast<std::size_t>(stop - p));
        p = stop;
        continue;
      }
      std::string_view line(p, static_cast<std::size_t>(stop - p));
      if (!request_line_.empty()) line = request_line_.append(line);
      p = stop;
      r = start_line(line, drive);
      if (!request_line_.empty()) std::string().swap(request_line_);
      if (r.kind == ParseResult::kOk) in_fields_ = true;
      continue;
    }
    r = execute(p, stop, drive);
    if (r.kind != ParseResult::kOk || p != stop) continue;
    if (scan == Scan::kError) {
      r = our_error();
    } else if (scan == Scan::kLineEnd) {
      in_fields_ = true;
    } else if (scan == Scan::kHeadEnd) {
      // Cannot happen: the head ends in the header lines, which llhttp never reads directly.
      fail(bad_message_status(), "malformed header section");
      r = our_error();
    }
  }
  cur_chunk_ = nullptr;
  r.consumed = static_cast<std::size_t>(p - data);
  return r;
}

ParseResult HttpParser::finish() {
  if (phase_ == Phase::kChunked) {
    fail(bad_message_status(), "connection closed in a chunked body");
    return our_error();
  }
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_OK || err == HPE_PAUSED) return {};
  return error_result(err);
}

}  // namespace outpost::http
