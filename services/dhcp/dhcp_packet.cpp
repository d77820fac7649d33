#include "services/dhcp/dhcp_packet.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace outpost::dhcp {

const char* message_type_name(MessageType t) {
  switch (t) {
    case MessageType::kDiscover: return "discover";
    case MessageType::kOffer: return "offer";
    case MessageType::kRequest: return "request";
    case MessageType::kDecline: return "decline";
    case MessageType::kAck: return "ack";
    case MessageType::kNak: return "nak";
    case MessageType::kRelease: return "release";
    case MessageType::kInform: return "inform";
  }
  return "unknown";
}

std::string ipv4_to_string(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
         "." + std::to_string(a & 255);
}

std::optional<std::uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

namespace {

std::uint32_t get32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void put32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

enum class Field { kOptions, kFile, kSname };
const char* field_name(Field f) { return f == Field::kOptions ? "options" : f == Field::kFile ? "file" : "sname"; }

// Reads the options of one field into `out`. `overload` gets option 52's value when it is
// met in the options field.
bool read_options(std::span<const std::uint8_t> field, Field which, Packet* out, int* overload, std::string* error) {
  std::size_t i = 0;
  while (i < field.size()) {
    std::uint8_t code = field[i++];
    if (code == opt::kPad) continue;
    if (code == opt::kEnd) return true;
    if (i >= field.size()) {
      *error = "option " + std::to_string(code) + " has no length byte (" + field_name(which) + " field)";
      return false;
    }
    std::size_t len = field[i++];
    if (len > field.size() - i) {
      *error = "option " + std::to_string(code) + " of length " + std::to_string(len) + " runs past the end of the " +
               field_name(which) + " field";
      return false;
    }
    if (code == opt::kOverload) {
      if (which != Field::kOptions) {
        *error = std::string("option overload inside the ") + field_name(which) + " field it overloads (a loop)";
        return false;
      }
      if (len != 1 || field[i] < 1 || field[i] > 3) {
        *error = "option overload with a bad value (length " + std::to_string(len) + ")";
        return false;
      }
      if (*overload != 0) {
        *error = "option overload given twice";
        return false;
      }
      *overload = field[i];
    } else {
      out->options[code].append(reinterpret_cast<const char*>(field.data() + i), len);
    }
    i += len;
  }
  // No End option: RFC 2131 wants one, but many clients pad to the end; the field is over.
  return true;
}

}  // namespace

const std::string* Packet::option(std::uint8_t code) const {
  auto it = options.find(code);
  return it == options.end() ? nullptr : &it->second;
}

std::optional<MessageType> Packet::message_type() const {
  const std::string* v = option(opt::kMessageType);
  if (!v || v->size() != 1) return std::nullopt;
  auto t = static_cast<std::uint8_t>((*v)[0]);
  if (t < 1 || t > 8) return std::nullopt;
  return static_cast<MessageType>(t);
}

std::optional<std::uint32_t> Packet::option_ipv4(std::uint8_t code) const { return option_u32(code); }

std::optional<std::uint32_t> Packet::option_u32(std::uint8_t code) const {
  const std::string* v = option(code);
  if (!v || v->size() != 4) return std::nullopt;
  return get32(reinterpret_cast<const std::uint8_t*>(v->data()));
}

std::size_t Packet::max_reply_size() const {
  std::size_t max = kDefaultMaxMessage;
  const std::string* v = option(opt::kMaxMessageSize);
  if (v && v->size() == 2) {
    std::size_t m = (static_cast<std::uint8_t>((*v)[0]) << 8) | static_cast<std::uint8_t>((*v)[1]);
    max = std::max(max, m);
  }
  return max - kIpUdpHeaders;
}

std::string Packet::hardware_address() const {
  return hex_colon(std::string_view(reinterpret_cast<const char*>(chaddr.data()), std::min<std::size_t>(hlen, 16)));
}

bool parse_packet(std::span<const std::uint8_t> data, Packet* out, std::string* error) {
  *out = Packet{};
  if (data.size() < kMinMessage) {
    *error = "short message (" + std::to_string(data.size()) + " bytes, at least 240)";
    return false;
  }
  const std::uint8_t* p = data.data();
  if (get32(p + kFixedSize) != kMagicCookie) {
    *error = "bad magic cookie";
    return false;
  }
  out->op = p[0];
  out->htype = p[1];
  out->hlen = p[2];
  out->hops = p[3];
  if (out->hlen > 16) {
    *error = "hardware address length " + std::to_string(out->hlen) + " (at most 16)";
    return false;
  }
  out->xid = get32(p + 4);
  out->secs = static_cast<std::uint16_t>((p[8] << 8) | p[9]);
  out->flags = static_cast<std::uint16_t>((p[10] << 8) | p[11]);
  out->ciaddr = get32(p + 12);
  out->yiaddr = get32(p + 16);
  out->siaddr = get32(p + 20);
  out->giaddr = get32(p + 24);
  std::memcpy(out->chaddr.data(), p + 28, 16);
  std::memcpy(out->sname.data(), p + 44, 64);
  std::memcpy(out->file.data(), p + 108, 128);
  int overload = 0;
  if (!read_options(data.subspan(kMinMessage), Field::kOptions, out, &overload, error)) return false;
  if (overload) {
    out->overloaded = true;
    // RFC 2131 §4.1: the options field, then file, then sname.
    if ((overload & 1) && !read_options(std::span(out->file), Field::kFile, out, &overload, error)) return false;
    if ((overload & 2) && !read_options(std::span(out->sname), Field::kSname, out, &overload, error)) return false;
  }
  return true;
}

namespace {

// Appends option instances (split at 255 bytes) to `buf` while they fit in `room` bytes
// (keeping one for End); returns how many options of `list` from `next` on went in.
std::size_t fill(std::vector<std::uint8_t>& buf, const OptionList& list, std::size_t next, std::size_t room) {
  std::size_t used = 0, taken = 0;
  for (std::size_t k = next; k < list.size(); ++k) {
    const auto& [code, value] = list[k];
    std::size_t pieces = value.empty() ? 1 : (value.size() + 254) / 255;
    std::size_t need = value.size() + 2 * pieces;
    if (used + need + 1 > room) break;
    std::size_t off = 0;
    for (std::size_t i = 0; i < pieces; ++i) {
      std::size_t n = std::min<std::size_t>(255, value.size() - off);
      buf.push_back(code);
      buf.push_back(static_cast<std::uint8_t>(n));
      buf.insert(buf.end(), value.begin() + static_cast<std::ptrdiff_t>(off),
                 value.begin() + static_cast<std::ptrdiff_t>(off + n));
      off += n;
    }
    used += need;
    ++taken;
  }
  return taken;
}

}  // namespace

std::vector<std::uint8_t> write_packet(const Packet& p, const OptionList& options, std::size_t max_size,
                                       std::size_t* dropped) {
  max_size = std::max(max_size, kDefaultMaxMessage - kIpUdpHeaders);
  std::vector<std::uint8_t> out(kMinMessage, 0);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  put32(&out[4], p.xid);
  out[8] = static_cast<std::uint8_t>(p.secs >> 8);
  out[9] = static_cast<std::uint8_t>(p.secs);
  out[10] = static_cast<std::uint8_t>(p.flags >> 8);
  out[11] = static_cast<std::uint8_t>(p.flags);
  put32(&out[12], p.ciaddr);
  put32(&out[16], p.yiaddr);
  put32(&out[20], p.siaddr);
  put32(&out[24], p.giaddr);
  std::memcpy(&out[28], p.chaddr.data(), 16);
  std::memcpy(&out[44], p.sname.data(), 64);
  std::memcpy(&out[108], p.file.data(), 128);
  put32(&out[kFixedSize], kMagicCookie);

  std::size_t room = max_size - kMinMessage;
  std::vector<std::uint8_t> main;
  std::size_t n = fill(main, options, 0, room);
  if (n < options.size()) {
    // Overload: the main field keeps room for option 52 (3 bytes), the rest go to file, then sname.
    main.clear();
    n = fill(main, options, 0, room - 3);
    std::vector<std::uint8_t> file, sname;
    std::size_t nf = fill(file, options, n, 128);
    std::size_t ns = fill(sname, options, n + nf, 64);
    std::uint8_t which = (nf ? 1 : 0) | (ns ? 2 : 0);
    if (which) {
      std::vector<std::uint8_t> with52 = {opt::kOverload, 1, which};
      with52.insert(with52.end(), main.begin(), main.end());
      main = std::move(with52);
      if (nf) {
        file.push_back(opt::kEnd);
        std::fill(out.begin() + 108, out.begin() + 236, 0);
        std::copy(file.begin(), file.end(), out.begin() + 108);
      }
      if (ns) {
        sname.push_back(opt::kEnd);
        std::fill(out.begin() + 44, out.begin() + 108, 0);
        std::copy(sname.begin(), sname.end(), out.begin() + 44);
      }
    }
    if (dropped) *dropped = options.size() - n - nf - ns;
  } else if (dropped) {
    *dropped = 0;
  }
  out.insert(out.end(), main.begin(), main.end());
  out.push_back(opt::kEnd);
  if (out.size() < 300) out.resize(300, 0);
  return out;
}

std::string option_u32(std::uint32_t v) {
  std::string s(4, '\0');
  put32(reinterpret_cast<std::uint8_t*>(s.data()), v);
  return s;
}

std::string option_ipv4s(const std::vector<std::uint32_t>& addrs) {
  std::string s;
  for (auto a : addrs) s += option_u32(a);
  return s;
}

std::string hex_colon(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i) s += ':';
    auto b = static_cast<std::uint8_t>(bytes[i]);
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

std::optional<std::string> parse_hex_colon(const std::string& text) {
  std::string out;
  std::size_t i = 0;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (i < text.size()) {
    if (i + 2 > text.size()) return std::nullopt;
    int a = nib(text[i]), b = nib(text[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    out += static_cast<char>((a << 4) | b);
    i += 2;
    if (i < text.size()) {
      if (text[i] != ':' && text[i] != '-') return std::nullopt;
      if (++i == text.size()) return std::nullopt;
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace outpost::dhcp
