// Character classes of the HTTP grammar (RFC 9110 §5.5, §5.6), shared by the message
// parser and the chunked decoder.
#pragma once

namespace outpost::http {

// tchar: the characters of a token.
constexpr bool is_tchar(unsigned char c) {
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

constexpr bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

// field-vchar / SP / HTAB: what a field value may hold (VCHAR, obs-text, SP, HTAB).
constexpr bool is_field_char(unsigned char c) { return is_ows(c) || (c > 0x20 && c != 0x7f); }

// qdtext: a quoted-string's characters other than DQUOTE and the backslash.
constexpr bool is_qdtext(unsigned char c) { return is_field_char(c) && c != '"' && c != '\\'; }

// What may follow the backslash of a quoted-pair.
constexpr bool is_quoted_pair_char(unsigned char c) { return is_field_char(c); }

// The same as tables, for loops over every byte of a head.
struct CharTable {
  bool v[256];
  constexpr bool operator[](unsigned char c) const { return v[c]; }
};
template <bool (*Pred)(unsigned char)>
constexpr CharTable make_char_table() {
  CharTable t{};
  for (int c = 0; c < 256; ++c) t.v[c] = Pred(static_cast<unsigned char>(c));
  return t;
}
inline constexpr CharTable kTchar = make_char_table<is_tchar>();

}  // namespace outpost::http
