// Test driver: one resolution with trace output, like `outpost query NAME TYPE --trace` will be.
// Usage: dns_query --hints FILE [--no-qmin] [--qmin-strict] [--trace] NAME [TYPE]
#include <cstring>
#include <iostream>

#include "resolver/hints.hpp"
#include "resolver/resolver.hpp"

using namespace outpost::dns;

int main(int argc, char** argv) {
  std::string hints_file, name, qtype = "A";
  bool trace = false, qmin = true, qmin_strict = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--hints") && i + 1 < argc) hints_file = argv[++i];
    else if (!std::strcmp(argv[i], "--trace")) trace = true;
    else if (!std::strcmp(argv[i], "--no-qmin")) qmin = false;
    else if (!std::strcmp(argv[i], "--qmin-strict")) qmin_strict = true;
    else if (name.empty()) name = argv[i];
    else qtype = argv[i];
  }
  if (hints_file.empty() || name.empty()) {
    std::cerr << "usage: dns_query --hints FILE [--no-qmin] [--qmin-strict] [--trace] NAME [TYPE]\n";
    return 2;
  }
  std::string err;
  auto hints = load_root_hints_file(hints_file, &err);
  auto qname = Name::from_text(name);
  auto t = type_from_text(qtype);
  if (!hints || !qname || !t) {
    std::cerr << (hints ? "bad name or type" : err) << "\n";
    return 2;
  }
  ResolverConfig cfg;
  cfg.root_hints = *hints;
  cfg.qname_minimisation = qmin;
  cfg.qname_minimisation_strict = qmin_strict;
  auto ctx = ResolverContext::create(cfg);
  auto rcode = run_query(*ctx, {*qname, *t, kClassIN}, trace, std::cout);
  return rcode == rcode::NOERROR || rcode == rcode::NXDOMAIN ? 0 : 1;
}
