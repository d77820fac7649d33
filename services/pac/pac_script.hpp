// Proxy auto-config ([pac]): the JavaScript file browsers load from /proxy.pac and /wpad.dat
// (WPAD, the name DHCP option 252 and the wpad.<domain> DNS convention point at), served on
// the proxy port itself (as /health is) and on the admin listener. Generated from config:
// DIRECT for plain host names, listed domains and local networks, the configured proxies
// (or, when none are listed, the address the browser fetched the script from) for the rest.
// Pure code (no loop, no I/O): what app/ wires into the proxy's and the admin's own pages.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/own_page.hpp"

namespace outpost::pac {

inline constexpr std::string_view kContentType = "application/x-ns-proxy-autoconfig";

// Registers the [pac] parser. Once, before parsing.
void register_config_section();

// Whether `path` (without query) is one of the script's names.
bool is_pac_path(std::string_view path);

// The script for a browser that asked with `host_header` ("" when it sent none). With
// pac.proxies empty the proxy named is the Host header's authority when the script was
// fetched from the proxy port (`on_proxy_port`), else the Host header's host with the first
// proxy.listen port; without a usable Host header, the first proxy.listen address.
std::string make_script(const Config& config, std::string_view host_header, bool on_proxy_port);

// The own page for `path`, or nullopt when it is not the script's or [pac] is off.
std::optional<OwnPage> page(const Config& config, std::string_view path, std::string_view host_header,
                            bool on_proxy_port);

}  // namespace outpost::pac
