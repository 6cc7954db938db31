// Host name globs for the `peer` of a [[policy.rule]] (docs/configuration.md): matched against the
// configured backend host. Pure.
#pragma once

#include <string_view>

namespace tlsbridge::policy {

// ASCII case-insensitive, one trailing dot on either side ignored, compared label by label. In a
// label, '*' stands for zero or more characters of that label ("mx*.example.net" matches
// "mx.example.net" and "mx1.example.net", not "mx1.a.example.net"). A whole leading "*" label
// stands for ONE OR MORE labels: "*.partner.example" matches "mx1.partner.example" and
// "a.b.partner.example", not "partner.example" nor "xpartner.example". "*" alone matches any
// non-empty host. A host with an empty label ("a..b") matches nothing.
bool host_glob_matches(std::string_view glob, std::string_view host);

}  // namespace tlsbridge::policy
