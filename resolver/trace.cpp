// `outpost query NAME TYPE [--trace]`: one resolution on a private loop, printed step by step
// in the manner of `dig +trace`.
#include <uv.h>

#include <ostream>

#include "resolver/resolver.hpp"
#include "resolver/resolver_core.hpp"

namespace outpost::dns {

namespace {

void print_records(std::ostream& out, const std::vector<ResourceRecord>& rrs) {
  for (auto& rr : rrs) out << rr_to_text(rr) << "\n";
}

void print_step(std::ostream& out, const TraceStep& s) {
  std::string server = s.server + "#53";
  if (!s.server_name.is_root()) {
    server += '(';
    server += s.server_name.to_text();
    server += ')';
  }
  if (s.timeout) {
    out << ";; " << s.outcome << " asking " << server << " for " << s.question.name.to_text() << " "
        << type_to_text(s.question.type) << " (zone " << s.zone.to_text() << ")\n\n";
    return;
  }
  const Message& m = s.response;
  print_records(out, m.answer);
  print_records(out, m.authority);
  print_records(out, m.additional);
  out << ";; " << rcode_to_text(m.header.rcode) << (m.header.aa ? " aa" : "") << (m.header.tc ? " tc" : "") << ", "
      << s.outcome << ": " << s.question.name.to_text() << " " << type_to_text(s.question.type) << " from " << server
      << " (zone " << s.zone.to_text() << ")" << (s.tcp ? " over TCP" : "") << " in " << s.rtt_ms << " ms, "
      << s.bytes << " bytes\n\n";
}

}  // namespace

std::uint16_t run_query(const ResolverContext& context, const Question& q, bool trace, std::ostream& out) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::uint16_t rcode = rcode::SERVFAIL;
  {
    auto ctx = std::make_shared<ResolverContext>(context);
    Resolver resolver(&loop, ctx);
    TraceSink sink;
    if (trace) sink = [&out](const TraceStep& s) { print_step(out, s); };
    out << "; <<>> outpost query <<>> " << q.name.to_text() << " " << type_to_text(q.type) << "\n";
    resolver.query(
        q,
        [&](const Resolution& r) {
          rcode = r.rcode;
          out << ";; status: " << rcode_to_text(r.rcode) << (r.authoritative ? ", local zone" : "")
              << (r.from_cache ? ", from cache" : "") << (r.why.empty() ? "" : ", ") << r.why << "\n";
          out << ";; ANSWER SECTION:\n";
          print_records(out, r.answer);
          if (!r.authority.empty()) {
            out << ";; AUTHORITY SECTION:\n";
            print_records(out, r.authority);
          }
        },
        sink);
    uv_run(&loop, UV_RUN_DEFAULT);
    resolver.shutdown();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  return rcode;
}

}  // namespace outpost::dns
