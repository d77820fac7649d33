#include "proxy/http_parser.hpp"

#include <charconv>

namespace outpost::http {

void MessageHead::clear() {
  method.clear();
  target.clear();
  status = 0;
  reason.clear();
  major = minor = 1;
  headers = HeaderList();
  keep_alive = chunked = has_length = is_connect = false;
  content_length = 0;
}

HttpParser::HttpParser(Type type, Limits limits, ParserListener* listener)
    : type_(type), limits_(limits), listener_(listener) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = cb_message_begin;
  settings_.on_url = cb_url;
  settings_.on_status = cb_status;
  settings_.on_method = cb_method;
  settings_.on_header_field = cb_header_field;
  settings_.on_header_value = cb_header_value;
  settings_.on_header_value_complete = cb_header_value_complete;
  settings_.on_headers_complete = cb_headers_complete;
  settings_.on_body = cb_body;
  settings_.on_message_complete = cb_message_complete;
  llhttp_init(&parser_, type == Type::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

void HttpParser::reset() {
  llhttp_reset(&parser_);
  parser_.data = this;
  head_.clear();
  field_.clear();
  value_.clear();
  header_bytes_ = 0;
  limit_status_ = 0;
  in_message_ = head_done_ = false;
}

void HttpParser::resume() { llhttp_resume(&parser_); }

int HttpParser::cb_message_begin(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  self->head_.clear();
  self->field_.clear();
  self->value_.clear();
  self->value_started_ = false;
  self->header_bytes_ = 0;
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
  if (self->head_.target.size() + len > self->limits_.max_target) {
    self->limit_status_ = 414;
    return -1;
  }
  self->head_.target.append(at, len);
  return 0;
}

int HttpParser::cb_status(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  if (self->head_.reason.size() + len > 1024) return -1;
  self->head_.reason.append(at, len);
  return 0;
}

namespace {
// RFC 9110 §5.6.2 tchar.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}
}  // namespace

int HttpParser::cb_header_field(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  for (std::size_t i = 0; i < len; ++i)
    if (!is_tchar(static_cast<unsigned char>(at[i]))) {
      llhttp_set_error_reason(p, "invalid character in header name");
      return -1;
    }
  self->header_bytes_ += len;
  if (self->header_bytes_ > self->limits_.max_headers) {
    self->limit_status_ = 431;
    return -1;
  }
  self->field_.append(at, len);
  return 0;
}

int HttpParser::cb_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  // field-value = *( VCHAR / obs-text / SP / HTAB ); a CR or LF here is obs-fold, which a
  // proxy must not pass on (RFC 9112 §5.2): reject it.
  for (std::size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(at[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      llhttp_set_error_reason(p, c == '\r' || c == '\n' ? "obs-fold in header value" : "invalid character in header value");
      return -1;
    }
  }
  // llhttp accepts obs-fold and reports the continuation line as a further span of the
  // same value. Spans of one value are contiguous in the input unless a read boundary
  // splits them; anything else means a line break was skipped.
  if (self->value_started_) {
    bool contiguous = at == self->value_end_;
    bool split_by_read = self->value_end_ == self->feed_end_prev_ && at == self->feed_begin_;
    if (!contiguous && !split_by_read) {
      llhttp_set_error_reason(p, "obs-fold in header value");
      return -1;
    }
  }
  self->value_started_ = true;
  self->value_end_ = at + len;
  self->header_bytes_ += len;
  if (self->header_bytes_ > self->limits_.max_headers) {
    self->limit_status_ = 431;
    return -1;
  }
  self->value_.append(at, len);
  return 0;
}

int HttpParser::cb_header_value_complete(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  self->header_bytes_ += 4;  // ": " and CRLF count against the limit too
  self->value_started_ = false;
  self->head_.headers.add(std::move(self->field_), std::string(trim_ows(self->value_)));
  self->field_.clear();
  self->value_.clear();
  return 0;
}

int HttpParser::cb_headers_complete(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  auto& h = self->head_;
  h.major = p->http_major;
  h.minor = p->http_minor;
  if (h.major != 1) {  // HTTP/1.x only on this wire (RFC 9112); HTTP/2.0 here is not HTTP/2
    self->limit_status_ = 505;
    return -1;
  }
  if (self->type_ == Type::kRequest) {
    h.is_connect = p->method == HTTP_CONNECT;
  } else {
    h.status = p->status_code;
  }
  h.keep_alive = llhttp_should_keep_alive(p) != 0;
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
  self->head_done_ = true;
  return self->listener_->on_message_head(h);
}

int HttpParser::cb_body(llhttp_t* p, const char* at, std::size_t len) {
  auto* self = static_cast<HttpParser*>(p->data);
  Slice s{*self->cur_chunk_, at, len};
  return self->listener_->on_message_body(std::move(s));
}

int HttpParser::cb_message_complete(llhttp_t* p) {
  auto* self = static_cast<HttpParser*>(p->data);
  self->in_message_ = false;
  return self->listener_->on_message_end();
}

ParseResult HttpParser::error_result(llhttp_errno_t err, const char* at) {
  ParseResult r;
  r.kind = ParseResult::kError;
  r.reason = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : llhttp_errno_name(err);
  (void)at;
  if (limit_status_) {
    r.status = limit_status_;
    r.reason = limit_status_ == 414   ? "request target too long"
               : limit_status_ == 431 ? "header section too large"
                                      : "unsupported HTTP version";
  } else if (err == HPE_INVALID_VERSION) {
    r.status = 505;
  } else {
    r.status = type_ == Type::kRequest ? 400 : 502;
  }
  return r;
}

ParseResult HttpParser::feed(const ChunkRef& chunk, const char* data, std::size_t len) {
  cur_chunk_ = &chunk;
  feed_begin_ = data;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  cur_chunk_ = nullptr;
  feed_end_prev_ = data + len;
  ParseResult r;
  r.consumed = len;
  if (err == HPE_OK) return r;
  const char* pos = llhttp_get_error_pos(&parser_);
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    r.kind = err == HPE_PAUSED ? ParseResult::kPaused : ParseResult::kUpgrade;
    r.consumed = pos ? static_cast<std::size_t>(pos - data) : len;
    return r;
  }
  r = error_result(err, pos);
  r.consumed = pos ? static_cast<std::size_t>(pos - data) : 0;
  return r;
}

ParseResult HttpParser::finish() {
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_OK || err == HPE_PAUSED) return {};
  return error_result(err, nullptr);
}

}  // namespace outpost::http
