#include "proxy/http_chunked.hpp"

#include <algorithm>
#include <limits>

#include "proxy/http_chars.hpp"

namespace outpost::http {

namespace {
int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::kSizeFirst;
  remaining_ = 0;
  line_bytes_ = trailer_bytes_ = 0;
  error_ = nullptr;
  trailers_too_large_ = false;
}

ChunkedDecoder::Result ChunkedDecoder::fail(const char* why) {
  state_ = State::kError;
  error_ = why;
  return Result::kError;
}

bool ChunkedDecoder::size_line_byte(unsigned char c) {
  // After a name, a value or BWS, these end one extension: BWS, ";" or the line's CR.
  auto after_element = [&](State bws) {
    if (is_ows(c)) state_ = bws;
    else if (c == ';') state_ = State::kExtNameStart;
    else if (c == '\r') state_ = State::kSizeLf;
    else return false;
    return true;
  };
  switch (state_) {
    case State::kSizeFirst:
    case State::kSize: {
      int v = hex_value(c);
      if (v >= 0) {
        if (remaining_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) {
          error_ = "chunk size overflow";
          return false;
        }
        remaining_ = remaining_ << 4 | static_cast<unsigned>(v);
        state_ = State::kSize;
        return true;
      }
      if (state_ == State::kSize && after_element(State::kExtBws)) return true;
      error_ = "invalid chunk size";
      return false;
    }
    case State::kExtBws:  // BWS that must lead to ";"
      if (is_ows(c)) return true;
      if (c == ';') {
        state_ = State::kExtNameStart;
        return true;
      }
      break;
    case State::kExtNameStart:
      if (is_ows(c)) return true;
      if (is_tchar(c)) {
        state_ = State::kExtName;
        return true;
      }
      break;
    case State::kExtName:
      if (is_tchar(c)) return true;
      if (c == '=') {
        state_ = State::kExtValueStart;
        return true;
      }
      if (after_element(State::kExtAfterName)) return true;
      break;
    case State::kExtAfterName:  // BWS after a name: "=" or ";" follows
      if (is_ows(c)) return true;
      if (c == '=') {
        state_ = State::kExtValueStart;
        return true;
      }
      if (c == ';') {
        state_ = State::kExtNameStart;
        return true;
      }
      break;
    case State::kExtValueStart:
      if (is_ows(c)) return true;
      if (c == '"') {
        state_ = State::kExtQuoted;
        return true;
      }
      if (is_tchar(c)) {
        state_ = State::kExtToken;
        return true;
      }
      break;
    case State::kExtToken:
      if (is_tchar(c)) return true;
      if (after_element(State::kExtBws)) return true;
      break;
    case State::kExtQuoted:
      if (c == '"') {
        state_ = State::kExtAfterValue;
        return true;
      }
      if (c == '\\') {
        state_ = State::kExtQuotedPair;
        return true;
      }
      if (is_qdtext(c)) return true;
      break;
    case State::kExtQuotedPair:
      if (is_quoted_pair_char(c)) {
        state_ = State::kExtQuoted;
        return true;
      }
      break;
    case State::kExtAfterValue:
      if (after_element(State::kExtBws)) return true;
      break;
    case State::kSizeLf:
      if (c == '\n') {
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        return true;
      }
      error_ = "chunk-size line not ended by CRLF";
      return false;
    default:
      break;
  }
  error_ = "invalid chunk extension";
  return false;
}

bool ChunkedDecoder::trailer_byte(unsigned char c) {
  switch (state_) {
    case State::kTrailerStart:
      if (c == '\r') state_ = State::kFinalLf;
      else if (is_tchar(c)) state_ = State::kTrailerName;
      else {
        error_ = c == ':' ? "empty trailer field name" : is_ows(c) ? "obs-fold in trailer section" : "invalid trailer field name";
        return false;
      }
      return true;
    case State::kTrailerName:
      if (c == ':') state_ = State::kTrailerValue;
      else if (!is_tchar(c)) {
        error_ = "invalid trailer field name";
        return false;
      }
      return true;
    case State::kTrailerValue:
      if (c == '\r') state_ = State::kTrailerLf;
      else if (!is_field_char(c)) {
        error_ = "invalid character in trailer field value";
        return false;
      }
      return true;
    case State::kTrailerLf:
    case State::kFinalLf:
      if (c != '\n') {
        error_ = "trailer line not ended by CRLF";
        return false;
      }
      state_ = state_ == State::kTrailerLf ? State::kTrailerStart : State::kDone;
      return true;
    default:
      return false;
  }
}

ChunkedDecoder::Result ChunkedDecoder::decode(const char*& p, const char* end, std::string_view& data) {
  while (p < end) {
    switch (state_) {
      case State::kData: {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
        data = std::string_view(p, n);
        p += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCr;
        return Result::kData;
      }
      case State::kDataCr:
      case State::kDataLf:
        if (*p != (state_ == State::kDataCr ? '\r' : '\n')) return fail("chunk data not followed by CRLF");
        ++p;
        if (state_ == State::kDataCr) {
          state_ = State::kDataLf;
        } else {
          state_ = State::kSizeFirst;
          line_bytes_ = 0;
        }
        break;
      case State::kTrailerStart:
      case State::kTrailerName:
      case State::kTrailerValue:
      case State::kTrailerLf:
      case State::kFinalLf:
        if (++trailer_bytes_ > max_trailer_bytes_) {
          trailers_too_large_ = true;
          return fail("trailer section too large");
        }
        if (!trailer_byte(static_cast<unsigned char>(*p))) return fail(error_);
        ++p;
        if (state_ == State::kDone) return Result::kDone;
        break;
      case State::kDone:
        return Result::kDone;
      case State::kError:
        return Result::kError;
      default:  // the chunk-size line
        if (++line_bytes_ > kMaxSizeLine) return fail("chunk extensions too long");
        if (!size_line_byte(static_cast<unsigned char>(*p))) return fail(error_);
        ++p;
        break;
    }
  }
  return state_ == State::kDone ? Result::kDone : state_ == State::kError ? Result::kError : Result::kNeedMore;
}

}  // namespace outpost::http
