#include "services/dhcp/dhcp_server.hpp"

#include <algorithm>
#include <sstream>

namespace outpost::dhcp {

namespace {

constexpr std::uint32_t kBroadcast = 0xffffffff;

bool parse_subnet(const std::string& text, std::uint32_t* network, std::uint32_t* mask) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return false;
  auto base = parse_ipv4(text.substr(0, slash));
  std::string len = text.substr(slash + 1);
  if (!base || len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned n = static_cast<unsigned>(std::stoul(len));
  if (n > 32) return false;
  *mask = n == 0 ? 0 : ~std::uint32_t{0} << (32 - n);
  *network = *base & *mask;
  return true;
}

std::optional<std::vector<std::uint32_t>> parse_list(const std::vector<std::string>& texts) {
  std::vector<std::uint32_t> out;
  for (auto& t : texts) {
    auto a = parse_ipv4(t);
    if (!a) return std::nullopt;
    out.push_back(*a);
  }
  return out;
}

}  // namespace

bool make_settings(const Config::Dhcp& c, std::uint32_t server_id, const std::vector<std::uint32_t>& dns,
                   const std::string& wpad, Settings* out, std::string* error) {
  Settings s;
  s.server_id = server_id;
  s.offer_time = static_cast<std::uint32_t>(c.offer_time);
  s.decline_time = static_cast<std::uint32_t>(c.decline_time);
  auto section_dns = parse_list(c.dns_servers);
  if (!section_dns) {
    *error = "dhcp.dns_servers: expected IPv4 addresses";
    return false;
  }
  for (std::size_t i = 0; i < c.pools.size(); ++i) {
    const auto& pc = c.pools[i];
    Pool p;
    std::string where = "dhcp.pools[" + std::to_string(i) + "]";
    auto first = parse_ipv4(pc.first), last = parse_ipv4(pc.last);
    auto routers = parse_list(pc.routers), pdns = parse_list(pc.dns_servers);
    if (!parse_subnet(pc.subnet, &p.network, &p.mask) || !first || !last || !routers || !pdns) {
      *error = where + ": bad address";
      return false;
    }
    p.first = *first;
    p.last = *last;
    if (p.first > p.last || !p.contains(p.first) || !p.contains(p.last)) {
      *error = where + ": the range must lie inside the subnet, first before last";
      return false;
    }
    if (p.mask < 0xfffffffe && (p.first == p.network || p.last == (p.network | ~p.mask))) {
      *error = where + ": the range holds the subnet's network or broadcast address";
      return false;
    }
    for (auto& q : s.pools)
      if ((q.network & p.mask) == p.network || (p.network & q.mask) == q.network) {
        *error = where + ": its subnet overlaps another pool's (a pool is chosen by its subnet)";
        return false;
      }
    p.routers = *routers;
    p.dns_servers = !pdns->empty() ? *pdns : !section_dns->empty() ? *section_dns : dns;
    p.domain_name = !pc.domain_name.empty() ? pc.domain_name : c.domain_name;
    p.wpad_url = wpad;
    p.lease_time = static_cast<std::uint32_t>(pc.lease_time > 0 ? pc.lease_time : c.lease_time);
    s.pools.push_back(std::move(p));
  }
  for (std::size_t i = 0; i < c.reservations.size(); ++i) {
    const auto& rc = c.reservations[i];
    Reservation r;
    std::string where = "dhcp.reservations[" + std::to_string(i) + "]";
    auto a = parse_ipv4(rc.address);
    if (!a) {
      *error = where + ": bad address";
      return false;
    }
    r.address = *a;
    if (!rc.mac.empty()) r.hardware = parse_hex_colon(rc.mac).value_or("");
    if (!rc.client_id.empty()) r.client_id = parse_hex_colon(rc.client_id).value_or("");
    if (r.hardware.empty() == r.client_id.empty()) {
      *error = where + ": give either mac or client_id";
      return false;
    }
    if (std::none_of(s.pools.begin(), s.pools.end(), [&](const Pool& p) { return p.contains(r.address); })) {
      *error = where + ": " + rc.address + " is in no pool's subnet";
      return false;
    }
    for (auto& q : s.reservations)
      if (q.address == r.address) {
        *error = where + ": " + rc.address + " is reserved twice";
        return false;
      }
    s.reservations.push_back(std::move(r));
  }
  *out = std::move(s);
  return true;
}

const char* lease_state_name(Lease::State s) {
  switch (s) {
    case Lease::State::kOffered: return "offered";
    case Lease::State::kBound: return "bound";
    case Lease::State::kReleased: return "released";
    case Lease::State::kDeclined: return "declined";
  }
  return "?";
}

std::string Server::client_key(const Packet& p) {
  if (const std::string* id = p.option(opt::kClientId); id && !id->empty()) return "id:" + *id;
  std::string k = "hw:";
  k += static_cast<char>(p.htype);
  k.append(reinterpret_cast<const char*>(p.chaddr.data()), std::min<std::size_t>(p.hlen, 16));
  return k;
}

const Pool* Server::pool_containing(std::uint32_t a) const {
  for (auto& p : s_.pools)
    if (p.contains(a)) return &p;
  return nullptr;
}

const Pool* Server::pool_for(const Packet& req) const {
  return pool_containing(req.giaddr ? req.giaddr : s_.server_id);
}

const Reservation* Server::reservation_for(const Packet& req) const {
  const std::string* id = req.option(opt::kClientId);
  std::string hw(reinterpret_cast<const char*>(req.chaddr.data()), std::min<std::size_t>(req.hlen, 16));
  for (auto& r : s_.reservations) {
    if (!r.client_id.empty() && id && *id == r.client_id) return &r;
    if (!r.hardware.empty() && hw == r.hardware) return &r;
  }
  return nullptr;
}

bool Server::reserved_for_other(std::uint32_t a, const Packet& req) const {
  const Reservation* mine = reservation_for(req);
  for (auto& r : s_.reservations)
    if (r.address == a && &r != mine) return true;
  return false;
}

bool Server::available(std::uint32_t a, const std::string& client, const Packet& req, std::int64_t now) const {
  if (a == s_.server_id || reserved_for_other(a, req)) return false;
  auto it = leases_.find(a);
  if (it == leases_.end()) return true;
  const Lease& l = it->second;
  if (l.state == Lease::State::kDeclined) return l.expires <= now;
  if (l.client == client) return true;
  return l.state == Lease::State::kReleased || l.expires <= now;
}

Lease* Server::lease_of(const std::string& client) {
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return nullptr;
  auto l = leases_.find(it->second);
  if (l == leases_.end() || l->second.client != client) return nullptr;
  return &l->second;
}

std::optional<std::uint32_t> Server::choose(const Pool& pool, const Packet& req, const std::string& client,
                                            std::int64_t now) const {
  if (const Reservation* r = reservation_for(req); r && pool.contains(r->address)) {
    auto it = leases_.find(r->address);
    // A reserved address another client still holds (it was given before the reservation) waits.
    if (it == leases_.end() || it->second.client == client || it->second.expires <= now ||
        it->second.state == Lease::State::kReleased)
      return r->address;
    return std::nullopt;
  }
  if (auto it = by_client_.find(client); it != by_client_.end()) {
    auto l = leases_.find(it->second);
    if (l != leases_.end() && l->second.client == client && pool.in_range(it->second) &&
        available(it->second, client, req, now))
      return it->second;
  }
  if (auto want = req.option_ipv4(opt::kRequestedAddress);
      want && pool.in_range(*want) && available(*want, client, req, now) &&
      (!leases_.count(*want) || leases_.at(*want).state != Lease::State::kBound || leases_.at(*want).client == client))
    return *want;
  for (std::uint64_t a = pool.first; a <= pool.last; ++a) {
    auto addr = static_cast<std::uint32_t>(a);
    if (addr == s_.server_id || leases_.count(addr) || reserved_for_other(addr, req)) continue;
    // The subnet's network and broadcast addresses are never handed out.
    if (addr == pool.network || addr == (pool.network | ~pool.mask)) continue;
    return addr;
  }
  std::optional<std::uint32_t> best;
  std::int64_t best_expiry = 0;
  for (auto it = leases_.lower_bound(pool.first); it != leases_.end() && it->first <= pool.last; ++it) {
    if (!available(it->first, client, req, now)) continue;
    std::int64_t e = it->second.state == Lease::State::kReleased ? std::min(it->second.expires, now) : it->second.expires;
    if (!best || e < best_expiry) {
      best = it->first;
      best_expiry = e;
    }
  }
  return best;
}

void Server::forget_client(const std::string& client, std::uint32_t except) {
  auto it = by_client_.find(client);
  if (it == by_client_.end() || it->second == except) return;
  auto l = leases_.find(it->second);
  if (l != leases_.end() && l->second.client == client) {
    if (l->second.state == Lease::State::kOffered) leases_.erase(l);
  }
  by_client_.erase(it);
}

Outcome Server::reply(const Packet& req, MessageType type, const Pool* pool, std::uint32_t yiaddr,
                      std::uint32_t lease_time, const std::string& message) {
  Packet p;
  p.op = 2;
  p.htype = req.htype;
  p.hlen = req.hlen;
  p.xid = req.xid;
  p.flags = req.flags;
  p.giaddr = req.giaddr;
  p.chaddr = req.chaddr;
  p.yiaddr = yiaddr;
  p.ciaddr = type == MessageType::kAck ? req.ciaddr : 0;
  OptionList o;
  o.emplace_back(opt::kMessageType, std::string(1, static_cast<char>(type)));
  o.emplace_back(opt::kServerId, option_u32(s_.server_id));
  if (lease_time) {
    o.emplace_back(opt::kLeaseTime, option_u32(lease_time));
    o.emplace_back(opt::kRenewalTime, option_u32(lease_time / 2));
    o.emplace_back(opt::kRebindingTime, option_u32(static_cast<std::uint32_t>(std::uint64_t{lease_time} * 7 / 8)));
  }
  if (!message.empty()) o.emplace_back(opt::kMessage, message);
  if (pool && type != MessageType::kNak) {
    auto value = [&](std::uint8_t code) -> std::optional<std::string> {
      switch (code) {
        case opt::kSubnetMask: return option_u32(pool->mask);
        case opt::kRouter:
          if (!pool->routers.empty()) return option_ipv4s(pool->routers);
          break;
        case opt::kDnsServer:
          if (!pool->dns_servers.empty()) return option_ipv4s(pool->dns_servers);
          break;
        case opt::kDomainName:
          if (!pool->domain_name.empty()) return pool->domain_name;
          break;
        case opt::kWpad:
          if (!pool->wpad_url.empty()) return pool->wpad_url;
          break;
        default: break;
      }
      return std::nullopt;
    };
    // The parameter request list, in its order (RFC 2132 §9.8); without one, everything.
    static const std::uint8_t kAll[] = {opt::kSubnetMask, opt::kRouter, opt::kDnsServer, opt::kDomainName, opt::kWpad};
    std::string want = req.option(opt::kParameterList) ? *req.option(opt::kParameterList)
                                                       : std::string(std::begin(kAll), std::end(kAll));
    std::string sent;
    for (char ch : want) {
      auto code = static_cast<std::uint8_t>(ch);
      if (sent.find(ch) != std::string::npos) continue;
      if (auto v = value(code)) {
        o.emplace_back(code, std::move(*v));
        sent += ch;
      }
    }
  }
  if (type == MessageType::kNak && req.giaddr) p.flags |= kBroadcastFlag;
  Outcome out;
  out.reply_type = type;
  out.reply = write_packet(p, o, req.max_reply_size());
  if (req.giaddr) {
    out.to_address = req.giaddr;
    out.to_port = 67;
  } else if (type == MessageType::kNak) {
    out.to_address = kBroadcast;
  } else if (req.ciaddr) {
    out.to_address = req.ciaddr;
  } else {
    // A client without an address: broadcast (RFC 2131 §4.1 allows it where unicasting to
    // an address the client does not have yet is not possible without ARP games).
    out.to_address = kBroadcast;
  }
  return out;
}

Outcome Server::nak(const Packet& req, const std::string& why) {
  Outcome o = reply(req, MessageType::kNak, nullptr, 0, 0, why);
  o.note = "nak: " + why;
  return o;
}

Outcome Server::bind(const Packet& req, const Pool& pool, std::uint32_t a, std::int64_t now) {
  std::string client = client_key(req);
  if (auto it = by_client_.find(client); it != by_client_.end() && it->second != a) {
    auto old = leases_.find(it->second);
    if (old != leases_.end() && old->second.client == client) {
      if (old->second.state == Lease::State::kOffered) {
        leases_.erase(old);
      } else if (old->second.state == Lease::State::kBound) {
        old->second.state = Lease::State::kReleased;
        old->second.expires = std::min(old->second.expires, now);
      }
    }
  }
  Lease& l = leases_[a];
  if (!l.client.empty() && l.client != client) by_client_.erase(l.client);
  l.address = a;
  l.state = Lease::State::kBound;
  l.expires = now + pool.lease_time;
  l.client = client;
  l.hardware.assign(reinterpret_cast<const char*>(req.chaddr.data()), std::min<std::size_t>(req.hlen, 16));
  if (const std::string* h = req.option(opt::kHostName)) l.hostname = h->substr(0, 255);
  by_client_[client] = a;
  Outcome o = reply(req, MessageType::kAck, &pool, a, pool.lease_time);
  o.commit = true;
  o.note = "ack " + ipv4_to_string(a);
  return o;
}

Outcome Server::handle(const Packet& req, std::uint32_t from, std::int64_t now) {
  Outcome none;
  if (req.op != 1) {
    none.note = "not a request (op " + std::to_string(req.op) + ")";
    return none;
  }
  auto type = req.message_type();
  if (!type) {
    none.note = "no DHCP message type (a BOOTP request)";
    return none;
  }
  std::string client = client_key(req);
  auto requested = req.option_ipv4(opt::kRequestedAddress);
  auto sid = req.option_ipv4(opt::kServerId);
  switch (*type) {
    case MessageType::kDiscover: {
      const Pool* pool = pool_for(req);
      if (!pool) {
        none.note = "no pool for " + ipv4_to_string(req.giaddr ? req.giaddr : s_.server_id);
        return none;
      }
      auto a = choose(*pool, req, client, now);
      if (!a) {
        none.no_address = true;
        none.note = "no free address in the pool of " + ipv4_to_string(pool->network);
        return none;
      }
      forget_client(client, *a);
      Lease& l = leases_[*a];
      bool holds = l.client == client && l.state == Lease::State::kBound && l.expires > now;
      if (!holds) {
        if (!l.client.empty() && l.client != client) by_client_.erase(l.client);
        l.address = *a;
        l.state = Lease::State::kOffered;
        l.expires = now + s_.offer_time;
        l.client = client;
        l.hardware.assign(reinterpret_cast<const char*>(req.chaddr.data()), std::min<std::size_t>(req.hlen, 16));
      }
      by_client_[client] = *a;
      Outcome o = reply(req, MessageType::kOffer, pool, *a, pool->lease_time);
      o.note = "offer " + ipv4_to_string(*a);
      return o;
    }
    case MessageType::kRequest: {
      if (sid) {  // SELECTING
        if (*sid != s_.server_id) {
          if (Lease* l = lease_of(client); l && l->state == Lease::State::kOffered) {
            by_client_.erase(client);
            leases_.erase(l->address);
          }
          none.note = "client chose server " + ipv4_to_string(*sid);
          return none;
        }
        if (!requested) {
          none.note = "request (selecting) without a requested address";
          return none;
        }
        const Pool* pool = pool_for(req);
        if (!pool || !pool->contains(*requested)) return nak(req, "address not on this network");
        const Reservation* r = reservation_for(req);
        if (!pool->in_range(*requested) && !(r && r->address == *requested)) return nak(req, "address not in the pool");
        if (r && r->address != *requested) return nak(req, "this client has a reserved address");
        if (!available(*requested, client, req, now)) return nak(req, "address in use");
        return bind(req, *pool, *requested, now);
      }
      if (!req.ciaddr) {  // INIT-REBOOT
        if (!requested) {
          none.note = "request without an address (no option 50 and no ciaddr)";
          return none;
        }
        const Pool* pool = pool_for(req);
        if (!pool || !pool->contains(*requested)) return nak(req, "address not on this network");
        if (const Reservation* r = reservation_for(req)) {
          if (r->address != *requested) return nak(req, "this client has a reserved address");
          if (!available(*requested, client, req, now)) return nak(req, "address in use");
          return bind(req, *pool, *requested, now);
        }
        Lease* l = lease_of(client);
        if (!l) {
          none.note = "init-reboot from a client without a lease here: " + ipv4_to_string(*requested);
          return none;
        }
        if (l->address != *requested || l->state == Lease::State::kDeclined ||
            !available(*requested, client, req, now))
          return nak(req, "not this client's address");
        return bind(req, *pool, *requested, now);
      }
      // RENEWING (unicast) or REBINDING (broadcast): answered alike.
      std::uint32_t a = req.ciaddr;
      const Pool* pool = pool_containing(a);
      Lease* l = lease_of(client);
      if (pool && l && l->address == a && l->state != Lease::State::kDeclined && available(a, client, req, now)) {
        const Reservation* r = reservation_for(req);
        if ((pool->in_range(a) && !r) || (r && r->address == a)) return bind(req, *pool, a, now);
      }
      if (pool) return nak(req, "no lease for this client at " + ipv4_to_string(a));
      none.note = "renewal for an address outside every pool: " + ipv4_to_string(a);
      return none;
    }
    case MessageType::kDecline: {
      if (sid && *sid != s_.server_id) {
        none.note = "decline for another server";
        return none;
      }
      auto it = requested ? leases_.find(*requested) : leases_.end();
      if (it == leases_.end() || it->second.client != client) {
        none.note = "decline of an address this client does not hold";
        return none;
      }
      by_client_.erase(client);
      it->second.state = Lease::State::kDeclined;
      it->second.client.clear();
      it->second.expires = now + s_.decline_time;
      none.commit = true;
      none.note = "declined " + ipv4_to_string(*requested) + " (in use on the network?): unused for " +
                  std::to_string(s_.decline_time) + " s";
      return none;
    }
    case MessageType::kRelease: {
      auto it = leases_.find(req.ciaddr);
      if (it == leases_.end() || it->second.client != client || it->second.state != Lease::State::kBound) {
        none.note = "release of an address this client does not hold: " + ipv4_to_string(req.ciaddr);
        return none;
      }
      it->second.state = Lease::State::kReleased;
      it->second.expires = now;
      none.commit = true;
      none.note = "released " + ipv4_to_string(req.ciaddr);
      return none;
    }
    case MessageType::kInform: {
      std::uint32_t where = req.giaddr ? req.giaddr : req.ciaddr ? req.ciaddr : from;
      const Pool* pool = pool_containing(where);
      if (!pool) {
        none.note = "inform from outside every pool: " + ipv4_to_string(where);
        return none;
      }
      Outcome o = reply(req, MessageType::kAck, pool, 0, 0);
      if (!req.giaddr && !req.ciaddr && from) o.to_address = from;
      o.note = "inform answered";
      return o;
    }
    default: none.note = std::string("a ") + message_type_name(*type) + " from a client"; return none;
  }
}

std::string Server::serialize() const {
  std::string out = "# Outpost DHCP leases v1: address state expires(unix) client hardware hostname (hex; - none)\n";
  auto hex = [](const std::string& s) { return s.empty() ? std::string("-") : hex_colon(s); };
  for (const auto& [a, l] : leases_) {
    if (l.state == Lease::State::kOffered) continue;
    out += ipv4_to_string(a) + " " + lease_state_name(l.state) + " " + std::to_string(l.expires) + " " +
           hex(l.client) + " " + hex(l.hardware) + " " + hex(l.hostname) + "\n";
  }
  return out;
}

void Server::load(const std::string& text, std::vector<std::string>* warnings) {
  leases_.clear();
  by_client_.clear();
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string addr, state, expires, client, hw, host, extra;
    f >> addr >> state >> expires >> client >> hw >> host;
    auto a = parse_ipv4(addr);
    auto unhex = [](const std::string& s) -> std::optional<std::string> {
      if (s == "-") return std::string();
      return parse_hex_colon(s);
    };
    auto c = unhex(client), h = unhex(hw), name = unhex(host);
    Lease l;
    bool ok = a && c && h && name && !(f >> extra) && !expires.empty() &&
              expires.find_first_not_of("0123456789") == std::string::npos && expires.size() < 19;
    if (ok) {
      if (state == "bound") l.state = Lease::State::kBound;
      else if (state == "released") l.state = Lease::State::kReleased;
      else if (state == "declined") l.state = Lease::State::kDeclined;
      else ok = false;
    }
    if (ok && l.state != Lease::State::kDeclined && c->empty()) ok = false;
    if (!ok) {
      warnings->push_back("line " + std::to_string(n) + " skipped: " + line.substr(0, 120));
      continue;
    }
    l.address = *a;
    l.expires = std::stoll(expires);
    l.client = *c;
    l.hardware = *h;
    l.hostname = *name;
    if (!l.client.empty()) {
      auto it = by_client_.find(l.client);
      if (it != by_client_.end()) {
        // A client twice: the later expiry wins, the other lease loses its owner's mapping.
        if (leases_.at(it->second).expires > l.expires) {
          leases_[l.address] = l;
          continue;
        }
      }
      by_client_[l.client] = l.address;
    }
    leases_[l.address] = std::move(l);
  }
}

Counts Server::counts(std::int64_t now) const {
  Counts c;
  for (const auto& [a, l] : leases_) {
    if (l.expires <= now || l.state == Lease::State::kReleased) {
      ++c.expired;
      continue;
    }
    switch (l.state) {
      case Lease::State::kOffered: ++c.offered; break;
      case Lease::State::kBound: ++c.bound; break;
      case Lease::State::kDeclined: ++c.declined; break;
      default: break;
    }
  }
  return c;
}

}  // namespace outpost::dhcp
