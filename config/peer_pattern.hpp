// The `peer` selector of a [[policy.rule]] (docs/configuration.md, "[[policy.rule]]"): a CIDR or
// bare IP address ("10.0.0.0/8", "127.0.0.1", "::1") — matched against the client's address and,
// on a back leg, the backend's — or a host name glob matched against the configured backend host,
// with '*' anywhere inside a label ("*.contoso.com", "mx*.example.net"). Pure: check-config asks
// peer_pattern_problem; policy/host_glob.hpp does the matching.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsbridge::config {

// "a.b.c" -> {"a", "b", "c"}; empty labels kept ("a..b" -> {"a", "", "b"}).
std::vector<std::string_view> split_labels(std::string_view name);

// Why `text` can match no peer, or std::nullopt when it is a usable CIDR, address or host glob.
// A glob that can match nothing is refused rather than silently never matching: characters
// outside letters, digits, '-', '.', '*'; an empty label ("a..b", ".a"); a label longer than 63
// or a name longer than 253 octets (RFC 1035 §2.3.4); a label without '*' that starts or ends
// with '-' (RFC 952, RFC 1123 §2.1); an address shape with a glob or out of range ("127.0.0.*",
// "300.1.1.1" — a backend given by IP is matched as an IP: write a CIDR); a last label that is
// all digits (no host name ends so, RFC 1123 §2.1, RFC 3696 §2).
std::optional<std::string> peer_pattern_problem(std::string_view text);

}  // namespace tlsbridge::config
