// The DHCP server's logic (RFC 2131 §4.3): pools, reservations, the lease table and the
// answer to each client message. Pure: no sockets, the clock is an argument; the service
// (dhcp_service.hpp) does the I/O and writes the lease file. One instance, one thread: the
// lease table has a single writer.
//
// Leases, by address: offered (held for offer_time, never written to disk), bound (until
// its expiry), released or expired (the address stays with its last client until it is
// needed for another: then the longest-expired one is reclaimed), declined (nobody's, not
// handed out for decline_time).
//
// Addresses for a client, in order: its reservation (by client identifier or hardware
// address); the address it had (any state but declined); the address it asks for (option
// 50) if free; a never-used address of the pool; the address expired the longest.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "services/dhcp/dhcp_packet.hpp"

namespace outpost::dhcp {

struct Pool {
  std::uint32_t network = 0, mask = 0;  // the subnet
  std::uint32_t first = 0, last = 0;    // the range handed out
  std::vector<std::uint32_t> routers;
  std::vector<std::uint32_t> dns_servers;
  std::string domain_name;
  std::string wpad_url;
  std::uint32_t lease_time = 3600;
  bool contains(std::uint32_t a) const { return (a & mask) == network; }
  bool in_range(std::uint32_t a) const { return a >= first && a <= last; }
};

struct Reservation {
  std::string hardware;   // hardware address bytes (empty: none)
  std::string client_id;  // option 61 bytes (empty: none)
  std::uint32_t address = 0;
};

struct Settings {
  std::uint32_t server_id = 0;
  std::vector<Pool> pools;
  std::vector<Reservation> reservations;
  std::uint32_t offer_time = 60;
  std::uint32_t decline_time = 600;
};

// Builds Settings from [dhcp]; `server_id` is the address already chosen (server_address or
// the interface's), `dns` and `wpad` the defaults for pools that name none. False with a
// reason when the pools and reservations do not fit together (checked at start-up).
bool make_settings(const Config::Dhcp& c, std::uint32_t server_id, const std::vector<std::uint32_t>& dns,
                   const std::string& wpad, Settings* out, std::string* error);

struct Lease {
  enum class State { kOffered, kBound, kReleased, kDeclined };
  std::uint32_t address = 0;
  State state = State::kOffered;
  std::int64_t expires = 0;  // unix seconds
  std::string client;        // the client's key (client identifier or htype + chaddr); "" when declined
  std::string hardware;      // hardware address bytes
  std::string hostname;      // option 12, as the client sent it
};
const char* lease_state_name(Lease::State s);

// What to do after a message.
struct Outcome {
  std::optional<std::vector<std::uint8_t>> reply;
  MessageType reply_type = MessageType::kAck;
  std::uint32_t to_address = 0;  // 0xffffffff: broadcast
  std::uint16_t to_port = 68;
  bool commit = false;           // the lease table changed in a way the file must keep (before replying)
  std::string note;              // for the log (why nothing was sent, what was given)
  bool no_address = false;       // a client got nothing because its pool is full
};

struct Counts {
  std::size_t bound = 0, offered = 0, expired = 0, declined = 0;
};

class Server {
 public:
  explicit Server(Settings s) : s_(std::move(s)) {}
  // Replaces the settings (leases outside every pool stay until they are reclaimed).
  void set_settings(Settings s) { s_ = std::move(s); }
  const Settings& settings() const { return s_; }

  // A request that came from `from` (the IP source address, 0 for 0.0.0.0).
  Outcome handle(const Packet& req, std::uint32_t from, std::int64_t now);

  // The lease file: text, one lease a line (offered leases are not kept).
  std::string serialize() const;
  // Reads a lease file; lines that do not parse are skipped and named in *warnings.
  void load(const std::string& text, std::vector<std::string>* warnings);

  Counts counts(std::int64_t now) const;
  const std::map<std::uint32_t, Lease>& leases() const { return leases_; }

  // The client's key: option 61 if given, else htype and the hardware address.
  static std::string client_key(const Packet& p);

 private:
  const Pool* pool_for(const Packet& req) const;
  const Pool* pool_containing(std::uint32_t a) const;
  const Reservation* reservation_for(const Packet& req) const;
  bool reserved_for_other(std::uint32_t a, const Packet& req) const;
  // Whether `a` may go to `client` now.
  bool available(std::uint32_t a, const std::string& client, const Packet& req, std::int64_t now) const;
  std::optional<std::uint32_t> choose(const Pool& pool, const Packet& req, const std::string& client,
                                      std::int64_t now) const;
  Lease* lease_of(const std::string& client);
  void forget_client(const std::string& client, std::uint32_t except);
  Outcome reply(const Packet& req, MessageType type, const Pool* pool, std::uint32_t yiaddr,
                std::uint32_t lease_time, const std::string& message = {});
  Outcome bind(const Packet& req, const Pool& pool, std::uint32_t a, std::int64_t now);
  Outcome nak(const Packet& req, const std::string& why);

  Settings s_;
  std::map<std::uint32_t, Lease> leases_;
  std::map<std::string, std::uint32_t> by_client_;
};

}  // namespace outpost::dhcp
