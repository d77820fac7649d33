// A page that a service adds to Outpost's own pages (origin-form GET/HEAD on the proxy port,
// and the admin listener's), such as the proxy auto-config script. app/ wires a function per
// worker; it runs on that worker's loop thread.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace outpost {

struct OwnPage {
  std::string content_type;
  std::string body;
};

// `path` without the query; `host` the request's Host field ("" if none); `proxy_port`: asked
// on the proxy port (else on the admin listener). nullopt: no such page here (404).
using OwnPageFn = std::function<std::optional<OwnPage>(std::string_view path, std::string_view host, bool proxy_port)>;

}  // namespace outpost
