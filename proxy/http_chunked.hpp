// Strict decoder for the chunked transfer coding (RFC 9112 §7.1), used by HttpParser in
// place of llhttp's: llhttp 8.1 takes any two bytes after chunk data as its CRLF, any byte
// after a chunk-size line's CR as the LF, keeps no bound on chunk extensions and rejects
// valid ones (BWS, quoted-pairs). Here:
//   chunk-size  1*HEXDIG, overflow is an error;
//   chunk-ext   *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), at most
//               kMaxSizeLine bytes for a chunk-size line with its extensions (ignored);
//   chunk-data  followed by exactly CRLF;
//   trailers    field lines checked like a header section (token name, ":", field
//               value, CRLF; no obs-fold, no empty name), bounded, then dropped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace outpost::http {

class ChunkedDecoder {
 public:
  static constexpr std::size_t kMaxSizeLine = 4096;

  enum class Result {
    kNeedMore,  // all input used, the body goes on
    kData,      // a piece of chunk data (the `data` out-parameter)
    kDone,      // the chunked body ended (after the trailer section's final CRLF)
    kError,     // malformed; see error()
  };

  explicit ChunkedDecoder(std::size_t max_trailer_bytes) : max_trailer_bytes_(max_trailer_bytes) {}

  // Decodes from `p` up to `end`, stopping at the first piece of chunk data, the end of
  // the body, an error or the end of the input. `p` moves past the bytes used (for kData,
  // past the data; for kError, to the offending byte). Read boundaries do not matter.
  Result decode(const char*& p, const char* end, std::string_view& data);
  // Why decoding failed, and whether it was the trailer section's size limit.
  const char* error() const { return error_; }
  bool trailers_too_large() const { return trailers_too_large_; }
  // Ready for a new chunked body.
  void reset();

 private:
  enum class State {
    kSizeFirst, kSize, kExtBws, kExtNameStart, kExtName, kExtAfterName, kExtValueStart,
    kExtToken, kExtQuoted, kExtQuotedPair, kExtAfterValue, kSizeLf,
    kData, kDataCr, kDataLf,
    kTrailerStart, kTrailerName, kTrailerValue, kTrailerLf, kFinalLf,
    kDone, kError,
  };
  // One byte of the chunk-size line; false on a syntax error (error_ set).
  bool size_line_byte(unsigned char c);
  // One byte of the trailer section; false on a syntax error (error_ set).
  bool trailer_byte(unsigned char c);
  Result fail(const char* why);

  State state_ = State::kSizeFirst;
  std::uint64_t remaining_ = 0;  // chunk-size being read, then data bytes left
  std::size_t line_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t max_trailer_bytes_;
  const char* error_ = nullptr;
  bool trailers_too_large_ = false;
};

}  // namespace outpost::http
