// Rewrites the backend's EHLO reply for the client:
//  * the backend's STARTTLS is removed — STARTTLS is the proxy's, never passed through;
//  * STARTTLS is added while the front leg offers it and is not yet encrypted (RFC 3207 §4);
//  * AUTH (and X-EXPS, Exchange's AUTH) is never shown before front TLS, so no client is invited to
//    send credentials in the clear;
//  * Exchange's X-ANONYMOUSTLS (TLS inside the session), XEXCH50 (binary payload with its own
//    framing), XSHADOW/XSHADOWREQUEST and XRDST are removed: the proxy refuses their commands.
//  * REQUIRETLS (RFC 8689) is removed: the proxy's back leg may be TLS 1.0 or plaintext, so it
//    cannot honour a message's demand for TLS all the way;
//  * with `[listener.smtp] greeting` set, the host name in the first line (the backend's internal
//    name) is replaced by the greeting's first word.
// Every other extension passes as the backend says it. Replies other than 250 pass unchanged.
#pragma once

#include "protocols/smtp/smtp_reply.hpp"

namespace tlsbridge::protocols::smtp {

struct ehlo_view {
  bool offer_starttls = false;  // front leg is "starttls" and not yet encrypted
  bool front_encrypted = false;
};

// host: the name shown in the first line instead of the backend's; "" = the backend's own stays.
reply rewrite_ehlo_reply(const reply& backend_reply, const ehlo_view& view,
                         std::string_view host = {});

// Whether a 250 EHLO reply lists the extension keyword (case-insensitive), e.g. "STARTTLS".
bool ehlo_has_extension(const reply& ehlo_reply, std::string_view keyword);

}  // namespace tlsbridge::protocols::smtp
